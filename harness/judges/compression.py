"""Stream compression (XEP-0138): whether it is offered, and what a <compress/> gets.

MongooseIM 6.0.0 offered zlib when the c2s listener had `zlib`; 6.1.0 removed XEP-0138
(doc/migrations/6.0.0_6.1.0.md). Compression under TLS lets an attacker who can inject
text learn secrets from the compressed length (CRIME), so a server whose profile says
compression is refused and that turns it on anyway gets a failure that says so.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from clients.inbox import local_name, namespace, to_text
from harness.judges.answers import COMPRESS_NS, Expected, Reply, classify, judge_reply
from harness.profiles import Profile, ProfileError, read_table

AREA = "compression"
FEATURE_NS = "http://jabber.org/features/compress"
CRIME = (
    "compression on an encrypted stream leaks secrets through the compressed length "
    "(CRIME), which is why 6.1.0 removed XEP-0138"
)


@dataclass(frozen=True)
class CompressionExpect:
    offered_before_auth: bool
    offered_after_auth: bool
    answer_before_auth: str
    answer_after_auth: str
    answer_unknown_method: str
    answer_missing_method: str

    @classmethod
    def of(cls, profile: Profile) -> CompressionExpect:
        built = cls(**read_table(cls, profile, AREA))
        for key in ("answer_before_auth", "answer_after_auth"):
            Expected.parse(getattr(built, key), f"[{AREA}] {key}")
        for key in ("answer_unknown_method", "answer_missing_method"):
            if Expected.parse(getattr(built, key), f"[{AREA}] {key}").kind == "compressed":
                raise ProfileError(f"[{AREA}] {key}: no server compresses without zlib")
        return built

    def accepts_after_auth(self) -> bool:
        return Expected.parse(self.answer_after_auth, "answer_after_auth").kind == "compressed"


def compression_feature(features: ET.Element | None) -> ET.Element | None:
    """The <compression/> feature of a <stream:features/>, or None."""
    if features is None:
        return None
    return next(
        (
            child
            for child in features
            if local_name(child) == "compression" and namespace(child) == FEATURE_NS
        ),
        None,
    )


def judge_offer(want: CompressionExpect, features: ET.Element | None, stage: str) -> list[str]:
    """The compression feature is listed, with the zlib method, exactly when expected.

    `stage` is "before_auth" or "after_auth".
    """
    key = f"offered_{stage}"
    wanted: bool = getattr(want, key)
    shown = to_text(features) if features is not None else "no <stream:features/> at all"
    feature = compression_feature(features)
    if features is None:
        return [f"{key} = {str(wanted).lower()}: the server sent {shown}"]
    if wanted and feature is None:
        return [f"{key} = true: expected <compression xmlns='{FEATURE_NS}'> in {shown}"]
    if not wanted and feature is not None:
        return [
            f"{key} = false: the server offers stream compression {to_text(feature)}; "
            f"{CRIME}. Features: {shown}"
        ]
    methods = [m.text for m in feature.iter() if local_name(m) == "method"] if feature else []
    if wanted and "zlib" not in methods:
        return [f"{key} = true: the compression feature lists no zlib method: {shown}"]
    return []


def judge_answer(want: CompressionExpect, key: str, reply: Reply) -> list[str]:
    """The answer to one <compress/> is the one the profile's `key` names.

    Compression turned on where the profile expects a refusal is reported with the CRIME
    risk; any other difference as expected versus got.
    """
    spec: str = getattr(want, key)
    problems = judge_reply(key, spec, reply, COMPRESS_NS)
    if problems and classify(reply, COMPRESS_NS) == "compressed":
        return [f"{problems[0]}. The server enabled zlib where the profile refuses it: {CRIME}"]
    return problems


@dataclass(frozen=True)
class Restart:
    """A stream restarted over zlib after <compressed/>: the new header, features, bind."""

    header: dict[str, str]
    features: ET.Element | None
    jid: str
    error: str = ""


def judge_restart(want: CompressionExpect, old_id: str, restart: Restart) -> list[str]:
    """After <compressed/> the client restarts the stream over zlib (XEP-0138 section 3):
    a new stream id, features without compression, and bind works."""
    key = f"answer_after_auth = {want.answer_after_auth!r}"
    if restart.error:
        return [f"{key}: the zlib stream restart failed: {restart.error}"]
    problems = []
    new_id = restart.header.get("id", "")
    if not new_id or new_id == old_id:
        problems.append(f"{key}: expected a new stream id after the restart, got {new_id!r}")
    if compression_feature(restart.features) is not None:
        problems.append(
            f"{key}: compression is offered again on the compressed stream: "
            f"{to_text(restart.features) if restart.features is not None else ''}"
        )
    if not restart.jid:
        problems.append(f"{key}: bind over the compressed stream returned no JID")
    return problems
