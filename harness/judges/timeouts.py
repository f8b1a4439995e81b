"""Idle connections before the session: when the server closes them, and how.

MongooseIM 6.0.0 closes a connection idle for 60 s before the session without a word;
6.1.0 has `c2s_state_timeout` (a timer per state, not restarted by incoming data) and
ends the stream with a connection-timeout stream error. A stage is a point of the stream's
start where the client stops talking:

    connect      TCP is open, the client sent nothing
    stream_open  the client sent its stream header and got the features
    auth         SASL succeeded and the stream was restarted
    bind         a resource is bound, the session IQ was not sent
    session      the session is open

How a stage ends (the profile's idle_after_<stage> / idle_in_session):

    "connection-timeout"                 <stream:error><connection-timeout/>, after a header
    "connection-timeout-without-header"  the same stream error with no stream header first
    "silent"                             TCP closed with no stream error
    "open"                               no timer: the connection stays open
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from harness.judges import listing
from harness.judges.answers import stream_error_condition, stream_errors
from harness.profiles import Profile, ProfileError, expect

AREA = "timeouts"
STAGES = ("connect", "stream_open", "auth", "bind", "session")
MANNERS = ("connection-timeout", "connection-timeout-without-header", "silent", "open")
# A close this much earlier than the timeout is a different timeout, not jitter.
EARLY_MARGIN = 0.5
# A close may come this late: 2 s for scheduling on a loaded machine, plus 10 %.
LATE_MARGIN = 2.0
LATE_SHARE = 0.1


def _seconds(table: dict[str, Any], key: str) -> float:
    value = table.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProfileError(f"[{AREA}] {key} = {value!r} should be a number of seconds")
    return float(value)


def stage_key(stage: str) -> str:
    return "idle_in_session" if stage == "session" else f"idle_after_{stage}"


@dataclass(frozen=True)
class TimeoutExpect:
    pre_session_timeout: float
    idle_after_connect: str
    idle_after_stream_open: str
    idle_after_auth: str
    idle_after_bind: str
    idle_in_session: str
    # None when the profile states nothing (no evidence either way).
    whitespace_restarts_timer: bool | None

    @classmethod
    def of(cls, profile: Profile) -> TimeoutExpect:
        table = profile.section(AREA)
        values: dict[str, Any] = {"pre_session_timeout": _seconds(table, "pre_session_timeout")}
        for stage in STAGES:
            values[stage_key(stage)] = expect(table, stage_key(stage), str, AREA)
        restarts = table.get("whitespace_restarts_timer")
        if restarts is not None and not isinstance(restarts, bool):
            raise ProfileError(f"[{AREA}] whitespace_restarts_timer must be true or false")
        built = cls(whitespace_restarts_timer=restarts, **values)
        built._validate()
        return built

    def _validate(self) -> None:
        if self.pre_session_timeout <= 0:
            raise ProfileError(f"[{AREA}] pre_session_timeout must be positive seconds")
        for stage in STAGES:
            if self.manner(stage) not in MANNERS:
                raise ProfileError(f"[{AREA}] {stage_key(stage)} must be one of {MANNERS}")

    def manner(self, stage: str) -> str:
        return str(getattr(self, stage_key(stage)))

    def window(self) -> tuple[float, float]:
        """Seconds after the stage's start within which a timed close must come."""
        timeout = self.pre_session_timeout
        return timeout - EARLY_MARGIN, timeout + LATE_MARGIN + LATE_SHARE * timeout

    def watch_for(self) -> float:
        """How long a client watches an idle connection: past the end of the window."""
        return self.window()[1] + 0.5


@dataclass(frozen=True)
class IdleClose:
    """One idle connection watched from the start of its stage.

    `closed_after` is the time from the stage's start to the server closing TCP (None if
    it was still open after `watched` seconds); `elements` what the server sent from the
    stage's start on; `header_seen` whether a stream header came from the server.
    """

    stage: str
    watched: float
    closed_after: float | None
    elements: tuple[ET.Element, ...]
    header_seen: bool
    stream_ended: bool
    keepalives: int = 0


