"""Limits before the session: failed SASL attempts and IQs sent too early.

    test_failed_sasl_attempts_are_limited_as_profile_says        RFC 6120 6.4.5
    test_iq_before_auth_gets_the_answer_in_the_profile           RFC 6120 8.3.3.19
    test_iq_between_bind_and_session_gets_the_answer_in_the_profile   RFC 3921 3

MongooseIM 6.1.0 closes the connection after the 4th failed SASL attempt (6.0.0 allows
any number) and ignores IQs before authentication and between bind and the session IQ
(6.0.0 answers them with service-unavailable). What a target must show comes from its
profile's [pre_session] table.

An answer is followed by a QUIET window that shows whether the stream stays open, so the
checks of all these tests, on every target, run side by side (suites/batch.py); the test
`test_<name>` passes or fails as its check `check_<name>` did.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from clients.inbox import local_name, to_text
from conftest import Sessions, Users
from harness.judges import pre_session as judge
from harness.judges import verdict
from harness.judges.answers import classify
from harness.judges.pre_session import SASL_NS, PreSessionExpect
from harness.lab import Lab
from harness.targets import Target
from suites.batch import Batch, run_batch
from suites.stream_steps import ask, report, sasl_attempts

log = logging.getLogger(__name__)

pytestmark = [pytest.mark.area("pre_session"), pytest.mark.batched]

DISCO_INFO = "<query xmlns='http://jabber.org/protocol/disco#info'/>"
ROSTER = "<query xmlns='jabber:iq:roster'/>"


# The longest a check may take: a login and a handful of answers, each awaited up to WAIT
# and watched for QUIET.
BOUND = 60.0


@pytest.fixture(scope="session")
def pre_session(lab: Lab, request: pytest.FixtureRequest) -> Iterator[Batch]:
    """The checks of every selected test of this module, started together (suites/batch.py)."""
    yield from run_batch("pre-session", __name__, pre_session_of, BOUND, lab, request)


def pre_session_of(target: Target) -> PreSessionExpect:
    if not target.profile.has(judge.AREA):
        pytest.skip(f"profile {target.profile.name} has no [{judge.AREA}] table")
    return PreSessionExpect.of(target.profile)


def test_failed_sasl_attempts_are_limited_as_profile_says(
    target: Target, pre_session: Batch, request: pytest.FixtureRequest
) -> None:
    pre_session.outcome(request)


def test_iq_before_auth_gets_the_answer_in_the_profile(
    target: Target, pre_session: Batch, request: pytest.FixtureRequest
) -> None:
    pre_session.outcome(request)


def test_iq_between_bind_and_session_gets_the_answer_in_the_profile(
    target: Target, pre_session: Batch, request: pytest.FixtureRequest
) -> None:
    pre_session.outcome(request)


# -- checks: observe, then judge -----------------------------------------------------------


async def check_failed_sasl_attempts_are_limited_as_profile_says(
    target: Target, users: Users, sessions: Sessions, want: PreSessionExpect
) -> None:
    (account,) = await users.create("alice")
    stream = await sessions.raw("alice")

    run = await sasl_attempts(stream, account, want.wrong_attempts())
    report("failed attempts answered", str(len(run.answers)))
    report(
        "closed after attempt", "not closed" if run.closed_after is None else str(run.closed_after)
    )
    report("right password", "not sent" if run.final is None else local_name(run.final))

    verdict(judge.judge_sasl_limit(want, run), target.profile.name)


async def check_iq_before_auth_gets_the_answer_in_the_profile(
    target: Target, users: Users, sessions: Sessions, want: PreSessionExpect
) -> None:
    stream = await sessions.raw("anon")
    await stream.open_stream()

    iq = f"<iq type='get' id='early1' to='{target.domain}'>{DISCO_INFO}</iq>"
    reply = await ask(stream, iq, want.unauthenticated_iq)
    report("answer", classify(reply, SASL_NS))

    verdict(judge.judge_unauthenticated_iq(want, reply), target.profile.name)


async def check_iq_between_bind_and_session_gets_the_answer_in_the_profile(
    target: Target, users: Users, sessions: Sessions, want: PreSessionExpect
) -> None:
    (account,) = await users.create("alice")
    stream = await sessions.raw("alice")
    await stream.authenticate(account.local, account.password)
    jid = await stream.bind("nosession")
    log.info("bound %s without sending the session IQ", jid)

    reply = await ask(stream, f"<iq type='get' id='early2'>{ROSTER}</iq>", want.iq_before_session)
    report("answer", classify(reply, SASL_NS))
    if reply.elements:
        log.info("answer to the roster get before the session: %s", to_text(reply.elements[0]))

    verdict(judge.judge_iq_before_session(want, reply), target.profile.name)
