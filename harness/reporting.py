"""Reporting plugin: makes a run readable by the people who review it the next morning.

Registered from conftest.py (`pytest_plugins = ["harness.reporting"]`). It

- labels every test for Allure from the behaviour catalog (harness/behaviours.toml): epic
  (the specification), feature (the area), story (the behaviour), severity, links to the
  specification section and to the MongooseIM documentation, and a tag when the profile
  keys the behaviour depends on change between MongooseIM 6.0.0 and 6.1.0;
- makes `target` and `stack` visible parameters that stay in the Allure history id;
- asks the servers of the run for their images and versions while they are up;
- collects how every test ended and, at the end of the run (also a failed or interrupted
  one), writes the upgrade matrix (Markdown, HTML, and global attachments of the Allure
  results), `outcomes.json`, and Allure's `environment.properties`, `executor.json` and
  `categories.json`;
- prints a short summary: results per target, failures by kind, where the files are.

Under pytest-xdist the workers label the tests and ask the servers; what the controller
needs travels on each test report (`conformance_item`, `conformance_servers`), and the
controller alone writes the files and the summary.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import platform
import re
import socket
import time
from collections.abc import Generator, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import allure
import httpx
import pytest

from harness import matrix as upgrade
from harness.behaviours import Behaviour, CatalogError, behaviour_key, load_catalog
from harness.compose import ComposeError, docker
from harness.matrix import Outcome
from harness.profiles import load_profile

log = logging.getLogger(__name__)

# The conformance suite: test modules in this folder of the rootdir; the rest are the
# harness's own tests.
SUITES_FOLDER = "suites"
LIBRARIES = ("slixmpp", "aioxmpp", "pytest", "pytest-asyncio", "allure-pytest")
PROBE_TIMEOUT = 10.0
PLUGIN_NAME = "conformance-reporter"
# allure-pytest ships no type hints: its decorators are used through this untyped view.
ALLURE = cast(Any, allure)


@dataclass(frozen=True)
class Category:
    """A kind of failure: an entry of Allure's categories.json, and of the run summary."""

    name: str
    description: str
    pattern: str | None

    def matches(self, message: str) -> bool:
        return self.pattern is None or re.search(self.pattern, message) is not None

    def as_allure(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "matchedStatuses": ["failed", "broken"],
        }
        if self.pattern is not None:
            entry["messageRegex"] = self.pattern
        return entry


# In order: the first that matches names the failure. Each pattern matches the whole message
# (as Allure 2 requires) and also works where a match anywhere counts (Allure 3, and here).
CATEGORIES = (
    Category(
        "Behaviour differs from profile",
        "The server answered, and not as the target's profile says (harness.judges.Mismatch).",
        r"^([\w.]*\.)?Mismatch: behaviour differs from profile[\s\S]*",
    ),
    Category(
        "Server unreachable",
        "The target did not start, or did not accept the connection.",
        r"[\s\S]*(ConnectFailed|is not available|[Cc]onnection refused"
        r"|ConnectionRefusedError|could not open TCP)[\s\S]*",
    ),
    Category(
        "Timeout waiting for a stanza",
        "A bounded wait ended without the awaited stanza, or the stream closed meanwhile.",
        r"[\s\S]*(StanzaTimeout|ServerClosed)[\s\S]*",
    ),
    Category(
        "Harness error",
        "Anything else: a fault in the suite, the clients or the harness.",
        None,
    ),
)


def categorize(message: str) -> str:
    return next(c.name for c in CATEGORIES if c.matches(message))


@dataclass(frozen=True)
class ItemInfo:
    """Where a collected test belongs: its behaviour, target and client stack."""

    key: str
    target: str | None
    stack: str | None
    in_suite: bool


OUTCOME_RANK = {"failed": 0, "xpassed": 0, "skipped": 1, "xfailed": 1, "passed": 2}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance report")
    group.addoption(
        "--report-dir",
        default="reports",
        help="folder of the upgrade matrix and outcomes.json (default: reports/)",
    )
    group.addoption(
        "--report-check",
        action="store_true",
        help="run the checks of the generated HTML report (tests marked report_check)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "report_check: checks the generated HTML report; runs with --report-check"
    )
    config.pluginmanager.register(Reporter(config), PLUGIN_NAME)


# -- labels --------------------------------------------------------------------------------


