"""Rolling-upgrade rehearsal: a 6.0.0 node and a 6.1.0 node in one MongooseIM cluster.

    test_600_and_610_nodes_form_one_cluster                         joined
    test_chat_from_600_node_to_610_node_is_lost_without_error       chat_old_to_new
    test_chat_from_610_node_to_600_node_is_lost_without_error       chat_new_to_old
    test_iq_from_600_node_to_610_node_is_lost_without_error         iq_old_to_new
    test_iq_from_610_node_to_600_node_is_lost_without_error         iq_new_to_old
    test_presence_from_600_node_to_610_node_is_lost_without_error   presence_old_to_new
    test_presence_from_610_node_to_600_node_is_lost_without_error   presence_new_to_old
    test_both_nodes_list_both_users_around_a_cross_version_chat     sessions_listed
    test_same_node_chat_and_presence_are_delivered (each node)      same_node
    test_cross_version_routing_summary_matches_profile              the report's summary
    test_after_610_node_leaves_chats_to_its_users_bounce_with_503   leave_splits,
        leave_stream_error, after_leave, after_leave_error, departed_node_keeps_accounts

MongooseIM's migration guide (doc/migrations/6.0.0_6.1.0.md, "Rolling upgrade issues")
warns that stanzas between users on a 6.0.0 node and a 6.1.0 node of one cluster are lost
while both nodes still show the recipient online. These tests rehearse that state with
real clients on each node; what each step must show comes from the [cluster] table of the
target's profile. The last test splits the cluster (`leave_cluster` on the new node), so
it stays last, and it runs only on nodes this run started.

The rehearsal needs a target of two or more nodes; on any other target every test is
skipped before its servers are started.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass

import allure
import pytest

from clients.admin import Account, AdminError, GraphQLAdmin
from clients.chat import ChatClient, RawChat
from clients.cluster_admin import NodeAdmin
from clients.inbox import STREAM_NS, matches
from conftest import Sessions, Users, chosen_targets
from harness.judges import bare, verdict
from harness.judges import cluster as judge
from harness.judges.cluster import ClusterExpect, Routed, Tally
from harness.targets import Target, TargetError
from suites.steps import WAIT, online, settle

log = logging.getLogger(__name__)

pytestmark = pytest.mark.area("cluster")

SINGLE_NODE = "the mixed-cluster rehearsal needs a target with a 6.0.0 and a 6.1.0 node"
NOT_OURS = "the split step runs leave_cluster, which this suite does only on nodes it started"
# How long the nodes may take to agree on who is in the cluster: after start-up, where the
# health checks already waited for the join, and after a leave.
MEMBERSHIP_WAIT = 30.0
# How often a bounded poll of the admin API asks again.
POLL = 0.5
OLD_TO_NEW, NEW_TO_OLD = "old_to_new", "new_to_old"

Membership = dict[str, list[str]]


@pytest.fixture(scope="session", autouse=True)
def only_cluster_targets(target_name: str, request: pytest.FixtureRequest) -> None:
    """Skips single-node targets before the run starts any server for this module."""
    chosen = {t.name: t for t in chosen_targets(request.config)}
    if len(chosen[target_name].nodes) < 2:
        pytest.skip(SINGLE_NODE)


@pytest.fixture
def want(target: Target) -> ClusterExpect:
    return ClusterExpect.of(target.profile).check_nodes(len(target.nodes), target.name)


@pytest.fixture
def nodes(target: Target, want: ClusterExpect) -> dict[str, NodeAdmin]:
    """The admin paths of the old and the new node, by side."""
    if target.admin.kind != "mongooseim-graphql":
        raise TargetError(
            f"{target.name}: the rehearsal reads each node through MongooseIM's admin GraphQL; "
            f"admin.kind is {target.admin.kind!r}"
        )
    return {side: node_admin(target, want, side) for side in judge.SIDES}


def node_admin(target: Target, want: ClusterExpect, side: str) -> NodeAdmin:
    node = target.nodes[want.node(side)]
    graphql = GraphQLAdmin(
        node.url("graphql", "/api/graphql"), target.admin.username, target.admin.password
    )
    return NodeAdmin(want.label(side), graphql, node.container)


@pytest.fixture(scope="module")
def tally(target_name: str) -> Tally:
    """The stanzas this module sent across versions on one target, for the summary."""
    return Tally()


@dataclass
class Pair:
    """Two fresh users logged in on the nodes a test chose: the sender and the recipient."""

    sender: ChatClient
    recipient: ChatClient
    sender_account: Account
    recipient_account: Account


@dataclass
class Rehearsal:
    """What every routing test works with, on a cluster known to be formed."""

    target: Target
    users: Users
    sessions: Sessions
    want: ClusterExpect
    nodes: dict[str, NodeAdmin]
    tally: Tally
    record: Callable[[str, object], None]

    async def users_on(
        self, sender_side: str, recipient_side: str, contacts: bool = False
    ) -> Pair:
        """Fresh users: the sender on the `sender_side` node ("old" or "new"), the
        recipient on the `recipient_side` node; mutual contacts if asked."""
        sender_account, recipient_account = await self.users.create("alice", "bob")
        if contacts and not await self.users.admin.connect_rosters(
            sender_account, recipient_account
        ):
            raise TargetError(f"{self.target.name}: the admin path cannot write rosters")
        sender = await self.sessions.login(
            "alice", sender_account, node=self.want.node(sender_side)
        )
        recipient = await self.sessions.login(
            "bob", recipient_account, node=self.want.node(recipient_side)
        )
        log.info(
            "%s on %s, %s on %s",
            sender.jid,
            self.want.label(sender_side),
            recipient.jid,
            self.want.label(recipient_side),
        )
        return Pair(sender, recipient, sender_account, recipient_account)

    def count(self, direction: str, routed: Routed) -> None:
        """Adds a cross-version stanza to the summary and to this test's properties."""
        self.tally.add(direction, routed)
        fate = judge.fate_of(routed)
        self.record(f"{routed.kind}_{direction}", fate)
        log.info("%s %s: %s", routed.kind, direction, fate)

    def verdict(self, problems: list[str]) -> None:
        verdict(problems, self.target.profile.name)


