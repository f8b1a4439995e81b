"""Users and rosters through each target's own admin path.

MongooseIM: the admin GraphQL API. Prosody: `prosodyctl` inside its container. ejabberd: its
HTTP API (`mod_http_api`). Every test gets fresh, uniquely named users, so tests can run
in parallel against one server. Admin credentials never appear in logs or errors.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from clients.tls import verifying_context

log = logging.getLogger(__name__)

RUN_TOKEN = secrets.token_hex(3)
_serial = itertools.count(1)
TIMEOUT = 20.0


class AdminError(RuntimeError):
    """The admin path refused or failed; the message names the target and the step."""


@dataclass(frozen=True)
class Account:
    local: str
    domain: str
    password: str = field(repr=False)

    @property
    def jid(self) -> str:
        return f"{self.local}@{self.domain}"


def fresh_name(role: str) -> str:
    """A user name no other test of any run on this server has used."""
    return f"{role}-{RUN_TOKEN}-{next(_serial)}"


class AdminTarget(Protocol):
    """What the admin path needs to know of a target (see harness.targets.Target)."""

    name: str
    domain: str


class UserAdmin(Protocol):
    async def register(self, accounts: Sequence[Account]) -> None: ...

    async def connect_rosters(self, first: Account, second: Account) -> bool:
        """Makes the two users mutual contacts; False where the path cannot do it."""
        ...


@dataclass
class GraphQLAdmin:
    """MongooseIM's admin GraphQL endpoint (POST /api/graphql with basic auth)."""

    url: str
    username: str
    password: str = field(repr=False)

    async def query(self, text: str, what: str) -> dict[str, Any]:
        auth = (self.username, self.password)
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT, verify=verifying_context()) as http:
                reply = await http.post(self.url, json={"query": text}, auth=auth)
        except httpx.HTTPError as exc:
            raise AdminError(f"GraphQL {self.url}: {what} failed: {exc!r}") from None
        if reply.status_code != 200:
            raise AdminError(
                f"GraphQL {self.url}: {what} answered HTTP {reply.status_code}: {reply.text[:300]}"
            )
        body: dict[str, Any] = reply.json()
        if body.get("errors"):
            raise AdminError(f"GraphQL {self.url}: {what} returned errors: {body['errors']}")
        return body

    async def register(self, accounts: Sequence[Account]) -> None:
        fields = "\n".join(
            f'u{i}: account {{ registerUser(domain: "{a.domain}", username: "{a.local}", '
            f'password: "{a.password}") {{ jid }} }}'
            for i, a in enumerate(accounts)
        )
        await self.query(f"mutation {{ {fields} }}", f"registering {len(accounts)} users")
        log.info("registered %s through GraphQL", ", ".join(a.jid for a in accounts))

    async def connect_rosters(self, first: Account, second: Account) -> bool:
        await self.query(
            f'mutation {{ roster {{ setMutualSubscription(userA: "{first.jid}", '
            f'userB: "{second.jid}", action: CONNECT) }} }}',
            f"making {first.jid} and {second.jid} contacts",
        )
        return True


@dataclass
class ProsodyctlAdmin:
    """Prosody's admin shell (`prosodyctl shell`, `user:create`) run as the prosody user
    inside the target's container. The accounts that checks running side by side ask for at
    the same moment are created with one `docker exec` (see Registrar)."""

    container: str

    async def register(self, accounts: Sequence[Account]) -> None:
        await Registrar.of(self.container).register(accounts)
        log.info("registered %s with prosodyctl shell", ", ".join(a.jid for a in accounts))

    async def connect_rosters(self, first: Account, second: Account) -> bool:
        return False


# What Prosody's admin shell prints for each user:create it carried out.
CREATED = "OK: User created"


def lua_string(text: str) -> str:
    """`text` as a Lua string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def shell_script(accounts: Sequence[Account]) -> str:
    """The admin shell's commands that create `accounts`, one line each."""
    return "".join(
        f"user:create({lua_string(a.jid)}, {lua_string(a.password)})\n" for a in accounts
    )


