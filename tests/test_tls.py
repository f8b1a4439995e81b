"""The clients share one TLS context per process, and it still verifies certificates and
host names: building a default context loads the CA store, about 30 ms of CPU a client."""

from __future__ import annotations

import ssl

import pytest

from clients.admin import Account
from clients.chat import Endpoint
from clients.metrics import _HttpReader
from clients.slixmpp_chat import SlixmppChat
from clients.tls import verifying_context
from clients.transcript import Transcript


@pytest.fixture
def new_contexts(monkeypatch: pytest.MonkeyPatch) -> list[ssl.SSLContext]:
    """Every default context built from here on."""
    verifying_context()
    built: list[ssl.SSLContext] = []
    original = ssl.create_default_context

    def counting(*args: object, **kwargs: object) -> ssl.SSLContext:
        context = original(*args, **kwargs)  # type: ignore[arg-type]
        built.append(context)
        return context

    monkeypatch.setattr(ssl, "create_default_context", counting)
    return built


def test_shared_context_checks_certificates_and_host_names() -> None:
    context = verifying_context()

    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context is verifying_context()


async def test_metrics_reader_builds_no_context_of_its_own(
    new_contexts: list[ssl.SSLContext],
) -> None:
    reader = _HttpReader("https://127.0.0.1:9")

    await reader.aclose()

    assert new_contexts == []


async def test_slixmpp_login_builds_no_context_of_its_own(
    new_contexts: list[ssl.SSLContext],
) -> None:
    account = Account("alice", "localhost", "secret")

    with pytest.raises(AssertionError, match="could not connect"):
        await SlixmppChat.login(
            "alice",
            Endpoint("127.0.0.1", 9, "localhost"),
            account,
            "r1",
            Transcript(),
            timeout=0.3,
        )

    assert new_contexts == []
