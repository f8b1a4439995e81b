"""Metrics operators read: which names exist, which counters traffic moves, and the admin
APIs around them (MongooseIM GraphQL and REST, Prosody OpenMetrics, ejabberd statistics).

    test_metric_names_follow_profile                  names removed/added in 6.1.0
    test_rest_metric_names_follow_profile             the same names over MongooseIM REST
    test_version_probe_follows_profile                server.status.version, new in 6.1.0
    test_rest_cors_headers_follow_profile             CORS headers, dropped in 6.1.0
    test_rest_host_type_listing_follows_profile       HTTP 500 while mod_csi is on
    test_logins_raise_session_counters                session counters on login
    test_logouts_lower_session_counters               session counters on logout
    test_one_chat_moves_message_counters              stanza and byte counters of one chat
    test_stream_management_enable_moves_counters      <enable/> counted as a stanza in 6.1.0

The profile's [metrics] table names the API kind, and the reader is chosen from it; the
endpoint comes from the target's node ports and the credentials from its admin entry
(masked in every log and error). A check the profile gives nothing to look at is skipped
with the profile's reason. Counters are shared by all traffic on a server: each check
reads them before and after its own act, and every expected move is a lower bound, read
again until it holds or WAIT runs out. Counters that only grow cannot be spoiled by other
traffic; gauges that also shrink (sessions online, open connections) can, so where other
clients log in and out at the same time the login and logout checks may fail without a
fault: run them where the suite's traffic is the server's only traffic. They are marked
`sole_traffic`, so no other test of the run uses their server while they run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import httpx
import pytest

from clients.admin import Account
from clients.chat import RawChat, message_xml
from clients.inbox import ServerClosed, StanzaTimeout, local_name, matches
from clients.metrics import (
    EjabberdStatsReader,
    MetricName,
    MetricsError,
    MetricsReader,
    MongooseGraphQLReader,
    MongooseRestReader,
    OpenMetricsReader,
    cors_headers,
)
from clients.transcript import Transcript
from conftest import Sessions, Users
from harness.judges import metrics as judge
from harness.judges import verdict
from harness.judges.metrics import (
    CorsSeen,
    HostTypeListingSeen,
    Listing,
    MetricsExpect,
    Reading,
    StatusSeen,
)
from harness.targets import Target
from suites.steps import WAIT

log = logging.getLogger(__name__)

pytestmark = pytest.mark.area("metrics")

SM_NS = "urn:xmpp:sm:3"
# How many sessions the login and logout acts open and close.
LOGINS = 2
# How often counters are read again while an expected move has not shown yet.
POLL = 0.2
Quantities = dict[str, int | None]
Act = Callable[[], Awaitable[Quantities]]


@pytest.fixture
def want(target: Target) -> MetricsExpect:
    return MetricsExpect.of(target.profile)


@pytest.fixture
async def reader(target: Target, want: MetricsExpect) -> AsyncIterator[MetricsReader]:
    if want.api == "none":
        pytest.skip(f"profile {target.profile.name}: api = 'none' (no metrics API to read)")
    opened = open_reader(target, want.api)
    yield opened
    await opened.aclose()


@pytest.fixture
async def rest(target: Target, want: MetricsExpect) -> AsyncIterator[MongooseRestReader]:
    if want.rest == "none":
        pytest.skip(f"profile {target.profile.name}: rest = 'none' (no REST admin API)")
    opened = MongooseRestReader(target.node.url("rest"))
    yield opened
    await opened.aclose()


def open_reader(target: Target, api: str) -> MetricsReader:
    """The reader for the profile's API kind, at the target's first node."""
    node = target.node
    if api == "mongooseim-graphql":
        url = httpx.URL(node.url("graphql", "/api/graphql"))
        return MongooseGraphQLReader(
            str(url.copy_with(path="/")),
            target.admin.username,
            target.admin.password,
            path=url.path,
        )
    if api == "openmetrics":
        return OpenMetricsReader(node.url("http", "/metrics"))
    if api == "ejabberd-stats":
        return EjabberdStatsReader(node.url("http"))
    raise ValueError(f"no reader for metrics API {api!r}")


# -- names -----------------------------------------------------------------------------------


async def test_metric_names_follow_profile(
    target: Target, reader: MetricsReader, want: MetricsExpect, transcript: Transcript
) -> None:
    seen = await list_names(reader, want)

    transcript.note("metrics", f"{len(seen.names)} names listed {seen.error}".strip())
    verdict(judge.judge_names(want, seen), target.profile.name)


async def test_rest_metric_names_follow_profile(
    target: Target, rest: MongooseRestReader, want: MetricsExpect, transcript: Transcript
) -> None:
    seen = await list_rest_names(rest)

    transcript.note("rest", f"{len(seen.names)} names listed {seen.error}".strip())
    verdict(judge.judge_names(want, seen), target.profile.name)


async def list_rest_names(rest: MongooseRestReader) -> Listing:
    """Global names and one-segment host-type names: what the REST admin API lists."""
    try:
        return Listing(frozenset(await rest.names()), rest_shape=True)
    except MetricsError as exc:
        return Listing(frozenset(), rest_shape=True, error=str(exc))


async def list_names(reader: MetricsReader, want: MetricsExpect) -> Listing:
    """Every name the API lists; ejabberd lists none, so its `present` names are asked."""
    try:
        if isinstance(reader, EjabberdStatsReader):
            return Listing(frozenset(await answering_stats(reader, want.present)))
        if isinstance(reader, MongooseGraphQLReader | OpenMetricsReader):
            return Listing(frozenset(await reader.names()))
    except MetricsError as exc:
        return Listing(frozenset(), error=str(exc))
    raise TypeError(f"cannot list the names of a {type(reader).__name__}")


async def answering_stats(
    reader: EjabberdStatsReader, names: Sequence[MetricName]
) -> set[MetricName]:
    """The statistics ejabberd answers; it answers an unknown one with HTTP 500."""
    found: set[MetricName] = set()
    for name in names:
        try:
            await reader.stat(name[0])
        except MetricsError as exc:
            if exc.status != 500:
                raise
            log.info("ejabberd has no statistic %s: %s", name[0], exc)
            continue
        found.add(name)
    return found


# -- version probe and the REST admin API ----------------------------------------------------


async def test_version_probe_follows_profile(
    target: Target, want: MetricsExpect, transcript: Transcript
) -> None:
    skip_unless(
        want.version_probe != "none",
        target,
        "version_probe = 'none' (no MongooseIM server.status to ask for a version)",
    )

    seen = await observe_status(target)

    transcript.note("graphql", f"server.status: {seen.status or seen.error}")
    verdict(judge.judge_version_probe(want, seen), target.profile.name)


async def observe_status(target: Target) -> StatusSeen:
    """MongooseIM's server.status, asked with the version field and without if refused."""
    graphql = open_reader(target, "mongooseim-graphql")
    assert isinstance(graphql, MongooseGraphQLReader)
    try:
        return StatusSeen(await graphql.server_status())
    except MetricsError as exc:
        return StatusSeen(None, str(exc))
    finally:
        await graphql.aclose()


