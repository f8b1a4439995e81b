"""Stream management: XEP-0198 (`urn:xmpp:sm:3`) and MongooseIM's mod_stream_management.

    test_sm_is_advertised_in_stream_features_as_profile_says           XEP-0198 2
    test_enable_is_answered_as_profile_says[plain|resume]              XEP-0198 3
    test_library_session_gets_sm_with_resumption[stack]                XEP-0198 3
    test_server_acks_count_the_client_stanzas_exactly                  XEP-0198 4
    test_server_requests_acks_after_deliveries_as_profile_says         XEP-0198 4
    test_ack_without_h_is_refused_as_profile_says                      XEP-0198 4
    test_ack_above_the_sent_count_is_refused_as_profile_says           XEP-0198 4
    test_resumed_session_redelivers_unacked_messages[stack]            XEP-0198 5
    test_resume_redelivers_exactly_the_messages_the_client_did_not_handle  XEP-0198 5
    test_resume_ends_the_old_connection_as_profile_says                XEP-0198 5
    test_resume_with_unknown_id_fails_and_bind_still_works             XEP-0198 5
    test_resume_after_bind_is_refused_as_profile_says                  XEP-0198 5
    test_enable_twice_is_refused_as_profile_says                       XEP-0198 3
    test_enable_before_bind_is_refused_as_profile_says[auth|bind]      XEP-0198 3
    test_held_session_expires_after_resume_timeout                     XEP-0198 5; 6.1.0
    test_drop_without_resume_follows_profile                           6.1.0 holds, 6.0.0 not

The library stacks (slixmpp's xep_0198 plugin, aioxmpp's use_sm) run the checks a client
application relies on: SM comes up, and a resumed session gets what it missed, once. The
raw client runs the rest, where a library hides the wire or chooses `h` itself (exact
counters, error answers, a resumption with an `h` the test picks, the moment of a drop).

On a target whose profile says `available = false` (the module is off), every check first
establishes that and judges only the answer to <enable/>. What a target must show comes
from its profile's [stream_management] table.
"""

from __future__ import annotations

import contextlib
import logging
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from clients.admin import Account
from clients.chat import SM_NS, ChatClient, RawChat, is_sm, sm_xml
from clients.inbox import (
    STREAM_NS,
    Predicate,
    ServerClosed,
    StanzaTimeout,
    local_name,
    matches,
)
from clients.raw import RawStream
from clients.slixmpp_chat import SlixmppChat
from conftest import Sessions, Users, login_of
from harness.judges import stream_management as judge
from harness.judges import verdict
from harness.judges.presence import PresenceExpect
from harness.judges.stream_management import (
    DROP_NOTICE,
    Exchange,
    Resumption,
    SMExpect,
    Watch,
)
from harness.lab import Lab
from harness.targets import Target
from suites.batch import Batch, run_batch
from suites.steps import QUIET, WAIT, online
from suites.test_presence import given_contacts

log = logging.getLogger(__name__)

pytestmark = [pytest.mark.area("stream_management"), pytest.mark.batched]

# A previd no server issued (base64 of "not-a-real-smid-value-xxx").
UNKNOWN_PREVID = "bm90LWEtcmVhbC1zbWlkLXZhbHVlLXh4eA=="
# How long past resume_timeout a server may take to end a held session.
AFTER_EXPIRY = 2.0
# The longest a check may take besides a held session's resume_timeout: logins and steps.
BOUND = 150.0


def sm_of(target: Target) -> SMExpect:
    return SMExpect.of(target.profile)


def bound(target: Target) -> float:
    table = target.profile.data.get(judge.AREA, {})
    return BOUND + float(table.get("resume_timeout", 0) if isinstance(table, dict) else 0)


@pytest.fixture(scope="session")
def sm(lab: Lab, request: pytest.FixtureRequest) -> Iterator[Batch]:
    """The checks of every selected test of this module, started together (suites/batch.py)."""
    yield from run_batch("stream-management", __name__, sm_of, bound, lab, request)


def test_sm_is_advertised_in_stream_features_as_profile_says(
    target: Target, sm: Batch, request: pytest.FixtureRequest
) -> None:
    sm.outcome(request)


@pytest.mark.parametrize("resume", [False, True], ids=["plain", "resume"])
def test_enable_is_answered_as_profile_says(
    target: Target, sm: Batch, request: pytest.FixtureRequest, resume: bool
) -> None:
    sm.outcome(request)


