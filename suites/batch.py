"""Checks that run side by side: every selected check of a module, on every target, at once.

Most of a CSI or stream management check is waiting, for a stanza that is due or through
a quiet window in which nothing may arrive. One after another those waits add up to
minutes; side by side on one event loop they cost about as much as the slowest check. So
the first test of a batched module starts the checks of all the module's tests that the
run selected, for every target that is up, in the background (harness.background); each
test then takes the outcome of its own check: it passes, fails or skips as the check
did, with the check's stream transcript and log lines attached, and on a failure the
server's log of that time.

A batched module names the check of `test_<name>` `check_<name>`: an async function of
(target, users, sessions, want, **parameters) that observes and judges, as a test body
would, and is marked `batched`. It runs whole on one worker (conftest.ONE_WORKER_MODULES),
which starts its batch. While the checks run, the batch holds a shared turn on each
server (its tests take none of their own). With `quiet_start`, the checks set up while
nothing else uses the servers: the batch holds them alone until every check has called
`steady()` (or ended), then shares them. Timers are read against that setup: a server
busy with a burst of other logins can fire a timer early by the length of its busy loop
turn (seen with Prosody's connection timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import allure
import pytest

from clients.transcript import Transcript
from conftest import Sessions, Users
from harness.background import CHECK_SECONDS, Background
from harness.lab import TURNS, Lab, linger, server_key
from harness.targets import Target

log = logging.getLogger(__name__)

Check = Callable[..., Awaitable[Any]]
# The most checks of one batch that run at once. Setting up is the busy part of a check
# (registrations, logins); a burst of hundreds on 2 cores starves the servers and clients
# beyond the checks' bounded waits (seen with 8 targets). 32 covers the 24 CSI checks of
# the two reference targets, which then end with the slowest (7.5 s instead of 8.9 s with
# 16, in a second wave); on Prosody's epoll loop, 32 at once had made it deliver a stanza
# before it went back to inactive after a flush (2 of 6 runs), not seen on its select loop
# (README, Performance). A quiet start runs all its checks at once: they set up while
# nothing else runs.
SIDE_BY_SIDE = 32
# The longest a quiet start waits for its checks to set up before it shares the servers.
STEADY_TIMEOUT = 60.0
# The parameters pytest gives a batched test that are not arguments of its check.
NOT_ARGUMENTS = ("target_name",)
Want = Callable[[Target], Any]
# The case whose check is running; the tasks the check starts inherit it.
CURRENT: contextvars.ContextVar[Case | None] = contextvars.ContextVar("current", default=None)


LINE = "%(asctime)s %(levelname)s %(name)s %(message)s"


class BatchError(RuntimeError):
    """A batched module is not laid out as this file describes."""


@dataclass
class Case:
    """One test's check on one target, as the batch runs it."""

    key: str
    target: Target
    check: Check
    want: Want
    arguments: dict[str, Any]
    transcript: Transcript = field(default_factory=Transcript)
    lines: list[str] = field(default_factory=list)
    measured: list[tuple[str, str]] = field(default_factory=list)
    started: float = 0.0
    seconds: float | None = None
    steady: threading.Event = field(default_factory=threading.Event)

    @property
    def stack(self) -> str:
        return str(self.arguments.get("stack", "raw"))


@dataclass
class Selected:
    """A test the run selected, on a target that is up."""

    item: pytest.Item
    target: Target
    arguments: dict[str, Any]

    @property
    def name(self) -> str:
        return str(getattr(self.item, "originalname", self.item.name))


class CaseLines(logging.Handler):
    """Copies each record logged inside a case's tasks to that case's lines."""

    def emit(self, record: logging.LogRecord) -> None:
        case = CURRENT.get()
        if case is not None:
            case.lines.append(self.format(record))


def steady() -> None:
    """Tells the batch that the running check has set up (no-op outside a batch)."""
    case = CURRENT.get()
    if case is not None:
        case.steady.set()


def measured(name: str, value: str) -> bool:
    """Keeps a measured value for the report of the running case; False outside a batch
    (the report is then written at once, in the test's own thread)."""
    case = CURRENT.get()
    if case is None:
        return False
    case.measured.append((name, value))
    return True


def check_of(module: ModuleType, test_name: str) -> Check:
    name = "check_" + test_name.removeprefix("test_")
    check = getattr(module, name, None)
    if check is None:
        raise BatchError(f"{module.__name__}: {test_name} is batched but {name} is missing")
    return check  # type: ignore[no-any-return]


def selected(module: ModuleType, items: list[pytest.Item], lab: Lab) -> list[Selected]:
    """The run's selected tests of `module` on targets that are up, with their parameters
    other than the target."""
    chosen = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        if getattr(item, "module", None) is not module or callspec is None:
            continue
        params = dict(callspec.params)
        target = lab.ready.get(params.get("target_name", ""))
        if target is not None:
            arguments = {k: v for k, v in params.items() if k not in NOT_ARGUMENTS}
            chosen.append(Selected(item, target, arguments))
    return chosen


def cases_of(module: ModuleType, items: list[pytest.Item], lab: Lab, want: Want) -> list[Case]:
    """One case per selected test of `module`, its check `check_<name>` judging against
    `want` of the target."""
    return [
        Case(s.item.nodeid, s.target, check_of(module, s.name), want, s.arguments)
        for s in selected(module, items, lab)
    ]


def run_batch(
    name: str,
    module: str,
    want: Want,
    bound: float | Callable[[Target], float],
    lab: Lab,
    request: pytest.FixtureRequest,
    quiet_start: bool = False,
) -> Iterator[Batch]:
    """The body of a batched module's session fixture: the batch of the selected tests of
    `module` (a module name), started; closed at the end of the run, also after a failed
    start."""
    cases = cases_of(sys.modules[module], request.session.items, lab, want)
    batch = Batch(name, cases, bound, lab, quiet_start)
    try:
        yield batch.start()
    finally:
        batch.close()


