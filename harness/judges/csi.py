"""Client State Indication (XEP-0352, `urn:xmpp:csi:0`): expectations and judges.

Roles: `owner` is the client that tells the server it is inactive; `alice` and `carol`
send it stanzas meanwhile. What a server does with a stanza for an inactive client is
stated per stanza kind in the profile's [csi] table:

    held            kept back until <active/>, a flush or a buffer overflow
    delivered       sent at once; what is held stays held
    flushes         sent at once, after everything held (in the order it was held)
    flushes_sender  sent at once, after what is held from the same sender (bare JID)
    not_routed      never reaches the client, inactive or not

The judge of a timeline replays the steps of a check through that model (`plan`) and
compares the step after which each stanza should arrive with the one after which it
did. Every problem names the profile keys that decided the expectation.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from clients.inbox import STREAM_NS, Predicate, local_name, namespace
from harness.judges import DELAY_NS, bare, error_condition, listing, status_of
from harness.profiles import Profile, ProfileError, read_table

AREA = "csi"
CSI_NS = "urn:xmpp:csi:0"
SM_NS = "urn:xmpp:sm:3"

KINDS = ("presence", "chat", "chat_state", "iq")
HOLD = ("held", "delivered", "flushes", "flushes_sender", "not_routed")
DELAY_FROM = ("none", "user", "domain")
SECOND_INACTIVE = ("keeps", "flushes")
SM_ACK = ("answered", "no_sm")
UNKNOWN_ELEMENT = ("ignored", "error_reply", "stream_error")
# The element each kind is sent as.
ELEMENT = {"presence": "presence", "chat": "message", "chat_state": "message", "iq": "iq"}


@dataclass(frozen=True)
class CsiExpect:
    advertised_pre_auth: bool
    advertised_post_auth: bool
    hold_presence: str
    hold_chat: str
    hold_chat_state: str
    hold_iq: str
    held_latest_only: tuple[str, ...]
    held_delay_from: str
    buffer_max: int
    stays_inactive_after_flush: bool
    second_inactive: str
    sm_ack_while_inactive: str
    unknown_element: str

    @classmethod
    def of(cls, profile: Profile) -> CsiExpect:
        values = read_table(cls, profile, AREA)
        values["held_latest_only"] = tuple(values["held_latest_only"])
        built = cls(**values)
        built._validate()
        return built

    def _validate(self) -> None:
        choices: list[tuple[str, tuple[str, ...]]] = [
            *((f"hold_{kind}", HOLD) for kind in KINDS),
            ("held_delay_from", DELAY_FROM),
            ("second_inactive", SECOND_INACTIVE),
            ("sm_ack_while_inactive", SM_ACK),
            ("unknown_element", UNKNOWN_ELEMENT),
        ]
        for key, allowed in choices:
            if getattr(self, key) not in allowed:
                raise ProfileError(f"[csi] {key} must be one of {allowed}")
        unknown = [k for k in self.held_latest_only if k not in KINDS]
        if unknown:
            raise ProfileError(f"[csi] held_latest_only: unknown kinds {unknown}; known {KINDS}")
        if self.buffer_max < 0:
            raise ProfileError("[csi] buffer_max must be 0 (not checked) or a positive size")

    def hold(self, kind: str) -> str:
        value: str = getattr(self, f"hold_{kind}")
        return value

    def show(self, keys: Iterable[str]) -> str:
        """`key = value` for each key, as the profile states it."""
        shown = []
        for key in keys:
            value = getattr(self, key)
            if isinstance(value, bool):
                shown.append(f"{key} = {str(value).lower()}")
            else:
                shown.append(f"{key} = {list(value) if isinstance(value, tuple) else value!r}")
        return ", ".join(shown)


# -- the timeline of a check --------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One act of a check: a CSI element from the owner, or a stanza sent to the owner."""

    act: str  # "inactive", "active", "ack_request" (SM <r/>), or a kind from KINDS
    label: str = ""  # the stanza's id, as problems name it
    sender: str = ""  # the full JID of the stanza's sender
    found: Predicate | None = None  # recognises the stanza in what the owner received

    @property
    def is_stanza(self) -> bool:
        return self.act in KINDS

    def describe(self) -> str:
        if self.act == "ack_request":
            return "<r/>"
        if not self.is_stanza:
            return f"<{self.act}/>"
        return f"{self.act.replace('_', ' ')} {self.label!r} from {self.sender}"

    def recognises(self, element: ET.Element) -> bool:
        return self.found is not None and self.found(element)


