"""Mixed-version cluster (a rolling upgrade from 6.0.0 to 6.1.0): expectations and judges.

Roles: the `sender` sends the stanza under test to the `recipient`, on the node of the
other version or on the same node; the `departed` user was on the node that left the
cluster. Nodes are "old" (the version you run) and "new" (the version you move to); the
profile's [cluster] table says which node of the target is which.

A stanza's fate is one of three: `delivered` (it reached the recipient), `bounced` (an
error came back to the sender) or `lost` (neither, within the observing window). Every
judge returns problems that name the profile key they come from.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field

from clients.inbox import STREAM_NS, Predicate, local_name, namespace
from harness.judges import bare, error_condition, listing, status_of
from harness.profiles import Profile, ProfileError, read_table

AREA = "cluster"
FATES = ("delivered", "lost", "bounced")
LISTINGS = ("cluster-wide", "per-node")
KINDS = ("chat", "iq", "presence")
DIRECTIONS = ("old_to_new", "new_to_old")
SIDES = ("old", "new")
STREAM_ERRORS_NS = "urn:ietf:params:xml:ns:xmpp-streams"
SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl"

FATE_MEANS = {
    "delivered": "delivered to the recipient",
    "lost": "lost: nothing at the recipient and no error to the sender",
    "bounced": "bounced: an error back to the sender and nothing at the recipient",
}


@dataclass(frozen=True)
class ClusterExpect:
    old_node: int
    new_node: int
    old_version: str
    new_version: str
    joined: bool
    chat_old_to_new: str
    chat_new_to_old: str
    iq_old_to_new: str
    iq_new_to_old: str
    presence_old_to_new: str
    presence_new_to_old: str
    sessions_listed: str
    same_node: str
    leave_splits: bool
    leave_stream_error: str
    after_leave: str
    after_leave_error: str
    departed_node_keeps_accounts: bool

    @classmethod
    def of(cls, profile: Profile) -> ClusterExpect:
        values = read_table(cls, profile, AREA)
        built = cls(**values)
        built._validate()
        return built

    def _validate(self) -> None:
        fates = {f"{k}_{d}": self.fate(k, d) for k in KINDS for d in DIRECTIONS}
        fates.update(same_node=self.same_node, after_leave=self.after_leave)
        for key, value in fates.items():
            if value not in FATES:
                raise ProfileError(f"[cluster] {key} = {value!r} must be one of {FATES}")
        if self.sessions_listed not in LISTINGS:
            raise ProfileError(f"[cluster] sessions_listed must be one of {LISTINGS}")
        if self.old_node == self.new_node or min(self.old_node, self.new_node) < 0:
            raise ProfileError("[cluster] old_node and new_node must be two different indexes")

    def check_nodes(self, count: int, target: str) -> ClusterExpect:
        """The expectation, once its node indexes are known to exist on the target."""
        if max(self.old_node, self.new_node) >= count:
            raise ProfileError(
                f"[cluster] old_node = {self.old_node}, new_node = {self.new_node}: target "
                f"{target} has {count} node(s)"
            )
        return self

    def fate(self, kind: str, direction: str) -> str:
        """The expected fate of a stanza of `kind` ("chat", ...) going `direction`."""
        value: str = getattr(self, f"{kind}_{direction}")
        return value

    def node(self, side: str) -> int:
        """The target's node index of "old" or "new"."""
        return self.old_node if side == "old" else self.new_node

    def version(self, side: str) -> str:
        return self.old_version if side == "old" else self.new_version

    def label(self, side: str) -> str:
        """How the report names a node: "the 6.0.0 node"."""
        return f"the {self.version(side)} node"


# -- stanzas on their way ----------------------------------------------------------------


@dataclass(frozen=True)
class Routed:
    """One stanza sent from one session to another, and what both received afterwards.

    `marker` identifies the stanza: the id of a chat or an IQ, the <status/> text of a
    presence ("" matches any available presence of the sender).
    """

    kind: str
    sender: str
    to: str
    marker: str
    at_recipient: list[ET.Element] = field(default_factory=list)
    at_sender: list[ET.Element] = field(default_factory=list)

    def describe(self) -> str:
        what = {"chat": "chat", "iq": "IQ", "presence": "presence"}[self.kind]
        tag = f" {self.marker!r}" if self.marker else ""
        return f"{what}{tag} from {self.sender} to {self.to}"


