"""Chat clients on interchangeable stacks: slixmpp, aioxmpp, or the raw stream.

A suite speaks to `ChatClient` only: send presence or a message, wait on the inbox, close
cleanly or drop the TCP connection. The stack is a test parameter, visible in the report,
so a result does not rest on one library's behaviour. Every received stanza lands in the
inbox as an ElementTree element in the `jabber:client` namespace, and in the transcript.
"""

from __future__ import annotations

import abc
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from clients.admin import Account
from clients.inbox import (
    Inbox,
    Predicate,
    ServerClosed,
    StanzaTimeout,
    local_name,
    matches,
    namespace,
)
from clients.raw import RawStream
from clients.transcript import Transcript

log = logging.getLogger(__name__)

STACKS = ("slixmpp", "aioxmpp")


@dataclass(frozen=True)
class Endpoint:
    """Where a client connects: the node's host and c2s port, and the XMPP domain."""

    host: str
    port: int
    domain: str


def presence_xml(
    to: str | None = None, type_: str | None = None, status: str | None = None
) -> str:
    attrs = (f" to='{to}'" if to else "") + (f" type='{type_}'" if type_ else "")
    inner = f"<status>{status}</status>" if status else ""
    return f"<presence{attrs}>{inner}</presence>" if inner else f"<presence{attrs}/>"


def message_xml(to: str, body: str, msg_id: str, type_: str = "chat") -> str:
    return f"<message to='{to}' type='{type_}' id='{msg_id}'><body>{body}</body></message>"


# -- stream management (XEP-0198) ---------------------------------------------------------

SM_NS = "urn:xmpp:sm:3"
# What counts towards `h` on either side (XEP-0198 section 4): stanzas, not nonzas.
STANZAS = ("message", "presence", "iq")


def sm_xml(name: str, **attrs: str | int) -> str:
    """A stream-management element: sm_xml("a", h=3) is <a xmlns='urn:xmpp:sm:3' h='3'/>."""
    text = "".join(f" {key}='{value}'" for key, value in attrs.items())
    return f"<{name} xmlns='{SM_NS}'{text}/>"


def is_sm(*names: str) -> Predicate:
    """Matches the stream-management elements named, e.g. is_sm("enabled", "failed")."""
    return lambda e: namespace(e) == SM_NS and local_name(e) in names


def is_stanza(element: ET.Element) -> bool:
    return local_name(element) in STANZAS


class ChatClient(abc.ABC):
    """One logged-in session of one user."""

    stack = "abstract"

    def __init__(self, name: str, transcript: Transcript) -> None:
        self.name = name
        self.transcript = transcript
        self.inbox = Inbox(name)
        self.jid = ""

    @abc.abstractmethod
    async def send_presence(
        self, to: str | None = None, type_: str | None = None, status: str | None = None
    ) -> None: ...

    @abc.abstractmethod
    async def send_message(self, to: str, body: str, msg_id: str, type_: str = "chat") -> None: ...

    @abc.abstractmethod
    async def barrier(self, timeout: float = 5.0) -> None:
        """Round-trips a ping IQ: everything sent before it has been processed."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Ends the session with </stream:stream>."""

    @abc.abstractmethod
    async def drop(self) -> None:
        """Closes TCP without ending the stream, as a client that lost its network."""

    # -- stream management (XEP-0198) -----------------------------------------------------

    # The server's answer to this session's <enable/> (<enabled/> or <failed/>); None when
    # no <enable/> was sent or nothing came back.
    sm_answer: ET.Element | None = None

    async def interrupt(self) -> None:
        """Loses TCP without </stream:stream> and keeps the state needed to resume."""
        raise NotImplementedError(f"{self.stack}: stream management is not wired up")

    async def resume(self, timeout: float = 5.0) -> ET.Element | None:
        """Reconnects after interrupt() and resumes; returns <resumed/> or <failed/>, or
        None when neither came. The inbox starts empty on the new connection."""
        raise NotImplementedError(f"{self.stack}: stream management is not wired up")


