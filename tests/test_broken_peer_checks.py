"""The stream-start checks fail, with a clear message, against a peer that misbehaves.

Each case runs a real suite check (the same functions the conformance run calls) against
tests/broken_peer.py on 127.0.0.1, which does one thing a profile says a server must not
do. The check must raise Mismatch naming the profile key, or a bounded wait error naming
what was expected; none may pass, and none may hang.
"""

from __future__ import annotations

import time

import pytest

from clients.admin import Account
from clients.inbox import StanzaTimeout
from clients.transcript import Transcript
from conftest import Sessions, Users
from harness.judges import Mismatch
from harness.judges.compression import CompressionExpect
from harness.judges.pre_session import PreSessionExpect
from harness.judges.stream_management import SMExpect
from harness.judges.timeouts import TimeoutExpect
from harness.profiles import load_profile
from harness.targets import Admin, Node, Target
from suites import test_compression as compression
from suites import test_pre_session_limits as pre_session
from suites import test_state_timeout as timeouts
from suites.test_stream_management import (
    check_resume_redelivers_exactly_the_messages_the_client_did_not_handle as redelivery_check,
)
from tests.broken_peer import PASSWORD, Misbehaviour, running

COMPRESSED = "<compressed xmlns='http://jabber.org/protocol/compress'/>"


class PeerUsers(Users):
    """Accounts the broken peer accepts; nothing is registered anywhere."""

    def __init__(self, target: Target) -> None:
        self.target = target

    async def create(self, *roles: str) -> list[Account]:
        return [Account(role, self.target.domain, PASSWORD) for role in roles]


def peer_target(port: int, profile: str) -> Target:
    return Target(
        name="broken-peer",
        profile=load_profile(profile),
        domain="localhost",
        admin=Admin(kind="ejabberd-api"),
        nodes=[Node("peer", "127.0.0.1", {"c2s": port})],
        managed=False,
    )


@pytest.fixture
def transcript() -> Transcript:
    return Transcript()


# Compression ---------------------------------------------------------------------------------


async def test_compression_enabled_where_the_profile_refuses_it_fails_naming_crime(
    transcript: Transcript,
) -> None:
    with running(Misbehaviour(compress_answer=COMPRESSED)) as port:
        target = peer_target(port, "mongooseim-6.1.0")
        sessions = Sessions(target, transcript, "raw")
        want = CompressionExpect.of(target.profile)

        with pytest.raises(Mismatch) as failure:
            await compression.check_compress_after_auth_gets_the_answer_in_the_profile(
                target=target, users=PeerUsers(target), sessions=sessions, want=want
            )
        await sessions.close_all()

    assert "answer_after_auth = 'ignored'" in str(failure.value)
    assert "CRIME" in str(failure.value)


async def test_compression_offered_where_the_profile_refuses_it_fails_naming_crime(
    transcript: Transcript,
) -> None:
    with running(Misbehaviour(offer_compression=True)) as port:
        target = peer_target(port, "mongooseim-6.1.0")
        sessions = Sessions(target, transcript, "raw")
        want = CompressionExpect.of(target.profile)

        with pytest.raises(Mismatch) as failure:
            await compression.check_compression_offer_before_auth_follows_profile(
                target=target, users=PeerUsers(target), sessions=sessions, want=want
            )
        await sessions.close_all()

    assert "offered_before_auth = false" in str(failure.value)
    assert "CRIME" in str(failure.value)


async def test_silent_peer_fails_the_compression_check_within_the_wait(
    transcript: Transcript,
) -> None:
    with running(Misbehaviour(silent=True)) as port:
        target = peer_target(port, "mongooseim-6.0.0")
        sessions = Sessions(target, transcript, "raw")
        want = CompressionExpect.of(target.profile)
        started = time.monotonic()

        with pytest.raises(StanzaTimeout) as failure:
            await compression.check_compress_before_auth_gets_the_answer_in_the_profile(
                target=target, users=PeerUsers(target), sessions=sessions, want=want
            )
        await sessions.close_all()

    assert time.monotonic() - started < 10
    assert "expected <stream:features>" in str(failure.value)


async def test_ignoring_compress_fails_a_profile_that_wants_an_answer(
    transcript: Transcript,
) -> None:
    with running(Misbehaviour()) as port:
        target = peer_target(port, "mongooseim-6.0.0")
        sessions = Sessions(target, transcript, "raw")
        want = CompressionExpect.of(target.profile)

        with pytest.raises(Mismatch) as failure:
            await compression.check_compress_before_auth_gets_the_answer_in_the_profile(
                target=target, users=PeerUsers(target), sessions=sessions, want=want
            )
        await sessions.close_all()

    assert "answer_before_auth = 'failure:setup-failed'" in str(failure.value)
    assert "got nothing" in str(failure.value)


# Timeouts --------------------------------------------------------------------------------------


async def idle_check(
    port: int, profile: str, case: str, transcript: Transcript | None = None
) -> None:
    """Runs the suite's idle check of one case against the peer."""
    target = peer_target(port, profile)
    sessions = Sessions(target, transcript or Transcript(), "raw")
    check = {
        "connect": timeouts.check_connection_that_sends_nothing_is_closed_as_profile_says,
        "stream_open": timeouts.check_stream_left_idle_after_its_header_is_closed_as_profile_says,
    }[case]
    want = TimeoutExpect.of(target.profile)
    try:
        await check(target=target, users=PeerUsers(target), sessions=sessions, want=want)
    finally:
        await sessions.close_all()