def test_library_session_gets_sm_with_resumption(
    target: Target, sm: Batch, request: pytest.FixtureRequest, stack: str
) -> None:
    sm.outcome(request)


def test_server_acks_count_the_client_stanzas_exactly(
    target: Target, sm: Batch, request: pytest.FixtureRequest
) -> None:
    sm.outcome(request)


def test_server_requests_acks_after_deliveries_as_profile_says(
    target: Target, sm: Batch, request: pytest.FixtureRequest
) -> None:
    sm.outcome(request)


def test_ack_without_h_is_refused_as_profile_says(
    target: Target, sm: Batch, request: pytest.FixtureRequest
) -> None:
    sm.outcome(request)


def test_ack_above_the_sent_count_is_refused_as_profile_says(
    target: Target, sm: Batch, request: pytest.FixtureRequest
) -> None:
    sm.outcome(request)


def test_resumed_session_redelivers_unacked_messages(
    target: Target, sm: Batch, request: pytest.FixtureRequest, stack: str
) -> None:
    sm.outcome(request)


def test_resume_redelivers_exactly_the_messages_the_client_did_not_handle(
    target: Target, sm: Batch, request: pytest.FixtureRequest
) -> None:
    sm.outcome(request)


def test_resume_ends_the_old_connection_as_profile_says(
    target: Target, sm: Batch, request: pytest.FixtureRequest
) -> None:
    sm.outcome(request)


def test_resume_with_unknown_id_fails_and_bind_still_works(
    target: Target, sm: Batch, request: pytest.FixtureRequest
) -> None:
    sm.outcome(request)


def test_resume_after_bind_is_refused_as_profile_says(
    target: Target, sm: Batch, request: pytest.FixtureRequest
) -> None:
    sm.outcome(request)


def test_enable_twice_is_refused_as_profile_says(
    target: Target, sm: Batch, request: pytest.FixtureRequest
) -> None:
    sm.outcome(request)


@pytest.mark.parametrize("stage", ["auth", "bind"])
def test_enable_before_bind_is_refused_as_profile_says(
    target: Target, sm: Batch, request: pytest.FixtureRequest, stage: str
) -> None:
    sm.outcome(request)


def test_held_session_expires_after_resume_timeout(
    target: Target, sm: Batch, request: pytest.FixtureRequest
) -> None:
    sm.outcome(request)


def test_drop_without_resume_follows_profile(
    target: Target, sm: Batch, request: pytest.FixtureRequest
) -> None:
    sm.outcome(request)


# -- checks: observe, then judge -----------------------------------------------------------


async def check_sm_is_advertised_in_stream_features_as_profile_says(
    target: Target, users: Users, sessions: Sessions, want: SMExpect
) -> None:
    (account,) = await users.create("alice")
    stream = await sessions.raw("alice")

    before = await stream.open_stream(WAIT)
    await stream.auth_plain(account.local, account.password, WAIT)
    after = await stream.open_stream(WAIT)

    verdict(judge.judge_features(want, before, after), target.profile.name)


async def check_enable_is_answered_as_profile_says(
    target: Target, users: Users, sessions: Sessions, want: SMExpect, resume: bool
) -> None:
    client = await given_raw_session(users, sessions)

    seen = await when_enabling(client, want, resume)

    verdict(judge.judge_enable(want, resume, seen), target.profile.name)


async def check_library_session_gets_sm_with_resumption(
    target: Target, users: Users, sessions: Sessions, want: SMExpect, stack: str
) -> None:
    (account,) = await users.create("bob")

    client = await login_with_sm(sessions, "bob", account, stack)

    verdict(await judge_library_enable(want, client), target.profile.name)


async def check_server_acks_count_the_client_stanzas_exactly(
    target: Target, users: Users, sessions: Sessions, want: SMExpect
) -> None:
    client = await given_sm_session(target, users, sessions, want, resume=False)
    if client is None:
        return
    for n in range(3):
        mark = client.inbox.mark()
        client.stream.send(f"<iq type='get' id='h{n}'><query xmlns='jabber:iq:roster'/></iq>")
        await client.inbox.wait_for(matches("iq", attrs={"id": f"h{n}"}), f"h{n}", WAIT, mark)
    mark = client.inbox.mark()

    client.request_ack()
    await answer_within(client, mark, is_sm("a"), "<a h/>", WAIT)

    seen = await exchange(client, mark, ends=False, probe=False)
    verdict(judge.judge_ack_count(want, 3, seen), target.profile.name)


