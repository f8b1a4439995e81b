"""Starts a server's image on one config file of ours and records what the node did.

A trial container is started with `docker run`, with the file mounted where that server
reads its config, and watched until it exits or its ready probe answers, within a bound.
Its log is read with `docker logs`, and the container is always removed, also after a
failure or an interrupt. No port is published: nothing connects to it.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from harness.cleanup import RUN_LABEL
from harness.compose import COMPOSE_FILE, ComposeError, docker, image_present
from harness.judges.config import TrialOutcome
from harness.lab import run_id
from harness.profiles import Profile
from harness.targets import Target

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
POLL = 0.5
PROBE_EVERY = 2.0


class TrialError(RuntimeError):
    """The trial could not be run; the message says what is missing and how to get it."""


@dataclass(frozen=True)
class Launcher:
    """How one server kind is started on a config file and asked whether it is up."""

    config_path: str
    # Where the trial files are: `{version}` is the profile's top-level `version`.
    fixtures: str
    # The node is up when this command exits 0 inside the container, or when this text
    # appears in its log (for servers whose control command races the starting node).
    ready: tuple[str, ...] = ()
    ready_log: str = ""
    command: tuple[str, ...] = ()
    hostname: str = ""
    env: dict[str, str] = field(default_factory=dict)
    # Seconds to exit or become ready. Generous: several servers may be starting at once on
    # a 2-core machine, and a bound only costs time when a node hangs.
    bound: float = 120.0


PROSODY_ANSWERS = (
    "exec 3<>/dev/tcp/127.0.0.1/5222 && printf '%s' \"<stream:stream xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>\" >&3 "
    "&& timeout 3 head -c 1 <&3 | grep -q ."
)

LAUNCHERS: dict[str, Launcher] = {
    # The official image links /member/mongooseim.toml over its config (start.sh).
    "mongooseim": Launcher(
        config_path="/member/mongooseim.toml",
        fixtures="servers/mongooseim/migration/{version}/{trial}.toml",
        ready=("/usr/lib/mongooseim/bin/mongooseimctl", "status"),
        hostname="mongooseim-1",
        env={"JOIN_CLUSTER": "false"},
        bound=300.0,
    ),
    # Debian's ejabberdctl reads ejabberdctl.cfg after its options, and that file names
    # the config path again: --ctl-config /dev/null keeps --config in force. Readiness is
    # read from the log: `ejabberdctl status` while the node starts can create the Erlang
    # cookie file at the same moment as the node, which then refuses it and stops.
    "ejabberd": Launcher(
        config_path="/etc/ejabberd/trial.yml",
        fixtures="servers/ejabberd/config-trials/{trial}.yml",
        ready_log="is started in the node",
        command=(
            "ejabberdctl",
            "--config",
            "/etc/ejabberd/trial.yml",
            "--ctl-config",
            "/dev/null",
            "foreground",
        ),
        hostname="localhost",
        bound=300.0,
    ),
    # Ready is an answer to a stream header, not an open port: Prosody listens on 5222
    # before it loads the modules of its hosts (and logs what fails there), and it answers
    # only once its startup is over and its main loop runs.
    "prosody": Launcher(
        config_path="/etc/prosody/prosody.cfg.lua",
        fixtures="servers/prosody/config-trials/{trial}.lua",
        ready=("bash", "-c", PROSODY_ANSWERS),
        bound=120.0,
    ),
}


def fixture_for(profile: Profile, launcher: Launcher, trial: str) -> Path:
    """The config file of one trial for this profile's server and version."""
    version = str(profile.data.get("version", ""))
    if "{version}" in launcher.fixtures and not version:
        raise TrialError(f"profile {profile.name} has no top-level `version` for its trials")
    return ROOT / launcher.fixtures.format(version=version, trial=trial)


def image_of(target: Target) -> str:
    """The image of the target's first node, from its docker-compose.yml service."""
    service = target.node.service
    if service is None:
        raise TrialError(
            f"target {target.name} is not started by this project (no compose service), so "
            "there is no image to start on a config file of ours"
        )
    with COMPOSE_FILE.open() as handle:
        services = yaml.safe_load(handle)["services"]
    image = services.get(service, {}).get("image")
    if not image:
        raise TrialError(f"compose service {service} names no image")
    return str(image)


def run_trial(image: str, launcher: Launcher, fixture: Path) -> TrialOutcome:
    """Runs the image on the fixture; returns how the node ended or that it became ready."""
    if not fixture.is_file():
        raise TrialError(f"config fixture {fixture} does not exist")
    if not image_present(image):
        raise TrialError(
            f"image {image} is not present on this machine. Load it first: "
            "`make load-images IMAGES=<dir of .tar files saved with docker save>`"
        )
    name = f"xc-trial-{secrets.token_hex(4)}"
    started = time.monotonic()
    try:
        docker(*_run_args(name, image, launcher, fixture), timeout=120)
        log.info("trial %s: %s on %s", name, image, fixture.name)
        outcome = _watch(name, launcher, started)
    finally:
        docker("rm", "-f", "-v", name, check=False, timeout=60)
    log.info("trial %s on %s: %s", name, fixture.name, outcome.describe())
    return outcome


def _run_args(name: str, image: str, launcher: Launcher, fixture: Path) -> list[str]:
    args = ["run", "-d", "--name", name, "--label", "xmpp-conformance.trial=1"]
    # A trial is watched by _watch; an image's own health check would only add load (and
    # ejabberd's `ejabberdctl status` can race the starting node for its cookie file).
    args += ["--no-healthcheck"]
    # The run's controller removes what a killed worker could not (harness.cleanup).
    args += ["--label", f"{RUN_LABEL}={run_id()}"]
    if launcher.hostname:
        args += ["--hostname", launcher.hostname]
    for key, value in launcher.env.items():
        args += ["-e", f"{key}={value}"]
    args += ["-v", f"{fixture.resolve()}:{launcher.config_path}:ro", image, *launcher.command]
    return args


def _watch(name: str, launcher: Launcher, started: float) -> TrialOutcome:
    deadline = started + launcher.bound
    next_probe = started
    while time.monotonic() < deadline:
        status, code = _state(name)
        if status in ("exited", "dead"):
            return TrialOutcome(code, False, time.monotonic() - started, _logs(name))
        if status == "running" and time.monotonic() >= next_probe:
            next_probe = time.monotonic() + PROBE_EVERY
            if _probe(name, launcher):
                return TrialOutcome(None, True, time.monotonic() - started, _logs(name))
        time.sleep(POLL)
    return TrialOutcome(None, False, launcher.bound, _logs(name))


def _state(name: str) -> tuple[str, int]:
    out = docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name, timeout=30)
    status, code = out.stdout.split()
    return status, int(code)


def _probe(name: str, launcher: Launcher) -> bool:
    if launcher.ready_log:
        return launcher.ready_log in _logs(name)
    try:
        done = docker("exec", name, *launcher.ready, check=False, timeout=30)
    except ComposeError:
        return False
    return done.returncode == 0


def _logs(name: str) -> str:
    done = docker("logs", name, check=False, timeout=60)
    return done.stdout + done.stderr
