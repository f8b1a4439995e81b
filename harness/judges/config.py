"""Config migration: which configuration files a server refuses at startup, and how.

MongooseIM 6.1.0 stops at startup on keys it removed (`zlib` and `max_fsm_queue` on
`[[listen.c2s]]`, `[listen.http.handlers.mod_websockets.service]`); 6.0.0 stops on
`[modules.mod_presence]`, a module it does not have. Each refusal leaves one error line
in the log naming the key. A profile lists trials: a config file of ours (one per trial
and version, see harness/config_trials.py), whether the server must refuse or accept it,
and the items one log line must hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from harness.profiles import Profile, ProfileError

AREA = "config"
OUTCOMES = ("refused", "accepted")
LAUNCHERS = ("mongooseim", "ejabberd", "prosody")
_TAIL_LINES = 12


@dataclass(frozen=True)
class Trial:
    """One config file and what the server must do with it.

    In the profile a trial is one key of [config]: its name, and as value the outcome
    alone or, in an array, the outcome followed by items one log line must hold:

        c2s_zlib = ["refused", "reason=unexpected_key", "toml_path=listen.c2s", "key=zlib"]
        mod_presence = "accepted"

    `name=value` items match whole log fields; other items match as text.
    """

    name: str
    outcome: str
    log: tuple[str, ...]

    def key(self) -> str:
        return f"[{AREA}] {self.name}"

    def spec(self) -> str:
        return repr([self.outcome, *self.log]) if self.log else repr(self.outcome)


@dataclass(frozen=True)
class ConfigExpect:
    launcher: str
    trials: tuple[Trial, ...]

    @classmethod
    def of(cls, profile: Profile) -> ConfigExpect:
        table = profile.section(AREA)
        launcher = table.get("launcher")
        if launcher not in LAUNCHERS:
            raise ProfileError(f"[{AREA}] launcher = {launcher!r}: one of {LAUNCHERS}")
        trials = tuple(
            parse_trial(name, spec) for name, spec in table.items() if name != "launcher"
        )
        return cls(launcher=str(launcher), trials=trials)

    def trial(self, name: str) -> Trial | None:
        return next((t for t in self.trials if t.name == name), None)


def parse_trial(name: str, spec: Any) -> Trial:
    parts = [spec] if isinstance(spec, str) else spec
    shape = '"accepted", "refused", or ["refused", "<log item>", ...]'
    if not isinstance(parts, list) or not all(isinstance(p, str) and p for p in parts):
        raise ProfileError(f"[{AREA}] {name} = {spec!r}: expected {shape}")
    if not parts or parts[0] not in OUTCOMES:
        raise ProfileError(f"[{AREA}] {name} = {spec!r}: starts with one of {OUTCOMES}")
    if parts[0] == "refused" and len(parts) == 1:
        raise ProfileError(f"[{AREA}] {name}: a refusal must name the log items that show it")
    return Trial(name=name, outcome=parts[0], log=tuple(parts[1:]))


@dataclass(frozen=True)
class TrialOutcome:
    """What a server did with a config file.

    `exit_code` is None while the node still ran at the end; `ready` whether its ready
    probe answered; `seconds` how long after launch it exited or became ready (or the
    bound, when neither happened); `log` everything it wrote.
    """

    exit_code: int | None
    ready: bool
    seconds: float
    log: str

    def describe(self) -> str:
        if self.exit_code is not None:
            return f"the node exited with status {self.exit_code} after {self.seconds:.1f} s"
        if self.ready:
            return f"the node started (ready after {self.seconds:.1f} s)"
        return f"the node neither exited nor became ready within {self.seconds:.1f} s"


def judge_trial(trial: Trial, outcome: TrialOutcome) -> list[str]:
    """The node refused or accepted the file as the trial says, with the log to show it."""
    key = trial.key()
    if trial.outcome == "refused":
        if outcome.exit_code is None or outcome.exit_code == 0:
            return [
                f"{key} = {trial.spec()}: expected the node to stop with a non-zero exit "
                f"status; {outcome.describe()}"
            ]
    elif outcome.exit_code is not None or not outcome.ready:
        return [
            f"{key} = {trial.spec()}: expected the node to start; "
            f"{outcome.describe()}. Last log lines:\n{_tail(outcome.log)}"
        ]
    line = log_line_with(outcome.log, trial.log)
    if trial.log and line is None:
        return [
            f"{key} = {trial.spec()}: no log line holds all of {list(trial.log)}. "
            f"Last log lines:\n{_tail(outcome.log)}"
        ]
    return []


def log_line_with(log: str, items: tuple[str, ...]) -> str | None:
    """The first log line holding every item; `name=value` items match whole fields."""
    patterns = [_pattern(item) for item in items]
    for line in log.splitlines():
        if all(p.search(line) for p in patterns):
            return line
    return None


def _pattern(item: str) -> re.Pattern[str]:
    name, sep, value = item.partition("=")
    if sep and re.fullmatch(r"[a-z_]+", name) and value:
        quoted = re.escape(value)
        return re.compile(rf"(?:^|\s){re.escape(name)}=(?:{quoted}|\"{quoted}\")(?=\s|$)")
    return re.compile(re.escape(item))


def _tail(log: str) -> str:
    lines = log.strip().splitlines()[-_TAIL_LINES:]
    return "\n".join(f"    {line}" for line in lines) if lines else "    (no output)"
