"""A raw XMPP stream client over a real XML parser, for what libraries hide.

Compression negotiation, idle connections, exact stream-management counters, abrupt TCP
drops and malformed input need the wire itself. Every read is bounded by the Inbox waits;
every byte in either direction goes to the transcript.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
import time
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

from clients.inbox import STREAM_NS, Inbox, local_name, matches, to_text
from clients.transcript import Transcript

log = logging.getLogger(__name__)

SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl"
BIND_NS = "urn:ietf:params:xml:ns:xmpp-bind"
SESSION_NS = "urn:ietf:params:xml:ns:xmpp-session"
STREAM_OPEN = (
    "<stream:stream to='{to}' xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
)
# Used only to read what a server sent without opening a stream first.
SYNTHETIC_HEADER = (
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
)
_ids = itertools.count(1)


class ConnectFailed(AssertionError):
    """The target did not accept a TCP connection."""


@dataclass
class StreamState:
    """What the server said at the stream level on the current stream."""

    header: dict[str, str] = field(default_factory=dict)
    header_text: str = ""
    features: ET.Element | None = None
    ended_by_server: bool = False
    missing_header: bool = False
    parse_error: str = ""


class RawStream:
    """One TCP connection speaking XMPP by hand."""

    def __init__(
        self,
        name: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        transcript: Transcript,
        domain: str,
    ) -> None:
        self.name = name
        self.domain = domain
        self.transcript = transcript
        self.inbox = Inbox(name)
        self.raw_received = bytearray()
        self.connected_at = time.monotonic()
        self.tcp_closed_at: float | None = None
        self.jid = ""
        self.state = StreamState()
        self._reader = reader
        self._writer = writer
        self._parser = self._new_parser()
        self._depth = 0
        self._root = ET.Element("none")
        self._inflate: zlib._Decompress | None = None
        self._deflate: zlib._Compress | None = None
        self._task = asyncio.create_task(self._read_loop(), name=f"raw-{name}")

    @classmethod
    async def connect(
        cls,
        name: str,
        host: str,
        port: int,
        transcript: Transcript,
        domain: str,
        timeout: float = 5.0,
    ) -> RawStream:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), timeout=timeout
            )
        except (OSError, TimeoutError) as exc:
            raise ConnectFailed(
                f"{name}: could not open TCP to {host}:{port} within {timeout:g} s: {exc!r}"
            ) from exc
        transcript.note(name, f"TCP connected to {host}:{port}")
        return cls(name, reader, writer, transcript, domain)

    # -- sending -------------------------------------------------------------------------

    def send(self, text: str) -> None:
        """Writes XML text as it is; the transcript gets it as sent."""
        if self._writer.is_closing():
            raise ConnectionError(f"{self.name}: cannot send, the connection is closed: {text}")
        self.transcript.sent(self.name, text)
        data = text.encode()
        if self._deflate is not None:
            data = self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        self._writer.write(data)

    def next_id(self, prefix: str = "raw") -> str:
        return f"{prefix}{next(_ids)}"

    # -- stream setup --------------------------------------------------------------------

    async def open_stream(self, timeout: float = 5.0) -> ET.Element:
        """Sends a stream header; returns the features the server answers with."""
        self._restart_parser()
        mark = self.inbox.mark()
        self.send(STREAM_OPEN.format(to=self.domain))
        features = await self.inbox.wait_for(
            matches("features", xmlns=STREAM_NS), "<stream:features>", timeout, after=mark
        )
        self.state.features = features
        return features

    async def auth_plain(self, user: str, password: str, timeout: float = 5.0) -> ET.Element:
        """One SASL PLAIN attempt; returns the server's <success/> or <failure/>."""
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        mark = self.inbox.mark()
        self.send(f"<auth xmlns='{SASL_NS}' mechanism='PLAIN'>{token}</auth>")
        return await self.inbox.wait_for(
            lambda e: local_name(e) in ("success", "failure") and e.tag.startswith(f"{{{SASL_NS}"),
            "SASL <success/> or <failure/>",
            timeout,
            after=mark,
        )

    async def authenticate(self, user: str, password: str, timeout: float = 5.0) -> ET.Element:
        """Stream open, SASL PLAIN and the stream restart; returns post-auth features."""
        await self.open_stream(timeout)
        answer = await self.auth_plain(user, password, timeout)
        if local_name(answer) != "success":
            raise AssertionError(f"{self.name}: SASL PLAIN for {user} failed: {to_text(answer)}")
        return await self.open_stream(timeout)

    async def bind(self, resource: str, timeout: float = 5.0) -> str:
        iq_id = self.next_id("bind")
        mark = self.inbox.mark()
        self.send(
            f"<iq type='set' id='{iq_id}'><bind xmlns='{BIND_NS}'>"
            f"<resource>{resource}</resource></bind></iq>"
        )
        answer = await self.inbox.wait_for(
            matches("iq", attrs={"id": iq_id}), f"the bind result (id {iq_id})", timeout, mark
        )
        jid = answer.findtext(f"{{{BIND_NS}}}bind/{{{BIND_NS}}}jid") or ""
        if answer.get("type") != "result" or not jid:
            raise AssertionError(f"{self.name}: bind failed: {to_text(answer)}")
        self.jid = jid
        return jid

    async def start_session(self, timeout: float = 5.0) -> ET.Element:
        """Sends the RFC 3921 session IQ when the server still lists it (both MongooseIMs)."""
        iq_id = self.next_id("sess")
        mark = self.inbox.mark()
        self.send(f"<iq type='set' id='{iq_id}'><session xmlns='{SESSION_NS}'/></iq>")
        return await self.inbox.wait_for(
            matches("iq", attrs={"id": iq_id}), f"the session result (id {iq_id})", timeout, mark
        )

    def offers_session(self, features: ET.Element | None) -> bool:
        return features is not None and features.find(f"{{{SESSION_NS}}}session") is not None

    async def login(self, user: str, password: str, resource: str, timeout: float = 5.0) -> str:
        """Stream, SASL PLAIN, restart, bind and (when offered) the session IQ."""
        features = await self.authenticate(user, password, timeout)
        jid = await self.bind(resource, timeout)
        if self.offers_session(features):
            await self.start_session(timeout)
        self.transcript.note(self.name, f"logged in as {jid}")
        return jid

    # -- compression (XEP-0138) ----------------------------------------------------------

    def start_compression(self) -> None:
        """Switches both directions to zlib after the server's <compressed/>."""
        self._deflate = zlib.compressobj()
        self._inflate = zlib.decompressobj()
        self.transcript.note(self.name, "zlib compression on; a new stream header follows")

    # -- closing -------------------------------------------------------------------------

    def close_stream(self) -> None:
        """Sends </stream:stream>, the clean way to end a session."""
        self.send("</stream:stream>")

    async def drop(self) -> None:
        """Closes TCP without </stream:stream>, as a client that lost its network."""
        self.transcript.sent(self.name, "[TCP close without </stream:stream>]")
        self._writer.close()
        self.inbox.mark_closed("closed by the client")
        await self._finish()

    async def aclose(self) -> None:
        """Ends the connection quietly after a test; never raises."""
        if not self._writer.is_closing():
            try:
                self.send("</stream:stream>")
                await asyncio.wait_for(self._writer.drain(), timeout=1.0)
            except (ConnectionError, TimeoutError):
                pass
            self._writer.close()
        self.inbox.mark_closed("closed by the client")
        await self._finish()

    async def _finish(self) -> None:
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(self._writer.wait_closed(), timeout=1.0)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task

    # -- reading -------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        while True:
            try:
                data = await self._reader.read(65536)
            except (ConnectionError, OSError) as exc:
                self._closed_by_server(f"connection error: {exc!r}")
                return
            if not data:
                self._closed_by_server("TCP closed by the server")
                return
            self.raw_received.extend(data)
            if self._inflate is not None:
                data = self._inflate.decompress(data)
            text = data.decode("utf-8", errors="replace")
            self.transcript.received(self.name, text)
            self._feed(text)

    def _closed_by_server(self, reason: str) -> None:
        self.tcp_closed_at = time.monotonic()
        self.transcript.received(self.name, f"[{reason}]")
        self.inbox.mark_closed(reason)

    def _new_parser(self) -> ET.XMLPullParser[ET.Element]:
        return ET.XMLPullParser(events=("start", "end"))

    def _restart_parser(self) -> None:
        self._parser = self._new_parser()
        self._depth = 0
        self.state = StreamState()

    def _feed(self, text: str) -> None:
        try:
            self._parser.feed(text)
            self._drain_events()
        except ET.ParseError as exc:
            if self._depth == 0 and not self.state.header:
                self._read_headerless(text)
                return
            self.state.parse_error = str(exc)
            self.transcript.note(self.name, f"server sent XML that does not parse: {exc}")

    def _read_headerless(self, text: str) -> None:
        """Reads elements a server sent before (or without) its stream header."""
        self.state.missing_header = True
        self.transcript.note(self.name, "server sent elements without a stream header")
        self._parser = self._new_parser()
        try:
            self._parser.feed(SYNTHETIC_HEADER)
            self._drain_events()
            self.state.header = {}
            self._parser.feed(text)
            self._drain_events()
        except ET.ParseError as exc:
            self.state.parse_error = str(exc)
            self.transcript.note(self.name, f"server sent XML that does not parse: {exc}")

    def _drain_events(self) -> None:
        events = cast(Iterator[tuple[str, ET.Element]], self._parser.read_events())
        for event, payload in events:
            if event == "start":
                if self._depth == 0:
                    self.state.header = dict(payload.attrib)
                    self._root = payload
                self._depth += 1
            else:
                self._depth -= 1
                if self._depth == 0:
                    self.state.ended_by_server = True
                    self.transcript.note(self.name, "server ended its stream")
                    self.inbox.mark_closed("the server sent </stream:stream>")
                elif self._depth == 1:
                    self._root.remove(payload)
                    self.inbox.push(payload)
