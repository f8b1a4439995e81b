"""The [pre_session] profiles, judged against transcripts of real 6.0.0 and 6.1.0 servers.

sasl-retry-limit.txt, unauthenticated-iq.txt and bind-without-session-iq.txt of each
version must pass that version's profile and fail the other's, naming the key.
"""

from __future__ import annotations

import pytest

from clients.chat import element_of
from harness.judges import pre_session as judge
from harness.judges.answers import Reply
from harness.judges.pre_session import PreSessionExpect, SaslRun
from harness.profiles import Profile, ProfileError
from tests.recorded import VERSIONS, other, profile, recording

SASL = "urn:ietf:params:xml:ns:xmpp-sasl"


def want(version: str) -> PreSessionExpect:
    return PreSessionExpect.of(profile(version))


def sasl_run(version: str) -> SaslRun:
    """The recorded wrong-password attempts; the right one is the password 'secret'."""
    rec = recording(version, "sasl-retry-limit")
    wrong = [
        line for line in rec.lines if line.direction == "C" and "AGFsaWNlAHdyb25n" in line.text
    ]
    answers = [e for e in rec.received("alice") if e.tag == f"{{{SASL}}}failure"]
    final = [e for e in rec.received("alice") if e.tag == f"{{{SASL}}}success"]
    closed = [line for line in rec.events("alice") if "closed" in line.event]
    return SaslRun(
        attempts=len(wrong),
        answers=tuple(answers),
        closed_after=len(answers) if closed else None,
        final=final[0] if final else None,
    )


def reply_between(version: str, name: str, client: str, start: str, end: str) -> Reply:
    """What `client` received from the line holding `start` to the line holding `end`."""
    rec = recording(version, name)
    first = rec.find("C", client, start)
    last = next(
        line.index
        for line in rec.lines[first + 1 :]
        if end in line.text and line.direction in ("C", "#")
    )
    closed = any("closed" in line.event for line in rec.events(client, first))
    return Reply(
        tuple(rec.received(client, first, last)),
        closed,
        rec.lines[last].elapsed - rec.lines[first].elapsed,
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_sasl_retry_recordings_pass_own_profile_and_fail_the_other(version: str) -> None:
    run = sasl_run(version)

    own = judge.judge_sasl_limit(want(version), run)
    cross = judge.judge_sasl_limit(want(other(version)), run)

    assert own == []
    assert len(cross) == 1
    assert cross[0].startswith("sasl_failure_limit = ")


def test_610_recording_closed_right_after_the_4th_failure() -> None:
    run = sasl_run("6.1.0")

    problems = judge.judge_sasl_limit(want("6.0.0"), run)

    assert (run.closed_after, len(run.answers)) == (4, 4)
    assert problems == [
        "sasl_failure_limit = none: expected every wrong attempt answered and the stream "
        "kept open; the server closed it after attempt 4 (4 failures)"
    ]


def test_600_recording_answered_a_5th_attempt() -> None:
    problems = judge.judge_sasl_limit(want("6.1.0"), sasl_run("6.0.0"))

    assert problems == [
        "sasl_failure_limit = 4: expected the connection closed after failed attempt 4; it "
        "answered 5 of 5 wrong attempts and stayed open"
    ]


def test_close_before_the_limit_is_reported() -> None:
    failure = element_of(f"<failure xmlns='{SASL}'><not-authorized/></failure>")
    run = SaslRun(attempts=3, answers=(failure, failure), closed_after=2, final=None)

    problems = judge.judge_sasl_limit(want("6.1.0"), run)

    assert problems == [
        "sasl_failure_limit = 4: expected the close right after failed attempt 4; it came "
        "after attempt 2, with 2 <failure/> answers"
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_unauthenticated_iq_recordings_pass_own_profile_and_fail_the_other(version: str) -> None:
    reply = reply_between(version, "unauthenticated-iq", "anon", "<iq type='get'", "<message")

    own = judge.judge_unauthenticated_iq(want(version), reply)
    cross = judge.judge_unauthenticated_iq(want(other(version)), reply)

    assert own == []
    assert len(cross) == 1
    assert cross[0].startswith("unauthenticated_iq = ")


def test_610_silence_on_the_unauthenticated_iq_lasted_the_recorded_1_5_s() -> None:
    reply = reply_between("6.1.0", "unauthenticated-iq", "anon", "<iq type='get'", "<message")

    problems = judge.judge_unauthenticated_iq(want("6.0.0"), reply)

    assert reply.watched == pytest.approx(1.5, abs=0.01)
    assert problems == [
        "unauthenticated_iq = 'error:service-unavailable': expected a stanza error "
        "<service-unavailable/>; got nothing within 1.5 s"
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_iq_before_session_recordings_pass_own_profile_and_fail_the_other(version: str) -> None:
    reply = reply_between(
        version, "bind-without-session-iq", "alice", "<iq type='get' id='rost1'>", "<session"
    )

    own = judge.judge_iq_before_session(want(version), reply)
    cross = judge.judge_iq_before_session(want(other(version)), reply)

    assert own == []
    assert len(cross) == 1
    assert cross[0].startswith("iq_before_session = ")


def test_error_text_is_part_of_the_600_answer() -> None:
    reply = reply_between(
        "6.0.0", "bind-without-session-iq", "alice", "<iq type='get' id='rost1'>", "<session"
    )
    expected = PreSessionExpect(**{**want("6.0.0").__dict__, "iq_before_session_text": "other"})

    problems = judge.judge_iq_before_session(expected, reply)

    assert len(problems) == 1
    assert problems[0].startswith("iq_before_session_text = 'other': expected the text")


def test_profile_with_a_limit_that_is_not_a_number_is_refused() -> None:
    table = dict(profile("6.1.0").section("pre_session"), sasl_failure_limit="four")
    broken = Profile("broken", profile("6.1.0").path, {"pre_session": table})

    with pytest.raises(ProfileError, match="sasl_failure_limit = 'four'"):
        PreSessionExpect.of(broken)
