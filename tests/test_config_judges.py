"""The [config] profiles, judged against recorded startups of real 6.0.0 and 6.1.0 nodes.

Each config-reject-*.txt recording (exit status, error log line) must pass the trial of
its own version's profile and fail the same trial of the other version, which accepts the
key. The trial files themselves are checked to differ from the shipped configs by exactly
the change they are named for, and the 6.1.0 preflight must flag exactly the files the
6.1.0 profile says the node refuses.
"""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.config_trials import LAUNCHERS, fixture_for
from harness.judges import config as judge
from harness.judges.config import ConfigExpect, Trial, TrialOutcome, log_line_with
from harness.preflight import Severity, check_config
from harness.profiles import Profile, ProfileError, load_profile
from tests.recorded import RECORDINGS, VERSIONS, other, profile

ROOT = Path(__file__).resolve().parent.parent
MONGOOSEIM = ROOT / "servers" / "mongooseim"
EXIT = re.compile(r"^S: process exit status: (\d+) \(about ([0-9.]+) s after launch\)")
LOG = re.compile(r"^S: (?:log \([^)]*\): |stdout: )(.*)$")

# Each recording of a startup: version, file, trial.
REFUSALS = [
    ("6.1.0", "config-reject-c2s-max_fsm_queue", "c2s_max_fsm_queue"),
    ("6.1.0", "config-reject-websockets-service", "websockets_service"),
    ("6.0.0", "config-reject-mod_presence", "mod_presence"),
]
# What each MongooseIM trial file adds to the shipped config of its version.
MONGOOSEIM_CHANGES: dict[str, dict[str, Any]] = {
    "c2s_max_fsm_queue": {"c2s": {"max_fsm_queue": 1000}},
    "websockets_service": {"http": "websockets"},
    "mod_presence": {"modules": "mod_presence"},
    "c2s_zlib": {"c2s": {"zlib": 10_000}},
}


def want(version: str) -> ConfigExpect:
    return ConfigExpect.of(profile(version))


def trial(version: str, name: str) -> Trial:
    found = want(version).trial(name)
    assert found is not None, f"profile mongooseim-{version} has no [config] {name}"
    return found


def recorded_startup(version: str, name: str) -> TrialOutcome:
    """Exit status, time and log lines of a recorded node startup."""
    text = (RECORDINGS / f"mongooseim-{version}" / f"{name}.txt").read_text()
    exit_code, seconds, log = None, 0.0, []
    for line in text.splitlines():
        if found := EXIT.match(line):
            exit_code, seconds = int(found[1]), float(found[2])
        elif found := LOG.match(line):
            log.append(found[1])
    return TrialOutcome(exit_code, False, seconds, "\n".join(log))


def recorded_zlib_start() -> TrialOutcome:
    """config-zlib-accepted.txt: the 6.0.0 node with zlib started and answered a stream."""
    text = (RECORDINGS / "mongooseim-6.0.0" / "config-zlib-accepted.txt").read_text()
    answered = "<stream:features>" in text
    return TrialOutcome(None, answered, 0.0, "")


# The recordings ------------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "name", "trial_name"), REFUSALS)
def test_recorded_refusal_passes_own_profile(version: str, name: str, trial_name: str) -> None:
    outcome = recorded_startup(version, name)

    problems = judge.judge_trial(trial(version, trial_name), outcome)

    assert outcome.exit_code == 1
    assert problems == []


@pytest.mark.parametrize(("version", "name", "trial_name"), REFUSALS)
def test_recorded_refusal_fails_the_profile_that_accepts_the_key(
    version: str, name: str, trial_name: str
) -> None:
    outcome = recorded_startup(version, name)

    problems = judge.judge_trial(trial(other(version), trial_name), outcome)

    assert len(problems) == 1
    assert problems[0].startswith(f"[config] {trial_name} = 'accepted': expected the node to")
    assert "exited with status 1 after 3.5 s" in problems[0]


def test_recorded_zlib_start_passes_600_and_fails_610() -> None:
    outcome = recorded_zlib_start()

    own = judge.judge_trial(trial("6.0.0", "c2s_zlib"), outcome)
    cross = judge.judge_trial(trial("6.1.0", "c2s_zlib"), outcome)

    assert own == []
    assert len(cross) == 1
    assert cross[0].startswith("[config] c2s_zlib = ['refused', 'what=toml_processing_failed'")
    assert "the node started" in cross[0]


def test_refusal_with_another_key_in_the_log_fails() -> None:
    outcome = recorded_startup("6.1.0", "config-reject-c2s-max_fsm_queue")

    problems = judge.judge_trial(trial("6.1.0", "c2s_zlib"), outcome)

    assert len(problems) == 1
    assert "no log line holds all of" in problems[0]
    assert "key=max_fsm_queue" in problems[0]


