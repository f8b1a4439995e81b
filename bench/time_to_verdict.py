"""Time to verdict: how long the suite takes on this machine, and how close to its floor.

Measures, in one run:

- the image builds: cold (the base image made with debootstrap and both reference images
  built without Docker's cache, under bench tags, so that images other runs use are left
  alone) and warm (`compose build` of the reference services, as every run does);
- boot: seconds until each reference target is healthy, with 1, 2, 3 and 4 copies of the
  pair starting at once (what N xdist workers with a server set each would start; the
  workers of a run share one set, so a run boots one copy);
- each suite module alone against the reference targets, one process;
- all suites against the reference targets, with 1, 2, 3, 4, 6 and 8 xdist workers;
- the floor: the slowest boot of one copy plus the longest wait a profile configures
  ([timeouts] pre_session_timeout, [stream_management] resume_timeout). A lane is one
  xdist worker: it runs one test, or one batch of checks side by side (suites/batch.py),
  at a time, and all lanes share the servers, which boot once. No lane can finish before
  the servers are up and its longest configured wait is over, so no run can end before
  the floor, however many lanes it has;
- the check floor: the slowest boot plus the longest single check: a test body (pytest's
  `call` phase, read from `--durations`) or a batched check as its batch timed it
  (suites/batch.py writes those to the file named by XC_CHECK_SECONDS). One check's steps
  run one after another (a CSI check watches a QUIET window after each step), so no
  number of lanes ends a run sooner.

Writes reports/bench/time-to-verdict.json and .md and prints the table.

    .venv/bin/python bench/time_to_verdict.py [--skip-cold] [--workers 1,2,3,4,6,8]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.background import CHECK_SECONDS  # noqa: E402
from harness.compose import BASE_SCRIPT, ComposeProject, docker  # noqa: E402
from harness.targets import load_catalog, select  # noqa: E402

OUT = ROOT / "reports" / "bench"
# Without the project's addopts: no Allure results or JUnit file of the project's reports.
PYTEST = [
    str(ROOT / ".venv" / "bin" / "pytest"),
    *("-p", "no:cacheprovider", "-q", "-o", "addopts=", "-ra", "--strict-markers"),
]
SERVICES = ("prosody", "ejabberd")
BENCH_BASE = "xc-bench/debian-base:cold"
# Profile keys that are waits a check must sit through, in seconds.
WAIT_KEYS = (("timeouts", "pre_session_timeout"), ("stream_management", "resume_timeout"))
SUMMARY = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed)")
# A line of pytest's --durations table, "6.85s call     suites/test_x.py::test_y[prosody]",
# or of a batch's check times, "6.12s check suites/test_x.py::test_y[prosody]".
DURATION = re.compile(r"^(\d+(?:\.\d+)?)s (?:call|check)\s+(\S+)", re.MULTILINE)


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def quiet(_message: str) -> None:
    return None


def timed(argv: list[str], log_name: str) -> dict[str, Any]:
    """Runs a pytest command; its wall time, exit status and counts; output in a log."""
    started = time.monotonic()
    log_path = OUT / f"{log_name}.log"
    argv = [*argv, f"--report-dir={OUT / 'runs' / log_name}"]
    checks = OUT / f"{log_name}.checks"
    checks.unlink(missing_ok=True)
    # As the Makefile does: pytest then keeps the modules it rewrites as bytecode, and a
    # run's workers do not compile them again.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env[CHECK_SECONDS] = str(checks)
    with log_path.open("w") as out:
        done = subprocess.run(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
    seconds = time.monotonic() - started
    text = log_path.read_text(errors="replace")
    tail = text.splitlines()[-1:]
    counts = {kind: int(n) for n, kind in SUMMARY.findall(tail[0] if tail else "")}
    result: dict[str, Any] = {
        "seconds": round(seconds, 1),
        "exit": done.returncode,
        "counts": counts,
    }
    longest = longest_call(text + (checks.read_text() if checks.exists() else ""))
    if longest is not None:
        result["longest_call"] = {"seconds": longest[0], "test": longest[1]}
    return result


def longest_call(output: str) -> tuple[float, str] | None:
    """The slowest test body or batched check in a pytest output that has a --durations
    table, followed by the check times the batches wrote."""
    calls = [(float(seconds), test) for seconds, test in DURATION.findall(output)]
    return max(calls) if calls else None


# -- builds --------------------------------------------------------------------------------


def cold_build() -> dict[str, float]:
    """The base image and both images from nothing, under bench tags."""
    docker("rmi", "-f", BENCH_BASE, *(f"xc-bench/{s}:cold" for s in SERVICES), check=False)
    started = time.monotonic()
    subprocess.run(["bash", str(BASE_SCRIPT), BENCH_BASE], check=True, timeout=1200)
    result = {"base_image_s": round(time.monotonic() - started, 1)}
    for service in SERVICES:
        started = time.monotonic()
        docker(
            "build",
            "--no-cache",
            "-q",
            "--build-arg",
            f"BASE_IMAGE={BENCH_BASE}",
            "-t",
            f"xc-bench/{service}:cold",
            str(ROOT / "servers" / service),
            timeout=1800,
        )
        result[f"{service}_image_s"] = round(time.monotonic() - started, 1)
    docker("rmi", "-f", BENCH_BASE, *(f"xc-bench/{s}:cold" for s in SERVICES), check=False)
    result["total_s"] = round(sum(result.values()), 1)
    return result


def warm_build() -> float:
    """A compose build with every layer cached: the images (and their base) are made
    first, untimed, where this machine has none yet."""
    project = ComposeProject("xc-bench-build", progress=quiet)
    project.prepare_images(SERVICES)
    started = time.monotonic()
    project.run("build", *SERVICES, timeout=1200)
    return round(time.monotonic() - started, 1)


# -- boots ---------------------------------------------------------------------------------


def boot_once(name: str) -> dict[str, float]:
    project = ComposeProject(name, progress=quiet)
    try:
        startup = project.up(list(SERVICES))
        if startup.failed:
            raise RuntimeError(f"{name}: {startup.failed}")
        return startup.ready
    finally:
        project.down()


def boot_copies(copies: int) -> dict[str, float]:
    """The slowest time to healthy of each service when `copies` pairs start at once."""
    names = [f"xc-bench-boot-{os.getpid()}-{i}" for i in range(copies)]
    with concurrent.futures.ThreadPoolExecutor(copies) as pool:
        boots = list(pool.map(boot_once, names))
    return {s: round(max(b[s] for b in boots), 1) for s in SERVICES}


# -- suites --------------------------------------------------------------------------------


def suite_times() -> dict[str, dict[str, Any]]:
    times: dict[str, dict[str, Any]] = {}
    for module in sorted((ROOT / "suites").glob("test_*.py")):
        times[module.stem] = timed(
            [*PYTEST, str(module.relative_to(ROOT)), "--targets=reference"], module.stem
        )
        say(f"  {module.stem}: {times[module.stem]}")
    return times


def total_time(workers: int) -> dict[str, Any]:
    argv = [*PYTEST, "suites/", "--targets=reference", "--durations=5"]
    if workers > 1:
        argv += ["-n", str(workers)]
    return timed(argv, f"all-suites-n{workers}")


def longest_waits() -> dict[str, dict[str, float]]:
    """The configured waits of each reference profile, in seconds."""
    waits: dict[str, dict[str, float]] = {}
    for target in select(load_catalog(), "reference"):
        waits[target.name] = {
            f"[{table}] {key}": float(target.profile.data[table][key])
            for table, key in WAIT_KEYS
            if key in target.profile.data.get(table, {})
        }
    return waits


def longest_check(totals: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The slowest test body of the one-worker run (no other worker slows it down), or of
    the run with the fewest workers that reported one."""
    for workers in sorted(totals, key=int):
        if "longest_call" in totals[workers]:
            return dict(totals[workers]["longest_call"])
    raise SystemExit("no run printed a --durations table; see the logs in reports/bench/")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--skip-cold", action="store_true", help="do not build from nothing")
    parser.add_argument("--workers", default="1,2,3,4,6,8", help="xdist worker counts to time")
    parser.add_argument("--copies", default="1,2,3,4", help="server sets to boot at once")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()

    say("image builds ...")
    builds: dict[str, Any] = {} if args.skip_cold else {"cold": cold_build()}
    builds["warm_s"] = warm_build()
    say(f"  {builds}")
    boots = {}
    for copies in (int(c) for c in args.copies.split(",")):
        say(f"boot, {copies} cop{'y' if copies == 1 else 'ies'} at once ...")
        boots[str(copies)] = boot_copies(copies)
        say(f"  {boots[str(copies)]}")
    say("each suite alone ...")
    suites = suite_times()
    totals = {}
    for workers in (int(w) for w in args.workers.split(",")):
        say(f"all suites, {workers} worker(s) ...")
        totals[str(workers)] = total_time(workers)
        say(f"  {totals[str(workers)]}")

    waits = longest_waits()
    slowest_boot = max(boots["1"].values()) if "1" in boots else max(boots[min(boots)].values())
    longest = max(v for w in waits.values() for v in w.values())
    floor = slowest_boot + longest
    best = min(totals, key=lambda w: totals[w]["seconds"])
    check = longest_check(totals)
    check_floor = slowest_boot + check["seconds"]
    result = {
        "machine": {"cores": os.cpu_count(), "load_before": load_before},
        "image_build": builds,
        "boot_s_by_copies": boots,
        "suites_alone": suites,
        "all_suites_by_workers": totals,
        "configured_waits_s": waits,
        "floor": {
            "slowest_boot_s": slowest_boot,
            "longest_configured_wait_s": longest,
            "floor_s": round(floor, 1),
            "lane": (
                "one xdist worker: one test or one batch of checks at a time; all lanes share "
                "one server set"
            ),
        },
        "check_floor": {
            "slowest_boot_s": slowest_boot,
            "longest_test_s": check["seconds"],
            "longest_test": check["test"],
            "floor_s": round(check_floor, 1),
        },
        "best_workers": int(best),
        "ratio_total_to_floor": {w: round(t["seconds"] / floor, 2) for w, t in totals.items()},
        "ratio_total_to_check_floor": {
            w: round(t["seconds"] / check_floor, 2) for w, t in totals.items()
        },
    }
    result["machine"]["load_after"] = os.getloadavg()
    (OUT / "time-to-verdict.json").write_text(json.dumps(result, indent=2) + "\n")
    (OUT / "time-to-verdict.md").write_text(render(result))
    print(render(result))


