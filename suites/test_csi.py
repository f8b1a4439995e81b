"""Client State Indication: XEP-0352 (`urn:xmpp:csi:0`) and MongooseIM's mod_csi.

    test_csi_is_advertised_in_stream_features_as_profile_states   XEP-0352 4.1
    test_stanza_kind_for_inactive_client_is_handled_as_profile_states[kind]
                                                                  XEP-0352 3.2, 4.2, 5.1
    test_newer_held_stanza_joins_or_replaces_older_one[kind]      XEP-0352 3.2
    test_buffer_overflow_flushes_whole_buffer_and_stays_inactive  mod_csi buffer_max
    test_stanza_after_a_flush_is_held_again                       XEP-0352 3.2
    test_second_inactive_keeps_held_stanzas                       mod_csi (6.1.0 test suite)
    test_sm_ack_is_answered_while_inactive                        XEP-0198 4 with XEP-0352
    test_unknown_csi_element_is_answered_as_profile_states        6.0.0 ignores, 6.1.0 errors

The inactive client ("bob") and the senders ("alice", "carol") are raw streams, so what
bob receives is read off the wire: nothing that bob's own client library sends (pings,
acks) can flush a server's buffer by accident. Each check runs a list of steps; after
each one it waits for what the profile's model says arrives there, or watches the QUIET
window when nothing should; the judge then compares every stanza's arrival with the
model's. What a target must show comes from its profile's [csi] table.

The checks of all these tests, on every target, run side by side (suites/batch.py): each
is mostly quiet windows, so together they take about as long as the slowest one. The
test `test_<name>` passes or fails as its check `check_<name>` did.
"""

from __future__ import annotations

import contextlib
import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from clients.chat import RawChat
from clients.csi import csi_xml, ping_xml, sm_xml, stanza_xml
from clients.inbox import ServerClosed, StanzaTimeout, matches
from conftest import Sessions, Users
from harness.judges import csi as judge
from harness.judges import verdict
from harness.judges.csi import (
    KINDS,
    CsiExpect,
    Step,
    Timeline,
    ack_request_step,
    csi_step,
    stanza_step,
)
from harness.lab import Lab
from harness.targets import Target
from suites.batch import Batch, run_batch
from suites.steps import QUIET, WAIT

log = logging.getLogger(__name__)

pytestmark = [pytest.mark.area("csi"), pytest.mark.batched]

# Kinds some server keeps only the newest of, per sender (ejabberd's mod_client_state).
COALESCIBLE = ("presence", "chat_state")
# The order in which a kind is picked to fill the buffer: the kinds MongooseIM's recordings
# show first.
FILL_ORDER = ("chat", "chat_state", "presence", "iq")


# The longest a check may take: logins and a dozen steps of up to WAIT + QUIET each.
BOUND = 150.0
# Pings a bystander round-trips between two steps (see server_settled).
SETTLE_TURNS = 1


@pytest.fixture(scope="session")
def csi(lab: Lab, request: pytest.FixtureRequest) -> Iterator[Batch]:
    """The checks of every selected test of this module, started together (suites/batch.py)."""
    yield from run_batch("csi", __name__, csi_of, BOUND, lab, request)


def csi_of(target: Target) -> CsiExpect:
    return CsiExpect.of(target.profile)


def test_csi_is_advertised_in_stream_features_as_profile_states(
    target: Target, csi: Batch, request: pytest.FixtureRequest
) -> None:
    csi.outcome(request)


@pytest.mark.parametrize("kind", KINDS)
def test_stanza_kind_for_inactive_client_is_handled_as_profile_states(
    target: Target, csi: Batch, request: pytest.FixtureRequest, kind: str
) -> None:
    csi.outcome(request)


@pytest.mark.parametrize("kind", COALESCIBLE)
def test_newer_held_stanza_joins_or_replaces_older_one(
    target: Target, csi: Batch, request: pytest.FixtureRequest, kind: str
) -> None:
    csi.outcome(request)


def test_buffer_overflow_flushes_whole_buffer_and_stays_inactive(
    target: Target, csi: Batch, request: pytest.FixtureRequest
) -> None:
    csi.outcome(request)


def test_stanza_after_a_flush_is_held_again(
    target: Target, csi: Batch, request: pytest.FixtureRequest
) -> None:
    csi.outcome(request)


def test_second_inactive_keeps_held_stanzas(
    target: Target, csi: Batch, request: pytest.FixtureRequest
) -> None:
    csi.outcome(request)


def test_sm_ack_is_answered_while_inactive(
    target: Target, csi: Batch, request: pytest.FixtureRequest
) -> None:
    csi.outcome(request)


