"""Removes what compose projects of this suite left behind: containers, networks, volumes.

Each run names its compose projects `xc-<run id>-<worker>` (`xc-<run id>-shared` for the
servers its xdist workers share) and labels its config trial containers with its run id.
The run's controller calls `remove_run(<run id>)` at its very end, so even a worker that
was killed before its own teardown leaves nothing; `python -m harness.cleanup` removes
every `xc-` project.
"""

from __future__ import annotations

import logging
import sys

from harness.compose import docker

log = logging.getLogger(__name__)
LABEL = "com.docker.compose.project"
# Set on the config trial containers a run starts (harness/config_trials.py).
RUN_LABEL = "xmpp-conformance.run"


def projects(prefix: str) -> set[str]:
    """Compose project names starting with `prefix` that still own a container."""
    out = docker(
        "ps",
        "-a",
        "--filter",
        f"label={LABEL}",
        "--format",
        f'{{{{.Label "{LABEL}"}}}}',
        check=False,
    ).stdout
    return {name for name in out.split() if name.startswith(prefix)}


def remove_run(run: str) -> list[str]:
    """Everything of one run: its compose projects and its config trial containers."""
    removed = remove_projects(f"xc-{run}-")
    trials = docker("ps", "-aq", "--filter", f"label={RUN_LABEL}={run}", check=False).stdout
    if trials.split():
        docker("rm", "-f", "-v", *trials.split(), check=False, timeout=120)
        log.warning("removed %d config trial container(s) of run %s", len(trials.split()), run)
        removed.append(f"{len(trials.split())} config trial container(s)")
    return removed


def remove_projects(prefix: str) -> list[str]:
    """Force-removes containers, networks and volumes of the matching projects."""
    removed = sorted(projects(prefix))
    for name in removed:
        ids = docker("ps", "-aq", "--filter", f"label={LABEL}={name}", check=False).stdout.split()
        if ids:
            docker("rm", "-f", "-v", *ids, check=False, timeout=120)
        log.warning("removed containers of compose project %s left behind", name)
    for kind in ("network", "volume"):
        names = docker(kind, "ls", "-q", "--filter", f"label={LABEL}", check=False).stdout.split()
        for item in names:
            owner = docker(
                kind, "inspect", "-f", f'{{{{index .Labels "{LABEL}"}}}}', item, check=False
            ).stdout.strip()
            if owner.startswith(prefix):
                docker(kind, "rm", item, check=False)
    return removed


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    gone = remove_projects(sys.argv[1] if len(sys.argv) > 1 else "xc-")
    print(f"removed {len(gone)} compose project(s): {', '.join(gone) or 'none'}")