async def test_rest_cors_headers_follow_profile(
    target: Target, rest: MongooseRestReader, want: MetricsExpect, transcript: Transcript
) -> None:
    seen = await observe_cors(rest)

    transcript.note("rest", f"CORS: {seen}")
    verdict(judge.judge_rest_cors(want, seen), target.profile.name)


async def observe_cors(rest: MongooseRestReader) -> CorsSeen:
    try:
        await rest.index()
    except MetricsError as exc:
        return CorsSeen({}, None, {}, "", error=str(exc))
    got = rest.last_reply
    assert got is not None
    try:
        answer = await rest.preflight()
    except MetricsError as exc:
        if exc.status is None:
            return CorsSeen(cors_headers(got), None, {}, "", error=str(exc))
        answer = rest.history[-1]
    return CorsSeen(
        cors_headers(got), answer.status, cors_headers(answer), answer.headers.get("allow", "")
    )


async def test_rest_host_type_listing_follows_profile(
    target: Target, rest: MongooseRestReader, want: MetricsExpect, transcript: Transcript
) -> None:
    seen = await observe_host_type_listing(rest, target.domain)

    transcript.note("rest", f"host_type/{target.domain}: HTTP {seen.status} {seen.error}")
    verdict(judge.judge_rest_host_type_listing(want, seen), target.profile.name)


