"""The mixed-cluster profile, judged against transcripts of a real 6.0.0 + 6.1.0 cluster.

Each recording in tests/data/recordings/mixed-cluster/ must pass the profile
mongooseim-mixed-cluster; a profile that claims otherwise (delivery across versions, a
node that lists only its own sessions, a split without bounces) must fail on the same
recording with a message naming the key. Further down: the per-node admin paths the
suite reads the nodes with, and the compose services the target runs on.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from clients.admin import AdminError, GraphQLAdmin
from clients.cluster_admin import (
    ClusterAdminError,
    NodeAdmin,
    running_nodes_from,
    sessions_from,
)
from harness import recordings
from harness.judges import cluster as judge
from harness.judges.cluster import ClusterExpect, Routed, Tally
from harness.profiles import ProfileError, load_profile
from harness.targets import load_catalog
from tests.recorded import RECORDINGS

MIXED = RECORDINGS / "mixed-cluster"
ROOT = Path(__file__).resolve().parent.parent
ALICE, BOB = "alice@localhost/a1", "bob@localhost/b1"
OLD, NEW = "the 6.0.0 node", "the 6.1.0 node"
GRAPHQL_NOTE = re.compile(
    r"^(?P<what>listSessions|mnesia running_db_nodes) on (?P<node>the \S+ node): (?P<json>\{.*\})$"
)


def want() -> ClusterExpect:
    return ClusterExpect.of(load_profile("mongooseim-mixed-cluster"))


def claiming(key: str, value: Any) -> ClusterExpect:
    """The mixed-cluster profile with one key changed to a claim the recordings refute."""
    changes: dict[str, Any] = {key: value}
    return replace(want(), **changes)


def mixed(name: str) -> recordings.Recording:
    return recordings.load(MIXED / f"{name}.txt")


@dataclass(frozen=True)
class Act:
    """One recorded stanza: where it starts and ends in the file, and who is who."""

    file: str
    kind: str
    direction: str
    sender: tuple[str, str]  # (client name in the transcript, full JID)
    recipient: tuple[str, str]
    sent: str  # text of the sender's C: line
    to: str
    marker: str
    until: tuple[str, str] | None = None  # (client, text) of the first line after the act

    def routed(self) -> Routed:
        rec = mixed(self.file)
        start = rec.find("C", self.sender[0], self.sent)
        end = rec.find("C", self.until[0], self.until[1], start + 1) if self.until else None
        return Routed(
            self.kind,
            self.sender[1],
            self.to,
            self.marker,
            rec.received(self.recipient[0], start, end),
            rec.received(self.sender[0], start, end),
        )


A, B = ("alice", ALICE), ("bob", BOB)
CROSS_VERSION = [
    Act("message-6.0.0-to-6.1.0", "chat", "old_to_new", A, B, "id='m1'", BOB, "m1",
        ("alice", "id='ping1'")),
    Act("message-6.0.0-to-6.1.0", "iq", "old_to_new", A, B, "id='ping1'", BOB, "ping1"),
    Act("message-6.1.0-to-6.0.0", "chat", "new_to_old", B, A, "id='m2'", ALICE, "m2",
        ("bob", "id='ping2'")),
    Act("message-6.1.0-to-6.0.0", "iq", "new_to_old", B, A, "id='ping2'", ALICE, "ping2"),
    Act("presence-cross-node", "presence", "old_to_new", A, B, "<presence/>", BOB, "",
        ("bob", "<show>away</show>")),
    Act("presence-cross-node", "presence", "new_to_old", B, A, "<show>away</show>", ALICE, "",
        ("alice", "id='m3'")),
    Act("presence-cross-node", "chat", "old_to_new", A, B, "id='m3'", "bob@localhost", "m3",
        ("alice", "type='unavailable'")),
    Act("presence-cross-node", "chat", "new_to_old", B, A, "id='m4'", "alice@localhost", "m4",
        ("alice", "type='unavailable'")),
    Act("leave-cluster-6.1.0", "chat", "old_to_new", A, B, "id='m7'", BOB, "m7",
        ("alice", "id='m8'")),
]  # fmt: skip
CASE_IDS = [f"{a.file}:{a.kind}-{a.marker or a.direction}" for a in CROSS_VERSION]


# -- routing across versions --------------------------------------------------------------


@pytest.mark.parametrize("act", CROSS_VERSION, ids=CASE_IDS)
def test_recorded_cross_version_stanza_is_lost_as_the_profile_says(act: Act) -> None:
    routed = act.routed()

    problems = judge.judge_cross_version(want(), act.direction, routed)

    assert judge.fate_of(routed) == "lost"
    assert problems == []


@pytest.mark.parametrize("claim", ["delivered", "bounced"])
@pytest.mark.parametrize("act", CROSS_VERSION, ids=CASE_IDS)
def test_profile_claiming_another_fate_across_versions_fails_naming_the_key(
    act: Act, claim: str
) -> None:
    key = f"{act.kind}_{act.direction}"
    claimed = claiming(key, claim)

    problems = judge.judge_cross_version(claimed, act.direction, act.routed())

    assert len(problems) == 1
    assert problems[0].startswith(f"{key} = {claim!r}: expected the ")
    assert "it was lost" in problems[0]


def test_routing_problem_lists_what_each_side_received() -> None:
    routed = Routed(
        "chat", ALICE, BOB, "m1", [], [ET.fromstring("<presence xmlns='jabber:client' from='x'/>")]
    )

    problems = judge.judge_routing("delivered", "chat_old_to_new", routed)

    assert problems == [
        "chat_old_to_new = 'delivered': expected the chat 'm1' from alice@localhost/a1 to "
        "bob@localhost/b1 to be delivered to the recipient; it was lost. The recipient "
        "received nothing; the sender received <presence from='x'/>"
    ]


def test_presence_under_test_is_told_apart_by_its_status() -> None:
    def presence(status: str) -> ET.Element:
        xml = (
            f"<presence xmlns='jabber:client' from='{ALICE}'><status>{status}</status></presence>"
        )
        return ET.fromstring(xml)

    earlier = Routed("presence", ALICE, BOB, "presence-2", [presence("presence-1")])
    this_one = Routed("presence", ALICE, BOB, "presence-2", [presence("presence-2")])

    assert judge.fate_of(earlier) == "lost"
    assert judge.fate_of(this_one) == "delivered"


def test_a_bounce_is_told_apart_from_a_loss() -> None:
    error = ET.fromstring(
        "<message xmlns='jabber:client' type='error' id='m1'><error type='cancel'>"
        "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"
    )
    routed = Routed("chat", ALICE, BOB, "m1", [], [error])

    assert judge.fate_of(routed) == "bounced"
    assert judge.judge_routing("lost", "chat_old_to_new", routed) != []


# -- what the nodes list ------------------------------------------------------------------


def graphql_notes(rec: recordings.Recording, what: str) -> list[dict[str, Any]]:
    """The GraphQL answers a transcript noted, in order: {"node": ..., "body": ...}."""
    found = []
    for line in rec.lines:
        note = GRAPHQL_NOTE.match(line.text) if line.client == "GraphQL" else None
        if note and note["what"] == what:
            found.append({"node": note["node"], "body": json.loads(note["json"])})
    return found


def listings(rec: recordings.Recording) -> list[dict[str, list[str]]]:
    """Each pair of listSessions notes (one per node) as {node: [full JID, ...]}."""
    notes = graphql_notes(rec, "listSessions")
    pairs = [notes[i : i + 2] for i in range(0, len(notes), 2)]
    return [
        {n["node"]: [row.user for row in sessions_from(n["body"], n["node"])] for n in pair}
        for pair in pairs
    ]


SESSION_FILES = ["message-6.0.0-to-6.1.0", "message-6.1.0-to-6.0.0", "presence-cross-node"]


@pytest.mark.parametrize("name", SESSION_FILES)
def test_both_nodes_list_both_users_before_and_after_lost_stanzas(name: str) -> None:
    logged_in = {ALICE: OLD, BOB: NEW}
    recorded = listings(mixed(name))

    problems = [
        p for listed in recorded for p in judge.judge_sessions(want(), logged_in, listed, "")
    ]

    assert recorded
    assert problems == []


@pytest.mark.parametrize("name", SESSION_FILES)
def test_profile_claiming_per_node_session_lists_fails_naming_the_key(name: str) -> None:
    claimed = replace(want(), sessions_listed="per-node")
    listed = listings(mixed(name))[-1]

    problems = judge.judge_sessions(claimed, {ALICE: OLD, BOB: NEW}, listed, "after")

    assert len(problems) == 2
    assert all(p.startswith("sessions_listed = 'per-node': after, the ") for p in problems)


def test_session_rows_keep_the_node_each_user_is_on() -> None:
    note = graphql_notes(mixed("message-6.0.0-to-6.1.0"), "listSessions")[0]

    rows = sessions_from(note["body"], note["node"])

    assert {(r.user, r.node) for r in rows} == {
        (BOB, "mim610@localhost"),
        (ALICE, "mim600@localhost"),
    }


# -- the control: both users on one node --------------------------------------------------


def same_node_sections() -> list[list[Routed]]:
    rec = mixed("same-node-control")
    first = rec.find("C", "bob", "<presence/>")
    second = rec.find("C", "bob", "<presence/>", first + 1)
    sections = []
    for start, end in ((first, second), (second, None)):
        presence_at = rec.find("C", "alice", "<presence/>", start)
        sections.append(
            [
                Routed("presence", ALICE, BOB, "", rec.received("bob", presence_at, end)),
                Routed("chat", ALICE, BOB, "m5", rec.received("bob", start, end)),
                Routed("chat", BOB, ALICE, "m6", rec.received("alice", start, end)),
            ]
        )
    return sections


@pytest.mark.parametrize("section", [0, 1], ids=["on-6.0.0-node", "on-6.1.0-node"])
def test_same_node_traffic_of_the_mixed_cluster_is_delivered(section: int) -> None:
    routed = same_node_sections()[section]

    problems = judge.judge_same_node(want(), routed)

    assert [judge.fate_of(r) for r in routed] == ["delivered"] * 3
    assert problems == []


def test_profile_claiming_same_node_loss_fails_naming_the_key() -> None:
    claimed = replace(want(), same_node="lost")

    problems = judge.judge_same_node(claimed, same_node_sections()[1])

    assert len(problems) == 3
    assert all(p.startswith("same_node = 'lost': ") for p in problems)


# -- joining ------------------------------------------------------------------------------


def after_join() -> list[dict[str, list[str]]]:
    """Running Mnesia nodes after each recorded join, as the header of join.txt gives them:
    first the 6.1.0 node joining the 6.0.0 node (rpc on each node), then the reverse."""
    header = "\n".join(mixed("join").header)
    rpc = re.search(r"rpc on mim600: running_db_nodes=\[([^\]]*)\]", header)
    graphql = re.search(r"running_db_nodes on both nodes afterwards: (\[[^\]]*\])", header)
    assert rpc is not None
    assert graphql is not None
    assert "Same view from mim610" in header
    first = rpc.group(1).split(",")
    second = json.loads(graphql.group(1))
    return [{OLD: first, NEW: first}, {OLD: second, NEW: second}]


@pytest.mark.parametrize("join", [0, 1], ids=["6.1.0-joins-6.0.0", "6.0.0-joins-6.1.0"])
def test_recorded_joins_form_one_cluster(join: int) -> None:
    running = after_join()[join]

    assert judge.judge_joined(want(), running) == []


def test_profile_claiming_no_join_fails_naming_the_key() -> None:
    claimed = replace(want(), joined=False)

    problems = judge.judge_joined(claimed, after_join()[0])

    assert len(problems) == 1
    assert problems[0].startswith("joined = false: expected each node to list only itself")


def test_recorded_join_with_default_cookies_failed() -> None:
    rec = mixed("join-cookie-mismatch")

    outcome = [line.text for line in rec.lines if line.client in ("ctl-6.0.0", "exit")]

    assert any("Timeout while attempting to connect" in text for text in outcome)
    assert any(text.startswith("status 1") for text in outcome)


# -- the split step -----------------------------------------------------------------------


@dataclass
class Split:
    notice: list[ET.Element]
    running: dict[str, list[str]]
    listed: dict[str, list[str]]
    full: Routed
    to_bare: Routed
    sasl: ET.Element


def split() -> Split:
    rec = mixed("leave-cluster-6.1.0")
    leave = next(line.index for line in rec.lines if line.client == "run")
    full = rec.find("C", "alice", "id='m8'")
    bare = rec.find("C", "alice", "id='m9'")
    logging_in = rec.find("C", "bob2", "<stream:stream")
    running = {
        n["node"]: running_nodes_from(n["body"], n["node"])
        for n in graphql_notes(rec, "mnesia running_db_nodes")
    }
    answers = rec.received("bob2", logging_in)
    return Split(
        notice=rec.received("bob", leave, full),
        running=running,
        listed=listings(rec)[0],
        full=Routed("chat", ALICE, BOB, "m8", [], rec.received("alice", full, bare)),
        to_bare=Routed("chat", ALICE, "bob@localhost", "m9", [], rec.received("alice", bare)),
        sasl=answers[-1],
    )


def test_recorded_split_step_passes_the_profile() -> None:
    seen, expected = split(), want()

    problems = judge.judge_leave_notice(expected, seen.notice)
    problems += judge.judge_split(expected, seen.running)
    problems += judge.judge_after_leave(expected, seen.full)
    problems += judge.judge_after_leave(expected, seen.to_bare)
    problems += judge.judge_departed_accounts(expected, seen.sasl)

    assert problems == []
    assert seen.listed == {OLD: [ALICE], NEW: []}


@pytest.mark.parametrize(
    ("key", "claim", "check", "starts"),
    [
        ("leave_stream_error", "conflict", "notice", "leave_stream_error = 'conflict': "),
        ("leave_splits", False, "running", "leave_splits = false: expected each of the 2"),
        ("after_leave", "lost", "full", "after_leave = 'lost': "),
        ("after_leave", "delivered", "to_bare", "after_leave = 'delivered': "),
        ("after_leave_error", "item-not-found", "full", "after_leave_error = 'item-not-found'"),
        ("departed_node_keeps_accounts", True, "sasl", "departed_node_keeps_accounts = true"),
    ],
)
def test_profile_claiming_another_split_fails_naming_the_key(
    key: str, claim: object, check: str, starts: str
) -> None:
    claimed, seen = claiming(key, claim), split()
    judges = {
        "notice": lambda: judge.judge_leave_notice(claimed, seen.notice),
        "running": lambda: judge.judge_split(claimed, seen.running),
        "full": lambda: judge.judge_after_leave(claimed, seen.full),
        "to_bare": lambda: judge.judge_after_leave(claimed, seen.to_bare),
        "sasl": lambda: judge.judge_departed_accounts(claimed, seen.sasl),
    }

    problems = judges[check]()

    assert len(problems) == 1
    assert problems[0].startswith(starts)


# -- the report's summary -----------------------------------------------------------------


def test_summary_of_the_recorded_cross_version_stanzas() -> None:
    tally = Tally()
    for act in CROSS_VERSION:
        tally.add(act.direction, act.routed())

    line = tally.summary(want())

    assert line.startswith(
        "cross-version routing: 9 stanzas sent between users on the 6.0.0 node and the "
        "6.1.0 node, 0 arrived (arrived/sent: chat_old_to_new 0/3, iq_old_to_new 0/1, "
    )
    assert judge.judge_tally(want(), tally) == []


def test_summary_fails_a_profile_claiming_delivery_naming_the_key() -> None:
    tally = Tally()
    for act in CROSS_VERSION:
        tally.add(act.direction, act.routed())
    claimed = replace(want(), presence_new_to_old="delivered")

    problems = judge.judge_tally(claimed, tally)

    assert problems == [
        "presence_new_to_old = 'delivered': 1 sent across versions, 0 arrived; "
        "expected 1 to arrive"
    ]


# -- the profile itself -------------------------------------------------------------------


def test_mixed_cluster_profile_names_its_nodes() -> None:
    expected = want().check_nodes(2, "mongooseim-mixed-cluster")

    assert (expected.label("old"), expected.label("new")) == (OLD, NEW)
    assert (expected.node("old"), expected.node("new")) == (0, 1)


def write_profile(folder: Path, **changes: object) -> str:
    table = dict(load_profile("mongooseim-mixed-cluster").section("cluster"), **changes)
    body = "\n".join(f"{k} = {json.dumps(v)}" for k, v in table.items())
    (folder / "claimed.toml").write_text(f"[cluster]\n{body}\n")
    return "claimed"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"chat_old_to_new": "vanished"}, "chat_old_to_new = 'vanished' must be one of"),
        ({"sessions_listed": "everywhere"}, "sessions_listed must be one of"),
        ({"new_node": 0}, "old_node and new_node must be two different indexes"),
        ({"joined": "yes"}, "joined = 'yes' should be a bool"),
    ],
)
def test_broken_cluster_profile_is_refused_with_the_key(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    name = write_profile(tmp_path, **changes)

    with pytest.raises(ProfileError, match=re.escape(message)):
        ClusterExpect.of(load_profile(name, tmp_path))


def test_profile_naming_a_node_the_target_lacks_is_refused() -> None:
    with pytest.raises(ProfileError, match="target solo has 1 node"):
        want().check_nodes(1, "solo")


# -- reading the nodes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"data": None}, "the answer has no data.session.listSessions"),
        ({"data": {"session": {"listSessions": "x"}}}, "listSessions is not a list"),
        ({"data": {"session": {"listSessions": [{"node": "n"}]}}}, "row has no user"),
    ],
)
def test_malformed_session_list_is_a_clear_error(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ClusterAdminError, match=message):
        sessions_from(body, "the 6.0.0 node")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"data": {"mnesia": {"systemInfo": []}}}, "no running_db_nodes"),
        ({"data": {"mnesia": {"systemInfo": {}}}}, "systemInfo is not a list"),
        (
            {"data": {"mnesia": {"systemInfo": [{"key": "running_db_nodes", "result": 3}]}}},
            "running_db_nodes is not a list",
        ),
    ],
)
def test_malformed_membership_answer_is_a_clear_error(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ClusterAdminError, match=message):
        running_nodes_from(body, "the 6.1.0 node")


class Canned(BaseHTTPRequestHandler):
    """Answers every POST with the body the test put on the server."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body: bytes = self.server.body  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def graphql_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Canned)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def admin_at(server: ThreadingHTTPServer, body: bytes) -> NodeAdmin:
    server.body = body  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{server.server_address[1]}/api/graphql"
    return NodeAdmin("the 6.1.0 node", GraphQLAdmin(url, "admin", "secret"))


