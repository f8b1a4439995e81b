"""Probes of the sensitivity run: real checks of the suite against the broken peer.

Run by harness/sensitivity.py as `pytest tests/peer_faults.py`; `pytest tests/` does not
collect this file (its name has no `test_` prefix), because half of its probes exist to
fail. For each fault of tests/peer_faults.toml:

- test_check_fails_on_the_peer_with_the_fault[<fault>] runs the fault's check against the
  peer with the injected fault: its failure, with the check's own message, is the suite
  catching the fault;
- test_check_passes_on_the_peer_without_the_fault[<fault>] runs the same check against
  the peer doing what the profile says: it must pass, or the check (or the peer) is wrong.

The harness's own tests of the same faults, which expect the failure, are in
tests/test_broken_peer_checks.py.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from clients.transcript import Transcript
from conftest import Sessions
from harness.judges.compression import CompressionExpect
from harness.judges.pre_session import PreSessionExpect
from suites import test_compression as compression
from suites import test_pre_session_limits as pre_session
from tests.broken_peer import Misbehaviour, running
from tests.test_broken_peer_checks import PeerUsers, idle_check, peer_target, resumption_check

log = logging.getLogger(__name__)

FAULTS: dict[str, dict[str, Any]] = tomllib.loads(
    (Path(__file__).with_suffix(".toml")).read_text()
)["faults"]


async def compress_after_auth(port: int, profile: str, transcript: Transcript) -> None:
    target = peer_target(port, profile)
    sessions = Sessions(target, transcript, "raw")
    try:
        await compression.check_compress_after_auth_gets_the_answer_in_the_profile(
            target=target,
            users=PeerUsers(target),
            sessions=sessions,
            want=CompressionExpect.of(target.profile),
        )
    finally:
        await sessions.close_all()


async def compress_before_auth(port: int, profile: str, transcript: Transcript) -> None:
    target = peer_target(port, profile)
    sessions = Sessions(target, transcript, "raw")
    try:
        await compression.check_compress_before_auth_gets_the_answer_in_the_profile(
            target=target,
            users=PeerUsers(target),
            sessions=sessions,
            want=CompressionExpect.of(target.profile),
        )
    finally:
        await sessions.close_all()


async def offer_before_auth(port: int, profile: str, transcript: Transcript) -> None:
    target = peer_target(port, profile)
    sessions = Sessions(target, transcript, "raw")
    try:
        await compression.check_compression_offer_before_auth_follows_profile(
            target=target,
            users=PeerUsers(target),
            sessions=sessions,
            want=CompressionExpect.of(target.profile),
        )
    finally:
        await sessions.close_all()


async def sasl_failure_limit(port: int, profile: str, transcript: Transcript) -> None:
    target = peer_target(port, profile)
    sessions = Sessions(target, transcript, "raw")
    try:
        await pre_session.check_failed_sasl_attempts_are_limited_as_profile_says(
            target=target,
            users=PeerUsers(target),
            sessions=sessions,
            want=PreSessionExpect.of(target.profile),
        )
    finally:
        await sessions.close_all()


async def idle_after_stream_open(port: int, profile: str, transcript: Transcript) -> None:
    await idle_check(port, profile, "stream_open", transcript)


async def resumption(port: int, profile: str, transcript: Transcript) -> None:
    if profile != "prosody":
        raise ValueError(f"the peer serves SM as the prosody profile says, not as {profile}")
    await resumption_check(port, transcript)


CHECKS: dict[str, Callable[[int, str, Transcript], Awaitable[None]]] = {
    "compress_after_auth": compress_after_auth,
    "compress_before_auth": compress_before_auth,
    "offer_before_auth": offer_before_auth,
    "sasl_failure_limit": sasl_failure_limit,
    "idle_after_stream_open": idle_after_stream_open,
    "resumption": resumption,
}


async def run_check(name: str, variant: str, transcript: Transcript) -> None:
    fault = FAULTS[name]
    misbehaviour = Misbehaviour(**fault[variant])
    log.info("%s: check %s on the peer %s: %s", name, fault["check"], variant, misbehaviour)
    with running(misbehaviour) as port:
        await CHECKS[fault["check"]](port, fault["profile"], transcript)


@pytest.mark.parametrize("name", list(FAULTS))
async def test_check_fails_on_the_peer_with_the_fault(name: str, transcript: Transcript) -> None:
    await run_check(name, "broken", transcript)


@pytest.mark.parametrize("name", list(FAULTS))
async def test_check_passes_on_the_peer_without_the_fault(
    name: str, transcript: Transcript
) -> None:
    await run_check(name, "correct", transcript)
