"""The metrics readers against a local HTTP server that replays recorded answers.

The MongooseIM routes answer with the bodies, statuses and headers recorded from native
6.0.0 and 6.1.0 builds (tests/data/recordings). Prosody and ejabberd answers are written
here in the format those servers were seen to use.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from clients.metrics import (
    EjabberdStatsReader,
    GraphQLError,
    MetricsError,
    MongooseGraphQLReader,
    MongooseRestReader,
    OpenMetricsReader,
    cors_headers,
)

RECORDINGS = Path(__file__).parent / "data" / "recordings"
VERSIONS = ("6.0.0", "6.1.0")
ADMIN, SECRET = "admin", "secret"
WRONG_PASSWORD = "n0t-the-s3cret"
JSON_TYPE = ("content-type", "application/json")
CORS_6_0_0 = {
    "access-control-allow-headers": "Content-Type",
    "access-control-allow-methods": "GET, OPTIONS, PUT, POST, DELETE",
    "access-control-allow-origin": "*",
}

# Recorded REST answers: file stem under api/ -> the route it was taken from. The file name
# does not keep the case of the unknown metric's name; any unknown name gets this answer.
REST_FILES = {
    "rest-metrics": "/api/metrics/",
    "rest-metrics_global": "/api/metrics/global",
    "rest-metrics_global_nosuchmetric": "/api/metrics/global/nosuchmetric",
    "rest-metrics_all_xmppMessageSent": "/api/metrics/all/xmppMessageSent",
    "rest-metrics_host_type_localhost": "/api/metrics/host_type/localhost",
    "rest-metrics_host_type_localhost_xmppMessageSent": (
        "/api/metrics/host_type/localhost/xmppMessageSent"
    ),
}
# Exchanges taken whole from metrics-rest-api-cors.txt (the others there are trimmed).
TRANSCRIPT_ROUTES = {
    ("GET", "/api/metrics/global/totalSessionCount"),
    ("GET", "/api/metrics/host_type/localhost/noSuchMetric"),
    ("OPTIONS", "/api/metrics/"),
}
DICTS_RECORDINGS = {
    ("_", "xmppMessageSent"): "graphql-getMetricsAsDicts-xmppMessageSent",
    ("global", "data", "xmpp"): "graphql-getMetricsAsDicts-global-data-xmpp",
    ("global", "data", "xmpp", "received", "compressed_size"): (
        "graphql-getMetricsAsDicts-compressed_size"
    ),
}

# Lines in the shape a live Prosody 0.12 /metrics page has (empty UNIT lines, *_created
# samples, "# EOF"), cut down to three families, with a second host added.
PROSODY_METRICS = "\n".join(
    [
        "# HELP prosody_mod_c2s__encrypted Encrypted connections",
        "# UNIT prosody_mod_c2s__encrypted ",
        "# TYPE prosody_mod_c2s__encrypted counter",
        "# HELP prosody_mod_smacks__sessions_started mod_smacks/sessions_started counter",
        "# UNIT prosody_mod_smacks__sessions_started ",
        "# TYPE prosody_mod_smacks__sessions_started counter",
        'prosody_mod_smacks__sessions_started_created{host="localhost"} 1796315722.9346981',
        'prosody_mod_smacks__sessions_started_total{host="localhost"} 3',
        'prosody_mod_smacks__sessions_started_created{host="conference.test"} 1796315722.93',
        'prosody_mod_smacks__sessions_started_total{host="conference.test"} 1',
        "# HELP prosody_stats_collection_seconds stats.collection times",
        "# UNIT prosody_stats_collection_seconds seconds",
        "# TYPE prosody_stats_collection_seconds histogram",
        'prosody_stats_collection_seconds_bucket{le="0.001"} 2',
        'prosody_stats_collection_seconds_bucket{le="+Inf"} 5',
        "prosody_stats_collection_seconds_sum 2.6702880859375e-05",
        "prosody_stats_collection_seconds_created 1796315722.9089162",
        "prosody_stats_collection_seconds_count 5",
        "# EOF",
        "",
    ]
)
OPENMETRICS_TYPE = ("content-type", "application/openmetrics-text; version=0.0.4")
STARTED_TOTAL = "prosody_mod_smacks__sessions_started_total"


@dataclass(frozen=True)
class Canned:
    """One HTTP answer: status, headers (Content-Length is computed) and body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True)
