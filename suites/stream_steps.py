"""Observing the start of a stream on the raw client: answers, idle closes, SASL attempts.

These steps only observe; the judges in harness.judges decide. Every wait is bounded:
expected answers by WAIT, "nothing arrives" by the QUIET window, idle connections by the
profile's timeout window (TimeoutExpect.watch_for).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import allure
import pytest

from clients.admin import Account
from clients.chat import Endpoint
from clients.inbox import ServerClosed, StanzaTimeout, local_name
from clients.raw import RawStream
from clients.transcript import Transcript
from harness.judges import timeouts
from harness.judges.answers import Expected, Reply, stream_errors
from harness.judges.pre_session import SaslRun
from harness.judges.timeouts import IdleClose, TimeoutExpect
from harness.targets import Target
from suites.batch import measured, steady
from suites.steps import QUIET, WAIT

log = logging.getLogger(__name__)

COMPRESS_NS = "http://jabber.org/protocol/compress"
KEEPALIVE_EVERY = 0.5
# Seconds to register a user and log in before an idle watch starts.
IDLE_SETUP = 30.0


def timeouts_of(target: Target) -> TimeoutExpect:
    """The target's [timeouts] expectations; a check that needs them skips without them."""
    if not target.profile.has(timeouts.AREA):
        pytest.skip(f"profile {target.profile.name} has no [{timeouts.AREA}] table")
    return TimeoutExpect.of(target.profile)


def idle_bound(target: Target) -> float:
    """The longest a check that watches an idle stream may take on the target: the watch
    window, and the login before it."""
    if not target.profile.has(timeouts.AREA):
        return IDLE_SETUP
    return TimeoutExpect.of(target.profile).watch_for() + IDLE_SETUP


def report(name: str, value: str) -> None:
    """Shows a measured value in the report (not part of the test's identity) and the log."""
    log.info("measured %s: %s", name, value)
    if not measured(name, value):
        allure.dynamic.parameter(name, value, excluded=True)


def compress_request(method: str | None) -> str:
    """<compress/> with one method, or with none when `method` is None."""
    inner = "" if method is None else f"<method>{method}</method>"
    return f"<compress xmlns='{COMPRESS_NS}'>{inner}</compress>"


async def ask(stream: RawStream, request: str, spec: str) -> Reply:
    """Sends one request and collects the answer the way the expected `spec` needs.

    An expected silence is watched for QUIET; an expected answer is awaited up to WAIT,
    and QUIET more shows whether the stream then stays open; after a stream error the
    close is awaited up to WAIT.
    """
    expected = Expected.parse(spec, "expected answer")
    mark = stream.inbox.mark()
    started = time.monotonic()
    stream.send(request)
    if expected.kind == "ignored":
        await stream.inbox.collect(QUIET)
    else:
        with contextlib.suppress(StanzaTimeout, ServerClosed):
            await stream.inbox.wait_for(lambda _e: True, f"an answer to {request}", WAIT, mark)
        if stream.inbox.closed_at is None:
            ended = stream_errors(stream.inbox.since(mark)) or expected.kind == "closed"
            if ended:
                with contextlib.suppress(StanzaTimeout):
                    await stream.inbox.wait_closed(WAIT, "the close after the stream error")
            else:
                await stream.inbox.collect(QUIET)
    reply = Reply(
        tuple(stream.inbox.since(mark)),
        stream.inbox.closed_at is not None,
        time.monotonic() - started,
    )
    log.info(
        "%s: %s -> %d element(s), closed=%s",
        stream.name,
        request,
        len(reply.elements),
        reply.closed,
    )
    return reply


async def reach_stage(
    stream: RawStream, stage: str, account: Account | None, resource: str
) -> float:
    """Drives a fresh connection to `stage`; returns when the stage started (monotonic)."""
    if stage == "connect":
        return stream.connected_at
    if stage == "stream_open":
        await stream.open_stream()
    elif account is None:
        raise ValueError(f"stage {stage} needs an account")
    elif stage == "auth":
        await stream.authenticate(account.local, account.password)
    elif stage == "bind":
        await stream.authenticate(account.local, account.password)
        await stream.bind(resource)
    elif stage == "session":
        await stream.login(account.local, account.password, resource)
    else:
        raise ValueError(f"unknown stage {stage}")
    return time.monotonic()


