"""The config checks fail, naming the trial, when a profile is wrong.

The trials of a reference target run once (what the node does with a file does not depend
on the claim); each case then judges them with the profile changed in one trial: the
outcome turned round, or a log item the server never writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from harness.judges import Mismatch
from harness.judges.config import ConfigExpect, Trial
from harness.targets import Target
from suites import test_config_migration as suite

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def truth(target: Target) -> ConfigExpect:
    return ConfigExpect.of(target.profile)


@pytest.fixture(scope="module")
def pool() -> Iterator[suite.TrialPool]:
    trials = suite.TrialPool()
    yield trials
    trials.close()


@pytest.fixture(scope="module")
def trials(target: Target, truth: ConfigExpect, pool: suite.TrialPool) -> suite.TrialRuns:
    return suite.TrialRuns(target, truth, pool).start_all()


def turned_round(trial: Trial) -> Trial:
    if trial.outcome == "refused":
        return Trial(trial.name, "accepted", ())
    return Trial(trial.name, "refused", ("what=toml_processing_failed",))


def another_log_line(trial: Trial) -> Trial:
    return Trial(trial.name, trial.outcome, (*trial.log, "a line this server never writes"))


@pytest.mark.parametrize("change", [turned_round, another_log_line])
@pytest.mark.parametrize("name", ["shipped_config", "unknown_top_level_option", "unknown_module"])
def test_config_check_fails_when_profile_claims_what_server_does_not_do(
    target: Target, truth: ConfigExpect, trials: suite.TrialRuns, name: str, change: object
) -> None:
    original = truth.trial(name)
    if original is None:
        pytest.skip(f"profile {target.profile.name} has no [config] {name} trial")
    assert callable(change)
    wrong: Trial = change(original)
    claimed = replace(truth, trials=tuple(wrong if t.name == name else t for t in truth.trials))

    with pytest.raises(Mismatch) as failure:
        suite.test_config_trial_ends_as_profile_says(target, trials, claimed, name)

    assert f"[config] {name} = {wrong.spec()}" in str(failure.value)
    assert target.profile.name in str(failure.value)