class Seen:
    """One request as the local server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Route = Canned | Callable[[Seen], Canned]


@dataclass
class LocalServer:
    """An HTTP server on 127.0.0.1 answering each (method, path) from a route table."""

    routes: dict[tuple[str, str], Route]
    seen: list[Seen] = field(default_factory=list)
    version: str = ""

    def __post_init__(self) -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        # A short poll keeps shutdown() quick; the default half second adds up over the file.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def answer(self, seen: Seen) -> Canned:
        self.seen.append(seen)
        route = self.routes.get((seen.method, seen.path))
        if route is None:
            # 501, not 404: an unplanned request must never pass for a missing metric.
            return Canned(501, (), f"no route for {seen.method} {seen.path}".encode())
        return route(seen) if callable(route) else route

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def _handler_for(server: LocalServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            headers = {name.lower(): value for name, value in self.headers.items()}
            seen = Seen(self.command, self.path, headers, self.rfile.read(length))
            canned = server.answer(seen)
            self.send_response_only(canned.status)
            for name, value in canned.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(canned.body)))
            self.end_headers()
            self.wfile.write(canned.body)

        do_GET = do_POST = do_OPTIONS = _serve

        def log_message(self, format: str, *args: object) -> None:
            """Requests are kept in LocalServer.seen; the default stderr log is noise."""

    return Handler


def recorded_rest(version: str, stem: str) -> Canned:
    """A REST answer from its recorded .headers file and, where there is one, .json body."""
    api = RECORDINGS / f"mongooseim-{version}" / "api"
    head = (api / f"{stem}.headers").read_text().splitlines()
    status = int(head[0].split()[1])
    headers = tuple(
        (name.strip(), value.strip())
        for name, _, value in (line.partition(":") for line in head[1:] if line)
        # The bodies were stored pretty-printed, so the recorded length no longer fits.
        if name.lower() != "content-length"
    )
    body_file = api / f"{stem}.json"
    return Canned(status, headers, body_file.read_bytes() if body_file.exists() else b"")


def transcript_routes(
    version: str, wanted: set[tuple[str, str]] = TRANSCRIPT_ROUTES
) -> dict[tuple[str, str], Route]:
    """The whole exchanges of metrics-rest-api-cors.txt named in ``wanted``."""
    text = (RECORDINGS / f"mongooseim-{version}" / "metrics-rest-api-cors.txt").read_text()
    exchanges: dict[tuple[str, str], list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("C: "):
            method, path = line[3:].split()[:2]
            current = exchanges.setdefault((method, path), [])
        elif line.startswith("S: "):
            current.append(line[3:])
    return {key: _canned(lines) for key, lines in exchanges.items() if key in wanted}


def _canned(lines: list[str]) -> Canned:
    blank = lines.index("")
    headers = tuple(
        (name.strip(), value.strip())
        for name, _, value in (line.partition(":") for line in lines[1:blank])
        if name.lower() != "content-length"
    )
    body = "\n".join(lines[blank + 1 :]).strip()
    return Canned(int(lines[0].split()[1]), headers, body.encode())


def graphql_route(version: str, validation_status: int = 400) -> Callable[[Seen], Canned]:
    """Answers admin GraphQL requests with the recorded body for that query.

    The recordings keep the body of the 6.0.0 unknown_field answer but not its status;
    MongooseIM sends validation errors with HTTP 400, so that is the default here.
    """
    api = RECORDINGS / f"mongooseim-{version}" / "api"
    expected_auth = "Basic " + base64.b64encode(f"{ADMIN}:{SECRET}".encode()).decode()

    def answer(seen: Seen) -> Canned:
        if seen.headers.get("authorization") != expected_auth:
            return recorded_wrong_credentials(version)
        request = json.loads(seen.body)
        stem = _graphql_recording(request["query"], request.get("variables") or {})
        if stem is None:
            return Canned(501, (), b"no recording for this query")
        body = (api / f"{stem}.json").read_bytes()
        only_errors = "data" not in json.loads(body)
        return Canned(validation_status if only_errors else 200, (JSON_TYPE,), body)

    return answer


def _graphql_recording(query: str, variables: dict[str, list[str]]) -> str | None:
    if "getMetricsAsDicts" in query:
        return DICTS_RECORDINGS.get(tuple(variables.get("name") or ()))
    if "getMetrics" in query and not variables.get("name"):
        return "graphql-getMetrics-all"
    if "status" in query and "version" in query:
        return "graphql-server-status-with-version"
    if "status" in query:
        return "graphql-server-status"
    return None


def recorded_wrong_credentials(version: str) -> Canned:
    """The recorded answer to wrong basic auth: body line, then 'HTTP <status>'."""
    path = RECORDINGS / f"mongooseim-{version}" / "api" / "graphql-wrong-credentials.txt"
    body, status_line = path.read_text().strip().splitlines()
    return Canned(int(status_line.split()[1]), (JSON_TYPE,), body.encode())


@pytest.fixture
def serve() -> Iterator[Callable[[dict[tuple[str, str], Route]], LocalServer]]:
    started: list[LocalServer] = []

    def start(routes: dict[tuple[str, str], Route]) -> LocalServer:
        server = LocalServer(routes)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def recorded_mongooseim(
    serve: Callable[[dict[tuple[str, str], Route]], LocalServer],
    version: str,
    validation_status: int = 400,
) -> LocalServer:
    routes: dict[tuple[str, str], Route] = {
        ("GET", path): recorded_rest(version, stem) for stem, path in REST_FILES.items()
    }
    routes.update(transcript_routes(version))
    routes[("POST", "/api/graphql")] = graphql_route(version, validation_status)
    server = serve(routes)
    server.version = version
    return server


@pytest.fixture(params=VERSIONS)
def mim(request: pytest.FixtureRequest, serve: Callable[..., LocalServer]) -> LocalServer:
    return recorded_mongooseim(serve, request.param)


@pytest.fixture
def mim600(serve: Callable[..., LocalServer]) -> LocalServer:
    return recorded_mongooseim(serve, "6.0.0")


@pytest.fixture
def mim610(serve: Callable[..., LocalServer]) -> LocalServer:
    return recorded_mongooseim(serve, "6.1.0")


def graphql(server: LocalServer, password: str = SECRET) -> MongooseGraphQLReader:
    return MongooseGraphQLReader(server.base_url, ADMIN, password, host_header="localhost")


def rest(server: LocalServer) -> MongooseRestReader:
    return MongooseRestReader(server.base_url, host_header="localhost")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- GraphQL -----------------------------------------------------------------------------


async def test_graphql_counters_read_spiral_count_counter_and_gauge_value(
    mim: LocalServer,
) -> None:
    stanzas_sent = {"6.0.0": 3, "6.1.0": 7}[mim.version]

    async with graphql(mim) as reader:
        values = await reader.counters(
            [
                ["localhost", "xmppMessageSent"],
                ["localhost", "xmppStanzaSent"],
                ["localhost", "sessionCount"],
                ["global", "clusterSize"],
            ]
        )

    assert values == {
        ("localhost", "xmppMessageSent"): 1,
        ("localhost", "xmppStanzaSent"): stanzas_sent,
        ("localhost", "sessionCount"): 2,
        ("global", "clusterSize"): 1,
    }


async def test_graphql_counter_of_a_spiral_is_its_count_not_the_minute_window(
    serve: Callable[..., LocalServer],
) -> None:
    # The recorded snapshots have one == count everywhere, so this body tells them apart.
    metric = {"type": "spiral", "name": ["localhost", "xmppStanzaSent"], "one": 4, "count": 9}
    body = json.dumps({"data": {"metric": {"getMetrics": [metric, {}]}}}).encode()
    server = serve({("POST", "/api/graphql"): Canned(200, (JSON_TYPE,), body)})

    async with graphql(server) as reader:
        values = await reader.counters([["localhost", "xmppStanzaSent"]])

    assert values == {("localhost", "xmppStanzaSent"): 9}


async def test_graphql_reports_missing_metric_as_absent(mim: LocalServer) -> None:
    async with graphql(mim) as reader:
        values = await reader.counters(
            [["localhost", "noSuchMetric"], ["localhost", "xmppMessageSent"]]
        )

    assert ("localhost", "noSuchMetric") not in values
    assert values == {("localhost", "xmppMessageSent"): 1}


async def test_graphql_c2s_tcp_byte_counters_exist_only_on_6_1_0(mim: LocalServer) -> None:
    tcp_names = {
        ("global", "data", "xmpp", "received", "c2s", "tcp"),
        ("global", "data", "xmpp", "sent", "c2s", "tcp"),
    }

    async with graphql(mim) as reader:
        found = await reader.names(["global", "data", "xmpp", "_", "c2s", "tcp"])
        values = await reader.counters(sorted(tcp_names))

    if mim.version == "6.1.0":
        assert found == tcp_names
        assert values == {
            ("global", "data", "xmpp", "received", "c2s", "tcp"): 1200,
            ("global", "data", "xmpp", "sent", "c2s", "tcp"): 3099,
        }
    else:
        assert found == set()
        assert values == {}


async def test_graphql_compressed_and_encrypted_size_exist_only_on_6_0_0(
    mim: LocalServer,
) -> None:
    removed = {
        ("global", "data", "xmpp", direction, kind)
        for direction in ("received", "sent")
        for kind in ("compressed_size", "encrypted_size")
    }

    async with graphql(mim) as reader:
        found = await reader.names(["global", "data", "xmpp"])

    kept = ("global", "data", "xmpp", "sent", "xml_stanza_size")
    assert kept in found
    assert (removed <= found) is (mim.version == "6.0.0")
    assert removed.isdisjoint(found) is (mim.version == "6.1.0")


async def test_graphql_names_agree_with_server_side_filter(mim: LocalServer) -> None:
    prefix = ["global", "data", "xmpp"]

    async with graphql(mim) as reader:
        local = await reader.names(prefix)
        remote = await reader.dicts(prefix)

    assert len(local) > 5
    assert local == set(remote)


async def test_graphql_dicts_with_wildcard_prefix_return_key_values(mim: LocalServer) -> None:
    async with graphql(mim) as reader:
        values = await reader.dicts(["_", "xmppMessageSent"], keys=["count", "one"])

    assert values == {("localhost", "xmppMessageSent"): {"count": 1, "one": 1}}
    sent = json.loads(mim.seen[-1].body)["variables"]
    assert sent == {"name": ["_", "xmppMessageSent"], "keys": ["count", "one"]}


async def test_graphql_dicts_of_compressed_size_are_empty_on_6_1_0(mim: LocalServer) -> None:
    name = ("global", "data", "xmpp", "received", "compressed_size")

    async with graphql(mim) as reader:
        values = await reader.dicts(name)

    if mim.version == "6.1.0":
        assert values == {}
    else:
        assert values[name]["n"] == 0
        assert set(values[name]) >= {"n", "mean", "max", "99"}


async def test_graphql_counter_read_of_a_histogram_is_an_error(mim600: LocalServer) -> None:
    async with graphql(mim600) as reader:
        with pytest.raises(MetricsError) as caught:
            await reader.counters([["global", "data", "xmpp", "received", "compressed_size"]])

    assert "histogram" in str(caught.value)
    assert "global.data.xmpp.received.compressed_size" in str(caught.value)


async def test_graphql_server_version_is_6_1_0_on_6_1_0(mim610: LocalServer) -> None:
    async with graphql(mim610) as reader:
        version = await reader.server_version()

    assert version == "6.1.0"
    assert reader.last_status is not None
    assert reader.last_status.has_version_field is True
    assert reader.last_status.status_code == "RUNNING"
    assert len(mim610.seen) == 1


async def test_graphql_server_version_is_none_on_6_0_0_and_field_absence_is_kept(
    mim600: LocalServer,
) -> None:
    async with graphql(mim600) as reader:
        version = await reader.server_version()

    assert version is None
    assert reader.last_status is not None
    assert reader.last_status.has_version_field is False
    assert "MongooseIM 6.0.0 is running" in reader.last_status.message
    queries = [json.loads(seen.body)["query"] for seen in mim600.seen]
    assert ["version" in query for query in queries] == [True, False]


@pytest.mark.parametrize("validation_status", [400, 200])
async def test_graphql_version_probe_does_not_depend_on_the_error_status(
    serve: Callable[..., LocalServer], validation_status: int
) -> None:
    server = recorded_mongooseim(serve, "6.0.0", validation_status)

    async with graphql(server) as reader:
        version = await reader.server_version()

    assert version is None
    assert reader.history[0].status == validation_status


async def test_graphql_other_errors_are_not_taken_for_a_missing_version(
    serve: Callable[..., LocalServer],
) -> None:
    body = {
        "errors": [
            {
                "path": ["ROOT", "server", "status"],
                "message": "GraphQL Internal Server Error",
                "extensions": {"code": "internal_server_error"},
            }
        ]
    }
    server = serve(
        {("POST", "/api/graphql"): Canned(500, (JSON_TYPE,), json.dumps(body).encode())}
    )

    async with graphql(server) as reader:
        with pytest.raises(GraphQLError) as caught:
            await reader.server_version()

    assert caught.value.codes == ["internal_server_error"]
    assert caught.value.status == 500
    assert len(server.seen) == 1


async def test_graphql_wrong_credentials_give_clear_error_without_password(
    mim: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = base64.b64encode(f"{ADMIN}:{WRONG_PASSWORD}".encode()).decode()

    async with graphql(mim, password=WRONG_PASSWORD) as reader:
        with pytest.raises(MetricsError) as caught:
            await reader.counters([["localhost", "xmppMessageSent"]])
        kept = [reply.render() for reply in reader.history]

    message = str(caught.value)
    assert caught.value.status == 401
    assert "refused the basic-auth credentials" in message
    assert f"{mim.base_url}/api/graphql" in message
    assert "wrong_credentials" in caught.value.body
    for text in [message, caplog.text, *kept]:
        assert WRONG_PASSWORD not in text
        assert token not in text


async def test_graphql_sends_basic_auth_and_the_host_header(mim: LocalServer) -> None:
    async with graphql(mim) as reader:
        await reader.counters([["localhost", "xmppMessageSent"]])

    request = mim.seen[0]
    assert request.headers["host"] == "localhost"
    expected = base64.b64encode(f"{ADMIN}:{SECRET}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"


async def test_graphql_history_keeps_the_raw_json_for_attachments(mim: LocalServer) -> None:
    recorded = RECORDINGS / f"mongooseim-{mim.version}" / "api" / "graphql-getMetrics-all.json"

    async with graphql(mim) as reader:
        await reader.counters([["localhost", "xmppMessageSent"]])

    reply = reader.last_reply
    assert reply is not None
    assert json.loads(reply.text) == json.loads(recorded.read_text())
    assert "getMetrics" in reply.request_body
    assert reply.render().startswith(f"POST {mim.base_url}/api/graphql")


async def test_counters_reject_a_flat_string_as_a_name(mim: LocalServer) -> None:
    async with graphql(mim) as reader:
        with pytest.raises(ValueError, match="sequence of segments"):
            await reader.counters(["localhost", "xmppMessageSent"])

    assert mim.seen == []


# --- REST --------------------------------------------------------------------------------


async def test_rest_reads_a_single_host_type_metric(mim: LocalServer) -> None:
    async with rest(mim) as reader:
        value = await reader.metric("localhost", "xmppMessageSent")

    assert value == {"one": 1, "count": 1}
    assert mim.seen[0].path == "/api/metrics/host_type/localhost/xmppMessageSent"
    assert mim.seen[0].headers["host"] == "localhost"


async def test_rest_counters_read_global_and_host_type_names(mim: LocalServer) -> None:
    tcp = ("global", "data", "xmpp", "sent", "c2s", "tcp")

    async with rest(mim) as reader:
        values = await reader.counters(
            [["global", "clusterSize"], ["localhost", "xmppMessageSent"], list(tcp)]
        )

    expected = {("global", "clusterSize"): 1, ("localhost", "xmppMessageSent"): 1}
    if mim.version == "6.1.0":
        expected[tcp] = 3099
    assert values == expected


@pytest.mark.parametrize(("version", "count"), [("6.0.0", 18), ("6.1.0", 20)])
async def test_rest_counter_of_a_spiral_is_its_count_not_the_minute_window(
    serve: Callable[..., LocalServer], version: str, count: int
) -> None:
    # In the transcript this route answered with one < count.
    route = ("GET", "/api/metrics/host_type/localhost/xmppMessageSent")
    server = serve(transcript_routes(version, {route}))

    async with rest(server) as reader:
        values = await reader.counters([["localhost", "xmppMessageSent"]])

    assert values == {("localhost", "xmppMessageSent"): count}


async def test_rest_reports_missing_metric_as_absent(mim: LocalServer) -> None:
    async with rest(mim) as reader:
        single = await reader.metric("localhost", "noSuchMetric")
        values = await reader.counters([["localhost", "noSuchMetric"]])

    assert single is None
    assert values == {}
    assert reader.history[0].status == 404


@pytest.mark.parametrize("body", [b"", b'{"message": "Endpoint not found."}'])
async def test_rest_404_without_the_api_answer_is_an_error_not_a_missing_metric(
    serve: Callable[..., LocalServer], body: bytes
) -> None:
    path = "/api/metrics/host_type/localhost/xmppMessageSent"
    server = serve({("GET", path): Canned(404, (JSON_TYPE,), body)})

    async with rest(server) as reader:
        with pytest.raises(MetricsError) as caught:
            await reader.metric("localhost", "xmppMessageSent")

    assert "404" in str(caught.value)
    assert f"{server.base_url}{path}" in str(caught.value)


async def test_rest_global_names_differ_between_versions(mim: LocalServer) -> None:
    async with rest(mim) as reader:
        found = await reader.names(["global", "data", "xmpp"])

    compressed = ("global", "data", "xmpp", "received", "compressed_size")
    encrypted = ("global", "data", "xmpp", "sent", "encrypted_size")
    tcp = ("global", "data", "xmpp", "received", "c2s", "tcp")
    assert ("global", "data", "xmpp", "received", "xml_stanza_size") in found
    assert (compressed in found, encrypted in found) == ((mim.version == "6.0.0"),) * 2
    assert (tcp in found) is (mim.version == "6.1.0")


async def test_rest_names_list_host_type_metrics_from_the_index(mim: LocalServer) -> None:
    async with rest(mim) as reader:
        found = await reader.names(["localhost"])

    assert ("localhost", "xmppMessageSent") in found
    assert (("localhost", "user_send_xmlel") in found) is (mim.version == "6.1.0")
    assert all(name[0] == "localhost" for name in found)


async def test_rest_host_type_route_500_with_empty_body_gives_clear_error(
    mim: LocalServer,
) -> None:
    async with rest(mim) as reader:
        with pytest.raises(MetricsError) as direct:
            await reader.host_type_values("localhost")
        with pytest.raises(MetricsError) as via_counters:
            await reader.counters([["localhost", "data", "xmpp", "c2s", "message", "x"]])

    message = str(direct.value)
    assert direct.value.status == 500
    assert "empty body" in message
    assert "mod_csi" in message
    assert f"{mim.base_url}/api/metrics/host_type/localhost" in message
    assert "not JSON" not in message
    assert via_counters.value.status == 500


async def test_rest_cors_headers_are_present_on_6_0_0_only(mim: LocalServer) -> None:
    async with rest(mim) as reader:
        await reader.index()
        reply = reader.last_reply

    assert reply is not None
    expected = CORS_6_0_0 if mim.version == "6.0.0" else {}
    assert cors_headers(reply) == expected


async def test_rest_preflight_carries_cors_headers_on_6_0_0_only(mim: LocalServer) -> None:
    async with rest(mim) as reader:
        reply = await reader.preflight()

    assert reply.headers["allow"] == "OPTIONS, HEAD, GET"
    assert cors_headers(reply) == (CORS_6_0_0 if mim.version == "6.0.0" else {})
    assert mim.seen[0].method == "OPTIONS"
    assert mim.seen[0].headers["origin"] == "http://origin.test"


async def test_rest_summed_and_global_single_routes(mim: LocalServer) -> None:
    sessions = {"6.0.0": 2, "6.1.0": 0}[mim.version]

    async with rest(mim) as reader:
        summed = await reader.summed("xmppMessageSent")
        total = await reader.global_metric("totalSessionCount")
        missing = await reader.global_metric("nosuchmetric")

    assert summed == {"one": 1, "count": 1}
    assert total == {"value": sessions}
    assert missing is None


async def test_rest_http_error_status_gives_clear_error(
    serve: Callable[..., LocalServer],
) -> None:
    server = serve({("GET", "/api/metrics/"): Canned(502, (), b"Bad Gateway")})

    async with rest(server) as reader:
        with pytest.raises(MetricsError) as caught:
            await reader.index()

    assert caught.value.status == 502
    assert "HTTP 502" in str(caught.value)
    assert "Bad Gateway" in str(caught.value)


# --- malformed replies and unreachable servers -------------------------------------------


async def test_graphql_non_json_reply_gives_clear_error_with_short_excerpt(
    serve: Callable[..., LocalServer],
) -> None:
    page = ("<html>" + "x" * 1000 + "</html>").encode()
    server = serve({("POST", "/api/graphql"): Canned(200, (("content-type", "text/html"),), page)})

    async with graphql(server) as reader:
        with pytest.raises(MetricsError) as caught:
            await reader.counters([["localhost", "xmppMessageSent"]])

    assert "not JSON" in str(caught.value)
    assert f"{server.base_url}/api/graphql" in str(caught.value)
    assert caught.value.body == page.decode()[:200]
    assert len(str(caught.value)) < 600


async def test_graphql_unexpected_shape_gives_clear_error(
    serve: Callable[..., LocalServer],
) -> None:
    body = json.dumps({"data": {"metric": {"getMetrics": "oops"}}}).encode()
    server = serve({("POST", "/api/graphql"): Canned(200, (JSON_TYPE,), body)})

    async with graphql(server) as reader:
        with pytest.raises(MetricsError, match="getMetrics is str, not a list"):
            await reader.names()


async def test_graphql_non_integer_metric_value_gives_clear_error(
    serve: Callable[..., LocalServer],
) -> None:
    metric = {"type": "spiral", "name": ["localhost", "x"], "one": 1, "count": "7"}
    body = json.dumps({"data": {"metric": {"getMetrics": [metric]}}}).encode()
    server = serve({("POST", "/api/graphql"): Canned(200, (JSON_TYPE,), body)})

    async with graphql(server) as reader:
        with pytest.raises(MetricsError, match=r"localhost\.x\.count is '7', not an integer"):
            await reader.counters([["localhost", "x"]])


Reader = MongooseGraphQLReader | MongooseRestReader | OpenMetricsReader | EjabberdStatsReader
# Each reader kind, built for a URL and a timeout, with a name it can be asked for.
READERS: dict[str, tuple[Callable[[str, float], Reader], list[str]]] = {
    "graphql": (
        lambda url, t: MongooseGraphQLReader(url, ADMIN, SECRET, timeout=t),
        ["localhost", "xmppMessageSent"],
    ),
    "rest": (
        lambda url, t: MongooseRestReader(url, timeout=t),
        ["localhost", "xmppMessageSent"],
    ),
    "openmetrics": (
        lambda url, t: OpenMetricsReader(f"{url}/metrics", timeout=t),
        [STARTED_TOTAL],
    ),
    "ejabberd": (lambda url, t: EjabberdStatsReader(url, timeout=t), ["onlineusers"]),
}


@pytest.mark.parametrize("kind", sorted(READERS))
async def test_server_down_gives_clear_error_fast(kind: str) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    build, name = READERS[kind]
    started = time.monotonic()

    async with build(url, 5.0) as reader:
        with pytest.raises(MetricsError) as caught:
            await reader.counters([name])

    assert time.monotonic() - started < 2.0
    assert "could not connect" in str(caught.value)
    assert url in str(caught.value)
    assert "expected" in str(caught.value)


@pytest.mark.parametrize("kind", sorted(READERS))
async def test_silent_server_gives_timeout_error_not_a_hang(kind: str) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        build, name = READERS[kind]
        started = time.monotonic()

        async with build(url, 0.3) as reader:
            with pytest.raises(MetricsError) as caught:
                await reader.counters([name])

    assert time.monotonic() - started < 2.0
    assert "no complete answer within 0.3 s" in str(caught.value)
    assert url in str(caught.value)


async def test_echoed_credentials_are_masked_in_errors_and_history(
    serve: Callable[..., LocalServer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = base64.b64encode(f"{ADMIN}:{WRONG_PASSWORD}".encode()).decode()
    echo = f"bad gateway for Basic {token} ({ADMIN}:{WRONG_PASSWORD})".encode()
    server = serve({("POST", "/api/graphql"): Canned(502, (), echo)})

    async with graphql(server, password=WRONG_PASSWORD) as reader:
        with pytest.raises(MetricsError) as caught:
            await reader.server_version()

    kept = reader.history[0].render()
    assert "bad gateway for Basic ***" in caught.value.body
    for text in [str(caught.value), caught.value.body, kept, caplog.text]:
        assert WRONG_PASSWORD not in text
        assert token not in text


def drip_server(sock: socket.socket, stop: threading.Event) -> None:
    """Answers one request with headers at once, then one body byte every 0.1 s."""
    conn, _ = sock.accept()
    with conn:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        conn.sendall(b"Content-Length: 40\r\n\r\n")
        for _ in range(40):
            if stop.wait(0.1):
                return
            try:
                conn.sendall(b" ")
            except OSError:
                return


async def test_slow_drip_answer_is_cut_at_the_total_timeout(
    serve: Callable[..., LocalServer],
) -> None:
    stop = threading.Event()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        dripper = threading.Thread(target=drip_server, args=(sock, stop), daemon=True)
        dripper.start()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        started = time.monotonic()

        # Each byte comes well within the per-read limit; only the total bound can stop it.
        async with MongooseRestReader(url, timeout=0.5) as reader:
            with pytest.raises(MetricsError) as caught:
                await reader.index()
        elapsed = time.monotonic() - started
        stop.set()
        dripper.join(timeout=5)

    assert elapsed < 2.0
    assert "no complete answer within 0.5 s" in str(caught.value)


async def test_credentials_in_the_url_are_masked_in_errors() -> None:
    port = closed_port()
    url = f"http://{ADMIN}:{WRONG_PASSWORD}@127.0.0.1:{port}"

    async with MongooseRestReader(url) as reader:
        with pytest.raises(MetricsError) as caught:
            await reader.index()

    assert WRONG_PASSWORD not in str(caught.value)
    assert f"http://127.0.0.1:{port}/api/metrics/" in str(caught.value)


async def test_credentials_in_the_url_are_sent_as_basic_auth_only(
    serve: Callable[..., LocalServer],
) -> None:
    server = serve({("GET", "/api/metrics/"): recorded_rest("6.1.0", "rest-metrics")})
    url = server.base_url.replace("http://", f"http://{ADMIN}:{WRONG_PASSWORD}@")

    async with MongooseRestReader(url) as reader:
        await reader.index()

    token = base64.b64encode(f"{ADMIN}:{WRONG_PASSWORD}".encode()).decode()
    assert server.seen[0].headers["authorization"] == f"Basic {token}"
    assert reader.history[0].url == f"{server.base_url}/api/metrics/"


# --- OpenMetrics (Prosody) ---------------------------------------------------------------


@pytest.fixture
def prosody(serve: Callable[..., LocalServer]) -> LocalServer:
    page = Canned(200, (OPENMETRICS_TYPE,), PROSODY_METRICS.encode())
    return serve({("GET", "/metrics"): page})


def openmetrics(server: LocalServer) -> OpenMetricsReader:
    return OpenMetricsReader(f"{server.base_url}/metrics")


async def test_openmetrics_reads_a_counter_by_name_and_labels(prosody: LocalServer) -> None:
    async with openmetrics(prosody) as reader:
        local = await reader.value(STARTED_TOTAL, {"host": "localhost"})
        other = await reader.counters([[STARTED_TOTAL, "host=conference.test"]])

    assert local == 3.0
    assert other == {(STARTED_TOTAL, "host=conference.test"): 1}


async def test_openmetrics_keeps_prosody_counter_families_typed(prosody: LocalServer) -> None:
    async with openmetrics(prosody) as reader:
        families = {family.name: family for family in await reader.families()}

    started = families["prosody_mod_smacks__sessions_started"]
    assert started.type == "counter"
    assert {s.name for s in started.samples} == {
        STARTED_TOTAL,
        "prosody_mod_smacks__sessions_started_created",
    }
    assert families["prosody_mod_c2s__encrypted"].type == "counter"
    assert families["prosody_mod_c2s__encrypted"].samples == []
    assert families["prosody_stats_collection_seconds"].unit == "seconds"


async def test_openmetrics_reports_a_declared_but_empty_counter_as_absent(
    prosody: LocalServer,
) -> None:
    async with openmetrics(prosody) as reader:
        values = await reader.counters(
            [["prosody_mod_c2s__encrypted_total"], [STARTED_TOTAL, "host=localhost"]]
        )

    assert values == {(STARTED_TOTAL, "host=localhost"): 3}


async def test_openmetrics_name_matching_several_samples_is_an_error(
    prosody: LocalServer,
) -> None:
    async with openmetrics(prosody) as reader:
        with pytest.raises(MetricsError, match="matches 2 samples"):
            await reader.counters([[STARTED_TOTAL]])


async def test_openmetrics_reads_histogram_buckets_by_le(prosody: LocalServer) -> None:
    async with openmetrics(prosody) as reader:
        values = await reader.counters(
            [
                ["prosody_stats_collection_seconds_bucket", "le=+Inf"],
                ["prosody_stats_collection_seconds_bucket", "le=0.001"],
                ["prosody_stats_collection_seconds_count"],
            ]
        )

    assert values == {
        ("prosody_stats_collection_seconds_bucket", "le=+Inf"): 5,
        ("prosody_stats_collection_seconds_bucket", "le=0.001"): 2,
        ("prosody_stats_collection_seconds_count",): 5,
    }


async def test_openmetrics_fractional_value_read_as_counter_is_an_error(
    prosody: LocalServer,
) -> None:
    async with openmetrics(prosody) as reader:
        with pytest.raises(MetricsError, match="not a whole-number counter"):
            await reader.counters([["prosody_stats_collection_seconds_sum"]])


async def test_openmetrics_names_filter_on_the_sample_name(prosody: LocalServer) -> None:
    async with openmetrics(prosody) as reader:
        found = await reader.names([STARTED_TOTAL])

    assert found == {
        (STARTED_TOTAL, "host=conference.test"),
        (STARTED_TOTAL, "host=localhost"),
    }


async def test_openmetrics_classic_prometheus_text_is_parsed(
    serve: Callable[..., LocalServer],
) -> None:
    text = '# TYPE c2s_sessions gauge\nc2s_sessions{host="localhost"} 4\n'
    page = Canned(200, (("content-type", "text/plain; version=0.0.4"),), text.encode())
    server = serve({("GET", "/metrics"): page})

    async with openmetrics(server) as reader:
        values = await reader.counters([["c2s_sessions", "host=localhost"]])

    assert values == {("c2s_sessions", "host=localhost"): 4}


async def test_openmetrics_malformed_page_gives_clear_error(
    serve: Callable[..., LocalServer],
) -> None:
    page = Canned(200, (("content-type", "text/html"),), b"<html>login required</html>\n")
    server = serve({("GET", "/metrics"): page})

    async with openmetrics(server) as reader:
        with pytest.raises(MetricsError) as caught:
            await reader.families()

    assert "unparsable exposition" in str(caught.value)
    assert f"{server.base_url}/metrics" in str(caught.value)
    assert "login required" in caught.value.body


# --- ejabberd ----------------------------------------------------------------------------


def ejabberd_stats(values: dict[str, int]) -> Callable[[Seen], Canned]:
    """Answers like ejabberd 23.01: {"stat": N}, or 500 "internal_error" for unknown names."""

    def answer(seen: Seen) -> Canned:
        name = json.loads(seen.body).get("name")
        if name in values:
            return Canned(200, (JSON_TYPE,), json.dumps({"stat": values[name]}).encode())
        return Canned(500, (JSON_TYPE,), b'"internal_error"')

    return answer


async def test_ejabberd_reads_onlineusers_and_registeredusers(
    serve: Callable[..., LocalServer],
) -> None:
    route = ejabberd_stats({"onlineusers": 2, "registeredusers": 5})
    server = serve({("POST", "/api/stats"): route})

    async with EjabberdStatsReader(server.base_url) as reader:
        values = await reader.counters([["onlineusers"], ["registeredusers"]])

    assert values == {("onlineusers",): 2, ("registeredusers",): 5}
    assert [json.loads(seen.body) for seen in server.seen] == [
        {"name": "onlineusers"},
        {"name": "registeredusers"},
    ]


async def test_ejabberd_unknown_stat_gives_clear_error(
    serve: Callable[..., LocalServer],
) -> None:
    server = serve({("POST", "/api/stats"): ejabberd_stats({"onlineusers": 0})})

    async with EjabberdStatsReader(server.base_url) as reader:
        with pytest.raises(MetricsError) as caught:
            await reader.stat("nosuchstat")

    assert caught.value.status == 500
    assert "internal_error" in str(caught.value)
    assert f"{server.base_url}/api/stats" in str(caught.value)


async def test_ejabberd_reply_without_stat_gives_clear_error(
    serve: Callable[..., LocalServer],
) -> None:
    body = b'{"status":"error","code":40,"message":"Endpoint not found."}'
    server = serve({("POST", "/api/stats"): Canned(200, (JSON_TYPE,), body)})

    async with EjabberdStatsReader(server.base_url) as reader:
        with pytest.raises(MetricsError, match="stat is None, not an integer"):
            await reader.stat("onlineusers")


async def test_ejabberd_rejects_names_with_several_segments(
    serve: Callable[..., LocalServer],
) -> None:
    server = serve({})

    async with EjabberdStatsReader(server.base_url) as reader:
        with pytest.raises(ValueError, match="one segment"):
            await reader.counters([["localhost", "onlineusers"]])

    assert server.seen == []