async def test_node_lists_sessions_from_its_graphql_answer(
    graphql_server: ThreadingHTTPServer,
) -> None:
    note = graphql_notes(mixed("presence-cross-node"), "listSessions")[-1]
    node = admin_at(graphql_server, json.dumps(note["body"]).encode())

    rows = await node.list_sessions()

    assert sorted(r.user for r in rows) == [ALICE, BOB]


@pytest.mark.parametrize("body", [b"<html>gateway</html>", b"[1, 2]"], ids=["html", "list"])
async def test_graphql_answer_that_is_not_a_json_object_is_a_clear_error(
    graphql_server: ThreadingHTTPServer, body: bytes
) -> None:
    node = admin_at(graphql_server, body)

    with pytest.raises(ClusterAdminError, match="the answer is not a JSON object"):
        await node.running_db_nodes()


async def test_node_that_does_not_answer_is_a_clear_error() -> None:
    graphql = GraphQLAdmin("http://127.0.0.1:9/api/graphql", "admin", "secret")

    with pytest.raises(AdminError, match=re.escape("the 6.0.0 node: listing sessions failed")):
        await NodeAdmin("the 6.0.0 node", graphql).list_sessions()


# -- leaving the cluster ------------------------------------------------------------------


def fake_docker(folder: Path, script: str) -> str:
    """A stand-in for the docker CLI: a shell script with the given body."""
    path = folder / "docker"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return str(path)


