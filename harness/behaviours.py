"""The behaviour catalog: what each suite test checks, in words a reviewer reads.

`harness/behaviours.toml` names, for every test function of `suites/`, the specification
it checks (the Allure epic), the area (feature), the behaviour as a sentence (story), links
to the specification section and to the MongooseIM documentation, a severity, and the
profile keys the behaviour depends on. The upgrade matrix compares those keys between the
6.0.0 and 6.1.0 profiles. A test missing from the catalog gets defaults from its area (the
suite module's `pytest.mark.area`) and its name; `tests/test_reporting.py` keeps the
catalog complete.
"""

from __future__ import annotations

import ast
import logging
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
CATALOG = Path(__file__).resolve().parent / "behaviours.toml"
SUITES = ROOT / "suites"
SEVERITIES = ("blocker", "critical", "normal", "minor", "trivial")


class CatalogError(ValueError):
    """The catalog file is missing, malformed or names something that does not exist."""


@dataclass(frozen=True)
class Link:
    name: str
    url: str


@dataclass(frozen=True)
class Behaviour:
    """One catalog entry: a suite test function and what it stands for."""

    key: str
    epic: str
    feature: str
    story: str
    severity: str
    spec: Link | None
    docs: Link | None
    profile_keys: tuple[str, ...] = ()
    catalogued: bool = True

    @property
    def module(self) -> str:
        return self.key.split("::", 1)[0]

    @property
    def function(self) -> str:
        return self.key.split("::", 1)[1]


@dataclass(frozen=True)
class Area:
    """Defaults for the tests of one area of behaviour (a suite module's `area` mark)."""

    name: str
    epic: str
    feature: str
    severity: str = "normal"
    spec: Link | None = None
    docs: Link | None = None


@dataclass(frozen=True)
class Catalog:
    areas: dict[str, Area]
    behaviours: dict[str, Behaviour] = field(default_factory=dict)

    def behaviour(self, module: str, function: str, area: str | None) -> Behaviour:
        """The catalog entry of `module::function`, or defaults from its area and name."""
        key = behaviour_key(module, function)
        found = self.behaviours.get(key)
        if found is not None:
            return found
        return self.default(key, area)

    def default(self, key: str, area: str | None) -> Behaviour:
        function = key.split("::", 1)[1]
        known = self.areas.get(area or "")
        return Behaviour(
            key=key,
            epic=known.epic if known else "Unclassified",
            feature=known.feature if known else (area or "unknown area").replace("_", " "),
            story=story_from_name(function),
            severity=known.severity if known else "normal",
            spec=known.spec if known else None,
            docs=known.docs if known else None,
            catalogued=False,
        )


def behaviour_key(module: str, function: str) -> str:
    """`test_presence::test_x` from a module name (dotted or a file stem) and a function."""
    stem = module.rsplit(".", 1)[-1]
    return f"{stem}::{function.split('[', 1)[0]}"


def story_from_name(function: str) -> str:
    """`test_clean_close_sends_unavailable` -> `Clean close sends unavailable`."""
    words = function.split("[", 1)[0].removeprefix("test_").replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else function


@cache
def load_catalog(path: Path = CATALOG) -> Catalog:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise CatalogError(f"behaviour catalog {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"behaviour catalog {path} is not valid TOML: {exc}") from None
    areas = {name: _area(name, spec, path) for name, spec in _tables(data, "areas", path)}
    behaviours = {
        key: _behaviour(key, spec, areas, path) for key, spec in _tables(data, "behaviours", path)
    }
    log.debug("behaviour catalog %s: %d areas, %d behaviours", path, len(areas), len(behaviours))
    return Catalog(areas=areas, behaviours=behaviours)


def suite_tests(folder: Path = SUITES) -> dict[str, str | None]:
    """Every test function of the suite modules, by catalog key, with the module's area.

    Read from the source (no import), so a module that cannot be imported still counts.
    """
    found: dict[str, str | None] = {}
    for path in sorted(folder.glob("test_*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        area = _module_area(tree)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
                "test_"
            ):
                found[behaviour_key(path.stem, node.name)] = area
    return found


def _module_area(tree: ast.Module) -> str | None:
    """The argument of `pytestmark = pytest.mark.area("...")` (or in a list), if any."""
    for node in tree.body:
        if not isinstance(node, ast.Assign):
            continue
        if not any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
            continue
        for call in ast.walk(node.value):
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr == "area"
                and call.args
                and isinstance(call.args[0], ast.Constant)
            ):
                return str(call.args[0].value)
    return None


def _tables(data: dict[str, Any], name: str, path: Path) -> list[tuple[str, dict[str, Any]]]:
    tables = data.get(name, {})
    if not isinstance(tables, dict):
        raise CatalogError(f"{path}: [{name}] must be a table of tables")
    for key, spec in tables.items():
        if not isinstance(spec, dict):
            raise CatalogError(f"{path}: [{name}.{key}] must be a table")
    return list(tables.items())


def _link(spec: object, where: str) -> Link | None:
    if spec is None:
        return None
    if not isinstance(spec, dict) or not {"name", "url"} <= spec.keys():
        raise CatalogError(f"{where}: a link needs `name` and `url`, got {spec!r}")
    return Link(name=str(spec["name"]), url=str(spec["url"]))


def _severity(value: object, where: str) -> str:
    if value not in SEVERITIES:
        raise CatalogError(f"{where}: severity {value!r} is not one of {SEVERITIES}")
    return str(value)


def _area(name: str, spec: dict[str, Any], path: Path) -> Area:
    where = f"{path}: [areas.{name}]"
    missing = [k for k in ("epic", "feature") if k not in spec]
    if missing:
        raise CatalogError(f"{where}: missing {', '.join(missing)}")
    return Area(
        name=name,
        epic=str(spec["epic"]),
        feature=str(spec["feature"]),
        severity=_severity(spec.get("severity", "normal"), where),
        spec=_link(spec.get("spec"), where),
        docs=_link(spec.get("docs"), where),
    )


def _behaviour(key: str, spec: dict[str, Any], areas: dict[str, Area], path: Path) -> Behaviour:
    where = f'{path}: [behaviours."{key}"]'
    if "::" not in key:
        raise CatalogError(f"{where}: the key must be `<suite module>::<test function>`")
    if "area" not in spec or spec["area"] not in areas:
        raise CatalogError(f"{where}: `area` must name one of {sorted(areas)}")
    if not str(spec.get("story", "")).strip():
        raise CatalogError(f"{where}: `story` must say what the behaviour is")
    area = areas[str(spec["area"])]
    keys = spec.get("keys", [])
    if not isinstance(keys, list) or not all(isinstance(k, str) and "." in k for k in keys):
        raise CatalogError(f"{where}: `keys` must list profile keys as `<table>.<key>`")
    return Behaviour(
        key=key,
        epic=str(spec.get("epic", area.epic)),
        feature=str(spec.get("feature", area.feature)),
        story=str(spec["story"]),
        severity=_severity(spec.get("severity", area.severity), where),
        spec=_link(spec.get("spec"), where) or area.spec,
        docs=_link(spec.get("docs"), where) or area.docs,
        profile_keys=tuple(keys),
    )
