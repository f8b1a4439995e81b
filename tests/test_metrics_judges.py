"""The MongooseIM metrics profiles, judged against what real 6.0.0 and 6.1.0 servers answered.

The recorded API answers (tests/data/recordings/mongooseim-*/api/) and transcripts are
turned into the observations the suite makes live. Each must pass the profile of the
version it was recorded on; where the versions differ it must fail the other version's
profile, naming the key. The judges' own rules (lower bounds, missing series, bad
profiles) and the choice of reader from the profile are checked here too.
"""

from __future__ import annotations

import json
import logging
import re
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from clients.chat import message_xml
from clients.metrics import (
    EjabberdStatsReader,
    MetricName,
    MongooseGraphQLReader,
    MongooseRestReader,
    OpenMetricsReader,
    ServerStatus,
)
from harness.judges import metrics as judge
from harness.judges.metrics import (
    CorsSeen,
    HostTypeListingSeen,
    Listing,
    MetricsExpect,
    Move,
    Reading,
    StatusSeen,
)
from harness.profiles import PROFILES, Profile, ProfileError, load_profile
from harness.targets import Admin, Node, Target
from suites import test_metrics as suite
from tests import test_metrics_readers as replay
from tests.recorded import RECORDINGS, VERSIONS, other, profile

C2S_TCP_IN = ("global", "data", "xmpp", "received", "c2s", "tcp")
C2S_TCP_OUT = ("global", "data", "xmpp", "sent", "c2s", "tcp")
COMPRESSED_IN = ("global", "data", "xmpp", "received", "compressed_size")
PROCESSING_TIME = ("localhost", "data", "xmpp", "c2s", "message", "processing_time")
STANZA_COUNT = ("localhost", "xmppStanzaCount")
METRIC_LINE = re.compile(r"^# \+[0-9.]+ metric (?P<name>\S+)\s+before=(?P<b>\S+) after=(?P<a>\S+)")
BYTES_LINE = re.compile(r"bytes alice sent: (?P<sent>\d+); bytes written to bob: (?P<got>\d+)")


def want(version: str) -> MetricsExpect:
    return MetricsExpect.of(profile(version))


def api_file(version: str, name: str) -> Path:
    return RECORDINGS / f"mongooseim-{version}" / "api" / name


def api_json(version: str, name: str) -> Any:
    return json.loads(api_file(version, name).read_text())


def split(dotted: str) -> MetricName:
    return tuple(dotted.split("."))


# -- observations made from the recordings ---------------------------------------------------


def graphql_listing(version: str) -> Listing:
    entries = api_json(version, "graphql-getMetrics-all.json")["data"]["metric"]["getMetrics"]
    return Listing(frozenset(tuple(e["name"]) for e in entries))


def dicts_listing(version: str) -> Listing:
    body = api_json(version, "graphql-getMetricsAsDicts-global-data-xmpp.json")
    entries = body["data"]["metric"]["getMetricsAsDicts"]
    return Listing(frozenset(tuple(e["name"]) for e in entries), prefix=("global", "data", "xmpp"))


def rest_listing(version: str) -> Listing:
    index = api_json(version, "rest-metrics.json")
    global_names = api_json(version, "rest-metrics_global.json")["metrics"]
    names = {("global", *split(n)) for n in global_names}
    names |= {(ht, m) for ht in index["host_types"] for m in index["metrics"]}
    return Listing(frozenset(names), rest_shape=True)


def status_seen(version: str) -> StatusSeen:
    with_version = api_json(version, "graphql-server-status-with-version.json")
    if "errors" in with_version:
        codes = {e["extensions"]["code"] for e in with_version["errors"]}
        assert codes == {"unknown_field"}
        status = api_json(version, "graphql-server-status.json")["data"]["server"]["status"]
        return StatusSeen(ServerStatus(status["statusCode"], status["message"], None, False))
    status = with_version["data"]["server"]["status"]
    return StatusSeen(
        ServerStatus(status["statusCode"], status["message"], status["version"], True)
    )


def parse_headers(lines: list[str]) -> tuple[int, dict[str, str]]:
    """The status and headers (names lower-cased) of an HTTP answer's head."""
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return status, headers


def cors_of(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.startswith("access-control-")}


