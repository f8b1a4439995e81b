"""Idle connections before the session: MongooseIM 6.0.0's 60 s, 6.1.0's c2s_state_timeout.

    test_connection_that_sends_nothing_is_closed_as_profile_says     RFC 6120 4.9.3.4
    test_stream_left_idle_after_its_header_is_closed_as_profile_says RFC 6120 4.9.3.4
    test_stream_left_idle_after_auth_is_closed_as_profile_says       RFC 6120 4.9.3.4
    test_bound_stream_without_session_iq_is_kept_as_profile_says     RFC 3921 3, 6.1.0 states
    test_session_left_idle_is_kept_as_profile_says                   6.1.0 states
    test_whitespace_keepalives_restart_the_timer_as_profile_says     RFC 6120 4.6

Watching an idle connection is waiting, not work. The idle connections of all these
tests, on every target, are opened together in the background when the first of them
runs (suites/batch.py), so a 60 s timeout costs 60 s once and overlaps with the tests
that run meanwhile; each test then judges its own connection (`check_<name>` is the check
of `test_<name>`). A close must come within the profile's pre_session_timeout minus 0.5 s
and plus 2 s and 10 % (harness/judges/timeouts.py); the measured time is a parameter of
the test in the report, a line in the log and a note at the end of the transcript.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from conftest import Sessions, Users
from harness.judges import timeouts as judge
from harness.judges import verdict
from harness.judges.timeouts import IdleClose, TimeoutExpect
from harness.lab import Lab
from harness.targets import Target
from suites.batch import Batch, run_batch
from suites.stream_steps import describe_close, idle_bound, report, timeouts_of, watch_idle

log = logging.getLogger(__name__)

pytestmark = [pytest.mark.area("timeouts"), pytest.mark.batched(quiet_start=True)]

# One idle connection per stage, plus the stream kept alive with whitespace.
CASES = (*judge.STAGES, "whitespace")


@pytest.fixture(scope="session")
def idle(lab: Lab, request: pytest.FixtureRequest) -> Iterator[Batch]:
    """The idle connections of every selected test here, watched side by side."""
    yield from run_batch("idle", __name__, timeouts_of, idle_bound, lab, request, quiet_start=True)


def test_connection_that_sends_nothing_is_closed_as_profile_says(
    target: Target, idle: Batch, request: pytest.FixtureRequest
) -> None:
    idle.outcome(request)


def test_stream_left_idle_after_its_header_is_closed_as_profile_says(
    target: Target, idle: Batch, request: pytest.FixtureRequest
) -> None:
    idle.outcome(request)


def test_stream_left_idle_after_auth_is_closed_as_profile_says(
    target: Target, idle: Batch, request: pytest.FixtureRequest
) -> None:
    idle.outcome(request)


def test_bound_stream_without_session_iq_is_kept_as_profile_says(
    target: Target, idle: Batch, request: pytest.FixtureRequest
) -> None:
    idle.outcome(request)


def test_session_left_idle_is_kept_as_profile_says(
    target: Target, idle: Batch, request: pytest.FixtureRequest
) -> None:
    idle.outcome(request)


def test_whitespace_keepalives_restart_the_timer_as_profile_says(
    target: Target, idle: Batch, request: pytest.FixtureRequest
) -> None:
    idle.outcome(request)


# -- checks: watch, then judge -------------------------------------------------------------


async def check_connection_that_sends_nothing_is_closed_as_profile_says(
    target: Target, users: Users, sessions: Sessions, want: TimeoutExpect
) -> None:
    seen = await when_left_idle(users, sessions, want, "connect")

    verdict(judge.judge_idle(want, seen), target.profile.name)


async def check_stream_left_idle_after_its_header_is_closed_as_profile_says(
    target: Target, users: Users, sessions: Sessions, want: TimeoutExpect
) -> None:
    seen = await when_left_idle(users, sessions, want, "stream_open")

    verdict(judge.judge_idle(want, seen), target.profile.name)


async def check_stream_left_idle_after_auth_is_closed_as_profile_says(
    target: Target, users: Users, sessions: Sessions, want: TimeoutExpect
) -> None:
    seen = await when_left_idle(users, sessions, want, "auth")

    verdict(judge.judge_idle(want, seen), target.profile.name)


async def check_bound_stream_without_session_iq_is_kept_as_profile_says(
    target: Target, users: Users, sessions: Sessions, want: TimeoutExpect
) -> None:
    seen = await when_left_idle(users, sessions, want, "bind")

    verdict(judge.judge_idle(want, seen), target.profile.name)


async def check_session_left_idle_is_kept_as_profile_says(
    target: Target, users: Users, sessions: Sessions, want: TimeoutExpect
) -> None:
    seen = await when_left_idle(users, sessions, want, "session")

    verdict(judge.judge_idle(want, seen), target.profile.name)


async def check_whitespace_keepalives_restart_the_timer_as_profile_says(
    target: Target, users: Users, sessions: Sessions, want: TimeoutExpect
) -> None:
    if want.whitespace_restarts_timer is None:
        pytest.skip(f"profile {target.profile.name} states no whitespace_restarts_timer")

    seen = await when_left_idle(users, sessions, want, "whitespace")

    verdict(judge.judge_whitespace(want, seen), target.profile.name)


# -- when ----------------------------------------------------------------------------------


async def when_left_idle(
    users: Users, sessions: Sessions, want: TimeoutExpect, case: str
) -> IdleClose:
    """Takes a connection to the case's stage (a stream kept alive with whitespace for
    "whitespace"), then watches it idle until the server closes it or the watch ends."""
    stage = "stream_open" if case == "whitespace" else case
    account = None
    if stage in ("auth", "bind", "session"):
        (account,) = await users.create(f"idle-{stage}")

    seen = await watch_idle(
        sessions.endpoint(),
        stage,
        want.watch_for(),
        sessions.transcript,
        account,
        keepalive=case == "whitespace",
    )

    report("idle close", describe_close(seen))
    log.info(
        "%s: idle %s: %s (pre_session_timeout %g s)",
        users.target.name,
        case,
        describe_close(seen),
        want.pre_session_timeout,
    )
    return seen
