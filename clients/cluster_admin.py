"""Per-node admin of a MongooseIM cluster: sessions and Mnesia members, and leaving.

Each node answers for itself through its own admin GraphQL endpoint (`session {
listSessions }`, `mnesia { systemInfo }`), so a check can compare what the two nodes of a
mixed-version cluster believe. `leave_cluster` runs `mongooseimctl leave_cluster -f`
inside the node's container with `docker exec`, only on containers this run started; the
6.0.0 image has no mongooseimctl on PATH, so the release's full path is used.

Every request and command is bounded; a refusal, a timeout or an answer of the wrong shape
is a ClusterAdminError that names the node and the step. Credentials are never logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clients.admin import AdminError, GraphQLAdmin

log = logging.getLogger(__name__)

MONGOOSEIMCTL = "/usr/lib/mongooseim/bin/mongooseimctl"
LEAVE_TIMEOUT = 60.0
LIST_SESSIONS = "query { session { listSessions { user node } } }"
RUNNING_NODES = (
    'query { mnesia { systemInfo(keys: ["running_db_nodes"]) '
    "{ ... on MnesiaListResponse { key result } } } }"
)


class ClusterAdminError(AdminError):
    """A node's admin path failed or answered something unusable; names node and step."""


@dataclass(frozen=True)
class SessionRow:
    """One session as a node lists it: the user's full JID and the Erlang node it is on."""

    user: str
    node: str


def sessions_from(body: Mapping[str, Any], where: str) -> list[SessionRow]:
    """The rows of a `session { listSessions { user node } }` answer."""
    rows = _path(body, ("data", "session", "listSessions"), where)
    if not isinstance(rows, list):
        raise ClusterAdminError(f"{where}: listSessions is not a list: {rows!r:.300}")
    sessions = []
    for row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("user"), str):
            raise ClusterAdminError(f"{where}: a listSessions row has no user: {row!r:.300}")
        sessions.append(SessionRow(row["user"], str(row.get("node", ""))))
    return sessions


def running_nodes_from(body: Mapping[str, Any], where: str) -> list[str]:
    """The node names of a `mnesia { systemInfo(keys: ["running_db_nodes"]) }` answer."""
    infos = _path(body, ("data", "mnesia", "systemInfo"), where)
    if not isinstance(infos, list):
        raise ClusterAdminError(f"{where}: mnesia systemInfo is not a list: {infos!r:.300}")
    for info in infos:
        if isinstance(info, dict) and info.get("key") == "running_db_nodes":
            names = info.get("result")
            if isinstance(names, list) and all(isinstance(n, str) for n in names):
                return list(names)
            raise ClusterAdminError(f"{where}: running_db_nodes is not a list: {names!r:.300}")
    raise ClusterAdminError(f"{where}: no running_db_nodes in {infos!r:.300}")


def _path(body: Mapping[str, Any], keys: tuple[str, ...], where: str) -> object:
    value: object = body
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            shown = ".".join(keys)
            raise ClusterAdminError(f"{where}: the answer has no {shown}: {body!r:.300}")
        value = value[key]
    return value


@dataclass
class NodeAdmin:
    """The admin paths of one node: its GraphQL endpoint and, if this run started it, its
    container. `label` is how the report names the node ("the 6.1.0 node")."""

    label: str
    graphql: GraphQLAdmin
    container: str | None = None
    docker: str = "docker"

    async def list_sessions(self) -> list[SessionRow]:
        body = await self._query(LIST_SESSIONS, "listing sessions")
        sessions = sessions_from(body, f"{self.label} ({self.graphql.url})")
        log.info("%s lists %d session(s): %s", self.label, len(sessions), sessions)
        return sessions

    async def running_db_nodes(self) -> list[str]:
        body = await self._query(RUNNING_NODES, "reading the running Mnesia nodes")
        names = running_nodes_from(body, f"{self.label} ({self.graphql.url})")
        log.info("%s lists running Mnesia nodes %s", self.label, names)
        return names

    async def leave_cluster(self, timeout: float = LEAVE_TIMEOUT) -> str:
        """Runs `mongooseimctl leave_cluster -f` in the node's container; its output."""
        if self.container is None:
            raise ClusterAdminError(
                f"{self.label}: leave_cluster needs the node's container, and this run did "
                f"not start it (a server from --targets-file is never taken apart)"
            )
        argv = [self.docker, "exec", self.container, MONGOOSEIMCTL, "leave_cluster", "-f"]
        log.info("%s: running leave_cluster -f in container %s", self.label, self.container[:12])
        output = await _run(argv, f"{self.label}: `mongooseimctl leave_cluster -f`", timeout)
        log.info("%s left the cluster: %s", self.label, output.strip().splitlines()[-1:])
        return output

    async def _query(self, text: str, what: str) -> dict[str, Any]:
        try:
            return await self.graphql.query(text, f"{self.label}: {what}")
        except (ValueError, AttributeError) as exc:
            # httpx raises ValueError for a body that is not JSON; GraphQLAdmin reads the
            # body as an object, which a JSON list or string is not.
            raise ClusterAdminError(
                f"GraphQL {self.graphql.url}: {self.label}: {what}: the answer is not a "
                f"JSON object ({exc})"
            ) from None


async def _run(argv: list[str], what: str, timeout: float) -> str:
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
    except OSError as exc:
        raise ClusterAdminError(f"{what} could not start: {exc}") from None
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout=timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise ClusterAdminError(f"{what} did not finish within {timeout:g} s") from None
    text = out.decode(errors="replace")
    if process.returncode != 0:
        raise ClusterAdminError(
            f"{what} failed (exit {process.returncode}); its output: {text.strip()[-500:]}"
        )
    return text