def leaving_node(docker: str, container: str | None = "c0ffee") -> NodeAdmin:
    graphql = GraphQLAdmin("http://127.0.0.1:9/api/graphql", "admin", "secret")
    return NodeAdmin("the 6.1.0 node", graphql, container, docker)


async def test_leave_cluster_runs_mongooseimctl_by_full_path_in_the_container(
    tmp_path: Path,
) -> None:
    docker = fake_docker(tmp_path, 'echo "$@"; echo "has successfully left the cluster"')

    output = await leaving_node(docker).leave_cluster()

    assert output.splitlines() == [
        "exec c0ffee /usr/lib/mongooseim/bin/mongooseimctl leave_cluster -f",
        "has successfully left the cluster",
    ]


async def test_failed_leave_cluster_reports_exit_status_and_output(tmp_path: Path) -> None:
    docker = fake_docker(tmp_path, 'echo "Error: node not in a cluster"; exit 3')

    with pytest.raises(ClusterAdminError, match=r"failed \(exit 3\).*not in a cluster"):
        await leaving_node(docker).leave_cluster()


async def test_hanging_leave_cluster_ends_at_its_bound(tmp_path: Path) -> None:
    docker = fake_docker(tmp_path, "exec sleep 30")

    with pytest.raises(ClusterAdminError, match=re.escape("did not finish within 0.3 s")):
        await asyncio.wait_for(leaving_node(docker).leave_cluster(timeout=0.3), timeout=5)


