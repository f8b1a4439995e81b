"""Idle connections before the session: MongooseIM 6.0.0's 60 s, 6.1.0's c2s_state_timeout.

    test_connection_that_sends_nothing_is_closed_as_profile_says     RFC 6120 4.9.3.4
    test_stream_left_idle_after_its_header_is_closed_as_profile_says RFC 6120 4.9.3.4
    test_stream_left_idle_after_auth_is_closed_as_profile_says       RFC 6120 4.9.3.4
    test_bound_stream_without_session_iq_is_kept_as_profile_says     RFC 3921 3, 6.1.0 states
    test_session_left_idle_is_kept_as_profile_says                   6.1.0 states
    test_whitespace_keepalives_restart_the_timer_as_profile_says     RFC 6120 4.6

Watching an idle connection is waiting, not work. The six connections of a target are
opened together in the background when the first of these tests runs, so a 60 s timeout
costs 60 s once and overlaps with the tests that run meanwhile; each test then judges its
own connection. A close must come within the profile's pre_session_timeout minus 0.5 s and
plus 2 s and 10 % (harness/judges/timeouts.py); the measured time is a parameter of the
test in the report, a line in the log and a note at the end of the transcript.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import allure
import pytest

from clients.chat import Endpoint
from clients.transcript import Transcript
from conftest import Users
from harness.background import Background
from harness.judges import timeouts as judge
from harness.judges import verdict
from harness.judges.timeouts import IdleClose, TimeoutExpect
from harness.lab import TURNS, server_key
from harness.targets import Target
from suites.stream_steps import describe_close, report, watch_idle

log = logging.getLogger(__name__)

pytestmark = pytest.mark.area("timeouts")

# One idle connection per stage, plus the stream kept alive with whitespace.
CASES = (*judge.STAGES, "whitespace")
# Seconds to register a user and log in before the idle part starts.
SETUP = 30.0


class IdleWatch:
    """The idle connections of one target, watched side by side in the background."""

    def __init__(self, target: Target, want: TimeoutExpect) -> None:
        self.target = target
        self.want = want
        self.background = Background(f"idle-{target.name}")
        self.transcripts: dict[str, Transcript] = {}

    def start(self, *cases: str) -> IdleWatch:
        for case in cases:
            transcript = Transcript()
            self.transcripts[case] = transcript
            self.background.submit(case, self._observe(case, transcript))
        log.info(
            "%s: watching idle %s (up to %.1f s each)",
            self.target.name,
            ", ".join(cases),
            self.want.watch_for(),
        )
        return self

    async def _observe(self, case: str, transcript: Transcript) -> IdleClose:
        stage = "stream_open" if case == "whitespace" else case
        account = None
        if stage in ("auth", "bind", "session"):
            (account,) = await Users(self.target).create(f"idle-{stage}")
        host, port = self.target.node.c2s
        return await watch_idle(
            Endpoint(host, port, self.target.domain),
            stage,
            self.want.watch_for(),
            transcript,
            account,
            keepalive=case == "whitespace",
        )

    def outcome(self, case: str) -> IdleClose:
        """The observation of one case, once it is over; its transcript goes to the report."""
        bound = self.want.watch_for() + SETUP
        try:
            seen: IdleClose = self.background.result(case, bound, f"the idle {case} watch")
        finally:
            text = self.transcripts[case].render()
            allure.attach(
                text, name="stream transcript", attachment_type=allure.attachment_type.TEXT
            )
        report("idle close", describe_close(seen))
        log.info(
            "%s: idle %s: %s (pre_session_timeout %g s)",
            self.target.name,
            case,
            describe_close(seen),
            self.want.pre_session_timeout,
        )
        return seen

    def close(self) -> None:
        self.background.close()


@pytest.fixture(scope="module")
def want(target: Target) -> TimeoutExpect:
    if not target.profile.has(judge.AREA):
        pytest.skip(f"profile {target.profile.name} has no [{judge.AREA}] table")
    return TimeoutExpect.of(target.profile)


@pytest.fixture(scope="module")
def idle(target: Target, want: TimeoutExpect) -> Iterator[IdleWatch]:
    """Starts every idle connection of the target at once; closes what is left at the end."""
    cases = [c for c in CASES if c != "whitespace" or want.whitespace_restarts_timer is not None]
    # The idle connections outlive the test that starts them: they hold a turn of their own.
    with TURNS.take(server_key(target), alone=False):
        watch = IdleWatch(target, want).start(*cases)
        yield watch
        watch.close()


def test_connection_that_sends_nothing_is_closed_as_profile_says(
    target: Target, idle: IdleWatch, want: TimeoutExpect
) -> None:
    seen = idle.outcome("connect")

    verdict(judge.judge_idle(want, seen), target.profile.name)


def test_stream_left_idle_after_its_header_is_closed_as_profile_says(
    target: Target, idle: IdleWatch, want: TimeoutExpect
) -> None:
    seen = idle.outcome("stream_open")

    verdict(judge.judge_idle(want, seen), target.profile.name)


def test_stream_left_idle_after_auth_is_closed_as_profile_says(
    target: Target, idle: IdleWatch, want: TimeoutExpect
) -> None:
    seen = idle.outcome("auth")

    verdict(judge.judge_idle(want, seen), target.profile.name)


def test_bound_stream_without_session_iq_is_kept_as_profile_says(
    target: Target, idle: IdleWatch, want: TimeoutExpect
) -> None:
    seen = idle.outcome("bind")

    verdict(judge.judge_idle(want, seen), target.profile.name)


def test_session_left_idle_is_kept_as_profile_says(
    target: Target, idle: IdleWatch, want: TimeoutExpect
) -> None:
    seen = idle.outcome("session")

    verdict(judge.judge_idle(want, seen), target.profile.name)


def test_whitespace_keepalives_restart_the_timer_as_profile_says(
    target: Target, idle: IdleWatch, want: TimeoutExpect
) -> None:
    if want.whitespace_restarts_timer is None:
        pytest.skip(f"profile {target.profile.name} states no whitespace_restarts_timer")

    seen = idle.outcome("whitespace")

    verdict(judge.judge_whitespace(want, seen), target.profile.name)
