"""The XML a Client State Indication check sends: CSI elements and one stanza per kind.

Each stanza carries its label as `id` (and a presence also as `<status>`), so it can be
recognised in the inactive client's inbox whatever the server adds to it.
"""

from __future__ import annotations

CSI_NS = "urn:xmpp:csi:0"
SM_NS = "urn:xmpp:sm:3"
CHAT_STATES_NS = "http://jabber.org/protocol/chatstates"
PING_NS = "urn:xmpp:ping"


def csi_xml(state: str) -> str:
    """`<active/>`, `<inactive/>`, or any other element name in the CSI namespace."""
    return f"<{state} xmlns='{CSI_NS}'/>"


def stanza_xml(kind: str, to: str, label: str) -> str:
    """One stanza of a kind the [csi] profile table names, addressed to a full JID."""
    if kind == "presence":
        return f"<presence to='{to}' id='{label}'><status>{label}</status></presence>"
    if kind == "chat":
        return f"<message to='{to}' type='chat' id='{label}'><body>{label}</body></message>"
    if kind == "chat_state":
        return (
            f"<message to='{to}' type='chat' id='{label}'>"
            f"<composing xmlns='{CHAT_STATES_NS}'/></message>"
        )
    if kind == "iq":
        return f"<iq to='{to}' type='get' id='{label}'><ping xmlns='{PING_NS}'/></iq>"
    raise ValueError(f"no stanza of kind {kind!r}")


def ping_xml(label: str, to: str) -> str:
    return f"<iq type='get' id='{label}' to='{to}'><ping xmlns='{PING_NS}'/></iq>"


def sm_xml(name: str) -> str:
    """`<enable/>` or `<r/>` of stream management (XEP-0198)."""
    return f"<{name} xmlns='{SM_NS}'/>"
