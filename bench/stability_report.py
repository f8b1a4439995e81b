"""Summarises bench/stability.sh: runs, flaky tests, and what the runs left behind.

.venv/bin/python bench/stability_report.py reports/bench/stability RUNS
"""

from __future__ import annotations

import statistics
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

# pytest's exit status for a run stopped by the user (SIGINT).
INTERRUPTED = "2"


def outcome_of(case: ET.Element) -> str:
    if case.find("failure") is not None or case.find("error") is not None:
        return "failed"
    if case.find("skipped") is not None:
        return "skipped"
    return "passed"


def outcomes(folder: Path, runs: int) -> dict[str, list[str]]:
    """Per test id, its outcome in each run that produced a JUnit file."""
    seen: dict[str, list[str]] = defaultdict(list)
    for i in range(1, runs + 1):
        path = folder / f"run-{i}.xml"
        if not path.exists():
            continue
        for case in ET.parse(path).getroot().iter("testcase"):
            seen[f"{case.get('classname')}::{case.get('name')}"].append(outcome_of(case))
    return seen


def rows(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [line.split("\t") for line in path.read_text().splitlines() if line.strip()]


def lines_of(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line for line in path.read_text().splitlines() if line.strip()]


def main() -> None:
    folder, runs = Path(sys.argv[1]), int(sys.argv[2])
    seen = outcomes(folder, runs)
    flaky = {t: o for t, o in seen.items() if "passed" in o and "failed" in o}
    always_failed = sorted(t for t, o in seen.items() if set(o) == {"failed"})
    done = rows(folder / "runs.tsv")
    seconds = [int(r[2]) for r in done]
    completed = sum((folder / f"run-{i}.xml").exists() for i in range(1, runs + 1))
    left_runs = lines_of(folder / "leftovers-after-runs.txt")
    left_interrupt = lines_of(folder / "leftovers-after-interrupt.txt")

    print(f"# Stability: {completed} of {runs} runs completed, {len(seen)} tests each\n")
    if seconds:
        print(
            f"- run time: median {statistics.median(seconds):.0f} s, min {min(seconds)} s, "
            f"max {max(seconds)} s; exit statuses: {sorted({r[1] for r in done})}"
        )
    print(f"- flaky tests (passed in one run, failed in another): {len(flaky)}")
    for test, results in sorted(flaky.items()):
        print(f"  - {test}: failed {results.count('failed')} of {len(results)}")
    print(f"- tests that failed in every run: {len(always_failed)}")
    for test in always_failed:
        print(f"  - {test}")
    print(f"- left behind after the runs (containers, networks, volumes): {len(left_runs)}")
    for name in left_runs:
        print(f"  - {name}")
    for after, status, took in rows(folder / "interrupted.tsv"):
        print(
            f"- run interrupted with SIGINT after {after} s: exit {status}, ended {took} s "
            f"after the signal; left behind: {len(left_interrupt)}"
        )
        if status != INTERRUPTED:
            print(f"  - pytest did not stop on the signal: exit {status}, not {INTERRUPTED}")
    for name in left_interrupt:
        print(f"  - {name}")


if __name__ == "__main__":
    main()
