"""The time-to-verdict bench reads the slowest test body from pytest's durations table; the
stability bench's summary says when its interrupted run was not stopped by the signal."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "time_to_verdict", ROOT / "bench" / "time_to_verdict.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


OUTPUT = """\
============================= slowest 3 durations ==============================
8.02s setup    suites/test_metrics.py::test_logins_raise_session_counters[prosody]
6.85s call     suites/test_csi.py::test_buffer_overflow_flushes_whole_buffer[prosody]
6.27s call     suites/test_stream_management.py::test_held_session_expires[prosody]
147 passed, 41 skipped in 33.29s
"""


def test_longest_call_is_the_slowest_test_body_not_a_fixture_setup() -> None:
    longest = bench().longest_call(OUTPUT)

    assert longest == (
        6.85,
        "suites/test_csi.py::test_buffer_overflow_flushes_whole_buffer[prosody]",
    )


def test_a_batched_check_longer_than_every_test_body_is_the_longest() -> None:
    checks = "7.12s check suites/test_stream_management.py::test_held_session[prosody]\n"

    longest = bench().longest_call(OUTPUT + checks)

    assert longest == (7.12, "suites/test_stream_management.py::test_held_session[prosody]")


def test_output_without_a_durations_table_has_no_longest_call() -> None:
    assert bench().longest_call("147 passed in 33.29s\n") is None


def test_check_floor_comes_from_the_run_with_the_fewest_workers() -> None:
    totals = {
        "8": {"seconds": 33.0, "longest_call": {"seconds": 7.5, "test": "b"}},
        "1": {"seconds": 160.0, "longest_call": {"seconds": 6.8, "test": "a"}},
    }

    assert bench().longest_check(totals) == {"seconds": 6.8, "test": "a"}


def test_runs_without_durations_give_a_clear_error() -> None:
    with pytest.raises(SystemExit, match="no run printed a --durations table"):
        bench().longest_check({"1": {"seconds": 160.0}})


def stability_summary(folder: Path, interrupted: str) -> str:
    (folder / "runs.tsv").write_text("1\t0\t30\n")
    (folder / "interrupted.tsv").write_text(interrupted)
    report = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "stability_report.py"), str(folder), "1"],
        capture_output=True,
        text=True,
        check=True,
    )
    return report.stdout


def test_stability_report_says_when_sigint_did_not_stop_the_run(tmp_path: Path) -> None:
    summary = stability_summary(tmp_path, "15\t0\t18\n")

    assert "did not stop on the signal: exit 0, not 2" in summary


def test_stability_report_of_a_run_stopped_by_sigint_has_no_warning(tmp_path: Path) -> None:
    summary = stability_summary(tmp_path, "15\t2\t9\n")

    assert "exit 2, ended 9 s after the signal" in summary
    assert "did not stop" not in summary
