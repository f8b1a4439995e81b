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
from clients.inbox import Inbox, matches
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


class RawChat(ChatClient):
    """The chat interface over the raw stream client."""

    stack = "raw"

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

    async def drop(self) -> None:
        await self.stream.drop()


def element_of(text: str) -> ET.Element:
    """Parses one serialised stanza; unqualified names are read as jabber:client."""
    wrapper = ET.fromstring(f"<wrapper xmlns='jabber:client'>{text}</wrapper>")
    return wrapper[0]