async def test_leave_cluster_refuses_a_node_this_run_did_not_start() -> None:
    with pytest.raises(ClusterAdminError, match="this run did not start it"):
        await leaving_node("docker", container=None).leave_cluster()


# -- the compose services of the target ---------------------------------------------------


def cluster_services() -> list[dict[str, Any]]:
    target = load_catalog()["mongooseim-mixed-cluster"]
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    return [services[node.service] | {"name": node.service} for node in target.nodes]


def test_cluster_nodes_resolve_each_other_by_hostname() -> None:
    for service in cluster_services():
        assert service["hostname"] == service["name"]
        assert "." not in service["name"], "hostname -s would cut the node name at a dot"
        assert service["profiles"] == ["cluster"]
        assert "command" not in service, "a command replaces the 6.1.0 image's start script"


def test_cluster_nodes_share_one_cookie() -> None:
    mounts = [
        next(v for v in s["volumes"] if v.endswith(":/member/vm.args:ro"))
        for s in cluster_services()
    ]
    vm_args = (ROOT / mounts[0].split(":")[0]).read_text().splitlines()

    assert len(set(mounts)) == 1
    assert len([line for line in vm_args if line.startswith("-setcookie ")]) == 1


def test_new_node_joins_the_old_node_once_it_is_healthy() -> None:
    expected = want()
    services = cluster_services()
    old, new = services[expected.old_node], services[expected.new_node]

    assert old["environment"]["JOIN_CLUSTER"] == "false"
    assert new["environment"]["JOIN_CLUSTER"] == "true"
    assert new["environment"]["CLUSTER_WITH"] == f"mongooseim@{old['hostname']}"
    assert new["depends_on"] == {old["name"]: {"condition": "service_healthy"}}
    assert "run_erl" in " ".join(new["healthcheck"]["test"])