def stanza_step(kind: str, label: str, sender: str) -> Step:
    """A stanza of `kind` from `sender`, recognised by its element, sender and id (a
    presence also by its <status>, which a server keeps when it rewrites the stanza)."""
    if kind not in KINDS:
        raise ValueError(f"unknown stanza kind {kind!r}; known {KINDS}")
    element = ELEMENT[kind]

    def found(e: ET.Element) -> bool:
        if local_name(e) != element or e.get("from") != sender:
            return False
        return e.get("id") == label or (kind == "presence" and status_of(e) == label)

    return Step(kind, label, sender, found)


def csi_step(state: str) -> Step:
    if state not in ("inactive", "active"):
        raise ValueError(f"a CSI step is 'inactive' or 'active', not {state!r}")
    return Step(state)


def ack_request_step() -> Step:
    """An SM `<r/>` from the owner. The model gives it no effect on held stanzas: the
    checks send it with nothing held, where the profiles make no claim about it."""
    return Step("ack_request")


@dataclass
class Timeline:
    """What the owner received after each step, up to the next one (the last: to the end)."""

    owner: str
    steps: list[Step]
    after: list[list[ET.Element]]
    closed: str = ""  # why the owner's stream closed during the check, or ""

    def __post_init__(self) -> None:
        if len(self.after) != len(self.steps):
            raise ValueError(f"{len(self.steps)} steps but {len(self.after)} observations")


@dataclass
class Fate:
    """Where a stanza of a timeline should end up, and which profile keys say so."""

    step: int | None  # the step after which it arrives; None: it never arrives
    keys: list[str]
    why: str
    held: bool = False  # it waited in the buffer before it arrived
    order: int = 0  # its place among everything that arrives


