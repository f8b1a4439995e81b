"""The [compression] profiles, judged against transcripts of real 6.0.0 and 6.1.0 servers.

The stream features of each recording must pass its own version's profile and fail the
other's, naming the key. No recording holds a <compress/> exchange: the answers rest on
the code (see the profiles' comments), and their judge is tested here on the answers the
reference servers gave and on answers that must fail.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from clients.chat import element_of
from harness.judges import compression as judge
from harness.judges.answers import Reply
from harness.judges.compression import CompressionExpect, Restart
from harness.profiles import Profile, ProfileError, load_profile
from tests.recorded import VERSIONS, other, profile, recording

COMPRESSED = "<compressed xmlns='http://jabber.org/protocol/compress'/>"
SETUP_FAILED = "<failure xmlns='http://jabber.org/protocol/compress'><setup-failed/></failure>"
UNSUPPORTED = (
    "<failure xmlns='http://jabber.org/protocol/compress'><unsupported-method/></failure>"
)
STREAM_ERROR = (
    "<stream:error xmlns:stream='http://etherx.jabber.org/streams'>"
    "<unsupported-stanza-type xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
)


def want(version: str) -> CompressionExpect:
    return CompressionExpect.of(profile(version))


def features_in(version: str, name: str, client: str = "alice") -> ET.Element:
    """The first <stream:features/> a client received in a recording."""
    rec = recording(version, name)
    found = [e for e in rec.received(client) if e.tag.endswith("}features")]
    assert found, f"{name}: no <stream:features/> for {client!r}"
    return found[0]


def reply(*xml: str, closed: bool = False) -> Reply:
    return Reply(tuple(element_of(x) for x in xml), closed, 1.0)


# Offers, from the recordings ---------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_pre_auth_features_show_compression_on_600_only(version: str) -> None:
    features = features_in(version, "sm-enable-before-bind")

    own = judge.judge_offer(want(version), features, "before_auth")
    cross = judge.judge_offer(want(other(version)), features, "before_auth")

    assert own == []
    assert len(cross) == 1
    assert cross[0].startswith("offered_before_auth = ")


@pytest.mark.parametrize("version", VERSIONS)
def test_post_auth_features_show_compression_on_600_only(version: str) -> None:
    features = features_in(version, "bind-without-session-iq")

    own = judge.judge_offer(want(version), features, "after_auth")
    cross = judge.judge_offer(want(other(version)), features, "after_auth")

    assert own == []
    assert len(cross) == 1
    assert cross[0].startswith("offered_after_auth = ")


def test_compression_offered_by_610_names_the_crime_risk() -> None:
    features = features_in("6.0.0", "config-zlib-accepted", client="")

    problems = judge.judge_offer(want("6.1.0"), features, "before_auth")

    assert len(problems) == 1
    assert "offered_before_auth = false" in problems[0]
    assert "CRIME" in problems[0]


def test_zlib_config_recording_passes_the_600_profile() -> None:
    features = features_in("6.0.0", "config-zlib-accepted", client="")

    assert judge.judge_offer(want("6.0.0"), features, "before_auth") == []


def test_missing_features_are_reported_not_passed() -> None:
    problems = judge.judge_offer(want("6.1.0"), None, "after_auth")

    assert problems == ["offered_after_auth = false: the server sent no <stream:features/> at all"]


# Answers -------------------------------------------------------------------------------------


def test_compressed_where_610_ignores_compress_names_the_crime_risk() -> None:
    problems = judge.judge_answer(want("6.1.0"), "answer_after_auth", reply(COMPRESSED))

    assert len(problems) == 1
    assert problems[0].startswith("answer_after_auth = 'ignored': expected no answer")
    assert "CRIME" in problems[0]


def test_600_profile_wants_setup_failed_before_auth_and_compressed_after() -> None:
    before = judge.judge_answer(want("6.0.0"), "answer_before_auth", reply(SETUP_FAILED))
    after = judge.judge_answer(want("6.0.0"), "answer_after_auth", reply(COMPRESSED))

    assert before == []
    assert after == []


def test_610_silence_fails_the_600_profile() -> None:
    problems = judge.judge_answer(want("6.0.0"), "answer_after_auth", reply())

    assert problems == [
        "answer_after_auth = 'compressed': expected <compressed "
        "xmlns='http://jabber.org/protocol/compress'/>; got nothing within 1.0 s"
    ]


def test_600_setup_failed_fails_the_610_profile() -> None:
    problems = judge.judge_answer(want("6.1.0"), "answer_before_auth", reply(SETUP_FAILED))

    assert len(problems) == 1
    assert "answer_before_auth = 'ignored'" in problems[0]
    assert "<setup-failed/>" in problems[0]
    assert "CRIME" not in problems[0]


def test_600_answers_for_unknown_and_missing_methods_differ() -> None:
    own = want("6.0.0")

    unknown = judge.judge_answer(own, "answer_unknown_method", reply(UNSUPPORTED))
    missing = judge.judge_answer(own, "answer_missing_method", reply(UNSUPPORTED))

    assert unknown == []
    assert len(missing) == 1
    assert "answer_missing_method = 'failure:setup-failed'" in missing[0]


def test_stream_error_answer_needs_the_close() -> None:
    prosody = CompressionExpect.of(load_profile("prosody"))

    closed = judge.judge_answer(prosody, "answer_before_auth", reply(STREAM_ERROR, closed=True))
    open_ = judge.judge_answer(prosody, "answer_before_auth", reply(STREAM_ERROR))

    assert closed == []
    assert len(open_) == 1
    assert "stayed open" in open_[0]


def test_failure_followed_by_a_close_is_reported() -> None:
    problems = judge.judge_answer(
        want("6.0.0"), "answer_before_auth", reply(SETUP_FAILED, closed=True)
    )

    assert len(problems) == 1
    assert "then the server closed the stream" in problems[0]


# The zlib restart ------------------------------------------------------------------------------


def test_restart_needs_a_new_stream_id_and_no_second_offer() -> None:
    features = features_in("6.0.0", "bind-without-session-iq")
    restart = Restart({"id": "same"}, features, "alice@localhost/zlib")

    problems = judge.judge_restart(want("6.0.0"), "same", restart)

    assert len(problems) == 2
    assert "new stream id" in problems[0]
    assert "offered again" in problems[1]


def test_restart_that_binds_on_a_new_stream_passes() -> None:
    features = element_of(
        "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"
        "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"
    )
    restart = Restart({"id": "new"}, features, "alice@localhost/zlib")

    assert judge.judge_restart(want("6.0.0"), "old", restart) == []


def test_failed_restart_reports_the_error() -> None:
    restart = Restart({}, None, "", "alice: expected <stream:features>; the stream closed")

    problems = judge.judge_restart(want("6.0.0"), "old", restart)

    assert problems == [
        "answer_after_auth = 'compressed': the zlib stream restart failed: alice: expected "
        "<stream:features>; the stream closed"
    ]


# Profiles --------------------------------------------------------------------------------------


def test_profile_with_an_unknown_answer_is_refused() -> None:
    table = dict(profile("6.1.0").section("compression"), answer_after_auth="maybe")
    broken = Profile("broken", profile("6.1.0").path, {"compression": table})

    with pytest.raises(ProfileError, match="answer_after_auth = 'maybe' is not an answer"):
        CompressionExpect.of(broken)


def test_profile_claiming_compression_for_an_unknown_method_is_refused() -> None:
    table = dict(profile("6.0.0").section("compression"), answer_unknown_method="compressed")
    broken = Profile("broken", profile("6.0.0").path, {"compression": table})

    with pytest.raises(ProfileError, match="answer_unknown_method"):
        CompressionExpect.of(broken)


def test_ejabberd_no_zlib_profile_differs_from_ejabberd_only_in_compression() -> None:
    with_zlib, without = load_profile("ejabberd").data, load_profile("ejabberd-no-zlib").data

    differing = sorted(k for k in {*with_zlib, *without} if with_zlib.get(k) != without.get(k))

    assert differing == ["compression"], (
        "profiles/ejabberd-no-zlib.toml must copy every table of profiles/ejabberd.toml "
        f"except [compression]; these differ: {differing}"
    )
