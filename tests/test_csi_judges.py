"""The MongooseIM [csi] profiles, judged against transcripts of real 6.0.0 and 6.1.0 servers.

Each recorded behaviour must pass the profile of the version it was recorded on; where
the versions differ (the answer to an unknown CSI element) it must fail the other
version's profile, naming the key. Claims the recordings contradict must fail too, so the
judges are shown to tell the recorded behaviour from a different one.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from typing import Any

import pytest

from clients.inbox import CLIENT_NS, local_name
from harness import recordings
from harness.judges import csi as judge
from harness.judges.csi import CsiExpect, Step, Timeline, csi_step, stanza_step
from harness.profiles import load_profile
from harness.targets import load_catalog
from tests.recorded import VERSIONS, other, profile, recording

BOB, ALICE = "bob@localhost/csi", "alice@localhost/a-csi"


def want(version: str, **claims: Any) -> CsiExpect:
    return replace(CsiExpect.of(profile(version)), **claims)


def recorded_timeline(
    rec: recordings.Recording, steps: list[tuple[Step, str, str]], owner: str = BOB
) -> Timeline:
    """Steps located in a recording by (client, text of its C: line), in order; what bob
    received after each step is what the server wrote to him up to the next step's line."""
    lines: list[int] = []
    for _step, client, text in steps:
        lines.append(rec.find("C", client, text, lines[-1] + 1 if lines else 0))
    ends: list[int | None] = [*lines[1:], None]
    after = [rec.received("bob", start, end) for start, end in zip(lines, ends, strict=True)]
    closed = "; ".join(line.event for line in rec.events("bob", lines[0]))
    return Timeline(owner, [step for step, _, _ in steps], after, closed)


def away_presence() -> Step:
    def found(e: ET.Element) -> bool:
        show = e.findtext(f"{{{CLIENT_NS}}}show")
        return local_name(e) == "presence" and e.get("from") == ALICE and show == "away"

    return Step("presence", "away", ALICE, found)


def chat(label: str) -> Step:
    return stanza_step("chat", label, ALICE)


def buffer_and_flush(version: str) -> Timeline:
    rec = recording(version, "csi-buffer-and-flush-on-active")
    return recorded_timeline(
        rec,
        [
            (csi_step("inactive"), "bob", "<inactive"),
            (away_presence(), "alice", "<presence><show>away"),
            (chat("c1"), "alice", "id='c1'"),
            (chat("c2"), "alice", "id='c2'"),
            (csi_step("active"), "bob", "<active"),
        ],
    )


def overflow(version: str) -> Timeline:
    rec = recording(version, "csi-buffer-overflow")
    chats = [(chat(f"c{n}"), "alice", f"id='c{n}'") for n in range(11, 16)]
    return recorded_timeline(
        rec,
        [
            (csi_step("inactive"), "bob", "<inactive"),
            *chats,
            (csi_step("active"), "bob", "<active"),
        ],
    )


def inactive_twice(version: str) -> Timeline:
    rec = recording(version, "csi-inactive-twice")
    return recorded_timeline(
        rec,
        [
            (csi_step("inactive"), "bob", "<inactive"),
            (chat("c21"), "alice", "id='c21'"),
            (chat("c22"), "alice", "id='c22'"),
            (csi_step("inactive"), "bob", "<inactive"),
            (chat("c23"), "alice", "id='c23'"),
            (csi_step("active"), "bob", "<active"),
        ],
    )


TIMELINES = [buffer_and_flush, overflow, inactive_twice]


# -- holding, flushing, overflow, second <inactive/> -----------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("observe", TIMELINES, ids=lambda f: f.__name__)
def test_csi_timeline_recording_passes_both_profiles(version: str, observe: Any) -> None:
    seen = observe(version)

    assert judge.judge_timeline(want(version), seen) == []
    assert judge.judge_timeline(want(other(version)), seen) == []


def test_recorded_buffer_holds_presence_and_chats_until_active() -> None:
    seen = buffer_and_flush("6.1.0")

    fates = judge.plan(want("6.1.0"), seen.steps)

    assert [fates[i].step for i in (1, 2, 3)] == [4, 4, 4]
    assert [e.get("id") for e in seen.after[4] if local_name(e) == "message"] == ["c1", "c2"]
    assert all(not seen.after[i] for i in range(4))


WRONG_FOR_FLUSH_RECORDING = [
    ("hold_chat", "flushes"),
    ("hold_chat", "delivered"),
    ("hold_presence", "delivered"),
    ("hold_presence", "not_routed"),
    ("held_delay_from", "user"),
    ("buffer_max", 2),
]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("key", "claim"), WRONG_FOR_FLUSH_RECORDING)
def test_flush_recording_fails_a_claim_it_contradicts(version: str, key: str, claim: Any) -> None:
    seen = buffer_and_flush(version)

    problems = judge.judge_timeline(want(version, **{key: claim}), seen)

    assert problems
    assert f"{key} = " in problems[0]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("key", "claim"), [("buffer_max", 4), ("buffer_max", 2), ("stays_inactive_after_flush", False)]
)
def test_overflow_recording_fails_a_claim_it_contradicts(
    version: str, key: str, claim: Any
) -> None:
    seen = overflow(version)

    problems = judge.judge_timeline(want(version, **{key: claim}), seen)

    assert problems
    assert any(f"{key} = " in p for p in problems)


