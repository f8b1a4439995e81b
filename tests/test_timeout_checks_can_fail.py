"""The idle-timeout checks fail, naming the broken expectation, when a profile is wrong.

Each case runs a real check of suites/test_state_timeout.py against a running reference
server with its profile changed in one key. The idle connections of all cases, on every
target, are watched side by side (suites/batch.py), as the suite does, so the module costs
one timeout window.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from conftest import Sessions, Users
from harness.judges import Mismatch
from harness.judges.timeouts import TimeoutExpect
from harness.lab import Lab
from harness.targets import Target
from suites import test_state_timeout as suite
from suites.batch import Batch, Case, Check, selected
from suites.stream_steps import idle_bound

pytestmark = [pytest.mark.live, pytest.mark.batched(quiet_start=True)]


def other_manner(truth: Any) -> Any:
    """A way to end that the server does not use at that stage."""
    return {
        "open": "connection-timeout",
        "silent": "connection-timeout",
        "connection-timeout": "connection-timeout-without-header",
        "connection-timeout-without-header": "connection-timeout",
    }[truth]


# (case watched, check, key, the wrong claim from the true value)
WRONG_CLAIMS: list[tuple[str, Check, str, Callable[[Any], Any]]] = [
    (
        "connect",
        suite.check_connection_that_sends_nothing_is_closed_as_profile_says,
        "idle_after_connect",
        other_manner,
    ),
    (
        "stream_open",
        suite.check_stream_left_idle_after_its_header_is_closed_as_profile_says,
        "idle_after_stream_open",
        other_manner,
    ),
    (
        "stream_open",
        suite.check_stream_left_idle_after_its_header_is_closed_as_profile_says,
        "pre_session_timeout",
        lambda truth: truth * 4,
    ),
    (
        "auth",
        suite.check_stream_left_idle_after_auth_is_closed_as_profile_says,
        "idle_after_auth",
        other_manner,
    ),
    (
        "bind",
        suite.check_bound_stream_without_session_iq_is_kept_as_profile_says,
        "idle_after_bind",
        other_manner,
    ),
    (
        "session",
        suite.check_session_left_idle_is_kept_as_profile_says,
        "idle_in_session",
        other_manner,
    ),
    (
        "whitespace",
        suite.check_whitespace_keepalives_restart_the_timer_as_profile_says,
        "whitespace_restarts_timer",
        lambda truth: not truth,
    ),
]
IDS = [f"{c[0]}-{c[2]}" for c in WRONG_CLAIMS]


def shown(claim: Any) -> str:
    if isinstance(claim, bool):
        return str(claim).lower()
    return f"{claim:g}" if isinstance(claim, float) else repr(claim)


def claimed(target: Target, key: str, wrong: Callable[[Any], Any]) -> TimeoutExpect:
    truth = TimeoutExpect.of(target.profile)
    return replace(truth, **{key: wrong(getattr(truth, key))})


def raised(check: Check) -> Check:
    """The check, returning the Mismatch it raised (None when it passed)."""

    async def run(target: Target, users: Users, sessions: Sessions, want: TimeoutExpect) -> Any:
        try:
            await check(target=target, users=users, sessions=sessions, want=want)
        except Mismatch as failure:
            return failure
        return None

    return run


def claim_case(key: str, wrong: Callable[[Any], Any]) -> Callable[[Target], TimeoutExpect]:
    return lambda target: claimed(target, key, wrong)


@pytest.fixture(scope="session")
def watches(lab: Lab, request: pytest.FixtureRequest) -> Iterator[Batch]:
    """Every case's idle connection, watched under its wrong profile, all at once."""
    cases = [
        Case(
            chosen.item.nodeid,
            chosen.target,
            raised(chosen.arguments["check"]),
            claim_case(chosen.arguments["key"], chosen.arguments["wrong"]),
            {},
        )
        for chosen in selected(sys.modules[__name__], request.session.items, lab)
    ]
    batch = Batch("idle-claims", cases, idle_bound, lab, quiet_start=True)
    try:
        yield batch.start()
    finally:
        batch.close()


@pytest.mark.parametrize(("case", "check", "key", "wrong"), WRONG_CLAIMS, ids=IDS)
def test_timeout_check_fails_when_profile_claims_what_server_does_not_do(
    target: Target,
    watches: Batch,
    request: pytest.FixtureRequest,
    case: str,
    check: Check,
    key: str,
    wrong: Callable[[Any], Any],
) -> None:
    claim = wrong(getattr(TimeoutExpect.of(target.profile), key))

    failure = watches.outcome(request)

    assert isinstance(failure, Mismatch), f"the {case} check passed with {key} = {shown(claim)}"
    assert f"{key} = {shown(claim)}" in str(failure)
    assert target.profile.name in str(failure)
