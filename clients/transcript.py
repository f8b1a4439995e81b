"""Timestamped record of everything the clients of one test sent and received.

The text form is the one the recordings of real servers use, so a live transcript and a
recorded one read the same and parse with the same code:

    C: +0.106 bob <presence/>
    S: +0.107 bob <presence from='bob@localhost/b1' to='bob@localhost/b1'/>
    # +0.200 a note
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    """One line of a transcript: who, when (seconds since the start) and what."""

    direction: str  # "C" sent by a client, "S" sent by the server, "#" a note
    elapsed: float
    client: str
    text: str

    def render(self) -> str:
        if self.direction == "#":
            return f"# +{self.elapsed:.3f} {self.client} {self.text}".rstrip()
        return f"{self.direction}: +{self.elapsed:.3f} {self.client} {self.text}"


@dataclass
class Transcript:
    """Shared by all clients of a test; entries are kept in arrival order."""

    started: float = field(default_factory=time.monotonic)
    entries: list[Entry] = field(default_factory=list)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def sent(self, client: str, text: str) -> None:
        self._add("C", client, text)

    def received(self, client: str, text: str) -> None:
        self._add("S", client, text)

    def note(self, client: str, text: str) -> None:
        self._add("#", client, text)

    def render(self) -> str:
        return "\n".join(entry.render() for entry in self.entries) + "\n"

    def _add(self, direction: str, client: str, text: str) -> None:
        entry = Entry(direction, self.elapsed(), client, text)
        self.entries.append(entry)
        log.debug("%s", entry.render())