@dataclass
class _Model:
    """The profile's model of one inactive session, run over the steps of a check."""

    want: CsiExpect
    steps: list[Step]
    fates: dict[int, Fate] = field(default_factory=dict)
    buffer: list[int] = field(default_factory=list)
    keys_of: dict[int, list[str]] = field(default_factory=dict)
    inactive: bool = False
    flushed_before: bool = False
    order: int = 0

    def run(self) -> dict[int, Fate]:
        for index, step in enumerate(self.steps):
            if step.act == "inactive":
                self._inactive(index)
            elif step.act == "active":
                self._release(self.buffer, index, [], "held until <active/>")
                self.inactive = False
                self.flushed_before = False
            elif step.act == "ack_request":
                continue
            else:
                self._stanza(index, step)
        for index in self.buffer:
            self.fates[index] = Fate(None, self.keys_of[index], "still held at the end", True)
        return self.fates

    def _inactive(self, index: int) -> None:
        if self.inactive and self.buffer:
            if self.want.second_inactive == "flushes":
                self._release(self.buffer, index, ["second_inactive"], "flushed by <inactive/>")
            else:
                self._stay_held(self.buffer, "second_inactive")
        self.inactive = True

    def _stanza(self, index: int, step: Step) -> None:
        key = f"hold_{step.act}"
        hold = self.want.hold(step.act)
        if hold == "not_routed":
            self.fates[index] = Fate(None, [key], "never routed to the client")
            return
        keys = [key, "stays_inactive_after_flush"] if self.flushed_before else [key]
        if not self.inactive:
            self._at_once(index, keys, "at once, the client being active")
            return
        if hold == "delivered":
            self._stay_held(self.buffer, key)
            self._at_once(index, keys, "at once")
        elif hold == "flushes":
            self._flush(self.buffer, index, keys, "flushed by")
        elif hold == "flushes_sender":
            same = [i for i in self.buffer if bare(self.steps[i].sender) == bare(step.sender)]
            self._stay_held([i for i in self.buffer if i not in same], key)
            self._flush(same, index, keys, "flushed by the same sender's")
        else:
            self._hold(index, step, keys)

    def _stay_held(self, held: list[int], key: str) -> None:
        """Stanzas that stay held past a stanza that could have flushed them: the key
        that says it does not joins theirs."""
        for index in held:
            if key not in self.keys_of[index]:
                self.keys_of[index].append(key)

    def _hold(self, index: int, step: Step, keys: list[str]) -> None:
        older = [
            i
            for i in self.buffer
            if self.steps[i].act == step.act and self.steps[i].sender == step.sender
        ]
        if step.act not in self.want.held_latest_only:
            self._stay_held(older, "held_latest_only")
        else:
            for replaced in older:
                self.buffer.remove(replaced)
                self.fates[replaced] = Fate(
                    None,
                    [*self.keys_of[replaced], "held_latest_only"],
                    f"replaced by the newer {step.describe()}",
                    True,
                )
        self.buffer.append(index)
        self.keys_of[index] = keys
        if 0 < self.want.buffer_max < len(self.buffer):
            self._flush(self.buffer, index, ["buffer_max"], "flushed by the overflow at")

    def _flush(self, held: list[int], index: int, keys: list[str], why: str) -> None:
        self._release(held, index, keys, f"{why} {self.steps[index].describe()}")
        own = self.keys_of.pop(index, [])
        self._at_once(index, list(dict.fromkeys([*own, *keys])), "at once, with the flush")
        if not self.want.stays_inactive_after_flush:
            self.inactive = False
        self.flushed_before = True

    def _release(self, held: list[int], index: int, keys: list[str], why: str) -> None:
        for released in list(held):
            if released == index:
                continue
            self.fates[released] = Fate(
                index, [*self.keys_of.pop(released), *keys], why, True, self._next()
            )
            self.buffer.remove(released)
        if index in self.buffer:
            self.buffer.remove(index)

    def _at_once(self, index: int, keys: list[str], why: str) -> None:
        self.fates[index] = Fate(index, keys, why, False, self._next())

    def _next(self) -> int:
        self.order += 1
        return self.order


def plan(want: CsiExpect, steps: list[Step]) -> dict[int, Fate]:
    """The fate of each stanza step (by index) under the profile's model."""
    return _Model(want, steps).run()


def arrivals_at(fates: dict[int, Fate], step: int) -> list[int]:
    """The stanza steps that should arrive right after `step`, in their expected order."""
    due = [i for i, fate in fates.items() if fate.step == step]
    return sorted(due, key=lambda i: fates[i].order)


def judge_timeline(want: CsiExpect, seen: Timeline) -> list[str]:
    """Each stanza arrived after the step the profile's model says, in order, and a held
    one carries the <delay/> the profile states."""
    fates = plan(want, seen.steps)
    arrived = _where_arrived(seen)
    problems: list[str] = []
    for index, fate in sorted(fates.items()):
        where = arrived.get(index)
        if (where[0] if where else None) != fate.step:
            problems.append(_misplaced(want, seen, index, fate, where))
        elif where is not None and fate.held:
            problems += _delay_problems(want, seen, index, where[1])
    problems += _order_problems(want, seen, fates, arrived)
    return problems


def _where_arrived(seen: Timeline) -> dict[int, tuple[int, ET.Element]]:
    arrived: dict[int, tuple[int, ET.Element]] = {}
    for index, step in enumerate(seen.steps):
        if not step.is_stanza:
            continue
        for after, elements in enumerate(seen.after):
            hit = next((e for e in elements if step.recognises(e)), None)
            if hit is not None:
                arrived[index] = (after, hit)
                break
    return arrived


