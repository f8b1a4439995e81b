"""Brings the chosen targets up for a run and resolves where their nodes listen.

Targets from the catalog run as services of one compose project with a unique name;
targets from a `--targets-file` are already running and are only checked for a TCP
answer. A target that cannot start does not stop the others: its tests fail with the
reason, the service's last log lines and its full log attached to the report.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from dataclasses import dataclass, field

from harness.compose import ComposeError, ComposeProject, Progress, docker
from harness.targets import Target

log = logging.getLogger(__name__)


def run_id() -> str:
    """One id per run, shared by its xdist workers through the environment."""
    return os.environ.setdefault("XC_RUN_ID", secrets.token_hex(4))


def project_name() -> str:
    """`xc-<run id>-<worker>`: unique per process, and removable per run."""
    return f"xc-{run_id()}-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


@dataclass
class Lab:
    """The servers of one run: which targets are up and why the others are not."""

    progress: Progress
    project: ComposeProject | None = None
    ready: dict[str, Target] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)
    boot_seconds: dict[str, float] = field(default_factory=dict)

    def start(self, targets: list[Target]) -> None:
        managed = [t for t in targets if t.managed]
        for target in (t for t in targets if not t.managed):
            self._check_reachable(target)
        if managed:
            self._start_managed(managed)

    def stop(self) -> None:
        """Removes the compose project; safe to call twice (fixture and exit handler)."""
        if self.project is not None and self.project.started:
            self.project.down()
            self.project.started.clear()

    def logs(self, target: Target, tail: int | None = None) -> str:
        """The compose logs of a managed target's nodes ("" for external targets)."""
        if self.project is None:
            return ""
        return "\n".join(self.project.logs(s, tail) for s in target.services)

    def logs_since(self, target: Target, since: float) -> str:
        """Log lines of the target's containers from `since` (epoch seconds) on."""
        parts = []
        for node in target.nodes:
            if node.container is None:
                continue
            done = docker("logs", "--since", f"{since:.0f}", node.container, check=False)
            parts.append(f"--- {node.name}\n{done.stdout}{done.stderr}")
        return "\n".join(parts) or "(no container logs: the target was not started by this run)"

    def _start_managed(self, targets: list[Target]) -> None:
        self.project = ComposeProject(project_name(), progress=self.progress)
        startable: list[Target] = []
        for target in targets:
            try:
                self.project.prepare_images(target.services)
                startable.append(target)
            except (ComposeError, OSError) as exc:
                self.broken[target.name] = str(exc)
        # Single-node targets boot together; a cluster boots on its own, so that a join
        # that fails cannot take the other targets down with it.
        batches = [[t for t in startable if len(t.nodes) == 1]]
        batches += [[t] for t in startable if len(t.nodes) > 1]
        for batch in (b for b in batches if b):
            self._start_batch(batch)

    def _start_batch(self, targets: list[Target]) -> None:
        assert self.project is not None
        try:
            startup = self.project.up([s for t in targets for s in t.services])
        except ComposeError as exc:
            self.broken.update((t.name, str(exc)) for t in targets)
            return
        self.boot_seconds.update(startup.ready)
        for target in targets:
            failures = [startup.failed[s] for s in target.services if s in startup.failed]
            if failures:
                self.broken[target.name] = "\n".join(failures)
                continue
            self._resolve(target)

    def _resolve(self, target: Target) -> None:
        assert self.project is not None
        try:
            for node in target.nodes:
                assert node.service is not None
                node.container = self.project.container_id(node.service)
                node.ports = {
                    role: self.project.host_port(node.service, port)
                    for role, port in node.ports.items()
                }
                log.info("target %s node %s listens on %s", target.name, node.name, node.ports)
        except ComposeError as exc:
            self.broken[target.name] = str(exc)
            return
        self.ready[target.name] = target

    def _check_reachable(self, target: Target) -> None:
        for node in target.nodes:
            host, port = node.c2s
            try:
                socket.create_connection((host, port), timeout=5).close()
            except OSError as exc:
                self.broken[target.name] = (
                    f"target {target.name}: node {node.name} at {host}:{port} does not accept "
                    f"TCP connections: {exc}"
                )
                return
        self.ready[target.name] = target