def item_info(item: pytest.Item) -> ItemInfo:
    params: dict[str, Any] = getattr(getattr(item, "callspec", None), "params", {})
    module = getattr(getattr(item, "module", None), "__name__", item.path.stem)
    target, stack = params.get("target_name"), params.get("stack")
    return ItemInfo(
        key=behaviour_key(module, getattr(item, "originalname", item.name)),
        target=None if target is None else str(target),
        stack=None if stack is None else str(stack),
        in_suite=item.path.parent == item.config.rootpath / SUITES_FOLDER,
    )


def behaviour_of(item: pytest.Item, info: ItemInfo) -> Behaviour:
    area = item.get_closest_marker("area")
    module, function = info.key.split("::", 1)
    return load_catalog().behaviour(module, function, str(area.args[0]) if area else None)


def suite_marks(behaviour: Behaviour, changes: dict[str, str]) -> list[Any]:
    """The Allure marks of a suite test: labels, links and the upgrade tag."""
    marks = [
        ALLURE.epic(behaviour.epic),
        ALLURE.feature(behaviour.feature),
        ALLURE.story(behaviour.story),
        ALLURE.severity(behaviour.severity),
    ]
    for link in (behaviour.spec, behaviour.docs):
        if link is not None:
            marks.append(ALLURE.link(link.url, name=link.name))
    verdicts = sorted({changes[k] for k in behaviour.profile_keys if k in changes})
    marks += [ALLURE.tag(f"6.0.0 to 6.1.0: {verdict} change") for verdict in verdicts]
    return marks


def harness_marks(item: pytest.Item) -> list[Any]:
    """Tests of the harness itself are grouped apart from the conformance suite."""
    feature = item.path.stem.removeprefix("test_").replace("_", " ")
    return [ALLURE.epic("Harness self-tests"), ALLURE.feature(feature.capitalize())]


def upgrade_changes() -> dict[str, str]:
    """Profile key -> documented, undocumented or not yet assessed, for keys that differ."""
    old = load_profile(upgrade.OLD_PROFILE)
    new = load_profile(upgrade.NEW_PROFILE)
    notes = upgrade.load_notes()
    found = upgrade.compare_profiles(old, new, notes) + upgrade.upgrade_time_differences(notes)
    return {d.key: d.verdict for d in found}


# -- outcomes ------------------------------------------------------------------------------


def phase_outcome(report: pytest.TestReport) -> str | None:
    """What one phase says about the test; a failing setup or teardown fails it."""
    wasxfail = hasattr(report, "wasxfail")
    if report.failed:
        return "xpassed" if wasxfail else "failed"
    if report.skipped:
        return "xfailed" if wasxfail else "skipped"
    if report.when == "call":
        return "passed"
    return None