def _misplaced(
    want: CsiExpect,
    seen: Timeline,
    index: int,
    fate: Fate,
    where: tuple[int, ET.Element] | None,
) -> str:
    step = seen.steps[index]
    if fate.step is None:
        expected = f"expected {step.describe()} never to arrive ({fate.why})"
    else:
        expected = (
            f"expected {step.describe()} right after step {fate.step + 1} "
            f"{seen.steps[fate.step].describe()} ({fate.why})"
        )
    if where is None:
        got = "it never arrived"
    else:
        got = f"it arrived right after step {where[0] + 1} {seen.steps[where[0]].describe()}"
    context = ""
    if fate.step is not None:
        context = f"; right after step {fate.step + 1} came {listing(seen.after[fate.step])}"
    if seen.closed:
        context += f"; the stream closed: {seen.closed}"
    return f"{want.show(fate.keys)}: {expected}, but {got}{context}"


def _delay_problems(want: CsiExpect, seen: Timeline, index: int, element: ET.Element) -> list[str]:
    delay = element.find(f"{{{DELAY_NS}}}delay")
    key = want.show(["held_delay_from"])
    what = seen.steps[index].describe()
    if want.held_delay_from == "none":
        if delay is not None:
            return [f"{key}: the held {what} arrived with a <delay/>: {listing([element])}"]
        return []
    wanted = bare(seen.owner) if want.held_delay_from == "user" else seen.owner.split("@")[-1]
    wanted = wanted.split("/")[0]
    if delay is None or delay.get("from") != wanted:
        return [
            f"{key}: expected the held {what} with <delay from='{wanted}'/>, got "
            f"{listing([element])}"
        ]
    return []


def _order_problems(
    want: CsiExpect,
    seen: Timeline,
    fates: dict[int, Fate],
    arrived: dict[int, tuple[int, ET.Element]],
) -> list[str]:
    problems = []
    for after in range(len(seen.steps)):
        due = arrivals_at(fates, after)
        if len(due) < 2 or any(arrived.get(i, (None,))[0] != after for i in due):
            continue
        elements = seen.after[after]
        got = sorted(due, key=lambda i: elements.index(arrived[i][1]))
        if got != due:
            keys = sorted({k for i in due for k in fates[i].keys})
            problems.append(
                f"{want.show(keys)}: expected right after step {after + 1} "
                f"{seen.steps[after].describe()} the order "
                f"{[seen.steps[i].label for i in due]}, got "
                f"{[seen.steps[i].label for i in got]}"
            )
    return problems


# -- stream features -----------------------------------------------------------------------


def offers_csi(features: ET.Element | None) -> bool:
    return features is not None and features.find(f"{{{CSI_NS}}}csi") is not None


def judge_feature(want: CsiExpect, features: ET.Element | None, when: str) -> list[str]:
    """`<csi xmlns='urn:xmpp:csi:0'/>` in the features before or after auth (XEP-0352 2)."""
    if when not in ("pre_auth", "post_auth"):
        raise ValueError(f"when is 'pre_auth' or 'post_auth', not {when!r}")
    key = f"advertised_{when}"
    wanted: bool = getattr(want, key)
    shown = listing([features]) if features is not None else "no <stream:features>"
    stage = when.replace("_", "-")
    if wanted and not offers_csi(features):
        return [
            f"{key} = true: expected <csi xmlns='{CSI_NS}'/> in the {stage} features, got {shown}"
        ]
    if not wanted and offers_csi(features):
        return [f"{key} = false: the {stage} features offer CSI: {shown}"]
    return []


# -- stream management acks while inactive ------------------------------------------------


@dataclass
class AckSeen:
    """A client with SM went inactive and asked for an ack (an "ack_request" step of the
    timeline), with nothing held; a held stanza followed, then <active/>."""

    features: ET.Element | None  # the post-auth features
    enabled: list[ET.Element]  # what answered <enable/>
    timeline: Timeline | None  # None where the profile states there is no SM


