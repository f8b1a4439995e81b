"""Docker Compose for the servers under test: v2 (`docker compose`) or v1 (`docker-compose`).

One compose project per run, with a unique name. Compose v1 has no `--wait` (and
`up -d --wait` there prints usage, exits 0 and starts nothing), so health is awaited here,
with a bound, for both versions. A service that exits or stays unhealthy is reported by
name with its last log lines.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
BASE_IMAGE = "xmpp-conformance/debian-base:bookworm"
BASE_SCRIPT = ROOT / "servers" / "base" / "build-base.sh"
ALL_PROFILES = ("mongooseim", "reference", "variants", "cluster")
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"

Progress = Callable[[str], None]


class ComposeError(RuntimeError):
    """Compose or Docker could not do what the run needs; the message says what and why."""


def compose_command() -> list[str]:
    """`docker compose` (v2) when the plugin exists, else Debian's `docker-compose` (v1)."""
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, text=True, timeout=20
        )
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise ComposeError(
        "neither `docker compose` (v2) nor `docker-compose` (v1) is installed; "
        "`make setup` installs Debian's docker-compose"
    )


def docker(
    *args: str, timeout: float = 60, check: bool = True
) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ComposeError(f"`docker {' '.join(args)}` did not finish in {timeout:g} s") from None
    if check and done.returncode != 0:
        raise ComposeError(f"`docker {' '.join(args)}` failed: {done.stderr.strip()[-800:]}")
    return done


# Where a build of a local image is recorded: the image's and its base's ids then.
STAMPS = ROOT / ".stamps" / "images"


@dataclass
class BuildStamp:
    """The last build of a service's image, so that an unchanged one is not built again.

    Current when the image and the base image have the ids recorded at that build and no
    file of the build context is newer than the record; anything else (a changed file, a
    checkout, an image removed or built by hand) builds again, and Docker's cache keeps
    that cheap."""

    service: str
    context: Path
    image: str

    @property
    def path(self) -> Path:
        return STAMPS / self.service

    def current(self) -> bool:
        if not self.path.is_file():
            return False
        if self.path.read_text().split() != [image_id(self.image), image_id(BASE_IMAGE)]:
            return False
        built = self.path.stat().st_mtime
        return all(f.stat().st_mtime < built for f in self.context.rglob("*") if f.is_file())

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(f"{image_id(self.image)} {image_id(BASE_IMAGE)}\n")


def image_id(image: str) -> str:
    """The image's id, "" when it is not present."""
    done = docker("image", "inspect", "-f", "{{.Id}}", image, check=False, timeout=30)
    return done.stdout.strip() if done.returncode == 0 else ""


def image_present(image: str) -> bool:
    return docker("image", "inspect", image, check=False, timeout=30).returncode == 0


@dataclass(frozen=True)
class Container:
    """A container of the project: its id and the host port of each published port."""

    id: str
    ports: dict[int, int]

    def host_port(self, service: str, container_port: int) -> int:
        try:
            return self.ports[container_port]
        except KeyError:
            raise ComposeError(
                f"service {service}: port {container_port} is not published ({self.ports})"
            ) from None


@dataclass
class Startup:
    """Seconds each service took to become healthy, why the others did not, and the
    project's containers as read once they were started (their ports are published then)."""

    ready: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    containers: dict[str, Container] = field(default_factory=dict)