@pytest.fixture
async def rehearsal(
    target: Target,
    users: Users,
    sessions: Sessions,
    want: ClusterExpect,
    nodes: dict[str, NodeAdmin],
    tally: Tally,
    record_property: Callable[[str, object], None],
) -> Rehearsal:
    """The target's nodes form one cluster: without it no cross-node check means anything."""
    running = await membership(nodes, judge.one_cluster, sessions)
    if not judge.one_cluster(running):
        shown = "; ".join(f"{label} lists {names}" for label, names in running.items())
        pytest.fail(
            f"{target.name}: the nodes do not form one cluster after {MEMBERSHIP_WAIT:g} s, "
            f"so there is nothing to rehearse: {shown}",
            pytrace=False,
        )
    return Rehearsal(target, users, sessions, want, nodes, tally, record_property)


# -- the cluster --------------------------------------------------------------------------


async def test_600_and_610_nodes_form_one_cluster(
    target: Target, nodes: dict[str, NodeAdmin], want: ClusterExpect
) -> None:
    settled = judge.one_cluster if want.joined else judge.each_alone

    running = await membership(nodes, settled)

    verdict(judge.judge_joined(want, running), target.profile.name)


# -- routing across versions --------------------------------------------------------------


async def test_chat_from_600_node_to_610_node_is_lost_without_error(rehearsal: Rehearsal) -> None:
    pair = await rehearsal.users_on("old", "new")

    routed = await when_sent("chat", pair.sender, pair.recipient, rehearsal.want.chat_old_to_new)

    rehearsal.count(OLD_TO_NEW, routed)
    rehearsal.verdict(judge.judge_cross_version(rehearsal.want, OLD_TO_NEW, routed))


async def test_chat_from_610_node_to_600_node_is_lost_without_error(rehearsal: Rehearsal) -> None:
    pair = await rehearsal.users_on("new", "old")

    routed = await when_sent("chat", pair.sender, pair.recipient, rehearsal.want.chat_new_to_old)

    rehearsal.count(NEW_TO_OLD, routed)
    rehearsal.verdict(judge.judge_cross_version(rehearsal.want, NEW_TO_OLD, routed))


async def test_iq_from_600_node_to_610_node_is_lost_without_error(rehearsal: Rehearsal) -> None:
    pair = await rehearsal.users_on("old", "new")

    routed = await when_sent("iq", pair.sender, pair.recipient, rehearsal.want.iq_old_to_new)

    rehearsal.count(OLD_TO_NEW, routed)
    rehearsal.verdict(judge.judge_cross_version(rehearsal.want, OLD_TO_NEW, routed))


async def test_iq_from_610_node_to_600_node_is_lost_without_error(rehearsal: Rehearsal) -> None:
    pair = await rehearsal.users_on("new", "old")

    routed = await when_sent("iq", pair.sender, pair.recipient, rehearsal.want.iq_new_to_old)

    rehearsal.count(NEW_TO_OLD, routed)
    rehearsal.verdict(judge.judge_cross_version(rehearsal.want, NEW_TO_OLD, routed))


