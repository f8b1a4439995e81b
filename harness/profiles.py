"""Profiles: the behaviour a target must show, one TOML file per target in `profiles/`.

A profile has one table per area of behaviour (`[presence]`, `[stream_management]`, ...).
Each area's judge reads its own table into a typed expectation; a missing table or key is
a ProfileError that names the file, so a broken profile fails loudly at collection.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

PROFILES = Path(__file__).resolve().parent.parent / "profiles"
T = TypeVar("T")


class ProfileError(ValueError):
    """A profile that is missing, malformed or lacks an expectation."""


@dataclass(frozen=True)
class Profile:
    name: str
    path: Path
    data: dict[str, Any]

    @property
    def server(self) -> str:
        return str(self.data.get("server", self.name))

    def section(self, area: str) -> dict[str, Any]:
        table = self.data.get(area)
        if not isinstance(table, dict):
            raise ProfileError(f"profile {self.path.name} has no [{area}] table")
        return table

    def has(self, area: str) -> bool:
        return isinstance(self.data.get(area), dict)


@cache
def load_profile(name: str, folder: Path = PROFILES) -> Profile:
    path = folder / f"{name}.toml"
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ProfileError(f"profile '{name}' not found: {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"profile {path} is not valid TOML: {exc}") from None
    return Profile(name=name, path=path, data=data)


# Field annotations (as strings, under `from __future__ import annotations`) and the TOML
# type a profile value must have for them.
TOML_KINDS: dict[str, type] = {
    "bool": bool,
    "str": str,
    "int": int,
    "float": float,
    "list[str]": list,
    "tuple[str, ...]": list,
}


def read_table(cls: type[T], profile: Profile, area: str) -> dict[str, Any]:
    """The values of a profile's [area] table for each field of a dataclass, type-checked."""
    table = profile.section(area)
    values: dict[str, Any] = {}
    for item in fields(cls):  # type: ignore[arg-type]
        kind = TOML_KINDS.get(str(item.type))
        if kind is None:
            raise ProfileError(f"[{area}] {item.name}: no TOML type for {item.type}")
        values[item.name] = expect(table, item.name, kind, area)
    return values


def expect(table: dict[str, Any], key: str, kind: type, area: str) -> Any:
    """One typed value of a profile table, or a ProfileError naming what is wrong."""
    if key not in table:
        raise ProfileError(f"[{area}] lacks '{key}'")
    value = table[key]
    if not isinstance(value, kind):
        raise ProfileError(f"[{area}] {key} = {value!r} should be a {kind.__name__}")
    return value
