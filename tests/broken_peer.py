"""A deliberately broken XMPP peer, for testing the harness only.

It listens on 127.0.0.1, speaks just enough XMPP for the raw client to reach the stage a
check needs (stream header, SASL PLAIN, bind) and misbehaves in the one way a test asks
for: it turns compression on where a profile refuses it, never answers, closes early,
sends a stream error without a stream header, or closes after a few failed SASL attempts.

With `stream_management` it also serves several sessions at once: it routes messages
between the bound JIDs and speaks XEP-0198 the way profiles/prosody.toml describes it
(<enabled id max resume/>, <r/> and <a h/>, a session held after a TCP drop, <resume/>
that resends the unacknowledged stanzas with <delay from='<bare JID>'/>), so that the
resumption checks can run against it; the resumption faults then drop or duplicate one of
the resent stanzas.

It is never a conformance target: it shows that each check fails, with a clear message,
when a server does what the profile says it must not.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

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

SM_NS = "urn:xmpp:sm:3"
SM_FEATURE = f"<sm xmlns='{SM_NS}'/>"
# The `max` of <enabled/>: seconds a session may be held (this peer holds it until it stops).
SM_MAX = 300
DELAY_STAMP = "2024-01-01T00:00:00Z"
ITEM_NOT_FOUND = (
    f"<failed xmlns='{SM_NS}'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
    "</failed>"
)

OPEN = re.compile(r"<stream:stream[^>]*>")
AUTH = re.compile(r"<auth[^>]*>([^<]*)</auth>")
COMPRESS = re.compile(r"<compress[^>]*>.*?</compress>|<compress[^>]*/>", re.S)
IQ = re.compile(r"<iq[^>]*id='([^']+)'[^>]*>(.*?)</iq>", re.S)
# Read only when the peer serves stream management (Misbehaviour.stream_management).
CLOSE = re.compile(r"</stream:stream>")
SM = re.compile(r"<(enable|resume|r|a)\s[^>]*xmlns='urn:xmpp:sm:3'[^>]*/>")
MESSAGE = re.compile(r"<message\b[^>]*?/>|<message\b[^>]*>.*?</message>", re.S)
PRESENCE = re.compile(r"<presence\b[^>]*?/>|<presence\b[^>]*>.*?</presence>", re.S)
ATTRIBUTE = "{name}='([^']*)'"


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
    stream_management: bool = False  # route messages between sessions and serve XEP-0198
    resume_drops_one: bool = False  # a resumption leaves out the first unacked stanza
    resume_duplicates_one: bool = False  # a resumption sends the first unacked one twice


@dataclass
class Session:
    """A bound resource; with SM enabled, it counts stanzas both ways and keeps what the
    client has not acknowledged, so that a new connection can resume it."""

    jid: str
    writer: asyncio.StreamWriter | None
    sm_id: str = ""
    resumable: bool = False
    received: int = 0  # stanzas from the client since <enable/>: the server's `h`
    acked: int = 0  # stanzas the client acknowledged (its last `h`)
    sent: list[str] = field(default_factory=list)  # stanzas to the client since <enable/>

    @property
    def bare(self) -> str:
        return self.jid.split("/", 1)[0]

    def unacked(self) -> list[str]:
        return self.sent[self.acked :]


@dataclass
class Connection:
    """What the peer knows about one TCP connection."""

    writer: asyncio.StreamWriter
    authenticated: bool = False
    failures: int = 0
    user: str = "peer"
    session: Session | None = None
    closed_cleanly: bool = False


class BrokenPeer:
    """One listening socket; each connection gets its own state."""

    def __init__(self, misbehaviour: Misbehaviour) -> None:
        self.misbehaviour = misbehaviour
        self.port = 0
        self._server: asyncio.Server | None = None
        self._streams = 0
        self._sessions: dict[str, Session] = {}
        self._resumable: dict[str, Session] = {}
        self._sm_ids = itertools.count(1)

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
        buffer, link = "", Connection(writer)
        try:
            while data := await reader.read(4096):
                buffer += data.decode()
                while (step := self._next(buffer)) is not None:
                    kind, match = step
                    buffer = buffer[match.end() :]
                    going_on = self._handle(link, kind, match)
                    await writer.drain()
                    if not going_on:
                        return
        finally:
            self._detach(link)

    def _handle(self, link: Connection, kind: str, match: re.Match[str]) -> bool:
        """Answers one element; False when the peer closes the connection after it."""
        if kind in ("message", "presence", "iq"):
            self._count_inbound(link)
        if kind == "open":
            self._streams += 1
            link.writer.write(self._features(link.authenticated).encode())
        elif kind == "auth":
            link.user = _user_of(match) or link.user
            link.authenticated, link.failures = self._auth(link.writer, match, link.failures)
            if link.failures and link.failures == self.misbehaviour.sasl_close_after:
                return False
        elif kind == "compress" and self.misbehaviour.compress_answer is not None:
            link.writer.write(self.misbehaviour.compress_answer.encode())
        elif kind == "iq":
            self._iq(link, match)
        elif kind == "message":
            self._route(link, match.group(0))
        elif kind == "sm":
            self._stream_management(link, match)
        elif kind == "close":
            link.closed_cleanly = True
            link.writer.write(b"</stream:stream>")
            return False
        return True

    def _next(self, buffer: str) -> tuple[str, re.Match[str]] | None:
        patterns = [("open", OPEN), ("auth", AUTH), ("compress", COMPRESS), ("iq", IQ)]
        if self.misbehaviour.stream_management:
            patterns += [
                ("close", CLOSE),
                ("sm", SM),
                ("message", MESSAGE),
                ("presence", PRESENCE),
            ]
        found = [
            (match.start(), kind, match)
            for kind, pattern in patterns
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
        sm = SM_FEATURE if authenticated and self.misbehaviour.stream_management else ""
        inner = offer + (BIND + sm if authenticated else MECHANISMS)
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

    def _iq(self, link: Connection, match: re.Match[str]) -> None:
        iq_id, body = match.group(1), match.group(2)
        if "xmpp-bind" in body:
            resource = re.search(r"<resource>([^<]*)</resource>", body)
            jid = f"{link.user}@localhost/{resource.group(1) if resource else 'bound'}"
            link.session = Session(jid, link.writer)
            self._sessions[jid] = link.session
            link.writer.write(
                f"<iq type='result' id='{iq_id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                f"<jid>{jid}</jid></bind></iq>".encode()
            )
        elif self.misbehaviour.iq_answer is not None:
            link.writer.write(self.misbehaviour.iq_answer.format(id=iq_id).encode())
        elif self.misbehaviour.stream_management and "urn:xmpp:ping" in body:
            link.writer.write(f"<iq type='result' id='{iq_id}'/>".encode())

    # -- sessions and stream management (Misbehaviour.stream_management) -----------------

    def _route(self, link: Connection, stanza: str) -> None:
        """Delivers a message to the session bound to its `to`; others are dropped."""
        to = _attribute(stanza, "to")
        recipient = self._sessions.get(to)
        if link.session is None or recipient is None:
            log.info("broken peer: no session %r for %s", to, stanza[:80])
            return
        self._deliver(recipient, _with_from(stanza, link.session.jid))

    def _deliver(self, session: Session, stanza: str) -> None:
        if session.sm_id:
            session.sent.append(stanza)
        if session.writer is not None and not session.writer.is_closing():
            session.writer.write(stanza.encode())

    def _count_inbound(self, link: Connection) -> None:
        if link.session is not None and link.session.sm_id:
            link.session.received += 1

    def _stream_management(self, link: Connection, match: re.Match[str]) -> None:
        name, element = match.group(1), match.group(0)
        session = link.session
        if name == "resume":
            self._resume(link, element)
        elif session is None:
            link.writer.write(
                f"<failed xmlns='{SM_NS}'><unexpected-request "
                "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>".encode()
            )
        elif name == "enable":
            session.sm_id = f"peer-sm-{next(self._sm_ids)}"
            session.resumable = _attribute(element, "resume") in ("true", "1")
            if session.resumable:
                self._resumable[session.sm_id] = session
            extra = f" id='{session.sm_id}' max='{SM_MAX}' resume='true'"
            link.writer.write(
                f"<enabled xmlns='{SM_NS}'{extra if session.resumable else ''}/>".encode()
            )
        elif name == "r":
            link.writer.write(f"<a xmlns='{SM_NS}' h='{session.received}'/>".encode())
        elif name == "a":
            session.acked = int(_attribute(element, "h") or session.acked)

    def _resume(self, link: Connection, element: str) -> None:
        """<resume previd h/>: <resumed/>, then the stanzas after `h` again, with <delay/>;
        the connection the session had before is closed without a stream error."""
        previd, h = _attribute(element, "previd"), int(_attribute(element, "h") or 0)
        session = self._resumable.get(previd)
        if session is None or link.session is not None:
            link.writer.write(ITEM_NOT_FOUND.encode())
            return
        if session.writer is not None and not session.writer.is_closing():
            session.writer.close()
        session.writer, link.session, session.acked = link.writer, session, h
        link.writer.write(
            f"<resumed xmlns='{SM_NS}' previd='{previd}' h='{session.received}'/>".encode()
        )
        for stanza in self._resent(session):
            link.writer.write(_with_delay(stanza, session.bare).encode())
        log.info("broken peer: %s resumed with h=%d", session.jid, h)

    def _resent(self, session: Session) -> list[str]:
        """What a resumption sends again: the unacked stanzas, or the faulty variants."""
        unacked = session.unacked()
        if unacked and self.misbehaviour.resume_drops_one:
            return unacked[1:]
        if unacked and self.misbehaviour.resume_duplicates_one:
            return [unacked[0], *unacked]
        return unacked

    def _detach(self, link: Connection) -> None:
        """The connection is gone: a resumable session is held, any other one ends."""
        session = link.session
        if session is None or session.writer is not link.writer:
            return
        session.writer = None
        if session.resumable and not link.closed_cleanly:
            log.info("broken peer: holding %s as %s", session.jid, session.sm_id)
            return
        self._sessions.pop(session.jid, None)
        self._resumable.pop(session.sm_id, None)


def _attribute(element: str, name: str) -> str:
    """An attribute of the first tag of `element` (single quotes, as the clients write)."""
    tag = element.split(">", 1)[0]
    found = re.search(ATTRIBUTE.format(name=name), tag)
    return found.group(1) if found else ""


def _user_of(match: re.Match[str]) -> str:
    """The authentication identity of a SASL PLAIN <auth/>."""
    parts = base64.b64decode(match.group(1)).split(b"\0")
    return parts[1].decode() if len(parts) == 3 else ""


def _with_from(stanza: str, sender: str) -> str:
    if _attribute(stanza, "from"):
        return stanza
    return re.sub(r"^<(\w+)", lambda m: f"<{m.group(1)} from='{sender}'", stanza, count=1)


def _with_delay(stanza: str, origin: str) -> str:
    """The stanza with <delay xmlns='urn:xmpp:delay' from='origin'/> as its last child."""
    delay = f"<delay xmlns='urn:xmpp:delay' from='{origin}' stamp='{DELAY_STAMP}'/>"
    name = re.match(r"<(\w+)", stanza)
    tag = name.group(1) if name else "message"
    if stanza.endswith("/>"):
        return f"{stanza[:-2]}>{delay}</{tag}>"
    return stanza[: -len(f"</{tag}>")] + delay + f"</{tag}>"


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