class Registrar:
    """Gathers the registrations asked for on one container within WINDOW seconds and
    creates them through one admin shell: one `docker exec` and one Lua process for them
    all. (`prosodyctl register` starts a Lua process per account, about 40 ms of the
    server's CPU each; the shell's `user:create` costs about 2 ms.) One registrar per
    container and event loop."""

    WINDOW = 0.02
    # Callers served by one exec: bounded, so that one exec ends well within TIMEOUT on a
    # busy machine.
    CALLERS_PER_EXEC = 32
    _open: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Registrar]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, container: str) -> None:
        self.container = container
        self.waiting: list[tuple[list[Account], asyncio.Future[None]]] = []
        self.flusher: asyncio.Task[None] | None = None

    @classmethod
    def of(cls, container: str) -> Registrar:
        per_loop = cls._open.setdefault(asyncio.get_running_loop(), {})
        return per_loop.setdefault(container, cls(container))

    async def register(self, accounts: Sequence[Account]) -> None:
        done = asyncio.get_running_loop().create_future()
        self.waiting.append((list(accounts), done))
        if self.flusher is None:
            self.flusher = asyncio.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        await asyncio.sleep(self.WINDOW)
        batch, self.waiting, self.flusher = self.waiting, [], None
        step = self.CALLERS_PER_EXEC
        await asyncio.gather(
            *(self._register(batch[i : i + step]) for i in range(0, len(batch), step))
        )

    async def _register(self, batch: list[tuple[list[Account], asyncio.Future[None]]]) -> None:
        accounts = [account for asked, _ in batch for account in asked]
        argv = ["docker", "exec", "-i", "-u", "prosody", self.container, "prosodyctl", "shell"]
        what = f"prosodyctl shell creating {len(accounts)} account(s) in {self.container[:12]}"
        try:
            out = await _run(argv, what, stdin=shell_script(accounts))
            created = out.count(CREATED)
            if created != len(accounts):
                errors = [line for line in out.splitlines() if "!" in line]
                raise AdminError(
                    f"{what}: {created} created; the shell said: {' / '.join(errors)[-300:]}"
                )
        except (AdminError, OSError) as exc:
            for _, done in batch:
                if not done.done():
                    done.set_exception(AdminError(str(exc)))
            return
        for _, done in batch:
            if not done.done():
                done.set_result(None)


@dataclass
class EjabberdAdmin:
    """ejabberd's HTTP API: POST /api/register."""

    base_url: str

    async def register(self, accounts: Sequence[Account]) -> None:
        async with httpx.AsyncClient(timeout=TIMEOUT, verify=verifying_context()) as http:
            for a in accounts:
                body = {"user": a.local, "host": a.domain, "password": a.password}
                try:
                    reply = await http.post(f"{self.base_url}/api/register", json=body)
                except httpx.HTTPError as exc:
                    raise AdminError(
                        f"ejabberd API: registering {a.jid} failed: {exc!r}"
                    ) from None
                if reply.status_code != 200:
                    raise AdminError(
                        f"ejabberd API: registering {a.jid} answered HTTP "
                        f"{reply.status_code}: {reply.text[:300]}"
                    )
        log.info("registered %s through the ejabberd API", ", ".join(a.jid for a in accounts))

    async def connect_rosters(self, first: Account, second: Account) -> bool:
        return False


async def _run(argv: list[str], what: str, stdin: str | None = None) -> str:
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    given = stdin.encode() if stdin is not None else None
    try:
        out, err = await asyncio.wait_for(process.communicate(given), timeout=TIMEOUT)
    except TimeoutError:
        process.kill()
        raise AdminError(f"{what}: no answer within {TIMEOUT:g} s") from None
    if process.returncode != 0:
        raise AdminError(f"{what} failed (exit {process.returncode}): {err.decode()[-300:]}")
    return out.decode()
