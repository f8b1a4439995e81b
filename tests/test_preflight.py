"""Preflight of mongooseim.toml for the 6.0.0 -> 6.1.0 upgrade: rules, line numbers, CLI.

Inputs live in tests/data/preflight/: a production-style 6.0.0 config, the recorded 6.1.0
test config, and small files that each exercise one rule or one way of writing TOML.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.preflight import (
    ConfigSyntaxError,
    Finding,
    Severity,
    check_config,
    format_path,
    locate_keys,
)

DATA = Path(__file__).parent / "data" / "preflight"
REPO = Path(__file__).resolve().parents[1]
ALL_SAMPLES = sorted(p.name for p in DATA.glob("*.toml") if p.name != "malformed.toml")
CONFIDENCE_TAG = re.compile(r"\[(code|test|doc|inferred|observed)\b")
TEXT_LINE = re.compile(
    r"^(?P<file>.+?):(?P<line>\d+): (?P<severity>error|warning|info): (?P<path>\S+): "
    r"(?P<reason>.+) \(fix: (?P<fix>.+)\)$"
)


def findings_of(name: str) -> list[Finding]:
    return check_config((DATA / name).read_text(encoding="utf-8"))


def located(findings: list[Finding], rule: str) -> list[tuple[int, str, Severity]]:
    return [(f.line, f.path, f.severity) for f in findings if f.rule == rule]


def toml_paths(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Every key and array element of a parsed TOML document, as paths."""
    if isinstance(value, dict):
        items: Iterator[tuple[str | int, Any]] = iter(value.items())
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, child in items:
        yield (*path, key)
        yield from toml_paths(child, (*path, key))


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.preflight", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# Refused keys -------------------------------------------------------------------------------


def test_zlib_on_c2s_listener_is_an_error_at_its_line() -> None:
    findings = findings_of("production-6.0.0.toml")

    zlib = located(findings, "c2s-zlib")

    assert zlib == [(19, "listen.c2s[0].zlib", Severity.ERROR)]


def test_zlib_error_quotes_the_startup_failure_of_6_1_0() -> None:
    findings = findings_of("production-6.0.0.toml")

    (zlib,) = [f for f in findings if f.rule == "c2s-zlib"]

    assert "reason=unexpected_key key=zlib toml_path=listen.c2s" in zlib.reason
    assert "zlib" in zlib.fix


def test_max_fsm_queue_on_c2s_listener_is_an_error_at_its_line() -> None:
    findings = findings_of("production-6.0.0.toml")

    max_fsm_queue = located(findings, "c2s-max-fsm-queue")

    assert max_fsm_queue == [(18, "listen.c2s[0].max_fsm_queue", Severity.ERROR)]


def test_max_fsm_queue_under_general_and_service_listener_is_not_flagged() -> None:
    findings = findings_of("general-max-fsm-queue.toml")

    flagged = [f for f in findings if "max_fsm_queue" in f.path]

    assert flagged == []
    assert not [f for f in findings if f.severity is Severity.ERROR]


def test_websockets_service_table_is_an_error_at_its_header() -> None:
    findings = findings_of("production-6.0.0.toml")

    service = located(findings, "websockets-service")

    assert service == [
        (42, "listen.http[0].handlers.mod_websockets[0].service", Severity.ERROR),
    ]


def test_websockets_service_as_dotted_key_or_inline_table_is_an_error_at_its_line() -> None:
    findings = findings_of("websockets-forms.toml")

    service = located(findings, "websockets-service")

    assert service == [
        (21, "listen.http[0].handlers.mod_websockets[0].service", Severity.ERROR),
        (28, "listen.http[1].handlers.mod_websockets.service", Severity.ERROR),
    ]


def test_max_connections_on_websockets_handler_is_an_error_but_not_on_transport() -> None:
    findings = findings_of("websockets-forms.toml")

    max_connections = located(findings, "websockets-max-connections")

    assert max_connections == [
        (19, "listen.http[0].handlers.mod_websockets[0].max_connections", Severity.ERROR),
    ]


