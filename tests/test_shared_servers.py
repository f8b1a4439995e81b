"""Sharing a run's servers between xdist workers: turns, the shared state, the scheduling.

Two `Turns` objects stand for two worker processes: flock(2) locks taken through two
open files conflict like those of two processes.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path

import pytest

import conftest
from harness.lab import OWNER_ENV, SHARED_STATE, Lab, LabError, Turns, claim_run, run_folder
from harness.targets import load_catalog, select

ROOT = Path(__file__).resolve().parent.parent
SERVER = "127.0.0.1-5222"


@pytest.fixture(autouse=True)
def own_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A run id and temporary folder of this test's own."""
    monkeypatch.setenv("XC_RUN_ID", f"test{time.monotonic_ns()}")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)


def hold(turns: Turns, alone: bool, entered: threading.Event, leave: threading.Event) -> None:
    with turns.take(SERVER, alone, timeout=10):
        entered.set()
        leave.wait(10)


def start_holding(turns: Turns, alone: bool) -> tuple[threading.Event, threading.Event]:
    entered, leave = threading.Event(), threading.Event()
    threading.Thread(target=hold, args=(turns, alone, entered, leave), daemon=True).start()
    assert entered.wait(5)
    return entered, leave


# Turns -----------------------------------------------------------------------------------------


def test_shared_turns_of_two_workers_run_together() -> None:
    first, second = Turns(), Turns()
    _, leave = start_holding(first, alone=False)

    with second.take(SERVER, alone=False, timeout=1):
        entered_meanwhile = True

    leave.set()
    assert entered_meanwhile


def test_lone_turn_waits_until_the_shared_ones_end() -> None:
    sharing, lone = Turns(), Turns()
    _, leave = start_holding(sharing, alone=False)
    threading.Timer(0.5, leave.set).start()
    started = time.monotonic()

    with lone.take(SERVER, alone=True, timeout=10):
        waited = time.monotonic() - started

    assert waited >= 0.4


def test_lone_turn_that_cannot_start_fails_naming_the_server() -> None:
    sharing, lone = Turns(), Turns()
    _, leave = start_holding(sharing, alone=False)

    with pytest.raises(LabError) as failure, lone.take(SERVER, alone=True, timeout=0.3):
        pass

    leave.set()
    assert f"waited 0.3 s for server {SERVER} to itself" in str(failure.value)


def test_waiting_lone_turn_goes_before_later_shared_turns() -> None:
    first, lone, later = Turns(), Turns(), Turns()
    _, leave_first = start_holding(first, alone=False)
    lone_entered, leave_lone = threading.Event(), threading.Event()
    threading.Thread(target=hold, args=(lone, True, lone_entered, leave_lone), daemon=True).start()
    time.sleep(0.3)  # the lone turn now holds the gate and waits for the first one

    with pytest.raises(LabError), later.take(SERVER, alone=False, timeout=0.3):
        pass
    leave_first.set()

    assert lone_entered.wait(5)
    leave_lone.set()


def test_shared_turn_inside_a_shared_turn_of_the_same_worker_does_not_queue() -> None:
    worker, lone = Turns(), Turns()
    lone_entered, leave_lone = threading.Event(), threading.Event()

    with worker.take(SERVER, alone=False, timeout=1):
        threading.Thread(
            target=hold, args=(lone, True, lone_entered, leave_lone), daemon=True
        ).start()
        time.sleep(0.3)  # the lone turn holds the gate now
        with worker.take(SERVER, alone=False, timeout=1):
            nested = True

    assert nested
    assert lone_entered.wait(5)
    leave_lone.set()


def test_lone_turn_inside_a_shared_one_of_the_same_worker_is_refused() -> None:
    worker = Turns()

    with (
        worker.take(SERVER, alone=False, timeout=1),
        pytest.raises(LabError) as failure,
        worker.take(SERVER, alone=True, timeout=1),
    ):
        pass

    assert "alone while this process shares it" in str(failure.value)


# Run ids -------------------------------------------------------------------------------------


def test_run_id_given_by_a_script_is_kept_by_the_process_that_claims_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XC_RUN_ID", "stab1")
    monkeypatch.delenv(OWNER_ENV, raising=False)

    claimed = claim_run(worker=False)

    assert claimed == "stab1"
    assert os.environ[OWNER_ENV] == str(os.getpid())


def test_worker_keeps_the_run_id_of_its_controller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XC_RUN_ID", "ctrl1")
    monkeypatch.setenv(OWNER_ENV, "1")

    claimed = claim_run(worker=True)

    assert claimed == "ctrl1"


def test_pytest_started_by_a_test_of_a_run_gets_a_run_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XC_RUN_ID", "parent1")
    monkeypatch.setenv(OWNER_ENV, "1")

    claimed = claim_run(worker=False)

    assert claimed != "parent1"
    assert os.environ[OWNER_ENV] == str(os.getpid())


# Shared state ----------------------------------------------------------------------------------


def test_worker_adopts_the_ports_and_containers_another_worker_started() -> None:
    targets = select(load_catalog(), "reference")
    state = {
        "project": "",
        "ready": {"prosody": [{"ports": {"c2s": 40001, "http": 40002}, "container": "c1"}]},
        "broken": {"ejabberd": "service ejabberd exited (exited)"},
        "boot_seconds": {"prosody": 3.5},
    }
    (run_folder() / SHARED_STATE).write_text(json.dumps(state))
    lab = Lab(progress=lambda _m: None)

    lab.start_shared(targets, timeout=5)

    assert lab.ready["prosody"].node.ports == {"c2s": 40001, "http": 40002}
    assert lab.ready["prosody"].node.container == "c1"
    assert lab.broken == {"ejabberd": "service ejabberd exited (exited)"}
    assert lab.boot_seconds == {"prosody": 3.5}


def test_shared_servers_are_not_stopped_by_a_worker() -> None:
    (run_folder() / SHARED_STATE).write_text(
        json.dumps({"project": "", "ready": {}, "broken": {}, "boot_seconds": {}})
    )
    lab = Lab(progress=lambda _m: None)
    lab.start_shared([], timeout=5)

    lab.stop()

    assert lab.shared
    assert (run_folder() / SHARED_STATE).exists()


def test_target_missing_from_the_shared_state_is_broken_with_the_reason() -> None:
    targets = select(load_catalog(), "prosody")
    (run_folder() / SHARED_STATE).write_text(
        json.dumps({"project": "", "ready": {}, "broken": {}, "boot_seconds": {}})
    )
    lab = Lab(progress=lambda _m: None)

    lab.start_shared(targets, timeout=5)

    assert lab.broken == {"prosody": "target prosody is not among the servers this run started"}


# Scheduling ------------------------------------------------------------------------------------


def test_every_module_with_module_scoped_fixtures_runs_on_one_worker() -> None:
    stateful = {
        str(path.relative_to(ROOT))
        for folder in ("suites", "tests")
        for path in sorted((ROOT / folder).glob("test_*.py"))
        if re.search(r"scope\s*=\s*[\"']module[\"']", path.read_text())
    }

    assert stateful == set(conftest.ONE_WORKER_MODULES)


def test_one_worker_modules_are_one_unit_and_other_tests_one_unit_each() -> None:
    scheduler = conftest.StatefulModulesTogether.__new__(conftest.StatefulModulesTogether)

    split = scheduler._split_scope

    assert split("suites/test_state_timeout.py::test_a[prosody]") == "suites/test_state_timeout.py"
    assert split("suites/test_csi.py::test_b[prosody-chat]") == (
        "suites/test_csi.py::test_b[prosody-chat]"
    )