def cors_seen(version: str) -> CorsSeen:
    _, get_headers = parse_headers(
        api_file(version, "rest-metrics.headers").read_text().split("\n")
    )
    transcript = (RECORDINGS / f"mongooseim-{version}" / "metrics-rest-api-cors.txt").read_text()
    after_options = transcript.split("C: OPTIONS", 1)[1].split("\nC: ", 1)[0]
    head = [line[3:] for line in after_options.splitlines() if line.startswith("S: ")]
    status, headers = parse_headers(head)
    return CorsSeen(cors_of(get_headers), status, cors_of(headers), headers.get("allow", ""))


def host_type_seen(version: str) -> HostTypeListingSeen:
    lines = api_file(version, "rest-metrics_host_type_localhost.headers").read_text().split("\n")
    status, headers = parse_headers(lines)
    assert headers["content-length"] == "0"
    return HostTypeListingSeen(status, "")


def chat_reading(version: str) -> Reading:
    text = (RECORDINGS / f"mongooseim-{version}" / "metrics-one-chat-message.txt").read_text()
    before: dict[MetricName, int] = {}
    after: dict[MetricName, int] = {}
    for line in text.splitlines():
        found = METRIC_LINE.match(line)
        if found is None or "(n)" in line:
            continue
        for values, raw in ((before, found["b"]), (after, found["a"])):
            if raw != "None":
                values[split(found["name"])] = int(raw)
    sizes = BYTES_LINE.search(text)
    assert sizes is not None
    quantities: dict[str, int | None] = {
        "sent_bytes": int(sizes["sent"]),
        "delivered_bytes": int(sizes["got"]),
    }
    return Reading(before, after, quantities)


# -- names -----------------------------------------------------------------------------------

LISTINGS = [graphql_listing, dicts_listing, rest_listing]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("listing", LISTINGS, ids=lambda f: f.__name__)
def test_recorded_names_pass_their_own_profile(version: str, listing: Any) -> None:
    seen = listing(version)

    problems = judge.judge_names(want(version), seen)

    assert problems == []


@pytest.mark.parametrize("listing", LISTINGS, ids=lambda f: f.__name__)
def test_610_names_fail_600_profile_because_compressed_size_is_missing(listing: Any) -> None:
    seen = listing("6.1.0")

    problems = judge.judge_names(want("6.0.0"), seen)

    assert any(
        p.startswith("present: expected global.data.xmpp.received.compressed_size")
        for p in problems
    )
    assert any(
        p.startswith("absent: expected no global.data.xmpp.received.c2s.tcp") for p in problems
    )


@pytest.mark.parametrize("listing", LISTINGS, ids=lambda f: f.__name__)
def test_600_names_fail_610_profile_because_c2s_byte_spirals_are_missing(listing: Any) -> None:
    seen = listing("6.0.0")

    problems = judge.judge_names(want("6.1.0"), seen)

    assert any(p.startswith("present: expected global.data.xmpp.sent.c2s.tcp") for p in problems)
    assert any(
        p.startswith("absent: expected no global.data.xmpp.sent.encrypted_size") for p in problems
    )


def test_missing_name_problem_shows_what_is_listed_near_it() -> None:
    seen = graphql_listing("6.1.0")

    problems = judge.judge_names(want("6.0.0"), seen)

    compressed = next(p for p in problems if "received.compressed_size" in p)
    assert "Listed near it: global.data.xmpp.received.c2s.bosh" in compressed


def test_processing_time_histogram_is_listed_by_610_only() -> None:
    new, old = graphql_listing("6.1.0"), graphql_listing("6.0.0")

    assert PROCESSING_TIME in new.names
    assert PROCESSING_TIME not in old.names
    assert PROCESSING_TIME in want("6.1.0").present
    assert PROCESSING_TIME in want("6.0.0").absent


def test_rest_listing_does_not_speak_for_longer_host_type_names() -> None:
    seen = rest_listing("6.0.0")

    problems = judge.judge_names(want("6.1.0"), seen)

    assert not seen.covers(PROCESSING_TIME)
    assert not [p for p in problems if "processing_time" in p]


def test_c2s_unauthenticated_iq_is_absent_from_our_600_config() -> None:
    listed = graphql_listing("6.0.0").names | rest_listing("6.0.0").names

    assert ("localhost", "c2s_unauthenticated_iq") not in listed
    assert ("localhost", "c2s_unauthenticated_iq") in want("6.0.0").absent


