"""The CSI checks fail, naming the broken expectation, when a profile is wrong.

Each case runs a real check of suites/test_csi.py against a running reference server with
its profile changed in one key to a behaviour the server does not have. A check that
passed anyway could not tell a server that behaves from one that does not. On the
variants without CSI (`--targets=prosody-no-csi,ejabberd-no-csi`) every check must fail
with the server's true profile.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from conftest import Sessions, Users
from harness.judges import Mismatch
from harness.judges.csi import CsiExpect
from harness.targets import Target
from suites import test_csi as suite

pytestmark = pytest.mark.live

Check = Callable[..., Awaitable[None]]
# The claims to try, first the one the target lacks; or a function of the true value.
Claims = tuple[Any, ...] | Callable[[Any], Any]

features = suite.check_csi_is_advertised_in_stream_features_as_profile_states
kind = suite.check_stanza_kind_for_inactive_client_is_handled_as_profile_states
newer = suite.check_newer_held_stanza_joins_or_replaces_older_one

WRONG_CLAIMS: list[tuple[Check, dict[str, Any], str, Claims]] = [
    (features, {}, "advertised_pre_auth", (True, False)),
    (features, {}, "advertised_post_auth", (False, True)),
    (kind, {"kind": "presence"}, "hold_presence", ("delivered", "held")),
    (kind, {"kind": "presence"}, "held_delay_from", ("none", "user")),
    (kind, {"kind": "chat"}, "hold_chat", ("held",)),
    (kind, {"kind": "chat"}, "hold_chat", ("flushes", "flushes_sender")),
    (kind, {"kind": "chat_state"}, "hold_chat_state", ("delivered", "held")),
    (kind, {"kind": "iq"}, "hold_iq", ("held",)),
    (newer, {"kind": "presence"}, "held_latest_only", ((), ("presence", "chat_state"))),
    (newer, {"kind": "chat_state"}, "held_latest_only", ((), ("presence", "chat_state"))),
    (
        suite.check_buffer_overflow_flushes_whole_buffer_and_stays_inactive,
        {},
        "buffer_max",
        lambda size: size + 1 if size else 2,
    ),
    (
        suite.check_stanza_after_a_flush_is_held_again,
        {},
        "stays_inactive_after_flush",
        (False, True),
    ),
    (suite.check_second_inactive_keeps_held_stanzas, {}, "second_inactive", ("flushes", "keeps")),
    (suite.check_sm_ack_is_answered_while_inactive, {}, "sm_ack_while_inactive", ("no_sm",)),
    (
        suite.check_unknown_csi_element_is_answered_as_profile_states,
        {},
        "unknown_element",
        ("error_reply", "ignored"),
    ),
]


def case_id(case: tuple[Check, dict[str, Any], str, Claims]) -> str:
    check, arguments, key, claims = case
    name = check.__name__.removeprefix("check_")
    shown = "" if callable(claims) else "=" + "|".join(map(str, claims))
    return "-".join([name, *map(str, arguments.values()), key]) + shown


def wrong_claim(truth: CsiExpect, key: str, claims: Claims, target: str) -> Any:
    value = getattr(truth, key)
    if callable(claims):
        return _differing(claims(value), value, key, target)
    return _differing(next((c for c in claims if c != value), value), value, key, target)


def _differing(claim: Any, value: Any, key: str, target: str) -> Any:
    if claim == value:
        pytest.fail(f"{target} already has {key} = {value!r}: add a claim it lacks")
    return claim


@pytest.mark.parametrize(
    ("check", "arguments", "key", "claims"), WRONG_CLAIMS, ids=[case_id(c) for c in WRONG_CLAIMS]
)
async def test_csi_check_fails_when_profile_claims_what_server_does_not_do(
    target: Target,
    users: Users,
    sessions: Sessions,
    check: Check,
    arguments: dict[str, Any],
    key: str,
    claims: Claims,
) -> None:
    if target.fault:
        pytest.skip(f"{target.name} is broken on purpose ({target.fault}): any claim fails")
    truth = CsiExpect.of(target.profile)
    wrong = replace(truth, **{key: wrong_claim(truth, key, claims, target.name)})

    with pytest.raises(Mismatch) as failure:
        await check(target=target, users=users, sessions=sessions, want=wrong, **arguments)

    assert f"{key} = " in str(failure.value)
    assert target.profile.name in str(failure.value)


CHECKS = {
    f"{c.__name__.removeprefix('check_')}{'-' if a else ''}{'-'.join(a.values())}": (c, a)
    for c, a, _, _ in WRONG_CLAIMS
}


@pytest.mark.parametrize("case", sorted(CHECKS))
async def test_csi_check_fails_on_a_server_without_csi(
    target: Target, users: Users, sessions: Sessions, case: str
) -> None:
    if "client state indication" not in target.fault:
        pytest.skip(f"needs a target whose fault is client state indication; {target.name} is not")
    check, arguments = CHECKS[case]
    truth = CsiExpect.of(target.profile)
    blind = blind_without_csi(check, truth)
    if blind:
        pytest.skip(f"{target.name}: {blind}")

    with pytest.raises(Mismatch) as failure:
        await check(target=target, users=users, sessions=sessions, want=truth, **arguments)

    assert target.profile.name in str(failure.value)


def blind_without_csi(check: Check, truth: CsiExpect) -> str:
    """Why a check cannot tell a server without CSI from its profile, or ""."""
    unknown = suite.check_unknown_csi_element_is_answered_as_profile_states
    if check is unknown and truth.unknown_element == "ignored":
        return (
            "unknown_element = 'ignored': a server without CSI ignores an unknown element "
            "too; the other CSI checks fail there"
        )
    return ""
