"""What a server answers to one request, in the words profiles use, and the judge of it.

A profile states the answer it expects as one string:

    "ignored"                   nothing comes back and the stream stays open
    "closed"                    the server closes the connection without a word
    "compressed"                <compressed xmlns='http://jabber.org/protocol/compress'/>
    "result"                    an IQ of type result
    "failure:<condition>"       <failure/> in the request's namespace holding <condition/>
    "error:<condition>"         a stanza of type error with that defined condition
    "stream-error:<condition>"  a stream error with that condition, then the server closes

`classify` turns what arrived into the same words, so a failure message and the report
show the measured answer next to the expected one.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from clients.inbox import STREAM_NS, local_name, namespace, to_text
from harness.judges import error_condition, listing
from harness.profiles import ProfileError

STREAM_ERRORS_NS = "urn:ietf:params:xml:ns:xmpp-streams"
STANZAS_NS = "urn:ietf:params:xml:ns:xmpp-stanzas"
COMPRESS_NS = "http://jabber.org/protocol/compress"

PLAIN = ("ignored", "closed", "compressed", "result")
WITH_CONDITION = ("failure", "error", "stream-error")


@dataclass(frozen=True)
class Expected:
    """One answer in the profile's words: a kind and, for some kinds, a condition."""

    kind: str
    condition: str = ""

    @classmethod
    def parse(cls, text: str, where: str) -> Expected:
        """Reads "failure:setup-failed" and the like; ProfileError names `where` if bad."""
        kind, _, condition = text.partition(":")
        if kind in PLAIN and not condition:
            return cls(kind)
        if kind in WITH_CONDITION and condition:
            return cls(kind, condition)
        shapes = ", ".join([*PLAIN, *(f"{k}:<condition>" for k in WITH_CONDITION)])
        raise ProfileError(f"{where} = {text!r} is not an answer; use one of {shapes}")

    def __str__(self) -> str:
        return f"{self.kind}:{self.condition}" if self.condition else self.kind

    def describe(self, failure_ns: str) -> str:
        """The answer as a reader of the wire would recognise it."""
        return {
            "ignored": "no answer, the stream left open",
            "closed": "the connection closed without an answer",
            "compressed": f"<compressed xmlns='{COMPRESS_NS}'/>",
            "result": "an IQ result",
            "failure": f"<failure xmlns='{failure_ns}'><{self.condition}/></failure>",
            "error": f"a stanza error <{self.condition}/>",
            "stream-error": f"the stream error <{self.condition}/>, then the close",
        }[self.kind]


@dataclass(frozen=True)
class Reply:
    """Everything the server sent after one request, and whether it closed the stream.

    `watched` is how long the client looked, in seconds: an "ignored" answer is only as
    good as the window it was watched for.
    """

    elements: tuple[ET.Element, ...]
    closed: bool
    watched: float


def classify(reply: Reply, failure_ns: str) -> str:
    """What arrived, in the profile's words ("other: <xml>" for anything else)."""
    if not reply.elements:
        return "closed" if reply.closed else "ignored"
    first = reply.elements[0]
    name = local_name(first)
    if name == "compressed" and namespace(first) == COMPRESS_NS:
        return "compressed"
    if name == "failure" and namespace(first) == failure_ns:
        child = next(iter(first), None)
        return f"failure:{local_name(child)}" if child is not None else "failure:"
    if name == "error" and namespace(first) == STREAM_NS:
        return f"stream-error:{stream_error_condition(first)}"
    if first.get("type") == "error":
        return f"error:{error_condition(first)}"
    if name == "iq" and first.get("type") == "result":
        return "result"
    return f"other: {to_text(first)}"


def stream_error_condition(element: ET.Element) -> str:
    """The defined condition of a <stream:error/> (`connection-timeout`), or ""."""
    for child in element:
        if namespace(child) == STREAM_ERRORS_NS and local_name(child) != "text":
            return local_name(child)
    return ""


def stream_errors(elements: tuple[ET.Element, ...] | list[ET.Element]) -> list[ET.Element]:
    return [e for e in elements if local_name(e) == "error" and namespace(e) == STREAM_NS]


def error_text(element: ET.Element) -> str | None:
    """The <text/> of a stanza error, or None when the error carries none."""
    for child in element:
        if local_name(child) == "error":
            found = child.find(f"{{{STANZAS_NS}}}text")
            return None if found is None else (found.text or "")
    return None


def judge_reply(
    key: str, spec: str, reply: Reply, failure_ns: str, text: str | None = None
) -> list[str]:
    """Problems when the reply is not the answer `spec` names; `key` is the profile key.

    `text`, when given, is the <text/> a stanza error must carry ("" for none).
    """
    expected = Expected.parse(spec, key)
    measured = classify(reply, failure_ns)
    head = f"{key} = {spec!r}: expected {expected.describe(failure_ns)}"
    if measured != str(expected):
        return [f"{head}; got {_got(reply)} within {reply.watched:.1f} s"]
    problems: list[str] = []
    if expected.kind == "stream-error" and not reply.closed:
        problems.append(f"{head}; the stream error came but the stream stayed open")
    if expected.kind not in ("stream-error", "closed") and reply.closed:
        problems.append(f"{head}; it came, but then the server closed the stream")
    if expected.kind == "error" and text is not None:
        got_text = error_text(reply.elements[0])
        if (got_text or "") != text or (text == "" and got_text is not None):
            wanted = f"the text {text!r}" if text else "no <text/>"
            problems.append(f"{key}_text = {text!r}: expected {wanted}; got {_got(reply)}")
    return problems


def _got(reply: Reply) -> str:
    shown = listing(reply.elements) if reply.elements else "nothing"
    return f"{shown}{' and the server closed the stream' if reply.closed else ''}"
