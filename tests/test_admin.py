"""Registering users through Prosody's admin shell: concurrent requests share one docker exec."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from clients import admin
from clients.admin import Account, AdminError, ProsodyctlAdmin


def accounts(*names: str) -> list[Account]:
    return [Account(name, "localhost", f"pw-{name}") for name in names]


@pytest.fixture
def execs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], str]]:
    """Each docker command the registrations run and the shell input it was given, in
    place of running it; the shell answers that it created every user."""
    ran: list[tuple[list[str], str]] = []

    async def run(argv: list[str], what: str, stdin: str | None = None) -> str:
        ran.append((argv, stdin or ""))
        lines = (stdin or "").splitlines()
        return "".join(f"prosody> | {admin.CREATED}\n" for _ in lines)

    monkeypatch.setattr(admin, "_run", run)
    return ran


def answering(said: str) -> Any:
    """A docker command in place of the real one whose shell prints `said`."""

    async def run(argv: list[str], what: str, stdin: str | None = None) -> str:
        return said

    return run


async def test_registrations_asked_for_together_run_in_one_exec(
    execs: list[tuple[list[str], str]],
) -> None:
    prosody = ProsodyctlAdmin("c0ffee")

    await asyncio.gather(
        prosody.register(accounts("alice", "bob")), prosody.register(accounts("carol"))
    )

    assert len(execs) == 1
    argv, script = execs[0]
    assert argv[-2:] == ["prosodyctl", "shell"]
    assert script.count("user:create(") == 3
    assert 'user:create("carol@localhost", "pw-carol")' in script


def test_password_is_quoted_as_a_lua_string() -> None:
    script = admin.shell_script([Account("eve", "localhost", 'a"b\\c')])

    assert script == 'user:create("eve@localhost", "a\\"b\\\\c")\n'


async def test_account_the_shell_did_not_create_fails_the_registration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    said = f"prosody> | {admin.CREATED}\nprosody> ! Error: No such host: nohost\n"
    monkeypatch.setattr(admin, "_run", answering(said))
    prosody = ProsodyctlAdmin("c0ffee")

    with pytest.raises(AdminError, match=r"1 created; the shell said: .*No such host: nohost"):
        await prosody.register(accounts("alice", "bob"))


async def test_registrations_asked_for_apart_run_in_their_own_execs(
    execs: list[tuple[list[str], str]],
) -> None:
    prosody = ProsodyctlAdmin("c0ffee")

    await prosody.register(accounts("alice"))
    await prosody.register(accounts("bob"))

    assert len(execs) == 2


async def test_one_exec_serves_a_bounded_number_of_callers(
    execs: list[tuple[list[str], str]],
) -> None:
    prosody = ProsodyctlAdmin("c0ffee")
    callers = admin.Registrar.CALLERS_PER_EXEC + 1

    await asyncio.gather(*(prosody.register(accounts(f"u{n}")) for n in range(callers)))

    assert len(execs) == 2


async def test_failed_exec_fails_every_caller_it_served(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(argv: list[str], what: str, stdin: str | None = None) -> str:
        raise AdminError(f"{what} failed (exit 1): user exists")

    monkeypatch.setattr(admin, "_run", refuse)
    prosody = ProsodyctlAdmin("c0ffee")

    outcomes = await asyncio.gather(
        prosody.register(accounts("alice")),
        prosody.register(accounts("bob")),
        return_exceptions=True,
    )

    assert all(isinstance(o, AdminError) for o in outcomes)
    assert "prosodyctl shell creating 2 account(s) in c0ffee failed" in str(outcomes[0])