def test_unreadable_api_is_a_problem_naming_api() -> None:
    seen = Listing(frozenset(), error="HTTP 404 instead of 200 from http://127.0.0.1:1/metrics")

    problems = judge.judge_names(want("6.1.0"), seen)

    assert problems == [
        "api = 'mongooseim-graphql': expected a readable metrics API; "
        "HTTP 404 instead of 200 from http://127.0.0.1:1/metrics"
    ]


def test_openmetrics_names_match_on_labels_they_include() -> None:
    prosody = MetricsExpect.of(load_profile("prosody"))
    listed = ("prosody_mod_smacks__sessions_started_total", "host=localhost")
    seen = Listing(frozenset({listed}))

    problems = judge.judge_names(replace(prosody, present=(listed[:1], listed)), seen)
    wrong = judge.judge_names(replace(prosody, present=((listed[0], "host=other"),)), seen)

    assert problems == []
    assert wrong == [
        "present: expected prosody_mod_smacks__sessions_started_total{host=other} to be "
        "listed; it is not. Listed near it: prosody_mod_smacks__sessions_started_total"
        "{host=localhost}"
    ]


# -- counter moves for one chat --------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_recorded_chat_moves_pass_their_own_profile(version: str) -> None:
    seen = chat_reading(version)

    assert judge.judge_moves(want(version), "chat", seen) == []


def test_600_chat_fails_610_profile_naming_stanza_count_and_byte_spirals() -> None:
    seen = chat_reading("6.0.0")

    problems = judge.judge_moves(want("6.1.0"), "chat", seen)

    assert problems == [
        "chat: localhost.xmppStanzaCount rises = 2: expected a rise of 2 or more; "
        "read 206 -> 207 (+1)",
        "chat: global.data.xmpp.received.c2s.tcp rises = 'sent_bytes': expected a rise of "
        "83 or more; not listed before the act",
        "chat: global.data.xmpp.sent.c2s.tcp rises = 'delivered_bytes': expected a rise of "
        "111 or more; not listed before the act",
    ]


def test_610_chat_also_meets_the_600_lower_bounds() -> None:
    # Every 6.0.0 chat expectation is a lower bound 6.1.0 exceeds or meets; the versions
    # differ in names (compressed_size, c2s.tcp), which the names check catches.
    seen = chat_reading("6.1.0")

    assert judge.judge_moves(want("6.0.0"), "chat", seen) == []
    assert judge.judge_names(want("6.0.0"), graphql_listing("6.1.0")) != []


@pytest.mark.parametrize(
    ("version", "name", "claim"),
    [("6.0.0", STANZA_COUNT, 2), ("6.1.0", STANZA_COUNT, 3), ("6.1.0", C2S_TCP_IN, 84)],
)
def test_chat_check_fails_when_profile_claims_a_larger_move(
    version: str, name: MetricName, claim: int
) -> None:
    claimed = with_move(want(version), "chat", name, claim)

    problems = judge.judge_moves(claimed, "chat", chat_reading(version))

    assert len(problems) == 1
    assert problems[0].startswith(f"chat: {'.'.join(name)} rises = {claim}: expected a rise")


def test_chat_byte_quantities_match_what_the_recording_measured() -> None:
    # The suite's chat and its way of measuring the delivered copy give the recorded sizes.
    sent = message_xml("bob@localhost/m1", "metrics", "met1")
    transcript = (RECORDINGS / "mongooseim-6.1.0" / "metrics-one-chat-message.txt").read_text()
    delivered = next(
        line.split(" bob ", 1)[1]
        for line in transcript.splitlines()
        if line.startswith("S: ") and " bob <message" in line
    )

    assert sent in transcript
    assert len(sent.encode()) == chat_reading("6.1.0").quantities["sent_bytes"]
    assert suite.written_size(b"<r/>" + delivered.encode(), "met1") == 111
    assert suite.written_size(delivered.encode(), "other-id") is None


def with_move(base: MetricsExpect, act: str, name: MetricName, amount: int) -> MetricsExpect:
    moves = tuple(replace(m, amount=amount) if m.name == name else m for m in base.moves[act])
    assert moves != base.moves[act], f"{name} is not in the profile's {act}"
    return replace(base, moves={**base.moves, act: moves})


# -- the rules of a move ---------------------------------------------------------------------