# Changed defaults and behaviour -------------------------------------------------------------


def test_c2s_listener_without_backlog_warns_at_its_header() -> None:
    findings = findings_of("production-6.0.0.toml")

    backlog = located(findings, "c2s-backlog-default")

    assert backlog == [(13, "listen.c2s[0]", Severity.WARNING)]


def test_c2s_listener_with_backlog_gets_no_backlog_warning() -> None:
    findings = findings_of("general-max-fsm-queue.toml")

    backlog = located(findings, "c2s-backlog-default")

    assert backlog == []


def test_c2s_listener_without_state_timeout_warns_about_the_5_s_default() -> None:
    findings = findings_of("production-6.0.0.toml")

    (timeout,) = [f for f in findings if f.rule == "c2s-state-timeout-default"]

    assert (timeout.line, timeout.severity) == (13, Severity.WARNING)
    assert "5000 ms" in timeout.reason
    assert "60 s" in timeout.reason


def test_missing_presence_module_is_a_warning_at_the_modules_table() -> None:
    findings = findings_of("no-presence.toml")

    presence = located(findings, "presence-module-missing")

    assert presence == [(14, "modules.mod_presence", Severity.WARNING)]


def test_missing_presence_module_is_info_when_privacy_and_blocking_pull_it_in() -> None:
    findings = findings_of("production-6.0.0.toml")

    (presence,) = [f for f in findings if f.rule == "presence-module-missing"]

    assert (presence.line, presence.severity) == (132, Severity.INFO)
    assert "mod_privacy and mod_blocking" in presence.reason


def test_listed_presence_module_gives_no_presence_finding() -> None:
    findings = findings_of("clean-6.1.0.toml")

    presence = located(findings, "presence-module-missing")

    assert presence == []


def test_rest_admin_api_listener_warns_about_removed_cors_headers() -> None:
    findings = findings_of("production-6.0.0.toml")

    cors = located(findings, "rest-admin-cors")

    assert cors == [(104, "listen.http[5].handlers.mongoose_admin_api[0]", Severity.WARNING)]


# Metrics ------------------------------------------------------------------------------------


def test_metric_warnings_follow_zlib_tls_and_mod_register() -> None:
    findings = findings_of("production-6.0.0.toml")

    metrics = [(f.rule, f.line, f.severity) for f in findings if f.rule.startswith("metrics-")]

    assert metrics == [
        ("metrics-dashboards", 1, Severity.INFO),
        ("metrics-compressed-size", 19, Severity.WARNING),
        ("metrics-encrypted-size", 20, Severity.WARNING),
        ("metrics-unauthenticated-iq", 135, Severity.WARNING),
    ]


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_dashboards_note_lists_gone_and_new_metric_names(name: str) -> None:
    findings = findings_of(name)

    (note,) = [f for f in findings if f.rule == "metrics-dashboards"]

    assert note.severity is Severity.INFO
    for metric in ("compressed_size", "encrypted_size", "c2s_unauthenticated_iq", "c2s.{tcp"):
        assert metric in note.reason, f"{metric} missing from the dashboards note"


# Informational notes ------------------------------------------------------------------------


def test_new_6_1_options_on_c2s_are_info_at_their_lines() -> None:
    findings = findings_of("new-options.toml")

    new_options = located(findings, "new-6.1-option")

    assert new_options == [
        (9, "listen.c2s[0].c2s_state_timeout", Severity.INFO),
        (10, "listen.c2s[0].max_connections", Severity.INFO),
        (11, "listen.c2s[0].reuse_port", Severity.INFO),
        (12, "listen.c2s[0].backwards_compatible_session", Severity.INFO),
        (18, "listen.c2s[1].max_connections", Severity.INFO),
        (19, "listen.c2s[1].c2s_state_timeout", Severity.INFO),
    ]


def test_websockets_state_timeout_is_info_as_a_new_option() -> None:
    findings = findings_of("websockets-forms.toml")

    on_websockets = [
        f.line for f in findings if f.rule == "new-6.1-option" and "mod_websockets" in f.path
    ]

    assert on_websockets == [20]


