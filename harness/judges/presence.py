"""Presence (RFC 6121 sections 4 and 3; MongooseIM's mod_presence): expectations and judges.

Roles: `sender` sends the presence or message under test, `contact` is subscribed to the
sender both ways, `stranger` shares no subscription. Every judge returns problems that
name the profile key they come from, so a failure points at the expectation it broke.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from clients.inbox import local_name
from harness.judges import (
    DELAY_NS,
    Seen,
    bare,
    error_condition,
    is_presence,
    listing,
    status_of,
)
from harness.profiles import Profile, ProfileError, read_table

AREA = "presence"
DELIVERY = ("delivered", "dropped")
DELAY_FROM = ("contact", "domain", "none")
BARE_MESSAGE = ("delivered", "bounced")


@dataclass(frozen=True)
class PresenceExpect:
    routed: bool
    self_echo: bool
    broadcast: bool
    probe_answer: bool
    probe_answer_delay_from: str
    unavailable_status_on_close: str
    unavailable_status_on_drop: str
    directed: bool
    presence_before_initial: str
    bare_message_before_presence: str
    subscription_flow: bool

    @classmethod
    def of(cls, profile: Profile) -> PresenceExpect:
        values = read_table(cls, profile, AREA)
        built = cls(**values)
        built._validate()
        return built

    def _validate(self) -> None:
        if self.probe_answer_delay_from not in DELAY_FROM:
            raise ProfileError(f"[presence] probe_answer_delay_from must be one of {DELAY_FROM}")
        if self.presence_before_initial not in DELIVERY:
            raise ProfileError(f"[presence] presence_before_initial must be one of {DELIVERY}")
        if self.bare_message_before_presence not in BARE_MESSAGE:
            raise ProfileError(
                f"[presence] bare_message_before_presence must be one of {BARE_MESSAGE}"
            )

    def wants(self, key: str) -> bool:
        """A boolean expectation that also needs presence to be routed at all."""
        return self.routed and bool(getattr(self, key))

    def key(self, key: str) -> str:
        """The profile key that decides an expectation: `routed` overrides the rest."""
        return key if self.routed else "routed"


def judge_self_echo(want: PresenceExpect, seen: Seen) -> list[str]:
    """Initial presence comes back to the sender from its own full JID (RFC 6121 4.2.2)."""
    sender = seen.jids["sender"]
    echoes = [e for e in seen.of("sender") if is_presence(e, sender)]
    return _presence_expected(
        want.wants("self_echo"),
        echoes,
        want.key("self_echo"),
        f"the sender's own presence from {sender}",
        seen.of("sender"),
    )


def judge_broadcast(want: PresenceExpect, seen: Seen) -> list[str]:
    """A subscribed contact receives the sender's available presence (RFC 6121 4.2.2)."""
    sender = seen.jids["sender"]
    got = [e for e in seen.of("contact") if is_presence(e, sender)]
    return _presence_expected(
        want.wants("broadcast"),
        got,
        want.key("broadcast"),
        f"available presence from {sender} at the contact",
        seen.of("contact"),
    )


def judge_probe_answer(want: PresenceExpect, seen: Seen) -> list[str]:
    """On login the sender learns its online contact's presence (RFC 6121 4.2.3)."""
    contact = seen.jids["contact"]
    answers = [e for e in seen.of("sender") if is_presence(e, contact)]
    problems = _presence_expected(
        want.wants("probe_answer"),
        answers,
        want.key("probe_answer"),
        f"the contact's presence from {contact} in answer to the probe",
        seen.of("sender"),
    )
    if problems or not answers or not want.wants("probe_answer"):
        return problems
    delay = answers[0].find(f"{{{DELAY_NS}}}delay")
    origin = want.probe_answer_delay_from
    key = f"probe_answer_delay_from = {origin!r}"
    if origin == "none":
        return (
            [f"{key}: the probe answer carries a <delay/>: {listing(answers[:1])}"]
            if (delay is not None)
            else []
        )
    if delay is None:
        return [
            f"{key}: expected <delay xmlns='{DELAY_NS}'/> on the probe answer, got "
            f"{listing(answers[:1])}"
        ]
    wanted = contact if origin == "contact" else contact.split("@", 1)[1].split("/", 1)[0]
    if delay.get("from") != wanted:
        return [
            f"{key}: expected the probe answer's <delay from='{wanted}'/>, got "
            f"{listing(answers[:1])}"
        ]
    return []