async def check_server_requests_acks_after_deliveries_as_profile_says(
    target: Target, users: Users, sessions: Sessions, want: SMExpect
) -> None:
    sender, receiver = await given_sender_and_sm_receiver(target, users, sessions, want)
    if receiver is None:
        return
    mark = receiver.inbox.mark()

    await send_messages(sender, receiver.jid, ["d1", "d2", "d3"])
    await receiver.inbox.wait_for_count(matches("message"), 3, "3 chats", WAIT, mark)
    requests = 3 if want.ack_requests == "per_stanza" else 1
    with contextlib.suppress(StanzaTimeout, ServerClosed):
        await receiver.inbox.wait_for_count(is_sm("r"), requests + 1, "<r/>", QUIET, mark)

    seen = Exchange(receiver.inbox.since(mark))
    verdict(judge.judge_ack_requests(want, 3, seen), target.profile.name)


async def check_ack_without_h_is_refused_as_profile_says(
    target: Target, users: Users, sessions: Sessions, want: SMExpect
) -> None:
    client = await given_sm_session(target, users, sessions, want, resume=False)
    if client is None:
        return
    mark = client.inbox.mark()

    client.stream.send(sm_xml("a"))
    await answer_within(client, mark, refusal, "<failed/> or a stream error", WAIT)

    seen = await exchange(client, mark, ends=want.missing_h_answer == "stream-error")
    verdict(judge.judge_missing_h(want, seen), target.profile.name)


async def check_ack_above_the_sent_count_is_refused_as_profile_says(
    target: Target, users: Users, sessions: Sessions, want: SMExpect
) -> None:
    sender, receiver = await given_sender_and_sm_receiver(target, users, sessions, want)
    if receiver is None:
        return
    await send_messages(sender, receiver.jid, ["c1"])
    await receiver.inbox.wait_for(matches("message", attrs={"id": "c1"}), "chat c1", WAIT)
    sent, mark = receiver.handled(), receiver.inbox.mark()

    receiver.ack(sent + 4)
    await answer_within(receiver, mark, refusal, "<failed/> or a stream error", WAIT)

    seen = await exchange(receiver, mark, ends=want.too_high_h_answer == "stream-error")
    verdict(judge.judge_too_high_h(want, sent + 4, sent, seen), target.profile.name)


async def check_resumed_session_redelivers_unacked_messages(
    target: Target, users: Users, sessions: Sessions, want: SMExpect, stack: str
) -> None:
    sender_account, receiver_account = await users.create("alice", "bob")
    receiver = await login_with_sm(sessions, "bob", receiver_account, stack)
    verdict(await judge_library_enable(want, receiver), target.profile.name)
    if not want.available:
        return
    sender = await sessions.login("alice", sender_account)
    await send_messages(sender, receiver.jid, ["live-1", "live-2"])
    await receiver.inbox.wait_for_count(matches("message"), 2, "the live chats", WAIT)
    await receiver.barrier(WAIT)  # the library's acks for them went out before this

    await receiver.interrupt()
    await send_messages(sender, receiver.jid, ["held-1", "held-2", "held-3"])
    await sender.barrier(WAIT)
    answer = await receiver.resume(WAIT)
    await collect_messages(receiver, 3)

    seen = resumption(target, receiver, answer, previd_of(receiver), client_sent=None)
    verdict(
        judge.judge_redelivery(want, ["held-1", "held-2", "held-3"], seen), target.profile.name
    )


async def check_resume_redelivers_exactly_the_messages_the_client_did_not_handle(
    target: Target, users: Users, sessions: Sessions, want: SMExpect
) -> None:
    sender, receiver = await given_sender_and_sm_receiver(
        target, users, sessions, want, resume=True
    )
    if receiver is None:
        return
    ids = [f"u{n}" for n in range(1, 6)]
    await send_messages(sender, receiver.jid, ids)
    await receiver.inbox.wait_for_count(matches("message"), len(ids), "5 chats", WAIT)
    previd, handled = previd_of(receiver), 2

    await receiver.interrupt()
    answer = await receiver.resume(WAIT, h=handled)
    await collect_messages(receiver, len(ids) - handled)

    seen = resumption(target, receiver, answer, previd, client_sent=0)
    verdict(judge.judge_redelivery(want, ids[handled:], seen), target.profile.name)


