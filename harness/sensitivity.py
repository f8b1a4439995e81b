"""Sensitivity: the suite fails on servers broken on purpose, names the fault, and passes
on the correct ones.

Two runs, side by side, as subprocesses:

- the suites against the `faulty` targets of targets.toml (a reference server started with
  one feature broken, or held to a profile it does not follow) and, in the same run, the
  `reference` targets, which must pass;
- tests/peer_faults.py: real checks of the suite against tests/broken_peer.py, once with
  an injected fault (tests/peer_faults.toml) and once without it.

A fault is caught when at least one test failed on it (a failure of the test itself: a
setup error, such as a server that did not start, catches nothing). It is named when one
failure message contains every word of the fault's `fault_words`. A failure or error on a
correct target, or on the peer without a fault, is a false alarm. The last line printed
is the score; reports/sensitivity.md gets the table. The exit status is 0 only when at
least 95 % of the faults were caught, nothing raised a false alarm and both runs ended.

    .venv/bin/python -m harness.sensitivity [--workers N]
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "targets.toml"
PEER_FAULTS = ROOT / "tests" / "peer_faults.toml"
PEER_PROBES = "tests/peer_faults.py"
PYTEST = str(ROOT / ".venv" / "bin" / "pytest")
# The share of injected faults the suite must catch.
REQUIRED = 0.95
# Probe names of tests/peer_faults.py: the check with the fault, and without it.
BROKEN_PROBE = "test_check_fails_on_the_peer_with_the_fault"
CORRECT_PROBE = "test_check_passes_on_the_peer_without_the_fault"
# Bounds of the two runs; the suites against ten targets take minutes on two cores.
SERVERS_TIMEOUT = 1800.0
PEER_TIMEOUT = 600.0
# How long a run may take to clean up after SIGINT before it is killed.
GRACE = 120.0
# Failing tests shown per fault in the table.
SHOWN = 4


class SensitivityError(RuntimeError):
    """A run could not be made or read; the message says which and why."""


@dataclass(frozen=True)
class Case:
    """One JUnit testcase: its test, outcome (passed, failed, error, skipped), message."""

    test: str
    params: str
    outcome: str
    message: str = ""
    module: str = ""  # the JUnit classname: suites.test_presence, tests.test_x, ...

    @property
    def name(self) -> str:
        return f"{self.test}[{self.params}]" if self.params else self.test


@dataclass(frozen=True)
class Fault:
    """An injected fault: where (a target or a peer probe), what, and the words that name
    it in a failure message."""

    name: str
    kind: str  # "target" or "peer"
    description: str
    words: tuple[str, ...]


@dataclass
class Verdict:
    """What the suite did with one fault."""

    fault: Fault
    cases: list[Case] = field(default_factory=list)

    @property
    def failed(self) -> list[Case]:
        return [c for c in self.cases if c.outcome == "failed"]

    @property
    def errors(self) -> list[Case]:
        return [c for c in self.cases if c.outcome == "error"]

    @property
    def caught(self) -> bool:
        return bool(self.failed)

    @property
    def naming(self) -> list[Case]:
        """The failures whose message contains every word of the fault."""
        return [c for c in self.failed if names_fault(c.message, self.fault.words)]

    @property
    def named(self) -> bool:
        return bool(self.naming)


@dataclass
class Score:
    verdicts: list[Verdict]
    correct: dict[str, list[Case]]  # correct target (or the peer) -> its cases

    @property
    def caught(self) -> int:
        return sum(v.caught for v in self.verdicts)

    @property
    def named(self) -> int:
        return sum(v.named for v in self.verdicts)

    @property
    def false_alarms(self) -> list[tuple[str, Case]]:
        return [
            (where, c)
            for where, cases in self.correct.items()
            for c in cases
            if c.outcome in ("failed", "error")
        ]

    @property
    def unchecked(self) -> list[str]:
        """Correct targets (or the peer) of which no test passed: no false alarm was
        possible there, so the run proves nothing about them."""
        return [
            w for w, cases in self.correct.items() if not any(c.outcome == "passed" for c in cases)
        ]

    def good_enough(self) -> bool:
        total = len(self.verdicts)
        return (
            total > 0
            and self.caught >= REQUIRED * total
            and not self.false_alarms
            and not self.unchecked
        )

    def line(self) -> str:
        total = len(self.verdicts)
        percent = 100 * self.caught // total if total else 0
        targets = [w for w in self.correct if w != PEER]
        where = f"{len(targets)} correct targets" + (
            " and the correct peer" if PEER in self.correct else ""
        )
        return (
            f"sensitivity: {self.caught}/{total} injected faults caught ({percent} %), "
            f"{self.named} named in the failure message, {len(self.false_alarms)} false "
            f"alarms on {where}"
        )


PEER = "broken peer without a fault"


# -- reading -------------------------------------------------------------------------------


def names_fault(message: str, words: Sequence[str]) -> bool:
    """Whether a failure message contains every word (case does not matter)."""
    text = message.lower()
    return bool(words) and all(w.lower() in text for w in words)


def read_junit(path: Path) -> list[Case]:
    """The testcases of a JUnit XML file, with the test's outcome and failure message."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise SensitivityError(f"cannot read the JUnit results {path}: {exc}") from None
    return [case_of(element) for element in root.iter("testcase")]


