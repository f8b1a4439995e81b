"""Readers for the metrics and status endpoints of the servers under test.

One reader per kind of endpoint:

- ``MongooseGraphQLReader``: MongooseIM admin GraphQL (``POST /api/graphql``, basic auth).
- ``MongooseRestReader``: MongooseIM legacy REST admin metrics (``GET /api/metrics/...``).
- ``OpenMetricsReader``: Prosody's ``/metrics`` page (OpenMetrics text).
- ``EjabberdStatsReader``: ejabberd ``POST /api/stats``.

All share ``counters(names)``: a metric name is a sequence of segments, the answer maps each
name that exists to its integer value, and a name that does not exist is not a key, so
"missing" never looks like 0. Every request is bounded by the reader's timeout, every
failure is a ``MetricsError`` that names the URL and what was expected, and every exchange
is kept in ``history`` so a check can attach the raw reply. Credentials are masked in
errors and never logged.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self, cast

import httpx
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as _openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families as _classic_families

from clients.tls import verifying_context

log = logging.getLogger(__name__)

MetricName = tuple[str, ...]
DEFAULT_TIMEOUT = 5.0
BODY_EXCERPT = 200
HISTORY_SIZE = 100
WILDCARD = "_"
MASK = "***"

# The parsers carry no annotations; these aliases give them the types they really have.
_ParseFamilies = Callable[[str], Iterable[Metric]]
_parse_openmetrics = cast(_ParseFamilies, _openmetrics_families)
_parse_classic = cast(_ParseFamilies, _classic_families)


class MetricsError(Exception):
    """A metrics endpoint could not be reached or answered something unusable."""

    def __init__(self, message: str, *, url: str, status: int | None = None, body: str = ""):
        super().__init__(message)
        self.url = url
        self.status = status
        self.body = body


class GraphQLError(MetricsError):
    """The GraphQL endpoint answered with an ``errors`` list."""

    def __init__(
        self,
        message: str,
        *,
        url: str,
        status: int | None,
        body: str,
        errors: list[dict[str, Any]],
    ):
        super().__init__(message, url=url, status=status, body=body)
        self.errors = errors

    @property
    def codes(self) -> list[str]:
        """The ``extensions.code`` of each error, or ``""`` where there is none."""
        return [_error_code(error) for error in self.errors]


@dataclass(frozen=True)
class RawReply:
    """One HTTP exchange as received, kept for attachments and header checks."""

    method: str
    url: str
    status: int
    headers: httpx.Headers
    text: str
    request_body: str
    elapsed: float

    def render(self) -> str:
        """The exchange as text: request line, request body, status, headers, body."""
        lines = [f"{self.method} {self.url}"]
        if self.request_body:
            lines.append(self.request_body)
        lines.append(f"HTTP {self.status} ({self.elapsed:.3f} s)")
        lines.extend(f"{name}: {value}" for name, value in self.headers.multi_items())
        lines.extend(["", self.text])
        return "\n".join(lines)


@dataclass(frozen=True)
class ServerStatus:
    """MongooseIM ``server.status``; ``version`` is None where the schema lacks it."""

    status_code: str
    message: str
    version: str | None
    has_version_field: bool


@dataclass(frozen=True)
class MetricValue:
    """One metric of a snapshot: its type and its integer fields."""

    type: str
    fields: dict[str, int]


@dataclass(frozen=True)
class RestIndex:
    """What ``GET /api/metrics/`` lists: host types and single-segment metric names."""

    host_types: list[str]
    host_type_metrics: list[str]
    global_metrics: list[str]


class MetricsReader(Protocol):
    """What every reader offers."""

    history: deque[RawReply]

    async def counters(self, names: Iterable[Sequence[str]]) -> dict[MetricName, int]: ...

    async def aclose(self) -> None: ...


def metric_name(name: Sequence[str]) -> MetricName:
    """Check one metric name and return it as a tuple of segments."""
    if isinstance(name, str):
        raise ValueError(f"a metric name is a sequence of segments, not the string {name!r}")
    segments = tuple(name)
    if not segments or not all(isinstance(s, str) and s for s in segments):
        raise ValueError(f"a metric name needs one or more non-empty string segments: {name!r}")
    return segments


def matches_prefix(name: MetricName, prefix: Sequence[str]) -> bool:
    """True if ``name`` starts with ``prefix``, where ``"_"`` stands for any one segment."""
    if len(prefix) > len(name):
        return False
    return all(want in (WILDCARD, have) for want, have in zip(prefix, name, strict=False))


def cors_headers(reply: RawReply) -> dict[str, str]:
    """The ``Access-Control-*`` headers of a reply, names lower-cased."""
    return {
        name.lower(): value
        for name, value in reply.headers.items()
        if name.lower().startswith("access-control-")
    }


def dotted(name: MetricName) -> str:
    """A metric name as MongooseIM prints it, segments joined by "."."""
    return ".".join(name)


def _error_code(error: dict[str, Any]) -> str:
    extensions = error.get("extensions")
    if isinstance(extensions, dict):
        code = extensions.get("code")
        if isinstance(code, str):
            return code
    return ""


def _is_int(value: object) -> bool:
    # bool is an int subclass in Python but never a metric value.
    return isinstance(value, int) and not isinstance(value, bool)


class _Masker:
    """Replaces credentials, in every form they could be echoed in, by ``***``."""

    def __init__(self, username: str, password: str):
        self._secrets: list[str] = []
        if password:
            pair = f"{username}:{password}"
            token = base64.b64encode(pair.encode()).decode()
            # Longest first, so the user:password pair is masked whole.
            self._secrets = sorted({pair, token, password}, key=len, reverse=True)

    def text(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text


def _failure(
    masker: _Masker, problem: str, *, url: str, expect: str, reply: RawReply | None = None
) -> tuple[str, str]:
    """Error wording and masked body excerpt: what went wrong, where, what was expected."""
    message = f"{problem} from {url}; expected {expect}"
    body = ""
    if reply is not None:
        body = masker.text(reply.text)[:BODY_EXCERPT]
        message += f"; got HTTP {reply.status} with body {body!r}"
    return masker.text(message), body


@dataclass(frozen=True)
class _Check:
    """Shape checks on one reply; each failure names the URL and what was expected."""

    reply: RawReply
    expect: str
    masker: _Masker

    def fail(self, problem: str) -> MetricsError:
        message, body = _failure(
            self.masker, problem, url=self.reply.url, expect=self.expect, reply=self.reply
        )
        return MetricsError(message, url=self.reply.url, status=self.reply.status, body=body)

    def status(self, wanted: int) -> None:
        if self.reply.status != wanted:
            raise self.fail(f"HTTP {self.reply.status} instead of {wanted}")

    def json(self) -> object:
        if not self.reply.text.strip():
            raise self.fail("empty body")
        try:
            return cast(object, json.loads(self.reply.text))
        except json.JSONDecodeError as exc:
            raise self.fail(f"body is not JSON ({exc.msg})") from exc

    def obj(self, value: object, what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(f"unexpected shape: {what} is {type(value).__name__}, not an object")
        return value

    def items(self, value: object, what: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(f"unexpected shape: {what} is {type(value).__name__}, not a list")
        return value

    def ints(self, values: dict[str, Any], what: str) -> dict[str, int]:
        for key, value in values.items():
            if not _is_int(value):
                raise self.fail(f"unexpected shape: {what}.{key} is {value!r}, not an integer")
        return dict(values)

    def name(self, value: object) -> MetricName:
        segments = self.items(value, "a metric name")
        if not segments or not all(isinstance(s, str) for s in segments):
            raise self.fail(f"unexpected shape: metric name {segments!r} is not a list of strings")
        return tuple(segments)


class _HttpReader:
    """Shared request machinery: timeouts, masking, history and error wording."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        host_header: str | None = None,
        username: str = "",
        password: str = "",
    ):
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        given = httpx.URL(base_url.rstrip("/"))
        username = username or given.username
        password = password or given.password
        # Credentials travel only as an auth header, so no URL (in errors, in httpx's own
        # request log) can carry them.
        self._base = given.copy_with(username=None, password=None)
        self._timeout = timeout
        self._masker = _Masker(username, password)
        headers = {"Accept": "application/json"}
        # The MongooseIM admin listeners route only Host: localhost, whatever the address.
        if host_header:
            headers["Host"] = host_header
        auth = httpx.BasicAuth(username, password) if username or password else None
        # trust_env=False: a proxy from the environment must not sit between us and the target.
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            headers=headers,
            auth=auth,
            trust_env=False,
            verify=verifying_context(),
        )
        self.history: deque[RawReply] = deque(maxlen=HISTORY_SIZE)

    @property
    def last_reply(self) -> RawReply | None:
        """The most recent exchange, or None before the first one."""
        return self.history[-1] if self.history else None

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _url(self, path: str) -> httpx.URL:
        return self._base.copy_with(path=self._base.path.rstrip("/") + path)

    def _check(self, reply: RawReply, expect: str) -> _Check:
        return _Check(reply, expect, self._masker)

    def _unreachable(self, problem: str, *, url: str, expect: str) -> MetricsError:
        message, _ = _failure(self._masker, problem, url=url, expect=expect)
        return MetricsError(message, url=url)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        expect: str,
        json_body: object = None,
        headers: dict[str, str] | None = None,
    ) -> RawReply:
        """One request, bounded in total by the reader's timeout, recorded in history."""
        url = self._url(path)
        shown = self._masker.text(str(url))
        content = json.dumps(json_body) if json_body is not None else ""
        extra = dict(headers or {})
        if content:
            extra["Content-Type"] = "application/json"
        started = time.monotonic()
        try:
            # httpx bounds each phase; this bounds the whole exchange, slow drips included.
            async with asyncio.timeout(self._timeout):
                response = await self._client.request(
                    method, url, content=content.encode() or None, headers=extra
                )
        except (TimeoutError, httpx.TimeoutException) as exc:
            problem = f"no complete answer within {self._timeout:g} s"
            raise self._unreachable(problem, url=shown, expect=expect) from exc
        except httpx.ConnectError as exc:
            problem = f"could not connect ({exc or 'refused'})"
            raise self._unreachable(problem, url=shown, expect=expect) from exc
        except httpx.HTTPError as exc:
            problem = f"transport failure {type(exc).__name__} ({exc})"
            raise self._unreachable(problem, url=shown, expect=expect) from exc
        reply = RawReply(
            method=method,
            url=shown,
            status=response.status_code,
            headers=response.headers,
            text=self._masker.text(response.text),
            request_body=self._masker.text(content),
            elapsed=time.monotonic() - started,
        )
        self.history.append(reply)
        log.debug("%s %s -> HTTP %d, %d chars", method, shown, reply.status, len(reply.text))
        return reply


