"""Summarises bench/stability.sh: flaky tests across the runs and leftovers after them."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path


def outcomes(folder: Path, runs: int) -> dict[str, list[str]]:
    """Per test id, its outcome in each run that produced a JUnit file."""
    seen: dict[str, list[str]] = defaultdict(list)
    for i in range(1, runs + 1):
        path = folder / f"run-{i}.xml"
        if not path.exists():
            continue
        for case in ET.parse(path).getroot().iter("testcase"):
            test = f"{case.get('classname')}::{case.get('name')}"
            if case.find("failure") is not None or case.find("error") is not None:
                seen[test].append("failed")
            elif case.find("skipped") is not None:
                seen[test].append("skipped")
            else:
                seen[test].append("passed")
    return seen


def main() -> None:
    folder, runs = Path(sys.argv[1]), int(sys.argv[2])
    before = set(sys.argv[3].split())
    after = set(sys.argv[4].split())
    seen = outcomes(folder, runs)
    flaky = {t: o for t, o in seen.items() if "passed" in o and "failed" in o}
    always_failed = {t for t, o in seen.items() if set(o) == {"failed"}}
    completed = sum((folder / f"run-{i}.xml").exists() for i in range(1, runs + 1))
    left = sorted(after - before)

    print(f"# Stability: {completed} of {runs} runs completed, {len(seen)} tests each\n")
    print(f"- flaky tests (passed and failed across runs): {len(flaky)}")
    for test, results in sorted(flaky.items()):
        print(f"  - {test}: failed {results.count('failed')} of {len(results)}")
    print(f"- tests that failed in every run: {len(always_failed)}")
    for test in sorted(always_failed):
        print(f"  - {test}")
    print(f"- compose projects left behind (containers, networks, volumes): {len(left)}")
    for name in left:
        print(f"  - {name}")


if __name__ == "__main__":
    main()