GAUGE = ("prosody_mod_c2s__connections", "host=localhost")


def moves_of(*moves: Move) -> MetricsExpect:
    return replace(want("6.1.0"), moves={act: moves for act in judge.ACTS})


def test_a_counter_that_does_not_move_fails_a_rise() -> None:
    expectation = moves_of(Move(STANZA_COUNT, "rises", 1))

    problems = judge.judge_moves(
        expectation, "login", Reading({STANZA_COUNT: 5}, {STANZA_COUNT: 5}, {})
    )

    assert problems == [
        "login: localhost.xmppStanzaCount rises = 1: expected a rise of 1 or more; "
        "read 5 -> 5 (+0)"
    ]


def test_other_traffic_adding_to_a_rise_still_passes() -> None:
    expectation = moves_of(Move(STANZA_COUNT, "rises", "logins"))

    seen = Reading({STANZA_COUNT: 5}, {STANZA_COUNT: 40}, {"logins": 2})

    assert judge.judge_moves(expectation, "login", seen) == []


def test_a_fall_needs_the_counter_to_shrink_by_the_amount() -> None:
    expectation = moves_of(Move(GAUGE, "falls", "logins"))

    shrank = Reading({GAUGE: 4}, {GAUGE: 2}, {"logins": 2})
    grew = Reading({GAUGE: 4}, {GAUGE: 5}, {"logins": 2})

    assert judge.judge_moves(expectation, "logout", shrank) == []
    assert judge.judge_moves(expectation, "logout", grew) == [
        "logout: prosody_mod_c2s__connections{host=localhost} falls = 'logins': expected a "
        "fall of 2 or more; read 4 -> 5 (+1)"
    ]


def test_a_series_created_by_the_act_reads_as_zero_only_where_the_profile_says() -> None:
    lazy = moves_of(Move(GAUGE, "rises", "logins", absent_before_is_zero=True))
    strict = moves_of(Move(GAUGE, "rises", "logins"))
    seen = Reading({}, {GAUGE: 2}, {"logins": 2})

    assert judge.judge_moves(lazy, "login", seen) == []
    assert judge.judge_moves(strict, "login", seen) == [
        "login: prosody_mod_c2s__connections{host=localhost} rises = 'logins': expected a "
        "rise of 2 or more; not listed before the act"
    ]


def test_a_quantity_the_act_could_not_measure_is_a_problem() -> None:
    expectation = moves_of(Move(C2S_TCP_OUT, "rises", "delivered_bytes"))

    seen = Reading({C2S_TCP_OUT: 1}, {C2S_TCP_OUT: 900}, {"delivered_bytes": None})

    assert judge.judge_moves(expectation, "chat", seen) == [
        "chat: global.data.xmpp.sent.c2s.tcp rises = 'delivered_bytes': the act measured no "
        "delivered_bytes (see the transcript)"
    ]


def test_an_unreadable_api_during_an_act_is_a_problem_naming_api() -> None:
    seen = Reading({}, {}, {}, error="could not connect (refused) from http://127.0.0.1:1/")

    problems = judge.judge_moves(want("6.0.0"), "chat", seen)

    assert problems == [
        "api = 'mongooseim-graphql': expected a readable metrics API; could not connect "
        "(refused) from http://127.0.0.1:1/"
    ]


# -- version probe ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_version_probe_recording_passes_own_profile_and_fails_the_other(version: str) -> None:
    seen = status_seen(version)

    own = judge.judge_version_probe(want(version), seen)
    cross = judge.judge_version_probe(want(other(version)), seen)

    assert own == []
    assert len(cross) == 1
    assert cross[0].startswith(f"version_probe = {want(other(version)).version_probe!r}: ")


def test_version_probe_fails_on_another_release() -> None:
    seen = StatusSeen(ServerStatus("RUNNING", "started", "6.1.1", True))

    problems = judge.judge_version_probe(want("6.1.0"), seen)

    assert problems == [
        "version_probe = 'version-field': expected server.status.version '6.1.0'; got '6.1.1'"
    ]


# -- REST admin API --------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_cors_recording_passes_own_profile_and_fails_the_other(version: str) -> None:
    seen = cors_seen(version)

    own = judge.judge_rest_cors(want(version), seen)
    cross = judge.judge_rest_cors(want(other(version)), seen)

    assert own == []
    assert len(cross) == 2
    assert all(p.startswith("rest_cors = ") for p in cross)
    assert "on GET" in cross[0]
    assert "on OPTIONS" in cross[1]