_METRIC_FRAGMENTS = """
... on SpiralMetric { name type one count }
... on CounterMetric { name type value ms_since_reset }
... on GaugeMetric { name type value }
... on HistogramMetric { name type n mean min max median p50 p75 p90 p95 p99 p999 }
"""
GET_METRICS_QUERY = "query { metric { getMetrics {" + _METRIC_FRAGMENTS + "} } }"
GET_METRICS_AS_DICTS_QUERY = (
    "query ($name: [String], $keys: [String]) { metric {"
    " getMetricsAsDicts(name: $name, keys: $keys) { name dict { key value } } } }"
)
STATUS_WITH_VERSION_QUERY = "query { server { status { statusCode message version } } }"
STATUS_QUERY = "query { server { status { statusCode message } } }"
# Which field a counter read takes for each metric type.
_COUNTER_FIELD = {"spiral": "count", "counter": "value", "gauge": "value"}


class MongooseGraphQLReader(_HttpReader):
    """MongooseIM admin GraphQL API, ``POST <base_url>/api/graphql`` with basic auth.

    The metric schema is the same in 6.0.0 and 6.1.0. ``server_status`` copes with 6.0.0,
    whose ``server.status`` has no ``version`` field.
    """

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        host_header: str | None = None,
        path: str = "/api/graphql",
    ):
        super().__init__(
            base_url,
            timeout=timeout,
            host_header=host_header,
            username=username,
            password=password,
        )
        self._path = path
        self.last_status: ServerStatus | None = None

    async def query(
        self, query: str, variables: dict[str, object] | None = None
    ) -> dict[str, Any]:
        """Run any admin query and return its ``data``; an ``errors`` list raises GraphQLError."""
        data, _ = await self._query(query, variables, expect="a JSON object with data")
        return data

    async def _query(
        self, query: str, variables: dict[str, object] | None = None, *, expect: str
    ) -> tuple[dict[str, Any], _Check]:
        # An errors list wins over the HTTP status: MongooseIM answers validation errors
        # with 400 and resolver errors with 200 and partial data.
        body = {"query": query, "variables": variables or {}}
        reply = await self._send("POST", self._path, expect=expect, json_body=body)
        check = self._check(reply, expect)
        if reply.status == 401:
            raise check.fail("the server refused the basic-auth credentials (HTTP 401)")
        payload = check.obj(check.json(), "the body")
        if payload.get("errors"):
            raise self._graphql_error(check, payload["errors"])
        check.status(200)
        return check.obj(payload.get("data"), "data"), check

    def _graphql_error(self, check: _Check, errors: object) -> GraphQLError:
        parsed = [
            e if isinstance(e, dict) else {"message": repr(e)}
            for e in check.items(errors, "errors")
        ]
        summary = "; ".join(f"{_error_code(e) or 'no code'}: {e.get('message')}" for e in parsed)
        reply = check.reply
        message, body = _failure(
            self._masker,
            f"GraphQL errors ({summary})",
            url=reply.url,
            expect=check.expect,
            reply=reply,
        )
        return GraphQLError(message, url=reply.url, status=reply.status, body=body, errors=parsed)

    async def snapshot(self) -> dict[MetricName, MetricValue]:
        """Every spiral, counter, gauge and histogram, read in one request."""
        expect = "data.metric.getMetrics as a list of metrics"
        data, check = await self._query(GET_METRICS_QUERY, expect=expect)
        entries = check.items(
            check.obj(data.get("metric"), "metric").get("getMetrics"), "getMetrics"
        )
        snapshot: dict[MetricName, MetricValue] = {}
        for entry in entries:
            fields = dict(check.obj(entry, "a getMetrics entry"))
            # Metric kinds outside the four fragments come back as empty objects.
            if not fields:
                continue
            name = check.name(fields.pop("name", None))
            kind = fields.pop("type", None)
            if not isinstance(kind, str):
                raise check.fail(f"unexpected shape: metric {dotted(name)} has type {kind!r}")
            snapshot[name] = MetricValue(kind, check.ints(fields, dotted(name)))
        log.debug("GraphQL snapshot of %d metrics", len(snapshot))
        return snapshot

    async def counters(self, names: Iterable[Sequence[str]]) -> dict[MetricName, int]:
        """Spiral ``count``, counter or gauge ``value`` of each name that exists.

        Names that do not exist are left out. All values come from one snapshot.
        """
        wanted = [metric_name(n) for n in names]
        snapshot = await self.snapshot()
        values: dict[MetricName, int] = {}
        for name in wanted:
            metric = snapshot.get(name)
            if metric is not None:
                values[name] = self._counter_value(name, metric)
        log.info("GraphQL counters %s", {dotted(k): v for k, v in values.items()})
        return values

    def _counter_value(self, name: MetricName, metric: MetricValue) -> int:
        field = _COUNTER_FIELD.get(metric.type, "")
        if field not in metric.fields:
            url = self.last_reply.url if self.last_reply else str(self._base)
            raise MetricsError(
                f"metric {dotted(name)} is a {metric.type} with fields {sorted(metric.fields)},"
                " not a spiral, counter or gauge",
                url=url,
            )
        return metric.fields[field]

    async def names(self, prefix: Sequence[str] = ()) -> set[MetricName]:
        """Names of the metrics that exist under ``prefix`` (``"_"`` matches one segment)."""
        snapshot = await self.snapshot()
        return {name for name in snapshot if matches_prefix(name, prefix)}

    async def dicts(
        self, prefix: Sequence[str], keys: Sequence[str] | None = None
    ) -> dict[MetricName, dict[str, int]]:
        """``getMetricsAsDicts``, filtered by the server: every metric under ``prefix``."""
        expect = "data.metric.getMetricsAsDicts as a list of {name, dict}"
        variables: dict[str, object] = {"name": list(prefix)}
        if keys is not None:
            variables["keys"] = list(keys)
        data, check = await self._query(GET_METRICS_AS_DICTS_QUERY, variables, expect=expect)
        metric = check.obj(data.get("metric"), "metric")
        result: dict[MetricName, dict[str, int]] = {}
        for entry in check.items(metric.get("getMetricsAsDicts"), "getMetricsAsDicts"):
            item = check.obj(entry, "a getMetricsAsDicts entry")
            name = check.name(item.get("name"))
            result[name] = self._pairs(check, name, item.get("dict"))
        return result

    @staticmethod
    def _pairs(check: _Check, name: MetricName, raw: object) -> dict[str, int]:
        pairs: dict[str, Any] = {}
        for entry in check.items(raw, f"{dotted(name)}.dict"):
            item = check.obj(entry, f"a {dotted(name)} dict entry")
            key = item.get("key")
            if not isinstance(key, str):
                raise check.fail(f"unexpected shape: {dotted(name)} has a dict key {key!r}")
            pairs[key] = item.get("value")
        return check.ints(pairs, dotted(name))

    async def server_status(self) -> ServerStatus:
        """``server.status``, with ``version`` where the schema has it (6.1.0, not 6.0.0)."""
        expect = "data.server.status with statusCode and message"
        try:
            data, check = await self._query(STATUS_WITH_VERSION_QUERY, expect=expect)
            has_version = True
        except GraphQLError as exc:
            if not _only_unknown_version_field(exc):
                raise
            log.info("server.status has no version field (unknown_field); asking without it")
            data, check = await self._query(STATUS_QUERY, expect=expect)
            has_version = False
        status = self._status(check, data, has_version)
        self.last_status = status
        log.info(
            "server status %s, version %s (version field %s)",
            status.status_code,
            status.version,
            "present" if has_version else "absent",
        )
        return status

    @staticmethod
    def _status(check: _Check, data: dict[str, Any], has_version: bool) -> ServerStatus:
        status = check.obj(check.obj(data.get("server"), "server").get("status"), "server.status")
        code, message = status.get("statusCode"), status.get("message")
        version = status.get("version") if has_version else None
        if not isinstance(code, str) or not isinstance(message, str):
            raise check.fail(f"unexpected shape: status {status!r} lacks statusCode or message")
        if version is not None and not isinstance(version, str):
            raise check.fail(f"unexpected shape: version {version!r} is not a string")
        return ServerStatus(code, message, version, has_version)

    async def server_version(self) -> str | None:
        """The release version, or None on a server whose schema has no version field.

        Whether the field exists stays available in ``last_status.has_version_field``.
        """
        return (await self.server_status()).version


