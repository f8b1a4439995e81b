"""The metrics checks fail, naming the broken expectation, when the profile or the traffic
is wrong.

Each case runs a real metrics check against a running reference server: once with its
profile changed in one key to something the server does not do (a name it lacks, a name
it has called absent, a larger move than the traffic makes), and once with no traffic at
all while the profile's moves are still expected. A check that passed anyway could not
tell a server whose counters move from one whose counters stand still.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest

from clients.metrics import MetricsReader
from clients.transcript import Transcript
from conftest import Sessions, Users
from harness.judges import Mismatch, verdict
from harness.judges import metrics as judge
from harness.judges.metrics import MetricsExpect
from harness.targets import Target
from suites import test_metrics as suite

pytestmark = pytest.mark.live

MoveCheck = Callable[..., Awaitable[None]]
ACT_CHECKS: dict[str, MoveCheck] = {
    "login": suite.test_logins_raise_session_counters,
    "logout": suite.test_logouts_lower_session_counters,
    "chat": suite.test_one_chat_moves_message_counters,
    "sm_enable": suite.test_stream_management_enable_moves_counters,
}
# What the real acts measure, claimed by an act that does nothing.
CLAIMED: suite.Quantities = {"logins": suite.LOGINS, "sent_bytes": 83, "delivered_bytes": 111}
LARGER = 1000
MISSING_NAME = ("xc_no_such_metric",)


@pytest.fixture
def truth(target: Target) -> MetricsExpect:
    return MetricsExpect.of(target.profile)


@pytest.fixture
async def reader(target: Target, truth: MetricsExpect) -> AsyncIterator[MetricsReader]:
    if truth.api == "none":
        pytest.skip(f"profile {target.profile.name}: api = 'none' (no metrics API to read)")
    opened = suite.open_reader(target, truth.api)
    yield opened
    await opened.aclose()


async def test_names_check_fails_when_profile_claims_a_name_the_server_lacks(
    target: Target,
    truth: MetricsExpect,
    reader: MetricsReader,
    transcript: Transcript,
) -> None:
    wrong = replace(truth, present=(*truth.present, MISSING_NAME))

    with pytest.raises(Mismatch) as failure:
        await suite.test_metric_names_follow_profile(target, reader, wrong, transcript)

    assert f"present: expected {MISSING_NAME[0]} to be listed" in str(failure.value)
    assert target.profile.name in str(failure.value)


async def test_names_check_fails_when_profile_calls_a_listed_name_absent(
    target: Target,
    truth: MetricsExpect,
    reader: MetricsReader,
    transcript: Transcript,
) -> None:
    if not truth.lists_names or not truth.present:
        pytest.skip(f"profile {target.profile.name}: api = {truth.api!r} lists no names")
    listed = truth.present[0]
    wrong = replace(truth, absent=(*truth.absent, listed))

    with pytest.raises(Mismatch) as failure:
        await suite.test_metric_names_follow_profile(target, reader, wrong, transcript)

    assert f"absent: expected no {judge.show(listed)}" in str(failure.value)


@pytest.mark.parametrize("act", judge.ACTS)
async def test_move_check_fails_when_profile_claims_a_larger_move(
    target: Target,
    users: Users,
    sessions: Sessions,
    truth: MetricsExpect,
    reader: MetricsReader,
    transcript: Transcript,
    act: str,
) -> None:
    first = skip_unless_moves(target, truth, act)
    wrong = replace(truth, moves={**truth.moves, act: (replace(first, amount=LARGER),)})

    with pytest.raises(Mismatch) as failure:
        await ACT_CHECKS[act](target, users, sessions, reader, wrong, transcript)

    assert f"{act}: {judge.show(first.name)} {first.direction} = {LARGER}: " in str(failure.value)


# Traffic of other tests on the same server would move the counters it watches stand still.
# The acts are watched at once, so the test waits out one reading window, not one per act.
@pytest.mark.sole_traffic
async def test_move_checks_fail_when_no_traffic_is_driven(
    target: Target,
    truth: MetricsExpect,
    reader: MetricsReader,
) -> None:
    acts = [act for act in judge.ACTS if truth.moves[act]]
    if not acts:
        pytest.skip(
            f"profile {target.profile.name}: no act moves a counter (nothing to contradict)"
        )

    seen = await asyncio.gather(
        *(suite.observe_moves(reader, truth, act, suite.no_traffic(CLAIMED)) for act in acts)
    )

    for act, reading in zip(acts, seen, strict=True):
        with pytest.raises(Mismatch) as failure:
            verdict(judge.judge_moves(truth, act, reading), target.profile.name)
        assert f"{act}: {truth.moves[act][0].key}: expected a " in str(failure.value)


def skip_unless_moves(target: Target, truth: MetricsExpect, act: str) -> judge.Move:
    if not truth.moves[act]:
        pytest.skip(f"profile {target.profile.name}: {act} = [] (no move to contradict)")
    return truth.moves[act][0]
