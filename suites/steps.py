"""Steps shared by the suites: waits that end early on success and named quiet windows.

A check first observes (these steps), then judges (harness.judges). Observing never
asserts: when an expected stanza does not come, the wait ends at its bound and the judge
reports what was expected and what arrived instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from clients.chat import ChatClient
from clients.inbox import Inbox, Predicate, ServerClosed, StanzaTimeout, matches

log = logging.getLogger(__name__)

# How long an expected stanza may take on a loaded 2-core machine.
WAIT = 5.0
# How long "nothing arrives" is watched for: routing on one node takes milliseconds.
QUIET = 1.0


async def settle(inbox: Inbox, mark: int, predicate: Predicate, expected: bool, what: str) -> None:
    """Waits for an expected stanza (up to WAIT), or watches a QUIET window for one that
    must not come; never raises, the judge decides."""
    if not expected:
        await asyncio.sleep(QUIET)
        return
    with contextlib.suppress(StanzaTimeout, ServerClosed):
        await inbox.wait_for(predicate, what, WAIT, after=mark)
        return
    log.warning("%s: %s did not arrive within %.1f s", inbox.owner, what, WAIT)


async def online(client: ChatClient, echo_expected: bool) -> None:
    """Sends initial presence and makes sure the server has processed it."""
    mark = client.inbox.mark()
    await client.send_presence()
    await client.barrier(WAIT)
    if echo_expected:
        await settle(
            client.inbox, mark, matches("presence", sender=client.jid), True, "own presence echo"
        )
