"""Stream management (XEP-0198, urn:xmpp:sm:3): expectations and judges.

Each judge takes the typed [stream_management] expectation and what a client received
after one act (an `Exchange`), or what a watching contact received after a drop (a
`Watch`), and returns problems that name the profile key they break. The same judges read
live runs and recordings of real MongooseIM servers.

`available = false` (the module is off) overrides the other keys, which describe the
module when it is present; what `<enable/>` gets then is `disabled_enable_answer`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from clients.inbox import STREAM_NS, local_name, namespace
from harness.judges import DELAY_NS, STANZAS_NS, bare, listing
from harness.profiles import Profile, ProfileError, read_table

AREA = "stream_management"
SM_NS = "urn:xmpp:sm:3"
STREAMS_NS = "urn:ietf:params:xml:ns:xmpp-streams"
ACK_REQUESTS = ("per_stanza", "one_outstanding")
REFUSALS = ("stream-error", "failed")
DELAY_FROM = ("domain", "user")
OLD_CONNECTION = ("conflict", "closed")
# A server that does not hold a dropped session tells contacts at once; one that holds
# it says nothing for resume_timeout. Within this many seconds the two differ.
DROP_NOTICE = 2.0
# How far before resume_timeout an expiry may be reported (timers are not exact).
EXPIRY_SLACK = 1.0


@dataclass(frozen=True)
class SMExpect:
    available: bool
    advertised_before_auth: bool
    enabled_attributes: list[str]
    enabled_resume_attributes: list[str]
    ack_requests: str
    missing_h_answer: str
    missing_h_condition: str
    missing_h_text: str
    too_high_h_answer: str
    too_high_h_condition: str
    too_high_h_text: str
    too_high_h_reports_counts: bool
    redelivery_delay_from: str
    redelivery_delay_text: str
    resume_old_connection: str
    unknown_previd_condition: str
    resume_after_bind_condition: str
    enable_twice_condition: str
    enable_twice_ends_stream: bool
    enable_before_auth_condition: str
    enable_before_bind_condition: str
    resume_timeout: int
    unavailable_when_hold_expires: bool
    hold_without_resume: bool
    disabled_enable_answer: str
    disabled_enable_ends_stream: bool

    @classmethod
    def of(cls, profile: Profile) -> SMExpect:
        values = read_table(cls, profile, AREA)
        built = cls(**values)
        built._validate()
        return built

    def _validate(self) -> None:
        choices = {
            "ack_requests": ACK_REQUESTS,
            "missing_h_answer": REFUSALS,
            "too_high_h_answer": REFUSALS,
            "redelivery_delay_from": DELAY_FROM,
            "resume_old_connection": OLD_CONNECTION,
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ProfileError(f"[{AREA}] {key} must be one of {allowed}")
        for key in ("enabled_attributes", "enabled_resume_attributes"):
            if not all(isinstance(a, str) for a in getattr(self, key)):
                raise ProfileError(f"[{AREA}] {key} must be a list of attribute names")
        if self.resume_timeout <= 0:
            raise ProfileError(f"[{AREA}] resume_timeout must be a positive number of seconds")


@dataclass
class Exchange:
    """What one client received after one act, and what became of its stream.

    `ended`: the server sent </stream:stream> (judged on the bytes: 6.1.0 may keep TCP
    open after it). `closed`: the server closed TCP. `usable`: a later request on the same
    stream was answered (None when the test did not try).
    """

    received: list[ET.Element] = field(default_factory=list)
    ended: bool = False
    closed: bool = False
    usable: bool | None = None


@dataclass
class Watch:
    """What a contact received after a session was dropped: (seconds since the drop,
    element) pairs, and the full JID of the dropped session."""

    held: str
    arrivals: list[tuple[float, ET.Element]] = field(default_factory=list)

    def unavailable(self) -> list[tuple[float, ET.Element]]:
        return [
            (at, e)
            for at, e in self.arrivals
            if local_name(e) == "presence"
            and e.get("from") == self.held
            and e.get("type") == "unavailable"
        ]


# -- features -------------------------------------------------------------------------------


def judge_features(
    want: SMExpect, before_auth: ET.Element | None, after_auth: ET.Element | None
) -> list[str]:
    """<sm xmlns='urn:xmpp:sm:3'/> among the stream features (XEP-0198 section 2); a list
    that was not observed is None and not judged."""
    problems = []
    for stage, features, wanted in (
        ("before auth", before_auth, want.available and want.advertised_before_auth),
        ("after auth", after_auth, want.available),
    ):
        if features is None:
            continue
        offered = features.find(f"{{{SM_NS}}}sm") is not None
        key = (
            "available"
            if not want.available or stage == "after auth"
            else "advertised_before_auth"
        )
        value = "true" if getattr(want, key) else "false"
        if offered != wanted:
            verb = "expected" if wanted else "expected no"
            problems.append(
                f"{key} = {value}: {verb} <sm xmlns='{SM_NS}'/> in the features {stage}, "
                f"got {listing([features])}"
            )
    return problems


# -- enable ---------------------------------------------------------------------------------


def judge_enable(want: SMExpect, resume: bool, seen: Exchange) -> list[str]:
    """<enable/> after bind: <enabled/> with the profile's attributes (XEP-0198 section
    3), or, with the module off, the profile's refusal."""
    if not want.available:
        return judge_disabled_enable(want, seen)
    enabled = _sm(seen.received, "enabled")
    if not enabled:
        return [
            f"available = true: expected <enabled xmlns='{SM_NS}'/> in answer to <enable/>, "
            f"got {listing(seen.received)}{_fate(seen)}"
        ]
    key = "enabled_resume_attributes" if resume else "enabled_attributes"
    wanted = sorted(getattr(want, key))
    got = sorted(enabled[0].attrib)
    problems = []
    if got != wanted:
        problems.append(f"{key} = {wanted}: got {got} on {listing(enabled[:1])}")
    if resume and not enabled[0].get("id"):
        problems.append(f"{key}: <enabled/> after resume='true' has no id: {listing(enabled)}")
    if resume and "resume" in wanted and enabled[0].get("resume") not in ("true", "1"):
        problems.append(f"{key}: expected resume='true' on {listing(enabled[:1])}")
    return problems