def test_unknown_csi_element_is_answered_as_profile_states(
    target: Target, csi: Batch, request: pytest.FixtureRequest
) -> None:
    csi.outcome(request)


# -- checks: observe, then judge -----------------------------------------------------------


async def check_csi_is_advertised_in_stream_features_as_profile_states(
    target: Target, users: Users, sessions: Sessions, want: CsiExpect
) -> None:
    (account,) = await users.create("bob")

    stream = await sessions.raw("bob")
    pre_auth = await stream.open_stream(WAIT)
    await stream.auth_plain(account.local, account.password, WAIT)
    post_auth = await stream.open_stream(WAIT)

    problems = judge.judge_feature(want, pre_auth, "pre_auth")
    problems += judge.judge_feature(want, post_auth, "post_auth")
    verdict(problems, target.profile.name)


async def check_stanza_kind_for_inactive_client_is_handled_as_profile_states(
    target: Target, users: Users, sessions: Sessions, want: CsiExpect, kind: str
) -> None:
    party = await given_party(users, sessions)
    script = [
        (party.bob, csi_step("inactive")),
        (party.carol, stanza_step("presence", "carol-p", party.carol.jid)),
        (party.alice, stanza_step("presence", "alice-p", party.alice.jid)),
        (party.alice, stanza_step(kind, f"alice-{kind}", party.alice.jid)),
        (party.bob, csi_step("active")),
    ]

    seen = await when_steps_run(party, script, want)

    verdict(judge.judge_timeline(want, seen), target.profile.name)


async def check_newer_held_stanza_joins_or_replaces_older_one(
    target: Target, users: Users, sessions: Sessions, want: CsiExpect, kind: str
) -> None:
    party = await given_party(users, sessions)
    script = [
        (party.bob, csi_step("inactive")),
        (party.alice, stanza_step(kind, f"{kind}-older", party.alice.jid)),
        (party.alice, stanza_step(kind, f"{kind}-newer", party.alice.jid)),
        (party.bob, csi_step("active")),
    ]

    seen = await when_steps_run(party, script, want)

    verdict(judge.judge_timeline(want, seen), target.profile.name)


async def check_buffer_overflow_flushes_whole_buffer_and_stays_inactive(
    target: Target, users: Users, sessions: Sessions, want: CsiExpect
) -> None:
    if want.buffer_max == 0:
        pytest.skip(f"{target.profile.name}: [csi] buffer_max = 0, the limit is not checked")
    party = await given_party(users, sessions)
    fill = held_stanzas(want, party, want.buffer_max + 2, "over")
    script = [(party.bob, csi_step("inactive")), *fill, (party.bob, csi_step("active"))]

    seen = await when_steps_run(party, script, want)

    verdict(judge.judge_timeline(want, seen), target.profile.name)


async def check_stanza_after_a_flush_is_held_again(
    target: Target, users: Users, sessions: Sessions, want: CsiExpect
) -> None:
    flushing = [k for k in KINDS if want.hold(k) in ("flushes", "flushes_sender")]
    if not flushing:
        pytest.skip(
            f"{target.profile.name}: no [csi] hold_* kind flushes the buffer; the overflow "
            "check shows what follows a flush"
        )
    party = await given_party(users, sessions)
    before, after = held_stanzas(want, party, 2, "around")
    script = [
        (party.bob, csi_step("inactive")),
        before,
        (party.alice, stanza_step(flushing[0], "flusher", party.alice.jid)),
        after,
        (party.bob, csi_step("active")),
    ]

    seen = await when_steps_run(party, script, want)

    verdict(judge.judge_timeline(want, seen), target.profile.name)


async def check_second_inactive_keeps_held_stanzas(
    target: Target, users: Users, sessions: Sessions, want: CsiExpect
) -> None:
    party = await given_party(users, sessions)
    first, second, third = held_stanzas(want, party, 3, "twice")
    script = [
        (party.bob, csi_step("inactive")),
        first,
        second,
        (party.bob, csi_step("inactive")),
        third,
        (party.bob, csi_step("active")),
    ]

    seen = await when_steps_run(party, script, want)

    verdict(judge.judge_timeline(want, seen), target.profile.name)


