"""The MongooseIM presence profiles, judged against transcripts of real 6.0.0 and 6.1.0 servers.

Each recorded behaviour must pass the profile of the version it was recorded on; where
the versions differ it must fail the other version's profile, naming the profile key.
"""

from __future__ import annotations

import pytest

from harness.judges import Seen
from harness.judges import presence as judge
from harness.judges.presence import PresenceExpect
from harness.profiles import load_profile
from tests.recorded import VERSIONS, other, profile, recording, seen_between

ALICE_A1, BOB_B1 = "alice@localhost/a1", "bob@localhost/b1"


def want(version: str) -> PresenceExpect:
    return PresenceExpect.of(profile(version))


def initial_presence(version: str) -> Seen:
    rec = recording(version, "presence-initial-self-echo-broadcast-probe")
    act = rec.find("C", "alice", "<presence/>")
    return seen_between(rec, {"sender": ("alice", ALICE_A1), "contact": ("bob", BOB_B1)}, act)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    "check", [judge.judge_self_echo, judge.judge_broadcast, judge.judge_probe_answer]
)
def test_initial_presence_recording_passes_both_profiles(version: str, check: object) -> None:
    seen = initial_presence(version)

    assert callable(check)
    assert check(want(version), seen) == []
    assert check(want(other(version)), seen) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_probe_answer_delay_from_the_contact_is_required(version: str) -> None:
    seen = initial_presence(version)
    claimed = PresenceExpect(**{**want(version).__dict__, "probe_answer_delay_from": "domain"})

    problems = judge.judge_probe_answer(claimed, seen)

    assert problems
    assert "probe_answer_delay_from = 'domain'" in problems[0]


def unavailable(version: str, name: str, act_text: str, sender: str) -> Seen:
    rec = recording(version, name)
    act = rec.find("C", "alice", act_text)
    return seen_between(rec, {"sender": ("alice", sender), "contact": ("bob", BOB_B1)}, act)


@pytest.mark.parametrize(
    ("how", "name", "act_text", "sender"),
    [
        ("close", "presence-unavailable-clean-close", "</stream:stream>", ALICE_A1),
        ("drop", "presence-unavailable-tcp-drop", "[TCP close", "alice@localhost/a2"),
    ],
)
@pytest.mark.parametrize("version", VERSIONS)
def test_unavailable_status_differs_between_versions(
    version: str, how: str, name: str, act_text: str, sender: str
) -> None:
    seen = unavailable(version, name, act_text, sender)

    own = judge.judge_unavailable(want(version), seen, how)
    cross = judge.judge_unavailable(want(other(version)), seen, how)

    assert own == []
    assert len(cross) == 1
    assert f"unavailable_status_on_{how}" in cross[0]


def directed_before_initial(version: str) -> Seen:
    rec = recording(version, "presence-directed-before-initial")
    act = rec.find("C", "alice", "<presence to='bob@localhost/b2'>")
    end = rec.find("C", "bob", "<presence/>", act)
    roles = {"sender": ("alice", "alice@localhost/a3"), "contact": ("bob", "bob@localhost/b2")}
    return seen_between(rec, roles, act, end)


@pytest.mark.parametrize("version", VERSIONS)
def test_presence_before_initial_is_delivered_by_600_and_dropped_by_610(version: str) -> None:
    seen = directed_before_initial(version)

    own = judge.judge_presence_before_initial(want(version), seen)
    cross = judge.judge_presence_before_initial(want(other(version)), seen)

    assert own == []
    assert len(cross) == 1
    assert "presence_before_initial" in cross[0]


def bare_message(version: str) -> Seen:
    rec = recording(version, "message-bare-jid-before-presence")
    act = rec.find("C", "alice", "<message to='bob@localhost'")
    end = rec.find("C", "bob", "<presence/>", act)
    roles = {"sender": ("alice", "alice@localhost/a4"), "contact": ("bob", "bob@localhost/b3")}
    return seen_between(rec, roles, act, end)


@pytest.mark.parametrize("version", VERSIONS)
def test_bare_jid_chat_is_bounced_by_600_and_delivered_by_610(version: str) -> None:
    seen = bare_message(version)

    own = judge.judge_bare_message_before_presence(want(version), seen, "m-bare-1")
    cross = judge.judge_bare_message_before_presence(want(other(version)), seen, "m-bare-1")

    assert own == []
    assert cross
    assert all("bare_message_before_presence" in p for p in cross)


def without_presence_module() -> tuple[Seen, int]:
    rec = recording("6.1.0", "no-mod_presence-presence-not-routed")
    start = rec.find("C", "alice", "<presence/>")
    roles = {
        "sender": ("alice", "alice@localhost/a-np"),
        "contact": ("bob", "bob@localhost/np"),
        "stranger": ("bob", "bob@localhost/np"),
    }
    return seen_between(rec, roles, start), start


NOT_ROUTED_CHECKS = [
    judge.judge_self_echo,
    judge.judge_broadcast,
    judge.judge_directed,
    judge.judge_subscription_request,
]


@pytest.mark.parametrize("check", NOT_ROUTED_CHECKS)
def test_no_presence_recording_passes_only_the_no_presence_profile(check: object) -> None:
    seen, _ = without_presence_module()
    no_presence = PresenceExpect.of(load_profile("mongooseim-6.1.0-no-presence"))

    assert callable(check)
    assert check(no_presence, seen) == []
    problems = check(want("6.1.0"), seen)
    assert problems
    assert "= true: expected" in problems[0]


def test_no_presence_recording_still_delivers_chats() -> None:
    seen, _ = without_presence_module()

    assert judge.judge_messages_flow(seen, ["np1", "np2"]) == []
    assert judge.judge_messages_flow(seen, ["np1", "np2", "never-sent"]) != []


def test_unavailable_judge_reports_missing_presence_with_what_arrived() -> None:
    seen = Seen({"sender": ALICE_A1}, {"contact": []})

    problems = judge.judge_unavailable(want("6.1.0"), seen, "close")

    assert problems == [
        "routed = true: expected unavailable presence from alice@localhost/a1 after the close; "
        "received nothing"
    ]