class Batch:
    """The checks of one module, running side by side in a background event loop."""

    def __init__(
        self,
        name: str,
        cases: list[Case],
        bound: float | Callable[[Target], float],
        lab: Lab,
        quiet_start: bool = False,
    ) -> None:
        self.name = name
        self.quiet_start = quiet_start
        self.cases = {case.key: case for case in cases}
        self.bound = bound
        self.lab = lab
        self.taken: set[str] = set()
        self.background = Background(f"batch-{name}")
        self.slots = asyncio.Semaphore(max(1, len(cases)) if quiet_start else SIDE_BY_SIDE)
        self.turns = contextlib.ExitStack()
        self.handler = CaseLines()
        self.handler.setFormatter(logging.Formatter(LINE))

    def start(self) -> Batch:
        """Starts every case at once; see the module's docstring for the servers' turns."""
        servers = self._servers()
        logging.getLogger().addHandler(self.handler)
        if self.quiet_start:
            # The watched connections outlive the lone turn: the sole-traffic tests go first.
            for server in servers:
                TURNS.after_other_lone_turns(server)
            with contextlib.ExitStack() as alone:
                for server, settle in servers.items():
                    alone.enter_context(TURNS.take(server, alone=True, settle=settle))
                self._submit()
                self._wait_steady()
        for server in servers:
            self.turns.enter_context(TURNS.take(server, alone=False))
        if not self.quiet_start:
            self._submit()
        return self

    def _servers(self) -> dict[str, float]:
        """The servers of the cases, each with how long its sessions may outlive a test."""
        servers: dict[str, float] = {}
        for case in self.cases.values():
            key = server_key(case.target)
            servers[key] = max(servers.get(key, 0.0), linger(case.target))
        return dict(sorted(servers.items()))

    def _submit(self) -> None:
        for case in self.cases.values():
            self.background.submit(case.key, self._run(case))
        targets = sorted({case.target.name for case in self.cases.values()})
        log.info(
            "%s: %d checks started side by side on %s",
            self.name,
            len(self.cases),
            ", ".join(targets) or "no target",
        )

    def _wait_steady(self) -> None:
        deadline = time.monotonic() + STEADY_TIMEOUT
        for case in self.cases.values():
            if not case.steady.wait(timeout=max(0.0, deadline - time.monotonic())):
                log.warning(
                    "%s: %s not set up within %.0f s; sharing the servers anyway",
                    self.name,
                    case.key,
                    STEADY_TIMEOUT,
                )
                return
        log.info("%s: %d checks set up; the servers are shared now", self.name, len(self.cases))

    async def _run(self, case: Case) -> Any:
        async with self.slots:
            return await self._check(case)

    async def _check(self, case: Case) -> Any:
        CURRENT.set(case)
        case.started = time.time()
        sessions = Sessions(case.target, case.transcript, case.stack)
        try:
            want = case.want(case.target)
            users = Users(case.target)
            return await case.check(
                target=case.target, users=users, sessions=sessions, want=want, **case.arguments
            )
        finally:
            case.seconds = time.time() - case.started
            case.steady.set()
            await sessions.close_all()

    def outcome(self, request: pytest.FixtureRequest) -> Any:
        """Ends the test as its check ended: returns what the check returned, or raises
        what it raised."""
        return self.outcome_of(request.node.nodeid)

    def outcome_of(self, key: str) -> Any:
        case = self.cases.get(key)
        if case is None:
            raise BatchError(f"{self.name}: {key} was not started in the batch")
        allure.dynamic.parameter("target", case.target.name)
        allure.dynamic.parameter("stack", case.stack)
        try:
            bound = self.bound(case.target) if callable(self.bound) else self.bound
            return self.background.result(case.key, bound, f"the check of {case.key}")
        except (pytest.skip.Exception, KeyboardInterrupt):
            raise
        except BaseException:
            self._attach_server_log(case)
            raise
        finally:
            self._attach(case)
            self._taken(case.key)

    def _attach(self, case: Case) -> None:
        """The case's report: measured values, its own duration (the test's is only its
        wait for the outcome), transcript and log lines."""
        for name, value in case.measured:
            allure.dynamic.parameter(name, value, excluded=True)
        if case.seconds is not None:
            allure.dynamic.parameter("check took", f"{case.seconds:.2f} s", excluded=True)
        allure.attach(
            case.transcript.render(),
            name="stream transcript",
            attachment_type=allure.attachment_type.TEXT,
        )
        if case.lines:
            text = "\n".join(case.lines)
            allure.attach(text, name="check log", attachment_type=allure.attachment_type.TEXT)

    def _attach_server_log(self, case: Case) -> None:
        allure.attach(
            self.lab.logs_since(case.target, case.started - 1),
            name=f"{case.target.name} server log",
            attachment_type=allure.attachment_type.TEXT,
        )

    def _taken(self, key: str) -> None:
        """Once every case's outcome is taken, the turns on the servers are given back."""
        self.taken.add(key)
        if self.taken >= set(self.cases):
            self.turns.close()

    def close(self) -> None:
        self.background.close()
        self._write_seconds()
        logging.getLogger().removeHandler(self.handler)
        self.turns.close()

    def _write_seconds(self) -> None:
        path = os.environ.get(CHECK_SECONDS)
        ended = [c for c in self.cases.values() if c.seconds is not None]
        if not path or not ended:
            return
        with open(path, "a") as out:
            out.writelines(f"{c.seconds:.2f}s check {c.key}\n" for c in ended)