def judge_disabled_enable(want: SMExpect, seen: Exchange) -> list[str]:
    """With the module off: `disabled_enable_answer` is "none" (no reply; the stream
    stays usable) or the condition of the <failed/> or stream error sent instead."""
    answer = want.disabled_enable_answer
    key = f"available = false, disabled_enable_answer = {answer!r}"
    sm = [e for e in seen.received if namespace(e) == SM_NS]
    if any(local_name(e) == "enabled" for e in sm):
        return [f"{key}: expected <enable/> refused, got {listing(sm)}"]
    problems = []
    if answer == "none":
        if sm or _stream_errors(seen.received):
            problems.append(f"{key}: expected no answer, got {listing(seen.received)}")
    elif answer not in _conditions(seen.received):
        problems.append(
            f"{key}: expected <failed/> or a stream error with <{answer}/>, got "
            f"{listing(seen.received)}{_fate(seen)}"
        )
    problems += _stream_fate("disabled_enable_ends_stream", want.disabled_enable_ends_stream, seen)
    return problems


def judge_enable_twice(want: SMExpect, seen: Exchange) -> list[str]:
    """A second <enable/> on the same stream (XEP-0198 section 3: unexpected-request)."""
    if not want.available:
        return judge_disabled_enable(want, seen)
    condition = want.enable_twice_condition
    problems = _failed_with("enable_twice_condition", condition, seen)
    return problems + _stream_fate("enable_twice_ends_stream", want.enable_twice_ends_stream, seen)


def judge_enable_too_early(want: SMExpect, stage: str, seen: Exchange) -> list[str]:
    """<enable/> before auth or before bind (`stage` "auth" or "bind"): <failed/> with the
    profile's condition, and the stream goes on (XEP-0198 section 3)."""
    key = f"enable_before_{stage}_condition"
    if not want.available:
        return _not_enabled(want, seen)
    problems = _failed_with(key, getattr(want, key), seen)
    if seen.usable is False:
        problems.append(f"{key}: the stream was not usable after the <failed/>{_fate(seen)}")
    return problems


# -- acks -----------------------------------------------------------------------------------


def judge_ack_count(want: SMExpect, sent: int, seen: Exchange) -> list[str]:
    """<r/> is answered with <a h/>, h being the stanzas the server got from the client
    since <enable/> (XEP-0198 section 4)."""
    if not want.available:
        return _not_enabled(want, seen)
    acks = _sm(seen.received, "a")
    if not acks:
        return [
            f"available = true: expected <a h='{sent}'/> in answer to <r/>, got "
            f"{listing(seen.received)}{_fate(seen)}"
        ]
    if acks[0].get("h") != str(sent):
        return [
            f"available = true: expected <a h='{sent}'/> (the {sent} stanzas the client "
            f"sent, XEP-0198 section 4), got {listing(acks[:1])}"
        ]
    return []