def test_both_versions_answer_the_preflight_with_200_and_the_same_allow() -> None:
    seen = {version: cors_seen(version) for version in VERSIONS}

    assert {s.preflight_status for s in seen.values()} == {200}
    assert {s.preflight_allow for s in seen.values()} == {want("6.0.0").rest_preflight_allow}


def test_preflight_refused_fails_naming_rest_preflight_allow() -> None:
    seen = replace(cors_seen("6.1.0"), preflight_status=405)

    problems = judge.judge_rest_cors(want("6.1.0"), seen)

    assert problems == [
        "rest_preflight_allow = 'OPTIONS, HEAD, GET': expected HTTP 200 to OPTIONS; got HTTP 405"
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_host_type_listing_500_is_recorded_on_both_versions(version: str) -> None:
    seen = host_type_seen(version)

    assert judge.judge_rest_host_type_listing(want(version), seen) == []
    assert judge.judge_rest_host_type_listing(want(other(version)), seen) == []


def test_host_type_listing_that_works_fails_the_documented_500() -> None:
    fixed = HostTypeListingSeen(200, '{"metrics": {}}')

    problems = judge.judge_rest_host_type_listing(want("6.1.0"), fixed)
    claimed_ok = judge.judge_rest_host_type_listing(
        replace(want("6.1.0"), rest_host_type_listing="ok"), host_type_seen("6.1.0")
    )

    assert problems == [
        "rest_host_type_listing = 'error-500-empty': expected HTTP 500 with an empty body; "
        "got HTTP 200 with 15 characters: '{\"metrics\": {}}'"
    ]
    assert claimed_ok == [
        "rest_host_type_listing = 'ok': expected HTTP 200 with the metrics; got HTTP 500"
    ]


# -- profiles --------------------------------------------------------------------------------

TARGET_PROFILES = sorted(p.stem for p in PROFILES.glob("*.toml") if p.stem != "differences")


@pytest.mark.parametrize("name", TARGET_PROFILES)
def test_every_profile_has_a_valid_metrics_table(name: str) -> None:
    expectation = MetricsExpect.of(load_profile(name))

    assert expectation.api in judge.APIS
    assert set(expectation.moves) == set(judge.ACTS)


def profile_with(changes: dict[str, Any], base: str = "mongooseim-6.1.0") -> Profile:
    real = load_profile(base)
    table = {**real.data["metrics"], **changes}
    return Profile(real.name, real.path, {**real.data, "metrics": table})


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"api": "prometheus"}, "api = 'prometheus' must be one of"),
        ({"chat": [{"name": ["a", "b"], "rises": 0}]}, "rises = 0 must be a positive number"),
        ({"chat": [{"name": ["a", "b"], "rises": "bytes"}]}, "must be a positive number or one"),
        ({"chat": [{"name": ["a", "b"], "rises": 1, "falls": 1}]}, "exactly one of"),
        ({"chat": [{"name": "a.b", "rises": 1}]}, "a name is a list of non-empty strings"),
        ({"api": "ejabberd-stats"}, "an absence cannot be observed"),
        ({"api": "openmetrics", "absent": []}, "asks MongooseIM's GraphQL server.status"),
        ({"rest_host_type_listing": "500"}, "rest_host_type_listing = '500' must be one of"),
    ],
)
def test_malformed_metrics_table_is_a_profile_error(
    changes: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ProfileError, match=re.escape(complaint)):
        MetricsExpect.of(profile_with(changes))


def test_rest_keys_are_required_only_with_a_rest_api() -> None:
    real = load_profile("mongooseim-6.1.0")
    table = {k: v for k, v in real.data["metrics"].items() if k != "rest_preflight_allow"}
    lacking = Profile(real.name, real.path, {**real.data, "metrics": table})

    with pytest.raises(ProfileError, match="lacks 'rest_preflight_allow'"):
        MetricsExpect.of(lacking)
    assert MetricsExpect.of(load_profile("prosody")).rest_preflight_allow == ""


# -- the reader comes from the profile -------------------------------------------------------

