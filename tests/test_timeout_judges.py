"""The [timeouts] profiles, judged against recordings and against closes of every kind.

The only MongooseIM recording of an idle stream is the bound stream that never sent the
session IQ: open 7.4 s after bind on both versions. That is past the 6.1.0 window (3 s
plus margins), so it confirms `idle_after_bind = "open"` for 6.1.0, and it is too short
to confirm or refute the 60 s of 6.0.0, which the judge says instead of passing it. The
other closes are built here the way the raw client records them (tests/test_broken_peer
shows the client recording them from real bytes).
"""

from __future__ import annotations

import pytest

from clients.chat import element_of
from harness.judges import timeouts as judge
from harness.judges.timeouts import IdleClose, TimeoutExpect
from harness.profiles import Profile, ProfileError, load_profile
from tests.recorded import VERSIONS, profile, recording

TIMEOUT_ERROR = (
    "<stream:error xmlns:stream='http://etherx.jabber.org/streams'>"
    "<connection-timeout xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
)


def want(version: str) -> TimeoutExpect:
    return TimeoutExpect.of(profile(version))


def bound_without_session(version: str) -> IdleClose:
    """From the bind result to the late session IQ: what alice's stream showed meanwhile."""
    rec = recording(version, "bind-without-session-iq")
    bound = rec.find("S", "alice", "<iq id='bind1' type='result'>")
    session_iq = rec.find("C", "alice", "<session xmlns=")
    closed = [line for line in rec.events("alice", bound) if "closed" in line.event]
    return IdleClose(
        stage="bind",
        watched=rec.lines[session_iq].elapsed - rec.lines[bound].elapsed,
        closed_after=None if not closed else closed[0].elapsed - rec.lines[bound].elapsed,
        elements=tuple(rec.received("alice", bound + 1, session_iq)),
        header_seen=True,
        stream_ended=False,
    )


def closed(stage: str, after: float, *xml: str, header: bool = True) -> IdleClose:
    return IdleClose(
        stage=stage,
        watched=after,
        closed_after=after,
        elements=tuple(element_of(x) for x in xml),
        header_seen=header,
        stream_ended=bool(xml),
    )


def still_open(stage: str, watched: float, keepalives: int = 0) -> IdleClose:
    return IdleClose(stage, watched, None, (), True, False, keepalives)


# The recording ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_bound_stream_recordings_stay_open_past_the_610_window(version: str) -> None:
    seen = bound_without_session(version)

    assert seen.closed_after is None
    assert seen.watched > want("6.1.0").window()[1]
    assert judge.judge_idle(want("6.1.0"), seen) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_bound_stream_recordings_are_too_short_for_the_600_timeout(version: str) -> None:
    seen = bound_without_session(version)

    problems = judge.judge_idle(want("6.0.0"), seen)

    assert len(problems) == 1
    assert problems[0].startswith("idle_after_bind = 'silent', pre_session_timeout = 60: ")
    assert "watched only 7.4" in problems[0]


# How each version's profile judges the closes the code describes --------------------------


def test_headerless_connection_timeout_at_3_s_is_610_and_not_600() -> None:
    seen = closed("connect", 3.01, TIMEOUT_ERROR, header=False)

    own = judge.judge_idle(want("6.1.0"), seen)
    cross = judge.judge_idle(want("6.0.0"), seen)

    assert own == []
    assert len(cross) == 2
    assert cross[0].startswith("pre_session_timeout = 60: expected the close between 59.50 s")
    assert "came early, after 3.01 s" in cross[0]
    assert cross[1].startswith("idle_after_connect = 'silent': expected TCP to close without")


def test_silent_close_at_60_s_is_600_and_not_610() -> None:
    seen = closed("stream_open", 60.2)

    own = judge.judge_idle(want("6.0.0"), seen)
    cross = judge.judge_idle(want("6.1.0"), seen)

    assert own == []
    assert "came late, after 60.20 s" in cross[0]
    assert cross[1].startswith("idle_after_stream_open = 'connection-timeout': expected one")