@pytest.mark.parametrize("version", VERSIONS)
def test_inactive_twice_recording_fails_a_flush_on_second_inactive(version: str) -> None:
    seen = inactive_twice(version)

    problems = judge.judge_timeline(want(version, second_inactive="flushes"), seen)

    assert problems
    assert all("second_inactive = 'flushes'" in p for p in problems)


def test_no_presence_profile_holds_chats_like_610() -> None:
    no_presence = CsiExpect.of(load_profile("mongooseim-6.1.0-no-presence"))
    seen = inactive_twice("6.1.0")

    assert judge.judge_timeline(no_presence, seen) == []
    assert judge.judge_timeline(no_presence, buffer_and_flush("6.1.0")) != []


# -- stream features ---------------------------------------------------------------------


def features(rec: recordings.Recording, client: str, contains: str) -> ET.Element:
    line = rec.lines[rec.find("S", client, contains)]
    found = [e for e in line.elements if local_name(e) == "features"]
    assert found, f"{rec.path.name}: no <stream:features> in line {line.index}"
    return found[0]


def pre_auth_features(version: str) -> ET.Element:
    return features(recording(version, "unauthenticated-iq"), "anon", "<mechanisms")


def post_auth_features(version: str) -> ET.Element:
    return features(recording(version, "bind-without-session-iq"), "alice", "<bind")


@pytest.mark.parametrize("version", VERSIONS)
def test_csi_feature_recordings_pass_both_profiles(version: str) -> None:
    pre, post = pre_auth_features(version), post_auth_features(version)

    for profile_version in (version, other(version)):
        assert judge.judge_feature(want(profile_version), pre, "pre_auth") == []
        assert judge.judge_feature(want(profile_version), post, "post_auth") == []


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("when", ["pre_auth", "post_auth"])
def test_csi_feature_recording_fails_a_profile_without_csi(version: str, when: str) -> None:
    offered = pre_auth_features(version) if when == "pre_auth" else post_auth_features(version)

    problems = judge.judge_feature(want(version, **{f"advertised_{when}": False}), offered, when)

    stage = when.replace("_", "-")
    assert len(problems) == 1
    assert problems[0].startswith(f"advertised_{when} = false: the {stage} features offer CSI: ")


def recorded_post_auth_note(version: str) -> ET.Element:
    """sm-module-disabled.txt keeps the post-auth features in a note line."""
    rec = recording(version, "sm-module-disabled")
    note = next(
        line
        for line in rec.lines
        if line.direction == "#" and f"{line.client} {line.text}".startswith("post-auth features:")
    )
    text = recordings.HEADER.sub("", note.text.split(":", 1)[1]).strip()
    return ET.fromstring(recordings.WRAP.format(text))[0]


@pytest.mark.parametrize("version", VERSIONS)
def test_no_sm_profile_passes_the_recorded_features_without_sm(version: str) -> None:
    no_sm = CsiExpect.of(load_profile(f"mongooseim-{version}-no-sm"))
    without_sm = recorded_post_auth_note(version)

    assert judge.judge_sm_ack(no_sm, judge.AckSeen(without_sm, [], None)) == []
    assert judge.judge_feature(no_sm, without_sm, "post_auth") == []
    problems = judge.judge_sm_ack(no_sm, judge.AckSeen(post_auth_features(version), [], None))
    assert problems
    assert "sm_ack_while_inactive = 'no_sm'" in problems[0]


# -- unknown CSI element -----------------------------------------------------------------


def unknown_element(version: str) -> judge.UnknownSeen:
    rec = recording(version, "csi-invalid-element")
    sent = rec.find("C", "bob", "<invalid xmlns='urn:xmpp:csi:0'/>")
    probe = rec.find("C", "bob", "id='alive1'", sent)
    alive = any(e.get("id") == "alive1" for e in rec.received("bob", probe))
    closed = "; ".join(line.event for line in rec.events("bob", sent))
    return judge.UnknownSeen(BOB, rec.received("bob", sent, probe), alive, closed)


@pytest.mark.parametrize("version", VERSIONS)
def test_unknown_csi_element_is_ignored_by_600_and_answered_by_610(version: str) -> None:
    seen = unknown_element(version)

    own = judge.judge_unknown_element(want(version), seen)
    cross = judge.judge_unknown_element(want(other(version)), seen)

    assert own == []
    assert len(cross) == 1
    assert cross[0].startswith(f"unknown_element = {want(other(version)).unknown_element!r}")


