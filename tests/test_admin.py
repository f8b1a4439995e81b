"""Registering users through prosodyctl: concurrent requests share one docker exec."""

from __future__ import annotations

import asyncio

import pytest

from clients import admin
from clients.admin import Account, AdminError, ProsodyctlAdmin


def accounts(*names: str) -> list[Account]:
    return [Account(name, "localhost", f"pw-{name}") for name in names]


@pytest.fixture
def execs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Each docker command the registrations run, in place of running it."""
    ran: list[list[str]] = []

    async def run(argv: list[str], what: str) -> str:
        ran.append(argv)
        return ""

    monkeypatch.setattr(admin, "_run", run)
    return ran


async def test_registrations_asked_for_together_run_in_one_exec(execs: list[list[str]]) -> None:
    prosody = ProsodyctlAdmin("c0ffee")

    await asyncio.gather(
        prosody.register(accounts("alice", "bob")), prosody.register(accounts("carol"))
    )

    assert len(execs) == 1
    script = execs[0][-1]
    assert script.count("prosodyctl register") == 3
    assert "prosodyctl register carol localhost pw-carol" in script


async def test_registrations_asked_for_apart_run_in_their_own_execs(
    execs: list[list[str]],
) -> None:
    prosody = ProsodyctlAdmin("c0ffee")

    await prosody.register(accounts("alice"))
    await prosody.register(accounts("bob"))

    assert len(execs) == 2


async def test_one_exec_serves_a_bounded_number_of_callers(execs: list[list[str]]) -> None:
    prosody = ProsodyctlAdmin("c0ffee")
    callers = admin.Registrar.CALLERS_PER_EXEC + 1

    await asyncio.gather(*(prosody.register(accounts(f"u{n}")) for n in range(callers)))

    assert len(execs) == 2


async def test_failed_exec_fails_every_caller_it_served(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(argv: list[str], what: str) -> str:
        raise AdminError(f"{what} failed (exit 1): user exists")

    monkeypatch.setattr(admin, "_run", refuse)
    prosody = ProsodyctlAdmin("c0ffee")

    outcomes = await asyncio.gather(
        prosody.register(accounts("alice")),
        prosody.register(accounts("bob")),
        return_exceptions=True,
    )

    assert all(isinstance(o, AdminError) for o in outcomes)
    assert "prosodyctl register of 2 account(s) in c0ffee failed" in str(outcomes[0])