def failure_message(report: pytest.TestReport) -> str:
    """The exception line as Allure shows it (`module.Type: message`)."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    return str(report.longrepr or "")


@dataclass
class Seen:
    """The outcome of one test item so far, phase by phase."""

    outcome: str = "passed"
    message: str = ""
    properties: dict[str, str] = field(default_factory=dict)
    duration: float = 0.0

    @property
    def summary(self) -> str:
        """What the test recorded with `record_property`: a `summary` as it is, the rest
        as `name: value`."""
        return "; ".join(
            value if name == "summary" else f"{name}: {value}"
            for name, value in sorted(self.properties.items(), key=lambda p: p[0] != "summary")
        )

    def add(self, report: pytest.TestReport) -> None:
        self.duration += report.duration
        outcome = phase_outcome(report)
        if outcome is not None and OUTCOME_RANK[outcome] < OUTCOME_RANK[self.outcome]:
            self.outcome = outcome
            self.message = failure_message(report) if outcome in upgrade.FAILING else ""
        for name, value in report.user_properties:
            self.properties[str(name)] = str(value)


def to_outcome(nodeid: str, info: ItemInfo, seen: Seen) -> Outcome:
    failing = seen.outcome in upgrade.FAILING
    return Outcome(
        nodeid=nodeid,
        key=info.key,
        outcome=seen.outcome,
        target=info.target,
        stack=info.stack,
        category=categorize(seen.message) if failing else "",
        message=seen.message.splitlines()[0][:300] if seen.message else "",
        summary=seen.summary,
        duration=round(seen.duration, 3),
    )


# -- servers -------------------------------------------------------------------------------


def probe_lab(lab: Any) -> dict[str, dict[str, str]]:
    """Image and server version of every target the run started, asked while they run."""
    facts: dict[str, dict[str, str]] = {}
    started = time.monotonic()
    for name, target in lab.ready.items():
        values = {"status": "ready", "profile": target.profile.name}
        boots = [lab.boot_seconds[s] for s in target.services if s in lab.boot_seconds]
        if boots:
            values["healthy_after_s"] = f"{max(boots):.1f}"
        if target.node.container:
            values.update(image_facts(target.node.container))
        values["version"] = server_version(target)
        facts[name] = values
    for name, reason in lab.broken.items():
        facts[name] = {"status": f"not started: {reason.splitlines()[0][:200]}"}
    log.info("asked %d target(s) for versions in %.1f s", len(facts), time.monotonic() - started)
    return facts


def image_facts(container: str) -> dict[str, str]:
    fmt = "{{.Config.Image}}|{{.Image}}"
    try:
        shown = docker("inspect", "-f", fmt, container, timeout=PROBE_TIMEOUT).stdout.strip()
        name, image_id = shown.split("|", 1)
        digests = docker(
            "image", "inspect", "-f", "{{json .RepoDigests}}", image_id, timeout=PROBE_TIMEOUT
        ).stdout.strip()
        listed = json.loads(digests or "null") or []
    except (ComposeError, ValueError) as exc:
        return {"image": f"unknown ({exc})"}
    return {
        "image": name,
        "image_id": image_id,
        "digest": ", ".join(listed) if listed else "none (built locally)",
    }


def server_version(target: Any) -> str:
    """The version the server reports about itself, or why it cannot be had."""
    kind = target.admin.kind
    try:
        if kind == "mongooseim-graphql":
            url = target.node.url("graphql", "/api/graphql")
            return graphql_version(url, target.admin.username, target.admin.password)
        if target.node.container is None:
            return "unknown: no container of this run to ask"
        if kind == "prosodyctl":
            return prosody_version(target.node.container)
        if kind == "ejabberd-api":
            return ejabberd_version(target.node.container)
    except (ComposeError, httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        return f"unknown: {exc}"
    return f"unknown: no way to ask a {kind} server"


def graphql_version(url: str, username: str, password: str) -> str:
    query = {"query": "query { server { status { statusCode version } } }"}
    reply = httpx.post(url, json=query, auth=(username, password), timeout=PROBE_TIMEOUT)
    body = reply.json()
    errors = body.get("errors") or []
    if any("version" in json.dumps(e.get("path", "")) for e in errors):
        return "not reported: GraphQL server.status has no version field before 6.1.0"
    if errors:
        return f"unknown: GraphQL answered {errors}"
    return f"MongooseIM {body['data']['server']['status']['version']}"


def prosody_version(container: str) -> str:
    done = docker("exec", container, "prosodyctl", "about", timeout=PROBE_TIMEOUT, check=False)
    found = re.search(r"Prosody (\d[\w.+~-]*)", done.stdout + done.stderr)
    if found is None:
        raise ValueError(f"`prosodyctl about` printed no version: {done.stdout[:200]!r}")
    return f"Prosody {found.group(1)}"


def ejabberd_version(container: str) -> str:
    done = docker("exec", container, "ejabberdctl", "status", timeout=PROBE_TIMEOUT, check=False)
    found = re.search(r"ejabberd (\S+) is running", done.stdout)
    if found is None:
        raise ValueError(f"`ejabberdctl status` printed no version: {done.stdout[:200]!r}")
    return f"ejabberd {found.group(1)}"


# -- Allure run files ----------------------------------------------------------------------


def exit_meaning(status: int) -> str:
    meanings = {
        0: "all passed",
        1: "tests failed",
        2: "interrupted",
        3: "internal error",
        4: "usage error",
        5: "no tests collected",
    }
    return meanings.get(status, "unknown")


def installed_version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def properties_text(values: dict[str, str]) -> str:
    """Java properties: `key=value` lines, with backslashes and line breaks escaped."""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("\r", "").replace("\n", "\\n")

    def clean_key(key: str) -> str:
        return re.sub(r"[\s=:]", "_", escape(key))

    return "".join(f"{clean_key(k)}={escape(v)}\n" for k, v in values.items())


def executor(env: dict[str, str], started: float) -> dict[str, Any]:
    """Who ran the tests: the GitHub workflow run, or this machine."""
    if env.get("GITHUB_ACTIONS") == "true":
        base = f"{env.get('GITHUB_SERVER_URL', '')}/{env.get('GITHUB_REPOSITORY', '')}"
        number = env.get("GITHUB_RUN_NUMBER", "0")
        return {
            "name": "GitHub Actions",
            "type": "github",
            "buildName": f"{env.get('GITHUB_WORKFLOW', 'workflow')} #{number}",
            "buildOrder": int(number) if number.isdigit() else 0,
            "buildUrl": f"{base}/actions/runs/{env.get('GITHUB_RUN_ID', '')}",
        }
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))
    where = "CI (.ci/run)" if env.get("CI") else "developer machine"
    return {
        "name": f"{where} {socket.gethostname()}",
        "type": "local",
        "buildName": f"run of {when}",
        "buildOrder": int(started),
    }


# -- the plugin ----------------------------------------------------------------------------


class Reporter:
    """The state and hooks of one run."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.started = time.time()
        self.items: dict[str, ItemInfo] = {}
        self.seen: dict[str, Seen] = {}
        self.servers: dict[str, dict[str, str]] = {}
        self.written: list[Path] = []
        self.problems: list[str] = []
        self.matrix: upgrade.Matrix | None = None
        self.servers_sent = False

    # collection

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self._deselect_report_checks(items)
        labelling = self.config.pluginmanager.hasplugin("allure_pytest")
        changes = self._changes()
        for item in items:
            info = item_info(item)
            self.items[item.nodeid] = info
            if labelling:
                for mark in self._marks(item, info, changes):
                    item.add_marker(mark)

    def _changes(self) -> dict[str, str]:
        try:
            return upgrade_changes()
        except (upgrade.MatrixError, ValueError) as exc:
            self.problems.append(f"upgrade differences not read: {exc}")
            return {}

    def _marks(self, item: pytest.Item, info: ItemInfo, changes: dict[str, str]) -> list[Any]:
        if not info.in_suite:
            return harness_marks(item)
        try:
            return suite_marks(behaviour_of(item, info), changes)
        except CatalogError as exc:
            if str(exc) not in self.problems:
                self.problems.append(str(exc))
            return harness_marks(item)

    def _deselect_report_checks(self, items: list[pytest.Item]) -> None:
        if self.config.getoption("--report-check"):
            return
        checks = [i for i in items if i.get_closest_marker("report_check")]
        if checks:
            items[:] = [i for i in items if i not in checks]
            self.config.hook.pytest_deselected(items=checks)

    # running

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """`target` and `stack` as visible parameters; the raw `target_name` is hidden.

        All three stay in the history id, so each target and stack has its own history.
        """
        info = self.items.get(item.nodeid)
        if info is None or info.target is None:
            return
        allure.dynamic.parameter("target_name", info.target, mode=allure.parameter_mode.HIDDEN)
        allure.dynamic.parameter("target", info.target)
        if info.stack is not None:
            allure.dynamic.parameter("stack", info.stack)

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> Generator[None, Any, Any]:
        result = yield
        if fixturedef.argname == "lab" and not result.adopted:
            self.probe(result)
        return result

    def probe(self, lab: Any) -> None:
        """Asks the servers a process started for their versions (the process that started
        them asks, once per run; under xdist that is usually the controller)."""
        try:
            self.servers.update(probe_lab(lab))
        except Exception as exc:  # facts for the report must not stop the run
            log.exception("asking the servers for their versions failed")
            self.problems.append(f"server versions not read: {type(exc).__name__}: {exc}")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[Any]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """Puts on the report what an xdist controller needs: the item and server facts."""
        report = yield
        info = self.items.get(item.nodeid)
        if info is not None:
            report.conformance_item = asdict(info)  # type: ignore[attr-defined]
        if self.servers and not self.servers_sent:
            report.conformance_servers = self.servers  # type: ignore[attr-defined]
            self.servers_sent = True
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seen.setdefault(report.nodeid, Seen()).add(report)
        carried = getattr(report, "conformance_item", None)
        if carried is not None and report.nodeid not in self.items:
            self.items[report.nodeid] = ItemInfo(**carried)
        self.servers.update(getattr(report, "conformance_servers", None) or {})

    def outcomes(self) -> list[Outcome]:
        return [
            to_outcome(nodeid, self.items[nodeid], seen)
            for nodeid, seen in self.seen.items()
            if nodeid in self.items and self.items[nodeid].in_suite
        ]

    # the end

    def tested_servers(self) -> bool:
        """Whether this process ran suite tests and writes the files (not an xdist worker)."""
        if self.config.option.collectonly or hasattr(self.config, "workerinput"):
            return False
        return any(i.in_suite and i.target is not None for i in self.items.values())

    def report_dir(self) -> Path:
        folder = Path(self.config.getoption("--report-dir"))
        return folder if folder.is_absolute() else self.config.rootpath / folder

    def allure_dir(self) -> Path | None:
        folder = getattr(self.config.option, "allure_report_dir", None)
        if not folder:
            return None
        path = Path(folder)
        return path if path.is_absolute() else self.config.invocation_params.dir / path

    def pytest_sessionfinish(self, exitstatus: int) -> None:
        if not self.tested_servers():
            log.info("no suite test was collected: matrix and Allure run files left alone")
            return
        for step in (self.write_matrix, self.write_run_files):
            try:
                step(int(exitstatus))
            except Exception as exc:  # a report problem must not hide the test results
                log.exception("writing the reports failed in %s", step.__name__)
                self.problems.append(f"{step.__name__}: {type(exc).__name__}: {exc}")

    def write_matrix(self, exitstatus: int) -> None:
        folder = self.report_dir()
        collected = self.outcomes()
        upgrade.save_outcomes(collected, folder / upgrade.OUTCOMES_NAME)
        self.written.append(folder / upgrade.OUTCOMES_NAME)
        self.matrix = upgrade.matrix_for_run(collected)
        self.written.extend(upgrade.write_matrix(self.matrix, folder))
        results = self.allure_dir()
        if results is not None:
            self.written.append(upgrade.attach_to_allure(self.matrix, results))

    def write_run_files(self, exitstatus: int) -> None:
        results = self.allure_dir()
        if results is None:
            return
        results.mkdir(parents=True, exist_ok=True)
        environment = results / "environment.properties"
        environment.write_text(properties_text(self.environment(exitstatus)))
        execution = results / "executor.json"
        execution.write_text(json.dumps(executor(dict(os.environ), self.started), indent=1))
        categories = results / "categories.json"
        categories.write_text(json.dumps([c.as_allure() for c in CATEGORIES], indent=1))
        self.written += [environment, execution, categories]

    def environment(self, exitstatus: int) -> dict[str, str]:
        targets = [t.name for t in getattr(self.config, "_xc_targets", [])]
        targets += sorted({i.target for i in self.items.values() if i.target} - set(targets))
        values = {
            "run.targets": ", ".join(targets) or "none",
            "run.stacks": str(self.config.getoption("--stacks", default="")),
            "run.started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started)),
            "run.exit_status": f"{exitstatus} ({exit_meaning(exitstatus)})",
            "python": platform.python_version(),
        }
        values.update({f"library.{n}": installed_version(n) for n in LIBRARIES})
        for name in targets:
            facts = self.servers.get(name, {"status": "not started by this run"})
            values.update({f"target.{name}.{k}": v for k, v in facts.items()})
        return values

    # the summary

    def summary_lines(self) -> list[str]:
        collected = self.outcomes()
        lines = []
        boots = getattr(getattr(self.config, "_xc_lab", None), "boot_seconds", {})
        if boots:
            shown = ", ".join(f"{s} {t:.1f} s" for s, t in boots.items())
            lines.append(f"servers healthy after: {shown}")
        for target, counts in per_target(collected).items():
            lines.append(f"{target}: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
        kinds = by_category(collected)
        if kinds:
            lines.append("failures by kind: " + ", ".join(f"{k} {n}" for k, n in kinds.items()))
        if self.matrix is not None:
            lines.append(upgrade.differences_line(self.matrix))
        lines += [f"written: {path}" for path in self.written]
        if self.allure_dir() is not None:
            lines.append("HTML report: `make report` builds it with history and serves it")
        junit = getattr(self.config.option, "xmlpath", None)
        if junit:
            lines.append(f"JUnit XML: {junit}")
        return lines + [f"REPORT PROBLEM: {p}" for p in self.problems]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.tested_servers() and not self.problems:
            return
        terminalreporter.write_sep("-", "conformance report")
        for line in self.summary_lines():
            terminalreporter.write_line(line)


def per_target(collected: Iterable[Outcome]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for o in collected:
        mine = counts.setdefault(o.target or "no target", {})
        mine[o.outcome] = mine.get(o.outcome, 0) + 1
    return counts


def by_category(collected: Iterable[Outcome]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for o in collected:
        if o.category:
            counts[o.category] = counts.get(o.category, 0) + 1
    return counts
