"""The reporting plugin (harness/reporting.py), the behaviour catalog and the nightly
workflow.

The catalog checks keep harness/behaviours.toml complete: every test function of suites/
has an entry, every entry names a test that exists, and every profile key it names exists.
Two runs of a small suite in a separate pytest process show what a run leaves behind:
labelled Allure results, the run files, the matrix, also after an interrupted run.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from clients.inbox import StanzaTimeout
from clients.raw import ConnectFailed
from harness import reporting
from harness.behaviours import CatalogError, Link, load_catalog, suite_tests
from harness.judges import Mismatch, verdict
from harness.lab import Lab
from harness.matrix import ALLURE_GLOBALS, MARKDOWN_NAME
from harness.profiles import PROFILES, load_profile
from harness.reporting import CATEGORIES, categorize, executor, properties_text

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "nightly.yml"
RUN_TIMEOUT = 120.0


# -- the catalog ---------------------------------------------------------------------------


def test_every_suite_test_has_a_catalog_entry() -> None:
    catalog = load_catalog()

    missing = sorted(key for key in suite_tests() if key not in catalog.behaviours)

    assert not missing, "add these tests to harness/behaviours.toml:\n" + "\n".join(missing)


def test_every_catalog_entry_names_a_suite_test_that_exists() -> None:
    tests = suite_tests()

    stale = sorted(key for key in load_catalog().behaviours if key not in tests)

    assert not stale, f"harness/behaviours.toml names tests that no longer exist: {stale}"


def test_catalog_entries_use_the_area_of_their_suite_module() -> None:
    tests, catalog = suite_tests(), load_catalog()

    wrong = {
        key: (b.feature, tests[key])
        for key, b in catalog.behaviours.items()
        if key in tests
        and (
            tests[key] not in catalog.areas or catalog.areas[str(tests[key])].feature != b.feature
        )
    }

    assert not wrong, f"catalog feature differs from the module's area (or no [areas]): {wrong}"


def test_catalog_profile_keys_exist_in_some_profile() -> None:
    known = {
        f"{table}.{key}"
        for path in PROFILES.glob("*.toml")
        if path.name != "differences.toml"
        for table, content in load_profile(path.stem).data.items()
        if isinstance(content, dict)
        for key in content
    }

    unknown = {
        b.key: [k for k in b.profile_keys if k not in known]
        for b in load_catalog().behaviours.values()
        if any(k not in known for k in b.profile_keys)
    }

    assert not unknown, f"catalog entries name profile keys no profile has: {unknown}"


def test_catalog_links_point_to_the_specifications_and_the_61_docs() -> None:
    links: list[Link] = [
        link
        for b in load_catalog().behaviours.values()
        for link in (b.spec, b.docs)
        if link is not None
    ]
    allowed = (
        "https://www.rfc-editor.org/rfc/",
        "https://xmpp.org/extensions/",
        "https://esl.github.io/MongooseDocs/6.1.0/",
    )

    stray = sorted({link.url for link in links if not link.url.startswith(allowed)})

    assert links
    assert not stray, f"links outside the specifications and the 6.1.0 docs: {stray}"


def test_test_missing_from_the_catalog_gets_defaults_from_its_area_and_name() -> None:
    found = load_catalog().behaviour(
        "suites.test_presence", "test_offline_messages_arrive_after_presence", "presence"
    )

    assert (found.epic, found.feature, found.story, found.catalogued) == (
        "RFC 6121",
        "Presence",
        "Offline messages arrive after presence",
        False,
    )


def test_test_of_an_unknown_area_is_unclassified() -> None:
    found = load_catalog().behaviour("test_x", "test_y_works[a-b]", "no_such_area")

    assert (found.epic, found.feature, found.story) == ("Unclassified", "no such area", "Y works")


def test_catalog_entry_without_story_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "catalog.toml"
    broken.write_text(
        '[areas.presence]\nepic = "RFC 6121"\nfeature = "Presence"\n'
        '[behaviours."test_presence::test_x"]\narea = "presence"\n'
    )

    with pytest.raises(CatalogError, match="`story` must say what the behaviour is"):
        load_catalog.__wrapped__(broken)


# -- failure categories --------------------------------------------------------------------


def message_of(exc: BaseException) -> str:
    """The exception line as pytest and Allure write it, once the exception was raised."""
    try:
        raise exc
    except BaseException as raised:
        return pytest.ExceptionInfo.from_exception(raised).exconly()


def raised_mismatch() -> Mismatch:
    try:
        verdict(["unavailable_status_on_close = '': got <status/>"], "mongooseim-6.0.0")
    except Mismatch as exc:
        return exc
    raise AssertionError("verdict did not raise")


CASES = [
    (raised_mismatch(), "Behaviour differs from profile"),
    (ConnectFailed("alice: could not open TCP to 127.0.0.1:5222"), "Server unreachable"),
    (OSError("[Errno 111] Connection refused"), "Server unreachable"),
    (StanzaTimeout("bob: presence: nothing matching within 5 s"), "Timeout waiting for a stanza"),
    (KeyError("graphql"), "Harness error"),
]


@pytest.mark.parametrize(("exc", "category"), CASES, ids=[c for _, c in CASES])
def test_failure_is_put_in_its_category(exc: BaseException, category: str) -> None:
    assert categorize(message_of(exc)) == category


def test_unavailable_target_counts_as_unreachable() -> None:
    message = "Failed: target prosody is not available: service prosody exited (1)"

    assert categorize(message) == "Server unreachable"


@pytest.mark.parametrize(("exc", "category"), CASES[:4], ids=[c for _, c in CASES[:4]])
def test_category_pattern_matches_the_whole_message_as_allure_2_requires(
    exc: BaseException, category: str
) -> None:
    pattern = next(c.pattern for c in CATEGORIES if c.name == category)

    assert pattern is not None
    assert re.fullmatch(pattern, message_of(exc))


def test_categories_file_lists_every_category_for_failed_and_broken_results() -> None:
    entries = [c.as_allure() for c in CATEGORIES]

    assert [e["name"] for e in entries][-1] == "Harness error"
    assert all(e["matchedStatuses"] == ["failed", "broken"] for e in entries)
    assert "messageRegex" not in entries[-1]


# -- run files -----------------------------------------------------------------------------


def test_properties_escape_backslashes_and_line_breaks() -> None:
    text = properties_text({"target.x.status": "not started:\nC:\\path", "a key": "v"})

    assert text == "target.x.status=not started:\\nC:\\\\path\na_key=v\n"


def test_executor_names_the_github_run_that_ran_the_tests() -> None:
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "team/conformance",
        "GITHUB_RUN_ID": "42",
        "GITHUB_RUN_NUMBER": "7",
        "GITHUB_WORKFLOW": "nightly",
    }

    found = executor(env, 0.0)

    assert found["buildUrl"] == "https://github.com/team/conformance/actions/runs/42"
    assert (found["type"], found["buildName"], found["buildOrder"]) == ("github", "nightly #7", 7)


def test_executor_of_a_local_run_says_where_and_when() -> None:
    found = executor({}, 86400.0)

    assert found["type"] == "local"
    assert found["buildName"] == "run of 1970-01-02 00:00 UTC"


# -- a run of a small suite in its own pytest process --------------------------------------

SUITE = """
import pytest