async def check_resume_ends_the_old_connection_as_profile_says(
    target: Target, users: Users, sessions: Sessions, want: SMExpect
) -> None:
    client = await given_sm_session(target, users, sessions, want, resume=True)
    if client is None:
        return
    old, previd = client.stream, previd_of(client)
    mark = old.inbox.mark()

    answer = await client.resume(WAIT, h=0)
    with contextlib.suppress(StanzaTimeout):
        await old.inbox.wait_closed(WAIT, "the old connection to end")

    gone = Exchange(
        old.inbox.since(mark), old.state.ended_by_server, old.tcp_closed_at is not None
    )
    problems = judge.judge_redelivery(want, [], resumption(target, client, answer, previd, 0))
    verdict(problems + judge.judge_old_connection(want, gone), target.profile.name)


async def check_resume_with_unknown_id_fails_and_bind_still_works(
    target: Target, users: Users, sessions: Sessions, want: SMExpect
) -> None:
    if await given_sm_session(target, users, sessions, want, resume=False) is None:
        return
    (account,) = await users.create("bob")
    stream = await sessions.raw("bob")
    await stream.authenticate(account.local, account.password, WAIT)
    mark = stream.inbox.mark()

    stream.send(sm_xml("resume", previd=UNKNOWN_PREVID, h=0))
    await first_within(stream, mark, is_sm("resumed", "failed"), WAIT)

    seen = await exchange_before_bind(stream, mark)
    verdict(
        judge.judge_resume_refused(want, "unknown_previd_condition", seen), target.profile.name
    )


async def check_resume_after_bind_is_refused_as_profile_says(
    target: Target, users: Users, sessions: Sessions, want: SMExpect
) -> None:
    held = await given_sm_session(target, users, sessions, want, resume=True)
    if held is None or held.account is None:
        return
    client = await sessions.login("bob2", held.account, "other", stack="raw")
    assert isinstance(client, RawChat)
    mark = client.inbox.mark()

    client.stream.send(sm_xml("resume", previd=previd_of(held), h=0))
    expected = want.resume_after_bind_condition != ""
    await answer_within(client, mark, is_sm("resumed", "failed"), "", WAIT if expected else QUIET)

    seen = await exchange(client, mark, ends=False)
    verdict(
        judge.judge_resume_refused(want, "resume_after_bind_condition", seen), target.profile.name
    )


async def check_enable_twice_is_refused_as_profile_says(
    target: Target, users: Users, sessions: Sessions, want: SMExpect
) -> None:
    client = await given_sm_session(target, users, sessions, want, resume=False)
    if client is None:
        return
    mark = client.inbox.mark()

    client.stream.send(sm_xml("enable"))
    await answer_within(client, mark, is_sm("enabled", "failed"), "a second answer", WAIT)

    seen = await exchange(client, mark, ends=want.enable_twice_ends_stream)
    verdict(judge.judge_enable_twice(want, seen), target.profile.name)


async def check_enable_before_bind_is_refused_as_profile_says(
    target: Target, users: Users, sessions: Sessions, want: SMExpect, stage: str
) -> None:
    if await given_sm_session(target, users, sessions, want, resume=False) is None:
        return
    (account,) = await users.create("alice")
    stream = await sessions.raw("alice")
    await stream.open_stream(WAIT)
    if stage == "bind":
        await stream.auth_plain(account.local, account.password, WAIT)
        await stream.open_stream(WAIT)
    mark = stream.inbox.mark()

    stream.send(sm_xml("enable", resume="true") if stage == "bind" else sm_xml("enable"))
    await first_within(stream, mark, is_sm("enabled", "failed"), WAIT)

    if stage == "bind":
        seen = await exchange_before_bind(stream, mark)
    else:
        seen = await exchange_before_auth(stream, mark, account)
    verdict(judge.judge_enable_too_early(want, stage, seen), target.profile.name)


async def check_held_session_expires_after_resume_timeout(
    target: Target, users: Users, sessions: Sessions, want: SMExpect
) -> None:
    contact, held = await given_online_contact_and_sm_session(
        target, users, sessions, want, resume=True
    )
    if held is None:
        return
    previd = previd_of(held)

    watch = await when_dropped(held, contact, want.resume_timeout + AFTER_EXPIRY)
    late = await held.resume(WAIT, h=0)

    seen = Exchange([late] if late is not None else [], usable=await bind_works(held.stream))
    problems = judge.judge_hold_expiry(want, watch)
    problems += judge.judge_resume_refused(want, "unknown_previd_condition", seen)
    log.info("expired hold: previd=%s late resume -> %s", previd, late)
    verdict(problems, target.profile.name)