def test_max_connections_note_multiplies_by_acceptors_unless_there_is_one() -> None:
    findings = findings_of("new-options.toml")

    scope = [f for f in findings if f.rule == "c2s-max-connections-per-acceptor"]

    assert [(f.line, f.severity) for f in scope] == [(10, Severity.INFO)]
    assert "about 1000 clients" in scope[0].reason


def test_stream_management_note_uses_the_default_resume_timeout() -> None:
    findings = findings_of("production-6.0.0.toml")

    (hold,) = [f for f in findings if f.rule == "stream-management-session-hold"]

    assert (hold.line, hold.severity) == (152, Severity.INFO)
    assert "(600 s)" in hold.reason


def test_stream_management_note_uses_the_configured_resume_timeout() -> None:
    findings = findings_of("clean-6.1.0.toml")

    (hold,) = [f for f in findings if f.rule == "stream-management-session-hold"]

    assert hold.line == 56
    assert "(5 s)" in hold.reason


def test_missing_stream_management_module_is_noted() -> None:
    findings = findings_of("new-options.toml")

    absent = located(findings, "stream-management-absent")

    assert absent == [(21, "modules.mod_stream_management", Severity.INFO)]


def test_csi_module_gets_the_rest_host_type_metrics_note() -> None:
    findings = findings_of("production-6.0.0.toml")

    csi = located(findings, "csi-rest-host-type-metrics")

    assert csi == [(150, "modules.mod_csi", Severity.INFO)]


# Whole files --------------------------------------------------------------------------------


def test_production_6_0_0_config_gives_exactly_the_expected_findings() -> None:
    findings = findings_of("production-6.0.0.toml")

    summary = [(f.line, f.severity.value, f.rule) for f in findings]

    assert summary == [
        (1, "info", "metrics-dashboards"),
        (13, "warning", "c2s-backlog-default"),
        (13, "warning", "c2s-state-timeout-default"),
        (18, "error", "c2s-max-fsm-queue"),
        (19, "error", "c2s-zlib"),
        (19, "warning", "metrics-compressed-size"),
        (20, "warning", "metrics-encrypted-size"),
        (42, "error", "websockets-service"),
        (104, "warning", "rest-admin-cors"),
        (132, "info", "presence-module-missing"),
        (135, "warning", "metrics-unauthenticated-iq"),
        (150, "info", "csi-rest-host-type-metrics"),
        (152, "info", "stream-management-session-hold"),
    ]


def test_clean_6_1_0_config_has_no_errors() -> None:
    findings = findings_of("clean-6.1.0.toml")

    errors = [f for f in findings if f.severity is Severity.ERROR]

    assert errors == []
    assert findings, "the clean config still gets its informational notes"


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_every_finding_cites_a_confidence_tag(name: str) -> None:
    findings = findings_of(name)

    untagged = [f.rule for f in findings if not CONFIDENCE_TAG.search(f.reason)]

    assert untagged == []


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_findings_are_sorted_by_line(name: str) -> None:
    findings = findings_of(name)

    lines = [f.line for f in findings]

    assert lines == sorted(lines)


# Locating keys ------------------------------------------------------------------------------


def test_inline_array_listeners_are_located_by_index_and_line() -> None:
    findings = findings_of("c2s-inline-forms.toml")

    errors = [(f.line, f.path) for f in findings if f.severity is Severity.ERROR]

    assert errors == [(9, "listen.c2s[1].zlib"), (10, "listen.c2s[2].max_fsm_queue")]


def test_comments_and_multiline_strings_do_not_fool_the_locator() -> None:
    findings = findings_of("decoys.toml")

    errors = [(f.line, f.path) for f in findings if f.severity is Severity.ERROR]

    assert errors == [(18, "listen.c2s[0].zlib")]


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_locator_records_a_line_for_every_key_tomllib_reads(name: str) -> None:
    text = (DATA / name).read_text(encoding="utf-8")

    lines = locate_keys(text)

    unlocated = [path for path in toml_paths(tomllib.loads(text)) if path not in lines]
    assert unlocated == []


