"""Metrics operators read: names, counter moves, the version probe and the REST admin API.

The profile's `[metrics]` table names the kind of metrics API a server has (`api`), the
metric names that must and must not exist, and, for each act of traffic the suite drives
(`login`, `logout`, `chat`, `sm_enable`), the counters that must move and by how much.

Counters are shared by everything that talks to a server, so every move is a lower bound:
`rises = N` holds when the counter grew by N or more, `falls = N` when it shrank by N or
more. Other traffic can only add to a rise of a counter that never shrinks, and a counter
that does not move still fails. An amount is a number or the name of a quantity the act
measured: `logins` (sessions the act opened or closed), `sent_bytes` (the exact bytes of
the chat the sender wrote), `delivered_bytes` (the exact bytes of that chat as written to
the recipient).

Every judge returns problems that name the profile key they break.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from clients.metrics import MetricName, ServerStatus, matches_prefix
from harness.profiles import Profile, ProfileError, expect

AREA = "metrics"
APIS = ("mongooseim-graphql", "openmetrics", "ejabberd-stats", "none")
RESTS = ("mongooseim-admin", "none")
VERSION_PROBES = ("version-field", "no-version-field", "none")
HOST_TYPE_LISTINGS = ("ok", "error-500-empty")
ACTS = ("login", "logout", "chat", "sm_enable")
QUANTITIES = ("logins", "sent_bytes", "delivered_bytes")
DIRECTIONS = ("rises", "falls")
# APIs that list every name they have, so that a name's absence can be observed.
LISTING_APIS = ("mongooseim-graphql", "openmetrics")
# How many names a problem shows when it lists what the server had instead.
SHOWN = 12


@dataclass(frozen=True)
class Move:
    """One counter an act must move: `rises` or `falls` by at least `amount`."""

    name: MetricName
    direction: str
    amount: int | str
    # A labelled series some servers create on first use: not listed before the act
    # reads as 0 (the Prometheus convention). Otherwise a missing series is a problem.
    absent_before_is_zero: bool = False

    @property
    def key(self) -> str:
        return f"{show(self.name)} {self.direction} = {self.amount!r}"


@dataclass(frozen=True)
class MetricsExpect:
    api: str
    rest: str
    version_probe: str
    version: str
    present: tuple[MetricName, ...]
    absent: tuple[MetricName, ...]
    moves: dict[str, tuple[Move, ...]]
    rest_cors: dict[str, str] = field(default_factory=dict)
    rest_preflight_allow: str = ""
    rest_host_type_listing: str = ""

    @classmethod
    def of(cls, profile: Profile) -> MetricsExpect:
        table = profile.section(AREA)
        api = _choice(table, "api", APIS)
        rest = _choice(table, "rest", RESTS)
        probe = _choice(table, "version_probe", VERSION_PROBES)
        version = str(profile.data.get("version", ""))
        if probe == "version-field" and not version:
            raise ProfileError(
                f"{profile.path.name}: version_probe = 'version-field' needs a top-level "
                "`version` to compare with"
            )
        built = cls(
            api=api,
            rest=rest,
            version_probe=probe,
            version=version,
            present=_names(table, "present"),
            absent=_names(table, "absent"),
            moves={act: _moves(table, act, api) for act in ACTS},
            **_rest_keys(table, rest),
        )
        built._validate()
        return built

    def _validate(self) -> None:
        if self.absent and self.api not in LISTING_APIS:
            raise ProfileError(
                f"[metrics] absent: a {self.api!r} API does not list its names, so an "
                "absence cannot be observed; leave the list empty"
            )
        for name in (*self.present, *self.absent):
            if self.api == "ejabberd-stats" and len(name) != 1:
                raise ProfileError(f"[metrics] {list(name)}: ejabberd statistics have one part")
        if self.version_probe != "none" and self.api != "mongooseim-graphql":
            raise ProfileError(
                f"[metrics] version_probe = {self.version_probe!r} asks MongooseIM's GraphQL "
                f"server.status, but api = {self.api!r}"
            )

    @property
    def lists_names(self) -> bool:
        return self.api in LISTING_APIS

    def counted(self, act: str) -> tuple[MetricName, ...]:
        """The names an act's check reads."""
        return tuple(move.name for move in self.moves[act])


def _choice(table: dict[str, Any], key: str, allowed: Sequence[str]) -> str:
    value: str = expect(table, key, str, AREA)
    if value not in allowed:
        raise ProfileError(f"[metrics] {key} = {value!r} must be one of {tuple(allowed)}")
    return value


def _name(raw: object, where: str) -> MetricName:
    if not isinstance(raw, list) or not raw or not all(isinstance(s, str) and s for s in raw):
        raise ProfileError(f"[metrics] {where}: a name is a list of non-empty strings: {raw!r}")
    return tuple(raw)


def _names(table: dict[str, Any], key: str) -> tuple[MetricName, ...]:
    raw: list[Any] = expect(table, key, list, AREA)
    return tuple(_name(item, key) for item in raw)


