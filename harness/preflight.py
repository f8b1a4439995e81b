"""Preflight check of a ``mongooseim.toml`` before the upgrade from 6.0.0 to 6.1.0.

The file is parsed with tomllib; a small scanner then finds the line of every key and table,
because tomllib keeps no positions. Each rule looks at the parsed config and reports a
finding at the line the operator has to edit. Reasons cite the evidence they rest on (a
transcript under tests/data/recordings/, a MongooseIM documentation page, or its source at
the release tag) and how sure that fact is (code, test, doc, inferred, observed).

Usage: ``python -m harness.preflight path/to/mongooseim.toml [--format text|json]``.
Exit status: 0 when nothing stops 6.1.0 from starting, 1 when an ``error`` finding does,
2 when the file cannot be read or is not valid TOML.
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import enum
import json
import logging
import re
import sys
import tomllib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TomlPath = tuple[str | int, ...]
Table = dict[str, Any]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR_END = re.compile(r"[,\]}\n#]")
_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")
# The c2s listener default of num_acceptors, the same in 6.0.0 and 6.1.0
# (src/config/mongoose_config_spec.erl at both tags).
_DEFAULT_NUM_ACCEPTORS = 100
_DEFAULT_RESUME_TIMEOUT_S = 600
# Where the recorded evidence lives, as a reader of the project finds it.
_RECORDINGS = "tests/data/recordings/"
_RECORDED_600 = f"{_RECORDINGS}mongooseim-6.0.0/"
_RECORDED_610 = f"{_RECORDINGS}mongooseim-6.1.0/"
_METRICS_SOURCES = (
    "src/metrics/mongoose_metrics_definitions.hrl at both tags; doc: "
    "doc/migrations/6.0.0_6.1.0.md, Metrics"
)
# The path shown for notes about the file as a whole; one token, like the TOML paths.
_WHOLE_FILE = "(document)"


class Severity(enum.StrEnum):
    """How the finding affects the upgrade to 6.1.0."""

    ERROR = "error"  # 6.1.0 refuses to start with this file
    WARNING = "warning"  # 6.1.0 starts but behaves differently
    INFO = "info"  # worth knowing; nothing to fix for the upgrade itself


_SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclasses.dataclass(frozen=True)
class Finding:
    """One thing the operator should look at, anchored to a line of the config file."""

    line: int
    path: str
    severity: Severity
    rule: str
    reason: str
    fix: str

    def as_dict(self) -> dict[str, str | int]:
        return {
            "line": self.line,
            "path": self.path,
            "severity": str(self.severity),
            "rule": self.rule,
            "reason": self.reason,
            "fix": self.fix,
        }


class ConfigSyntaxError(ValueError):
    """The text is not valid TOML; ``line`` and ``column`` locate the fault."""

    def __init__(self, message: str, line: int, column: int | None) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


# ---------------------------------------------------------------------------------------------
# Positions: tomllib validates, the scanner below only has to walk text that is known valid.


class _PositionScanner:
    """Records the line of every table, key and array element of valid TOML text."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0
        self._newlines = [index for index, char in enumerate(text) if char == "\n"]
        self._array_sizes: dict[TomlPath, int] = {}
        self.lines: dict[TomlPath, int] = {}

    def scan(self) -> dict[TomlPath, int]:
        table: TomlPath = ()
        while True:
            self._skip_blank(newlines=True)
            if self._pos >= len(self._text):
                return self.lines
            if self._at("[["):
                table = self._header(opener="[[", closer="]]")
            elif self._at("["):
                table = self._header(opener="[", closer="]")
            else:
                self._key_value(table)

    def line_at(self, pos: int) -> int:
        return bisect.bisect_left(self._newlines, pos) + 1

    def _at(self, token: str) -> bool:
        return self._text.startswith(token, self._pos)

    def _expect(self, token: str) -> None:
        if not self._at(token):
            line = self.line_at(self._pos)
            raise RuntimeError(f"position scanner lost its way at line {line}")
        self._pos += len(token)

    def _skip_blank(self, *, newlines: bool) -> None:
        blanks = " \t\r\n" if newlines else " \t"
        text = self._text
        while self._pos < len(text):
            char = text[self._pos]
            if char in blanks:
                self._pos += 1
            elif char == "#":
                end = text.find("\n", self._pos)
                self._pos = len(text) if end < 0 else end
            else:
                return

    def _header(self, *, opener: str, closer: str) -> TomlPath:
        self._expect(opener)
        parts = self._key()
        self._skip_blank(newlines=False)
        self._expect(closer)
        return self._resolve_header(parts, is_array=opener == "[[")

    def _resolve_header(self, parts: list[tuple[str, int]], *, is_array: bool) -> TomlPath:
        # A header names tables through earlier [[arrays]]: [[a.b]] after [[a]] extends the
        # last element of a, so each prefix that is an array gets that element's index.
        path: TomlPath = ()
        for position, (name, start) in enumerate(parts):
            path = (*path, name)
            line = self.line_at(start)
            is_last = position == len(parts) - 1
            if is_last and is_array:
                index = self._array_sizes.get(path, 0)
                self._array_sizes[path] = index + 1
                self.lines.setdefault(path, line)
                path = (*path, index)
            elif path in self._array_sizes:
                path = (*path, self._array_sizes[path] - 1)
            if is_last:
                self.lines[path] = line
            else:
                self.lines.setdefault(path, line)
        return path

    def _key(self) -> list[tuple[str, int]]:
        parts: list[tuple[str, int]] = []
        while True:
            self._skip_blank(newlines=False)
            start = self._pos
            parts.append((self._key_part(), start))
            self._skip_blank(newlines=False)
            if not self._at("."):
                return parts
            self._pos += 1

    def _key_part(self) -> str:
        start = self._pos
        if self._at('"'):
            self._pos = self._basic_string_end()
            # Escapes in quoted keys are decoded by the real parser, not by hand.
            decoded = tomllib.loads(f"k = {self._text[start : self._pos]}")["k"]
            return str(decoded)
        if self._at("'"):
            self._pos = self._text.index("'", start + 1) + 1
            return self._text[start + 1 : self._pos - 1]
        match = _BARE_KEY.match(self._text, start)
        if match is None:
            raise RuntimeError(f"position scanner found no key at line {self.line_at(start)}")
        self._pos = match.end()
        return match.group()

    def _key_value(self, table: TomlPath) -> None:
        path = table
        for name, start in self._key():
            path = (*path, name)
            self.lines.setdefault(path, self.line_at(start))
        self._skip_blank(newlines=False)
        self._expect("=")
        self._skip_blank(newlines=False)
        self._value(path)

    def _value(self, path: TomlPath) -> None:
        if self._at('"""') or self._at("'''"):
            self._pos = self._multiline_string_end()
        elif self._at('"'):
            self._pos = self._basic_string_end()
        elif self._at("'"):
            self._pos = self._text.index("'", self._pos + 1) + 1
        elif self._at("["):
            self._array(path)
        elif self._at("{"):
            self._inline_table(path)
        else:
            match = _SCALAR_END.search(self._text, self._pos)
            self._pos = len(self._text) if match is None else match.start()

    def _basic_string_end(self) -> int:
        text = self._text
        index = self._pos + 1
        while text[index] != '"':
            index += 2 if text[index] == "\\" else 1
        return index + 1

    def _multiline_string_end(self) -> int:
        text = self._text
        quote = text[self._pos]
        index = self._pos + 3
        while True:
            if quote == '"' and text[index] == "\\":
                index += 2
            elif text.startswith(quote * 3, index):
                # Up to two quotes just before the closing three belong to the content.
                end = index + 3
                while end < len(text) and end < index + 5 and text[end] == quote:
                    end += 1
                return end
            else:
                index += 1

    def _array(self, path: TomlPath) -> None:
        self._expect("[")
        index = 0
        while True:
            self._skip_blank(newlines=True)
            if self._at("]"):
                self._pos += 1
                return
            element = (*path, index)
            self.lines.setdefault(element, self.line_at(self._pos))
            self._value(element)
            index += 1
            self._skip_blank(newlines=True)
            if self._at(","):
                self._pos += 1

    def _inline_table(self, path: TomlPath) -> None:
        self._expect("{")
        while True:
            self._skip_blank(newlines=True)
            if self._at("}"):
                self._pos += 1
                return
            self._key_value(path)
            self._skip_blank(newlines=True)
            if self._at(","):
                self._pos += 1