def judge_ack_requests(want: SMExpect, delivered: int, seen: Exchange) -> list[str]:
    """The server asks for acks after deliveries: one <r/> per stanza ("per_stanza", an
    ack_freq of 1) or one request until answered ("one_outstanding")."""
    if not want.available:
        return _not_enabled(want, seen)
    requests = len(_sm(seen.received, "r"))
    wanted = delivered if want.ack_requests == "per_stanza" else 1
    if requests != wanted:
        return [
            f"ack_requests = {want.ack_requests!r}: expected {wanted} <r/> after {delivered} "
            f"delivered stanzas, got {requests}: {listing(seen.received)}"
        ]
    return []


def judge_missing_h(want: SMExpect, seen: Exchange) -> list[str]:
    """<a/> without h: the profile's refusal."""
    if not want.available:
        return _not_enabled(want, seen)
    return _refusal(
        "missing_h",
        want.missing_h_answer,
        want.missing_h_condition,
        want.missing_h_text,
        seen,
    )


def judge_too_high_h(want: SMExpect, h: int, sent: int, seen: Exchange) -> list[str]:
    """<a h/> above the stanzas the server sent: the profile's refusal; XEP-0198 section
    4 names <handled-count-too-high h send-count/> for it."""
    if not want.available:
        return _not_enabled(want, seen)
    problems = _refusal(
        "too_high_h",
        want.too_high_h_answer,
        want.too_high_h_condition,
        want.too_high_h_text,
        seen,
    )
    counts = [e for e in _descendants(seen.received) if _is(e, SM_NS, "handled-count-too-high")]
    key = f"too_high_h_reports_counts = {str(want.too_high_h_reports_counts).lower()}"
    if not want.too_high_h_reports_counts:
        if counts:
            problems.append(f"{key}: expected no <handled-count-too-high/>, got {listing(counts)}")
        return problems
    wanted = {"h": str(h), "send-count": str(sent)}
    if not counts:
        problems.append(
            f"{key}: expected <handled-count-too-high h='{h}' send-count='{sent}'/>, got "
            f"{listing(seen.received)}"
        )
    elif {k: counts[0].get(k) for k in wanted} != wanted:
        problems.append(f"{key}: expected h='{h}' send-count='{sent}', got {listing(counts[:1])}")
    return problems


# -- resumption -----------------------------------------------------------------------------


@dataclass
class Resumption:
    """A resumption as the client saw it: the server's answer to <resume/>, everything
    the new connection received after it, and who the session belongs to."""

    answer: ET.Element | None
    after: list[ET.Element]
    previd: str
    jid: str
    domain: str
    # The server's count of the client's stanzas, for `<resumed h/>`; None: not judged.
    client_sent: int | None = None


def judge_redelivery(want: SMExpect, expected: list[str], seen: Resumption) -> list[str]:
    """<resumed/>, then exactly the unacked messages, each once, in order, each with a
    <delay/> (XEP-0198 section 5; XEP-0203)."""
    if not want.available:
        return ["available = false: a session was resumed on a target without SM"]
    answer = seen.answer
    if answer is None or local_name(answer) != "resumed":
        return [
            f"available = true: expected <resumed previd='{seen.previd}'/>, got "
            f"{listing([answer]) if answer is not None else 'no answer'}"
        ]
    problems = []
    if answer.get("previd") != seen.previd:
        problems.append(f"available = true: <resumed/> names another previd: {listing([answer])}")
    if seen.client_sent is not None and answer.get("h") != str(seen.client_sent):
        problems.append(
            f"available = true: expected <resumed h='{seen.client_sent}'/> (stanzas the "
            f"server got from the client), got {listing([answer])}"
        )
    messages = [e for e in seen.after if local_name(e) == "message" and e.get("id")]
    ids = [e.get("id", "") for e in messages]
    if ids != expected:
        problems.append(_redelivery_mismatch(expected, ids))
    for message in (m for m in messages if m.get("id") in expected):
        problems += _delay_problems(want, message, seen)
    return problems