async def check_sm_ack_is_answered_while_inactive(
    target: Target, users: Users, sessions: Sessions, want: CsiExpect
) -> None:
    party = await given_party(users, sessions)
    features = party.bob.stream.state.features
    if want.sm_ack_while_inactive == "no_sm":
        verdict(judge.judge_sm_ack(want, judge.AckSeen(features, [], None)), target.profile.name)
        return
    enabled = await when_sm_is_enabled(party.bob)
    script = [
        (party.bob, csi_step("inactive")),
        (party.bob, ack_request_step()),
        *held_stanzas(want, party, 1, "after-ack"),
        (party.bob, csi_step("active")),
    ]

    seen = await when_steps_run(party, script, want)

    verdict(judge.judge_sm_ack(want, judge.AckSeen(features, enabled, seen)), target.profile.name)


async def check_unknown_csi_element_is_answered_as_profile_states(
    target: Target, users: Users, sessions: Sessions, want: CsiExpect
) -> None:
    (account,) = await users.create("bob")
    bob = await sessions.login("bob", account, "csi", stack="raw")
    assert isinstance(bob, RawChat)
    await bob.send_presence()
    send(bob, csi_xml("active"))
    accepted_active = await answers_ping(bob)
    mark = bob.inbox.mark()

    send(bob, csi_xml("invalid"))
    await wait_for_unknown_answer(bob, want, mark)
    answer = bob.inbox.since(mark)
    alive = await answers_ping(bob)

    seen = judge.UnknownSeen(bob.jid, answer, alive, closed_reason(bob), accepted_active)
    verdict(judge.judge_unknown_element(want, seen), target.profile.name)


# -- given ---------------------------------------------------------------------------------


@dataclass
class Party:
    """Bob, who goes inactive, and two senders; all raw streams with initial presence."""

    bob: RawChat
    alice: RawChat
    carol: RawChat

    @property
    def senders(self) -> tuple[RawChat, RawChat]:
        return self.alice, self.carol


async def given_party(users: Users, sessions: Sessions) -> Party:
    bob_account, alice_account, carol_account = await users.create("bob", "alice", "carol")
    clients = []
    for name, account in (
        ("bob", bob_account),
        ("alice", alice_account),
        ("carol", carol_account),
    ):
        client = await sessions.login(name, account, name, stack="raw")
        assert isinstance(client, RawChat)
        await client.send_presence()
        clients.append(client)
    for client in clients:
        await client.barrier(WAIT)
    return Party(*clients)


def held_stanzas(
    want: CsiExpect, party: Party, count: int, prefix: str
) -> list[tuple[RawChat, Step]]:
    """`count` stanzas the profile holds while inactive, none replacing another.

    Kinds are taken in FILL_ORDER; a kind the profile keeps only the newest of is sent
    once per sender. Fails the test when the profile holds too few kinds for that.
    """
    picks: list[tuple[RawChat, Step]] = []
    held = [k for k in FILL_ORDER if want.hold(k) == "held"]
    repeatable = [k for k in held if k not in want.held_latest_only]
    once = [(k, sender) for k in held if k in want.held_latest_only for sender in party.senders]
    while len(picks) < count:
        if repeatable:
            kind, sender = repeatable[0], party.alice
        elif once:
            kind, sender = once.pop(0)
        else:
            pytest.fail(
                f"[csi] holds too few distinct stanzas for this check: hold_* = "
                f"{[want.hold(k) for k in KINDS]}, held_latest_only = "
                f"{list(want.held_latest_only)}"
            )
        label = f"{prefix}-{len(picks) + 1}"
        picks.append((sender, stanza_step(kind, label, sender.jid)))
    return picks


# -- when ----------------------------------------------------------------------------------


async def when_steps_run(
    party: Party, script: list[tuple[RawChat, Step]], want: CsiExpect
) -> Timeline:
    """Runs the steps in order and records what bob received after each one.

    After a step, waits (up to WAIT) for what the profile's model says arrives there, then
    watches the QUIET window (see quiet_after).
    """
    steps = [step for _, step in script]
    fates = judge.plan(want, steps)
    marks: list[int] = []
    for index, (actor, step) in enumerate(script):
        marks.append(party.bob.inbox.mark())
        act(actor, step, party.bob.jid)
        due = [steps[i] for i in judge.arrivals_at(fates, index)]
        if step.act == "ack_request":
            await wait_for_ack(party.bob, marks[-1])
        elif due:
            await wait_for_steps(party.bob, due, marks[-1])
        if quiet_after(script, index, bool(due)):
            await party.bob.inbox.collect(QUIET)
        if index + 1 < len(script):
            await server_settled(party)
    marks.append(party.bob.inbox.mark())
    after = [party.bob.inbox.since(m)[: marks[i + 1] - m] for i, m in enumerate(marks[:-1])]
    return Timeline(party.bob.jid, steps, after, closed_reason(party.bob))