def locate_keys(text: str) -> dict[TomlPath, int]:
    """The 1-based line of every table, key and array element in TOML that tomllib accepts."""
    return _PositionScanner(text).scan()


def format_path(path: TomlPath) -> str:
    """Renders ``("listen", "c2s", 0, "zlib")`` as ``listen.c2s[0].zlib``."""
    rendered = ""
    for part in path:
        if isinstance(part, int):
            rendered += f"[{part}]"
            continue
        name = part if _BARE_KEY.fullmatch(part) else json.dumps(part)
        rendered += f".{name}" if rendered else name
    return rendered


# ---------------------------------------------------------------------------------------------
# The parsed config and the helpers rules use to walk it.


@dataclasses.dataclass(frozen=True)
class _Config:
    doc: Table
    lines: dict[TomlPath, int]

    def line_of(self, path: TomlPath) -> int:
        """The line of ``path``, or of its nearest ancestor present in the file."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return 1

    def finding(
        self, rule: str, path: TomlPath, severity: Severity, reason: str, fix: str
    ) -> Finding:
        shown = format_path(path) or _WHOLE_FILE
        return Finding(self.line_of(path), shown, severity, rule, reason, fix)


def _get(table: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(table, dict):
            return None
        table = table.get(key)
    return table


def _tables(value: Any, path: TomlPath) -> Iterator[tuple[TomlPath, Table]]:
    """The tables of a table or of an array of tables, each with its path."""
    if isinstance(value, dict):
        yield path, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, dict):
                yield (*path, index), item


def _c2s_listeners(config: _Config) -> Iterator[tuple[TomlPath, Table]]:
    return _tables(_get(config.doc, "listen", "c2s"), ("listen", "c2s"))


def _http_handlers(config: _Config, handler: str) -> Iterator[tuple[TomlPath, Table]]:
    for listener_path, listener in _tables(_get(config.doc, "listen", "http"), ("listen", "http")):
        handlers = _get(listener, "handlers", handler)
        yield from _tables(handlers, (*listener_path, "handlers", handler))


def _modules(config: _Config) -> Table:
    modules = config.doc.get("modules")
    return modules if isinstance(modules, dict) else {}


def _module_path(name: str) -> TomlPath:
    return ("modules", name)


# ---------------------------------------------------------------------------------------------
# Rules: 6.1.0 refuses to start.


def _rule_c2s_zlib(config: _Config) -> Iterator[Finding]:
    for path, listener in _c2s_listeners(config):
        if "zlib" in listener:
            yield config.finding(
                "c2s-zlib",
                (*path, "zlib"),
                Severity.ERROR,
                "6.1.0 removed XEP-0138 stream compression: the node stops at startup with "
                "reason=unexpected_key key=zlib toml_path=listen.c2s and exit status 1 "
                "[code: src/config/mongoose_config_parser_toml.erl at 6.1.0; doc: "
                "doc/migrations/6.0.0_6.1.0.md; the same refusal was observed for "
                f"max_fsm_queue: {_RECORDED_610}config-reject-c2s-max_fsm_queue.txt]",
                "delete the zlib line; 6.1.0 clients cannot negotiate compression at all",
            )


def _rule_c2s_max_fsm_queue(config: _Config) -> Iterator[Finding]:
    for path, listener in _c2s_listeners(config):
        if "max_fsm_queue" in listener:
            yield config.finding(
                "c2s-max-fsm-queue",
                (*path, "max_fsm_queue"),
                Severity.ERROR,
                "6.1.0 dropped max_fsm_queue from c2s listeners: the node stops at startup "
                "with reason=unexpected_key key=max_fsm_queue toml_path=listen.c2s and exit "
                f"status 1 [observed: {_RECORDED_610}config-reject-c2s-max_fsm_queue.txt]",
                "delete it from the c2s listener; max_fsm_queue under [general] and "
                "[[listen.service]] is still accepted",
            )


def _rule_websockets_service(config: _Config) -> Iterator[Finding]:
    for path, handler in _http_handlers(config, "mod_websockets"):
        if "service" in handler:
            yield config.finding(
                "websockets-service",
                (*path, "service"),
                Severity.ERROR,
                "6.1.0 removed XMPP components over WebSockets: mod_websockets has no "
                "service key, so the node stops at startup with reason=unexpected_key "
                "key=service toml_path=listen.http.handlers.mod_websockets and exit status 1 "
                f"[observed: {_RECORDED_610}config-reject-websockets-service.txt]",
                "remove the service table; connect components through a [[listen.service]] "
                "listener (XEP-0114) instead",
            )


def _rule_websockets_max_connections(config: _Config) -> Iterator[Finding]:
    for path, handler in _http_handlers(config, "mod_websockets"):
        if "max_connections" in handler:
            yield config.finding(
                "websockets-max-connections",
                (*path, "max_connections"),
                Severity.ERROR,
                "the 6.1.0 mod_websockets handler does not accept max_connections (the "
                "migration guide says it does, the config spec does not), so the node stops "
                "at startup with reason=unexpected_key [code: config_spec/0 in "
                "src/mod_websockets.erl at 6.1.0]",
                "delete it here; cap connections with transport.max_connections on this "
                "[[listen.http]] listener (default 1024)",
            )


# ---------------------------------------------------------------------------------------------
# Rules: 6.1.0 starts, but a default or a behaviour changes.


def _rule_c2s_backlog(config: _Config) -> Iterator[Finding]:
    for path, listener in _c2s_listeners(config):
        if "backlog" not in listener:
            yield config.finding(
                "c2s-backlog-default",
                path,
                Severity.WARNING,
                "backlog is not set, so its default changes from 100 (6.0.0) to 1024 "
                "(6.1.0): up to 1024 connections can wait to be accepted [code: "
                "src/config/mongoose_config_spec.erl at both tags; doc: "
                "doc/migrations/6.0.0_6.1.0.md]",
                "set backlog = 100 to keep the 6.0.0 behaviour, or backlog = 1024 to state "
                "the new default",
            )


def _rule_c2s_state_timeout(config: _Config) -> Iterator[Finding]:
    for path, listener in _c2s_listeners(config):
        if "c2s_state_timeout" not in listener:
            yield config.finding(
                "c2s-state-timeout-default",
                path,
                Severity.WARNING,
                "c2s_state_timeout is not set, so 6.1.0 gives each pre-session step (stream "
                "start, features, SASL, bind) 5000 ms, not reset by incoming data, then sends "
                "a connection-timeout stream error and closes; 6.0.0 closed only after 60 s "
                "without any data [code: src/c2s/mongoose_c2s.erl at 6.1.0, "
                "include/ejabberd_c2s.hrl at 6.0.0; doc: doc/configuration/listen.md at 6.1.0]",
                'set c2s_state_timeout (milliseconds, or "infinity") if clients need more '
                "than 5 s per step",
            )


def _rule_presence_module(config: _Config) -> Iterator[Finding]:
    modules = _modules(config)
    if "mod_presence" in modules:
        return
    path = _module_path("mod_presence")
    pulling = [name for name in ("mod_privacy", "mod_blocking") if name in modules]
    if pulling:
        yield config.finding(
            "presence-module-missing",
            path,
            Severity.INFO,
            f"mod_presence is not listed, but it is a dependency of {' and '.join(pulling)} "
            "(of mod_blocking through mod_privacy), so 6.1.0 starts it anyway and presence "
            "keeps working [code: deps/2 in src/privacy/mod_privacy.erl at 6.1.0]",
            "list [modules.mod_presence] in the 6.1.0 file, so that removing mod_privacy "
            "or mod_blocking later does not silently stop all presence",
        )
        return
    yield config.finding(
        "presence-module-missing",
        path,
        Severity.WARNING,
        "6.1.0 handles presence only in mod_presence, which is not enabled: no initial, "
        "directed or subscription presence reaches anyone and nobody sees users go "
        "offline; messages still work [observed: "
        f"{_RECORDED_610}no-mod_presence-presence-not-routed.txt]",
        "add [modules.mod_presence] to the 6.1.0 file only: 6.0.0 refuses to start with it "
        f"(reason=module_not_found, observed: {_RECORDED_600}config-reject-mod_presence.txt)",
    )


def _rule_rest_admin_cors(config: _Config) -> Iterator[Finding]:
    for path, _handler in _http_handlers(config, "mongoose_admin_api"):
        yield config.finding(
            "rest-admin-cors",
            path,
            Severity.WARNING,
            "6.1.0 REST admin responses no longer carry the Access-Control-Allow-Origin, "
            "-Methods and -Headers headers that 6.0.0 sent, so a browser page from another "
            "origin can no longer read them [observed: "
            f"{_RECORDINGS}mongooseim-*/metrics-rest-api-cors.txt]",
            "serve browser tools from the API's own origin, or add the headers in a reverse proxy",
        )


# ---------------------------------------------------------------------------------------------
# Rules: metrics that disappear or appear.


def _rule_metrics_compressed_size(config: _Config) -> Iterator[Finding]:
    for path, listener in _c2s_listeners(config):
        if "zlib" in listener:
            yield config.finding(
                "metrics-compressed-size",
                (*path, "zlib"),
                Severity.WARNING,
                "the histograms global.data.xmpp.received.compressed_size and "
                "global.data.xmpp.sent.compressed_size, fed by zlib streams, do not exist in "
                f"6.1.0: queries for them return an empty list [code: {_METRICS_SOURCES}]",
                "drop them from dashboards and alerts; 6.1.0 counts bytes in "
                "global.data.xmpp.{received,sent}.c2s.{tcp,tls}",
            )


def _rule_metrics_encrypted_size(config: _Config) -> Iterator[Finding]:
    for path, listener in _c2s_listeners(config):
        if "tls" in listener:
            yield config.finding(
                "metrics-encrypted-size",
                (*path, "tls"),
                Severity.WARNING,
                "global.data.xmpp.received.encrypted_size (a histogram fed by TLS sockets) and "
                "global.data.xmpp.sent.encrypted_size (never updated by 6.0.0) do not exist in "
                "6.1.0; the new spirals global.data.xmpp.{received,sent}.c2s.tls count "
                f"plaintext bytes instead [code: {_METRICS_SOURCES}]",
                "move TLS traffic panels to the c2s.tls spirals, whose count is a byte total",
            )


def _rule_metrics_unauthenticated_iq(config: _Config) -> Iterator[Finding]:
    if "mod_register" in _modules(config):
        yield config.finding(
            "metrics-unauthenticated-iq",
            _module_path("mod_register"),
            Severity.WARNING,
            "with mod_register, 6.0.0 keeps the hook metric <host type>.c2s_unauthenticated_iq "
            "(every IQ before the session); 6.1.0 has no such hook, so the metric is gone "
            f"[code: {_METRICS_SOURCES}]",
            "drop c2s_unauthenticated_iq from dashboards and alerts",
        )


def _rule_metrics_dashboards(config: _Config) -> Iterator[Finding]:
    yield config.finding(
        "metrics-dashboards",
        (),
        Severity.INFO,
        "metric names change in 6.1.0. Gone: global.data.xmpp.{received,sent}.compressed_size, "
        "global.data.xmpp.{received,sent}.encrypted_size, <host type>.c2s_unauthenticated_iq. "
        "New: byte spirals global.data.xmpp.{received,sent}.c2s.{tcp,tls,bosh,websocket}, "
        "global.data.xmpp.{received,sent}.{s2s,component}, and the histogram "
        "<host type>.data.xmpp.c2s.message.processing_time. A missing name gives an empty "
        f"list, not an error [code: {_METRICS_SOURCES}; observed for c2s.tcp: "
        f"{_RECORDINGS}mongooseim-*/metrics-one-chat-message.txt]",
        "update dashboards and alerts before the upgrade",
    )


# ---------------------------------------------------------------------------------------------
# Rules: for information.

_NEW_C2S_OPTIONS = (
    "c2s_state_timeout",
    "max_connections",
    "reuse_port",
    "backwards_compatible_session",
)


def _rule_new_c2s_options(config: _Config) -> Iterator[Finding]:
    for path, listener in _c2s_listeners(config):
        for key in _NEW_C2S_OPTIONS:
            if key in listener:
                yield config.finding(
                    "new-6.1-option",
                    (*path, key),
                    Severity.INFO,
                    f"{key} is new in 6.1.0; 6.0.0 has no such c2s option and refuses keys "
                    "it does not know [code: src/config/mongoose_config_spec.erl and "
                    "src/config/mongoose_config_parser_toml.erl at 6.0.0]",
                    "nothing to change for 6.1.0; remove the line before using this file to "
                    "roll back to 6.0.0",
                )


def _rule_new_websockets_options(config: _Config) -> Iterator[Finding]:
    for path, handler in _http_handlers(config, "mod_websockets"):
        if "c2s_state_timeout" in handler:
            yield config.finding(
                "new-6.1-option",
                (*path, "c2s_state_timeout"),
                Severity.INFO,
                "the mod_websockets handler accepts c2s_state_timeout only from 6.1.0 on; "
                "6.0.0 refuses to start with it [code: config_spec/0 in "
                "src/mod_websockets.erl at 6.0.0 and 6.1.0]",
                "nothing to change for 6.1.0; remove the line before using this file to roll "
                "back to 6.0.0",
            )


def _rule_c2s_max_connections_scope(config: _Config) -> Iterator[Finding]:
    for path, listener in _c2s_listeners(config):
        limit = listener.get("max_connections")
        acceptors = listener.get("num_acceptors", _DEFAULT_NUM_ACCEPTORS)
        if not isinstance(limit, int) or not isinstance(acceptors, int) or acceptors == 1:
            continue
        yield config.finding(
            "c2s-max-connections-per-acceptor",
            (*path, "max_connections"),
            Severity.INFO,
            f"Ranch applies max_connections = {limit} per acceptor, so with "
            f"num_acceptors = {acceptors} about {limit * acceptors} clients get in; past the "
            "limit a new TCP connection gets no stream header and no error [inferred from "
            "src/c2s/mongoose_c2s_listener.erl at 6.1.0 and the Ranch 2.1 documentation]",
            "divide the intended cap by num_acceptors, or set num_acceptors = 1 when the cap "
            "must be exact",
        )


def _rule_stream_management_hold(config: _Config) -> Iterator[Finding]:
    module = _modules(config).get("mod_stream_management")
    if module is None:
        return
    timeout = _get(module, "resume_timeout")
    if not isinstance(timeout, int):
        timeout = _DEFAULT_RESUME_TIMEOUT_S
    yield config.finding(
        "stream-management-session-hold",
        _module_path("mod_stream_management"),
        Severity.INFO,
        "in 6.1.0 a client that enabled stream management, even without resume='true', "
        f"keeps its session for resume_timeout ({timeout} s) after its TCP connection drops, "
        "and contacts get no unavailable presence, neither at the drop nor when the held "
        f"session expires; 6.0.0 sent one [observed: {_RECORDINGS}mongooseim-*/"
        "sm-drop-without-resume-held.txt, sm-resume-timeout-expiry.txt]",
        "expect users to look online up to resume_timeout seconds after a drop; a lower "
        "resume_timeout shortens the hold but does not restore the unavailable presence",
    )


def _rule_stream_management_absent(config: _Config) -> Iterator[Finding]:
    if "mod_stream_management" in _modules(config):
        return
    yield config.finding(
        "stream-management-absent",
        _module_path("mod_stream_management"),
        Severity.INFO,
        "without mod_stream_management, 6.1.0 does not answer <enable/> or <r/> at all, "
        "where 6.0.0 answered <failed><feature-not-implemented/></failed> and closed the "
        f"stream [observed: {_RECORDINGS}mongooseim-*/sm-module-disabled.txt]",
        "enable [modules.mod_stream_management], or make sure clients use stream management "
        "only when <sm/> is advertised",
    )


def _rule_csi_rest_metrics(config: _Config) -> Iterator[Finding]:
    if "mod_csi" not in _modules(config):
        return
    yield config.finding(
        "csi-rest-host-type-metrics",
        _module_path("mod_csi"),
        Severity.INFO,
        "while mod_csi is enabled, REST GET /api/metrics/host_type/<host type> answers HTTP "
        "500 with an empty body, on 6.0.0 and 6.1.0 alike; single metrics and the global and "
        "all routes work [observed: "
        f"{_RECORDINGS}mongooseim-*/api/rest-metrics_host_type_localhost.headers]; the CSI "
        "metrics themselves are unreliable for deltas [inferred from src/mod_csi.erl at both "
        "tags]",
        "read host-type metrics through the GraphQL admin API, or one name at a time over REST",
    )


Rule = Callable[[_Config], Iterable[Finding]]

RULES: tuple[Rule, ...] = (
    _rule_c2s_zlib,
    _rule_c2s_max_fsm_queue,
    _rule_websockets_service,
    _rule_websockets_max_connections,
    _rule_c2s_backlog,
    _rule_c2s_state_timeout,
    _rule_presence_module,
    _rule_rest_admin_cors,
    _rule_metrics_compressed_size,
    _rule_metrics_encrypted_size,
    _rule_metrics_unauthenticated_iq,
    _rule_metrics_dashboards,
    _rule_new_c2s_options,
    _rule_new_websockets_options,
    _rule_c2s_max_connections_scope,
    _rule_stream_management_hold,
    _rule_stream_management_absent,
    _rule_csi_rest_metrics,
)


# ---------------------------------------------------------------------------------------------
# Entry points.


def _parse(text: str) -> Table:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        position = _TOML_POSITION.search(message)
        if position is not None:
            raise ConfigSyntaxError(
                message, int(position.group(1)), int(position.group(2))
            ) from error
        # tomllib says "at end of document": point at the last line that has content.
        last_line = text.rstrip().count("\n") + 1
        raise ConfigSyntaxError(message, last_line, None) from error


def _sort_key(finding: Finding) -> tuple[int, int, str, str]:
    return (finding.line, _SEVERITY_ORDER[finding.severity], finding.path, finding.rule)


def check_config(text: str) -> list[Finding]:
    """Findings for a ``mongooseim.toml`` text, sorted by line; raises ConfigSyntaxError."""
    config = _Config(_parse(text), locate_keys(text))
    findings = [finding for rule in RULES for finding in rule(config)]
    log.debug("preflight produced %d findings", len(findings))
    return sorted(findings, key=_sort_key)


def _summary(source: str, findings: Sequence[Finding]) -> str:
    counts = {severity: 0 for severity in Severity}
    for finding in findings:
        counts[finding.severity] += 1
    verdict = (
        "6.1.0 would refuse to start with this file"
        if counts[Severity.ERROR]
        else "no finding stops 6.1.0 from starting"
    )
    return (
        f"{source}: {counts[Severity.ERROR]} error(s), {counts[Severity.WARNING]} "
        f"warning(s), {counts[Severity.INFO]} info; {verdict}"
    )


def render_text(source: str, findings: Sequence[Finding]) -> str:
    lines = [
        f"{source}:{f.line}: {f.severity}: {f.path}: {f.reason} (fix: {f.fix})" for f in findings
    ]
    lines.append(_summary(source, findings))
    return "\n".join(lines)


def render_json(findings: Sequence[Finding]) -> str:
    return json.dumps([finding.as_dict() for finding in findings], indent=2)


def _argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m harness.preflight",
        description="Check a MongooseIM 6.0.0 config for what changes or breaks on 6.1.0.",
    )
    parser.add_argument("config", type=Path, help="path to mongooseim.toml")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _argument_parser().parse_args(argv)
    source = str(args.config)
    try:
        text = args.config.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        print(f"{source}: error: cannot read the config: {error}", file=sys.stderr)
        return 2
    try:
        findings = check_config(text)
    except ConfigSyntaxError as error:
        print(f"{source}:{error.line}: error: not valid TOML: {error}", file=sys.stderr)
        return 2
    output = render_json(findings) if args.format == "json" else render_text(source, findings)
    print(output)
    return 1 if any(f.severity is Severity.ERROR for f in findings) else 0


if __name__ == "__main__":
    sys.exit(main())