def is_arrival(kind: str, sender: str, marker: str) -> Predicate:
    """The stanza itself, as the recipient would receive it."""

    def predicate(element: ET.Element) -> bool:
        name = local_name(element)
        type_ = element.get("type", "")
        if kind == "chat":
            return name == "message" and element.get("id") == marker and type_ != "error"
        if kind == "iq":
            return name == "iq" and element.get("id") == marker and type_ in ("get", "set")
        if name != "presence" or type_ != "" or element.get("from") != sender:
            return False
        return not marker or status_of(element) == marker

    return predicate


def is_bounce(kind: str, to: str, marker: str) -> Predicate:
    """An error about the stanza, as the sender would receive it."""
    wanted = {"chat": "message", "iq": "iq", "presence": "presence"}[kind]

    def predicate(element: ET.Element) -> bool:
        if local_name(element) != wanted or element.get("type") != "error":
            return False
        if kind == "presence":
            return bare(element.get("from", "")) == bare(to)
        return element.get("id") == marker

    return predicate


def arrivals(routed: Routed) -> list[ET.Element]:
    check = is_arrival(routed.kind, routed.sender, routed.marker)
    return [e for e in routed.at_recipient if check(e)]


def bounces(routed: Routed) -> list[ET.Element]:
    check = is_bounce(routed.kind, routed.to, routed.marker)
    return [e for e in routed.at_sender if check(e)]


def fate_of(routed: Routed) -> str:
    if arrivals(routed):
        return "delivered"
    return "bounced" if bounces(routed) else "lost"


def judge_routing(expected: str, key: str, routed: Routed) -> list[str]:
    """The stanza met the fate the profile key gives it."""
    got = fate_of(routed)
    if got == expected:
        return []
    return [
        f"{key} = {expected!r}: expected the {routed.describe()} to be {FATE_MEANS[expected]}; "
        f"it was {got}. The recipient received {listing(routed.at_recipient)}; the sender "
        f"received {listing(routed.at_sender)}"
    ]


def judge_cross_version(want: ClusterExpect, direction: str, routed: Routed) -> list[str]:
    """A stanza between users on the nodes of the two versions (doc: "Rolling upgrade
    issues")."""
    key = f"{routed.kind}_{direction}"
    return judge_routing(want.fate(routed.kind, direction), key, routed)


def judge_same_node(want: ClusterExpect, routed: Iterable[Routed]) -> list[str]:
    """The control: stanzas between users of one node of the mixed cluster."""
    return [p for r in routed for p in judge_routing(want.same_node, "same_node", r)]


def judge_after_leave(want: ClusterExpect, routed: Routed) -> list[str]:
    """A chat to a user of the node that left: bounced with the profile's condition."""
    problems = judge_routing(want.after_leave, "after_leave", routed)
    bounced = bounces(routed)
    if problems or want.after_leave != "bounced" or not bounced:
        return problems
    condition = error_condition(bounced[0])
    if condition != want.after_leave_error:
        return [
            f"after_leave_error = {want.after_leave_error!r}: expected the bounce of the "
            f"{routed.describe()} to carry <{want.after_leave_error}/>, got "
            f"{listing(bounced[:1])}"
        ]
    return []


# -- who is in the cluster ----------------------------------------------------------------


def judge_joined(want: ClusterExpect, running: dict[str, list[str]]) -> list[str]:
    """After start-up the nodes form one cluster (or, if the profile says so, do not)."""
    return _membership("joined", want.joined, want.joined, running)


def judge_split(want: ClusterExpect, running: dict[str, list[str]]) -> list[str]:
    """After `leave_cluster` each node runs on its own (or, if not, still together)."""
    return _membership("leave_splits", want.leave_splits, not want.leave_splits, running)


def one_cluster(running: dict[str, list[str]]) -> bool:
    """`running` maps each node, as the report names it, to the Mnesia nodes it lists as
    running: every node lists all of them."""
    everyone = sorted({name for names in running.values() for name in names})
    return len(everyone) == len(running) and all(
        sorted(names) == everyone for names in running.values()
    )


def each_alone(running: dict[str, list[str]]) -> bool:
    """Every node lists only itself, and no two nodes the same one."""
    everyone = {name for names in running.values() for name in names}
    return len(everyone) == len(running) and all(len(names) == 1 for names in running.values())


def _membership(key: str, value: bool, whole: bool, running: dict[str, list[str]]) -> list[str]:
    if whole and not one_cluster(running):
        wanted = f"each of the {len(running)} nodes to list all {len(running)} as running"
    elif not whole and not each_alone(running):
        wanted = "each node to list only itself as running"
    else:
        return []
    shown = "; ".join(f"{label} lists {names}" for label, names in running.items())
    return [f"{key} = {str(value).lower()}: expected {wanted} (Mnesia); {shown}"]


