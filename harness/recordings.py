"""Reads transcripts in the recording format: recorded real servers, or this suite's own.

    # +0.106 bob logged in as bob@localhost/b1 (...)
    C: +0.106 bob <presence/>
    S: +0.107 bob <presence from='bob@localhost/b1' to='bob@localhost/b1'/>

One `S:` line may hold several stanzas, a stream header, or `</stream:stream>`; events
such as `[TCP closed by server]` are kept as events. Judges see the same ElementTree
elements the live clients put in their inboxes.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

LINE = re.compile(r"^(?P<dir>[CS]): \+(?P<t>[0-9.]+) (?:(?P<client>[^<\s]\S*) )?(?P<text>.*)$")
NOTE = re.compile(r"^# \+(?P<t>[0-9.]+) (?P<client>\S+) (?P<text>.*)$")
LOGGED_IN = re.compile(r"logged in as (?P<jid>\S+)")
WRAP = "<wrap xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>{}</wrap>"
HEADER = re.compile(r"(<\?xml[^>]*\?>)?<stream:stream[^>]*>")


@dataclass
class Line:
    index: int
    direction: str  # "C", "S" or "#"
    elapsed: float
    client: str
    text: str
    elements: list[ET.Element] = field(default_factory=list)
    event: str = ""  # "[TCP closed by server]" and the like
    header: str = ""  # a stream header in this line, as sent
    stream_end: bool = False
    unparsed: str = ""  # text that is not XML (command output, log lines)


@dataclass
class Recording:
    path: Path
    header: list[str]
    lines: list[Line]

    def jid(self, client: str) -> str:
        """The full JID a client logged in as, from the transcript's notes."""
        for line in self.lines:
            if line.direction == "#" and line.client.startswith(client):
                found = LOGGED_IN.search(line.text)
                if found:
                    return found.group("jid")
        raise KeyError(f"{self.path.name}: no 'logged in as' note for {client}")

    def find(self, direction: str, client: str, contains: str, start: int = 0) -> int:
        """Index of the first line at or after `start` matching; KeyError if none."""
        for line in self.lines[start:]:
            if line.direction == direction and line.client == client and contains in line.text:
                return line.index
        raise KeyError(f"{self.path.name}: no {direction}: line of {client} with {contains!r}")

    def received(self, client: str, start: int = 0, end: int | None = None) -> list[ET.Element]:
        """Elements the server sent to `client` in lines [start, end)."""
        chosen = self.lines[start:end]
        return [
            e
            for line in chosen
            if line.direction == "S" and line.client == client
            for e in line.elements
        ]

    def events(self, client: str, start: int = 0) -> list[Line]:
        return [line for line in self.lines[start:] if line.client == client and line.event]


def load(path: Path) -> Recording:
    header: list[str] = []
    lines: list[Line] = []
    for raw in path.read_text().splitlines():
        parsed = _parse_line(len(lines), raw)
        if parsed is not None:
            lines.append(parsed)
        elif raw.startswith("#"):
            header.append(raw)
    return Recording(path, header, lines)


def _parse_line(index: int, raw: str) -> Line | None:
    if match := LINE.match(raw):
        client = match["client"] or ""
        line = Line(index, match["dir"], float(match["t"]), client, match["text"])
        _read_payload(line)
        return line
    if match := NOTE.match(raw):
        return Line(index, "#", float(match["t"]), match["client"], match["text"])
    return None


def _read_payload(line: Line) -> None:
    text = line.text.strip()
    if text.startswith("[") and text.endswith("]"):
        line.event = text
        return
    if found := HEADER.search(text):
        line.header = found.group(0)
        text = text.replace(found.group(0), "")
    if "</stream:stream>" in text:
        line.stream_end = True
        text = text.replace("</stream:stream>", "")
    if text.strip():
        try:
            line.elements = list(ET.fromstring(WRAP.format(text)))
        except ET.ParseError:
            line.unparsed = text