async def test_presence_from_600_node_to_610_node_is_lost_without_error(
    rehearsal: Rehearsal,
) -> None:
    pair = await rehearsal.users_on("old", "new", contacts=True)
    await online(pair.recipient, echo_expected=True)

    # The sender's initial presence, which the server broadcasts to its contacts.
    routed = await when_sent(
        "presence", pair.sender, pair.recipient, rehearsal.want.presence_old_to_new
    )

    rehearsal.count(OLD_TO_NEW, routed)
    rehearsal.verdict(judge.judge_cross_version(rehearsal.want, OLD_TO_NEW, routed))


async def test_presence_from_610_node_to_600_node_is_lost_without_error(
    rehearsal: Rehearsal,
) -> None:
    pair = await rehearsal.users_on("new", "old", contacts=True)
    await online(pair.recipient, echo_expected=True)
    await online(pair.sender, echo_expected=True)

    # A presence update of a sender that is already online.
    routed = await when_sent(
        "presence", pair.sender, pair.recipient, rehearsal.want.presence_new_to_old
    )

    rehearsal.count(NEW_TO_OLD, routed)
    rehearsal.verdict(judge.judge_cross_version(rehearsal.want, NEW_TO_OLD, routed))


# -- what the nodes believe, and the control ----------------------------------------------


async def test_both_nodes_list_both_users_around_a_cross_version_chat(
    rehearsal: Rehearsal,
) -> None:
    want = rehearsal.want
    pair = await rehearsal.users_on("old", "new")
    logged_in = {pair.sender.jid: want.label("old"), pair.recipient.jid: want.label("new")}
    before = await listed_sessions(rehearsal, logged_in)

    routed = await when_sent("chat", pair.sender, pair.recipient, want.chat_old_to_new)
    after = await listed_sessions(rehearsal, logged_in)

    rehearsal.count(OLD_TO_NEW, routed)
    problems = judge.judge_sessions(want, logged_in, before, "before the chat")
    moment = f"after the chat, which was {judge.fate_of(routed)}"
    rehearsal.verdict(problems + judge.judge_sessions(want, logged_in, after, moment))


@pytest.mark.parametrize("side", judge.SIDES, ids=["old-node", "new-node"])
async def test_same_node_chat_and_presence_are_delivered(rehearsal: Rehearsal, side: str) -> None:
    fate = rehearsal.want.same_node
    pair = await rehearsal.users_on(side, side, contacts=True)
    await online(pair.recipient, echo_expected=True)

    routed = [
        await when_sent("presence", pair.sender, pair.recipient, fate),
        await when_sent("chat", pair.sender, pair.recipient, fate),
        await when_sent("chat", pair.recipient, pair.sender, fate),
    ]

    rehearsal.verdict(judge.judge_same_node(rehearsal.want, routed))


async def test_cross_version_routing_summary_matches_profile(rehearsal: Rehearsal) -> None:
    if not rehearsal.tally.sent:
        pytest.skip(
            "no stanza went across versions in this run: the summary needs the tests above"
        )

    line = rehearsal.tally.summary(rehearsal.want)

    log.info("%s: %s", rehearsal.target.name, line)
    allure.attach(line, name="cross-version routing", attachment_type=allure.attachment_type.TEXT)
    rehearsal.record("cross_version_routing", line)
    rehearsal.verdict(judge.judge_tally(rehearsal.want, rehearsal.tally))


# -- the split step (last: it takes the new node out of the cluster) ----------------------


async def test_after_610_node_leaves_chats_to_its_users_bounce_with_503(
    rehearsal: Rehearsal,
) -> None:
    if not rehearsal.target.managed:
        pytest.skip(NOT_OURS)
    want, nodes = rehearsal.want, rehearsal.nodes
    pair = await rehearsal.users_on("old", "new")
    departed = pair.recipient
    mark = departed.inbox.mark()

    output = await nodes["new"].leave_cluster()
    rehearsal.sessions.transcript.note("leave_cluster", output.strip().replace("\n", " | "))
    notice = await when_departed_told(departed, mark, want)
    running = await membership(nodes, split_as(want), rehearsal.sessions)
    await until_unlisted(nodes["old"], departed.jid)
    full = await when_sent("chat", pair.sender, departed, want.after_leave)
    to_bare = await when_sent("chat", pair.sender, departed, want.after_leave, bare(departed.jid))
    answer = await when_logging_in_again(rehearsal, pair.recipient_account, want.node("new"))

    problems = judge.judge_leave_notice(want, notice) + judge.judge_split(want, running)
    problems += judge.judge_after_leave(want, full) + judge.judge_after_leave(want, to_bare)
    rehearsal.verdict(problems + judge.judge_departed_accounts(want, answer))


