"""Fixtures of the conformance suite: targets, servers, users, clients and transcripts.

`--targets` picks what to test (a set such as `mongooseim` or `reference`, target names,
or `all`); `--targets-file` adds servers that are already running. The servers of the
catalog are started once per run with Docker Compose and removed at the end, also after a
failure or Ctrl-C, unless `--keep-servers` is given. Under pytest-xdist (`-n N`) the
workers share those servers: the controller starts them while the workers start (or, when
it did not, the first worker that needs them), and the controller removes them; a test
marked `sole_traffic` gets its server to itself, and a module with module-scoped state
runs whole on one worker.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import allure
import pytest
from xdist.scheduler import LoadScopeScheduling

from clients.admin import (
    Account,
    EjabberdAdmin,
    GraphQLAdmin,
    ProsodyctlAdmin,
    UserAdmin,
    fresh_name,
)
from clients.chat import STACKS, ChatClient, Endpoint, RawChat
from clients.raw import RawStream
from clients.slixmpp_chat import SlixmppChat
from clients.transcript import Transcript
from harness.cleanup import remove_run
from harness.lab import (
    SHARED_START_TIMEOUT,
    TURNS,
    Lab,
    LabError,
    claim_run,
    linger,
    run_id,
    server_key,
    stop_shared,
)
from harness.targets import Target, TargetError, load_catalog, select

pytest_plugins = ["harness.reporting"]
log = logging.getLogger(__name__)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance")
    group.addoption(
        "--targets",
        default="mongooseim",
        help="targets or sets to test: mongooseim (default), reference, all, "
        "or names separated by commas",
    )
    group.addoption(
        "--targets-file",
        default=None,
        help="TOML file of servers that are already running (see README)",
    )
    group.addoption(
        "--stacks",
        default=",".join(STACKS),
        help="client stacks for the presence and SM checks (slixmpp,aioxmpp)",
    )
    group.addoption(
        "--keep-servers",
        action="store_true",
        help="leave the compose project running after the run",
    )


def chosen_targets(config: pytest.Config) -> list[Target]:
    """The targets of this run: from --targets, plus those of --targets-file if given.

    With a targets file and no explicit --targets, only the file's servers are tested.
    """
    cached: list[Target] | None = getattr(config, "_xc_targets", None)
    if cached is not None:
        return cached
    args = config.invocation_params.args
    explicit = any(a == "--targets" or str(a).startswith("--targets=") for a in args)
    file = config.getoption("--targets-file")
    try:
        targets = list(load_catalog(Path(file)).values()) if file else []
        if explicit or not file:
            targets += select(load_catalog(), config.getoption("--targets"))
    except TargetError as exc:
        raise pytest.UsageError(str(exc)) from None
    config._xc_targets = targets  # type: ignore[attr-defined]
    return targets


def pytest_configure(config: pytest.Config) -> None:
    claim_run(hasattr(config, "workerinput"))  # before xdist starts the workers, which inherit it
    yield_cpu_to_servers()
    config.addinivalue_line(
        "markers",
        "sole_traffic: the test reads what every session on its server moves (gauges of "
        "sessions online), so no other test may use that server meanwhile",
    )
    config.addinivalue_line(
        "markers",
        "batched(quiet_start=False): the module's checks run side by side in one batch "
        "(suites/batch.py), which holds the server turns; with quiet_start they set up "
        "while nothing else uses the servers",
    )


# How much lower than the servers' the suite's own processes run (nice). The servers' timers
# are what many checks measure; on a machine whose cores the clients keep busy, a server
# that waits for the CPU fires them late (seen: Prosody returned to inactive over a second
# after a CSI flush, one busy loop turn after another).
NICENESS = 10


def yield_cpu_to_servers() -> None:
    """Lowers this process's CPU priority below the servers' (once: xdist workers inherit
    it from the controller)."""
    current = os.nice(0)
    if current < NICENESS:
        os.nice(NICENESS - current)
        log.info("suite processes run at nice %d, below the servers", NICENESS)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under xdist, the controller starts the shared servers while the workers start and
    collect (about as long as a boot on 2 cores); the workers then find them up. Any
    failure here is only logged: the first worker that needs the servers tries again and
    reports why they are not there."""
    config = session.config
    if hasattr(config, "workerinput") or not boots_early(config):
        return
    targets = chosen_targets(config)
    if not any(t.managed for t in targets):
        return
    boot = threading.Thread(
        target=boot_shared, args=(targets, config), name="xc-boot", daemon=True
    )
    config._xc_boot = boot  # type: ignore[attr-defined]
    boot.start()


