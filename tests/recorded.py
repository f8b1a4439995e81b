"""Helpers for judging transcripts of real MongooseIM servers (tests/data/recordings)."""

from __future__ import annotations

from pathlib import Path

from harness import recordings
from harness.judges import Seen
from harness.profiles import Profile, load_profile

RECORDINGS = Path(__file__).parent / "data" / "recordings"
VERSIONS = ("6.0.0", "6.1.0")


def recording(version: str, name: str) -> recordings.Recording:
    return recordings.load(RECORDINGS / f"mongooseim-{version}" / f"{name}.txt")


def profile(version: str) -> Profile:
    return load_profile(f"mongooseim-{version}")


def other(version: str) -> str:
    return VERSIONS[1 - VERSIONS.index(version)]


def seen_between(
    rec: recordings.Recording,
    roles: dict[str, tuple[str, str]],
    start: int,
    end: int | None = None,
) -> Seen:
    """What each role's client received in lines [start, end); roles map to (client, JID)."""
    return Seen(
        jids={role: jid for role, (_client, jid) in roles.items()},
        received={role: rec.received(client, start, end) for role, (client, _) in roles.items()},
    )