from harness.judges import verdict

pytestmark = pytest.mark.area("presence")


def test_initial_presence_is_echoed_to_sender(target_name, stack, record_property):
    record_property("summary", f"{target_name} echoed")
    verdict(["self_echo = true: nothing came"] if target_name == "beta" else [], target_name)


def test_a_behaviour_nobody_catalogued(target_name, stack):
    if target_name == "beta" and {interrupt}:
        raise KeyboardInterrupt
"""

CONFTEST = """
def pytest_generate_tests(metafunc):
    if "target_name" in metafunc.fixturenames:
        metafunc.parametrize("target_name", ["alpha", "beta"], scope="session")
    if "stack" in metafunc.fixturenames:
        metafunc.parametrize("stack", ["raw"])
"""

HARNESS_TEST = """
import pytest


@pytest.mark.report_check
def test_report_check_runs_only_when_asked():
    pass


def test_harness_self_test():
    pass
"""


def run_small_suite(
    tmp_path: Path, interrupt: bool, *extra: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    (tmp_path / "suites").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nmarkers =\n    area(name): area\n    live: live\n"
    )
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "suites" / "test_presence.py").write_text(
        SUITE.replace("{interrupt}", str(interrupt))
    )
    (tmp_path / "tests" / "test_self.py").write_text(HARNESS_TEST)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "pytest", "-p", "harness.reporting", "-p", "no:cacheprovider"]
    argv += ["--strict-markers", "--alluredir=results", "--report-dir=reports", "suites", "tests"]
    argv += extra
    done = subprocess.run(
        argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT
    )
    return done, tmp_path


def results_of(folder: Path) -> dict[str, dict[str, Any]]:
    return {
        json.loads(p.read_text())["name"]: json.loads(p.read_text())
        for p in folder.glob("*-result.json")
    }


def labels(result: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for label in result["labels"]:
        found.setdefault(label["name"], []).append(label["value"])
    return found


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    done, folder = run_small_suite(tmp_path_factory.mktemp("run"), interrupt=False)
    assert done.returncode == 1, f"the small suite should fail once:\n{done.stdout[-3000:]}"
    return done.stdout, folder


def test_suite_result_carries_the_catalog_labels_and_links(finished_run: tuple[str, Path]) -> None:
    results = results_of(finished_run[1] / "results")

    found = results["test_initial_presence_is_echoed_to_sender[alpha-raw]"]

    assert {k: v for k, v in labels(found).items() if k in ("epic", "feature", "story")} == {
        "epic": ["RFC 6121"],
        "feature": ["Presence"],
        "story": ["Initial presence is echoed back to the sender's own session"],
    }
    assert labels(found)["severity"] == ["critical"]
    assert [link["url"] for link in found["links"]] == [
        "https://www.rfc-editor.org/rfc/rfc6121#section-4.2.2",
        "https://esl.github.io/MongooseDocs/6.1.0/modules/mod_presence/",
    ]


def test_target_and_stack_are_visible_parameters_and_target_name_is_hidden(
    finished_run: tuple[str, Path],
) -> None:
    results = results_of(finished_run[1] / "results")

    found = results["test_initial_presence_is_echoed_to_sender[beta-raw]"]

    assert [(p["name"], p["value"], p.get("mode")) for p in found["parameters"]] == [
        ("target_name", "'beta'", "hidden"),
        ("target", "'beta'", None),
        ("stack", "'raw'", None),
    ]


def test_each_target_has_its_own_history(finished_run: tuple[str, Path]) -> None:
    results = results_of(finished_run[1] / "results")

    ids = {
        results[f"test_initial_presence_is_echoed_to_sender[{t}-raw]"]["historyId"]
        for t in ("alpha", "beta")
    }

    assert len(ids) == 2


def test_harness_tests_are_grouped_apart_and_report_checks_wait_to_be_asked(
    finished_run: tuple[str, Path],
) -> None:
    results = results_of(finished_run[1] / "results")

    found = results["test_harness_self_test"]

    assert labels(found)["epic"] == ["Harness self-tests"]
    assert "test_report_check_runs_only_when_asked" not in results
    assert "1 deselected" in finished_run[0]


def test_run_writes_environment_executor_and_categories(finished_run: tuple[str, Path]) -> None:
    results = finished_run[1] / "results"

    environment = (results / "environment.properties").read_text()
    categories = json.loads((results / "categories.json").read_text())
    execution = json.loads((results / "executor.json").read_text())

    assert "run.exit_status=1 (tests failed)" in environment
    assert "library.slixmpp=" in environment
    assert [c["name"] for c in categories] == [c.name for c in CATEGORIES]
    assert execution["type"] in ("local", "github")


def test_run_writes_the_matrix_from_its_own_outcomes(finished_run: tuple[str, Path]) -> None:
    text = (finished_run[1] / "reports" / MARKDOWN_NAME).read_text()

    row = next(line for line in text.splitlines() if "test_initial_presence_is_echoed" in line)

    assert "| pass | fail (Behaviour differs from profile) |" in row
    assert "alpha: alpha echoed; beta: beta echoed" in row
    assert "A behaviour nobody catalogued" in text
    assert (finished_run[1] / "results" / ALLURE_GLOBALS).is_file()


def test_summary_at_the_end_counts_per_target_and_names_the_files(
    finished_run: tuple[str, Path],
) -> None:
    output = finished_run[0]

    assert "conformance report" in output
    assert "alpha: 2 passed" in output
    assert "beta: 1 failed, 1 passed" in output
    assert "failures by kind: Behaviour differs from profile 1" in output
    assert "upgrade-matrix.md" in output


def test_interrupted_run_still_writes_matrix_and_run_files(tmp_path: Path) -> None:
    done, folder = run_small_suite(tmp_path, interrupt=True)

    environment = (folder / "results" / "environment.properties").read_text()

    assert done.returncode == 2, done.stdout[-2000:]
    assert "run.exit_status=2 (interrupted)" in environment
    assert (folder / "reports" / MARKDOWN_NAME).is_file()


# -- the nightly workflow ------------------------------------------------------------------


def workflow() -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def steps_using(action: str) -> list[dict[str, Any]]:
    return [
        step
        for job in workflow()["jobs"].values()
        for step in job["steps"]
        if str(step.get("uses", "")).startswith(action)
    ]


def test_nightly_workflow_runs_on_a_schedule_both_make_targets() -> None:
    runs = workflow()["jobs"]["suite"]["strategy"]["matrix"]["include"]

    # PyYAML reads the `on:` key as the boolean True.
    assert workflow()[True]["schedule"][0]["cron"]
    assert sorted(r["command"] for r in runs) == ["make conformance", "make test"]


def test_nightly_workflow_carries_the_report_history_from_night_to_night() -> None:
    restored = steps_using("actions/cache/restore")
    saved = steps_using("actions/cache/save")

    assert [s["with"]["path"] for s in restored + saved] == ["reports/allure-history.jsonl"] * 2
    assert restored[0]["with"]["restore-keys"] == "allure-history-"


def test_nightly_workflow_keeps_results_and_report_as_artifacts() -> None:
    kept = " ".join(str(s["with"]["path"]) for s in steps_using("actions/upload-artifact"))

    assert "reports/allure-results/" in kept
    assert "reports/allure-report/" in kept


def actionlint() -> str:
    found = shutil.which("actionlint", path=str(Path(sys.executable).parent))
    assert found, "actionlint is missing from the virtual environment: run make setup"
    return found


def test_actionlint_passes_the_nightly_workflow() -> None:
    done = subprocess.run(
        [actionlint(), str(WORKFLOW)], capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        textwrap.dedent(
            """
            on: push
            jobs:
              run:
                runs-on: ubuntu-24.04
                steps:
                  - run: echo ${{ matrix.missing }}
            """
        )
    )

    done = subprocess.run([actionlint(), str(broken)], capture_output=True, text=True, timeout=60)

    assert done.returncode != 0
    assert "matrix" in done.stdout


def test_reporting_plugin_is_registered_by_the_project_conftest(
    pytestconfig: pytest.Config,
) -> None:
    assert pytestconfig.pluginmanager.has_plugin(reporting.PLUGIN_NAME)


def test_run_under_xdist_writes_the_matrix_from_the_workers_outcomes(tmp_path: Path) -> None:
    done, folder = run_small_suite(tmp_path, False, "-n", "2")

    text = (folder / "reports" / MARKDOWN_NAME).read_text()

    row = next(line for line in text.splitlines() if "test_initial_presence_is_echoed" in line)
    assert done.returncode == 1, done.stdout[-2000:]
    assert "| pass | fail (Behaviour differs from profile) |" in row
    assert "beta: 1 failed, 1 passed" in done.stdout


# -- asking a MongooseIM for its version ---------------------------------------------------

V610 = {"data": {"server": {"status": {"statusCode": "RUNNING", "version": "6.1.0"}}}}
V600 = {
    "errors": [
        {
            "path": ["ROOT", "server", "status", "version"],
            "message": "The query refers to a field which is not known",
            "extensions": {"code": "unknown_field"},
        }
    ]
}


@pytest.fixture
def graphql_answering() -> Iterator[Callable[[dict[str, Any]], str]]:
    """A GraphQL endpoint on 127.0.0.1 that answers every POST with the body it is given."""
    answers: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            body = json.dumps(answers[-1]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def answer(body: dict[str, Any]) -> str:
        answers.append(body)
        return f"http://127.0.0.1:{server.server_port}/api/graphql"

    yield answer
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


def test_mongooseim_610_reports_its_version_over_graphql(
    graphql_answering: Callable[[dict[str, Any]], str],
) -> None:
    url = graphql_answering(V610)

    assert reporting.graphql_version(url, "admin", "secret") == "MongooseIM 6.1.0"


def test_mongooseim_600_without_a_version_field_is_said_so(
    graphql_answering: Callable[[dict[str, Any]], str],
) -> None:
    url = graphql_answering(V600)

    found = reporting.graphql_version(url, "admin", "secret")

    assert found.startswith("not reported: GraphQL server.status has no version field")


# -- which process asks the servers ------------------------------------------------------


def lab_set_up(reporter: reporting.Reporter, lab: Lab) -> None:
    """Runs the reporter's wrapper around the setup of the `lab` fixture, which gave `lab`."""
    wrapper = reporter.pytest_fixture_setup(
        fixturedef=SimpleNamespace(argname="lab"),  # type: ignore[arg-type]
        request=None,  # type: ignore[arg-type]
    )
    next(wrapper)
    with contextlib.suppress(StopIteration):
        wrapper.send(lab)


def test_servers_are_asked_for_versions_by_the_process_that_started_them_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[Lab] = []
    monkeypatch.setattr(reporting, "probe_lab", lambda lab: asked.append(lab) or {})
    reporter = reporting.Reporter(SimpleNamespace())  # type: ignore[arg-type]
    started, adopted = Lab(progress=print), Lab(progress=print, adopted=True)

    lab_set_up(reporter, adopted)
    lab_set_up(reporter, started)

    assert asked == [started]
