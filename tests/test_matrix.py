"""The upgrade matrix (harness/matrix.py), built from synthetic outcomes and profiles, and
the completeness of profiles/differences.toml against the real MongooseIM profiles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness import matrix
from harness.behaviours import Behaviour, Catalog, Link
from harness.matrix import Cell, Difference, Matrix, MatrixError, Note, Outcome
from harness.profiles import Profile, load_profile

DOCUMENTED = Note(True, "migration guide, Listener configuration", "zlib is gone")
UNDOCUMENTED = Note(False, "not found in the migration guide", "status text added")


def profile(name: str, **tables: dict[str, Any]) -> Profile:
    return Profile(name=name, path=Path(f"{name}.toml"), data={"server": name, **tables})


def behaviour(key: str, *keys: str) -> Behaviour:
    return Behaviour(
        key=key,
        epic="RFC 6121",
        feature="Presence",
        story=f"story of {key.split('::')[1]}",
        severity="normal",
        spec=Link("RFC 6121 4.5.2", "https://www.rfc-editor.org/rfc/rfc6121#section-4.5.2"),
        docs=None,
        profile_keys=keys,
    )


def outcome(key: str, target: str, result: str, stack: str = "raw", **extra: str) -> Outcome:
    return Outcome(
        nodeid=f"suites/{key}[{target}-{stack}]",
        key=key,
        outcome=result,
        target=target,
        stack=stack,
        **extra,
    )


CLOSE = "test_presence::test_clean_close_sends_unavailable_to_contact"
ECHO = "test_presence::test_initial_presence_is_echoed_to_sender"
ZLIB = "test_compression::test_compression_offer_before_auth_follows_profile"


@pytest.fixture
def catalog() -> Catalog:
    return Catalog(
        areas={},
        behaviours={
            ECHO: behaviour(ECHO, "presence.self_echo"),
            CLOSE: behaviour(CLOSE, "presence.unavailable_status_on_close"),
            ZLIB: behaviour(ZLIB, "compression.offered"),
        },
    )


@pytest.fixture
def differences() -> list[Difference]:
    old = profile(
        "old",
        presence={"self_echo": True, "unavailable_status_on_close": ""},
        compression={"offered": True},
    )
    new = profile(
        "new",
        presence={"self_echo": True, "unavailable_status_on_close": "Shutdown"},
        compression={"offered": False},
    )
    notes = {
        "presence.unavailable_status_on_close": UNDOCUMENTED,
        "compression.offered": DOCUMENTED,
    }
    return matrix.compare_profiles(old, new, notes)


def test_cell_without_outcomes_says_not_run() -> None:
    assert Cell().word == "not run"


def test_cell_fails_when_one_stack_failed_and_counts_the_failures() -> None:
    cell = Cell(
        (
            outcome(CLOSE, "prosody", "passed", "slixmpp"),
            outcome(
                CLOSE, "prosody", "failed", "aioxmpp", category="Behaviour differs from profile"
            ),
        )
    )

    assert cell.word == "fail"
    assert cell.text == "fail 1/2 (Behaviour differs from profile)"


def test_cell_of_skipped_and_expected_failures_says_so() -> None:
    skipped = Cell((outcome(CLOSE, "prosody", "skipped"),))
    known = Cell((outcome(CLOSE, "prosody", "xfailed"), outcome(CLOSE, "prosody", "passed")))

    assert (skipped.word, known.word) == ("skip", "xfail")


def test_unexpected_pass_of_a_known_failure_counts_as_fail() -> None:
    assert Cell((outcome(CLOSE, "prosody", "xpassed"),)).word == "fail"


def test_compare_profiles_finds_changed_values_and_keys_of_one_profile_only() -> None:
    old = profile("old", presence={"a": 1, "same": "x", "gone": True})
    new = profile("new", presence={"a": 2, "same": "x"}, csi={"added": "y"})

    found = {d.key: (d.old, d.new) for d in matrix.compare_profiles(old, new, {})}

    assert found == {
        "presence.a": (1, 2),
        "presence.gone": (True, matrix.ABSENT),
        "csi.added": (matrix.ABSENT, "y"),
    }


def test_difference_without_note_is_not_yet_assessed() -> None:
    assert Difference("presence.x", 1, 2, None).verdict == "not yet assessed"


def test_list_change_shows_what_was_gained_and_lost_as_metric_names() -> None:
    old = [["global", "data", "compressed_size"], ["global", "total"]]
    new = [["global", "total"], ["global", "data", "c2s", "tcp"]]

    shown = matrix.describe_shift(old, new)

    assert shown == "+ global.data.c2s.tcp; - global.data.compressed_size"


def test_long_list_change_names_the_first_items_and_counts_the_rest() -> None:
    shown = matrix.describe_shift([], [f"m{i}" for i in range(7)])

    assert shown == "+ 'm0'; + 'm1'; + 'm2'; + 'm3'; + 3 more"


def test_table_change_shows_each_changed_entry() -> None:
    shown = matrix.describe_shift({"origin": "*", "same": 1}, {"same": 1})

    assert shown == "origin: '*' -> '(absent)'"


def test_matrix_has_one_column_per_target_that_ran_mongooseim_first_then_by_name(
    catalog: Catalog, differences: list[Difference]
) -> None:
    runs = [
        outcome(ECHO, "prosody", "passed"),
        outcome(ECHO, "mongooseim-6.1.0", "passed"),
        outcome(CLOSE, "ejabberd", "passed"),
        outcome(CLOSE, "mongooseim-6.0.0", "passed"),
    ]

    built = matrix.build_matrix(catalog, runs, differences)

    assert built.targets == ("mongooseim-6.0.0", "mongooseim-6.1.0", "ejabberd", "prosody")


def test_every_catalog_behaviour_has_a_row_and_unrun_cells_say_not_run(
    catalog: Catalog, differences: list[Difference]
) -> None:
    built = matrix.build_matrix(catalog, [outcome(ECHO, "prosody", "passed")], differences)

    cells = {row.behaviour.key: row.cells["prosody"].word for row in built.rows}

    assert cells == {ECHO: "pass", CLOSE: "not run", ZLIB: "not run"}


def test_test_missing_from_the_catalog_still_gets_a_row(
    catalog: Catalog, differences: list[Difference]
) -> None:
    stray = "test_csi::test_something_new"

    built = matrix.build_matrix(catalog, [outcome(stray, "prosody", "failed")], differences)

    row = next(r for r in built.rows if r.behaviour.key == stray)
    assert (row.behaviour.story, row.cells["prosody"].word) == ("Something new", "fail")


def test_row_says_whether_its_profile_keys_changed_and_whether_that_is_documented(
    catalog: Catalog, differences: list[Difference]
) -> None:
    built = matrix.build_matrix(catalog, [], differences)

    upgrade = {row.behaviour.key: row.upgrade for row in built.rows}

    assert upgrade == {ECHO: "unchanged", CLOSE: "undocumented", ZLIB: "documented"}


def test_row_names_profile_keys_that_no_profile_has(catalog: Catalog) -> None:
    built = matrix.build_matrix(catalog, [], [], known_keys={"presence.self_echo"})

    missing = {row.behaviour.key: row.missing_keys for row in built.rows}

    assert missing[CLOSE] == ("presence.unavailable_status_on_close",)
    assert missing[ECHO] == ()


def test_recorded_summary_is_shown_with_its_target(
    catalog: Catalog, differences: list[Difference]
) -> None:
    runs = [outcome(ECHO, "mixed", "passed", summary="12 stanzas sent across versions, 0 arrived")]

    built = matrix.build_matrix(catalog, runs, differences)

    text = matrix.render_markdown(built) + matrix.render_html(built)
    assert text.count("mixed: 12 stanzas sent across versions, 0 arrived") == 2


def test_markdown_lists_undocumented_changes_first_and_marks_them(
    catalog: Catalog, differences: list[Difference]
) -> None:
    built = matrix.build_matrix(catalog, [outcome(CLOSE, "prosody", "passed")], differences)

    text = matrix.render_markdown(built)

    undocumented = text.index("| **undocumented** | `presence.unavailable_status_on_close`")
    documented = text.index("| documented | `compression.offered`")
    assert undocumented < documented
    assert "**undocumented: presence.unavailable_status_on_close**" in text
    assert "2 changes on upgrade" in text


def test_html_escapes_text_and_colours_cells_by_outcome(
    catalog: Catalog, differences: list[Difference]
) -> None:
    runs = [
        outcome(ECHO, "prosody", "passed"),
        outcome(CLOSE, "prosody", "failed", message="<presence/> arrived", category="Timeout"),
    ]

    page = matrix.render_html(matrix.build_matrix(catalog, runs, differences))

    assert "<td class='pass'" in page
    assert "<td class='fail' title='raw: failed: &lt;presence/&gt; arrived'>" in page
    assert "<td class='notrun'" in page
    assert "<presence/> arrived" not in page


def test_upgrade_time_entry_compares_its_profile_with_the_before_value() -> None:
    note = Note(True, "guide", "chats are lost", "mongooseim-mixed-cluster", "delivered")
    during = load_profile("mongooseim-mixed-cluster").data["cluster"]["chat_old_to_new"]

    found = matrix.upgrade_time_differences({"cluster.chat_old_to_new": note})

    assert [(d.old, d.new, d.context) for d in found] == [
        ("delivered", during, "in mongooseim-mixed-cluster")
    ]


def test_differences_file_covers_every_key_that_differs_between_the_mongooseim_profiles() -> None:
    old, new = load_profile(matrix.OLD_PROFILE), load_profile(matrix.NEW_PROFILE)

    found = matrix.compare_profiles(old, new, matrix.load_notes())

    missing = [f"{d.key}: {d.shift}" for d in found if d.note is None]
    assert not missing, "add these keys to profiles/differences.toml:\n" + "\n".join(missing)


def test_differences_file_names_only_keys_that_differ() -> None:
    notes = matrix.load_notes()
    old, new = load_profile(matrix.OLD_PROFILE), load_profile(matrix.NEW_PROFILE)
    differing = {d.key for d in matrix.compare_profiles(old, new, notes)}
    differing |= {d.key for d in matrix.upgrade_time_differences(notes)}

    stale = sorted(key for key in notes if key not in differing)

    assert not stale, f"profiles/differences.toml names keys that do not differ: {stale}"


def test_differences_file_without_documented_flag_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "differences.toml"
    broken.write_text('["presence.x"]\nsource = "guide"\n')

    with pytest.raises(MatrixError, match=r'\["presence.x"\] needs `documented'):
        matrix.load_notes(broken)


def test_outcomes_survive_a_round_trip_through_their_file(tmp_path: Path) -> None:
    runs = [outcome(ECHO, "prosody", "failed", category="Harness error", message="boom")]

    matrix.save_outcomes(runs, tmp_path / "outcomes.json")

    assert matrix.read_outcomes(tmp_path / "outcomes.json") == runs


def test_malformed_outcomes_file_gets_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "outcomes.json"
    broken.write_text(json.dumps({"outcomes": [{"nodeid": "x"}]}))

    with pytest.raises(MatrixError, match="is not an outcomes list"):
        matrix.read_outcomes(broken)


def test_merge_of_two_runs_writes_one_matrix_and_the_allure_attachments(tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    matrix.save_outcomes([outcome(ECHO, "mongooseim-6.1.0", "failed")], first)
    matrix.save_outcomes([outcome(ECHO, "prosody", "passed")], second)
    out, results = str(tmp_path / "out"), str(tmp_path / "results")

    status = matrix.main(
        ["--outcomes", str(first), str(second), "--out", out, "--allure-results", results]
    )

    text = (tmp_path / "out" / matrix.MARKDOWN_NAME).read_text()
    globals_file = json.loads((tmp_path / "results" / matrix.ALLURE_GLOBALS).read_text())
    assert status == 0
    assert "| mongooseim-6.1.0 | prosody |" in text
    assert [a["source"] for a in globals_file["attachments"]] == [
        matrix.ALLURE_HTML,
        matrix.ALLURE_MARKDOWN,
    ]
    assert (tmp_path / "results" / matrix.ALLURE_HTML).read_text().startswith("<!doctype html>")


def test_counts_add_up_the_outcomes_of_every_cell(
    catalog: Catalog, differences: list[Difference]
) -> None:
    runs = [outcome(ECHO, "prosody", "passed"), outcome(CLOSE, "prosody", "failed")]

    built: Matrix = matrix.build_matrix(catalog, runs, differences)

    assert built.counts() == {"passed": 1, "failed": 1}


def test_glance_groups_changes_by_area_with_unannounced_ones_first(
    catalog: Catalog, differences: list[Difference]
) -> None:
    built = matrix.build_matrix(catalog, [], differences)

    assert matrix.glance(built) == [
        ("presence", ["unavailable_status_on_close"], []),
        ("compression", [], ["offered"]),
    ]


def test_glance_lists_each_failing_behaviour_with_its_targets(
    catalog: Catalog, differences: list[Difference]
) -> None:
    runs = [
        outcome(CLOSE, "prosody", "failed"),
        outcome(CLOSE, "ejabberd", "passed"),
        outcome(ECHO, "ejabberd", "passed"),
    ]

    built = matrix.build_matrix(catalog, runs, differences)

    assert matrix.failing(built) == [(f"story of {CLOSE.split('::')[1]}", ["prosody"])]
    assert "Failing behaviours: 1" in matrix.render_html(built)