# -- when ---------------------------------------------------------------------------------


async def when_sent(
    kind: str, sender: ChatClient, recipient: ChatClient, expected: str, to: str = ""
) -> Routed:
    """Sends one stanza of `kind` and watches both ends as long as its expected fate needs:
    up to WAIT for a delivery or a bounce, the QUIET window for a loss."""
    to = to or recipient.jid
    marker = f"{kind}-{secrets.token_hex(4)}"
    sender_mark, recipient_mark = sender.inbox.mark(), recipient.inbox.mark()

    await send(kind, sender, to, marker)
    arrival = judge.is_arrival(kind, sender.jid, marker)
    if expected == "bounced":
        bounce = judge.is_bounce(kind, to, marker)
        await settle(sender.inbox, sender_mark, bounce, True, f"an error for {kind} {marker}")
    else:
        what = f"{kind} {marker} from {sender.jid}"
        await settle(recipient.inbox, recipient_mark, arrival, expected == "delivered", what)

    return Routed(
        kind,
        sender.jid,
        to,
        marker,
        recipient.inbox.since(recipient_mark),
        sender.inbox.since(sender_mark),
    )


async def send(kind: str, sender: ChatClient, to: str, marker: str) -> None:
    if kind == "chat":
        await sender.send_message(to, f"rehearsal {marker}", marker)
    elif kind == "iq":
        if not isinstance(sender, RawChat):
            raise TypeError(f"{sender.name}: IQs are sent on the raw stack, not {sender.stack}")
        ping = "<ping xmlns='urn:xmpp:ping'/>"
        sender.stream.send(f"<iq type='get' id='{marker}' to='{to}'>{ping}</iq>")
    else:
        # Presence goes to the sender's contacts; the marker is its <status/>.
        await sender.send_presence(status=marker)


async def when_departed_told(
    departed: ChatClient, mark: int, want: ClusterExpect
) -> list[ET.Element]:
    """What the departed node's user receives while its node leaves."""
    await settle(
        departed.inbox,
        mark,
        matches("error", xmlns=STREAM_NS),
        bool(want.leave_stream_error),
        "a stream error from the departing node",
    )
    return departed.inbox.since(mark)


async def when_logging_in_again(rehearsal: Rehearsal, account: Account, node: int) -> ET.Element:
    """The SASL answer of the departed node to a user registered before the leave."""
    stream = await rehearsal.sessions.raw("bob-again", node=node)
    await stream.open_stream(WAIT)
    return await stream.auth_plain(account.local, account.password, WAIT)


def split_as(want: ClusterExpect) -> Callable[[Membership], bool]:
    return judge.each_alone if want.leave_splits else judge.one_cluster


async def membership(
    nodes: dict[str, NodeAdmin],
    settled: Callable[[Membership], bool],
    sessions: Sessions | None = None,
) -> Membership:
    """Each node's running Mnesia nodes, read until `settled` holds or MEMBERSHIP_WAIT has
    passed; then the last reading, for the judge. A node that does not answer at all
    within the bound is an AdminError naming it."""
    deadline = time.monotonic() + MEMBERSHIP_WAIT
    while True:
        try:
            running = {n.label: await n.running_db_nodes() for n in nodes.values()}
        except AdminError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(POLL)
            continue
        if settled(running) or time.monotonic() > deadline:
            if sessions is not None:
                for label, names in running.items():
                    sessions.transcript.note("GraphQL", f"running_db_nodes on {label}: {names}")
            return running
        await asyncio.sleep(POLL)


async def listed_sessions(rehearsal: Rehearsal, logged_in: dict[str, str]) -> Membership:
    """The full JIDs each node lists, read until they match the profile or WAIT passes."""
    deadline = time.monotonic() + WAIT
    while True:
        listed = {
            n.label: [row.user for row in await n.list_sessions()]
            for n in rehearsal.nodes.values()
        }
        fits = not judge.judge_sessions(rehearsal.want, logged_in, listed, "")
        if fits or time.monotonic() > deadline:
            for label, jids in listed.items():
                rehearsal.sessions.transcript.note("GraphQL", f"listSessions on {label}: {jids}")
            return listed
        await asyncio.sleep(POLL)


async def until_unlisted(node: NodeAdmin, jid: str) -> None:
    """Waits, up to WAIT, for a node to drop a session of the departed node."""
    deadline = time.monotonic() + WAIT
    while any(row.user == jid for row in await node.list_sessions()):
        if time.monotonic() > deadline:
            log.warning("%s still lists %s %.1f s after the leave", node.label, jid, WAIT)
            return
        await asyncio.sleep(POLL)
