"""What one client received, with bounded waits on it.

Every wait takes a timeout and a description of what it waits for; when the timeout runs
out, the error names that description and lists what did arrive, so a failed check says
what the server sent instead of just "timed out".
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field

Predicate = Callable[[ET.Element], bool]

CLIENT_NS = "jabber:client"
STREAM_NS = "http://etherx.jabber.org/streams"


class StanzaTimeout(AssertionError):
    """A bounded wait ended without the awaited element."""


class ServerClosed(AssertionError):
    """The server closed the stream while a wait was still open."""


def local_name(element: ET.Element) -> str:
    """The tag without its namespace: `{jabber:client}presence` -> `presence`."""
    return element.tag.rsplit("}", 1)[-1]


def namespace(element: ET.Element) -> str:
    return element.tag[1:].split("}", 1)[0] if element.tag.startswith("{") else ""


def to_text(element: ET.Element, parent_ns: str = CLIENT_NS) -> str:
    """Compact XML with one `xmlns` where the namespace changes, as servers write it."""
    ns = namespace(element)
    name = local_name(element)
    attrs = "".join(
        f" {_attr_name(k)}='{_escape(v, quote=True)}'" for k, v in element.attrib.items()
    )
    if ns != parent_ns:
        attrs = f" xmlns='{ns}'" + attrs
    inner = _escape(element.text or "") + "".join(
        to_text(child, ns) + _escape(child.tail or "") for child in element
    )
    return f"<{name}{attrs}>{inner}</{name}>" if inner else f"<{name}{attrs}/>"


def _attr_name(key: str) -> str:
    if key == "{http://www.w3.org/XML/1998/namespace}lang":
        return "xml:lang"
    return key.rsplit("}", 1)[-1]


def _escape(text: str, quote: bool = False) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("'", "&apos;") if quote else text


def matches(
    name: str,
    *,
    type_: str | None = None,
    sender: str | None = None,
    child: str | None = None,
    xmlns: str | None = None,
    attrs: dict[str, str] | None = None,
) -> Predicate:
    """A predicate for the common shapes: element name, type, from, a child element.

    `child` is a Clark name such as `{urn:xmpp:sm:3}enabled` or a local name.
    `type_=""` matches an element without a type attribute.
    """

    def predicate(element: ET.Element) -> bool:
        if local_name(element) != name:
            return False
        if xmlns is not None and namespace(element) != xmlns:
            return False
        if type_ is not None and element.get("type", "") != type_:
            return False
        if sender is not None and element.get("from") != sender:
            return False
        if attrs and any(element.get(k) != v for k, v in attrs.items()):
            return False
        return child is None or any(c.tag == child or local_name(c) == child for c in element)

    return predicate


@dataclass
class Arrival:
    element: ET.Element
    at: float  # time.monotonic() when it arrived


@dataclass
class Inbox:
    """Elements received by one client, in order; waits never consume them."""

    owner: str
    arrivals: list[Arrival] = field(default_factory=list)
    closed_at: float | None = None
    close_reason: str = ""
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def push(self, element: ET.Element) -> None:
        self.arrivals.append(Arrival(element, time.monotonic()))
        self._wake()

    def mark_closed(self, reason: str) -> None:
        if self.closed_at is None:
            self.closed_at = time.monotonic()
            self.close_reason = reason
        self._wake()

    @property
    def elements(self) -> list[ET.Element]:
        return [arrival.element for arrival in self.arrivals]

    def since(self, mark: int) -> list[ET.Element]:
        """Elements that arrived after `mark = len(inbox.arrivals)` was taken."""
        return [arrival.element for arrival in self.arrivals[mark:]]

    def mark(self) -> int:
        return len(self.arrivals)

    async def wait_for(
        self, predicate: Predicate, what: str, timeout: float, after: int = 0
    ) -> ET.Element:
        """The first element after index `after` that matches, or StanzaTimeout."""
        found = await self.wait_for_count(predicate, 1, what, timeout, after)
        return found[0]

    async def wait_for_count(
        self, predicate: Predicate, count: int, what: str, timeout: float, after: int = 0
    ) -> list[ET.Element]:
        deadline = time.monotonic() + timeout
        while True:
            self._changed.clear()
            found = [e for e in self.since(after) if predicate(e)]
            if len(found) >= count:
                return found[:count]
            if self.closed_at is not None:
                raise ServerClosed(
                    self._describe(what, f"the stream closed ({self.close_reason})")
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StanzaTimeout(self._describe(what, f"nothing matching within {timeout:g} s"))
            await self._wait_change(remaining)

    async def collect(self, window: float, predicate: Predicate | None = None) -> list[ET.Element]:
        """Everything matching that arrives during a named window (for "nothing arrives")."""
        mark = self.mark()
        await asyncio.sleep(window)
        return [e for e in self.since(mark) if predicate is None or predicate(e)]

    async def wait_closed(self, timeout: float, what: str) -> float:
        """Waits until the server closes the connection; returns when it did."""
        deadline = time.monotonic() + timeout
        while self.closed_at is None:
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StanzaTimeout(self._describe(what, f"still open after {timeout:g} s"))
            await self._wait_change(remaining)
        return self.closed_at

    def _describe(self, what: str, outcome: str) -> str:
        got = [to_text(e) for e in self.elements[-12:]]
        listing = "\n    ".join(got) if got else "(nothing)"
        return f"{self.owner}: expected {what}; {outcome}. Received (last 12):\n    {listing}"

    def _wake(self) -> None:
        self._changed.set()

    async def _wait_change(self, remaining: float) -> None:
        # Callers clear the event before they look, so no push can slip between.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout=remaining)
