"""The stream-management checks fail, naming the broken expectation, when a profile is wrong.

Each case runs a real check of suites/test_stream_management.py against a running reference
server with its profile changed in one key to a behaviour the server does not have. A check
that passed anyway could not tell a server that behaves from one that does not. On the
`prosody-no-sm` variant (`--targets=prosody-no-sm`) every check must fail with its true
profile, naming `available`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from conftest import Sessions, Users
from harness.judges import Mismatch
from harness.judges.stream_management import SMExpect
from harness.targets import Target
from suites import test_stream_management as suite

pytestmark = pytest.mark.live

Check = Callable[..., Awaitable[None]]

# (check, its own arguments, key, claims): the first claim the target lacks is used.
WRONG_CLAIMS: list[tuple[Check, dict[str, Any], str, tuple[Any, ...]]] = [
    (
        suite.check_sm_is_advertised_in_stream_features_as_profile_says,
        {},
        "advertised_before_auth",
        (True, False),
    ),
    (
        suite.check_enable_is_answered_as_profile_says,
        {"resume": False},
        "enabled_attributes",
        (["id"], []),
    ),
    (
        suite.check_enable_is_answered_as_profile_says,
        {"resume": True},
        "enabled_resume_attributes",
        (["id", "resume"], ["id", "max", "resume"]),
    ),
    (
        suite.check_library_session_gets_sm_with_resumption,
        {"stack": "slixmpp"},
        "enabled_resume_attributes",
        (["id", "resume"], ["id", "max", "resume"]),
    ),
    (
        suite.check_library_session_gets_sm_with_resumption,
        {"stack": "aioxmpp"},
        "enabled_resume_attributes",
        (["id", "resume"], ["id", "max", "resume"]),
    ),
    (suite.check_server_acks_count_the_client_stanzas_exactly, {}, "available", (False,)),
    (
        suite.check_server_requests_acks_after_deliveries_as_profile_says,
        {},
        "ack_requests",
        ("per_stanza", "one_outstanding"),
    ),
    (
        suite.check_ack_without_h_is_refused_as_profile_says,
        {},
        "missing_h_condition",
        ("policy-violation", "invalid-xml"),
    ),
    (
        suite.check_ack_above_the_sent_count_is_refused_as_profile_says,
        {},
        "too_high_h_reports_counts",
        (True, False),
    ),
    (
        suite.check_resumed_session_redelivers_unacked_messages,
        {"stack": "slixmpp"},
        "redelivery_delay_text",
        ("SM Storage", "Resent"),
    ),
    (
        suite.check_resumed_session_redelivers_unacked_messages,
        {"stack": "aioxmpp"},
        "redelivery_delay_text",
        ("SM Storage", "Resent"),
    ),
    (
        suite.check_resume_redelivers_exactly_the_messages_the_client_did_not_handle,
        {},
        "redelivery_delay_from",
        ("domain", "user"),
    ),
    (
        suite.check_resume_ends_the_old_connection_as_profile_says,
        {},
        "resume_old_connection",
        ("conflict", "closed"),
    ),
    (
        suite.check_resume_with_unknown_id_fails_and_bind_still_works,
        {},
        "unknown_previd_condition",
        ("unexpected-request",),
    ),
    (
        suite.check_resume_after_bind_is_refused_as_profile_says,
        {},
        "resume_after_bind_condition",
        ("", "unexpected-request"),
    ),
    (
        suite.check_enable_twice_is_refused_as_profile_says,
        {},
        "enable_twice_ends_stream",
        (True, False),
    ),
    (
        suite.check_enable_before_bind_is_refused_as_profile_says,
        {"stage": "auth"},
        "enable_before_auth_condition",
        ("unexpected-request", "bad-request"),
    ),
    (
        suite.check_enable_before_bind_is_refused_as_profile_says,
        {"stage": "bind"},
        "enable_before_bind_condition",
        ("feature-not-implemented",),
    ),
    (
        suite.check_held_session_expires_after_resume_timeout,
        {},
        "unavailable_when_hold_expires",
        (False, True),
    ),
    (suite.check_drop_without_resume_follows_profile, {}, "hold_without_resume", (True, False)),
]


def case_id(case: tuple[Check, dict[str, Any], str, tuple[Any, ...]]) -> str:
    check, arguments, key, _ = case
    name = check.__name__.removeprefix("check_")
    return "-".join([name, *map(str, arguments.values()), key])


@pytest.mark.parametrize(
    ("check", "arguments", "key", "claims"), WRONG_CLAIMS, ids=[case_id(c) for c in WRONG_CLAIMS]
)
async def test_sm_check_fails_when_profile_claims_what_server_does_not_do(
    target: Target,
    users: Users,
    sessions: Sessions,
    check: Check,
    arguments: dict[str, Any],
    key: str,
    claims: tuple[Any, ...],
) -> None:
    if target.fault:
        pytest.skip(f"{target.name} is broken on purpose ({target.fault}): any claim fails")
    truth = SMExpect.of(target.profile)
    claim = next((c for c in claims if getattr(truth, key) != c), None)
    if claim is None:
        pytest.fail(f"{target.name} already has {key} = {getattr(truth, key)!r}: add a claim")
    wrong = replace(truth, **{key: claim})

    with pytest.raises(Mismatch) as failure:
        await check(target=target, users=users, sessions=sessions, want=wrong, **arguments)

    assert f"{key} = " in str(failure.value)
    assert target.profile.name in str(failure.value)


CHECKS = {case_id(c): c[:2] for c in WRONG_CLAIMS}


@pytest.mark.parametrize("case", sorted(CHECKS))
async def test_sm_check_fails_on_a_server_without_sm(
    target: Target, users: Users, sessions: Sessions, case: str
) -> None:
    if "stream management" not in target.fault:
        pytest.skip(f"needs a target whose fault is stream management; {target.name} is not")
    check, arguments = CHECKS[case]

    with pytest.raises(Mismatch) as failure:
        await check(
            target=target,
            users=users,
            sessions=sessions,
            want=SMExpect.of(target.profile),
            **arguments,
        )

    assert "available = true" in str(failure.value)
