"""The compression checks fail, naming the broken expectation, when a profile is wrong.

Each case runs a real check of suites/test_compression.py against a running reference
server with its profile changed in one key to a behaviour that server does not have.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from conftest import Sessions, Users
from harness.judges import Mismatch
from harness.judges.compression import CompressionExpect
from harness.targets import Target
from suites import test_compression as suite

pytestmark = pytest.mark.live

Check = Callable[..., Awaitable[None]]


def flipped(truth: Any) -> Any:
    return not truth


def other_answer(truth: Any) -> Any:
    """An answer the server does not give: compression if it refuses, else a refusal."""
    return "failure:setup-failed" if truth == "compressed" else "compressed"


def silence(truth: Any) -> Any:
    return "ignored" if truth != "ignored" else "failure:setup-failed"


def shown(claim: Any) -> str:
    """A claimed value as the failure message writes it."""
    return str(claim).lower() if isinstance(claim, bool) else repr(claim)


# (check, key, the wrong claim from the true value)
WRONG_CLAIMS: list[tuple[Check, str, Callable[[Any], Any]]] = [
    (
        suite.check_compression_offer_before_auth_follows_profile,
        "offered_before_auth",
        flipped,
    ),
    (suite.check_compression_offer_after_auth_follows_profile, "offered_after_auth", flipped),
    (
        suite.check_compress_before_auth_gets_the_answer_in_the_profile,
        "answer_before_auth",
        other_answer,
    ),
    (
        suite.check_compress_after_auth_gets_the_answer_in_the_profile,
        "answer_after_auth",
        other_answer,
    ),
    (
        suite.check_compress_with_unknown_method_gets_the_answer_in_the_profile,
        "answer_unknown_method",
        silence,
    ),
    (
        suite.check_compress_without_method_gets_the_answer_in_the_profile,
        "answer_missing_method",
        silence,
    ),
]


@pytest.mark.parametrize(("check", "key", "wrong"), WRONG_CLAIMS, ids=[c[1] for c in WRONG_CLAIMS])
async def test_compression_check_fails_when_profile_claims_what_server_does_not_do(
    target: Target,
    users: Users,
    sessions: Sessions,
    check: Check,
    key: str,
    wrong: Callable[[Any], Any],
) -> None:
    truth = CompressionExpect.of(target.profile)
    claim = wrong(getattr(truth, key))
    claimed = replace(truth, **{key: claim})

    with pytest.raises(Mismatch) as failure:
        await check(target=target, users=users, sessions=sessions, want=claimed)

    assert f"{key} = {shown(claim)}" in str(failure.value)
    assert target.profile.name in str(failure.value)


async def test_compression_turned_on_where_the_profile_refuses_it_names_crime(
    target: Target, users: Users, sessions: Sessions
) -> None:
    truth = CompressionExpect.of(target.profile)
    if not truth.accepts_after_auth():
        pytest.skip(f"{target.name} does not compress: nothing to turn on")
    claimed = replace(truth, answer_after_auth="failure:unsupported-method")

    with pytest.raises(Mismatch) as failure:
        await suite.check_compress_after_auth_gets_the_answer_in_the_profile(
            target=target, users=users, sessions=sessions, want=claimed
        )

    assert "answer_after_auth = 'failure:unsupported-method'" in str(failure.value)
    assert "CRIME" in str(failure.value)


async def test_zlib_restart_check_fails_where_the_server_does_not_compress(
    target: Target, users: Users, sessions: Sessions
) -> None:
    truth = CompressionExpect.of(target.profile)
    if truth.accepts_after_auth():
        pytest.skip(
            f"{target.name} compresses and restarts correctly; the restart judge's failures "
            "are shown in tests/test_compression_judges.py"
        )
    claimed = replace(truth, answer_after_auth="compressed")

    with pytest.raises(Mismatch) as failure:
        await suite.check_compressed_stream_restarts_and_binds_over_zlib(
            target=target, users=users, sessions=sessions, want=claimed
        )

    assert "answer_after_auth = 'compressed'" in str(failure.value)


@pytest.mark.parametrize(
    ("stage", "key"), [("stream_open", "answer_before_auth"), ("auth", "answer_after_auth")]
)
async def test_ignored_compress_check_fails_where_the_server_answers(
    target: Target, users: Users, sessions: Sessions, stage: str, key: str
) -> None:
    truth = CompressionExpect.of(target.profile)
    if getattr(truth, key) == "ignored":
        pytest.skip(f"{target.name} ignores <compress/> already")
    change: dict[str, Any] = {key: "ignored"}
    claimed = replace(truth, **change)

    with pytest.raises(Mismatch) as failure:
        await suite.check_ignored_compress_leaves_the_stream_to_the_state_timeout(
            target=target, users=users, sessions=sessions, want=claimed, stage=stage, key=key
        )

    assert f"{key} = 'ignored'" in str(failure.value)