def _moves(table: dict[str, Any], act: str, api: str) -> tuple[Move, ...]:
    raw: list[Any] = expect(table, act, list, AREA)
    if raw and api == "none":
        raise ProfileError(f"[metrics] {act}: counters to move, but api = 'none'")
    return tuple(_move(item, act) for item in raw)


def _move(raw: object, act: str) -> Move:
    if not isinstance(raw, dict):
        raise ProfileError(f"[metrics] {act}: each entry is {{ name = [...], rises = N }}")
    directions = [d for d in DIRECTIONS if d in raw]
    unknown = set(raw) - {"name", "absent_before_is_zero", *DIRECTIONS}
    if len(directions) != 1 or unknown:
        raise ProfileError(
            f"[metrics] {act}: {raw!r} needs `name` and exactly one of {DIRECTIONS}"
            + (f"; unknown keys {sorted(unknown)}" if unknown else "")
        )
    direction = directions[0]
    amount = raw[direction]
    valid_number = isinstance(amount, int) and not isinstance(amount, bool) and amount > 0
    if not valid_number and amount not in QUANTITIES:
        raise ProfileError(
            f"[metrics] {act}: {direction} = {amount!r} must be a positive number or one of "
            f"{QUANTITIES}"
        )
    zero = raw.get("absent_before_is_zero", False)
    if not isinstance(zero, bool):
        raise ProfileError(f"[metrics] {act}: absent_before_is_zero must be true or false")
    return Move(_name(raw.get("name"), act), direction, amount, zero)


def _rest_keys(table: dict[str, Any], rest: str) -> dict[str, Any]:
    if rest == "none":
        return {}
    cors: dict[str, Any] = expect(table, "rest_cors", dict, AREA)
    if not all(isinstance(v, str) for v in cors.values()):
        raise ProfileError("[metrics] rest_cors maps header names to their exact values")
    return {
        "rest_cors": {str(k).lower(): str(v) for k, v in cors.items()},
        "rest_preflight_allow": expect(table, "rest_preflight_allow", str, AREA),
        "rest_host_type_listing": _choice(table, "rest_host_type_listing", HOST_TYPE_LISTINGS),
    }


# -- names -----------------------------------------------------------------------------------


def show(name: MetricName) -> str:
    """A name as operators see it: `a.b.c`, or `sample{label=value,...}` for OpenMetrics."""
    labels = [s for s in name[1:] if "=" in s]
    if labels and len(labels) == len(name) - 1:
        return f"{name[0]}{{{','.join(labels)}}}"
    return ".".join(name)


def names_match(api: str, wanted: MetricName, listed: MetricName) -> bool:
    """OpenMetrics: same sample name and the listed labels include the wanted ones.
    Everywhere else a name is its exact list of segments."""
    if api == "openmetrics":
        return wanted[0] == listed[0] and set(wanted[1:]) <= set(listed[1:])
    return wanted == listed


@dataclass(frozen=True)
class Listing:
    """The names a metrics API listed, and which names that listing can speak for.

    `prefix` limits it to the names under a prefix (a filtered query); `rest_shape`
    to what MongooseIM's REST admin API lists: every global name, and host-type names of
    one segment after the host type. `error` holds why the API could not be read.
    """

    names: frozenset[MetricName]
    prefix: MetricName = ()
    rest_shape: bool = False
    error: str = ""

    def covers(self, name: MetricName) -> bool:
        if not matches_prefix(name, self.prefix):
            return False
        return not self.rest_shape or name[0] == "global" or len(name) == 2


def judge_names(want: MetricsExpect, seen: Listing) -> list[str]:
    """Every `present` name is listed and no `absent` one is."""
    if seen.error:
        return [_unreadable(want, seen.error)]
    problems: list[str] = []
    for name in want.present:
        if seen.covers(name) and not _listed(want, seen, name):
            problems.append(
                f"present: expected {show(name)} to be listed; it is not. "
                f"Listed near it: {_near(seen, name)}"
            )
    for name in want.absent:
        if not seen.covers(name):
            continue
        found = sorted(show(n) for n in seen.names if names_match(want.api, name, n))
        if found:
            problems.append(f"absent: expected no {show(name)}; listed: {', '.join(found)}")
    return problems


def _listed(want: MetricsExpect, seen: Listing, name: MetricName) -> bool:
    return any(names_match(want.api, name, listed) for listed in seen.names)


def _near(seen: Listing, name: MetricName) -> str:
    """Listed names sharing the longest possible prefix with `name`, to show what is there."""
    for depth in range(len(name) - 1, 0, -1):
        near = sorted(show(n) for n in seen.names if n[:depth] == name[:depth])
        if near:
            more = f" and {len(near) - SHOWN} more" if len(near) > SHOWN else ""
            return ", ".join(near[:SHOWN]) + more
    return f"nothing with its first segment ({len(seen.names)} names listed)"


def _unreadable(want: MetricsExpect, error: str) -> str:
    return f"api = {want.api!r}: expected a readable metrics API; {error}"


# -- counter moves ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """Counters read before and after one act, and what the act measured."""

    before: dict[MetricName, int]
    after: dict[MetricName, int]
    quantities: dict[str, int | None]
    error: str = ""


