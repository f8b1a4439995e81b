"""One TLS context per process for every HTTP and XMPP client of the suite.

httpx and slixmpp each build a default context (system CA store loaded, hostnames
checked) for every client they create, also when the connection is plain TCP. Loading
the CA store costs about 30 ms of CPU, and a run creates thousands of clients: on two
cores that was the largest single cost of the suite's own processes. The shared context
verifies exactly as theirs would.
"""

from __future__ import annotations

import functools
import ssl


@functools.cache
def verifying_context() -> ssl.SSLContext:
    """A context that checks certificates against the system store and host names (the
    default context for server authentication does both)."""
    return ssl.create_default_context()