async def test_headerless_connection_timeout_is_read_the_way_610_sends_it() -> None:
    with running(Misbehaviour(headerless_timeout_after=3.0)) as port:
        await idle_check(port, "mongooseim-6.1.0", "connect")

        with pytest.raises(Mismatch) as failure:
            await idle_check(port, "prosody", "connect")

    assert "idle_after_connect = 'connection-timeout': the stream error came without" in str(
        failure.value
    )


async def test_peer_that_never_closes_fails_the_timeout_check_at_its_bound() -> None:
    with running(Misbehaviour(silent=True)) as port:
        started = time.monotonic()

        with pytest.raises(Mismatch) as failure:
            await idle_check(port, "mongooseim-6.1.0", "connect")

    assert time.monotonic() - started < 15
    assert "pre_session_timeout = 3: expected the server to close between 2.50 s" in str(
        failure.value
    )


async def test_peer_that_closes_early_fails_the_timeout_check() -> None:
    with running(Misbehaviour(close_after=1.0)) as port, pytest.raises(Mismatch) as failure:
        await idle_check(port, "ejabberd", "stream_open")

    assert "it came early, after 1.0" in str(failure.value)


async def test_silent_close_where_the_profile_wants_a_stream_error_fails() -> None:
    with running(Misbehaviour(close_after=3.0)) as port, pytest.raises(Mismatch) as failure:
        await idle_check(port, "mongooseim-6.1.0", "stream_open")

    assert "idle_after_stream_open = 'connection-timeout': expected one <connection-timeout/>" in (
        str(failure.value)
    )


# Pre-session limits ----------------------------------------------------------------------------


async def test_peer_closing_after_two_sasl_failures_fails_the_limit_check(
    transcript: Transcript,
) -> None:
    with running(Misbehaviour(sasl_close_after=2)) as port:
        target = peer_target(port, "mongooseim-6.1.0")
        sessions = Sessions(target, transcript, "raw")
        want = PreSessionExpect.of(target.profile)

        with pytest.raises(Mismatch) as failure:
            await pre_session.check_failed_sasl_attempts_are_limited_as_profile_says(
                target=target, users=PeerUsers(target), sessions=sessions, want=want
            )
        await sessions.close_all()

    assert (
        "sasl_failure_limit = 4: expected the close right after failed attempt 4; it came "
        "after attempt 2" in str(failure.value)
    )


async def test_stanza_error_without_the_600_text_fails(transcript: Transcript) -> None:
    error = (
        "<iq type='error' id='{id}'><error type='cancel'><service-unavailable "
        "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    )
    with running(Misbehaviour(iq_answer=error)) as port:
        target = peer_target(port, "mongooseim-6.0.0")
        sessions = Sessions(target, transcript, "raw")
        want = PreSessionExpect.of(target.profile)

        with pytest.raises(Mismatch) as failure:
            await pre_session.check_iq_before_auth_gets_the_answer_in_the_profile(
                target=target, users=PeerUsers(target), sessions=sessions, want=want
            )
        await sessions.close_all()

    assert "unauthenticated_iq_text = 'Forbidden unauthenticated stanza'" in str(failure.value)


# Stream management ------------------------------------------------------------------------


async def resumption_check(port: int, transcript: Transcript) -> None:
    """The suite's raw resumption check (5 chats, resume with h=2) against the peer, which
    serves SM the way the prosody profile describes it."""
    target = peer_target(port, "prosody")
    sessions = Sessions(target, transcript, "raw")
    try:
        await redelivery_check(target, PeerUsers(target), sessions, SMExpect.of(target.profile))
    finally:
        await sessions.close_all()


async def test_peer_that_resends_the_unacked_stanzas_passes_the_resumption_check(
    transcript: Transcript,
) -> None:
    with running(Misbehaviour(stream_management=True)) as port:
        await resumption_check(port, transcript)

    assert "<resumed" in transcript.render()


async def test_resumption_that_drops_a_stanza_fails_naming_the_missing_one(
    transcript: Transcript,
) -> None:
    wrong = Misbehaviour(stream_management=True, resume_drops_one=True)

    with running(wrong) as port, pytest.raises(Mismatch) as failure:
        await resumption_check(port, transcript)

    assert "expected exactly the unacked messages ['u3', 'u4', 'u5']" in str(failure.value)
    assert "missing ['u3']" in str(failure.value)


async def test_resumption_that_duplicates_a_stanza_fails_naming_the_repeated_one(
    transcript: Transcript,
) -> None:
    wrong = Misbehaviour(stream_management=True, resume_duplicates_one=True)

    with running(wrong) as port, pytest.raises(Mismatch) as failure:
        await resumption_check(port, transcript)

    assert "delivered twice ['u3']" in str(failure.value)


async def test_silent_peer_fails_the_resumption_check_within_the_wait(
    transcript: Transcript,
) -> None:
    started = time.monotonic()

    with running(Misbehaviour(silent=True)) as port, pytest.raises(StanzaTimeout) as failure:
        await resumption_check(port, transcript)

    assert time.monotonic() - started < 15
    assert "expected <stream:features>" in str(failure.value)
