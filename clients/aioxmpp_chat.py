"""The chat interface on aioxmpp: a second, independent XMPP implementation.

aioxmpp enables stream management on its own whenever the server offers it; a session
that did not ask for it must not have it (a 6.1.0 server holds SM sessions after a drop),
so the feature is hidden from the library unless the test wants it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aioxmpp
import aioxmpp.connector
import aioxmpp.nonza
import aioxmpp.ping
import aioxmpp.security_layer as security
import aioxmpp.xml

from clients.admin import Account
from clients.chat import ChatClient, Endpoint, element_of
from clients.inbox import StanzaTimeout

log = logging.getLogger(__name__)

PRESENCE_TYPES = {
    None: aioxmpp.PresenceType.AVAILABLE,
    "unavailable": aioxmpp.PresenceType.UNAVAILABLE,
    "subscribe": aioxmpp.PresenceType.SUBSCRIBE,
    "subscribed": aioxmpp.PresenceType.SUBSCRIBED,
    "unsubscribe": aioxmpp.PresenceType.UNSUBSCRIBE,
    "unsubscribed": aioxmpp.PresenceType.UNSUBSCRIBED,
    "probe": aioxmpp.PresenceType.PROBE,
}


class _Client(aioxmpp.Client):  # type: ignore[misc]
    """aioxmpp's client with stream management used only when asked for."""

    use_sm = False

    async def _negotiate_stream(self, xmlstream: Any, features: Any) -> Any:
        if not self.use_sm:
            with contextlib.suppress(KeyError):
                del features[aioxmpp.nonza.StreamManagementFeature]
        return await super()._negotiate_stream(xmlstream, features)


def _security(password: str) -> Any:
    return security.SecurityLayer(
        ssl_context_factory=security.default_ssl_context,
        certificate_verifier_factory=security._NullVerifier,
        tls_required=False,
        sasl_providers=[security.PasswordSASLProvider(lambda _jid, _n: _password(password))],
    )


async def _password(password: str) -> str:
    return password


class AioxmppChat(ChatClient):
    stack = "aioxmpp"

    def __init__(self, name: str, client: _Client, transcript: Any) -> None:
        super().__init__(name, transcript)
        self.client = client
        self._exit = contextlib.AsyncExitStack()
        stream = client.stream
        stream.service_inbound_message_filter.register(self._incoming, 0)
        stream.service_inbound_presence_filter.register(self._incoming, 0)
        stream.service_outbound_message_filter.register(self._outgoing, 0)
        stream.service_outbound_presence_filter.register(self._outgoing, 0)
        client.on_stream_destroyed.connect(self._destroyed)

    @classmethod
    async def login(
        cls,
        name: str,
        endpoint: Endpoint,
        account: Account,
        resource: str,
        transcript: Any,
        timeout: float = 10.0,
        use_sm: bool = False,
    ) -> AioxmppChat:
        jid = aioxmpp.JID.fromstr(f"{account.jid}/{resource}")
        connector = aioxmpp.connector.STARTTLSConnector()
        client = _Client(
            jid,
            _security(account.password),
            override_peer=[(endpoint.host, endpoint.port, connector)],
            logger=logging.getLogger(f"aioxmpp.{name}"),
        )
        client.use_sm = use_sm
        client.backoff_cap = timeout
        chat = cls(name, client, transcript)
        transcript.note(name, f"aioxmpp connecting to {endpoint.host}:{endpoint.port}")
        try:
            await asyncio.wait_for(
                chat._exit.enter_async_context(client.connected()), timeout=timeout
            )
        except (TimeoutError, aioxmpp.errors.StreamError, ConnectionError) as exc:
            await chat._exit.aclose()
            raise StanzaTimeout(
                f"{name}: aioxmpp session for {account.jid} not established within "
                f"{timeout:g} s: {exc!r}"
            ) from None
        chat.jid = str(client.local_jid)
        transcript.note(name, f"logged in as {chat.jid}")
        return chat

    async def send_presence(
        self, to: str | None = None, type_: str | None = None, status: str | None = None
    ) -> None:
        presence = aioxmpp.Presence(
            type_=PRESENCE_TYPES[type_], to=aioxmpp.JID.fromstr(to) if to else None
        )
        if status:
            presence.status[None] = status
        await self.client.send(presence)

    async def send_message(self, to: str, body: str, msg_id: str, type_: str = "chat") -> None:
        message = aioxmpp.Message(
            type_=aioxmpp.MessageType(type_), to=aioxmpp.JID.fromstr(to), id_=msg_id
        )
        message.body[None] = body
        await self.client.send(message)

    async def barrier(self, timeout: float = 5.0) -> None:
        iq = aioxmpp.IQ(
            type_=aioxmpp.IQType.GET,
            to=self.client.local_jid.replace(localpart=None, resource=None),
            payload=aioxmpp.ping.Ping(),
        )
        try:
            await asyncio.wait_for(self.client.send(iq), timeout=timeout)
        except aioxmpp.errors.XMPPError:
            pass  # an error reply is still a reply: the server processed what came before
        except TimeoutError:
            raise StanzaTimeout(f"{self.name}: no reply to a ping within {timeout:g} s") from None

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self._exit.aclose(), timeout=3.0)
        except TimeoutError:
            log.warning("%s: aioxmpp did not close within 3 s", self.name)
        self.inbox.mark_closed("closed by the client")

    async def drop(self) -> None:
        self.transcript.sent(self.name, "[TCP close without </stream:stream>]")
        transport = self.client.stream._xmlstream.transport
        transport.close()
        self.inbox.mark_closed("closed by the client")
        self.client.stop()
        await asyncio.sleep(0)

    def _incoming(self, stanza: Any) -> Any:
        text = aioxmpp.xml.serialize_single_xso(stanza)
        self.transcript.received(self.name, text)
        self.inbox.push(element_of(text))
        return stanza

    def _outgoing(self, stanza: Any) -> Any:
        self.transcript.sent(self.name, aioxmpp.xml.serialize_single_xso(stanza))
        return stanza

    def _destroyed(self, reason: Any = None) -> None:
        self.transcript.received(self.name, f"[stream destroyed: {reason!r}]")
        self.inbox.mark_closed(f"stream destroyed: {reason!r}")
