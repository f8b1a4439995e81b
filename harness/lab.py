"""Brings the chosen targets up for a run and resolves where their nodes listen.

Targets from the catalog run as services of one compose project with a unique name;
targets from a `--targets-file` are already running and are only checked for a TCP
answer. A target that cannot start does not stop the others: its tests fail with the
reason, the service's last log lines and its full log attached to the report.

Under pytest-xdist the workers share one set of servers (`start_shared`): the controller
(while the workers start), or else the first worker that needs them, starts them in the
compose project `xc-<run id>-shared` and writes where they listen to the run's folder;
the others wait for that, bounded, and read it. The
controller removes the project at the end of the run (`stop_shared`). A test whose
observation any other client would disturb (a gauge of sessions online) takes its server's
turn alone (`server_turn`); every other test shares it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from harness.compose import ComposeError, ComposeProject, Container, Progress, docker
from harness.targets import Target

log = logging.getLogger(__name__)

# How long a worker waits for another one to build images and boot the shared servers.
SHARED_START_TIMEOUT = 1800.0
# How long a test waits for its turn on a server (the tests before it run to their end).
TURN_TIMEOUT = 600.0
LOCK_POLL = 0.05
# How long past resume_timeout a server may take to end a held session.
LINGER_MARGIN = 2.0
# How long a shared turn waits for the run's lone turns on its server to go first.
LONE_FIRST_TIMEOUT = 120.0


class LabError(RuntimeError):
    """The run's shared servers or a server's turn could not be had; the message says why."""


RUN_ENV = "XC_RUN_ID"
# The pid of the pytest process that owns the run id in RUN_ENV.
OWNER_ENV = "XC_RUN_OWNER"


def run_id() -> str:
    """One id per run, shared by its xdist workers through the environment."""
    return os.environ.setdefault(RUN_ENV, secrets.token_hex(4))


def claim_run(worker: bool) -> str:
    """The run id of this pytest process. An xdist worker keeps its controller's; any
    other process owns its run: it keeps an id it was given (XC_RUN_ID=... from a script
    that names its runs), unless it inherited the id together with another process's
    ownership. Then it is a pytest started by a test of that run, and it gets an id of its
    own, so that its end does not remove the servers of the run that started it."""
    if not worker:
        owner = os.environ.get(OWNER_ENV)
        if owner is not None and owner != str(os.getpid()):
            log.info("run %s belongs to process %s; this process starts its own", run_id(), owner)
            os.environ[RUN_ENV] = secrets.token_hex(4)
        os.environ[OWNER_ENV] = str(os.getpid())
    return run_id()


def project_name() -> str:
    """`xc-<run id>-<worker>`: unique per process, and removable per run."""
    return f"xc-{run_id()}-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


def shared_project_name() -> str:
    """The one compose project the xdist workers of a run share."""
    return f"xc-{run_id()}-shared"


def run_folder() -> Path:
    """Files the processes of one run share: the shared servers' state and the locks."""
    folder = Path(tempfile.gettempdir()) / f"xc-{run_id()}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class FileLock:
    """flock(2) on a file of the run's folder, taken with a bound (polled, so the wait
    ends with a clear error instead of hanging)."""

    def __init__(self, path: Path, exclusive: bool) -> None:
        self.path = path
        self.exclusive = exclusive
        self._handle: TextIO | None = None

    def acquire(self, timeout: float, what: str) -> None:
        handle = self.path.open("a")
        mode = (fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, mode)
                self._handle = handle
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    handle.close()
                    raise LabError(
                        f"waited {timeout:g} s for {what} ({self.path.name}) in vain"
                    ) from None
                time.sleep(LOCK_POLL)

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


@contextlib.contextmanager
def locked(path: Path, exclusive: bool, timeout: float, what: str) -> Iterator[None]:
    lock = FileLock(path, exclusive)
    lock.acquire(timeout, what)
    try:
        yield
    finally:
        lock.release()


