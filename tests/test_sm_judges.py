"""The MongooseIM stream-management profiles, judged against transcripts of real servers.

Each recorded behaviour must pass the profile of the version it was recorded on; where
6.0.0 and 6.1.0 differ it must fail the other version's profile, naming the profile key.
The recordings of a server without mod_stream_management are judged against the -no-sm
profiles, and must fail the profiles of the servers that have the module.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from typing import Any

import pytest

from harness import recordings
from harness.judges import stream_management as judge
from harness.judges.stream_management import Exchange, Resumption, SMExpect, Watch
from harness.profiles import load_profile
from tests.recorded import VERSIONS, other, profile, recording

NEW_CONN = "bob(new"  # the recordings' "bob(new conn)": the client name stops at a space


def want(version: str, variant: str = "") -> SMExpect:
    if variant:
        return SMExpect.of(load_profile(f"mongooseim-{version}-{variant}"))
    return SMExpect.of(profile(version))


def claim(version: str, **changes: Any) -> SMExpect:
    return replace(want(version), **changes)


def exchange(
    rec: recordings.Recording, client: str, start: int, end: int | None = None, **kw: Any
) -> Exchange:
    """What `client` received in lines [start, end), and whether its stream ended."""
    lines = [ln for ln in rec.lines[start:end] if ln.client == client and ln.direction == "S"]
    return Exchange(
        rec.received(client, start, end),
        ended=any(ln.stream_end for ln in lines),
        closed=any("TCP closed" in ln.event for ln in lines),
        **kw,
    )


def features_in_note(rec: recordings.Recording, contains: str) -> ET.Element:
    """The post-auth features the recordings give in a `#` note, parsed."""
    note = next(ln for ln in rec.lines if ln.direction == "#" and contains in ln.text)
    xml = note.text[note.text.index("<stream:features>") :]
    wrapped = recordings.WRAP.format(xml)
    return ET.fromstring(wrapped)[0]


# -- features -------------------------------------------------------------------------------


def pre_auth_features(version: str, name: str) -> ET.Element:
    rec = recording(version, name)
    return next(e for e in rec.received("alice") if e.tag.endswith("}features"))


@pytest.mark.parametrize("version", VERSIONS)
def test_sm_is_offered_before_auth_by_both_versions(version: str) -> None:
    features = pre_auth_features(version, "sm-enable-before-bind")

    assert judge.judge_features(want(version), features, None) == []
    assert judge.judge_features(want(other(version)), features, None) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_profile_that_says_sm_only_after_auth_fails_on_the_recording(version: str) -> None:
    features = pre_auth_features(version, "sm-enable-before-bind")

    problems = judge.judge_features(claim(version, advertised_before_auth=False), features, None)

    assert len(problems) == 1
    assert "advertised_before_auth = false" in problems[0]


@pytest.mark.parametrize("version", VERSIONS)
def test_module_disabled_recording_offers_no_sm_anywhere(version: str) -> None:
    rec = recording(version, "sm-module-disabled")
    before = pre_auth_features(version, "sm-module-disabled")
    after = features_in_note(rec, "features: ")

    own = judge.judge_features(want(version, "no-sm"), before, after)
    with_module = judge.judge_features(want(version), before, after)

    assert own == []
    assert len(with_module) == 2
    assert with_module[0].startswith("advertised_before_auth = true: expected <sm")
    assert with_module[1].startswith("available = true: expected <sm")


# -- enable ---------------------------------------------------------------------------------


def enable_answer(version: str, resume: bool) -> Exchange:
    rec = recording(version, "sm-enable-and-ack")
    sent = "resume='true'/>" if resume else "<enable xmlns='urn:xmpp:sm:3'/>"
    act = rec.find("C", "alice", sent)
    return exchange(rec, "alice", act, act + 2)


@pytest.mark.parametrize("resume", [False, True], ids=["plain", "resume"])
@pytest.mark.parametrize("version", VERSIONS)
def test_enabled_attributes_pass_both_profiles(version: str, resume: bool) -> None:
    seen = enable_answer(version, resume)

    assert judge.judge_enable(want(version), resume, seen) == []
    assert judge.judge_enable(want(other(version)), resume, seen) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_profile_expecting_max_on_enabled_fails_naming_the_key(version: str) -> None:
    seen = enable_answer(version, resume=True)
    wrong = claim(version, enabled_resume_attributes=["id", "max", "resume"])

    problems = judge.judge_enable(wrong, True, seen)

    assert len(problems) == 1
    assert problems[0].startswith("enabled_resume_attributes = ['id', 'max', 'resume']")


@pytest.mark.parametrize("version", VERSIONS)
def test_module_disabled_answer_differs_between_versions(version: str) -> None:
    rec = recording(version, "sm-module-disabled")
    act = rec.find("C", "alice", "<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
    alive = any(e.get("id") == "alive2" for e in rec.received("alice", act))
    seen = exchange(rec, "alice", act, rec.find("C", "alice", "<r xmlns", act) if alive else None)
    seen.usable = alive if not seen.ended else None

    own = judge.judge_enable(want(version, "no-sm"), True, seen)
    cross = judge.judge_enable(want(other(version), "no-sm"), True, seen)
    with_module = judge.judge_enable(want(version), True, seen)

    assert own == []
    assert cross
    assert all("disabled_enable_" in p for p in cross)
    assert with_module
    assert "available = true" in with_module[0]


@pytest.mark.parametrize("version", VERSIONS)
def test_enable_twice_ends_the_stream_in_both_versions(version: str) -> None:
    rec = recording(version, "sm-enable-twice")
    first = rec.find("C", "alice", "<enable")
    act = rec.find("C", "alice", "<enable", first + 1)
    seen = exchange(rec, "alice", act)

    assert judge.judge_enable_twice(want(version), seen) == []
    assert judge.judge_enable_twice(want(other(version)), seen) == []
    problems = judge.judge_enable_twice(claim(version, enable_twice_ends_stream=False), seen)
    assert problems == [
        "enable_twice_ends_stream = false: expected the stream to go on; the server then "
        "ended the stream"
    ]


@pytest.mark.parametrize(("stage", "sent"), [("auth", "<enable xmlns"), ("bind", "resume='true'")])
@pytest.mark.parametrize("version", VERSIONS)
def test_enable_before_bind_is_refused_with_unexpected_request(
    version: str, stage: str, sent: str
) -> None:
    rec = recording(version, "sm-enable-before-bind")
    act = rec.find("C", "alice", sent)
    bound = any(e.get("id") == "bind1" for e in rec.received("alice", act))
    seen = exchange(rec, "alice", act, act + 2, usable=bound if stage == "bind" else None)

    assert judge.judge_enable_too_early(want(version), stage, seen) == []
    assert judge.judge_enable_too_early(want(other(version)), stage, seen) == []
    wrong = claim(version, **{f"enable_before_{stage}_condition": "not-authorized"})
    assert judge.judge_enable_too_early(wrong, stage, seen)[0].startswith(
        f"enable_before_{stage}_condition = 'not-authorized'"
    )


# -- acks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource_enable", "sent"), [("<enable xmlns='urn:xmpp:sm:3'/>", 1), ("resume='true'/>", 0)]
)
@pytest.mark.parametrize("version", VERSIONS)
def test_ack_counts_the_client_stanzas_exactly(
    version: str, resource_enable: str, sent: int
) -> None:
    rec = recording(version, "sm-enable-and-ack")
    start = rec.find("C", "alice", resource_enable)
    act = rec.find("C", "alice", "<r xmlns", start)
    seen = exchange(rec, "alice", act, act + 2)

    assert judge.judge_ack_count(want(version), sent, seen) == []
    wrong = judge.judge_ack_count(want(version), sent + 1, seen)
    assert wrong == [
        f"available = true: expected <a h='{sent + 1}'/> (the {sent + 1} stanzas the client "
        f"sent, XEP-0198 section 4), got <a xmlns='urn:xmpp:sm:3' h='{sent}'/>"
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_ack_requests_follow_every_delivery(version: str) -> None:
    rec = recording(version, "sm-resume-redelivery")
    start = rec.find("C", "alice", "id='r1'")
    seen = exchange(rec, "bob", start, rec.find("C", "bob", "[TCP close"))

    assert judge.judge_ack_requests(want(version), 3, seen) == []
    problems = judge.judge_ack_requests(claim(version, ack_requests="one_outstanding"), 3, seen)
    assert len(problems) == 1
    assert "ack_requests = 'one_outstanding': expected 1 <r/> after 3" in problems[0]


def test_missing_and_too_high_h_judges_read_the_profile() -> None:
    """No recording has these answers (MongooseIM's own sm_SUITE covers them); the judges
    are checked on the stanzas its tests expect."""
    stream_error = (
        "<stream:error xmlns:stream='http://etherx.jabber.org/streams'>"
        "<undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        "<handled-count-too-high xmlns='urn:xmpp:sm:3' h='5' send-count='1'/>"
        "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>"
        "You acknowledged more stanzas that what has been sent</text></stream:error>"
    )
    (element,) = ET.fromstring(recordings.WRAP.format(stream_error))
    seen = Exchange([element], ended=True)

    assert judge.judge_too_high_h(want("6.1.0"), 5, 1, seen) == []
    assert judge.judge_too_high_h(want("6.1.0"), 5, 2, seen)[0].startswith(
        "too_high_h_reports_counts = true: expected h='5' send-count='2'"
    )
    assert judge.judge_missing_h(want("6.0.0"), seen)[0].startswith(
        "missing_h_condition = 'policy-violation'"
    )


# -- resumption -----------------------------------------------------------------------------


def redelivery(version: str) -> Resumption:
    rec = recording(version, "sm-resume-redelivery")
    act = rec.find("C", NEW_CONN, "<resume")
    previd = rec.lines[act].text.split("previd='")[1].split("'")[0]
    received = rec.received(NEW_CONN, act)
    answer = next(e for e in received if e.tag.endswith("}resumed"))
    after = [e for e in received if e is not answer]
    return Resumption(answer, after, previd, "bob@localhost/smr", "localhost", client_sent=1)


@pytest.mark.parametrize("version", VERSIONS)
def test_resumption_redelivers_every_unacked_message_once_in_order(version: str) -> None:
    seen = redelivery(version)

    assert judge.judge_redelivery(want(version), ["r1", "r2", "r3", "r4"], seen) == []
    assert judge.judge_redelivery(want(other(version)), ["r1", "r2", "r3", "r4"], seen) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_redelivery_of_messages_the_client_handled_is_reported(version: str) -> None:
    seen = redelivery(version)

    problems = judge.judge_redelivery(want(version), ["r3", "r4"], seen)

    assert len(problems) == 1
    assert "not expected (already handled) ['r1', 'r2']" in problems[0]


@pytest.mark.parametrize("version", VERSIONS)
def test_redelivered_delay_follows_the_profile(version: str) -> None:
    seen = redelivery(version)
    wrong = claim(version, redelivery_delay_text="Resent", redelivery_delay_from="user")

    problems = judge.judge_redelivery(wrong, ["r1", "r2", "r3", "r4"], seen)

    assert len(problems) == 8
    assert sum("redelivery_delay_text = 'Resent'" in p for p in problems) == 4
    assert sum("redelivery_delay_from = 'user'" in p for p in problems) == 4


@pytest.mark.parametrize("version", VERSIONS)
def test_resumed_h_counts_the_stanzas_the_server_got(version: str) -> None:
    seen = replace(redelivery(version), client_sent=0)

    problems = judge.judge_redelivery(want(version), ["r1", "r2", "r3", "r4"], seen)

    assert len(problems) == 1
    assert "expected <resumed h='0'/>" in problems[0]


@pytest.mark.parametrize("version", VERSIONS)
def test_unknown_previd_fails_with_item_not_found_and_bind_works(version: str) -> None:
    rec = recording(version, "sm-resume-unknown-previd")
    act = rec.find("C", "bob", "<resume")
    bound = any(e.get("id") == "bind1" for e in rec.received("bob", act))
    seen = exchange(rec, "bob", act, act + 2, usable=bound)

    assert judge.judge_resume_refused(want(version), "unknown_previd_condition", seen) == []
    wrong = claim(version, unknown_previd_condition="unexpected-request")
    assert judge.judge_resume_refused(wrong, "unknown_previd_condition", seen)


# -- drops and expiry -----------------------------------------------------------------------


def watch(version: str, name: str) -> Watch:
    rec = recording(version, name)
    drop = rec.find("C", "bob", "[TCP close")
    dropped = rec.lines[drop].elapsed
    arrivals = [
        (ln.elapsed - dropped, e)
        for ln in rec.lines[drop:]
        if ln.direction == "S" and ln.client == "alice"
        for e in ln.elements
    ]
    return Watch("bob@localhost/held", arrivals)


@pytest.mark.parametrize("version", VERSIONS)
def test_unavailable_at_hold_expiry_differs_between_versions(version: str) -> None:
    seen = watch(version, "sm-resume-timeout-expiry")

    own = judge.judge_hold_expiry(want(version), seen)
    cross = judge.judge_hold_expiry(want(other(version)), seen)

    assert own == []
    assert len(cross) == 1
    assert "unavailable_when_hold_expires" in cross[0]


@pytest.mark.parametrize("version", VERSIONS)
def test_expired_previd_fails_with_item_not_found(version: str) -> None:
    rec = recording(version, "sm-resume-timeout-expiry")
    act = rec.find("C", NEW_CONN, "<resume")
    seen = exchange(rec, NEW_CONN, act)

    assert judge.judge_resume_refused(want(version), "unknown_previd_condition", seen) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_drop_without_resume_is_held_by_610_only(version: str) -> None:
    seen = watch(version, "sm-drop-without-resume-held")

    own = judge.judge_drop_without_resume(want(version), seen)
    cross = judge.judge_drop_without_resume(want(other(version)), seen)

    assert own == []
    assert len(cross) == 1
    assert cross[0].startswith("hold_without_resume = ")


def test_early_unavailable_during_a_hold_is_reported() -> None:
    seen = watch("6.0.0", "sm-drop-without-resume-held")

    problems = judge.judge_hold_expiry(want("6.0.0"), seen)

    assert problems == [
        "resume_timeout = 5: the contact saw unavailable presence at +0.0 s, while the "
        "session was still held"
    ]


def test_every_profile_has_a_valid_stream_management_table() -> None:
    names = [
        "mongooseim-6.0.0",
        "mongooseim-6.1.0",
        "mongooseim-6.1.0-no-presence",
        "mongooseim-6.0.0-no-sm",
        "mongooseim-6.1.0-no-sm",
        "prosody",
        "ejabberd",
    ]

    expectations = [SMExpect.of(load_profile(n)) for n in names]

    assert [e.available for e in expectations] == [True, True, True, False, False, True, True]