async def check_drop_without_resume_follows_profile(
    target: Target, users: Users, sessions: Sessions, want: SMExpect
) -> None:
    contact, held = await given_online_contact_and_sm_session(
        target, users, sessions, want, resume=False
    )
    if held is None:
        return

    watch = await when_dropped(held, contact, DROP_NOTICE)

    verdict(judge.judge_drop_without_resume(want, watch), target.profile.name)


# -- given ---------------------------------------------------------------------------------


async def given_raw_session(users: Users, sessions: Sessions, role: str = "bob") -> RawChat:
    (account,) = await users.create(role)
    client = await sessions.login(role, account, stack="raw")
    assert isinstance(client, RawChat)
    return client


async def given_sm_session(
    target: Target, users: Users, sessions: Sessions, want: SMExpect, resume: bool
) -> RawChat | None:
    """A raw session that enabled SM; None when the profile says SM is off and the
    server refused <enable/> as the profile says (the check then ends there)."""
    client = await given_raw_session(users, sessions)
    return await enabled_or_none(target, client, want, resume)


async def enabled_or_none(
    target: Target, client: RawChat, want: SMExpect, resume: bool
) -> RawChat | None:
    seen = await when_enabling(client, want, resume)
    verdict(judge.judge_enable(want, resume, seen), target.profile.name)
    return client if want.available else None


async def given_sender_and_sm_receiver(
    target: Target, users: Users, sessions: Sessions, want: SMExpect, resume: bool = False
) -> tuple[RawChat, RawChat | None]:
    sender = await given_raw_session(users, sessions, "alice")
    receiver = await given_sm_session(target, users, sessions, want, resume)
    return sender, receiver


async def given_online_contact_and_sm_session(
    target: Target, users: Users, sessions: Sessions, want: SMExpect, resume: bool
) -> tuple[ChatClient, RawChat | None]:
    """Mutual contacts online on raw sessions; the second one has enabled SM."""
    contact, held = await given_contacts(users, sessions)
    assert isinstance(held, RawChat)
    if await enabled_or_none(target, held, want, resume) is None:
        return contact, None
    echo = PresenceExpect.of(target.profile).wants("self_echo")
    await online(contact, echo)
    await online(held, echo)
    return contact, held


async def login_with_sm(sessions: Sessions, name: str, account: Account, stack: str) -> ChatClient:
    """A library session that negotiates SM itself (it asks for resumption)."""
    endpoint, resource = sessions.endpoint(), f"{name}-{stack}"
    client: ChatClient
    if stack == "slixmpp":
        client = await SlixmppChat.login(
            name, endpoint, account, resource, sessions.transcript, plugins=("xep_0198",)
        )
        sessions.clients.append(client)
        await client.sm_ready(WAIT)
    else:
        client = await login_of("aioxmpp")(
            name, endpoint, account, resource, sessions.transcript, use_sm=True
        )
        sessions.clients.append(client)
    return client


# -- when ----------------------------------------------------------------------------------


async def when_enabling(client: RawChat, want: SMExpect, resume: bool) -> Exchange:
    """Sends <enable/>; waits for the answer the profile expects (QUIET when none)."""
    mark = client.inbox.mark()
    silent = not want.available and want.disabled_enable_answer == "none"

    await client.enable_sm(resume, QUIET if silent else WAIT)

    ends = not want.available and want.disabled_enable_ends_stream
    # A usability probe is a stanza, which would count towards h: only after a refusal.
    return await exchange(client, mark, ends=ends, probe=not want.available)


async def when_dropped(held: RawChat, contact: ChatClient, window: float) -> Watch:
    """Drops the held session's TCP and watches the contact for `window` seconds, or
    until the unavailable presence comes."""
    mark = contact.inbox.mark()
    dropped = time.monotonic()

    await held.interrupt()
    with contextlib.suppress(StanzaTimeout, ServerClosed):
        await contact.inbox.wait_for(
            matches("presence", sender=held.jid, type_="unavailable"),
            "unavailable presence",
            window,
            mark,
        )

    arrivals = [(a.at - dropped, a.element) for a in contact.inbox.arrivals[mark:]]
    return Watch(held.jid, arrivals)