def render(result: dict[str, Any]) -> str:
    lines = ["| measure | seconds |", "|---|---|"]
    cold = result["image_build"].get("cold")
    if cold:
        for key, value in cold.items():
            lines.append(f"| cold build, {key.removesuffix('_s').replace('_', ' ')} | {value} |")
    lines.append(f"| warm build (compose build, cached) | {result['image_build']['warm_s']} |")
    for copies, boots in result["boot_s_by_copies"].items():
        shown = ", ".join(f"{s} {t}" for s, t in boots.items())
        lines.append(f"| healthy, {copies} server set(s) starting at once | {shown} |")
    for name, entry in result["suites_alone"].items():
        lines.append(f"| {name} alone (boot included) | {entry['seconds']} |")
    for workers, entry in result["all_suites_by_workers"].items():
        ratio = result["ratio_total_to_floor"][workers]
        lines.append(
            f"| all suites, -n {workers} | {entry['seconds']} (exit {entry['exit']}, "
            f"{entry['counts']}; {ratio} x floor) |"
        )
    floor = result["floor"]
    lines.append(
        f"| floor: slowest boot {floor['slowest_boot_s']} + longest configured wait "
        f"{floor['longest_configured_wait_s']} | {floor['floor_s']} |"
    )
    lines.append(f"| lane | {floor['lane']} |")
    check = result["check_floor"]
    lines.append(
        f"| check floor: slowest boot {check['slowest_boot_s']} + longest check "
        f"{check['longest_test_s']} ({check['longest_test']}) | {check['floor_s']} |"
    )
    best = str(result["best_workers"])
    lines.append(
        f"| best: -n {best} | {result['all_suites_by_workers'][best]['seconds']} "
        f"(ratio {result['ratio_total_to_floor'][best]} to the floor, "
        f"{result['ratio_total_to_check_floor'][best]} to the check floor) |"
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
