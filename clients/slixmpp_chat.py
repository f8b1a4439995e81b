"""The chat interface on slixmpp: a real XMPP library's stream handling and SASL."""

from __future__ import annotations

import asyncio
import copy
import logging
import xml.etree.ElementTree as ET
from typing import Any

import slixmpp
import slixmpp.exceptions

from clients.admin import Account
from clients.chat import SM_NS, ChatClient, Endpoint
from clients.inbox import Inbox, StanzaTimeout
from clients.tls import verifying_context

log = logging.getLogger(__name__)


class SlixmppChat(ChatClient):
    stack = "slixmpp"

    def __init__(self, name: str, xmpp: slixmpp.ClientXMPP, transcript: Any) -> None:
        super().__init__(name, transcript)
        self.xmpp = xmpp
        self._session = asyncio.get_running_loop().create_future()
        self._gone = asyncio.get_running_loop().create_future()
        xmpp.add_filter("in", self._incoming)
        xmpp.add_filter("out", self._outgoing)
        xmpp.add_event_handler("session_start", self._started)
        xmpp.add_event_handler("failed_auth", self._auth_failed)
        xmpp.add_event_handler("disconnected", self._disconnected)
        xmpp.add_event_handler("connection_failed", self._connection_failed)

    @classmethod
    async def login(
        cls,
        name: str,
        endpoint: Endpoint,
        account: Account,
        resource: str,
        transcript: Any,
        timeout: float = 10.0,
        plugins: tuple[str, ...] = (),
    ) -> SlixmppChat:
        xmpp = slixmpp.ClientXMPP(
            f"{account.jid}/{resource}", account.password, ssl_context=verifying_context()
        )
        # The test servers speak plain TCP: no StartTLS, no direct TLS.
        xmpp.enable_starttls = False
        xmpp.enable_direct_tls = False
        xmpp.enable_plaintext = True
        xmpp.plugin["feature_mechanisms"].unencrypted_plain = True
        xmpp.plugin["feature_mechanisms"].unencrypted_scram = True
        for plugin in plugins:
            xmpp.register_plugin(plugin)
        client = cls(name, xmpp, transcript)
        client.endpoint = endpoint
        if "xep_0198" in plugins:
            client._watch_sm()
        transcript.note(name, f"slixmpp connecting to {endpoint.host}:{endpoint.port}")
        xmpp.connect(endpoint.host, endpoint.port)
        try:
            await asyncio.wait_for(asyncio.shield(client._session), timeout=timeout)
        except TimeoutError:
            xmpp.abort()
            raise StanzaTimeout(
                f"{name}: slixmpp session for {account.jid} not started within {timeout:g} s"
            ) from None
        client.jid = str(xmpp.boundjid)
        transcript.note(name, f"logged in as {client.jid}")
        return client

    async def send_presence(
        self, to: str | None = None, type_: str | None = None, status: str | None = None
    ) -> None:
        kind: Any = type_  # slixmpp types ptype as a Literal of the RFC's values
        presence = self.xmpp.make_presence(pto=to, ptype=kind, pstatus=status)
        # slixmpp fills in `from`; a client normally leaves it to the server.
        del presence["from"]
        presence.send()

    async def send_message(self, to: str, body: str, msg_id: str, type_: str = "chat") -> None:
        message = self.xmpp.make_message(mto=to, mbody=body, mtype=type_)  # type: ignore[arg-type]
        message["id"] = msg_id
        del message["from"]
        message.send()

    async def barrier(self, timeout: float = 5.0) -> None:
        iq = self.xmpp.make_iq_get(queryxmlns="urn:xmpp:ping", ito=self.xmpp.boundjid.domain)
        try:
            await iq.send(timeout=timeout)  # type: ignore[no-untyped-call]
        except slixmpp.exceptions.IqError:
            pass  # an error reply is still a reply: the server processed what came before
        except slixmpp.exceptions.IqTimeout:
            raise StanzaTimeout(f"{self.name}: no reply to a ping within {timeout:g} s") from None

    async def close(self) -> None:
        if self._gone.done():
            return
        try:
            await asyncio.wait_for(self.xmpp.disconnect(wait=1.0), timeout=3.0)
        except (TimeoutError, ConnectionError):
            self.xmpp.abort()
        self.inbox.mark_closed("closed by the client")

    async def drop(self) -> None:
        self.transcript.sent(self.name, "[TCP close without </stream:stream>]")
        transport = self.xmpp.transport
        if transport is not None:
            transport.close()
        self.inbox.mark_closed("closed by the client")
        try:
            await asyncio.wait_for(asyncio.shield(self._gone), timeout=2.0)
        except TimeoutError:
            log.warning("%s: slixmpp saw no disconnect 2 s after the drop", self.name)

    def _incoming(self, stanza: Any) -> Any:
        self.transcript.received(self.name, str(stanza))
        self.inbox.push(copy.deepcopy(stanza.xml))
        return stanza

    def _outgoing(self, stanza: Any) -> Any:
        self.transcript.sent(self.name, str(stanza))
        return stanza

    def _started(self, _event: Any) -> None:
        if not self._session.done():
            self._session.set_result(True)

    def _auth_failed(self, _event: Any) -> None:
        if not self._session.done():
            self._session.set_exception(AssertionError(f"{self.name}: SASL authentication failed"))

    def _connection_failed(self, event: Any) -> None:
        if not self._session.done():
            self._session.set_exception(
                AssertionError(f"{self.name}: slixmpp could not connect: {event}")
            )

    def _disconnected(self, reason: Any) -> None:
        self.transcript.received(self.name, f"[disconnected: {reason}]")
        self.inbox.mark_closed(f"disconnected: {reason}")
        if not self._gone.done():
            self._gone.set_result(True)
        if not self._session.done():
            self._session.set_exception(
                AssertionError(f"{self.name}: disconnected before the session started: {reason}")
            )

    # -- stream management (XEP-0198): the xep_0198 plugin does the protocol --------------
    #
    # slixmpp sends <enable resume='true'/> after bind and answers every <r/> with its own
    # count; after interrupt() the same ClientXMPP reconnects and the plugin sends
    # <resume previd h/> before bind (XEP_0198._handle_sm_feature).

    endpoint: Endpoint | None = None
    _sm_reply: asyncio.Future[ET.Element] | None = None

    def _watch_sm(self) -> None:
        self._sm_reply = asyncio.get_running_loop().create_future()
        for event in ("sm_enabled", "sm_failed", "session_resumed"):
            self.xmpp.add_event_handler(event, self._sm_answered)

    def _sm_answered(self, stanza: Any) -> None:
        if self._sm_reply is not None and not self._sm_reply.done():
            self._sm_reply.set_result(copy.deepcopy(stanza.xml))

    async def sm_ready(self, timeout: float = 5.0) -> ET.Element | None:
        """The answer to the plugin's <enable/>, which comes after session_start; None
        at once when the server did not offer SM (the plugin then sends nothing)."""
        if not self._offers_sm() or self._sm_reply is None:
            return None
        try:
            reply = await asyncio.wait_for(asyncio.shield(self._sm_reply), timeout=timeout)
        except TimeoutError:
            return None
        self.sm_answer = reply
        return reply

    def _offers_sm(self) -> bool:
        features = [e for e in self.inbox.elements if e.tag.endswith("}features")]
        return bool(features) and features[-1].find(f"{{{SM_NS}}}sm") is not None

    async def interrupt(self) -> None:
        self.transcript.sent(self.name, "[TCP aborted without </stream:stream>]")
        self._gone = asyncio.get_running_loop().create_future()
        transport = self.xmpp.transport
        if transport is not None:
            transport.abort()
        try:
            await asyncio.wait_for(asyncio.shield(self._gone), timeout=2.0)
        except TimeoutError:
            log.warning("%s: slixmpp saw no disconnect 2 s after the abort", self.name)

    async def resume(self, timeout: float = 5.0) -> ET.Element | None:
        if self.endpoint is None:
            raise RuntimeError(f"{self.name}: resume() needs a client made by login()")
        self.inbox = Inbox(self.name)
        self._sm_reply = asyncio.get_running_loop().create_future()
        self.transcript.note(self.name, "slixmpp reconnecting to resume")
        self.xmpp.connect(self.endpoint.host, self.endpoint.port)
        try:
            answer = await asyncio.wait_for(asyncio.shield(self._sm_reply), timeout=timeout)
        except TimeoutError:
            return None
        log.info("%s: slixmpp resumption answered %s", self.name, answer.tag)
        return answer
