"""The pre-session checks fail, naming the broken expectation, when a profile is wrong.

Each case runs a real check of suites/test_pre_session_limits.py against a running
reference server with its profile changed in one key to a behaviour it does not have.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from conftest import Sessions, Users
from harness.judges import Mismatch
from harness.judges.answers import Expected
from harness.judges.pre_session import PreSessionExpect
from harness.targets import Target
from suites import test_pre_session_limits as suite

pytestmark = pytest.mark.live

Check = Callable[..., Awaitable[None]]


async def test_sasl_check_fails_when_profile_claims_a_limit_the_server_lacks(
    target: Target, users: Users, sessions: Sessions
) -> None:
    truth = PreSessionExpect.of(target.profile)
    claim = 4 if truth.sasl_failure_limit is None else None
    claimed = replace(truth, sasl_failure_limit=claim)

    with pytest.raises(Mismatch) as failure:
        await suite.check_failed_sasl_attempts_are_limited_as_profile_says(
            target=target, users=users, sessions=sessions, want=claimed
        )

    assert f"sasl_failure_limit = {claimed.limit_text()}" in str(failure.value)


@pytest.mark.parametrize("key", ["unauthenticated_iq", "iq_before_session"])
async def test_early_iq_check_fails_when_profile_claims_silence(
    target: Target, users: Users, sessions: Sessions, key: str
) -> None:
    truth = PreSessionExpect.of(target.profile)
    claim = "ignored" if getattr(truth, key) != "ignored" else "result"
    change: dict[str, Any] = {key: claim}
    claimed = replace(truth, **change)

    with pytest.raises(Mismatch) as failure:
        await run(key, target, users, sessions, claimed)

    assert f"{key} = {claim!r}" in str(failure.value)


@pytest.mark.parametrize("key", ["unauthenticated_iq", "iq_before_session"])
async def test_early_iq_check_fails_when_profile_claims_another_error_text(
    target: Target, users: Users, sessions: Sessions, key: str
) -> None:
    truth = PreSessionExpect.of(target.profile)
    if Expected.parse(getattr(truth, key), key).kind != "error":
        pytest.skip(f"{key} = {getattr(truth, key)!r} on {target.name}: no stanza error text")
    change: dict[str, Any] = {f"{key}_text": "Forbidden unauthenticated stanza"}
    claimed = replace(truth, **change)

    with pytest.raises(Mismatch) as failure:
        await run(key, target, users, sessions, claimed)

    assert f"{key}_text = 'Forbidden unauthenticated stanza'" in str(failure.value)


async def run(
    key: str, target: Target, users: Users, sessions: Sessions, claimed: PreSessionExpect
) -> Any:
    if key == "unauthenticated_iq":
        return await suite.check_iq_before_auth_gets_the_answer_in_the_profile(
            target=target, users=users, sessions=sessions, want=claimed
        )
    return await suite.check_iq_between_bind_and_session_gets_the_answer_in_the_profile(
        target=target, users=users, sessions=sessions, want=claimed
    )
