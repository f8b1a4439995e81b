"""Judges: pure functions from (expectation, observation) to a list of problems.

A check has two halves. The observing half drives real clients and collects what each
party received; the judging half, here, decides whether that matches the target's
profile. Keeping the judges pure lets the same code judge a live run and a recording of a
real MongooseIM, so the profiles themselves are tested against what real servers sent.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field

from clients.inbox import local_name, to_text

STANZAS_NS = "urn:ietf:params:xml:ns:xmpp-stanzas"
DELAY_NS = "urn:xmpp:delay"


@dataclass
class Seen:
    """What each role received during the act under test, and who the roles are."""

    jids: dict[str, str]
    received: dict[str, list[ET.Element]] = field(default_factory=dict)

    def of(self, role: str) -> list[ET.Element]:
        return self.received.get(role, [])


class Mismatch(AssertionError):
    """The server's behaviour differs from the target's profile."""


def verdict(problems: Iterable[str], profile: str) -> None:
    """Raises Mismatch listing every problem; returns quietly when there is none."""
    found = list(problems)
    if found:
        lines = "\n".join(f"- {p}" for p in found)
        raise Mismatch(f"behaviour differs from profile {profile}:\n{lines}")


def bare(jid: str) -> str:
    return jid.split("/", 1)[0]


def listing(elements: Iterable[ET.Element]) -> str:
    shown = [to_text(e) for e in elements]
    return "; ".join(shown) if shown else "nothing"


def is_presence(element: ET.Element, sender: str, type_: str = "") -> bool:
    return (
        local_name(element) == "presence"
        and element.get("from") == sender
        and element.get("type", "") == type_
    )


def status_of(element: ET.Element) -> str | None:
    """The text of a stanza's <status/>, or None when it has none."""
    for child in element:
        if local_name(child) == "status":
            return child.text or ""
    return None


def error_condition(element: ET.Element) -> str:
    """The defined condition of a stanza error (`service-unavailable`), or ""."""
    for child in element:
        if local_name(child) == "error":
            for condition in child:
                if (
                    condition.tag.startswith(f"{{{STANZAS_NS}}}")
                    and local_name(condition) != "text"
                ):
                    return local_name(condition)
    return ""