def judge_sm_ack(want: CsiExpect, seen: AckSeen) -> list[str]:
    """SM `<r/>` is answered with `<a/>` while inactive (acks bypass the CSI buffer), and
    the session is still inactive afterwards (the timeline judge)."""
    key = want.show(["sm_ack_while_inactive"])
    offered = seen.features is not None and seen.features.find(f"{{{SM_NS}}}sm") is not None
    if want.sm_ack_while_inactive == "no_sm":
        if offered and seen.features is not None:
            return [f"{key}: the post-auth features offer SM: {listing([seen.features])}"]
        return []
    timeline = seen.timeline
    if timeline is None:
        return [f"{key}: no inactive session with SM was observed"]
    closed = f"; the stream closed: {timeline.closed}" if timeline.closed else ""
    if not any(_is_sm(e, "enabled") for e in seen.enabled):
        return [f"{key}: expected <enabled/> to <enable/>, got {listing(seen.enabled)}{closed}"]
    asked = [i for i, step in enumerate(timeline.steps) if step.act == "ack_request"]
    problems = []
    for index in asked:
        if not any(_is_sm(e, "a") for e in timeline.after[index]):
            problems.append(
                f"{key}: expected <a xmlns='{SM_NS}'/> right after step {index + 1} <r/> "
                f"while inactive, got {listing(timeline.after[index])}{closed}"
            )
    return problems + judge_timeline(want, timeline)


def _is_sm(element: ET.Element, name: str) -> bool:
    return element.tag == f"{{{SM_NS}}}{name}"


# -- unknown CSI elements -----------------------------------------------------------------


@dataclass
class UnknownSeen:
    """The owner sent `<invalid xmlns='urn:xmpp:csi:0'/>`: what came back."""

    owner: str
    answer: list[ET.Element]  # what arrived after it, before the liveness probe
    alive: bool  # the stream still answered a request afterwards
    closed: str = ""
    # Whether the stream still answered a request after the client's <active/>, sent just
    # before; None where that was not tried (the recordings start in session).
    accepted_active: bool | None = None


def judge_unknown_element(want: CsiExpect, seen: UnknownSeen) -> list[str]:
    """An unknown element in the CSI namespace: ignored, answered with an error, or a
    stream error, as the profile states."""
    key = want.show(["unknown_element"])
    checks: dict[str, Callable[[UnknownSeen], str]] = {
        "ignored": _ignored,
        "error_reply": _error_reply,
        "stream_error": _stream_error,
    }
    if seen.accepted_active is False:
        return [
            f"{key}: the stream did not take <active xmlns='{CSI_NS}'/> before the unknown "
            f"element, so the unknown element was not tried ({_why_dead(seen)})"
        ]
    problem = checks[want.unknown_element](seen)
    return [f"{key}: {problem}"] if problem else []


def _ignored(seen: UnknownSeen) -> str:
    if seen.answer:
        return f"expected no answer, got {listing(seen.answer)}"
    if not seen.alive:
        return f"expected the stream to stay open and answer; it did not ({_why_dead(seen)})"
    return ""


def _error_reply(seen: UnknownSeen) -> str:
    replies = [e for e in seen.answer if e.tag == f"{{{CSI_NS}}}invalid"]
    shape = (
        f"expected <invalid xmlns='{CSI_NS}' type='error' from='{seen.owner}' "
        f"to='{bare(seen.owner)}'> with <error code='400' type='modify'><bad-request/>"
    )
    if not replies:
        return f"{shape}, got {listing(seen.answer)}"
    reply = replies[0]
    error = next((c for c in reply if local_name(c) == "error"), None)
    if (
        reply.get("type") != "error"
        or reply.get("from") != seen.owner
        or reply.get("to") != bare(seen.owner)
        or error is None
        or error.get("type") != "modify"
        or error.get("code") != "400"
        or error_condition(reply) != "bad-request"
    ):
        return f"{shape}, got {listing([reply])}"
    if not seen.alive:
        return f"expected the stream to stay open after the error reply ({_why_dead(seen)})"
    return ""


def _stream_error(seen: UnknownSeen) -> str:
    errors = [e for e in seen.answer if local_name(e) == "error" and namespace(e) == STREAM_NS]
    if not errors or not seen.closed:
        return (
            f"expected a stream error and the stream closed, got {listing(seen.answer)}"
            f"{'' if seen.closed else ' and the stream stayed open'}"
        )
    return ""


def _why_dead(seen: UnknownSeen) -> str:
    return f"closed: {seen.closed}" if seen.closed else "no answer to a request"