def _only_unknown_version_field(exc: GraphQLError) -> bool:
    """True if the only complaint is that ``server.status.version`` is not in the schema."""
    if not exc.errors:
        return False
    for error in exc.errors:
        path = error.get("path")
        last = path[-1] if isinstance(path, list) and path else None
        if _error_code(error) != "unknown_field" or last != "version":
            return False
    return True


_REST_INDEX_EXPECT = "a JSON object with host_types, metrics and global lists"
_REST_VALUES_EXPECT = 'HTTP 200 with JSON {"metrics": {name: {key: integer}}}'
_REST_METRIC_EXPECT = 'HTTP 200 with JSON {"metric": {key: integer}} or 404 "Metric not found"'
_CSI_NOTE = (
    "MongooseIM 6.0.0 and 6.1.0 answer this route with HTTP 500 and an empty body while "
    "mod_csi is enabled (its metric names hold the host type twice); read single metrics "
    "from host_type/<host type>/<name> or use GraphQL"
)


class MongooseRestReader(_HttpReader):
    """MongooseIM legacy REST admin metrics API, ``GET <base_url>/api/metrics/...``.

    Routes: ``/metrics/`` (names), ``/metrics/global`` (all global metrics, segments
    joined by "."), ``/metrics/global/<name>``, ``/metrics/host_type/<ht>[/<name>]`` and
    ``/metrics/all/<name>`` (summed over host types). Replies keep their headers in
    ``history``, so a check can read the CORS headers (sent by 6.0.0, not by 6.1.0).
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        host_header: str | None = None,
        path: str = "/api",
    ):
        super().__init__(base_url, timeout=timeout, host_header=host_header)
        self._path = path.rstrip("/")

    async def index(self) -> RestIndex:
        """``GET /metrics/``: the host types and single-segment metric names."""
        reply = await self._send("GET", f"{self._path}/metrics/", expect=_REST_INDEX_EXPECT)
        check = self._check(reply, _REST_INDEX_EXPECT)
        check.status(200)
        body = check.obj(check.json(), "the body")
        lists = [
            _strings(check, body.get(key), key) for key in ("host_types", "metrics", "global")
        ]
        return RestIndex(*lists)

    async def global_values(self) -> dict[MetricName, dict[str, int]]:
        """``GET /metrics/global``, names split on "." and prefixed with ``global``."""
        values = await self._values(f"{self._path}/metrics/global")
        return {("global", *key.split(".")): value for key, value in values.items()}

    async def host_type_values(self, host_type: str) -> dict[MetricName, dict[str, int]]:
        """``GET /metrics/host_type/<ht>``: every metric of one host type."""
        values = await self._values(f"{self._path}/metrics/host_type/{host_type}", _CSI_NOTE)
        return {(host_type, *key.split(".")): value for key, value in values.items()}

    async def _values(self, path: str, empty_500_note: str = "") -> dict[str, dict[str, int]]:
        reply = await self._send("GET", path, expect=_REST_VALUES_EXPECT)
        check = self._check(reply, _REST_VALUES_EXPECT)
        if reply.status == 500 and not reply.text and empty_500_note:
            log.info("%s answered HTTP 500 with an empty body", reply.url)
            raise check.fail(f"HTTP 500 with an empty body: {empty_500_note}")
        check.status(200)
        metrics = check.obj(check.obj(check.json(), "the body").get("metrics"), "metrics")
        return {key: check.ints(check.obj(value, key), key) for key, value in metrics.items()}

    async def metric(self, host_type: str, name: str) -> dict[str, int] | None:
        """``GET /metrics/host_type/<ht>/<name>``; None if the server says it does not exist."""
        return await self._single(f"{self._path}/metrics/host_type/{host_type}/{name}")

    async def global_metric(self, name: str) -> dict[str, int] | None:
        """``GET /metrics/global/<name>`` for a single-segment global name; None if missing."""
        return await self._single(f"{self._path}/metrics/global/{name}")

    async def summed(self, name: str) -> dict[str, int] | None:
        """``GET /metrics/all/<name>``: the metric summed over host types; None if missing."""
        return await self._single(f"{self._path}/metrics/all/{name}")

    async def _single(self, path: str) -> dict[str, int] | None:
        reply = await self._send("GET", path, expect=_REST_METRIC_EXPECT)
        check = self._check(reply, _REST_METRIC_EXPECT)
        if reply.status == 404:
            _expect_not_found(check)
            return None
        check.status(200)
        value = check.obj(check.obj(check.json(), "the body").get("metric"), "metric")
        return check.ints(value, "metric")

    async def counters(self, names: Iterable[Sequence[str]]) -> dict[MetricName, int]:
        """Spiral ``count`` or counter/gauge ``value`` of each name that exists.

        ``("global", ...)`` names come from one read of ``/metrics/global``; a host-type
        name with one segment after the host type from its own route; longer host-type
        names from ``/metrics/host_type/<ht>``, which fails while mod_csi is on.
        """
        wanted = [metric_name(n) for n in names]
        for name in wanted:
            if len(name) < 2:
                raise ValueError(
                    f"a MongooseIM name is a host type or global, then a name: {name}"
                )
        found: dict[MetricName, dict[str, int]] = {}
        if any(name[0] == "global" for name in wanted):
            found |= await self.global_values()
        for host_type in {name[0] for name in wanted if name[0] != "global" and len(name) > 2}:
            found |= await self.host_type_values(host_type)
        for name in wanted:
            if name[0] != "global" and len(name) == 2:
                single = await self.metric(*name)
                if single is not None:
                    found[name] = single
        values = {name: self._counter_value(name, found[name]) for name in wanted if name in found}
        log.info("REST counters %s", {dotted(k): v for k, v in values.items()})
        return values

    def _counter_value(self, name: MetricName, fields: dict[str, int]) -> int:
        for key in ("count", "value"):
            if key in fields:
                return fields[key]
        url = self.last_reply.url if self.last_reply else str(self._base)
        raise MetricsError(
            f"metric {dotted(name)} has fields {sorted(fields)}, neither count nor value", url=url
        )

    async def names(self, prefix: Sequence[str] = ()) -> set[MetricName]:
        """Host-type names from ``/metrics/`` and global names from ``/metrics/global``."""
        index = await self.index()
        found: set[MetricName] = {
            (ht, metric) for ht in index.host_types for metric in index.host_type_metrics
        }
        found |= set(await self.global_values())
        return {name for name in found if matches_prefix(name, prefix)}

    async def preflight(
        self, path: str = "/metrics/", origin: str = "http://origin.test"
    ) -> RawReply:
        """A CORS preflight (``OPTIONS``) on ``path``; the reply carries the CORS headers."""
        expect = "HTTP 200 to a CORS preflight"
        headers = {"Origin": origin, "Access-Control-Request-Method": "GET"}
        reply = await self._send("OPTIONS", f"{self._path}{path}", expect=expect, headers=headers)
        self._check(reply, expect).status(200)
        return reply


def _strings(check: _Check, raw: object, key: str) -> list[str]:
    items = check.items(raw, key)
    if not all(isinstance(item, str) for item in items):
        raise check.fail(f"unexpected shape: {key} holds something other than strings")
    return items


def _expect_not_found(check: _Check) -> None:
    # Only the API's own answer means "no such metric": a bare 404 from a wrong base path
    # or Host header must not pass for a missing metric.
    body = check.json()
    if not isinstance(body, str) or "not found" not in body.lower():
        raise check.fail("HTTP 404 without the API's 'Metric not found' (wrong path or Host?)")
    log.debug("%s: %s", check.reply.url, body)


_EXPOSITION_EXPECT = "HTTP 200 with an OpenMetrics or Prometheus text exposition"


class OpenMetricsReader(_HttpReader):
    """A ``/metrics`` page in OpenMetrics or Prometheus text format (Prosody's).

    A metric name here is ``(sample_name, "label=value", ...)``: the sample name followed
    by label constraints. It matches the samples of that name whose labels include every
    constraint, and must match at most one.
    """

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT):
        parsed = httpx.URL(url)
        super().__init__(str(parsed.copy_with(path="/")), timeout=timeout)
        self._path = parsed.path

    async def families(self) -> list[Metric]:
        """Fetch the page and parse it into metric families."""
        reply = await self._send("GET", self._path, expect=_EXPOSITION_EXPECT)
        check = self._check(reply, _EXPOSITION_EXPECT)
        check.status(200)
        if not reply.text.strip():
            raise check.fail("empty body")
        try:
            families = list(_exposition_parser(reply)(reply.text))
        except ValueError as exc:
            raise check.fail(f"unparsable exposition ({exc})") from exc
        log.debug("%s: %d metric families", reply.url, len(families))
        return families

    async def samples(self) -> dict[MetricName, float]:
        """Every sample, keyed by ``(sample_name, "label=value", ...)`` with labels sorted."""
        return {
            (s.name, *_label_pairs(s.labels)): float(s.value)
            for family in await self.families()
            for s in family.samples
        }

    async def value(self, sample: str, labels: dict[str, str] | None = None) -> float | None:
        """The one sample named ``sample`` whose labels include ``labels``; None if none."""
        return self._pick((sample, *_label_pairs(labels or {})), await self.samples())

    def _pick(self, name: MetricName, samples: dict[MetricName, float]) -> float | None:
        wanted = set(name[1:])
        found = [v for k, v in samples.items() if k[0] == name[0] and wanted <= set(k[1:])]
        if len(found) > 1:
            url = self.last_reply.url if self.last_reply else str(self._base)
            raise MetricsError(f"{name} matches {len(found)} samples; name more labels", url=url)
        return found[0] if found else None

    async def counters(self, names: Iterable[Sequence[str]]) -> dict[MetricName, int]:
        """Whole-number value of each name that matches a sample; others are left out."""
        wanted = [metric_name(n) for n in names]
        samples = await self.samples()
        values: dict[MetricName, int] = {}
        for name in wanted:
            found = self._pick(name, samples)
            if found is None:
                continue
            if not found.is_integer():
                url = self.last_reply.url if self.last_reply else str(self._base)
                raise MetricsError(f"{name} is {found}, not a whole-number counter", url=url)
            values[name] = int(found)
        log.info("OpenMetrics counters %s", values)
        return values

    async def names(self, prefix: Sequence[str] = ()) -> set[MetricName]:
        """Sample keys under ``prefix`` (``"_"`` matches one segment)."""
        return {name for name in await self.samples() if matches_prefix(name, prefix)}


def _label_pairs(labels: dict[str, str]) -> list[str]:
    return [f"{key}={value}" for key, value in sorted(labels.items())]


def _exposition_parser(reply: RawReply) -> _ParseFamilies:
    # Prosody sends OpenMetrics (counters as *_total, "# EOF" at the end). The classic
    # Prometheus parser would split each such counter into untyped families.
    content_type = reply.headers.get("content-type", "")
    if "openmetrics" in content_type or reply.text.rstrip().endswith("# EOF"):
        return _parse_openmetrics
    return _parse_classic


_STATS_EXPECT = 'HTTP 200 with JSON {"stat": integer}'


class EjabberdStatsReader(_HttpReader):
    """ejabberd ``POST <base_url>/api/stats`` with ``{"name": ...}``.

    Names have one segment: ``onlineusers``, ``registeredusers``, ... ejabberd answers an
    unknown name with HTTP 500 ``"internal_error"``, which cannot be told apart from a real
    failure, so an unknown name is an error here rather than a missing metric.
    """

    def __init__(self, base_url: str, *, timeout: float = DEFAULT_TIMEOUT, path: str = "/api"):
        super().__init__(base_url, timeout=timeout)
        self._path = path.rstrip("/")

    async def stat(self, name: str) -> int:
        """The value of one statistic."""
        body = {"name": name}
        reply = await self._send(
            "POST", f"{self._path}/stats", expect=_STATS_EXPECT, json_body=body
        )
        check = self._check(reply, _STATS_EXPECT)
        check.status(200)
        value = check.obj(check.json(), "the body").get("stat")
        if not _is_int(value):
            raise check.fail(f"unexpected shape: stat is {value!r}, not an integer")
        log.info("ejabberd stat %s = %d", name, value)
        return cast(int, value)

    async def counters(self, names: Iterable[Sequence[str]]) -> dict[MetricName, int]:
        """The value of each one-segment statistic name."""
        values: dict[MetricName, int] = {}
        for name in [metric_name(n) for n in names]:
            if len(name) != 1:
                raise ValueError(f"ejabberd statistic names have one segment, got {name!r}")
            values[name] = await self.stat(name[0])
        return values