def test_610_error_reply_is_checked_attribute_by_attribute() -> None:
    seen = unknown_element("6.1.0")
    reply = seen.answer[0]
    reply.set("to", BOB)

    problems = judge.judge_unknown_element(want("6.1.0"), seen)

    assert problems
    assert "bad-request" in problems[0]


def test_unknown_element_check_needs_a_stream_that_took_active() -> None:
    seen = replace(unknown_element("6.0.0"), accepted_active=False, alive=False, closed="gone")

    problems = judge.judge_unknown_element(want("6.0.0"), seen)

    assert problems == [
        "unknown_element = 'ignored': the stream did not take <active xmlns='urn:xmpp:csi:0'/> "
        "before the unknown element, so the unknown element was not tried (closed: gone)"
    ]


# -- the model on its own ----------------------------------------------------------------


CAROL = "carol@localhost/c"


def reference_like(**claims: Any) -> CsiExpect:
    """A MongooseIM profile turned into a reference server's by a few claims."""
    return want("6.1.0", **claims)


def kind_timeline(kind: str) -> list[Step]:
    return [
        csi_step("inactive"),
        stanza_step("presence", "carol-p", CAROL),
        stanza_step("presence", "alice-p", ALICE),
        stanza_step(kind, f"alice-{kind}", ALICE),
        csi_step("active"),
    ]


def test_model_flushes_everything_held_before_a_flushing_kind() -> None:
    fates = judge.plan(reference_like(hold_chat="flushes"), kind_timeline("chat"))

    assert judge.arrivals_at(fates, 3) == [1, 2, 3]
    assert judge.arrivals_at(fates, 4) == []


def test_model_flushes_only_the_same_senders_stanzas() -> None:
    fates = judge.plan(reference_like(hold_chat="flushes_sender"), kind_timeline("chat"))

    assert judge.arrivals_at(fates, 3) == [2, 3]
    assert judge.arrivals_at(fates, 4) == [1]


def test_model_keeps_only_the_newest_of_a_latest_only_kind() -> None:
    fates = judge.plan(reference_like(held_latest_only=("presence",)), kind_timeline("presence"))

    assert fates[2].step is None
    assert "held_latest_only" in fates[2].keys
    assert judge.arrivals_at(fates, 4) == [1, 3]


def test_model_names_the_kind_that_left_other_senders_stanzas_held() -> None:
    fates = judge.plan(reference_like(hold_chat="flushes_sender"), kind_timeline("chat"))

    assert fates[1].keys == ["hold_presence", "hold_chat"]


def test_model_names_latest_only_when_an_older_duplicate_is_kept() -> None:
    fates = judge.plan(want("6.1.0"), kind_timeline("presence"))

    assert "held_latest_only" in fates[2].keys
    assert "held_latest_only" not in fates[1].keys


def test_model_holds_a_stanza_after_an_ack_request() -> None:
    steps = [csi_step("inactive"), judge.ack_request_step(), chat("c1"), csi_step("active")]

    fates = judge.plan(want("6.0.0"), steps)

    assert judge.arrivals_at(fates, 3) == [2]


def test_timeline_judge_reports_order_with_the_keys_involved() -> None:
    seen = buffer_and_flush("6.0.0")
    seen.after[4].reverse()

    problems = judge.judge_timeline(want("6.0.0"), seen)

    assert problems == [
        "held_latest_only = [], hold_chat = 'held', hold_presence = 'held': expected right "
        "after step 5 <active/> the order ['away', 'c1', 'c2'], got ['c2', 'c1', 'away']"
    ]


def test_sm_judge_needs_an_ack_right_after_the_request() -> None:
    a = ET.Element(f"{{{judge.SM_NS}}}a", {"h": "0"})
    enabled = [ET.Element(f"{{{judge.SM_NS}}}enabled")]
    steps = [csi_step("inactive"), judge.ack_request_step(), chat("c1"), csi_step("active")]
    delivered = ET.fromstring(
        f"<message xmlns='{CLIENT_NS}' from='{ALICE}' to='{BOB}' type='chat' id='c1'/>"
    )
    answered = Timeline(BOB, steps, [[], [a], [], [delivered]])
    silent = Timeline(BOB, steps, [[], [], [], [delivered]])

    assert judge.judge_sm_ack(want("6.1.0"), judge.AckSeen(None, enabled, answered)) == []
    problems = judge.judge_sm_ack(want("6.1.0"), judge.AckSeen(None, enabled, silent))
    assert problems == [
        "sm_ack_while_inactive = 'answered': expected <a xmlns='urn:xmpp:sm:3'/> right after "
        "step 2 <r/> while inactive, got nothing"
    ]


def test_every_target_profile_outside_the_cluster_set_has_a_valid_csi_table() -> None:
    targets = [t for t in load_catalog().values() if "cluster" not in t.sets]

    expectations = {t.profile.name: CsiExpect.of(t.profile) for t in targets}

    assert {"mongooseim-6.0.0", "mongooseim-6.1.0", "prosody", "ejabberd"} <= set(expectations)