@dataclass
class ComposeProject:
    """A compose project of this run: services started, their containers and ports."""

    name: str
    file: Path = COMPOSE_FILE
    progress: Progress = print
    command: list[str] = field(default_factory=compose_command)
    started: list[str] = field(default_factory=list)

    def run(self, *args: str, timeout: float = 600, check: bool = True) -> str:
        profiles = [arg for p in ALL_PROFILES for arg in ("--profile", p)]
        argv = [*self.command, "-p", self.name, "-f", str(self.file), *profiles, *args]
        log.debug("running %s", " ".join(argv))
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ComposeError(f"`{' '.join(args)}` did not finish in {timeout:g} s") from None
        if check and done.returncode != 0:
            raise ComposeError(
                f"compose `{' '.join(args)}` failed (exit {done.returncode}):\n"
                f"{done.stderr.strip()[-1500:]}"
            )
        return done.stdout

    def services(self) -> dict[str, dict[str, Any]]:
        with self.file.open() as handle:
            data = yaml.safe_load(handle)
        services: dict[str, dict[str, Any]] = data["services"]
        return services

    def prepare_images(self, services: Iterable[str]) -> None:
        """Builds local images (and their base) and checks that official ones exist."""
        spec = self.services()
        to_build = [s for s in services if "build" in spec[s]]
        for service in services:
            if service not in to_build:
                self._require_image(service, str(spec[service]["image"]))
        if not to_build:
            return
        if not image_present(BASE_IMAGE):
            self.progress(f"building base image {BASE_IMAGE} with debootstrap (about 1 min)")
            subprocess.run(["bash", str(BASE_SCRIPT), BASE_IMAGE], check=True, timeout=900)
        stamps = {
            s: BuildStamp(s, ROOT / str(spec[s]["build"]), str(spec[s]["image"])) for s in to_build
        }
        stale = [s for s in to_build if not stamps[s].current()]
        if not stale:
            self.progress(f"images of {', '.join(to_build)} are up to date with their sources")
            return
        started = time.monotonic()
        self.progress(f"building images for {', '.join(stale)}")
        self.run("build", *stale, timeout=1200)
        for service in stale:
            stamps[service].write()
        self.progress(f"images ready in {time.monotonic() - started:.1f} s")

    def _require_image(self, service: str, image: str) -> None:
        if image_present(image):
            return
        self.progress(f"pulling {image} for {service}")
        pulled = docker("pull", image, check=False, timeout=600)
        if pulled.returncode != 0:
            raise ComposeError(
                f"service {service}: image {image} is not present and could not be pulled "
                f"({pulled.stderr.strip()[-300:]}). On a machine without registry access, "
                f"load a saved image first: `make load-images IMAGES=<dir of .tar files>` "
                f"(runs `docker load -i` on each)."
            )

    def up(self, services: list[str], timeout: float = 180) -> Startup:
        """Starts the services together; waits for each to be healthy, with a bound."""
        started = time.monotonic()
        self.progress(f"starting {', '.join(services)} (compose project {self.name})")
        self.started.extend(s for s in services if s not in self.started)
        self.run("up", "-d", "--no-build", *services, timeout=600)
        return self.wait_healthy(services, started, timeout)

    def wait_healthy(self, services: list[str], started: float, timeout: float) -> Startup:
        startup = Startup(containers=self.containers())
        known = startup.containers
        pending = {s: known[s].id if s in known else self.container_id(s) for s in services}
        deadline = started + timeout
        while pending:
            states = self._states(list(pending.values()))
            for service, container in list(pending.items()):
                status, health = states.get(container, ("gone", ""))
                if status == "gone":
                    startup.failed[service] = f"service {service}: container {container} is gone"
                    del pending[service]
                elif status in ("exited", "dead"):
                    startup.failed[service] = self._failure(
                        service, container, f"exited ({status})"
                    )
                    del pending[service]
                elif status == "running" and health in ("healthy", ""):
                    startup.ready[service] = time.monotonic() - started
                    self.progress(f"{service} healthy after {startup.ready[service]:.1f} s")
                    del pending[service]
            if pending and time.monotonic() > deadline:
                for service, container in pending.items():
                    startup.failed[service] = self._failure(
                        service, container, f"not healthy after {timeout:g} s"
                    )
                break
            if pending:
                time.sleep(0.3)
        return startup

    def containers(self) -> dict[str, Container]:
        """The project's containers by service, their ids and published ports, read with
        one `docker ps` and one `docker inspect` (a compose call per service and port
        costs about half a second each with Compose v1)."""
        ids = docker(
            "ps", "-aq", "--no-trunc", "--filter", f"label={PROJECT_LABEL}={self.name}"
        ).stdout.split()
        if not ids:
            return {}
        try:
            return containers_of(json.loads(docker("inspect", *ids).stdout))
        except (ValueError, KeyError) as exc:
            raise ComposeError(f"containers not readable: {exc}") from None

    def container_id(self, service: str) -> str:
        container = self.run("ps", "-q", service, timeout=60).strip()
        if not container:
            raise ComposeError(f"service {service} has no container in project {self.name}")
        return container.splitlines()[0]

    def logs(self, service: str, tail: int | None = None) -> str:
        args = ["logs", "--no-color"]
        if tail is not None:
            args += ["--tail", str(tail)]
        return self.run(*args, service, timeout=60, check=False)

    def down(self) -> None:
        """Removes the project. The servers are the run's own and nothing of theirs is
        kept, so their containers are killed at once instead of stopped (a stop waits for
        ejabberd up to the timeout), then their networks and volumes go, found by the
        project label both Compose versions set. Only when something is still there does
        `down` run (about half a second of Compose's own start)."""
        self.progress(f"removing compose project {self.name}")
        removed = all(
            self._remove_labelled(kind, remove)
            for kind, remove in (
                ("container", ("rm", "-f", "-v")),
                ("network", ("network", "rm")),
                ("volume", ("volume", "rm", "-f")),
            )
        )
        if not removed:
            self.run("down", "-v", "-t", "2", "--remove-orphans", timeout=300, check=False)

    def _remove_labelled(self, kind: str, remove: tuple[str, ...]) -> bool:
        """Removes the project's objects of one kind; whether none is left."""
        listing = ("ps", "-aq") if kind == "container" else (kind, "ls", "-q")
        label = f"label=com.docker.compose.project={self.name}"
        listed = docker(*listing, "--filter", label, check=False, timeout=60)
        ids = listed.stdout.split()
        if listed.returncode != 0:
            return False
        if not ids:
            return True
        done = docker(*remove, *ids, check=False, timeout=120)
        if done.returncode != 0:
            log.warning("removing %s(s) %s failed: %s", kind, ids, done.stderr.strip()[-300:])
        return done.returncode == 0

    def _states(self, containers: list[str]) -> dict[str, tuple[str, str]]:
        """Status and health of each container (by the id given), in one `docker inspect`;
        "gone" for a container docker says it does not know, "unknown" when docker gave no
        answer about it (asked again on the next poll)."""
        fmt = "{{.Id}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}"
        done = docker("inspect", "-f", fmt, *containers, timeout=30, check=False)
        states = states_of(done.stdout, containers)
        for container in containers:
            if container not in states:
                unknown_to_docker = f"No such object: {container}" in done.stderr
                states[container] = ("gone" if unknown_to_docker else "unknown", "")
        return states

    def _failure(self, service: str, container: str, what: str) -> str:
        tail = docker("logs", "--tail", "30", container, check=False, timeout=30)
        lines = (tail.stdout + tail.stderr).strip() or "(no output)"
        return f"service {service} {what}. Its last log lines:\n{lines}"


def containers_of(inspected: list[dict[str, Any]]) -> dict[str, Container]:
    """Containers by compose service from `docker inspect` output: the first one of each
    service, with the host port of every published container port."""
    found: dict[str, Container] = {}
    for entry in inspected:
        service = (entry["Config"].get("Labels") or {}).get(SERVICE_LABEL, "")
        ports = {
            int(key.split("/", 1)[0]): int(bindings[0]["HostPort"])
            for key, bindings in (entry["NetworkSettings"].get("Ports") or {}).items()
            if bindings
        }
        found.setdefault(service, Container(entry["Id"], ports))
    return found


def states_of(out: str, containers: list[str]) -> dict[str, tuple[str, str]]:
    """(status, health) by the container ids asked for, from lines `<full id> <status>
    [<health>]`; a container docker no longer knows is left out."""
    states: dict[str, tuple[str, str]] = {}
    for line in out.splitlines():
        full, status, *health = line.split()
        for container in containers:
            if full.startswith(container):
                states[container] = (status, health[0] if health else "")
    return states
