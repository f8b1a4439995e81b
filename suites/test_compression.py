"""Stream compression (XEP-0138), which MongooseIM 6.1.0 removed.

    test_compression_offer_before_auth_follows_profile                XEP-0138 section 2
    test_compression_offer_after_auth_follows_profile                 XEP-0138 section 2
    test_compress_before_auth_gets_the_answer_in_the_profile          XEP-0138 section 3
    test_compress_after_auth_gets_the_answer_in_the_profile           XEP-0138 sections 3, 7
    test_compressed_stream_restarts_and_binds_over_zlib               XEP-0138 section 3
    test_compress_with_unknown_method_gets_the_answer_in_the_profile  XEP-0138 section 3
    test_compress_without_method_gets_the_answer_in_the_profile       XEP-0138 section 3
    test_ignored_compress_leaves_the_stream_to_the_state_timeout      6.1.0 c2s_state_timeout

Every check opens its own raw connection (fresh users where it authenticates); what a
target must show comes from its profile's [compression] table. An answer that turns on
compression where the profile says it is refused fails naming the CRIME risk. Where a
server ignores <compress/> (6.1.0), the last test checks that the state timeout still
closes the stream, as its [timeouts] table says.

Most of a check is the QUIET window after an answer, which shows whether the stream stays
open, so the checks of all these tests, on every target, run side by side
(suites/batch.py); the test `test_<name>` passes or fails as its check `check_<name>` did.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from clients.inbox import ServerClosed, StanzaTimeout
from clients.raw import RawStream
from conftest import Sessions, Users
from harness.judges import compression as judge
from harness.judges import verdict
from harness.judges.answers import COMPRESS_NS, Reply, classify
from harness.judges.compression import CompressionExpect, Restart
from harness.judges.timeouts import judge_idle
from harness.lab import Lab
from harness.targets import Target
from suites.batch import Batch, run_batch
from suites.stream_steps import (
    ask,
    compress_request,
    describe_close,
    idle_bound,
    report,
    timeouts_of,
    watch_until_closed,
)

log = logging.getLogger(__name__)

pytestmark = [pytest.mark.area("compression"), pytest.mark.batched]


@pytest.fixture(scope="session")
def compression(lab: Lab, request: pytest.FixtureRequest) -> Iterator[Batch]:
    """The checks of every selected test of this module, started together (suites/batch.py)."""
    # The longest check watches an ignored <compress/> until the state timeout closes it.
    yield from run_batch("compression", __name__, compression_of, idle_bound, lab, request)


def compression_of(target: Target) -> CompressionExpect:
    if not target.profile.has(judge.AREA):
        pytest.skip(f"profile {target.profile.name} has no [{judge.AREA}] table")
    return CompressionExpect.of(target.profile)


def test_compression_offer_before_auth_follows_profile(
    target: Target, compression: Batch, request: pytest.FixtureRequest
) -> None:
    compression.outcome(request)


def test_compression_offer_after_auth_follows_profile(
    target: Target, compression: Batch, request: pytest.FixtureRequest
) -> None:
    compression.outcome(request)


def test_compress_before_auth_gets_the_answer_in_the_profile(
    target: Target, compression: Batch, request: pytest.FixtureRequest
) -> None:
    compression.outcome(request)


def test_compress_after_auth_gets_the_answer_in_the_profile(
    target: Target, compression: Batch, request: pytest.FixtureRequest
) -> None:
    compression.outcome(request)


def test_compressed_stream_restarts_and_binds_over_zlib(
    target: Target, compression: Batch, request: pytest.FixtureRequest
) -> None:
    compression.outcome(request)


def test_compress_with_unknown_method_gets_the_answer_in_the_profile(
    target: Target, compression: Batch, request: pytest.FixtureRequest
) -> None:
    compression.outcome(request)


def test_compress_without_method_gets_the_answer_in_the_profile(
    target: Target, compression: Batch, request: pytest.FixtureRequest
) -> None:
    compression.outcome(request)


@pytest.mark.parametrize(
    ("stage", "key"), [("stream_open", "answer_before_auth"), ("auth", "answer_after_auth")]
)
def test_ignored_compress_leaves_the_stream_to_the_state_timeout(
    target: Target, compression: Batch, request: pytest.FixtureRequest, stage: str, key: str
) -> None:
    compression.outcome(request)


# -- checks: observe, then judge -----------------------------------------------------------


async def check_compression_offer_before_auth_follows_profile(
    target: Target, users: Users, sessions: Sessions, want: CompressionExpect
) -> None:
    stream = await sessions.raw("alice")

    features = await stream.open_stream()

    verdict(judge.judge_offer(want, features, "before_auth"), target.profile.name)


async def check_compression_offer_after_auth_follows_profile(
    target: Target, users: Users, sessions: Sessions, want: CompressionExpect
) -> None:
    stream = await given_raw_user(users, sessions)

    features = stream.state.features

    verdict(judge.judge_offer(want, features, "after_auth"), target.profile.name)


async def check_compress_before_auth_gets_the_answer_in_the_profile(
    target: Target, users: Users, sessions: Sessions, want: CompressionExpect
) -> None:
    stream = await sessions.raw("alice")
    await stream.open_stream()

    reply = await when_compress_is_sent(stream, "zlib", want.answer_before_auth)

    verdict(judge.judge_answer(want, "answer_before_auth", reply), target.profile.name)


async def check_compress_after_auth_gets_the_answer_in_the_profile(
    target: Target, users: Users, sessions: Sessions, want: CompressionExpect
) -> None:
    stream = await given_raw_user(users, sessions)

    reply = await when_compress_is_sent(stream, "zlib", want.answer_after_auth)

    verdict(judge.judge_answer(want, "answer_after_auth", reply), target.profile.name)


async def check_compressed_stream_restarts_and_binds_over_zlib(
    target: Target, users: Users, sessions: Sessions, want: CompressionExpect
) -> None:
    if not want.accepts_after_auth():
        pytest.skip(f"answer_after_auth = {want.answer_after_auth!r}: no zlib stream to restart")
    stream = await given_raw_user(users, sessions)
    old_id = stream.state.header.get("id", "")

    reply = await when_compress_is_sent(stream, "zlib", want.answer_after_auth)
    problems = judge.judge_answer(want, "answer_after_auth", reply)
    if not problems:
        restart = await restart_over_zlib(stream)
        problems = judge.judge_restart(want, old_id, restart)

    verdict(problems, target.profile.name)


async def check_compress_with_unknown_method_gets_the_answer_in_the_profile(
    target: Target, users: Users, sessions: Sessions, want: CompressionExpect
) -> None:
    stream = await given_raw_user(users, sessions)

    reply = await when_compress_is_sent(stream, "x-unknown", want.answer_unknown_method)

    verdict(judge.judge_answer(want, "answer_unknown_method", reply), target.profile.name)


async def check_compress_without_method_gets_the_answer_in_the_profile(
    target: Target, users: Users, sessions: Sessions, want: CompressionExpect
) -> None:
    stream = await given_raw_user(users, sessions)

    reply = await when_compress_is_sent(stream, None, want.answer_missing_method)

    verdict(judge.judge_answer(want, "answer_missing_method", reply), target.profile.name)


async def check_ignored_compress_leaves_the_stream_to_the_state_timeout(
    target: Target,
    users: Users,
    sessions: Sessions,
    want: CompressionExpect,
    stage: str,
    key: str,
) -> None:
    if getattr(want, key) != "ignored":
        pytest.skip(f"{key} = {getattr(want, key)!r}: the server answers <compress/>")
    timeouts = timeouts_of(target)
    stream = await sessions.raw("alice")
    if stage == "auth":
        (account,) = await users.create("alice")
        await stream.authenticate(account.local, account.password)
    else:
        await stream.open_stream()
    since, mark = stream.inbox.arrivals[-1].at, stream.inbox.mark()

    reply = await when_compress_is_sent(stream, "zlib", "ignored")
    seen = await watch_until_closed(stream, stage, since, mark, timeouts.watch_for())
    report("close after the ignored <compress/>", describe_close(seen))

    problems = judge.judge_answer(want, key, reply) + judge_idle(timeouts, seen)
    verdict(problems, target.profile.name)


# -- given -------------------------------------------------------------------------------


async def given_raw_user(users: Users, sessions: Sessions) -> RawStream:
    """A fresh user authenticated on a raw stream, after the post-auth restart."""
    (account,) = await users.create("alice")
    stream = await sessions.raw("alice")
    await stream.authenticate(account.local, account.password)
    return stream


# -- when --------------------------------------------------------------------------------


async def when_compress_is_sent(stream: RawStream, method: str | None, spec: str) -> Reply:
    reply = await ask(stream, compress_request(method), spec)
    report("answer", classify(reply, COMPRESS_NS))
    return reply


async def restart_over_zlib(stream: RawStream) -> Restart:
    """Switches to zlib, restarts the stream and binds (XEP-0138 section 3)."""
    stream.start_compression()
    try:
        features = await stream.open_stream()
        jid = await stream.bind("zlib")
    except (StanzaTimeout, ServerClosed, ConnectionError, AssertionError) as exc:
        return Restart(stream.state.header, stream.state.features, "", str(exc))
    log.info(
        "%s: bound %s over zlib, stream id %s", stream.name, jid, stream.state.header.get("id")
    )
    return Restart(stream.state.header, features, jid)
