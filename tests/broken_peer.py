"""A deliberately broken XMPP peer, for testing the harness only.

It listens on 127.0.0.1, speaks just enough XMPP for the raw client to reach the stage a
check needs (stream header, SASL PLAIN, bind) and misbehaves in the one way a test asks
for: it turns compression on where a profile refuses it, never answers, closes early,
sends a stream error without a stream header, or closes after a few failed SASL attempts.
It is never a conformance target: it shows that each check fails, with a clear message,
when a server does what the profile says it must not.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass

from harness.background import Background

log = logging.getLogger(__name__)

PASSWORD = "right"
HEADER = (
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' id='peer{n}' from='localhost' "
    "version='1.0'>"
)
MECHANISMS = (
    "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>"
    "</mechanisms>"
)
BIND = "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
TIMEOUT_ERROR = (
    "<stream:error><connection-timeout xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
    "</stream:error></stream:stream>"
)
SASL_FAILURE = "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>"

OPEN = re.compile(r"<stream:stream[^>]*>")
AUTH = re.compile(r"<auth[^>]*>([^<]*)</auth>")
COMPRESS = re.compile(r"<compress[^>]*>.*?</compress>|<compress[^>]*/>", re.S)
IQ = re.compile(r"<iq[^>]*id='([^']+)'[^>]*>(.*?)</iq>", re.S)


@dataclass(frozen=True)
class Misbehaviour:
    """What the peer does wrong. Unset fields behave like a plain server."""

    silent: bool = False  # accept TCP, never send a byte, never close
    close_after: float | None = None  # seconds after accept: close TCP without a word
    headerless_timeout_after: float | None = None  # seconds after accept: bare stream error
    compress_answer: str | None = None  # sent back on <compress/>; None: no answer
    offer_compression: bool = False  # list zlib compression in every feature set
    sasl_close_after: int | None = None  # failed attempts after which TCP is closed
    iq_answer: str | None = None  # sent back on any IQ but bind, `{id}` filled in


class BrokenPeer:
    """One listening socket; each connection gets its own state."""

    def __init__(self, misbehaviour: Misbehaviour) -> None:
        self.misbehaviour = misbehaviour
        self.port = 0
        self._server: asyncio.Server | None = None
        self._streams = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("broken peer listening on 127.0.0.1:%d: %s", self.port, self.misbehaviour)
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        timers = [asyncio.create_task(self._timer(writer))]
        try:
            if self.misbehaviour.silent:
                await reader.read()
                return
            await self._converse(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            for timer in timers:
                timer.cancel()
            writer.close()

    async def _timer(self, writer: asyncio.StreamWriter) -> None:
        wrong = self.misbehaviour
        if wrong.close_after is not None:
            await asyncio.sleep(wrong.close_after)
            writer.close()
        elif wrong.headerless_timeout_after is not None:
            await asyncio.sleep(wrong.headerless_timeout_after)
            writer.write(TIMEOUT_ERROR.encode())
            await writer.drain()
            writer.close()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer, authenticated, failures = "", False, 0
        while data := await reader.read(4096):
            buffer += data.decode()
            while True:
                step = self._next(buffer)
                if step is None:
                    break
                kind, match = step
                buffer = buffer[match.end() :]
                if kind == "open":
                    self._streams += 1
                    writer.write(self._features(authenticated).encode())
                elif kind == "auth":
                    authenticated, failures = self._auth(writer, match, failures)
                    if failures and failures == self.misbehaviour.sasl_close_after:
                        await writer.drain()
                        return
                elif kind == "compress" and self.misbehaviour.compress_answer is not None:
                    writer.write(self.misbehaviour.compress_answer.encode())
                elif kind == "iq":
                    self._iq(writer, match)
                await writer.drain()

    def _next(self, buffer: str) -> tuple[str, re.Match[str]] | None:
        found = [
            (match.start(), kind, match)
            for kind, pattern in (
                ("open", OPEN),
                ("auth", AUTH),
                ("compress", COMPRESS),
                ("iq", IQ),
            )
            if (match := pattern.search(buffer)) is not None
        ]
        if not found:
            return None
        _, kind, match = min(found, key=lambda item: item[0])
        return kind, match

    def _features(self, authenticated: bool) -> str:
        offer = (
            "<compression xmlns='http://jabber.org/features/compress'><method>zlib</method>"
            "</compression>"
            if self.misbehaviour.offer_compression
            else ""
        )
        inner = offer + (BIND if authenticated else MECHANISMS)
        return HEADER.format(n=self._streams) + f"<stream:features>{inner}</stream:features>"

    def _auth(
        self, writer: asyncio.StreamWriter, match: re.Match[str], failures: int
    ) -> tuple[bool, int]:
        password = base64.b64decode(match.group(1)).split(b"\0")[-1].decode()
        if password == PASSWORD:
            writer.write(b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
            return True, failures
        writer.write(SASL_FAILURE.encode())
        return False, failures + 1

    def _iq(self, writer: asyncio.StreamWriter, match: re.Match[str]) -> None:
        iq_id, body = match.group(1), match.group(2)
        if "xmpp-bind" in body:
            jid = "peer@localhost/bound"
            writer.write(
                f"<iq type='result' id='{iq_id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                f"<jid>{jid}</jid></bind></iq>".encode()
            )
        elif self.misbehaviour.iq_answer is not None:
            writer.write(self.misbehaviour.iq_answer.format(id=iq_id).encode())


@contextlib.contextmanager
def running(misbehaviour: Misbehaviour) -> Iterator[int]:
    """Runs a broken peer on a thread of its own (so sync and async tests can use it);
    yields its port and stops it afterwards."""
    background = Background("broken-peer")
    peer = BrokenPeer(misbehaviour)
    try:
        port = background.submit("start", peer.start()).result(timeout=5)
        yield port
    finally:
        with contextlib.suppress(Exception):
            background.submit("stop", peer.stop()).result(timeout=5)
        background.close()