def test_610_stream_error_needs_the_header_after_the_stream_opened() -> None:
    seen = closed("auth", 3.0, TIMEOUT_ERROR, header=False)

    problems = judge.judge_idle(want("6.1.0"), seen)

    assert problems == [
        "idle_after_auth = 'connection-timeout': the stream error came without a stream "
        "header before it"
    ]


def test_header_before_the_error_fails_the_headerless_expectation() -> None:
    seen = closed("connect", 3.0, TIMEOUT_ERROR, header=True)

    problems = judge.judge_idle(want("6.1.0"), seen)

    assert problems == [
        "idle_after_connect = 'connection-timeout-without-header': the server sent a stream "
        "header before the stream error"
    ]


def test_connection_still_open_after_the_window_names_the_timeout() -> None:
    seen = still_open("stream_open", 5.9)

    problems = judge.judge_idle(want("6.1.0"), seen)

    assert problems == [
        "idle_after_stream_open = 'connection-timeout', pre_session_timeout = 3: expected the "
        "server to close between 2.50 s and 5.30 s, but it was still open after 5.90 s; it "
        "sent nothing"
    ]


def test_session_closed_where_the_profile_keeps_it_open() -> None:
    seen = closed("session", 3.0, TIMEOUT_ERROR)

    problems = judge.judge_idle(want("6.1.0"), seen)

    assert len(problems) == 1
    assert problems[0].startswith("idle_in_session = 'open': expected the connection to stay")


def test_open_connection_needs_the_whole_window() -> None:
    seen = still_open("session", 2.0)

    problems = judge.judge_idle(want("6.1.0"), seen)

    assert problems == [
        "idle_in_session = 'open': watched only 2.00 s, less than the 5.30 s needed to tell "
        "an open connection from pre_session_timeout = 3"
    ]


def test_margins_are_half_a_second_early_and_2_s_plus_10_percent_late() -> None:
    assert want("6.1.0").window() == pytest.approx((2.5, 5.3))
    assert want("6.0.0").window() == pytest.approx((59.5, 68.0))
    assert want("6.1.0").watch_for() == pytest.approx(5.8)


# Whitespace ---------------------------------------------------------------------------------


def test_whitespace_that_restarts_the_timer_fails_the_610_profile() -> None:
    seen = still_open("stream_open", 5.9, keepalives=12)

    problems = judge.judge_whitespace(want("6.1.0"), seen)

    assert len(problems) == 1
    assert problems[0].startswith("whitespace_restarts_timer = false, pre_session_timeout = 3")
    assert "(12 whitespace keepalives sent)" in problems[0]


def test_close_despite_whitespace_passes_the_610_profile() -> None:
    seen = closed("stream_open", 3.0, TIMEOUT_ERROR)

    assert judge.judge_whitespace(want("6.1.0"), seen) == []


def test_600_profile_states_nothing_about_whitespace() -> None:
    with pytest.raises(ProfileError, match="whitespace_restarts_timer"):
        judge.judge_whitespace(want("6.0.0"), still_open("stream_open", 70.0))


# Profiles --------------------------------------------------------------------------------------


def test_reference_profiles_read() -> None:
    prosody = TimeoutExpect.of(load_profile("prosody"))
    ejabberd = TimeoutExpect.of(load_profile("ejabberd"))

    assert (prosody.idle_after_connect, ejabberd.idle_after_connect) == (
        "connection-timeout",
        "silent",
    )


def test_profile_with_an_unknown_manner_is_refused() -> None:
    table = dict(profile("6.1.0").section("timeouts"), idle_after_auth="slow")
    broken = Profile("broken", profile("6.1.0").path, {"timeouts": table})

    with pytest.raises(ProfileError, match="idle_after_auth must be one of"):
        TimeoutExpect.of(broken)


def test_profile_with_a_timeout_that_is_not_a_number_is_refused() -> None:
    table = dict(profile("6.1.0").section("timeouts"), pre_session_timeout="3 s")
    broken = Profile("broken", profile("6.1.0").path, {"timeouts": table})

    with pytest.raises(ProfileError, match="pre_session_timeout = '3 s'"):
        TimeoutExpect.of(broken)