def test_log_fields_match_whole_values_only() -> None:
    line = "level=error what=toml_processing_failed reason=unexpected_key key=zlib_level"

    assert log_line_with(line, ("key=zlib",)) is None
    assert log_line_with(line, ("key=zlib_level", "reason=unexpected_key")) == line
    assert log_line_with('text="TOML configuration error"', ("TOML configuration",)) is not None


def test_node_that_neither_exits_nor_starts_is_reported() -> None:
    outcome = TrialOutcome(None, False, 180.0, "starting\n")

    problems = judge.judge_trial(trial("6.1.0", "mod_presence"), outcome)

    assert len(problems) == 1
    assert "neither exited nor became ready within 180.0 s" in problems[0]


# Profiles ------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_both_versions_have_the_same_trials(version: str) -> None:
    names = {t.name for t in want(version).trials}

    assert names == {t.name for t in want(other(version)).trials} == set(MONGOOSEIM_CHANGES)


def test_refusal_without_log_items_is_refused() -> None:
    broken = Profile("broken", Path("x"), {"config": {"launcher": "ejabberd", "x": "refused"}})

    with pytest.raises(ProfileError, match="must name the log items"):
        ConfigExpect.of(broken)


def test_unknown_launcher_is_refused() -> None:
    broken = Profile("broken", Path("x"), {"config": {"launcher": "openfire"}})

    with pytest.raises(ProfileError, match="launcher = 'openfire'"):
        ConfigExpect.of(broken)


# The trial files -------------------------------------------------------------------------------


def shipped(version: str) -> dict[str, Any]:
    return tomllib.loads((MONGOOSEIM / f"mongooseim-{version}.toml").read_text())


def apply(config: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """The shipped config with one trial's change, built independently of the file."""
    result = copy.deepcopy(config)
    for where, what in change.items():
        if where == "c2s":
            result["listen"]["c2s"][0].update(what)
        elif where == "http":
            result["listen"]["http"].append(
                {
                    "port": 5280,
                    "transport": {"num_acceptors": 10, "max_connections": 1024},
                    "handlers": {
                        "mod_websockets": [
                            {"host": "_", "path": "/ws-xmpp", "service": {"password": "secret"}}
                        ]
                    },
                }
            )
        elif where == "modules":
            result["modules"][what] = {}
    return result


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted(MONGOOSEIM_CHANGES))
def test_mongooseim_trial_file_is_the_shipped_config_with_one_change(
    version: str, name: str
) -> None:
    path = fixture_for(profile(version), LAUNCHERS["mongooseim"], name)
    base = shipped(version)
    change = MONGOOSEIM_CHANGES[name]
    already = (name == "c2s_zlib" and version == "6.0.0") or (
        name == "mod_presence" and version == "6.1.0"
    )

    got = tomllib.loads(path.read_text())

    assert got == (base if already else apply(base, change))


@pytest.mark.parametrize(
    ("server", "name", "added"),
    [
        ("ejabberd", "shipped_config", ""),
        ("ejabberd", "unknown_top_level_option", "xc_not_an_option"),
        ("ejabberd", "unknown_module", "mod_not_a_module"),
    ],
)
def test_ejabberd_trial_file_is_the_shipped_config_with_one_change(
    server: str, name: str, added: str
) -> None:
    path = fixture_for(load_profile(server), LAUNCHERS[server], name)
    base = yaml.safe_load((ROOT / "servers" / "ejabberd" / "ejabberd.yml").read_text())

    got = yaml.safe_load(path.read_text())

    if added == "xc_not_an_option":
        base[added] = True
    elif added:
        base["modules"][added] = {}
    assert got == base


@pytest.mark.parametrize(
    ("name", "removed"),
    [
        ("shipped_config", ""),
        ("unknown_top_level_option", "xc_not_an_option = true"),
        ("unknown_module", '"not_a_module", '),
    ],
)
def test_prosody_trial_file_is_the_shipped_config_with_one_change(name: str, removed: str) -> None:
    path = fixture_for(load_profile("prosody"), LAUNCHERS["prosody"], name)
    base = (ROOT / "servers" / "prosody" / "prosody.cfg.lua").read_text()

    got = path.read_text()

    body = "\n".join(line for line in got.splitlines() if not line.startswith("--"))
    expected = "\n".join(line for line in base.splitlines() if not line.startswith("--"))
    assert body.replace(removed, "", 1).strip() == expected.strip()


# The preflight agrees with the 6.1.0 profile ---------------------------------------------------


@pytest.mark.parametrize("name", sorted(MONGOOSEIM_CHANGES))
def test_preflight_flags_exactly_the_files_610_refuses(name: str) -> None:
    path = fixture_for(profile("6.1.0"), LAUNCHERS["mongooseim"], name)
    refused = trial("6.1.0", name).outcome == "refused"

    errors = [f for f in check_config(path.read_text()) if f.severity is Severity.ERROR]

    assert bool(errors) == refused, [f.rule for f in errors]


def test_every_launcher_a_profile_may_name_can_be_started() -> None:
    assert set(judge.LAUNCHERS) == set(LAUNCHERS)