def _redelivery_mismatch(expected: list[str], ids: list[str]) -> str:
    missing = [i for i in expected if i not in ids]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    extra = [i for i in ids if i not in expected]
    parts = [f"missing {missing}"] if missing else []
    parts += [f"delivered twice {repeated}"] if repeated else []
    parts += [f"not expected (already handled) {extra}"] if extra else []
    parts += ["out of order"] if not parts else []
    return (
        f"available = true: expected exactly the unacked messages {expected} once each in "
        f"order after <resumed/>, got {ids}: {', '.join(parts)}"
    )


def _delay_problems(want: SMExpect, message: ET.Element, seen: Resumption) -> list[str]:
    delay = message.find(f"{{{DELAY_NS}}}delay")
    origin = seen.domain if want.redelivery_delay_from == "domain" else bare(seen.jid)
    key = f"redelivery_delay_from = {want.redelivery_delay_from!r}"
    if delay is None:
        return [f"{key}: expected <delay xmlns='{DELAY_NS}'/> on {listing([message])}"]
    problems = []
    if delay.get("from") != origin:
        problems.append(f"{key}: expected <delay from='{origin}'/>, got {listing([message])}")
    if (delay.text or "") != want.redelivery_delay_text:
        problems.append(
            f"redelivery_delay_text = {want.redelivery_delay_text!r}: got "
            f"{(delay.text or '')!r} in {listing([message])}"
        )
    return problems


def judge_old_connection(want: SMExpect, old: Exchange) -> list[str]:
    """What the still-open connection gets when its session is resumed elsewhere."""
    if not want.available:
        return _not_enabled(want, old)
    key = f"resume_old_connection = {want.resume_old_connection!r}"
    errors = _stream_errors(old.received)
    conflict = "conflict" in _conditions(old.received)
    gone = old.ended or old.closed
    if want.resume_old_connection == "conflict" and not (conflict and gone):
        return [
            f"{key}: expected <stream:error><conflict/></stream:error> and the end of the "
            f"old stream, got {listing(old.received)}{_fate(old)}"
        ]
    if want.resume_old_connection == "closed" and (errors or not gone):
        return [
            f"{key}: expected the old connection closed without a stream error, got "
            f"{listing(old.received)}{_fate(old)}"
        ]
    return []


def judge_resume_refused(want: SMExpect, key: str, seen: Exchange) -> list[str]:
    """<resume/> refused with the condition of profile `key`; "" means no answer at all.
    Either way the stream goes on (XEP-0198 section 5)."""
    if not want.available:
        return _not_enabled(want, seen)
    condition: str = getattr(want, key)
    if condition == "":
        sm = [e for e in seen.received if namespace(e) == SM_NS]
        problems = (
            [f"{key} = '': expected no answer to <resume/>, got {listing(sm)}"] if sm else []
        )
    else:
        problems = _failed_with(key, condition, seen)
    if seen.usable is False:
        problems.append(f"{key}: the stream was not usable after the refusal{_fate(seen)}")
    return problems


# -- drops and expiry -----------------------------------------------------------------------


def judge_drop_without_resume(want: SMExpect, watch: Watch) -> list[str]:
    """SM without resume='true', then a TCP drop: a server that does not hold the session
    tells contacts at once (RFC 6121 4.5.2); 6.1.0 holds it (`hold_without_resume`)."""
    held = want.available and want.hold_without_resume
    soon = [(at, e) for at, e in watch.unavailable() if at < DROP_NOTICE]
    key = "hold_without_resume" if want.available else "available"
    value = str(getattr(want, key)).lower()
    if held and soon:
        return [
            f"{key} = {value}: expected the session held and no unavailable presence within "
            f"{DROP_NOTICE:g} s of the drop, got it at +{soon[0][0]:.1f} s: "
            f"{listing([soon[0][1]])}"
        ]
    if not held and not soon:
        return [
            f"{key} = {value}: expected unavailable presence from {watch.held} within "
            f"{DROP_NOTICE:g} s of the drop, got {_timed(watch)}"
        ]
    return []