class RawChat(ChatClient):
    """The chat interface over the raw stream client."""

    stack = "raw"
    # Kept by login() so that resume() can authenticate a new connection.
    endpoint: Endpoint | None = None
    account: Account | None = None
    # The connection a resumption replaced, still readable (the server may close it).
    previous: RawStream | None = None
    # Inbox index at <enabled/>: stanzas after it count towards this client's `h`.
    _sm_mark = 0

    def __init__(self, stream: RawStream) -> None:
        super().__init__(stream.name, stream.transcript)
        self.stream = stream
        self.inbox = stream.inbox

    @classmethod
    async def login(
        cls,
        name: str,
        endpoint: Endpoint,
        account: Account,
        resource: str,
        transcript: Transcript,
        timeout: float = 10.0,
    ) -> RawChat:
        stream = await RawStream.connect(
            name, endpoint.host, endpoint.port, transcript, endpoint.domain, timeout
        )
        client = cls(stream)
        client.endpoint, client.account = endpoint, account
        client.jid = await stream.login(account.local, account.password, resource, timeout)
        return client

    async def send_presence(
        self, to: str | None = None, type_: str | None = None, status: str | None = None
    ) -> None:
        self.stream.send(presence_xml(to, type_, status))

    async def send_message(self, to: str, body: str, msg_id: str, type_: str = "chat") -> None:
        self.stream.send(message_xml(to, body, msg_id, type_))

    async def barrier(self, timeout: float = 5.0) -> None:
        iq_id = self.stream.next_id("ping")
        mark = self.inbox.mark()
        ping = "<ping xmlns='urn:xmpp:ping'/>"
        self.stream.send(f"<iq type='get' id='{iq_id}' to='{self.stream.domain}'>{ping}</iq>")
        await self.inbox.wait_for(
            matches("iq", attrs={"id": iq_id}), f"the ping reply (id {iq_id})", timeout, mark
        )

    async def close(self) -> None:
        await self.stream.aclose()
        await self.close_previous()

    async def drop(self) -> None:
        await self.stream.drop()

    # -- stream management (XEP-0198): the wire, with h chosen by the test ---------------

    async def enable_sm(self, resume: bool, timeout: float = 5.0) -> ET.Element | None:
        """Sends <enable/> (with resume='true' when asked) and waits up to `timeout` for
        <enabled/> or <failed/>; None when neither came (the inbox shows what did)."""
        mark = self.inbox.mark()
        self.stream.send(sm_xml("enable", resume="true") if resume else sm_xml("enable"))
        self.sm_answer = await _first(
            self.inbox, is_sm("enabled", "failed"), "<enabled/> or <failed/>", timeout, mark
        )
        if self.sm_answer is not None and local_name(self.sm_answer) == "enabled":
            self._sm_mark = self.inbox.mark()
            log.info("%s: SM enabled id=%s", self.name, self.sm_answer.get("id", ""))
        return self.sm_answer

    def handled(self) -> int:
        """Stanzas received since <enabled/>: the `h` a conforming client would report."""
        return sum(1 for e in self.inbox.since(self._sm_mark) if is_stanza(e))

    def request_ack(self) -> None:
        self.stream.send(sm_xml("r"))

    def ack(self, h: int | None = None) -> None:
        self.stream.send(sm_xml("a", h=self.handled() if h is None else h))

    async def interrupt(self) -> None:
        await self.stream.drop()

    async def resume(self, timeout: float = 5.0, h: int | None = None) -> ET.Element | None:
        """A new connection authenticates and sends <resume previd h/> before bind; `h`
        defaults to the stanzas handled on the old connection. The old connection stays
        readable as `previous`."""
        if self.endpoint is None or self.account is None:
            raise RuntimeError(f"{self.name}: resume() needs a client made by login()")
        previd = self.sm_answer.get("id", "") if self.sm_answer is not None else ""
        count = self.handled() if h is None else h
        stream = await RawStream.connect(
            self.name,
            self.endpoint.host,
            self.endpoint.port,
            self.transcript,
            self.endpoint.domain,
            timeout,
        )
        self.previous, self.stream, self.inbox = self.stream, stream, stream.inbox
        await stream.authenticate(self.account.local, self.account.password, timeout)
        mark = self.inbox.mark()
        stream.send(sm_xml("resume", previd=previd, h=count))
        answer = await _first(
            self.inbox, is_sm("resumed", "failed"), "<resumed/> or <failed/>", timeout, mark
        )
        if answer is not None and local_name(answer) == "resumed":
            stream.jid = self.jid
            self._sm_mark = self.inbox.mark()
        log.info(
            "%s: resume previd=%s h=%d -> %s",
            self.name,
            previd,
            count,
            local_name(answer) if answer is not None else "no answer",
        )
        return answer

    async def close_previous(self) -> None:
        if self.previous is not None:
            await self.previous.aclose()


async def _first(
    inbox: Inbox, predicate: Predicate, what: str, timeout: float, after: int
) -> ET.Element | None:
    """The first matching element within `timeout`, or None: observing never asserts."""
    try:
        return await inbox.wait_for(predicate, what, timeout, after)
    except (StanzaTimeout, ServerClosed):
        return None


def element_of(text: str) -> ET.Element:
    """Parses one serialised stanza; unqualified names are read as jabber:client."""
    wrapper = ET.fromstring(f"<wrapper xmlns='jabber:client'>{text}</wrapper>")
    return wrapper[0]