class Turns:
    """Each test's turn on a server: shared with the other tests of the run, or alone.

    Two locks per server: a test that needs the server alone takes the gate, then the
    turn, exclusively; a shared test passes the gate (so that a waiting lone test goes
    next) and holds the turn shared. Shared turns are counted per process: a test inside
    a fixture that already holds one (the idle watches) does not queue behind a lone test
    that waits for that same fixture.

    A session can outlive the test that opened it: a server holds a dropped session that
    may be resumed for its resume_timeout. So a lone turn, once the others are done, also
    waits until `settle` seconds have passed since the last shared turn on the server
    ended. (The tests that need a server alone close their sessions cleanly.)

    That wait is avoided when the lone turns come first: once told how many lone turns a
    server will see in the run (`expect_lone`), a first shared turn on it waits until
    they have ended (at most LONE_FIRST_TIMEOUT; after that it goes ahead, and the lone
    turns still left settle as above).
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._shared: dict[str, tuple[int, FileLock]] = {}
        self._lone_expected: dict[str, int] = {}
        self._lone_last: dict[str, int] = {}

    def expect_lone(self, counts: dict[str, int], last: dict[str, int] | None = None) -> None:
        """How many lone turns each server will see in the run (same in every process);
        `last`: how many of them are taken with `after_other_lone_turns` (the quiet starts
        of suites/batch.py, whose connections outlive their turn)."""
        self._lone_expected = dict(counts)
        self._lone_last = dict(last or {})

    def after_other_lone_turns(self, server: str, timeout: float = LONE_FIRST_TIMEOUT) -> None:
        """Waits until the lone turns on the server that are not taken last have ended, so
        that what a last one leaves open disturbs none of them."""
        first = self._lone_expected.get(server, 0) - self._lone_last.get(server, 0)
        self._wait_lone_ended(server, first, timeout)

    @contextlib.contextmanager
    def take(
        self, server: str, alone: bool, timeout: float = TURN_TIMEOUT, settle: float = 0.0
    ) -> Iterator[None]:
        if alone:
            with self._mutex:
                if server in self._shared:
                    raise LabError(
                        f"a test wants server {server} alone while this process shares it"
                    )
            folder = run_folder()
            what = f"server {server} to itself"
            try:
                with (
                    locked(folder / f"{server}.gate", True, timeout, what),
                    locked(folder / f"{server}.turn", True, timeout, what),
                ):
                    self._settle(folder / f"{server}.ended", settle)
                    log.info("server %s: this test's traffic is its only traffic", server)
                    yield
            finally:
                with (folder / f"{server}.lone-ended").open("a") as ended:
                    ended.write("1\n")
            return
        self._share(server, timeout)
        try:
            yield
        finally:
            self._unshare(server)

    def lone_turns_ended(self, server: str) -> int:
        path = run_folder() / f"{server}.lone-ended"
        return len(path.read_text().splitlines()) if path.exists() else 0

    def _after_lone_turns(self, server: str, timeout: float) -> None:
        """Waits until the lone turns the run expects on the server have ended."""
        self._wait_lone_ended(server, self._lone_expected.get(server, 0), timeout)

    def _wait_lone_ended(self, server: str, expected: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        logged = False
        while (ended := self.lone_turns_ended(server)) < expected:
            if time.monotonic() > deadline:
                log.warning(
                    "server %s: %d of %d lone turns ended within %.0f s; going ahead anyway",
                    server,
                    ended,
                    expected,
                    timeout,
                )
                return
            if not logged:
                log.info("server %s: waiting for %d lone turns first", server, expected - ended)
                logged = True
            time.sleep(LOCK_POLL)

    def _settle(self, ended: Path, settle: float) -> None:
        """Waits until `settle` seconds after the last turn on the server ended."""
        if not ended.exists():
            return
        wait = ended.stat().st_mtime + settle - time.time()
        if wait > 0:
            log.info("waiting %.1f s for sessions of earlier tests to end (%s)", wait, ended.stem)
            time.sleep(wait)

    def _share(self, server: str, timeout: float) -> None:
        with self._mutex:
            if server in self._shared:
                count, lock = self._shared[server]
                self._shared[server] = (count + 1, lock)
                return
        self._after_lone_turns(server, min(timeout, LONE_FIRST_TIMEOUT))
        folder = run_folder()
        lock = FileLock(folder / f"{server}.turn", exclusive=False)
        with locked(folder / f"{server}.gate", False, timeout, f"a turn on server {server}"):
            lock.acquire(timeout, f"a turn on server {server}")
        with self._mutex:
            self._shared[server] = (1, lock)

    def _unshare(self, server: str) -> None:
        with self._mutex:
            count, lock = self._shared[server]
            if count > 1:
                self._shared[server] = (count - 1, lock)
                return
            del self._shared[server]
        (run_folder() / f"{server}.ended").touch()
        lock.release()


TURNS = Turns()


def linger(target: Target) -> float:
    """How long a session may outlive its client on the target's server: with stream
    management, a dropped session is held for the profile's resume_timeout."""
    table = target.profile.data.get("stream_management", {})
    if not isinstance(table, dict) or table.get("available") is not True:
        return 0.0
    return float(table.get("resume_timeout", 0)) + LINGER_MARGIN


def server_key(target: Target) -> str:
    """Names a target's server for its turns: two targets on one service share it."""
    host, port = target.node.c2s
    return f"{host}-{port}"