def judge_hold_expiry(want: SMExpect, watch: Watch) -> list[str]:
    """A held session ends after resume_timeout; `unavailable_when_hold_expires` says
    whether contacts are told then (6.0.0 yes; 6.1.0 no, an undocumented change)."""
    if not want.available:
        return judge_drop_without_resume(want, watch)
    gone = watch.unavailable()
    early = [(at, e) for at, e in gone if at < want.resume_timeout - EXPIRY_SLACK]
    if early:
        return [
            f"resume_timeout = {want.resume_timeout}: the contact saw unavailable presence "
            f"at +{early[0][0]:.1f} s, while the session was still held"
        ]
    key = f"unavailable_when_hold_expires = {str(want.unavailable_when_hold_expires).lower()}"
    if want.unavailable_when_hold_expires and not gone:
        return [
            f"{key}: expected unavailable presence from {watch.held} once resume_timeout "
            f"({want.resume_timeout} s) ran out, got {_timed(watch)}"
        ]
    if not want.unavailable_when_hold_expires and gone:
        return [
            f"{key}: expected no unavailable presence when the hold expired, got it at "
            f"+{gone[0][0]:.1f} s: {listing([gone[0][1]])}"
        ]
    return []


# -- helpers --------------------------------------------------------------------------------


def _not_enabled(want: SMExpect, seen: Exchange) -> list[str]:
    """Judges of SM in use, on a target without SM: only the refused <enable/> counts."""
    return judge_disabled_enable(want, seen)


def _is(element: ET.Element, ns: str, name: str) -> bool:
    return namespace(element) == ns and local_name(element) == name


def _sm(elements: list[ET.Element], name: str) -> list[ET.Element]:
    return [e for e in elements if _is(e, SM_NS, name)]


def _stream_errors(elements: list[ET.Element]) -> list[ET.Element]:
    return [e for e in elements if _is(e, STREAM_NS, "error")]


def _descendants(elements: list[ET.Element]) -> list[ET.Element]:
    return [d for e in elements for d in e.iter()]


def _conditions(elements: list[ET.Element]) -> list[str]:
    """Defined conditions in <failed/> (stanza errors) and stream errors received."""
    found = []
    for element in _sm(elements, "failed") + _stream_errors(elements):
        for child in element:
            if namespace(child) in (STANZAS_NS, STREAMS_NS) and local_name(child) != "text":
                found.append(local_name(child))
    return found


def _text_of(element: ET.Element) -> str:
    for child in element:
        if namespace(child) in (STANZAS_NS, STREAMS_NS) and local_name(child) == "text":
            return child.text or ""
    return ""


def _failed_with(key: str, condition: str, seen: Exchange) -> list[str]:
    failed = _sm(seen.received, "failed")
    if not failed or condition not in _conditions(failed[:1]):
        return [
            f"{key} = {condition!r}: expected <failed xmlns='{SM_NS}'><{condition}/></failed>, "
            f"got {listing(seen.received)}{_fate(seen)}"
        ]
    return []


def _refusal(prefix: str, answer: str, condition: str, text: str, seen: Exchange) -> list[str]:
    """A <failed/> (the stream goes on) or a stream error (the stream ends) with the
    profile's condition and, when the profile names one, its text."""
    key = f"{prefix}_answer = {answer!r}"
    found = (
        _stream_errors(seen.received) if answer == "stream-error" else _sm(seen.received, "failed")
    )
    if not found:
        return [f"{key}: expected a {answer}, got {listing(seen.received)}{_fate(seen)}"]
    problems = []
    if condition not in _conditions(found[:1]):
        problems.append(f"{prefix}_condition = {condition!r}: got {listing(found[:1])}")
    if text and _text_of(found[0]) != text:
        problems.append(f"{prefix}_text = {text!r}: got {listing(found[:1])}")
    if answer == "stream-error" and not (seen.ended or seen.closed):
        problems.append(f"{key}: the stream did not end after the stream error")
    if answer == "failed" and (seen.ended or seen.usable is False):
        problems.append(f"{key}: the stream did not go on after <failed/>{_fate(seen)}")
    return problems


def _stream_fate(key: str, ends: bool, seen: Exchange) -> list[str]:
    if ends and not seen.ended:
        return [f"{key} = true: expected </stream:stream> from the server{_fate(seen)}"]
    if not ends and (seen.ended or seen.closed):
        return [f"{key} = false: expected the stream to go on{_fate(seen)}"]
    if not ends and seen.usable is False:
        return [f"{key} = false: the stream stayed open but did not answer a request"]
    return []


def _fate(seen: Exchange) -> str:
    if seen.ended:
        return "; the server then ended the stream"
    if seen.closed:
        return "; the server then closed TCP"
    return ""


def _timed(watch: Watch) -> str:
    if not watch.arrivals:
        return "nothing"
    return "; ".join(f"+{at:.1f} s {listing([e])}" for at, e in watch.arrivals)