def judge_sessions(
    want: ClusterExpect, logged_in: dict[str, str], listed: dict[str, list[str]], moment: str
) -> list[str]:
    """`logged_in` maps each full JID of the test to the node it logged in on; `listed`
    maps each node to the full JIDs its session list shows (others' sessions included)."""
    problems = []
    for node, users in listed.items():
        ours = [jid for jid in users if jid in logged_in]
        if want.sessions_listed == "cluster-wide":
            should = sorted(logged_in)
        else:
            should = sorted(jid for jid, where in logged_in.items() if where == node)
        if sorted(ours) != should:
            problems.append(
                f"sessions_listed = {want.sessions_listed!r}: {moment}, {node} should list "
                f"{should or 'none of the test sessions'}; it lists "
                f"{sorted(ours) or 'none of them'}"
            )
    return problems


# -- the split step -----------------------------------------------------------------------


def stream_error_condition(element: ET.Element) -> str:
    """The condition of a <stream:error/> (`system-shutdown`), or "" for anything else."""
    if local_name(element) != "error" or namespace(element) != STREAM_NS:
        return ""
    for child in element:
        if namespace(child) == STREAM_ERRORS_NS and local_name(child) != "text":
            return local_name(child)
    return ""


def judge_leave_notice(want: ClusterExpect, at_departed: list[ET.Element]) -> list[str]:
    """What the users of the departing node receive when it leaves the cluster."""
    conditions = [c for c in map(stream_error_condition, at_departed) if c]
    key = f"leave_stream_error = {want.leave_stream_error!r}"
    if want.leave_stream_error and want.leave_stream_error not in conditions:
        return [
            f"{key}: expected <stream:error><{want.leave_stream_error}/></stream:error> at "
            f"the departed node's user, got {listing(at_departed)}"
        ]
    if not want.leave_stream_error and conditions:
        return [f"{key}: expected no stream error, got {listing(at_departed)}"]
    return []


def judge_departed_accounts(want: ClusterExpect, sasl_answer: ET.Element) -> list[str]:
    """A user registered before the leave logs in again on the departed node."""
    kept = local_name(sasl_answer) == "success" and namespace(sasl_answer) == SASL_NS
    if kept == want.departed_node_keeps_accounts:
        return []
    wanted = "<success/>" if want.departed_node_keeps_accounts else "<failure/>"
    return [
        f"departed_node_keeps_accounts = {str(want.departed_node_keeps_accounts).lower()}: "
        f"expected SASL {wanted} for a user registered before the leave, got "
        f"{listing([sasl_answer])}"
    ]


# -- the report's summary -----------------------------------------------------------------


@dataclass
class Tally:
    """Stanzas sent between the two versions in one run, per profile key."""

    sent: dict[str, int] = field(default_factory=dict)
    arrived: dict[str, int] = field(default_factory=dict)

    def add(self, direction: str, routed: Routed) -> None:
        key = f"{routed.kind}_{direction}"
        self.sent[key] = self.sent.get(key, 0) + 1
        self.arrived[key] = self.arrived.get(key, 0) + (fate_of(routed) == "delivered")

    @property
    def total_sent(self) -> int:
        return sum(self.sent.values())

    @property
    def total_arrived(self) -> int:
        return sum(self.arrived.values())

    def summary(self, want: ClusterExpect) -> str:
        """The report's line: "cross-version routing: 6 stanzas sent ..., 0 arrived"."""
        parts = ", ".join(f"{key} {self.arrived[key]}/{self.sent[key]}" for key in self.sent)
        return (
            f"cross-version routing: {self.total_sent} stanzas sent between users on "
            f"{want.label('old')} and {want.label('new')}, {self.total_arrived} arrived "
            f"(arrived/sent: {parts})"
        )


def judge_tally(want: ClusterExpect, tally: Tally) -> list[str]:
    """Every stanza sent across versions arrived exactly where the profile says it does."""
    problems = []
    for key, sent in tally.sent.items():
        kind, direction = key.split("_", 1)
        expected = want.fate(kind, direction)
        should = sent if expected == "delivered" else 0
        if tally.arrived[key] != should:
            problems.append(
                f"{key} = {expected!r}: {sent} sent across versions, {tally.arrived[key]} "
                f"arrived; expected {should} to arrive"
            )
    return problems
