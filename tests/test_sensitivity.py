"""The sensitivity runner reads JUnit results and scores them the way it says it does.

Synthetic JUnit XML, shaped like pytest's, stands for the two runs: the suites against the
faulty and reference targets, and the probes against the broken peer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import sensitivity
from harness.sensitivity import (
    BROKEN_PROBE,
    CORRECT_PROBE,
    PEER,
    Case,
    Fault,
    SensitivityError,
    catalog_faults,
    names_fault,
    peer_faults,
    read_junit,
    score,
    target_of,
)

TARGETS = ["prosody", "prosody-no-sm", "ejabberd", "ejabberd-no-zlib"]
NO_SM = Fault("prosody-no-sm", "target", "stream management disabled", ("available = true",))
NO_ZLIB = Fault("ejabberd-no-zlib", "target", "zlib not offered", ("offered_after_auth",))
DROPS = Fault("peer-drops", "peer", "drops on resume", ("missing ['u3']",))


def junit(tmp_path: Path, *cases: str) -> Path:
    path = tmp_path / "results.xml"
    path.write_text(
        "<?xml version='1.0' encoding='utf-8'?><testsuites><testsuite name='pytest'>"
        + "".join(cases)
        + "</testsuite></testsuites>"
    )
    return path


def passed(name: str) -> str:
    return f"<testcase classname='suites.test_x' name='{name}' time='0.1'/>"


def failed(name: str, message: str, text: str = "") -> str:
    return (
        f"<testcase classname='suites.test_x' name='{name}' time='0.1'>"
        f"<failure message='{message}'>{text}</failure></testcase>"
    )


def errored(name: str, message: str) -> str:
    return (
        f"<testcase classname='suites.test_x' name='{name}' time='0.1'>"
        f"<error message='{message}'>trace</error></testcase>"
    )


def skipped(name: str) -> str:
    return (
        f"<testcase classname='suites.test_x' name='{name}' time='0.1'>"
        "<skipped message='no table'/></testcase>"
    )


# Reading ---------------------------------------------------------------------------------------


def test_junit_cases_carry_outcome_parameters_and_message(tmp_path: Path) -> None:
    path = junit(
        tmp_path,
        passed("test_a[prosody]"),
        failed("test_b[prosody-no-sm-chat]", "Mismatch: available = true", "full report"),
        errored("test_c[ejabberd]", "failed on setup"),
        skipped("test_d"),
    )

    cases = read_junit(path)

    module = "suites.test_x"
    assert cases == [
        Case("test_a", "prosody", "passed", "", module),
        Case(
            "test_b",
            "prosody-no-sm-chat",
            "failed",
            "Mismatch: available = true\nfull report",
            module,
        ),
        Case("test_c", "ejabberd", "error", "failed on setup\ntrace", module),
        Case("test_d", "", "skipped", "no table", module),
    ]


def test_reference_results_of_an_earlier_run_count_only_the_suites() -> None:
    cases = [
        Case("test_sm", "prosody", "passed", "", "suites.test_stream_management"),
        Case("test_check_fails", "prosody", "passed", "", "tests.test_sm_checks_can_fail"),
    ]

    kept = sensitivity.suite_cases(cases)

    assert [c.module for c in kept] == ["suites.test_stream_management"]


def test_unreadable_junit_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.xml"
    path.write_text("<testsuites><testsuite>")

    with pytest.raises(SensitivityError) as failure:
        read_junit(path)

    assert "cannot read the JUnit results" in str(failure.value)
    assert str(path) in str(failure.value)


@pytest.mark.parametrize(
    ("params", "target"),
    [
        ("prosody", "prosody"),
        ("prosody-no-sm", "prosody-no-sm"),
        ("prosody-no-sm-chat", "prosody-no-sm"),
        ("prosody-slixmpp", "prosody"),
        ("shipped_config-ejabberd-no-zlib", "ejabberd-no-zlib"),
        ("unknown_module-ejabberd", "ejabberd"),
        ("mongooseim-6.1.0", None),
        ("", None),
    ],
)
def test_target_is_the_longest_target_name_among_the_parameters(
    params: str, target: str | None
) -> None:
    found = target_of(params, TARGETS)

    assert found == target


def test_fault_is_named_only_when_every_word_is_in_the_message() -> None:
    message = "- available = true: expected <enabled/>, got nothing"

    assert names_fault(message, ["available = true", "<enabled/>"])
    assert names_fault(message.upper(), ["available = true"])
    assert not names_fault(message, ["available = true", "resume_timeout"])
    assert not names_fault(message, [])


# Scoring ---------------------------------------------------------------------------------------


def test_fault_with_a_failed_test_is_caught_and_named_by_its_words() -> None:
    cases = [
        Case("test_sm", "prosody-no-sm", "failed", "- available = true: got nothing"),
        Case("test_sm", "prosody", "passed"),
    ]

    result = score([NO_SM], ["prosody"], cases, None)

    (verdict,) = result.verdicts
    assert verdict.caught
    assert verdict.named
    assert [c.name for c in verdict.naming] == ["test_sm[prosody-no-sm]"]
    assert result.false_alarms == []


def test_failure_without_the_words_is_caught_but_not_named() -> None:
    cases = [
        Case("test_sm", "prosody-no-sm", "failed", "timed out"),
        Case("t", "prosody", "passed"),
    ]

    result = score([NO_SM], ["prosody"], cases, None)

    assert (result.caught, result.named) == (1, 0)


def test_setup_errors_alone_do_not_catch_a_fault() -> None:
    cases = [
        Case("test_sm", "prosody-no-sm", "error", "target prosody-no-sm is not available"),
        Case("test_sm", "prosody", "passed"),
    ]

    result = score([NO_SM], ["prosody"], cases, None)

    assert result.caught == 0
    assert "1 setup errors" in sensitivity.failed_summary(result.verdicts[0])


def test_fault_whose_tests_all_passed_is_not_caught() -> None:
    cases = [Case("test_zlib", "ejabberd-no-zlib", "passed"), Case("t", "ejabberd", "passed")]

    result = score([NO_ZLIB], ["ejabberd"], cases, None)

    assert result.caught == 0
    assert not result.good_enough()
    assert result.line().startswith("sensitivity: 0/1 injected faults caught (0 %)")


def test_failures_on_correct_targets_and_the_correct_peer_are_false_alarms() -> None:
    servers = [
        Case("test_sm", "prosody-no-sm", "failed", "available = true"),
        Case("test_sm", "prosody", "failed", "flaky"),
        Case("test_zlib", "ejabberd", "error", "setup"),
    ]
    peer = [
        Case(BROKEN_PROBE, "peer-drops", "failed", "missing ['u3']"),
        Case(CORRECT_PROBE, "peer-drops", "failed", "the check is wrong"),
    ]

    result = score([NO_SM, DROPS], ["prosody", "ejabberd"], servers, peer)

    alarms = [(where, c.name) for where, c in result.false_alarms]
    assert alarms == [
        ("prosody", "test_sm[prosody]"),
        ("ejabberd", "test_zlib[ejabberd]"),
        (PEER, f"{CORRECT_PROBE}[peer-drops]"),
    ]
    assert not result.good_enough()


def test_peer_probes_are_sorted_to_their_faults() -> None:
    peer = [
        Case(BROKEN_PROBE, "peer-drops", "failed", "got ['u4']: missing ['u3']"),
        Case(CORRECT_PROBE, "peer-drops", "passed"),
    ]
    servers = [Case("t", "prosody", "passed")]

    result = score([DROPS], ["prosody"], servers, peer)

    assert (result.caught, result.named) == (1, 1)
    assert result.correct[PEER] == [Case(CORRECT_PROBE, "peer-drops", "passed")]


def test_peer_fault_without_a_probe_result_counts_as_not_caught() -> None:
    result = score([DROPS], ["prosody"], [Case("t", "prosody", "passed")], [])

    assert result.caught == 0


def test_correct_target_without_a_passed_test_proves_nothing() -> None:
    cases = [Case("test_sm", "prosody-no-sm", "failed", "available = true")]

    result = score([NO_SM], ["prosody"], cases, None)

    assert result.unchecked == ["prosody"]
    assert not result.good_enough()


def test_score_line_counts_caught_named_and_false_alarms() -> None:
    servers = [
        Case("test_sm", "prosody-no-sm", "failed", "available = true"),
        Case("test_zlib", "ejabberd-no-zlib", "failed", "something else"),
        Case("t", "prosody", "passed"),
        Case("t", "ejabberd", "passed"),
    ]
    peer = [
        Case(BROKEN_PROBE, "peer-drops", "passed"),
        Case(CORRECT_PROBE, "peer-drops", "passed"),
    ]

    result = score([NO_SM, NO_ZLIB, DROPS], ["prosody", "ejabberd"], servers, peer)

    assert result.line() == (
        "sensitivity: 2/3 injected faults caught (66 %), 1 named in the failure message, "
        "0 false alarms on 2 correct targets and the correct peer"
    )
    assert not result.good_enough()


def test_all_caught_without_false_alarms_is_good_enough() -> None:
    servers = [
        Case("test_sm", "prosody-no-sm", "failed", "available = true"),
        Case("t", "prosody", "passed"),
    ]

    result = score([NO_SM], ["prosody"], servers, None)

    assert result.good_enough()
    assert result.line() == (
        "sensitivity: 1/1 injected faults caught (100 %), 1 named in the failure message, "
        "0 false alarms on 1 correct targets"
    )


def test_markdown_lists_every_fault_and_the_score(tmp_path: Path) -> None:
    servers = [
        Case("test_sm", "prosody-no-sm", "failed", "- available = true: got nothing"),
        Case("test_zlib", "ejabberd-no-zlib", "passed"),
        Case("t", "prosody", "passed"),
        Case("t", "ejabberd", "passed"),
    ]
    result = score([NO_SM, NO_ZLIB], ["prosody", "ejabberd"], servers, None)

    text = sensitivity.markdown(result, {"servers": "exit 1 after 10 s"})

    assert "| stream management disabled | target `prosody-no-sm` | yes | yes | 1:" in text
    assert "| zlib not offered | target `ejabberd-no-zlib` | **no** | no | none |" in text
    assert "- prosody: 1 passed, 0 failed, 0 errors, 0 skipped" in text
    assert text.rstrip().endswith(result.line())


# The fault lists -------------------------------------------------------------------------------


def test_every_faulty_target_of_the_catalog_has_fault_words() -> None:
    faults, reference = catalog_faults()

    assert faults
    assert all(f.words and f.description for f in faults)
    assert {"prosody", "ejabberd"} <= set(reference)


def test_catalog_faulty_target_without_fault_words_is_refused(tmp_path: Path) -> None:
    catalog = tmp_path / "targets.toml"
    catalog.write_text(
        "[targets.x]\nsets = ['faulty']\nprofile = 'prosody'\nfault = 'off'\n"
        "admin = { kind = 'prosodyctl' }\nnodes = [{ service = 'x', ports = { c2s = 1 } }]\n"
    )

    with pytest.raises(SensitivityError) as failure:
        catalog_faults(catalog)

    assert "faulty target x has no fault_words" in str(failure.value)


def test_peer_faults_have_words_and_no_target_name() -> None:
    faults = peer_faults()
    targets, _ = catalog_faults()

    assert {f.name for f in faults}.isdisjoint({t.name for t in targets})
    assert all(f.words and f.description for f in faults)


# Runs --------------------------------------------------------------------------------------------


def test_run_that_ended_without_results_is_a_clear_error_with_its_log(tmp_path: Path) -> None:
    log_path = tmp_path / "servers.log"
    log_path.write_text("collected 0 items\nERROR: usage: --targets: 'x' names no target\n")
    run = sensitivity.Run("suites", ["pytest"], tmp_path / "none.xml", log_path, 10.0)
    run.exit_code = 4

    with pytest.raises(SensitivityError) as failure:
        run.cases()

    assert "suites ended with exit status 4 and no results" in str(failure.value)
    assert "names no target" in str(failure.value)


def test_run_with_failed_tests_is_read(tmp_path: Path) -> None:
    path = junit(tmp_path, failed("test_a[prosody-no-sm]", "available = true"))
    run = sensitivity.Run("suites", ["pytest"], path, tmp_path / "log", 10.0)
    run.exit_code = 1

    cases = run.cases()

    assert [c.outcome for c in cases] == ["failed"]