def judge_moves(want: MetricsExpect, act: str, seen: Reading) -> list[str]:
    """Each counter the profile names for `act` moved at least as far as it says."""
    if seen.error:
        return [_unreadable(want, seen.error)]
    problems: list[str] = []
    for move in want.moves[act]:
        problem = _judge_move(move, seen)
        if problem:
            problems.append(f"{act}: {move.key}: {problem}")
    return problems


def _judge_move(move: Move, seen: Reading) -> str:
    amount = _amount(move, seen)
    if amount is None:
        return f"the act measured no {move.amount} (see the transcript)"
    before = seen.before.get(move.name)
    if before is None and move.absent_before_is_zero:
        before = 0
    after = seen.after.get(move.name)
    if before is None or after is None:
        when = "before" if before is None else "after"
        return f"expected a {move.direction[:-1]} of {amount} or more; not listed {when} the act"
    delta = after - before
    moved = f"read {before} -> {after} ({delta:+d})"
    if move.direction == "rises" and delta < amount:
        return f"expected a rise of {amount} or more; {moved}"
    if move.direction == "falls" and -delta < amount:
        return f"expected a fall of {amount} or more; {moved}"
    return ""


def _amount(move: Move, seen: Reading) -> int | None:
    if isinstance(move.amount, int):
        return move.amount
    return seen.quantities.get(move.amount)


# -- version probe ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusSeen:
    """The answer to MongooseIM's `server.status` query, or why there is none."""

    status: ServerStatus | None
    error: str = ""


def judge_version_probe(want: MetricsExpect, seen: StatusSeen) -> list[str]:
    """`server.status` has a `version` field holding the release, or has no such field."""
    key = f"version_probe = {want.version_probe!r}"
    if seen.status is None:
        return [f"{key}: expected an answer to server.status; {seen.error or 'none came'}"]
    has_field, version = seen.status.has_version_field, seen.status.version
    if want.version_probe == "no-version-field" and has_field:
        return [f"{key}: expected no version field in server.status; it says {version!r}"]
    if want.version_probe == "version-field":
        if not has_field:
            return [
                f"{key}: expected server.status.version {want.version!r}; the schema has no "
                "version field (unknown_field)"
            ]
        if version != want.version:
            return [f"{key}: expected server.status.version {want.version!r}; got {version!r}"]
    return []


# -- REST admin API --------------------------------------------------------------------------


@dataclass(frozen=True)
class CorsSeen:
    """CORS headers of a GET and of an OPTIONS preflight on the REST metrics routes."""

    get_headers: dict[str, str]
    preflight_status: int | None
    preflight_headers: dict[str, str]
    preflight_allow: str
    error: str = ""


def judge_rest_cors(want: MetricsExpect, seen: CorsSeen) -> list[str]:
    """The REST admin API sends exactly the profile's CORS headers and answers a preflight."""
    if seen.error:
        return [f"rest = {want.rest!r}: expected a readable REST admin API; {seen.error}"]
    problems: list[str] = []
    for what, got in (("GET", seen.get_headers), ("OPTIONS", seen.preflight_headers)):
        if got != want.rest_cors:
            problems.append(
                f"rest_cors = {_headers(want.rest_cors)}: expected exactly these "
                f"Access-Control-* headers on {what}; got {_headers(got)}"
            )
    if seen.preflight_status != 200:
        problems.append(
            f"rest_preflight_allow = {want.rest_preflight_allow!r}: expected HTTP 200 to "
            f"OPTIONS; got HTTP {seen.preflight_status}"
        )
    elif seen.preflight_allow != want.rest_preflight_allow:
        problems.append(
            f"rest_preflight_allow = {want.rest_preflight_allow!r}: the OPTIONS answer has "
            f"allow: {seen.preflight_allow!r}"
        )
    return problems


def _headers(headers: dict[str, str]) -> str:
    if not headers:
        return "none"
    return ", ".join(f"{name}: {value}" for name, value in sorted(headers.items()))


@dataclass(frozen=True)
class HostTypeListingSeen:
    """The answer to `GET /api/metrics/host_type/<host type>`."""

    status: int | None
    body: str
    error: str = ""


def judge_rest_host_type_listing(want: MetricsExpect, seen: HostTypeListingSeen) -> list[str]:
    """The all-metrics route of a host type answers as the profile says (200, or the
    HTTP 500 with an empty body MongooseIM gives while mod_csi is on)."""
    key = f"rest_host_type_listing = {want.rest_host_type_listing!r}"
    if seen.status is None:
        return [f"{key}: expected an HTTP answer; {seen.error or 'none came'}"]
    if want.rest_host_type_listing == "error-500-empty":
        if seen.status != 500 or seen.body:
            return [
                f"{key}: expected HTTP 500 with an empty body; got HTTP {seen.status} with "
                f"{len(seen.body)} characters: {seen.body[:120]!r}"
            ]
        return []
    if seen.status != 200:
        return [f"{key}: expected HTTP 200 with the metrics; got HTTP {seen.status}"]
    return []