SECRET = "s3cret-Metr1cs-pw"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def target_with(profile_name: str, admin: Admin) -> Target:
    port = closed_port()
    ports = {"c2s": port, "graphql": port, "rest": port, "http": port}
    node = Node(name="n1", host="127.0.0.1", ports=ports)
    return Target("t", load_profile(profile_name), "localhost", admin, [node])


@pytest.mark.parametrize(
    ("profile_name", "kind"),
    [
        ("mongooseim-6.1.0", MongooseGraphQLReader),
        ("prosody", OpenMetricsReader),
        ("ejabberd", EjabberdStatsReader),
    ],
)
async def test_reader_is_chosen_by_the_profile_api(profile_name: str, kind: type) -> None:
    target = target_with(profile_name, Admin("mongooseim-graphql", "admin", SECRET))

    reader = suite.open_reader(target, MetricsExpect.of(target.profile).api)
    await reader.aclose()

    assert isinstance(reader, kind)


async def test_graphql_reader_speaks_to_the_graphql_port_with_masked_credentials(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    target = target_with("mongooseim-6.1.0", Admin("mongooseim-graphql", "admin", SECRET))
    reader = suite.open_reader(target, "mongooseim-graphql")

    seen = await suite.observe_moves(reader, want("6.1.0"), "chat", suite.no_traffic({}))
    await reader.aclose()
    problems = judge.judge_moves(want("6.1.0"), "chat", seen)

    port = target.node.port("graphql")
    assert f"http://127.0.0.1:{port}/api/graphql" in seen.error
    assert problems
    assert problems[0].startswith("api = 'mongooseim-graphql'")
    assert SECRET not in seen.error
    assert SECRET not in caplog.text


# -- the suite's observing half against the recorded MongooseIM answers ----------------------


@pytest.fixture(params=VERSIONS)
def recorded(request: pytest.FixtureRequest) -> Iterator[tuple[str, Target]]:
    """A local server answering as the recorded MongooseIM did, as a target of that version."""
    version: str = request.param
    started: list[replay.LocalServer] = []

    def serve(routes: dict[tuple[str, str], replay.Route]) -> replay.LocalServer:
        started.append(replay.LocalServer(routes))
        return started[-1]

    server = replay.recorded_mongooseim(serve, version)
    port = int(server.base_url.rsplit(":", 1)[1])
    node = Node(name="n1", host="127.0.0.1", ports={"c2s": 1, "graphql": port, "rest": port})
    admin = Admin("mongooseim-graphql", replay.ADMIN, replay.SECRET)
    yield version, Target("t", profile(version), "localhost", admin, [node])
    for each in started:
        each.stop()


async def observe_everything(target: Target) -> dict[str, Any]:
    """What the suite's MongooseIM checks observe, each as its judge takes it."""
    graphql = suite.open_reader(target, "mongooseim-graphql")
    rest = MongooseRestReader(target.node.url("rest"))
    try:
        return {
            "names": await suite.list_names(graphql, want("6.1.0")),
            "rest_names": await suite.list_rest_names(rest),
            "status": await suite.observe_status(target),
            "cors": await suite.observe_cors(rest),
            "host_type": await suite.observe_host_type_listing(rest, target.domain),
        }
    finally:
        await graphql.aclose()
        await rest.aclose()


def judged(expectation: MetricsExpect, seen: dict[str, Any]) -> list[str]:
    return [
        *judge.judge_names(expectation, seen["names"]),
        *judge.judge_names(expectation, seen["rest_names"]),
        *judge.judge_version_probe(expectation, seen["status"]),
        *judge.judge_rest_cors(expectation, seen["cors"]),
        *judge.judge_rest_host_type_listing(expectation, seen["host_type"]),
    ]


async def test_suite_observations_of_a_recorded_server_pass_its_own_profile(
    recorded: tuple[str, Target],
) -> None:
    version, target = recorded

    seen = await observe_everything(target)

    assert seen["names"].error == ""
    assert len(seen["names"].names) > 90
    assert judged(want(version), seen) == []


async def test_suite_observations_of_a_recorded_server_fail_the_other_profile(
    recorded: tuple[str, Target],
) -> None:
    version, target = recorded

    seen = await observe_everything(target)
    problems = judged(want(other(version)), seen)

    keys = {p.split(":", 1)[0].split(" =", 1)[0] for p in problems}
    assert keys == {"present", "absent", "version_probe", "rest_cors"}
