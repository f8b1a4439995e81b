"""The presence checks fail, naming the broken expectation, when a profile is wrong.

Each case runs a real presence check against a running reference server with its profile
changed in one key to a behaviour the server does not have. A check that passed anyway
could not tell a server that behaves from one that does not.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from conftest import Sessions, Users
from harness.judges import Mismatch
from harness.judges.presence import PresenceExpect
from harness.targets import Target
from suites import test_presence as suite

pytestmark = pytest.mark.live

Check = Callable[..., Awaitable[None]]

WRONG_CLAIMS: list[tuple[Check, str, Any]] = [
    (suite.check_initial_presence_is_echoed_to_sender, "self_echo", False),
    (suite.check_initial_presence_is_broadcast_to_subscribed_contact, "broadcast", False),
    (suite.check_login_probe_brings_back_contact_presence, "probe_answer_delay_from", "none"),
    (
        suite.check_clean_close_sends_unavailable_to_contact,
        "unavailable_status_on_close",
        "Shutdown by reason: stream_end",
    ),
    (
        suite.check_tcp_drop_sends_unavailable_to_contact,
        "unavailable_status_on_drop",
        "Shutdown by reason: socket_closed",
    ),
    (suite.check_directed_presence_reaches_non_contact, "directed", False),
    (suite.check_subscription_request_and_approval_reach_both_sides, "subscription_flow", False),
    (
        suite.check_presence_to_session_without_presence_follows_profile,
        "presence_before_initial",
        "dropped",
    ),
    (
        suite.check_bare_jid_chat_before_presence_follows_profile,
        "bare_message_before_presence",
        "delivered",
    ),
    (suite.check_initial_presence_is_echoed_to_sender, "routed", False),
]


@pytest.mark.parametrize(
    ("check", "key", "claim"), WRONG_CLAIMS, ids=[f"{c[1]}={c[2]!r}" for c in WRONG_CLAIMS]
)
async def test_presence_check_fails_when_profile_claims_what_server_does_not_do(
    target: Target, users: Users, sessions: Sessions, check: Check, key: str, claim: Any
) -> None:
    truth = PresenceExpect.of(target.profile)
    if getattr(truth, key) == claim:
        pytest.fail(f"{target.name} already has {key} = {claim!r}: pick a claim it lacks")
    wrong = replace(truth, **{key: claim})

    with pytest.raises(Mismatch) as failure:
        await check(target, users, sessions, wrong, "raw")

    assert f"{key} = " in str(failure.value)
    assert target.profile.name in str(failure.value)