async def send_messages(sender: ChatClient, to: str, ids: list[str]) -> None:
    for msg_id in ids:
        await sender.send_message(to, f"chat {msg_id}", msg_id)


async def collect_messages(client: ChatClient, count: int) -> None:
    """Waits for `count` chats on the new connection, then a QUIET window for extras."""
    with contextlib.suppress(StanzaTimeout, ServerClosed):
        await client.inbox.wait_for_count(matches("message"), count, f"{count} chats", WAIT)
    await client.inbox.collect(QUIET)


# -- observing -----------------------------------------------------------------------------


def refusal(element: ET.Element) -> bool:
    """<failed/> or a stream error: the two ways a server refuses an SM element."""
    return is_sm("failed")(element) or element.tag == f"{{{STREAM_NS}}}error"


async def first_within(
    stream: RawStream, mark: int, predicate: Predicate, timeout: float, what: str = "an answer"
) -> None:
    """Waits for an answer; never raises: the judge says what was missing."""
    with contextlib.suppress(StanzaTimeout, ServerClosed):
        await stream.inbox.wait_for(predicate, what, timeout, mark)


async def answer_within(
    client: RawChat, mark: int, predicate: Predicate, what: str, timeout: float
) -> None:
    await first_within(client.stream, mark, predicate, timeout, what)


async def exchange(client: RawChat, mark: int, ends: bool, probe: bool = True) -> Exchange:
    """What arrived since `mark`; waits for the end of the stream when the profile says
    it ends, and otherwise (with `probe`) checks with a ping that the stream answers."""
    stream = client.stream
    if ends:
        with contextlib.suppress(StanzaTimeout):
            await stream.inbox.wait_closed(WAIT, "the end of the stream")
    usable = None
    if probe and not stream.state.ended_by_server and stream.tcp_closed_at is None:
        try:
            await client.barrier(WAIT)
            usable = True
        except (StanzaTimeout, ServerClosed, ConnectionError):
            usable = False
    return Exchange(
        stream.inbox.since(mark),
        stream.state.ended_by_server,
        stream.tcp_closed_at is not None,
        usable,
    )


async def exchange_before_bind(stream: RawStream, mark: int) -> Exchange:
    """After an SM failure before bind, the stream must still bind."""
    received = stream.inbox.since(mark)
    usable = await bind_works(stream)
    return Exchange(
        received, stream.state.ended_by_server, stream.tcp_closed_at is not None, usable
    )


async def exchange_before_auth(stream: RawStream, mark: int, account: Account) -> Exchange:
    """After an SM failure before auth, the stream must still authenticate."""
    received = stream.inbox.since(mark)
    try:
        answer = await stream.auth_plain(account.local, account.password, WAIT)
        usable = local_name(answer) == "success"
    except (StanzaTimeout, ServerClosed, ConnectionError):
        usable = False
    return Exchange(
        received, stream.state.ended_by_server, stream.tcp_closed_at is not None, usable
    )


async def bind_works(stream: RawStream) -> bool:
    try:
        await stream.bind(f"after-{stream.next_id('r')}", WAIT)
    except (AssertionError, ConnectionError):
        return False
    return True


async def judge_library_enable(want: SMExpect, client: ChatClient) -> list[str]:
    """A library asks for resumption; with the module off it must not get SM at all,
    and its session must still work."""
    answer = client.sm_answer
    usable = True
    try:
        await client.barrier(WAIT)
    except (StanzaTimeout, ServerClosed, ConnectionError):
        usable = False
    if want.available:
        return judge.judge_enable(want, True, Exchange([answer] if answer is not None else []))
    problems = []
    if answer is not None and local_name(answer) == "enabled":
        problems.append(f"available = false: the {client.stack} session got SM: {answer.attrib}")
    if not usable:
        problems.append(f"available = false: the {client.stack} session without SM did not work")
    return problems


def previd_of(client: ChatClient) -> str:
    answer = client.sm_answer
    return answer.get("id", "") if answer is not None else ""


def resumption(
    target: Target,
    client: ChatClient,
    answer: ET.Element | None,
    previd: str,
    client_sent: int | None,
) -> Resumption:
    """The new connection's view: `answer` to <resume/>, then everything after it."""
    after = [e for e in client.inbox.elements if e.tag != f"{{{SM_NS}}}resumed"]
    return Resumption(answer, after, previd, client.jid, target.domain, client_sent)