def boots_early(config: pytest.Config) -> bool:
    """Whether the controller starts the servers itself: only with xdist workers and when
    the suites are among the paths run (the harness's own tests alone may need none)."""
    if not config.getoption("numprocesses", None) or config.option.collectonly:
        return False
    return runs_suites(config.args, config.rootpath, config.invocation_params.dir)


def runs_suites(args: list[str], root: Path, cwd: Path) -> bool:
    """Whether the paths pytest was given (none: the testpaths) hold a suite module."""
    suites = root / "suites"
    paths = [(cwd / str(a).split("::", 1)[0]).resolve() for a in args] or [suites]
    return any(p.is_relative_to(suites) or suites.is_relative_to(p) for p in paths)


def boot_shared(targets: list[Target], config: pytest.Config) -> None:
    """Starts the shared servers; then asks them for their versions for the report, once
    for the run, while the workers already test (the workers take the servers as started
    and do not ask)."""
    started = time.monotonic()
    lab = Lab(progress=lambda message: log.info("%s", message))
    try:
        lab.start_shared(targets)
    except (LabError, OSError) as exc:
        log.warning("servers not started before the workers: %s", exc)
        return
    log.info("servers started before the workers in %.1f s", time.monotonic() - started)
    # Imported here: pytest loads it as a plugin first (pytest_plugins) and rewrites it.
    from harness.reporting import PLUGIN_NAME

    reporter = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if reporter is not None and not lab.adopted:
        reporter.probe(lab)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """The report waits for the controller's boot, which also reads the servers' versions."""
    boot: threading.Thread | None = getattr(session.config, "_xc_boot", None)
    if boot is not None:
        boot.join(timeout=SHARED_START_TIMEOUT)


def pytest_unconfigure(config: pytest.Config) -> None:
    """The controller's last word: nothing of this run may outlive it (a killed worker
    cannot tear down its own compose project). The workers' shared project is removed
    here, or named when --keep-servers keeps it."""
    if hasattr(config, "workerinput") or shutil.which("docker") is None:
        return
    boot: threading.Thread | None = getattr(config, "_xc_boot", None)
    if boot is not None:
        # A run stopped during the boot: let it finish, so that what it starts is removed.
        boot.join(timeout=SHARED_START_TIMEOUT)
    keep = bool(config.getoption("--keep-servers", False))
    shared = stop_shared(keep)
    if keep:
        if shared is not None:
            log.warning("servers kept: compose project %s", shared)
        return
    for name in remove_run(run_id()):
        log.warning("%s was left behind and is now removed", name)


# Test modules that keep state in module- or session-scoped fixtures: the idle watches of a
# target, the batches of checks (suites/batch.py), the pools of config trials, the
# cluster rehearsal (its last test splits the cluster), a nested pytest run whose results
# several tests read. Under xdist each runs whole on one worker, and they are handed out
# in this order: the suites' two longest (CSI, stream management) right after the
# idle-connection batch, so that the last to end starts early (README, Performance);
# tests/test_shared_servers.py keeps this list complete.
ONE_WORKER_MODULES = (
    "suites/test_state_timeout.py",
    "suites/test_csi.py",
    "suites/test_stream_management.py",
    "suites/test_presence.py",
    "suites/test_config_migration.py",
    "suites/test_compression.py",
    "suites/test_pre_session_limits.py",
    "suites/test_mixed_cluster.py",
    "tests/test_timeout_checks_can_fail.py",
    "tests/test_config_checks_can_fail.py",
    "tests/test_reporting.py",
    "tests/test_report_in_browser.py",
)