async def observe_host_type_listing(
    rest: MongooseRestReader, host_type: str
) -> HostTypeListingSeen:
    try:
        await rest.host_type_values(host_type)
    except MetricsError as exc:
        if exc.status is None:
            return HostTypeListingSeen(None, "", error=str(exc))
        answer = rest.history[-1]
        return HostTypeListingSeen(answer.status, answer.text)
    return HostTypeListingSeen(200, "")


# -- counters moved by traffic ---------------------------------------------------------------


@pytest.mark.sole_traffic
async def test_logins_raise_session_counters(
    target: Target,
    users: Users,
    sessions: Sessions,
    reader: MetricsReader,
    want: MetricsExpect,
    transcript: Transcript,
) -> None:
    skip_unless_moves(want, "login", target)
    accounts = await users.create(*[f"login{i}" for i in range(LOGINS)])

    seen = await observe_moves(reader, want, "login", lambda: log_in(sessions, accounts))

    note_reading(transcript, "login", seen)
    verdict(judge.judge_moves(want, "login", seen), target.profile.name)


@pytest.mark.sole_traffic
async def test_logouts_lower_session_counters(
    target: Target,
    users: Users,
    sessions: Sessions,
    reader: MetricsReader,
    want: MetricsExpect,
    transcript: Transcript,
) -> None:
    skip_unless_moves(want, "logout", target)
    accounts = await users.create(*[f"logout{i}" for i in range(LOGINS)])
    clients = await logged_in(sessions, accounts)

    seen = await observe_moves(reader, want, "logout", lambda: log_out(clients))

    note_reading(transcript, "logout", seen)
    verdict(judge.judge_moves(want, "logout", seen), target.profile.name)


async def test_one_chat_moves_message_counters(
    target: Target,
    users: Users,
    sessions: Sessions,
    reader: MetricsReader,
    want: MetricsExpect,
    transcript: Transcript,
) -> None:
    skip_unless_moves(want, "chat", target)
    sender, recipient = await given_online_pair(users, sessions)

    seen = await observe_moves(reader, want, "chat", lambda: one_chat(sender, recipient))

    note_reading(transcript, "chat", seen)
    verdict(judge.judge_moves(want, "chat", seen), target.profile.name)


async def test_stream_management_enable_moves_counters(
    target: Target,
    users: Users,
    sessions: Sessions,
    reader: MetricsReader,
    want: MetricsExpect,
    transcript: Transcript,
) -> None:
    skip_unless_moves(want, "sm_enable", target)
    (account,) = await users.create("smuser")
    (client,) = await logged_in(sessions, [account])

    seen = await observe_moves(reader, want, "sm_enable", lambda: enable_sm(client))

    note_reading(transcript, "sm_enable", seen)
    verdict(judge.judge_moves(want, "sm_enable", seen), target.profile.name)


async def observe_moves(
    reader: MetricsReader, want: MetricsExpect, act: str, drive: Act
) -> Reading:
    """Counters before, the act, then counters again until the profile's moves show or
    WAIT runs out; the judge decides on the last reading."""
    names = want.counted(act)
    try:
        before = await reader.counters(names)
    except MetricsError as exc:
        return Reading({}, {}, {}, error=str(exc))
    quantities = await drive()

    def settled(after: dict[MetricName, int]) -> bool:
        return not judge.judge_moves(want, act, Reading(before, after, quantities))

    try:
        after = await read_until(reader, names, settled)
    except MetricsError as exc:
        return Reading(before, {}, quantities, error=str(exc))
    log.info("%s: quantities %s, before %s, after %s", act, quantities, before, after)
    return Reading(before, after, quantities)


async def read_until(
    reader: MetricsReader,
    names: Sequence[MetricName],
    settled: Callable[[dict[MetricName, int]], bool],
) -> dict[MetricName, int]:
    """Reads the counters until `settled` holds or WAIT has passed; returns the last read."""
    deadline = time.monotonic() + WAIT
    while True:
        values = await reader.counters(names)
        if settled(values) or time.monotonic() >= deadline:
            return values
        await asyncio.sleep(POLL)