def judge_idle(want: TimeoutExpect, seen: IdleClose) -> list[str]:
    """The idle connection ends as the stage's key says, within the timeout's window."""
    manner = want.manner(seen.stage)
    key = f"{stage_key(seen.stage)} = {manner!r}"
    if manner == "open":
        return _stayed_open(want, seen, key)
    return _timed_close(want, seen, key, manner)


def judge_whitespace(want: TimeoutExpect, seen: IdleClose) -> list[str]:
    """Whitespace keepalives after the stream header restart the timer, or do not."""
    if want.whitespace_restarts_timer is None:
        raise ProfileError(f"[{AREA}] states no whitespace_restarts_timer")
    manner = want.manner("stream_open")
    key = f"whitespace_restarts_timer = {str(want.whitespace_restarts_timer).lower()}"
    if want.whitespace_restarts_timer or manner == "open":
        return _stayed_open(want, seen, key)
    return _timed_close(want, seen, key, manner)


def _timed_close(want: TimeoutExpect, seen: IdleClose, key: str, manner: str) -> list[str]:
    """When the close came, and (once it came) whether it came the way `manner` says."""
    problems = _closed_in_time(want, seen, key)
    if seen.closed_after is not None:
        problems += _closed_as(manner, seen, key)
    return problems


def _stayed_open(want: TimeoutExpect, seen: IdleClose, key: str) -> list[str]:
    needed = want.window()[1]
    if seen.closed_after is not None:
        return [
            f"{key}: expected the connection to stay open, but the server closed it after "
            f"{seen.closed_after:.2f} s{_keepalives(seen)}; it sent {listing(seen.elements)}"
        ]
    if seen.watched < needed:
        return [
            f"{key}: watched only {seen.watched:.2f} s, less than the {needed:.2f} s needed "
            f"to tell an open connection from pre_session_timeout = {want.pre_session_timeout:g}"
        ]
    errors = stream_errors(seen.elements)
    if errors:
        return [f"{key}: the connection stayed open but got {listing(errors)}"]
    return []


def _closed_in_time(want: TimeoutExpect, seen: IdleClose, key: str) -> list[str]:
    low, high = want.window()
    timeout = f"pre_session_timeout = {want.pre_session_timeout:g}"
    if seen.closed_after is None:
        if seen.watched < high:
            return [
                f"{key}, {timeout}: watched only {seen.watched:.2f} s, not long enough to see "
                f"a close due between {low:.2f} s and {high:.2f} s"
            ]
        return [
            f"{key}, {timeout}: expected the server to close between {low:.2f} s and "
            f"{high:.2f} s, but it was still open after {seen.watched:.2f} s"
            f"{_keepalives(seen)}; it sent {listing(seen.elements)}"
        ]
    if not low <= seen.closed_after <= high:
        when = "early" if seen.closed_after < low else "late"
        return [
            f"{timeout}: expected the close between {low:.2f} s and {high:.2f} s, but it "
            f"came {when}, after {seen.closed_after:.2f} s ({key})"
        ]
    return []


def _closed_as(manner: str, seen: IdleClose, key: str) -> list[str]:
    errors = stream_errors(seen.elements)
    got = listing(seen.elements)
    if manner == "silent":
        if errors or seen.stream_ended:
            return [f"{key}: expected TCP to close without a stream error, got {got}"]
        return []
    conditions = [stream_error_condition(e) for e in errors]
    if conditions != ["connection-timeout"]:
        return [f"{key}: expected one <connection-timeout/> stream error, got {got}"]
    if manner == "connection-timeout" and not seen.header_seen:
        return [f"{key}: the stream error came without a stream header before it"]
    if manner == "connection-timeout-without-header" and seen.header_seen:
        return [f"{key}: the server sent a stream header before the stream error"]
    return []


def _keepalives(seen: IdleClose) -> str:
    return f" ({seen.keepalives} whitespace keepalives sent)" if seen.keepalives else ""