class StatefulModulesTogether(LoadScopeScheduling):  # type: ignore[misc]
    """xdist's `load`, except that a module of ONE_WORKER_MODULES is one unit of work."""

    def _split_scope(self, nodeid: str) -> str:
        module = nodeid.split("::", 1)[0]
        return module if module in ONE_WORKER_MODULES else nodeid


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`-n N` (xdist's `load`) schedules tests one by one, and the modules of
    ONE_WORKER_MODULES whole, in the order of run_order; an explicit other `--dist` mode
    is left as it is."""
    if config.getvalue("dist") != "load":
        return None
    # Hand out the units in collection order (see run_order), not largest first.
    config.option.loadscopereorder = False
    return StatefulModulesTogether(config, log)


def run_order(item: pytest.Item) -> tuple[int, int]:
    """Where a test goes in the run: `sole_traffic` tests first, while no earlier test has
    left a session behind that its server still holds (a lone turn would otherwise wait
    out the resume timeout of such sessions, see harness.lab.Turns); then the batches
    with a quiet start (suites/batch.py), which take the servers alone for a moment too;
    then the other modules that run whole on one worker, the longest units, in the order
    of ONE_WORKER_MODULES; then everything else.

    Shared turns wait for the run's lone turns to end, so a lone turn must never sit
    behind a unit that takes a shared one. xdist hands every worker its first two units
    in this order, so the lone turns always come first on whichever worker has them."""
    module = item.nodeid.split("::", 1)[0]
    if item.get_closest_marker("sole_traffic") is not None:
        return (0, 0)
    batched = item.get_closest_marker("batched")
    if batched is not None and batched.kwargs.get("quiet_start"):
        return (1, 0)
    if module in ONE_WORKER_MODULES:
        return (2, ONE_WORKER_MODULES.index(module))
    return (3, 0)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=run_order)


def targets_for(metafunc: pytest.Metafunc) -> list[Target]:
    """The chosen targets a suite module runs on. Targets of the `cluster` set (several
    nodes, a profile with only a [cluster] table) serve the module marked
    `area("cluster")` alone; that module skips the single-node targets itself."""
    chosen = chosen_targets(metafunc.config)
    marker = metafunc.definition.get_closest_marker("area")
    rehearsal = marker is not None and marker.args[:1] == ("cluster",)
    return [t for t in chosen if rehearsal or "cluster" not in t.sets]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "target_name" in metafunc.fixturenames:
        names = [t.name for t in targets_for(metafunc)]
        metafunc.parametrize("target_name", names, scope="session")
    if "stack" in metafunc.fixturenames:
        stacks = [s.strip() for s in metafunc.config.getoption("--stacks").split(",") if s]
        unknown = [s for s in stacks if s not in STACKS]
        if unknown:
            raise pytest.UsageError(f"--stacks: unknown {unknown}; known: {list(STACKS)}")
        metafunc.parametrize("stack", stacks)


def _progress(config: pytest.Config) -> Callable[[str], None]:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")

    def say(message: str) -> None:
        log.info("%s", message)
        if reporter is None:
            return
        if capture is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line(f"[servers] {message}")
        else:
            reporter.write_line(f"[servers] {message}")

    return say


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """Starts every chosen target once per run; always removes them afterwards."""
    config = request.config
    lab = Lab(progress=_progress(config))
    keep = config.getoption("--keep-servers")
    if not keep:
        atexit.register(lab.stop)
    started = time.monotonic()
    if hasattr(config, "workerinput"):
        lab.start_shared(chosen_targets(config))
    else:
        lab.start(chosen_targets(config))
    lab.progress(
        f"{len(lab.ready)} target(s) ready in {time.monotonic() - started:.1f} s"
        + (f"; not started: {', '.join(lab.broken)}" if lab.broken else "")
    )
    config._xc_lab = lab  # type: ignore[attr-defined]
    TURNS.expect_lone(*lone_turns(request.session.items, lab))
    yield lab
    if keep and lab.project is not None:
        lab.progress(f"servers kept: compose project {lab.project.name}")
    else:
        lab.stop()


def lone_turns(items: list[pytest.Item], lab: Lab) -> tuple[dict[str, int], dict[str, int]]:
    """How many lone turns each running server will see in the run: one per test marked
    `sole_traffic`, and one per batch with a quiet start (suites/batch.py) that has
    checks on it; and how many of them are those quiet starts, which come last."""
    counts: dict[str, int] = {}
    quiet_starts: set[tuple[str, str]] = set()
    for item in items:
        callspec = getattr(item, "callspec", None)
        name = callspec.params.get("target_name") if callspec is not None else None
        if name not in lab.ready:
            continue
        server = server_key(lab.ready[name])
        if item.get_closest_marker("sole_traffic") is not None:
            counts[server] = counts.get(server, 0) + 1
        batched = item.get_closest_marker("batched")
        if batched is not None and batched.kwargs.get("quiet_start"):
            quiet_starts.add((item.nodeid.split("::", 1)[0], server))
    last: dict[str, int] = {}
    for _module, server in quiet_starts:
        counts[server] = counts.get(server, 0) + 1
        last[server] = last.get(server, 0) + 1
    return counts, last


@pytest.fixture(autouse=True)
def server_turn(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test on a server takes a turn on it: shared, or alone for `sole_traffic` (once
    the sessions earlier tests left held for resumption have ended)."""
    if "target_name" not in request.fixturenames or request.node.get_closest_marker("batched"):
        # A batched test's check runs in its batch, which holds the turns (suites/batch.py).
        yield
        return
    target: Target = request.getfixturevalue("target")
    alone = request.node.get_closest_marker("sole_traffic") is not None
    with TURNS.take(server_key(target), alone, settle=linger(target)):
        yield


@pytest.fixture(scope="session")
def target(lab: Lab, target_name: str) -> Target:
    if target_name in lab.broken:
        reason = lab.broken[target_name]
        allure.attach(
            reason,
            name=f"{target_name} start failure",
            attachment_type=allure.attachment_type.TEXT,
        )
        pytest.fail(f"target {target_name} is not available: {reason}", pytrace=False)
    return lab.ready[target_name]


@pytest.fixture
def transcript(request: pytest.FixtureRequest) -> Iterator[Transcript]:
    """Every client of a test writes here; the report gets it, pass or fail."""
    record = Transcript()
    yield record
    text = record.render()
    allure.attach(text, name="stream transcript", attachment_type=allure.attachment_type.TEXT)
    request.node.stash[TRANSCRIPT] = text


TRANSCRIPT = pytest.StashKey[str]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[OUTCOME] = report.outcome
    return report


OUTCOME = pytest.StashKey[str]()


def admin_for(target: Target) -> UserAdmin:
    node = target.node
    if target.admin.kind == "mongooseim-graphql":
        return GraphQLAdmin(
            node.url("graphql", "/api/graphql"), target.admin.username, target.admin.password
        )
    if target.admin.kind == "prosodyctl":
        if node.container is None:
            raise TargetError(f"{target.name}: prosodyctl needs a container the run started")
        return ProsodyctlAdmin(node.container)
    return EjabberdAdmin(node.url("http"))


class Users:
    """Fresh accounts for one test, registered through the target's admin path."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.admin = admin_for(target)

    async def create(self, *roles: str) -> list[Account]:
        accounts = [
            Account(fresh_name(r), self.target.domain, f"pw-{fresh_name(r)}") for r in roles
        ]
        await self.admin.register(accounts)
        return accounts


@pytest.fixture
def users(target: Target) -> Users:
    return Users(target)


def login_of(stack: str) -> Callable[..., Awaitable[ChatClient]]:
    """The login of a client stack. aioxmpp is imported only when a test logs in with it:
    its import takes 0.2 s of CPU, in every process of a run that starts while the servers
    boot, and most processes never use it."""
    if stack == "aioxmpp":
        from clients.aioxmpp_chat import AioxmppChat

        return AioxmppChat.login
    logins: dict[str, Callable[..., Awaitable[ChatClient]]] = {
        "slixmpp": SlixmppChat.login,
        "raw": RawChat.login,
    }
    return logins[stack]


class Sessions:
    """Logs clients in on a chosen stack and closes whatever is still open afterwards."""

    def __init__(self, target: Target, transcript: Transcript, stack: str) -> None:
        self.target = target
        self.transcript = transcript
        self.stack = stack
        self.clients: list[ChatClient] = []
        self.streams: list[RawStream] = []

    def endpoint(self, node: int = 0) -> Endpoint:
        host, port = self.target.nodes[node].c2s
        return Endpoint(host, port, self.target.domain)

    async def login(
        self,
        name: str,
        account: Account,
        resource: str = "",
        stack: str | None = None,
        node: int = 0,
    ) -> ChatClient:
        chosen = stack or self.stack
        resource = resource or f"{name}-{chosen}"
        login = login_of(chosen)
        client = await login(name, self.endpoint(node), account, resource, self.transcript)
        self.clients.append(client)
        return client

    async def raw(self, name: str, node: int = 0) -> RawStream:
        """An unauthenticated raw connection for stream-level checks."""
        endpoint = self.endpoint(node)
        stream = await RawStream.connect(
            name, endpoint.host, endpoint.port, self.transcript, endpoint.domain
        )
        self.streams.append(stream)
        return stream

    async def close_all(self) -> None:
        for client in self.clients:
            await client.close()
        for stream in self.streams:
            await stream.aclose()


@pytest.fixture
async def sessions(
    target: Target, transcript: Transcript, request: pytest.FixtureRequest
) -> AsyncIterator[Sessions]:
    stack = request.getfixturevalue("stack") if "stack" in request.fixturenames else "raw"
    allure.dynamic.parameter("target", target.name)
    allure.dynamic.parameter("stack", stack)
    opened = Sessions(target, transcript, stack)
    started = time.time()
    yield opened
    await opened.close_all()
    if request.node.stash.get(OUTCOME, "") == "failed":
        lab: Lab = request.getfixturevalue("lab")
        allure.attach(
            lab.logs_since(target, started - 1),
            name=f"{target.name} server log",
            attachment_type=allure.attachment_type.TEXT,
        )