def test_locator_follows_nested_arrays_of_tables_quoted_keys_and_strings() -> None:
    text = (DATA / "toml-syntax-corners.toml").read_text(encoding="utf-8")

    lines = locate_keys(text)

    assert lines[("numbers", 2)] == 7
    assert lines[("point", "y", "z")] == 10
    assert lines[("raw",)] == 14
    assert lines[("server", "with.dot", "flag")] == 18
    assert lines[("fleet", 0, "engine", "power")] == 23
    assert lines[("fleet", 1, "crew", 1, "name")] == 30
    assert ("not",) not in lines


def test_crlf_line_endings_give_the_same_lines() -> None:
    text = (DATA / "production-6.0.0.toml").read_text(encoding="utf-8")

    with_crlf = check_config(text.replace("\n", "\r\n"))

    assert with_crlf == check_config(text)


def test_format_path_quotes_keys_that_are_not_bare() -> None:
    path = ("modules", "mod_x", "a.b", 2, "c")

    rendered = format_path(path)

    assert rendered == 'modules.mod_x."a.b"[2].c'


# Broken input -------------------------------------------------------------------------------


def test_malformed_toml_raises_with_its_line_and_column() -> None:
    text = (DATA / "malformed.toml").read_text(encoding="utf-8")

    with pytest.raises(ConfigSyntaxError) as raised:
        check_config(text)

    assert (raised.value.line, raised.value.column) == (5, 13)
    assert "line 5" in str(raised.value)


def test_toml_cut_off_at_the_end_reports_the_last_line() -> None:
    text = "[general]\n  hosts = [\n"

    with pytest.raises(ConfigSyntaxError) as raised:
        check_config(text)

    assert raised.value.line == 2


# Command line -------------------------------------------------------------------------------


def test_cli_prints_one_line_per_finding_and_exits_1_on_errors() -> None:
    config = DATA / "production-6.0.0.toml"

    result = run_cli(str(config))

    assert result.returncode == 1, result.stderr
    *lines, summary = result.stdout.splitlines()
    parsed = [TEXT_LINE.match(line) for line in lines]
    assert all(parsed), f"lines not in file:LINE: severity: path: reason (fix: ...): {lines}"
    assert [int(m["line"]) for m in parsed if m] == sorted(int(m["line"]) for m in parsed if m)
    assert {m["file"] for m in parsed if m} == {str(config)}
    assert f"{config}:19: error: listen.c2s[0].zlib: " in result.stdout
    assert summary == (
        f"{config}: 3 error(s), 6 warning(s), 4 info; 6.1.0 would refuse to start with this file"
    )


def test_cli_exits_0_for_the_clean_6_1_0_config() -> None:
    config = DATA / "clean-6.1.0.toml"

    result = run_cli(str(config))

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].endswith("no finding stops 6.1.0 from starting")
    assert ": error: " not in result.stdout


def test_cli_json_output_is_a_list_of_findings() -> None:
    config = DATA / "production-6.0.0.toml"

    result = run_cli(str(config), "--format", "json")

    assert result.returncode == 1, result.stderr
    records = json.loads(result.stdout)
    assert isinstance(records, list)
    assert {"line": 42, "severity": "error"}.items() <= records[7].items()
    assert records[7]["path"] == "listen.http[0].handlers.mod_websockets[0].service"
    assert [r["rule"] for r in records] == [f.rule for f in findings_of(config.name)]
    assert all(set(r) == {"line", "path", "severity", "rule", "reason", "fix"} for r in records)


def test_cli_malformed_toml_exits_2_naming_file_and_line() -> None:
    config = DATA / "malformed.toml"

    result = run_cli(str(config))

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"{config}:5: error: not valid TOML: ")
    assert "(at line 5, column 13)" in result.stderr


def test_cli_missing_file_exits_2_with_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "mongooseim.toml"

    result = run_cli(str(missing))

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"{missing}: error: cannot read the config: ")
    assert "No such file" in result.stderr
