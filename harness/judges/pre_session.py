"""Limits before the session: failed SASL attempts, and IQs sent too early.

MongooseIM 6.1.0 closes the connection after the 4th failed SASL attempt and ignores IQs
sent before authentication or between bind and the session IQ; 6.0.0 allows any number
of attempts and answers those IQs with service-unavailable.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from clients.inbox import local_name, to_text
from harness.judges import listing
from harness.judges.answers import Expected, Reply, judge_reply
from harness.profiles import Profile, ProfileError, expect

AREA = "pre_session"
SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl"
# Attempts a client makes where the profile states no limit: as many as the recordings.
UNLIMITED_PROBE = 5


@dataclass(frozen=True)
class PreSessionExpect:
    # The failed attempt after which the server closes the connection; None for no limit.
    sasl_failure_limit: int | None
    unauthenticated_iq: str
    unauthenticated_iq_text: str
    iq_before_session: str
    iq_before_session_text: str

    @classmethod
    def of(cls, profile: Profile) -> PreSessionExpect:
        table = profile.section(AREA)
        limit = table.get("sasl_failure_limit")
        if limit == "none":
            limit = None
        elif isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ProfileError(
                f'[{AREA}] sasl_failure_limit = {limit!r}: a positive number or "none"'
            )
        built = cls(
            sasl_failure_limit=limit,
            unauthenticated_iq=expect(table, "unauthenticated_iq", str, AREA),
            unauthenticated_iq_text=expect(table, "unauthenticated_iq_text", str, AREA),
            iq_before_session=expect(table, "iq_before_session", str, AREA),
            iq_before_session_text=expect(table, "iq_before_session_text", str, AREA),
        )
        for key in ("unauthenticated_iq", "iq_before_session"):
            Expected.parse(getattr(built, key), f"[{AREA}] {key}")
        return built

    def wrong_attempts(self) -> int:
        """How many wrong passwords a client tries: one past the limit, or the probe."""
        return UNLIMITED_PROBE if self.sasl_failure_limit is None else self.sasl_failure_limit + 1

    def limit_text(self) -> str:
        return "none" if self.sasl_failure_limit is None else str(self.sasl_failure_limit)


@dataclass(frozen=True)
class SaslRun:
    """Wrong-password SASL attempts on one stream, then (if still open) the right one.

    `answers` holds the server's answer to each wrong attempt in order; `closed_after` the
    number of wrong attempts made when the server closed the connection (None if open);
    `final` the answer to the right password, when the client got to send it.
    """

    attempts: int
    answers: tuple[ET.Element, ...]
    closed_after: int | None
    final: ET.Element | None


def judge_sasl_limit(want: PreSessionExpect, run: SaslRun) -> list[str]:
    key = f"sasl_failure_limit = {want.limit_text()}"
    failures = [a for a in run.answers if _is_sasl(a, "failure")]
    odd = [a for a in run.answers if not _is_sasl(a, "failure")]
    if odd:
        return [f"{key}: a wrong password got {listing(odd)}, not a SASL <failure/>"]
    limit = want.sasl_failure_limit
    if limit is None:
        return _no_limit(key, run, failures)
    if run.closed_after is None:
        return [
            f"{key}: expected the connection closed after failed attempt {limit}; it "
            f"answered {len(failures)} of {run.attempts} wrong attempts and stayed open"
        ]
    if run.closed_after != limit or len(failures) != limit:
        return [
            f"{key}: expected the close right after failed attempt {limit}; it came after "
            f"attempt {run.closed_after}, with {len(failures)} <failure/> answers"
        ]
    return []


def _no_limit(key: str, run: SaslRun, failures: list[ET.Element]) -> list[str]:
    if run.closed_after is not None:
        return [
            f"{key}: expected every wrong attempt answered and the stream kept open; the "
            f"server closed it after attempt {run.closed_after} ({len(failures)} failures)"
        ]
    if len(failures) != run.attempts:
        return [f"{key}: {run.attempts} wrong attempts got {len(failures)} <failure/> answers"]
    if run.final is None or not _is_sasl(run.final, "success"):
        got = to_text(run.final) if run.final is not None else "no answer"
        return [f"{key}: after {run.attempts} failures the right password got {got}"]
    return []


def _is_sasl(element: ET.Element, name: str) -> bool:
    return local_name(element) == name and element.tag.startswith(f"{{{SASL_NS}}}")


def judge_unauthenticated_iq(want: PreSessionExpect, reply: Reply) -> list[str]:
    """An IQ to the server before SASL (not in-band registration)."""
    return judge_reply(
        "unauthenticated_iq",
        want.unauthenticated_iq,
        reply,
        SASL_NS,
        text=want.unauthenticated_iq_text,
    )


def judge_iq_before_session(want: PreSessionExpect, reply: Reply) -> list[str]:
    """A roster get after bind, before the session IQ."""
    return judge_reply(
        "iq_before_session",
        want.iq_before_session,
        reply,
        SASL_NS,
        text=want.iq_before_session_text,
    )