async def watch_idle(
    endpoint: Endpoint,
    stage: str,
    watch: float,
    transcript: Transcript,
    account: Account | None = None,
    keepalive: bool = False,
) -> IdleClose:
    """Opens a connection, takes it to `stage`, then stays idle (or sends whitespace
    keepalives) until the server closes it or `watch` seconds have passed."""
    name = f"idle-{stage}{'-ws' if keepalive else ''}"
    stream = await RawStream.connect(
        name, endpoint.host, endpoint.port, transcript, endpoint.domain
    )
    try:
        since = await reach_stage(stream, stage, account, f"idle-{stage}")
        steady()
        mark = stream.inbox.mark() if stage != "connect" else 0
        return await watch_until_closed(stream, stage, since, mark, watch, keepalive)
    finally:
        await stream.aclose()


async def watch_until_closed(
    stream: RawStream, stage: str, since: float, mark: int, watch: float, keepalive: bool = False
) -> IdleClose:
    """Waits (sending a space every KEEPALIVE_EVERY s if asked) until the server closes
    the connection or `watch` seconds from `since` have passed; everything the server sent
    from inbox index `mark` on goes into the observation."""
    keeper = asyncio.create_task(_keep_alive(stream)) if keepalive else None
    with contextlib.suppress(StanzaTimeout):
        await stream.inbox.wait_closed(
            max(0.0, since + watch - time.monotonic()), f"the close of the idle {stage}"
        )
    sent = await _stop(keeper)
    closed_at = _server_closed_at(stream)
    seen = IdleClose(
        stage=stage,
        watched=time.monotonic() - since,
        closed_after=None if closed_at is None else closed_at - since,
        elements=tuple(stream.inbox.since(mark)),
        header_seen=bool(stream.state.header),
        stream_ended=stream.state.ended_by_server,
        keepalives=sent,
    )
    closed = describe_close(seen)
    stream.transcript.note(stream.name, f"idle from the {stage} stage on: {closed}")
    log.info(
        "%s: idle from the %s stage%s: %s",
        stream.name,
        stage,
        " with whitespace keepalives" if keepalive else "",
        closed,
    )
    return seen


def _server_closed_at(stream: RawStream) -> float | None:
    """When the server ended the connection: its </stream:stream> or its TCP close,
    whichever came first; None while it has done neither."""
    ends = [t for t in (stream.tcp_closed_at, stream.inbox.closed_at) if t is not None]
    if stream.tcp_closed_at is None and not stream.state.ended_by_server:
        return None
    return min(ends)


def describe_close(seen: IdleClose) -> str:
    if seen.closed_after is None:
        return f"still open after {seen.watched:.2f} s"
    return f"closed by the server after {seen.closed_after:.2f} s"


async def _keep_alive(stream: RawStream) -> int:
    sent = 0
    with contextlib.suppress(asyncio.CancelledError):
        while stream.inbox.closed_at is None:
            try:
                stream.send(" ")
            except ConnectionError:
                break
            sent += 1
            await asyncio.sleep(KEEPALIVE_EVERY)
    return sent


async def _stop(keeper: asyncio.Task[int] | None) -> int:
    if keeper is None:
        return 0
    keeper.cancel()
    return await keeper


async def sasl_attempts(stream: RawStream, account: Account, wrong: int) -> SaslRun:
    """Up to `wrong` wrong-password attempts, each sent once the previous one was answered;
    then, if the stream is still open, the right password. Stops at the server's close."""
    await stream.open_stream()
    answers = []
    for attempt in range(1, wrong + 1):
        try:
            answers.append(await stream.auth_plain(account.local, f"wrong-{attempt}", WAIT))
        except ServerClosed:
            break
        except StanzaTimeout:
            log.warning("%s: wrong attempt %d got no answer in %g s", stream.name, attempt, WAIT)
            break
    final = None
    if stream.inbox.closed_at is None:
        with contextlib.suppress(StanzaTimeout, ServerClosed):
            final = await stream.auth_plain(account.local, account.password, WAIT)
    closed = stream.inbox.closed_at is not None and final is None
    run = SaslRun(
        attempts=len(answers) + (1 if closed and len(answers) < wrong else 0),
        answers=tuple(answers),
        closed_after=len(answers) if closed else None,
        final=final,
    )
    log.info(
        "%s: %d wrong attempt(s) answered, closed after %s, right password: %s",
        stream.name,
        len(answers),
        run.closed_after,
        "not sent" if final is None else local_name(final),
    )
    return run
