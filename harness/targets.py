"""Targets: which servers the suite runs against, where they listen and how to administer them.

A target comes from `targets.toml` (servers this project starts with Docker Compose) or
from a user's `--targets-file` (servers already running). Compose-managed nodes get their
host ports once the services are up (`Node.resolve`).
"""

from __future__ import annotations

import logging
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from harness.profiles import Profile, load_profile

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "targets.toml"
ADMIN_KINDS = ("mongooseim-graphql", "prosodyctl", "ejabberd-api")


class TargetError(ValueError):
    """A target definition that cannot be used, with the reason."""


@dataclass
class Node:
    """One server process: a compose service, or a host with known ports."""

    name: str
    host: str
    ports: dict[str, int]
    service: str | None = None
    container: str | None = None

    @property
    def c2s(self) -> tuple[str, int]:
        return self.host, self.port("c2s")

    def port(self, role: str) -> int:
        try:
            return self.ports[role]
        except KeyError:
            raise TargetError(f"node {self.name} has no '{role}' port: {self.ports}") from None

    def url(self, role: str, path: str = "") -> str:
        return f"http://{self.host}:{self.port(role)}{path}"


@dataclass
class Admin:
    """How the harness registers users and reads state: the target's own admin path."""

    kind: str
    username: str = ""
    password: str = field(default="", repr=False)


@dataclass
class Target:
    name: str
    profile: Profile
    domain: str
    admin: Admin
    nodes: list[Node]
    sets: list[str] = field(default_factory=list)
    fault: str = ""
    managed: bool = True

    @property
    def node(self) -> Node:
        """The first node; single-node suites use only this one."""
        return self.nodes[0]

    @property
    def services(self) -> list[str]:
        return [n.service for n in self.nodes if n.service]


def load_catalog(path: Path = CATALOG) -> dict[str, Target]:
    """All targets of a catalog file, by name."""
    data = _read_toml(path)
    targets = data.get("targets")
    if not isinstance(targets, dict) or not targets:
        raise TargetError(f"{path}: no [targets.<name>] tables")
    return {name: _target(name, spec, path) for name, spec in targets.items()}


def select(catalog: dict[str, Target], wanted: str) -> list[Target]:
    """Targets named by `--targets`: set names, target names, comma separated, or `all`."""
    chosen: dict[str, Target] = {}
    for word in (w.strip() for w in wanted.split(",") if w.strip()):
        if word == "all":
            matched = [t for t in catalog.values() if "faulty" not in t.sets]
        else:
            matched = [t for t in catalog.values() if t.name == word or word in t.sets]
        if not matched:
            known = sorted({*catalog, *(s for t in catalog.values() for s in t.sets)})
            raise TargetError(f"--targets: '{word}' names no target or set; known: {known}")
        chosen.update((t.name, t) for t in matched)
    return list(chosen.values())


def _read_toml(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise TargetError(f"targets file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise TargetError(f"targets file {path} is not valid TOML: {exc}") from None


def _target(name: str, spec: object, path: Path) -> Target:
    where = f"{path}: target '{name}'"
    if not isinstance(spec, dict):
        raise TargetError(f"{where}: must be a table")
    missing = [k for k in ("profile", "nodes", "admin") if k not in spec]
    if missing:
        raise TargetError(f"{where}: missing {', '.join(missing)}")
    nodes = [_node(name, i, n, where) for i, n in enumerate(spec["nodes"])]
    if not nodes:
        raise TargetError(f"{where}: needs at least one node")
    return Target(
        name=name,
        profile=load_profile(str(spec["profile"])),
        domain=str(spec.get("domain", "localhost")),
        admin=_admin(spec["admin"], where),
        nodes=nodes,
        sets=list(spec.get("sets", [])),
        fault=str(spec.get("fault", "")),
        managed=all(n.service for n in nodes),
    )


def _node(target: str, index: int, spec: object, where: str) -> Node:
    if not isinstance(spec, dict) or not isinstance(spec.get("ports"), dict):
        raise TargetError(f"{where}: node {index} needs a `ports` table")
    ports = {str(role): int(port) for role, port in spec["ports"].items()}
    if "c2s" not in ports:
        raise TargetError(f"{where}: node {index} has no c2s port")
    service = spec.get("service")
    if service is None and "host" not in spec:
        raise TargetError(f"{where}: node {index} needs `service` (compose) or `host`")
    return Node(
        name=str(spec.get("name", service or f"{target}-{index + 1}")),
        host=str(spec.get("host", "127.0.0.1")),
        ports=ports,
        service=str(service) if service else None,
    )


def _admin(spec: object, where: str) -> Admin:
    if not isinstance(spec, dict) or spec.get("kind") not in ADMIN_KINDS:
        raise TargetError(f"{where}: admin.kind must be one of {ADMIN_KINDS}")
    password = str(spec.get("password", ""))
    if "password_env" in spec:
        env = str(spec["password_env"])
        password = os.environ.get(env, "")
        if not password:
            raise TargetError(f"{where}: admin.password_env names {env}, which is not set")
    return Admin(kind=str(spec["kind"]), username=str(spec.get("username", "")), password=password)
