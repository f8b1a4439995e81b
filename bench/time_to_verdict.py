"""Time to verdict: how long the suite takes on this machine, and how close to its floor.

Measures, in one run: the image builds (cold, without Docker's cache, and warm), the time
each reference target takes to become healthy, the wall time of each suite module alone,
the wall time of all suites together as `make test` runs them, and the floor: the slowest
boot plus the longest wait a profile configures, per parallel lane. Writes
reports/bench/time-to-verdict.json and .md and prints the table.

    .venv/bin/python bench/time_to_verdict.py [--skip-cold] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.compose import BASE_IMAGE, ComposeProject, docker  # noqa: E402
from harness.targets import load_catalog, select  # noqa: E402

OUT = ROOT / "reports" / "bench"
PYTEST = [str(ROOT / ".venv" / "bin" / "pytest"), "-p", "no:cacheprovider", "-q"]
REFERENCE_IMAGES = ("xmpp-conformance/prosody:0.12", "xmpp-conformance/ejabberd:23.01")
# Profile keys that are waits a check must sit through, in seconds (ms keys are converted).
WAIT_KEYS = ("idle_timeout_s", "state_timeout_s", "resume_timeout_s", "close_within_s")


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    started = time.monotonic()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
    return time.monotonic() - started, done.returncode


def build_times(skip_cold: bool) -> dict[str, float]:
    project = ComposeProject("xc-bench-build", progress=lambda _m: None)
    services = ["prosody", "ejabberd"]
    result: dict[str, float] = {}
    if not skip_cold:
        for image in (*REFERENCE_IMAGES, BASE_IMAGE):
            docker("rmi", "-f", image, check=False)
        started = time.monotonic()
        project.prepare_images(services)
        result["cold_with_base_image_s"] = time.monotonic() - started
    started = time.monotonic()
    project.run("build", *services)
    result["warm_s"] = time.monotonic() - started
    return result


def boot_times() -> dict[str, float]:
    project = ComposeProject(f"xc-bench-boot-{os.getpid()}", progress=lambda _m: None)
    try:
        startup = project.up(["prosody", "ejabberd"])
    finally:
        project.down()
    return {f"{name}_s": seconds for name, seconds in startup.ready.items()}


def suite_times() -> dict[str, dict[str, Any]]:
    times: dict[str, dict[str, Any]] = {}
    for module in sorted((ROOT / "suites").glob("test_*.py")):
        seconds, code = timed([*PYTEST, str(module), "--targets=reference"])
        times[module.stem] = {"seconds": round(seconds, 1), "exit": code}
        print(f"  {module.stem}: {seconds:.1f} s (exit {code})", flush=True)
    return times


def total_time(workers: int) -> dict[str, Any]:
    argv = [*PYTEST, "suites/", "--targets=reference"]
    if workers > 1:
        argv += ["-n", str(workers)]
    seconds, code = timed(argv)
    return {"seconds": round(seconds, 1), "exit": code, "workers": workers}


def longest_waits() -> dict[str, float]:
    """The longest configured wait of each reference profile, in seconds."""
    waits: dict[str, float] = {}
    for target in select(load_catalog(), "reference"):
        found = [0.0]
        for table in target.profile.data.values():
            if isinstance(table, dict):
                found += [
                    float(v)
                    for k, v in table.items()
                    if k in WAIT_KEYS and isinstance(v, int | float)
                ]
        waits[target.name] = max(found)
    return waits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-cold", action="store_true", help="do not rebuild from scratch")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", "4")))
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)

    print("image builds ...", flush=True)
    builds = build_times(args.skip_cold)
    print("boot ...", flush=True)
    boots = boot_times()
    print("each suite alone ...", flush=True)
    suites = suite_times()
    print(f"all suites, {args.workers} workers ...", flush=True)
    total = total_time(args.workers)
    waits = longest_waits()
    floor = max(boots.values()) + max(waits.values())
    result = {
        "machine": {"cores": os.cpu_count()},
        "image_build": builds,
        "boot": boots,
        "suites": suites,
        "total": total,
        "longest_configured_wait_s": waits,
        "floor_s": round(floor, 1),
        "ratio_total_to_floor": round(total["seconds"] / floor, 2) if floor else None,
    }
    (OUT / "time-to-verdict.json").write_text(json.dumps(result, indent=2) + "\n")
    (OUT / "time-to-verdict.md").write_text(render(result))
    print(render(result))


def render(result: dict[str, Any]) -> str:
    lines = ["| measure | seconds |", "|---|---|"]
    for key, value in result["image_build"].items():
        lines.append(f"| image build, {key.removesuffix('_s').replace('_', ' ')} | {value:.1f} |")
    for key, value in result["boot"].items():
        lines.append(f"| healthy: {key.removesuffix('_s')} | {value:.1f} |")
    for name, entry in result["suites"].items():
        lines.append(f"| suite {name} alone | {entry['seconds']} |")
    total = result["total"]
    lines.append(f"| all suites ({total['workers']} workers) | {total['seconds']} |")
    lines.append(f"| floor (slowest boot + longest wait) | {result['floor_s']} |")
    lines.append(f"| ratio total / floor | {result['ratio_total_to_floor']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
