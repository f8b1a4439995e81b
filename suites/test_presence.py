"""Presence: RFC 6121 sections 3 and 4, and MongooseIM's mod_presence (new in 6.1.0).

    test_initial_presence_is_echoed_to_sender                    RFC 6121 4.2.2
    test_initial_presence_is_broadcast_to_subscribed_contact     RFC 6121 4.2.2
    test_login_probe_brings_back_contact_presence                RFC 6121 4.2.3
    test_clean_close_sends_unavailable_to_contact                RFC 6121 4.5.2
    test_tcp_drop_sends_unavailable_to_contact                   RFC 6121 4.5.2
    test_directed_presence_reaches_non_contact                   RFC 6121 4.6
    test_subscription_request_and_approval_reach_both_sides      RFC 6121 3.1
    test_presence_to_session_without_presence_follows_profile    6.0.0 delivers, 6.1.0 drops
    test_bare_jid_chat_before_presence_follows_profile           6.0.0 bounces, 6.1.0 delivers
    test_chat_flows_whatever_presence_configuration              RFC 6121 5

Every test runs on each target and each client stack with fresh users; what a target
must show comes from its profile's [presence] table. The checks of all these tests run
side by side (suites/batch.py); the test `test_<name>` passes or fails as its check
`check_<name>` did.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from clients.admin import Account
from clients.chat import ChatClient
from clients.inbox import matches
from conftest import Sessions, Users
from harness.judges import Seen, verdict
from harness.judges import presence as judge
from harness.judges.presence import PresenceExpect
from harness.lab import Lab
from harness.targets import Target
from suites.batch import Batch, run_batch
from suites.steps import WAIT, online, settle

pytestmark = [pytest.mark.area("presence"), pytest.mark.batched]

# The longest a check may take: logins of two library clients and a few bounded waits.
BOUND = 150.0


def presence_of(target: Target) -> PresenceExpect:
    return PresenceExpect.of(target.profile)


@pytest.fixture(scope="session")
def presence(lab: Lab, request: pytest.FixtureRequest) -> Iterator[Batch]:
    """The checks of every selected test of this module, started together (suites/batch.py)."""
    yield from run_batch("presence", __name__, presence_of, BOUND, lab, request)


def test_initial_presence_is_echoed_to_sender(
    target: Target, presence: Batch, request: pytest.FixtureRequest, stack: str
) -> None:
    presence.outcome(request)


def test_initial_presence_is_broadcast_to_subscribed_contact(
    target: Target, presence: Batch, request: pytest.FixtureRequest, stack: str
) -> None:
    presence.outcome(request)


def test_login_probe_brings_back_contact_presence(
    target: Target, presence: Batch, request: pytest.FixtureRequest, stack: str
) -> None:
    presence.outcome(request)


def test_clean_close_sends_unavailable_to_contact(
    target: Target, presence: Batch, request: pytest.FixtureRequest, stack: str
) -> None:
    presence.outcome(request)


def test_tcp_drop_sends_unavailable_to_contact(
    target: Target, presence: Batch, request: pytest.FixtureRequest, stack: str
) -> None:
    presence.outcome(request)


def test_directed_presence_reaches_non_contact(
    target: Target, presence: Batch, request: pytest.FixtureRequest, stack: str
) -> None:
    presence.outcome(request)


def test_subscription_request_and_approval_reach_both_sides(
    target: Target, presence: Batch, request: pytest.FixtureRequest, stack: str
) -> None:
    presence.outcome(request)


def test_presence_to_session_without_presence_follows_profile(
    target: Target, presence: Batch, request: pytest.FixtureRequest, stack: str
) -> None:
    presence.outcome(request)


def test_bare_jid_chat_before_presence_follows_profile(
    target: Target, presence: Batch, request: pytest.FixtureRequest, stack: str
) -> None:
    presence.outcome(request)


def test_chat_flows_whatever_presence_configuration(
    target: Target, presence: Batch, request: pytest.FixtureRequest, stack: str
) -> None:
    presence.outcome(request)


# -- checks: observe, then judge -----------------------------------------------------------


async def check_initial_presence_is_echoed_to_sender(
    target: Target, users: Users, sessions: Sessions, want: PresenceExpect, stack: str
) -> None:
    sender, contact = await given_online_contacts(users, sessions, want)

    seen = await when_sender_comes_online(sender, contact, want)

    verdict(judge.judge_self_echo(want, seen), target.profile.name)


async def check_initial_presence_is_broadcast_to_subscribed_contact(
    target: Target, users: Users, sessions: Sessions, want: PresenceExpect, stack: str
) -> None:
    sender, contact = await given_online_contacts(users, sessions, want)

    seen = await when_sender_comes_online(sender, contact, want)

    verdict(judge.judge_broadcast(want, seen), target.profile.name)


async def check_login_probe_brings_back_contact_presence(
    target: Target, users: Users, sessions: Sessions, want: PresenceExpect, stack: str
) -> None:
    sender, contact = await given_online_contacts(users, sessions, want)

    seen = await when_sender_comes_online(sender, contact, want)

    verdict(judge.judge_probe_answer(want, seen), target.profile.name)


async def check_clean_close_sends_unavailable_to_contact(
    target: Target, users: Users, sessions: Sessions, want: PresenceExpect, stack: str
) -> None:
    sender, contact = await given_online_contacts(users, sessions, want)
    await online(sender, want.wants("self_echo"))

    seen = await when_sender_leaves(sender, contact, want, drop=False)

    verdict(judge.judge_unavailable(want, seen, "close"), target.profile.name)


async def check_tcp_drop_sends_unavailable_to_contact(
    target: Target, users: Users, sessions: Sessions, want: PresenceExpect, stack: str
) -> None:
    sender, contact = await given_online_contacts(users, sessions, want)
    await online(sender, want.wants("self_echo"))

    seen = await when_sender_leaves(sender, contact, want, drop=True)

    verdict(judge.judge_unavailable(want, seen, "drop"), target.profile.name)


async def check_directed_presence_reaches_non_contact(
    target: Target, users: Users, sessions: Sessions, want: PresenceExpect, stack: str
) -> None:
    sender_account, stranger_account = await users.create("alice", "carol")
    sender = await sessions.login("alice", sender_account)
    stranger = await sessions.login("carol", stranger_account)
    await online(stranger, want.wants("self_echo"))
    await online(sender, want.wants("self_echo"))
    mark = stranger.inbox.mark()

    await sender.send_presence(to=stranger.jid, status="directed")
    await settle(
        stranger.inbox,
        mark,
        matches("presence", sender=sender.jid),
        want.wants("directed"),
        "directed presence",
    )

    seen = Seen({"sender": sender.jid}, {"stranger": stranger.inbox.since(mark)})
    verdict(judge.judge_directed(want, seen), target.profile.name)


async def check_subscription_request_and_approval_reach_both_sides(
    target: Target, users: Users, sessions: Sessions, want: PresenceExpect, stack: str
) -> None:
    sender_account, contact_account = await users.create("alice", "bob")
    sender = await sessions.login("alice", sender_account)
    contact = await sessions.login("bob", contact_account)
    await online(contact, want.wants("self_echo"))
    await online(sender, want.wants("self_echo"))
    contact_mark, sender_mark = contact.inbox.mark(), sender.inbox.mark()

    await sender.send_presence(to=contact_account.jid, type_="subscribe")
    await settle(
        contact.inbox,
        contact_mark,
        matches("presence", type_="subscribe", sender=sender_account.jid),
        want.wants("subscription_flow"),
        "subscription request",
    )
    await contact.send_presence(to=sender_account.jid, type_="subscribed")
    await settle(
        sender.inbox,
        sender_mark,
        matches("presence", sender=contact.jid, type_=""),
        want.wants("subscription_flow"),
        "contact's presence after approval",
    )

    seen = Seen(
        {"sender": sender.jid, "contact": contact.jid},
        {"contact": contact.inbox.since(contact_mark), "sender": sender.inbox.since(sender_mark)},
    )
    problems = judge.judge_subscription_request(want, seen)
    problems += judge.judge_subscription_approval(want, seen)
    verdict(problems, target.profile.name)


async def check_presence_to_session_without_presence_follows_profile(
    target: Target, users: Users, sessions: Sessions, want: PresenceExpect, stack: str
) -> None:
    sender, contact = await given_contacts(users, sessions)
    await online(sender, want.wants("self_echo"))
    mark = contact.inbox.mark()

    await sender.send_presence(to=contact.jid, status="directed")
    await settle(
        contact.inbox,
        mark,
        matches("presence", sender=sender.jid),
        want.routed and want.presence_before_initial == "delivered",
        "presence at a session that has not sent presence",
    )

    seen = Seen({"sender": sender.jid}, {"contact": contact.inbox.since(mark)})
    verdict(judge.judge_presence_before_initial(want, seen), target.profile.name)


async def check_bare_jid_chat_before_presence_follows_profile(
    target: Target, users: Users, sessions: Sessions, want: PresenceExpect, stack: str
) -> None:
    sender, contact = await given_contacts(users, sessions)
    await online(sender, want.wants("self_echo"))
    sender_mark, contact_mark = sender.inbox.mark(), contact.inbox.mark()

    await sender.send_message(contact.jid.split("/")[0], "to the bare JID", "bare-1")
    if want.bare_message_before_presence == "delivered":
        await settle(
            contact.inbox,
            contact_mark,
            matches("message", attrs={"id": "bare-1"}),
            True,
            "the chat at the contact",
        )
    else:
        await settle(
            sender.inbox,
            sender_mark,
            matches("message", type_="error", attrs={"id": "bare-1"}),
            True,
            "the bounce at the sender",
        )

    seen = Seen(
        {"sender": sender.jid, "contact": contact.jid},
        {"sender": sender.inbox.since(sender_mark), "contact": contact.inbox.since(contact_mark)},
    )
    verdict(judge.judge_bare_message_before_presence(want, seen, "bare-1"), target.profile.name)


async def check_chat_flows_whatever_presence_configuration(
    target: Target, users: Users, sessions: Sessions, want: PresenceExpect, stack: str
) -> None:
    sender, contact = await given_online_contacts(users, sessions, want)
    await online(sender, want.wants("self_echo"))
    mark = contact.inbox.mark()

    await sender.send_message(contact.jid, "to the full JID", "flow-full")
    await sender.send_message(contact.jid.split("/")[0], "to the bare JID", "flow-bare")
    await settle(
        contact.inbox,
        mark,
        matches("message", attrs={"id": "flow-bare"}),
        True,
        "the chat to the bare JID",
    )

    seen = Seen({"contact": contact.jid}, {"contact": contact.inbox.since(mark)})
    verdict(judge.judge_messages_flow(seen, ["flow-full", "flow-bare"]), target.profile.name)


# -- given ---------------------------------------------------------------------------------


async def given_contacts(users: Users, sessions: Sessions) -> tuple[ChatClient, ChatClient]:
    """Two fresh users with a mutual subscription, logged in, neither has sent presence."""
    sender_account, contact_account = await users.create("alice", "bob")
    if not await users.admin.connect_rosters(sender_account, contact_account):
        await subscribe_each_other(sessions, sender_account, contact_account)
    sender = await sessions.login("alice", sender_account)
    contact = await sessions.login("bob", contact_account)
    return sender, contact


async def given_online_contacts(
    users: Users, sessions: Sessions, want: PresenceExpect
) -> tuple[ChatClient, ChatClient]:
    """Mutual contacts; the contact has sent initial presence, the sender has not."""
    sender, contact = await given_contacts(users, sessions)
    await online(contact, want.wants("self_echo"))
    return sender, contact


async def subscribe_each_other(sessions: Sessions, first: Account, second: Account) -> None:
    """The RFC 6121 subscription handshake in both directions, on raw sessions.

    Used where the admin path cannot write rosters (Prosody, ejabberd). Needs presence
    routing: on a target without it the handshake times out with a clear message.
    """
    a = await sessions.login("setup-a", first, "setup", stack="raw")
    b = await sessions.login("setup-b", second, "setup", stack="raw")
    for client in (a, b):
        await client.send_presence()
        await client.barrier(WAIT)
    for asker, answerer in ((a, b), (b, a)):
        asker_bare, answerer_bare = asker.jid.split("/")[0], answerer.jid.split("/")[0]
        mark = answerer.inbox.mark()
        await asker.send_presence(to=answerer_bare, type_="subscribe")
        await answerer.inbox.wait_for(
            matches("presence", type_="subscribe", sender=asker_bare),
            f"subscription request from {asker_bare} (setup)",
            WAIT,
            mark,
        )
        mark = asker.inbox.mark()
        await answerer.send_presence(to=asker_bare, type_="subscribed")
        # RFC 6121 3.1.5: once approved, the answerer's available presence follows.
        await asker.inbox.wait_for(
            matches("presence", type_="", sender=answerer.jid),
            f"{answerer.jid}'s presence after approval (setup)",
            WAIT,
            mark,
        )
    for client in (a, b):
        await client.close()


# -- when ----------------------------------------------------------------------------------


async def when_sender_comes_online(
    sender: ChatClient, contact: ChatClient, want: PresenceExpect
) -> Seen:
    sender_mark, contact_mark = sender.inbox.mark(), contact.inbox.mark()

    await sender.send_presence()
    await settle(
        sender.inbox,
        sender_mark,
        matches("presence", sender=contact.jid),
        want.wants("probe_answer"),
        "the probe answer",
    )
    await settle(
        sender.inbox,
        sender_mark,
        matches("presence", sender=sender.jid),
        want.wants("self_echo"),
        "the presence echo",
    )
    await settle(
        contact.inbox,
        contact_mark,
        matches("presence", sender=sender.jid),
        want.wants("broadcast"),
        "the broadcast",
    )

    return Seen(
        {"sender": sender.jid, "contact": contact.jid},
        {"sender": sender.inbox.since(sender_mark), "contact": contact.inbox.since(contact_mark)},
    )


async def when_sender_leaves(
    sender: ChatClient, contact: ChatClient, want: PresenceExpect, drop: bool
) -> Seen:
    mark = contact.inbox.mark()

    await (sender.drop() if drop else sender.close())
    await settle(
        contact.inbox,
        mark,
        matches("presence", sender=sender.jid, type_="unavailable"),
        want.routed,
        "unavailable presence",
    )

    return Seen({"sender": sender.jid}, {"contact": contact.inbox.since(mark)})