def judge_unavailable(want: PresenceExpect, seen: Seen, how: str) -> list[str]:
    """The contact learns the sender went away; `how` is "close" or "drop"."""
    key = f"unavailable_status_on_{how}"
    sender = seen.jids["sender"]
    gone = [e for e in seen.of("contact") if is_presence(e, sender, "unavailable")]
    problems = _presence_expected(
        want.routed,
        gone,
        "routed",
        f"unavailable presence from {sender} after the {how}",
        seen.of("contact"),
    )
    if problems or not gone:
        return problems
    wanted: str = getattr(want, key)
    statuses = [status_of(e) for e in gone]
    if wanted == "" and any(s is not None for s in statuses):
        return [f"{key} = '': expected unavailable presence without <status>, got {listing(gone)}"]
    if wanted and any(s != wanted for s in statuses):
        return [
            f"{key} = {wanted!r}: expected <status>{wanted}</status> on the unavailable "
            f"presence, got {listing(gone)}"
        ]
    return []


def judge_directed(want: PresenceExpect, seen: Seen) -> list[str]:
    """Directed presence reaches a non-contact's full JID (RFC 6121 4.6)."""
    sender = seen.jids["sender"]
    got = [e for e in seen.of("stranger") if is_presence(e, sender)]
    return _presence_expected(
        want.wants("directed"),
        got,
        want.key("directed"),
        f"directed presence from {sender}",
        seen.of("stranger"),
    )


def judge_presence_before_initial(want: PresenceExpect, seen: Seen) -> list[str]:
    """Presence to a session that has not sent its own presence yet: delivered or dropped."""
    sender = seen.jids["sender"]
    got = [e for e in seen.of("contact") if is_presence(e, sender)]
    delivered = want.routed and want.presence_before_initial == "delivered"
    key = "presence_before_initial" if want.routed else "routed"
    return _presence_expected(
        delivered,
        got,
        key,
        f"presence from {sender} at a session that has not sent presence",
        seen.of("contact"),
    )


def judge_bare_message_before_presence(want: PresenceExpect, seen: Seen, msg_id: str) -> list[str]:
    """A chat to the bare JID of a session without presence (RFC 6121 8.5.2.1.1)."""
    delivered = [e for e in seen.of("contact") if _is_message(e, msg_id, "chat")]
    bounced = [e for e in seen.of("sender") if _is_message(e, msg_id, "error")]
    key = f"bare_message_before_presence = {want.bare_message_before_presence!r}"
    if want.bare_message_before_presence == "delivered":
        if not delivered:
            return [
                f"{key}: expected message {msg_id} delivered to the contact's session; "
                f"contact got {listing(seen.of('contact'))}; sender got "
                f"{listing(bounced) if bounced else 'no error'}"
            ]
        return []
    problems = []
    if delivered:
        problems.append(f"{key}: the message was delivered instead: {listing(delivered)}")
    if not bounced:
        problems.append(
            f"{key}: expected an error reply for {msg_id} at the sender, got "
            f"{listing(seen.of('sender'))}"
        )
    elif error_condition(bounced[0]) != "service-unavailable":
        problems.append(f"{key}: expected service-unavailable, got {listing(bounced[:1])}")
    return problems


def judge_messages_flow(seen: Seen, msg_ids: list[str]) -> list[str]:
    """Chat messages reach the contact whatever the presence configuration."""
    got = {e.get("id") for e in seen.of("contact") if local_name(e) == "message"}
    missing = [i for i in msg_ids if i not in got]
    if missing:
        return [
            f"messages {missing} did not reach the contact; it got {listing(seen.of('contact'))}"
        ]
    return []


def judge_subscription_request(want: PresenceExpect, seen: Seen) -> list[str]:
    """A subscription request arrives from the requester's bare JID (RFC 6121 3.1.3)."""
    requester = bare(seen.jids["sender"])
    got = [e for e in seen.of("contact") if is_presence(e, requester, "subscribe")]
    return _presence_expected(
        want.wants("subscription_flow"),
        got,
        want.key("subscription_flow"),
        f"<presence type='subscribe' from='{requester}'/>",
        seen.of("contact"),
    )


def judge_subscription_approval(want: PresenceExpect, seen: Seen) -> list[str]:
    """Once approved, the contact's available presence reaches the requester (RFC 6121
    3.1.5). The `subscribed` stanza itself goes only to resources that asked for the
    roster (3.1.6), which the test clients do not, so it is not required here."""
    contact = seen.jids["contact"]
    available = [e for e in seen.of("sender") if is_presence(e, contact)]
    return _presence_expected(
        want.wants("subscription_flow"),
        available,
        want.key("subscription_flow"),
        f"the contact's presence from {contact} after approval",
        seen.of("sender"),
    )


def _is_message(element: ET.Element, msg_id: str, type_: str) -> bool:
    return (
        local_name(element) == "message"
        and element.get("id") == msg_id
        and element.get("type", "normal") == type_
    )


def _presence_expected(
    wanted: bool, got: list[ET.Element], key: str, what: str, everything: list[ET.Element]
) -> list[str]:
    if wanted and not got:
        return [f"{key} = true: expected {what}; received {listing(everything)}"]
    if not wanted and got:
        return [f"{key} = false: expected no {what}, but it arrived: {listing(got)}"]
    return []