def stop_shared(keep: bool = False) -> str | None:
    """The controller's end of a run: removes the workers' shared compose project (unless
    `keep`) and the run's folder; returns the project's name, None when there was none."""
    folder = Path(tempfile.gettempdir()) / f"xc-{run_id()}"
    state = folder / SHARED_STATE
    name = None
    if state.exists():
        name = str(json.loads(state.read_text()).get("project", shared_project_name()))
        if not keep:
            ComposeProject(name, progress=lambda m: log.info("%s", m)).down()
    shutil.rmtree(folder, ignore_errors=True)
    return name


SHARED_STATE = "lab.json"


@dataclass
class Lab:
    """The servers of one run: which targets are up and why the others are not."""

    progress: Progress
    project: ComposeProject | None = None
    ready: dict[str, Target] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)
    boot_seconds: dict[str, float] = field(default_factory=dict)
    # The project is the run's shared one: the controller removes it, not this process.
    shared: bool = False
    # The servers were started by another process of the run, which also reports on them.
    adopted: bool = False

    def start(self, targets: list[Target], name: str | None = None) -> None:
        managed = [t for t in targets if t.managed]
        for target in (t for t in targets if not t.managed):
            self._check_reachable(target)
        if managed:
            self._start_managed(managed, name or project_name())

    def start_shared(self, targets: list[Target], timeout: float = SHARED_START_TIMEOUT) -> None:
        """Starts the run's shared servers, or waits for the worker that does and reads
        where they listen."""
        self.shared = True
        folder = run_folder()
        state = folder / SHARED_STATE
        with locked(folder / "lab.lock", True, timeout, "the shared servers to start"):
            if state.exists():
                self._adopt(targets, json.loads(state.read_text()))
                return
            self.start(targets, shared_project_name())
            state.write_text(json.dumps(self._state(), indent=1))
        log.info("shared servers of the run written to %s", state)

    def stop(self) -> None:
        """Removes the compose project; safe to call twice (fixture and exit handler)."""
        if self.shared:
            return
        if self.project is not None and self.project.started:
            self.project.down()
            self.project.started.clear()

    def _state(self) -> dict[str, Any]:
        return {
            "project": self.project.name if self.project is not None else "",
            "ready": {
                name: [{"ports": n.ports, "container": n.container} for n in target.nodes]
                for name, target in self.ready.items()
            },
            "broken": self.broken,
            "boot_seconds": self.boot_seconds,
        }

    def _adopt(self, targets: list[Target], state: dict[str, Any]) -> None:
        """Takes the ports and containers another worker's start resolved."""
        self.adopted = True
        if state["project"]:
            self.project = ComposeProject(state["project"], progress=self.progress)
        self.boot_seconds.update(state["boot_seconds"])
        for target in targets:
            if target.name in state["broken"]:
                self.broken[target.name] = state["broken"][target.name]
            elif target.name in state["ready"]:
                for node, seen in zip(target.nodes, state["ready"][target.name], strict=True):
                    node.ports = {role: int(port) for role, port in seen["ports"].items()}
                    node.container = seen["container"]
                self.ready[target.name] = target
            else:
                self.broken[target.name] = (
                    f"target {target.name} is not among the servers this run started"
                )
        log.info("using the run's shared servers: %s", ", ".join(self.ready) or "none")

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

    def _start_managed(self, targets: list[Target], name: str) -> None:
        self.project = ComposeProject(name, progress=self.progress)
        startable = self._prepare_images(targets)
        # Single-node targets boot together; a cluster boots on its own, so that a join
        # that fails cannot take the other targets down with it.
        batches = [[t for t in startable if len(t.nodes) == 1]]
        batches += [[t] for t in startable if len(t.nodes) > 1]
        for batch in (b for b in batches if b):
            self._start_batch(batch)

    def _prepare_images(self, targets: list[Target]) -> list[Target]:
        """Builds or finds the images of all targets at once; when that fails, target by
        target, so that one broken image only breaks its own target."""
        assert self.project is not None
        try:
            self.project.prepare_images(sorted({s for t in targets for s in t.services}))
            return targets
        except (ComposeError, OSError, subprocess.SubprocessError) as exc:
            log.warning("preparing all images at once failed (%s); now target by target", exc)
        startable = []
        for target in targets:
            try:
                self.project.prepare_images(target.services)
                startable.append(target)
            except (ComposeError, OSError, subprocess.SubprocessError) as exc:
                self.broken[target.name] = str(exc)
        return startable

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
            self._resolve(target, startup.containers)

    def _resolve(self, target: Target, containers: dict[str, Container]) -> None:
        try:
            for node in target.nodes:
                assert node.service is not None
                if node.service not in containers:
                    raise ComposeError(f"service {node.service} has no container")
                container = containers[node.service]
                node.container = container.id
                node.ports = {
                    role: container.host_port(node.service, port)
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