def case_of(element: ET.Element) -> Case:
    name = element.get("name", "").split("@", 1)[0]
    test, _, params = name.partition("[")
    outcome, message = "passed", ""
    for kind in ("failure", "error", "skipped"):
        found = element.find(kind)
        if found is not None:
            outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[kind]
            # The message attribute may be shortened; the element's text has the report.
            message = "\n".join(t for t in (found.get("message", ""), found.text) if t)
            break
    return Case(test, params.removesuffix("]"), outcome, message, element.get("classname", ""))


def suite_cases(cases: Iterable[Case]) -> list[Case]:
    """The testcases of the conformance suites (not the harness's own tests)."""
    return [c for c in cases if c.module.startswith("suites.")]


def target_of(params: str, targets: Iterable[str]) -> str | None:
    """The target named among a test's parameters (`prosody-no-sm-chat` -> prosody-no-sm):
    the longest target name that is a run of whole dash-separated parts."""
    padded = f"-{params}-"
    for name in sorted(targets, key=len, reverse=True):
        if f"-{name}-" in padded:
            return name
    return None


def catalog_faults(path: Path = CATALOG) -> tuple[list[Fault], list[str]]:
    """The faulty targets of the catalog and the names of its reference targets."""
    with path.open("rb") as handle:
        targets = tomllib.load(handle).get("targets", {})
    faults = [
        Fault(name, "target", str(spec.get("fault", "")), tuple(spec.get("fault_words", ())))
        for name, spec in targets.items()
        if "faulty" in spec.get("sets", [])
    ]
    reference = [n for n, spec in targets.items() if "reference" in spec.get("sets", [])]
    for fault in faults:
        if not fault.words:
            raise SensitivityError(f"{path}: faulty target {fault.name} has no fault_words")
    return faults, reference


def peer_faults(path: Path = PEER_FAULTS) -> list[Fault]:
    with path.open("rb") as handle:
        faults = tomllib.load(handle).get("faults", {})
    return [
        Fault(name, "peer", str(spec["fault"]), tuple(spec["fault_words"]))
        for name, spec in faults.items()
    ]


# -- scoring -------------------------------------------------------------------------------


def score(
    faults: list[Fault],
    reference: list[str],
    server_cases: list[Case],
    peer_cases: list[Case] | None,
) -> Score:
    """Sorts the testcases to their faults and correct targets. `peer_cases` None: the
    peer probes were not run."""
    names = [f.name for f in faults if f.kind == "target"] + reference
    verdicts = {f.name: Verdict(f) for f in faults}
    correct: dict[str, list[Case]] = {name: [] for name in reference}
    for case in server_cases:
        where = target_of(case.params, names)
        if where in verdicts:
            verdicts[where].cases.append(case)
        elif where in correct:
            correct[where].append(case)
    if peer_cases is not None:
        correct[PEER] = []
        for case in peer_cases:
            if case.test == BROKEN_PROBE and case.params in verdicts:
                verdicts[case.params].cases.append(case)
            elif case.test == CORRECT_PROBE:
                correct[PEER].append(case)
    return Score(list(verdicts.values()), correct)


# -- reporting -----------------------------------------------------------------------------


def markdown(result: Score, runs: dict[str, str]) -> str:
    lines = [
        "# Sensitivity",
        "",
        "Each fault is injected on purpose: a reference server started with a wrong "
        "configuration against its unchanged profile (a `faulty` target of targets.toml), "
        "or the deliberately broken peer of tests/broken_peer.py under a real check of the "
        "suite (tests/peer_faults.toml). Caught: at least one test failed on it. Named: a "
        "failure message contains every fault word.",
        "",
        "| fault | where | caught | named | tests failed | fault words |",
        "|---|---|---|---|---|---|",
    ]
    for v in result.verdicts:
        where = "target" if v.fault.kind == "target" else "peer"
        lines.append(
            f"| {v.fault.description} | {where} `{v.fault.name}` | "
            f"{'yes' if v.caught else '**no**'} | {'yes' if v.named else 'no'} | "
            f"{failed_summary(v)} | {', '.join(f'`{w}`' for w in v.fault.words)} |"
        )
    lines += ["", "## Correct targets", ""]
    for where, cases in result.correct.items():
        counts = {o: sum(c.outcome == o for c in cases) for o in ("passed", "failed", "error")}
        skipped = sum(c.outcome == "skipped" for c in cases)
        lines.append(
            f"- {where}: {counts['passed']} passed, {counts['failed']} failed, "
            f"{counts['error']} errors, {skipped} skipped"
        )
    for where, case in result.false_alarms:
        lines.append(f"  - false alarm on {where}: {case.name}: {first_line(case.message)}")
    lines += ["", "## Runs", ""] + [f"- {name}: {what}" for name, what in runs.items()]
    lines += ["", result.line(), ""]
    return "\n".join(lines)