def no_traffic(quantities: Quantities) -> Act:
    """An act that drives nothing but claims what the real one would have measured."""

    async def nothing() -> Quantities:
        return dict(quantities)

    return nothing


# -- acts ------------------------------------------------------------------------------------


async def log_in(sessions: Sessions, accounts: list[Account]) -> Quantities:
    await logged_in(sessions, accounts)
    return {"logins": len(accounts)}


async def log_out(clients: list[RawChat]) -> Quantities:
    for client in clients:
        await client.close()
    return {"logins": len(clients)}


async def one_chat(sender: RawChat, recipient: RawChat) -> Quantities:
    """One chat of known size; measures its bytes as sent and as written to the recipient."""
    msg_id = sender.stream.next_id("metrics")
    text = message_xml(recipient.jid, "metrics", msg_id)
    start, mark = len(recipient.stream.raw_received), recipient.inbox.mark()

    sender.stream.send(text)
    delivered: int | None = None
    try:
        await recipient.inbox.wait_for(
            matches("message", attrs={"id": msg_id}), f"the chat {msg_id}", WAIT, mark
        )
        delivered = written_size(bytes(recipient.stream.raw_received[start:]), msg_id)
    except (StanzaTimeout, ServerClosed) as exc:
        log.warning("chat %s did not reach %s: %s", msg_id, recipient.jid, exc)

    return {"sent_bytes": len(text.encode()), "delivered_bytes": delivered}


def written_size(received: bytes, msg_id: str) -> int | None:
    """The bytes of the <message> with `msg_id` as the server wrote it, or None."""
    for quote in (b"'", b'"'):
        marker = b"id=" + quote + msg_id.encode() + quote
        at = received.find(marker)
        if at < 0:
            continue
        start = received.rfind(b"<message", 0, at)
        end = received.find(b"</message>", at)
        if start >= 0 and end >= 0:
            return end + len(b"</message>") - start
    return None


async def enable_sm(client: RawChat) -> Quantities:
    mark = client.inbox.mark()

    client.stream.send(f"<enable xmlns='{SM_NS}'/>")
    with contextlib.suppress(StanzaTimeout, ServerClosed):
        answer = await client.inbox.wait_for(
            lambda e: local_name(e) in ("enabled", "failed"), "<enabled/> or <failed/>", WAIT, mark
        )
        log.info("%s: stream management answered <%s/>", client.name, local_name(answer))

    return {}


# -- given -----------------------------------------------------------------------------------


async def logged_in(sessions: Sessions, accounts: list[Account]) -> list[RawChat]:
    """Raw sessions, one per account; a ping round trip shows each is fully open."""
    clients: list[RawChat] = []
    for i, account in enumerate(accounts):
        client = await sessions.login(f"user{i}", account, f"metrics{i}", stack="raw")
        assert isinstance(client, RawChat)
        await client.barrier(WAIT)
        clients.append(client)
    return clients


async def given_online_pair(users: Users, sessions: Sessions) -> tuple[RawChat, RawChat]:
    """Two fresh users in session, each has sent presence and had it processed."""
    accounts = await users.create("alice", "bob")
    sender, recipient = await logged_in(sessions, accounts)
    for client in (recipient, sender):
        await client.send_presence()
        await client.barrier(WAIT)
    return sender, recipient


def skip_unless(condition: bool, target: Target, reason: str) -> None:
    if not condition:
        pytest.skip(f"profile {target.profile.name}: {reason}")


def skip_unless_moves(want: MetricsExpect, act: str, target: Target) -> None:
    skip_unless(
        bool(want.moves[act]),
        target,
        f"{act} = [] (the profile names no counter this traffic must move)",
    )


def note_reading(transcript: Transcript, act: str, seen: Reading) -> None:
    names = [*seen.before, *(n for n in seen.after if n not in seen.before)]
    shown = {judge.show(n): (seen.before.get(n), seen.after.get(n)) for n in names}
    transcript.note("metrics", f"{act}: measured {seen.quantities}; before/after {shown}")
    if seen.error:
        transcript.note("metrics", f"{act}: {seen.error}")