async def server_settled(party: Party) -> None:
    """Waits until the server has begun a turn of its own since the last step: carol
    round-trips SETTLE_TURNS pings to the server (nothing of them goes to bob). A server
    that goes back to inactive after a flush on a timer has done so by then if it runs due
    timers before it reads new data (Prosody: once the write buffer drains, then a 0 s
    timer; its select loop runs due timers at the start of every turn, and carol's ping is
    read in a later turn than bob's flush was written). Where the QUIET window alone is a
    fixed time, this wait follows the server's own pace on a busy machine."""
    for _ in range(SETTLE_TURNS):
        await party.carol.barrier(WAIT)


def act(actor: RawChat, step: Step, bob: str) -> None:
    if step.is_stanza:
        send(actor, stanza_xml(step.act, bob, step.label))
    elif step.act == "ack_request":
        send(actor, sm_xml("r"))
    else:
        send(actor, csi_xml(step.act))


def quiet_after(script: list[tuple[RawChat, Step]], index: int, arrived: bool) -> bool:
    """Whether to watch the QUIET window after a step: after every step but the last,
    so each arrival is seen after the step that caused it, and a server that stays active
    for a moment after it wrote to the client finds the next step inactive again (the
    recordings leave a second or more between steps); after the last step only when
    nothing was due."""
    return index + 1 < len(script) or not arrived


async def wait_for_steps(bob: RawChat, due: list[Step], mark: int) -> None:
    """Waits for the stanzas of `due`; never raises, the judge decides."""

    def any_due(element: ET.Element) -> bool:
        return any(step.recognises(element) for step in due)

    what = ", ".join(step.describe() for step in due)
    with contextlib.suppress(StanzaTimeout, ServerClosed):
        await bob.inbox.wait_for_count(any_due, len(due), what, WAIT, after=mark)
        return
    log.warning("%s: %s did not all arrive within %.1f s", bob.name, what, WAIT)


async def when_sm_is_enabled(bob: RawChat) -> list[ET.Element]:
    """Sends SM <enable/>; returns what answered it (up to WAIT)."""
    mark = bob.inbox.mark()
    send(bob, sm_xml("enable"))
    with contextlib.suppress(StanzaTimeout, ServerClosed):
        await bob.inbox.wait_for(
            lambda e: e.tag in (f"{{{judge.SM_NS}}}enabled", f"{{{judge.SM_NS}}}failed"),
            "<enabled/> or <failed/>",
            WAIT,
            mark,
        )
    return bob.inbox.since(mark)


async def wait_for_ack(bob: RawChat, mark: int) -> None:
    with contextlib.suppress(StanzaTimeout, ServerClosed):
        await bob.inbox.wait_for(matches("a", xmlns=judge.SM_NS), "<a/> to <r/>", WAIT, mark)
        return
    log.warning("%s: no <a/> to <r/> within %.1f s", bob.name, WAIT)


async def wait_for_unknown_answer(bob: RawChat, want: CsiExpect, mark: int) -> None:
    """Waits for the answer the profile states, or watches QUIET when it states none."""
    if want.unknown_element == "ignored":
        await bob.inbox.collect(QUIET)
        return
    with contextlib.suppress(StanzaTimeout, ServerClosed):
        if want.unknown_element == "stream_error":
            await bob.inbox.wait_closed(WAIT, "the stream closed after a stream error")
        else:
            await bob.inbox.wait_for(
                matches("invalid", xmlns=judge.CSI_NS), "the error reply", WAIT, mark
            )


async def answers_ping(bob: RawChat) -> bool:
    """Whether the stream still answers a request (a ping to the server)."""
    if bob.inbox.closed_at is not None:
        return False
    label = bob.stream.next_id("alive")
    mark = bob.inbox.mark()
    send(bob, ping_xml(label, bob.stream.domain))
    try:
        await bob.inbox.wait_for(matches("iq", attrs={"id": label}), "the ping reply", WAIT, mark)
    except (StanzaTimeout, ServerClosed) as exc:
        log.info("%s: the stream did not answer a ping: %s", bob.name, exc)
        return False
    return True


def send(client: RawChat, text: str) -> None:
    """Sends on a raw stream; a stream the server already closed is noted, not raised:
    the judge reports what that did to the check."""
    try:
        client.stream.send(text)
    except ConnectionError as exc:
        client.transcript.note(client.name, f"not sent, the stream is closed: {text}")
        log.info("%s: %s", client.name, exc)


def closed_reason(client: RawChat) -> str:
    if client.inbox.closed_at is None:
        return ""
    return client.inbox.close_reason
