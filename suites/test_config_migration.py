"""Config migration: the files a server refuses at startup, and the log line that says why.

    test_config_trial_ends_as_profile_says[<trial>]   doc/migrations/6.0.0_6.1.0.md

One test per trial of the profiles' [config] tables, for instance `c2s_zlib`: MongooseIM
6.1.0 must stop on `zlib` under [[listen.c2s]], exit non-zero and log the key, while
6.0.0 starts with it. Each trial starts the target's own image on one config file of ours
in a short-lived container (harness/config_trials.py): no port, a bounded wait for the
node to exit or answer its ready probe, its log read, the container always removed. The
trials of every target are queued when the first test of this module runs and run two
at a time in the background, and a file runs once per image, however many targets share
both. A target whose profile has no trial of that name skips it, saying so.

The MongooseIM trials need the MongooseIM images: where they are missing, the target does
not start either and these tests fail like every other test of that target, with the
instruction to load the images (`make load-images`).
"""

from __future__ import annotations

import concurrent.futures
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import allure
import pytest

from conftest import chosen_targets
from harness.config_trials import (
    LAUNCHERS,
    Launcher,
    TrialError,
    fixture_for,
    image_of,
    run_trial,
)
from harness.judges import config as judge
from harness.judges import verdict
from harness.judges.config import ConfigExpect, TrialOutcome
from harness.lab import Lab
from harness.profiles import ProfileError
from harness.targets import Target
from suites.batch import selected
from suites.stream_steps import report

log = logging.getLogger(__name__)

pytestmark = pytest.mark.area("config")

# Trials that run at the same time: each starts a whole server on a 2-core machine.
PARALLEL = 2


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One test per trial name found in the chosen targets' profiles."""
    if "trial_name" not in metafunc.fixturenames:
        return
    names: list[str] = []
    for target in chosen_targets(metafunc.config):
        try:
            trials = ConfigExpect.of(target.profile).trials if target.profile.has("config") else ()
        except ProfileError as exc:
            raise pytest.UsageError(f"profile {target.profile.name}: {exc}") from None
        names += [t.name for t in trials if t.name not in names]
    metafunc.parametrize("trial_name", names)


class TrialPool:
    """Runs trials a few at a time; a file on an image runs once, whichever targets share
    it (mongooseim-6.1.0 and its variants use the same image and the same files)."""

    def __init__(self) -> None:
        self.pool = concurrent.futures.ThreadPoolExecutor(PARALLEL, "config-trials")
        self.futures: dict[tuple[str, str], concurrent.futures.Future[TrialOutcome]] = {}
        # The trials queued for each target, by target name.
        self.runs: dict[str, TrialRuns] = {}

    def submit(
        self, image: str, launcher: Launcher, fixture: Path
    ) -> concurrent.futures.Future[TrialOutcome]:
        key = (image, str(fixture))
        if key not in self.futures:
            self.futures[key] = self.pool.submit(run_trial, image, launcher, fixture)
        return self.futures[key]

    def close(self) -> None:
        """Waits for running trials, so that each removes its container; drops the rest."""
        self.pool.shutdown(wait=True, cancel_futures=True)


class TrialRuns:
    """The config trials of one target."""

    def __init__(self, target: Target, want: ConfigExpect, pool: TrialPool) -> None:
        self.target = target
        self.want = want
        self.launcher: Launcher = LAUNCHERS[want.launcher]
        self.pool = pool
        self.futures: dict[str, concurrent.futures.Future[TrialOutcome]] = {}

    def start_all(self) -> TrialRuns:
        """Queues every trial of the target's profile (once per image and file)."""
        names = [t.name for t in self.want.trials]
        image = image_of(self.target)
        for name in names:
            fixture = fixture_for(self.target.profile, self.launcher, name)
            self.futures[name] = self.pool.submit(image, self.launcher, fixture)
        self.pool.runs[self.target.name] = self
        log.info("%s: config trials %s queued on %s", self.target.name, ", ".join(names), image)
        return self

    def outcome(self, name: str) -> TrialOutcome:
        """What the node did with the trial's file; waits for it, with a bound."""
        queued = len(self.pool.futures)
        bound = self.launcher.bound * (queued // PARALLEL + 1) + 120
        try:
            outcome = self.futures[name].result(timeout=bound)
        except concurrent.futures.TimeoutError:
            raise TrialError(f"config trial {name} did not end within {bound:g} s") from None
        allure.attach(
            outcome.log, name=f"{name} server log", attachment_type=allure.attachment_type.TEXT
        )
        report("trial outcome", outcome.describe())
        return outcome


@pytest.fixture(scope="module")
def pool(lab: Lab, request: pytest.FixtureRequest) -> Iterator[TrialPool]:
    """The pool, with the trials of every target the run selected here already queued: the
    targets' trials overlap instead of each target's starting at its own first test."""
    trials = TrialPool()
    for target in selected_targets(request.session.items, lab):
        try:
            TrialRuns(target, ConfigExpect.of(target.profile), trials).start_all()
        except TrialError as exc:
            # The target's own tests meet this again and fail with it.
            log.warning("%s: config trials not queued: %s", target.name, exc)
    yield trials
    trials.close()


def selected_targets(items: list[pytest.Item], lab: Lab) -> list[Target]:
    """The targets that are up, have a [config] table and a selected test of this module."""
    chosen = {s.target.name: s.target for s in selected(sys.modules[__name__], items, lab)}
    return [t for _name, t in sorted(chosen.items()) if t.profile.has(judge.AREA)]


@pytest.fixture(scope="module")
def want(target: Target) -> ConfigExpect:
    if not target.profile.has(judge.AREA):
        pytest.skip(f"profile {target.profile.name} has no [{judge.AREA}] table")
    return ConfigExpect.of(target.profile)


@pytest.fixture(scope="module")
def trials(target: Target, want: ConfigExpect, pool: TrialPool) -> TrialRuns:
    """The target's trials as the pool queued them; queued now where that failed, which
    fails again with the reason."""
    queued = pool.runs.get(target.name)
    return queued if queued is not None else TrialRuns(target, want, pool).start_all()


def test_config_trial_ends_as_profile_says(
    target: Target, trials: TrialRuns, want: ConfigExpect, trial_name: str
) -> None:
    trial = want.trial(trial_name)
    if trial is None:
        pytest.skip(f"profile {target.profile.name} has no [config] {trial_name} trial")

    outcome = trials.outcome(trial_name)

    verdict(judge.judge_trial(trial, outcome), target.profile.name)
