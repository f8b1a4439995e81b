"""The chat interface on aioxmpp: a second, independent XMPP implementation.

aioxmpp enables stream management on its own whenever the server offers it; a session
that did not ask for it must not have it (a 6.1.0 server holds SM sessions after a drop),
so the feature is hidden from the library unless the test wants it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import xml.etree.ElementTree as ET
from datetime import timedelta
from typing import Any

import aioxmpp
import aioxmpp.connector
import aioxmpp.nonza
import aioxmpp.ping
import aioxmpp.security_layer as security
import aioxmpp.xml

from clients.admin import Account
from clients.chat import SM_NS, ChatClient, Endpoint, element_of
from clients.inbox import Inbox, StanzaTimeout

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
    # Set while the client may (re)connect; interrupt() clears it so that the test decides
    # when the resumption happens (aioxmpp would otherwise reconnect on its own).
    may_connect: asyncio.Event | None = None

    async def _negotiate_stream(self, xmlstream: Any, features: Any) -> Any:
        if not self.use_sm:
            with contextlib.suppress(KeyError):
                del features[aioxmpp.nonza.StreamManagementFeature]
        return await super()._negotiate_stream(xmlstream, features)

    async def _main_impl(self) -> Any:
        if self.may_connect is not None:
            await self.may_connect.wait()
        return await super()._main_impl()


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
        # aioxmpp computes with timedeltas here (node.Client._main); a float breaks a retry.
        client.backoff_cap = timedelta(seconds=timeout)
        if use_sm:
            client.may_connect = asyncio.Event()
            client.may_connect.set()
            client.backoff_start = timedelta(seconds=0.2)
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
        if use_sm:
            chat.sm_answer = chat._sm_enabled()
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

    # -- stream management (XEP-0198): aioxmpp does the protocol --------------------------
    #
    # aioxmpp sends <enable resume='true'/> after bind when the server offers SM, answers
    # every <r/> itself, and after a lost connection reconnects and sends <resume previd h/>
    # (Client._negotiate_stream). It hands no SM element to the stanza filters, so the
    # <enabled/> and <resumed/> below are rebuilt from what aioxmpp parsed out of them.

    def _sm_enabled(self) -> ET.Element | None:
        stream = self.client.stream
        if not stream.sm_enabled:
            return None
        attrs = {"id": stream.sm_id or "", "resume": "true" if stream.sm_resumable else ""}
        if stream.sm_max is not None:
            attrs["max"] = str(stream.sm_max)
        if stream.sm_location is not None:
            attrs["location"] = ":".join(str(part) for part in stream.sm_location)
        element = ET.Element(f"{{{SM_NS}}}enabled", {k: v for k, v in attrs.items() if v})
        self.transcript.note(self.name, f"aioxmpp parsed <enabled/>: {element.attrib}")
        return element

    async def interrupt(self) -> None:
        gate = self.client.may_connect
        if gate is None:
            raise RuntimeError(f"{self.name}: interrupt() needs a client logged in with SM")
        gate.clear()
        suspended: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def on_suspended(*_: Any) -> bool:
            if not suspended.done():
                suspended.set_result(True)
            return True  # a true return disconnects the handler

        self.client.on_stream_suspended.connect(on_suspended)
        self.transcript.sent(self.name, "[TCP aborted without </stream:stream>]")
        xmlstream = self.client.stream._xmlstream
        xmlstream.transport.close()
        # A local close reads as a clean shutdown to aioxmpp; a lost network reports an
        # error, which is what makes the client suspend the stream and resume it later.
        xmlstream.connection_lost(ConnectionResetError("connection lost (by the test)"))
        try:
            await asyncio.wait_for(suspended, timeout=2.0)
        except TimeoutError:
            log.warning("%s: aioxmpp saw no stream failure 2 s after the abort", self.name)

    async def resume(self, timeout: float = 5.0) -> ET.Element | None:
        gate = self.client.may_connect
        if gate is None:
            raise RuntimeError(f"{self.name}: resume() needs a client logged in with SM")
        self.inbox = Inbox(self.name)
        previd = self.client.stream.sm_id or ""
        outcome: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def settle(resumed: bool) -> bool:
            if not outcome.done():
                outcome.set_result(resumed)
            return True  # a true return disconnects the handler

        self.client.on_stream_resumed.connect(lambda: settle(True))
        self.client.on_stream_destroyed.connect(lambda *_: settle(False))
        self.client.on_stream_established.connect(lambda: settle(False))
        self.transcript.note(self.name, "aioxmpp reconnecting to resume")
        gate.set()
        try:
            resumed = await asyncio.wait_for(outcome, timeout=timeout)
        except TimeoutError:
            return None
        name = "resumed" if resumed else "failed"
        self.transcript.note(self.name, f"aioxmpp reports the stream {name}")
        return ET.Element(f"{{{SM_NS}}}{name}", {"previd": previd} if resumed else {})