def failed_summary(v: Verdict) -> str:
    if not v.failed:
        errors = (
            f"; {len(v.errors)} setup errors: {first_line(v.errors[0].message)}"
            if v.errors
            else ""
        )
        return f"none{errors}"
    shown = (v.naming or v.failed)[:SHOWN]
    more = len(v.failed) - len(shown)
    text = ", ".join(f"`{c.name}`" for c in shown)
    return f"{len(v.failed)}: {text}" + (f" and {more} more" if more > 0 else "")


def first_line(message: str) -> str:
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return (lines[0] if lines else "(no message)")[:200].replace("|", "\\|")


# -- running -------------------------------------------------------------------------------


@dataclass
class Run:
    """One pytest subprocess, its JUnit file and its log."""

    name: str
    argv: list[str]
    junit: Path
    log_path: Path
    timeout: float
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    seconds: float = 0.0
    exit_code: int | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("XC_RUN_ID", "XC_RUN_OWNER")}
        self.junit.unlink(missing_ok=True)
        self.started = time.monotonic()
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(
                [*self.argv, f"--junitxml={self.junit}"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        log.info("%s: started (pid %d), log %s", self.name, self.process.pid, self.log_path)

    def wait(self) -> None:
        assert self.process is not None
        remaining = self.timeout - (time.monotonic() - self.started)
        try:
            self.exit_code = self.process.wait(timeout=max(remaining, 1.0))
        except subprocess.TimeoutExpired:
            log.error("%s: still running after %g s; interrupting it", self.name, self.timeout)
            self.interrupt()
        self.seconds = time.monotonic() - self.started

    def interrupt(self) -> None:
        """SIGINT (pytest then removes its servers), and SIGKILL after GRACE seconds."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=GRACE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self.exit_code = self.process.returncode

    def cases(self) -> list[Case]:
        """The run's testcases; pytest exits 0 (all passed) or 1 (some failed) here."""
        if self.exit_code not in (0, 1) or not self.junit.exists():
            raise SensitivityError(
                f"{self.name} ended with exit status {self.exit_code} and "
                f"{'no' if not self.junit.exists() else 'incomplete'} results; the end of "
                f"its log ({self.log_path}):\n{tail(self.log_path)}"
            )
        return read_junit(self.junit)

    def describe(self) -> str:
        return (
            f"`{' '.join(self.argv[1:])}`: exit {self.exit_code} after {self.seconds:.0f} s "
            f"(log {shown_path(self.log_path)})"
        )


def shown_path(path: Path) -> str:
    """A path relative to the project when it is inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(log not readable: {exc})"


def runs(out: Path, workers: int, with_reference: bool) -> tuple[Run, Run]:
    common = ["-p", "no:cacheprovider", "-q", "-o", "addopts=", "-ra", "--strict-markers"]
    servers = Run(
        "suites against the faulty" + (" and reference" if with_reference else "") + " targets",
        [
            PYTEST,
            "suites/",
            "--targets=faulty,reference" if with_reference else "--targets=faulty",
            *common,
            f"--report-dir={out}",
            *(["-n", str(workers)] if workers > 1 else []),
        ],
        out / "servers.xml",
        out / "servers.log",
        SERVERS_TIMEOUT,
    )
    peer = Run(
        "checks against the broken peer",
        [PYTEST, PEER_PROBES, *common],
        out / "peer.xml",
        out / "peer.log",
        PEER_TIMEOUT,
    )
    return servers, peer


def run_both(servers: Run, peer: Run) -> None:
    servers.start()
    peer.start()
    try:
        peer.wait()
        servers.wait()
    except KeyboardInterrupt:
        for run in (servers, peer):
            if run.process is not None:
                run.interrupt()
        raise


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--workers", type=int, default=4, help="pytest-xdist workers (-n)")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "sensitivity")
    parser.add_argument("--markdown", type=Path, default=ROOT / "reports" / "sensitivity.md")
    parser.add_argument(
        "--reference-junit",
        type=Path,
        help="JUnit XML of a finished run of the suites against the reference targets (as "
        "`make test` makes): their false alarms are read there instead of run again",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[sensitivity] %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)

    faults, reference = catalog_faults()
    faults += peer_faults()
    earlier = suite_cases(read_junit(args.reference_junit)) if args.reference_junit else []
    servers, peer = runs(args.out.resolve(), args.workers, not args.reference_junit)
    print(f"[sensitivity] {len(faults)} injected faults; running {servers.name} and {peer.name}")
    run_both(servers, peer)
    result = score(faults, reference, earlier + servers.cases(), peer.cases())

    described = {r.name: r.describe() for r in (servers, peer)}
    if args.reference_junit:
        described["reference targets"] = f"read from {shown_path(args.reference_junit)}"
    text = markdown(result, described)
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    args.markdown.write_text(text)
    print(text.rsplit("\n## Runs", 1)[0])
    print(f"[sensitivity] written: {args.markdown}")
    print(result.line())
    return 0 if result.good_enough() else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SensitivityError as exc:
        print(f"[sensitivity] {exc}", file=sys.stderr)
        print("sensitivity: not measured (a run did not complete)")
        sys.exit(2)
    except KeyboardInterrupt:
        print("sensitivity: not measured (interrupted)")
        sys.exit(130)
