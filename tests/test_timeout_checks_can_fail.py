"""The idle-timeout checks fail, naming the broken expectation, when a profile is wrong.

Each case runs a real check of suites/test_state_timeout.py against a running reference
server with its profile changed in one key. The idle connections of all cases of a target
are watched side by side, as the suite does, so the module costs one timeout window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from harness.judges import Mismatch
from harness.judges.timeouts import TimeoutExpect
from harness.lab import TURNS, server_key
from harness.targets import Target
from suites import test_state_timeout as suite

pytestmark = pytest.mark.live

Check = Callable[[Target, suite.IdleWatch, TimeoutExpect], None]


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
        suite.test_connection_that_sends_nothing_is_closed_as_profile_says,
        "idle_after_connect",
        other_manner,
    ),
    (
        "stream_open",
        suite.test_stream_left_idle_after_its_header_is_closed_as_profile_says,
        "idle_after_stream_open",
        other_manner,
    ),
    (
        "stream_open",
        suite.test_stream_left_idle_after_its_header_is_closed_as_profile_says,
        "pre_session_timeout",
        lambda truth: truth * 4,
    ),
    (
        "auth",
        suite.test_stream_left_idle_after_auth_is_closed_as_profile_says,
        "idle_after_auth",
        other_manner,
    ),
    (
        "bind",
        suite.test_bound_stream_without_session_iq_is_kept_as_profile_says,
        "idle_after_bind",
        other_manner,
    ),
    (
        "session",
        suite.test_session_left_idle_is_kept_as_profile_says,
        "idle_in_session",
        other_manner,
    ),
    (
        "whitespace",
        suite.test_whitespace_keepalives_restart_the_timer_as_profile_says,
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


@pytest.fixture(scope="module")
def watches(target: Target) -> Iterator[dict[str, suite.IdleWatch]]:
    """Every case's idle connection, watched under its wrong profile, all at once. The
    connections outlive the test that starts them: they hold a turn on the server."""
    with TURNS.take(server_key(target), alone=False):
        started = {
            case_id: suite.IdleWatch(target, claimed(target, key, wrong)).start(case)
            for case_id, (case, _check, key, wrong) in zip(IDS, WRONG_CLAIMS, strict=True)
        }
        yield started
        for watch in started.values():
            watch.close()


@pytest.mark.parametrize(("case", "check", "key", "wrong"), WRONG_CLAIMS, ids=IDS)
def test_timeout_check_fails_when_profile_claims_what_server_does_not_do(
    target: Target,
    watches: dict[str, suite.IdleWatch],
    case: str,
    check: Check,
    key: str,
    wrong: Callable[[Any], Any],
) -> None:
    watch = watches[f"{case}-{key}"]
    claim = getattr(watch.want, key)

    with pytest.raises(Mismatch) as failure:
        check(target, watch, watch.want)

    assert f"{key} = {shown(claim)}" in str(failure.value)
    assert target.profile.name in str(failure.value)
