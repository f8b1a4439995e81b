"""Sharing a run's servers between xdist workers: turns, the shared state, the scheduling.

Two `Turns` objects stand for two worker processes: flock(2) locks taken through two
open files conflict like those of two processes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import conftest
from harness import compose
from harness.compose import ComposeError, Container, containers_of, states_of
from harness.lab import (
    LINGER_MARGIN,
    OWNER_ENV,
    SHARED_STATE,
    Lab,
    LabError,
    Turns,
    claim_run,
    linger,
    run_folder,
)
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


def test_lone_turn_waits_for_sessions_held_after_the_last_shared_turn() -> None:
    sharing, lone = Turns(), Turns()
    with sharing.take(SERVER, alone=False, timeout=1):
        pass
    started = time.monotonic()

    with lone.take(SERVER, alone=True, timeout=5, settle=0.5):
        waited = time.monotonic() - started

    assert 0.4 <= waited < 2


def test_lone_turn_on_a_server_no_test_used_yet_does_not_wait() -> None:
    lone = Turns()
    started = time.monotonic()

    with lone.take(SERVER, alone=True, timeout=5, settle=30):
        waited = time.monotonic() - started

    assert waited < 1


def test_sessions_linger_for_the_resume_timeout_where_sm_is_on() -> None:
    catalog = load_catalog()

    assert linger(catalog["prosody"]) == 5 + LINGER_MARGIN
    assert linger(catalog["mongooseim-6.1.0-no-sm"]) == 0


def test_first_shared_turn_waits_for_the_lone_turns_the_run_expects() -> None:
    sharing, lone = Turns(), Turns()
    sharing.expect_lone({SERVER: 1})

    def lone_test() -> None:
        time.sleep(0.3)
        with lone.take(SERVER, alone=True, timeout=5):
            pass

    started = time.monotonic()
    threading.Thread(target=lone_test).start()
    with sharing.take(SERVER, alone=False, timeout=5):
        waited = time.monotonic() - started

    assert 0.25 <= waited < 2
    assert sharing.lone_turns_ended(SERVER) == 1


def test_shared_turn_goes_ahead_when_expected_lone_turns_never_come() -> None:
    sharing = Turns()
    sharing.expect_lone({SERVER: 2})
    started = time.monotonic()

    with sharing.take(SERVER, alone=False, timeout=0.3):
        waited = time.monotonic() - started

    assert 0.25 <= waited < 2


def test_last_lone_turn_waits_for_the_sole_traffic_turns_not_for_itself() -> None:
    quiet, sole = Turns(), Turns()
    quiet.expect_lone({SERVER: 2}, last={SERVER: 1})

    def sole_test() -> None:
        time.sleep(0.3)
        with sole.take(SERVER, alone=True, timeout=5):
            pass

    started = time.monotonic()
    threading.Thread(target=sole_test).start()
    quiet.after_other_lone_turns(SERVER, timeout=5)
    waited = time.monotonic() - started

    assert 0.25 <= waited < 2
    assert quiet.lone_turns_ended(SERVER) == 1


def test_lone_turn_that_fails_still_counts_as_ended() -> None:
    lone = Turns()

    with pytest.raises(RuntimeError), lone.take(SERVER, alone=True, timeout=5):
        raise RuntimeError("the test failed")

    assert lone.lone_turns_ended(SERVER) == 1


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
    assert lab.adopted


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


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["tests/", "suites/"], True),
        (["suites/test_csi.py::test_x[prosody]"], True),
        (["."], True),
        ([], True),
        (["tests/"], False),
        (["tests/test_bench.py"], False),
    ],
)
def test_controller_starts_the_servers_early_only_when_suites_run(
    args: list[str], expected: bool
) -> None:
    assert conftest.runs_suites(args, ROOT, ROOT) is expected


def test_every_module_with_module_scoped_fixtures_runs_on_one_worker() -> None:
    stateful = {
        str(path.relative_to(ROOT))
        for folder in ("suites", "tests")
        for path in sorted((ROOT / folder).glob("test_*.py"))
        if re.search(r"scope\s*=\s*[\"'](module|session)[\"']", path.read_text())
    }

    assert stateful == set(conftest.ONE_WORKER_MODULES)


def test_one_worker_modules_are_one_unit_and_other_tests_one_unit_each() -> None:
    scheduler = conftest.StatefulModulesTogether.__new__(conftest.StatefulModulesTogether)

    split = scheduler._split_scope

    assert split("suites/test_state_timeout.py::test_a[prosody]") == "suites/test_state_timeout.py"
    assert split("suites/test_metrics.py::test_b[prosody-chat]") == (
        "suites/test_metrics.py::test_b[prosody-chat]"
    )


def collected_in_run_order(modules: list[str]) -> tuple[list[str], str]:
    """The node ids pytest collects from the modules, in the order the run sorts them, and
    its whole output."""
    argv = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-o", "addopts="]
    done = subprocess.run(
        [*argv, "-p", "no:cacheprovider", *modules, "--targets=reference"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    nodeids = [line for line in done.stdout.splitlines() if "::" in line]
    return nodeids, done.stdout + done.stderr


def runs_of(kinds: list[str]) -> list[str]:
    """The first of every run of equal neighbours."""
    return [k for i, k in enumerate(kinds) if i == 0 or kinds[i - 1] != k]


def test_run_order_is_sole_traffic_quiet_starts_one_worker_modules_then_the_rest() -> None:
    modules = [
        "suites/test_compression.py",
        "suites/test_metrics.py",
        "suites/test_csi.py",
        "suites/test_state_timeout.py",
    ]

    nodeids, output = collected_in_run_order(modules)

    kinds = [
        "sole" if "session_counters" in nodeid else nodeid.split("::", 1)[0] for nodeid in nodeids
    ]
    assert runs_of(kinds) == [
        "sole",
        "suites/test_state_timeout.py",
        "suites/test_csi.py",
        "suites/test_compression.py",
        "suites/test_metrics.py",
    ], output
    assert kinds.count("sole") == 4


def test_one_worker_modules_are_handed_out_longest_first_not_by_name() -> None:
    modules = ["suites/test_presence.py", "suites/test_stream_management.py"]

    nodeids, output = collected_in_run_order(modules)

    firsts = runs_of([nodeid.split("::", 1)[0] for nodeid in nodeids])
    assert firsts == ["suites/test_stream_management.py", "suites/test_presence.py"], output


# Reading the containers ------------------------------------------------------------------------


def inspected(service: str, container: str, ports: dict[str, Any]) -> dict[str, Any]:
    return {
        "Id": container,
        "Config": {"Labels": {"com.docker.compose.service": service}},
        "NetworkSettings": {"Ports": ports},
    }


def test_containers_are_read_by_service_with_their_host_ports() -> None:
    entries = [
        inspected(
            "prosody",
            "c1",
            {
                "5222/tcp": [{"HostIp": "127.0.0.1", "HostPort": "40001"}],
                "5280/tcp": [{"HostIp": "127.0.0.1", "HostPort": "40002"}],
                "5269/tcp": None,
            },
        ),
        inspected("ejabberd", "c2", {}),
    ]

    found = containers_of(entries)

    assert found["prosody"] == Container("c1", {5222: 40001, 5280: 40002})
    assert found["ejabberd"] == Container("c2", {})


def test_port_that_is_not_published_is_a_clear_error() -> None:
    container = Container("c2", {5222: 40001})

    with pytest.raises(ComposeError) as failure:
        container.host_port("ejabberd", 5280)

    assert "service ejabberd: port 5280 is not published" in str(failure.value)


def test_states_are_matched_to_the_ids_asked_for_and_gone_ones_left_out() -> None:
    out = "aaaa1111 running healthy\nbbbb2222 exited\n"

    states = states_of(out, ["aaaa", "bbbb", "cccc"])

    assert states == {"aaaa": ("running", "healthy"), "bbbb": ("exited", "")}


def test_container_docker_did_not_answer_about_is_asked_again_not_called_gone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answer = subprocess.CompletedProcess(
        ["docker"], 1, stdout="aaaa1111 running healthy\n", stderr="Error: No such object: cccc"
    )
    monkeypatch.setattr(compose, "docker", lambda *args, **kwargs: answer)

    states = compose.ComposeProject("xc-test")._states(["aaaa", "bbbb", "cccc"])

    assert states == {
        "aaaa": ("running", "healthy"),
        "bbbb": ("unknown", ""),
        "cccc": ("gone", ""),
    }


# Building the local images ---------------------------------------------------------------------


@pytest.fixture
def images(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """Image ids as docker would report them, without docker; stamps under tmp_path."""
    ids = {"xmpp-conformance/prosody:0.12": "sha256:aaa", compose.BASE_IMAGE: "sha256:base"}
    monkeypatch.setattr(compose, "image_id", lambda image: ids.get(image, ""))
    monkeypatch.setattr(compose, "STAMPS", tmp_path / "stamps")
    return ids


def built_stamp(tmp_path: Path) -> compose.BuildStamp:
    context = tmp_path / "prosody"
    context.mkdir(exist_ok=True)
    (context / "Dockerfile").write_text("FROM base\n")
    os.utime(context / "Dockerfile", (time.time() - 60, time.time() - 60))
    stamp = compose.BuildStamp("prosody", context, "xmpp-conformance/prosody:0.12")
    stamp.write()
    return stamp


def test_image_built_from_unchanged_sources_is_current(
    images: dict[str, str], tmp_path: Path
) -> None:
    stamp = built_stamp(tmp_path)

    assert stamp.current()


def test_image_is_built_again_when_a_source_file_is_newer(
    images: dict[str, str], tmp_path: Path
) -> None:
    stamp = built_stamp(tmp_path)

    (stamp.context / "prosody.cfg.lua").write_text("-- changed\n")
    os.utime(stamp.context / "prosody.cfg.lua", (time.time() + 5, time.time() + 5))

    assert not stamp.current()


@pytest.mark.parametrize("image", ["xmpp-conformance/prosody:0.12", compose.BASE_IMAGE])
def test_image_is_built_again_when_it_or_its_base_changed(
    images: dict[str, str], tmp_path: Path, image: str
) -> None:
    stamp = built_stamp(tmp_path)

    images[image] = "sha256:other"

    assert not stamp.current()


def test_image_without_a_recorded_build_is_built(images: dict[str, str], tmp_path: Path) -> None:
    stamp = compose.BuildStamp("ejabberd", tmp_path, "xmpp-conformance/ejabberd:23.01")

    assert not stamp.current()


def test_suite_processes_run_below_the_servers_cpu_priority() -> None:
    # pytest_configure of this very process lowered it.
    assert os.nice(0) >= conftest.NICENESS