def test_cluster_images_are_the_versions_the_profile_names() -> None:
    expected = want()
    services = cluster_services()

    assert services[expected.old_node]["image"] == f"mongooseim/mongooseim:{expected.old_version}"
    assert services[expected.new_node]["image"] == f"mongooseim/mongooseim:{expected.new_version}"
    for service in services:
        assert all(port.startswith("127.0.0.1::") for port in service["ports"])
        assert "/usr/lib/mongooseim/bin/mongooseimctl" in " ".join(service["healthcheck"]["test"])


# -- the suite on targets it does not apply to --------------------------------------------


def run_suite(*args: str) -> str:
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "pytest", "suites/test_mixed_cluster.py", "-o", "addopts=-ra",
         "-p", "no:cacheprovider", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return done.stdout + done.stderr


def test_suite_is_collected_for_the_cluster_target() -> None:
    output = run_suite("--collect-only", "-q", "--targets=mongooseim-mixed-cluster")

    assert "12 tests collected" in output


def test_suite_skips_a_single_node_target_before_starting_it() -> None:
    output = run_suite("--targets=mongooseim-6.1.0", "-q")

    assert "12 skipped" in output
    assert "the mixed-cluster rehearsal needs a target with a 6.0.0 and a 6.1.0 node" in output
    assert "[servers]" not in output
