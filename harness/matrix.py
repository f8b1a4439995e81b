"""The upgrade matrix: one row per behaviour, one column per target that ran.

Each cell says how the behaviour's tests ended on that target (pass, fail, skip, xfail or
not run). Each row also says whether the profile keys the behaviour depends on differ
between the mongooseim-6.0.0 and mongooseim-6.1.0 profiles, and if so whether the
migration guide documents the difference (`profiles/differences.toml`). A reviewer sees
in one table what changes for users on upgrade and which changes nobody announced.

The matrix is built from the outcomes the run collected (harness/reporting.py), written
as Markdown and HTML, and attached to the Allure results as global attachments. Several
runs (the nightly MongooseIM and reference jobs) merge with
`python -m harness.matrix --outcomes A.json B.json --out reports/`.
"""

from __future__ import annotations

import argparse
import html
import json
import logging
import re
import time
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.behaviours import Behaviour, Catalog, load_catalog
from harness.profiles import PROFILES, Profile, load_profile

log = logging.getLogger(__name__)

OLD_PROFILE = "mongooseim-6.0.0"
NEW_PROFILE = "mongooseim-6.1.0"
DIFFERENCES = PROFILES / "differences.toml"
MARKDOWN_NAME = "upgrade-matrix.md"
HTML_NAME = "upgrade-matrix.html"
OUTCOMES_NAME = "outcomes.json"
# Fixed names, so a later run in the same results folder replaces the matrix, not adds one.
ALLURE_GLOBALS = "upgrade-matrix-globals.json"
ALLURE_MARKDOWN = "upgrade-matrix-attachment.md"
ALLURE_HTML = "upgrade-matrix-attachment.html"
MATRIX_TITLE = "Upgrade matrix: MongooseIM 6.0.0 to 6.1.0"

FAILING = ("failed", "xpassed")


class MatrixError(ValueError):
    """An input of the matrix (differences file, outcomes file) cannot be used."""


@dataclass(frozen=True)
class Outcome:
    """How one test item ended, as the run collected it."""

    nodeid: str
    key: str
    outcome: str
    target: str | None = None
    stack: str | None = None
    category: str = ""
    message: str = ""
    summary: str = ""
    duration: float = 0.0


@dataclass(frozen=True)
class Note:
    """An entry of profiles/differences.toml.

    Most entries are about a key whose value differs between the two MongooseIM profiles.
    An entry with `profile` and `before` is about a state that exists only during the
    upgrade (a mixed 6.0.0 + 6.1.0 cluster): that profile's value against the `before`
    value, what a cluster of one version does.
    """

    documented: bool
    source: str
    change: str
    profile: str = ""
    before: Any = None


@dataclass(frozen=True)
class Difference:
    """A profile key whose value differs between the old and the new MongooseIM profile."""

    key: str
    old: Any
    new: Any
    note: Note | None
    context: str = ""

    @property
    def shift(self) -> str:
        """The change in a few words: `'' -> 'x'`, or what a list or table gained and lost."""
        change = describe_shift(self.old, self.new)
        return f"{self.context}: {change}" if self.context else change

    @property
    def verdict(self) -> str:
        if self.note is None:
            return "not yet assessed"
        return "documented" if self.note.documented else "undocumented"


@dataclass(frozen=True)
class Cell:
    """The outcomes of one behaviour on one target (one per client stack, say)."""

    outcomes: tuple[Outcome, ...] = ()

    @property
    def word(self) -> str:
        kinds = {o.outcome for o in self.outcomes}
        if not kinds:
            return "not run"
        if kinds & set(FAILING):
            return "fail"
        if kinds == {"skipped"}:
            return "skip"
        if "xfailed" in kinds:
            return "xfail"
        return "pass"

    @property
    def text(self) -> str:
        """`pass`, or `fail 1/2 (timeout)` with the count and failure categories."""
        word = self.word
        if word != "fail":
            return word
        failed = [o for o in self.outcomes if o.outcome in FAILING]
        categories = sorted({o.category for o in failed if o.category})
        count = f" {len(failed)}/{len(self.outcomes)}" if len(self.outcomes) > 1 else ""
        return f"fail{count}" + (f" ({', '.join(categories)})" if categories else "")

    @property
    def detail(self) -> str:
        return "\n".join(
            f"{o.stack or o.nodeid}: {o.outcome}" + (f": {o.message}" if o.message else "")
            for o in self.outcomes
        )


@dataclass(frozen=True)
class Row:
    behaviour: Behaviour
    cells: dict[str, Cell]
    differences: tuple[Difference, ...] = ()
    missing_keys: tuple[str, ...] = ()

    @property
    def upgrade(self) -> str:
        """unchanged, documented, undocumented or not yet assessed (worst one wins)."""
        if not self.differences:
            return "unchanged"
        verdicts = {d.verdict for d in self.differences}
        for worst in ("undocumented", "not yet assessed", "documented"):
            if worst in verdicts:
                return worst
        return "unchanged"

    @property
    def summaries(self) -> list[str]:
        return [
            f"{target}: {o.summary}"
            for target, cell in self.cells.items()
            for o in cell.outcomes
            if o.summary
        ]


@dataclass(frozen=True)
class Matrix:
    targets: tuple[str, ...]
    rows: tuple[Row, ...]
    differences: tuple[Difference, ...]
    checked_by: dict[str, tuple[str, ...]] = field(default_factory=dict)
    created: float = 0.0

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.rows:
            for cell in row.cells.values():
                for o in cell.outcomes:
                    counts[o.outcome] = counts.get(o.outcome, 0) + 1
        return counts


# -- building ------------------------------------------------------------------------------


def load_notes(path: Path = DIFFERENCES) -> dict[str, Note]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise MatrixError(f"differences file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise MatrixError(f"differences file {path} is not valid TOML: {exc}") from None
    notes: dict[str, Note] = {}
    for key, entry in data.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("documented"), bool):
            raise MatrixError(f'{path}: ["{key}"] needs `documented = true/false`')
        if not str(entry.get("source", "")).strip():
            raise MatrixError(f'{path}: ["{key}"] needs a `source`')
        if ("profile" in entry) != ("before" in entry):
            raise MatrixError(f'{path}: ["{key}"] needs both `profile` and `before`, or neither')
        notes[key] = Note(
            documented=entry["documented"],
            source=str(entry["source"]),
            change=str(entry.get("change", "")),
            profile=str(entry.get("profile", "")),
            before=entry.get("before"),
        )
    return notes


ABSENT = "(absent)"
SHOWN = 160
# A list of such parts is a metric name, shown as `global.data.xmpp`.
NAME_PART = re.compile(r"[\w-]+")


def profile_values(profile: Profile) -> dict[str, Any]:
    """Every `<table>.<key>` of a profile with its value."""
    values: dict[str, Any] = {}
    for table, content in profile.data.items():
        if isinstance(content, dict):
            for key, value in content.items():
                values[f"{table}.{key}"] = value
    return values


def show(value: Any) -> str:
    """A value as a reviewer reads it: a metric name `a.b.c`, a table `k=v, ...`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, list):
        if value and all(isinstance(v, str) and NAME_PART.fullmatch(v) for v in value):
            return ".".join(value)
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={show(v)}" for k, v in value.items()) + "}"
    return str(value)


def shorten(text: str, limit: int = SHOWN) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_shift(old: Any, new: Any) -> str:
    if isinstance(old, list) and isinstance(new, list):
        gained = [f"+ {show(v)}" for v in new if v not in old]
        lost = [f"- {show(v)}" for v in old if v not in new]
        if gained or lost:
            return "; ".join(_first(gained) + _first(lost))
        return f"same items, reordered: {shorten(show(new))}"
    if isinstance(old, dict) and isinstance(new, dict):
        keys = list(old) + [k for k in new if k not in old]
        return "; ".join(
            f"{k}: {_arrow(old.get(k, ABSENT), new.get(k, ABSENT), 60)}"
            for k in keys
            if old.get(k, ABSENT) != new.get(k, ABSENT)
        )
    return _arrow(old, new, 70)


def _first(items: list[str], count: int = 4) -> list[str]:
    """At most `count` items, then how many more there are."""
    if len(items) <= count:
        return items
    return [*items[:count], f"{items[0][0]} {len(items) - count} more"]


def _arrow(old: Any, new: Any, limit: int) -> str:
    return f"{shorten(show(old), limit)} -> {shorten(show(new), limit)}"


def compare_profiles(old: Profile, new: Profile, notes: dict[str, Note]) -> list[Difference]:
    """The keys whose values differ (a key present in one profile only differs too)."""
    before, after = profile_values(old), profile_values(new)
    keys = list(before) + [k for k in after if k not in before]
    return [
        Difference(k, before.get(k, ABSENT), after.get(k, ABSENT), notes.get(k))
        for k in keys
        if before.get(k, ABSENT) != after.get(k, ABSENT)
    ]


def upgrade_time_differences(notes: dict[str, Note]) -> list[Difference]:
    """Entries about a state during the upgrade: their profile's value against `before`."""
    found = []
    for key, note in notes.items():
        if not note.profile:
            continue
        value = profile_values(load_profile(note.profile)).get(key, ABSENT)
        if value != note.before:
            found.append(Difference(key, note.before, value, note, f"in {note.profile}"))
    return found


def build_matrix(
    catalog: Catalog,
    outcomes: Iterable[Outcome],
    differences: Sequence[Difference],
    known_keys: set[str] | None = None,
    created: float | None = None,
) -> Matrix:
    """Rows for every catalog behaviour and every other test that ran, in catalog order."""
    collected = list(outcomes)
    targets = _targets(collected)
    by_key: dict[str, list[Outcome]] = {}
    for outcome in collected:
        by_key.setdefault(outcome.key, []).append(outcome)
    behaviours = list(catalog.behaviours.values())
    behaviours += [catalog.default(k, None) for k in by_key if k not in catalog.behaviours]
    diff_by_key = {d.key: d for d in differences}
    rows = []
    checked_by: dict[str, list[str]] = {}
    for behaviour in behaviours:
        mine = by_key.get(behaviour.key, [])
        cells = {t: Cell(tuple(o for o in mine if o.target == t)) for t in targets}
        diffs = tuple(diff_by_key[k] for k in behaviour.profile_keys if k in diff_by_key)
        missing = tuple(
            k for k in behaviour.profile_keys if known_keys is not None and k not in known_keys
        )
        for difference in diffs:
            checked_by.setdefault(difference.key, []).append(behaviour.story)
        rows.append(Row(behaviour, cells, diffs, missing))
    return Matrix(
        targets=tuple(targets),
        rows=tuple(rows),
        differences=tuple(differences),
        checked_by={k: tuple(v) for k, v in checked_by.items()},
        created=time.time() if created is None else created,
    )


def _targets(outcomes: list[Outcome]) -> list[str]:
    """Targets that ran: MongooseIM first, then the others, each group by name."""
    names = {o.target for o in outcomes if o.target}
    return sorted(names, key=lambda t: (not t.startswith("mongooseim"), t))


def matrix_for_run(outcomes: Iterable[Outcome], catalog: Catalog | None = None) -> Matrix:
    """The matrix of a run with the project's catalog, profiles and differences file."""
    old, new = load_profile(OLD_PROFILE), load_profile(NEW_PROFILE)
    notes = load_notes()
    differences = compare_profiles(old, new, notes) + upgrade_time_differences(notes)
    known = set(profile_values(old)) | set(profile_values(new))
    for profile in {n.profile for n in notes.values() if n.profile}:
        known |= set(profile_values(load_profile(profile)))
    return build_matrix(catalog or load_catalog(), outcomes, differences, known)


# -- rendering -----------------------------------------------------------------------------


def headline(matrix: Matrix) -> str:
    counts = matrix.counts()
    ran = ", ".join(f"{counts[k]} {k}" for k in sorted(counts)) or "no test ran"
    targets = ", ".join(matrix.targets) or "none"
    return f"{len(matrix.rows)} behaviours on targets {targets}: {ran}."


def differences_line(matrix: Matrix) -> str:
    verdicts = [d.verdict for d in matrix.differences]
    parts = [
        f"{verdicts.count(v)} {v}"
        for v in ("undocumented", "not yet assessed", "documented")
        if verdicts.count(v)
    ]
    during = sum(1 for d in matrix.differences if d.context)
    scope = f"profile keys of {OLD_PROFILE} and {NEW_PROFILE}"
    if during:
        scope += f"; {during} of them only during the upgrade"
    return f"{len(verdicts)} changes on upgrade ({scope})" + (
        f": {', '.join(parts)}." if parts else "."
    )


def _upgrade_text(row: Row) -> str:
    if not row.differences:
        return "unchanged"
    keys = ", ".join(d.key for d in row.differences)
    return f"{row.upgrade}: {keys}"


def _when(matrix: Matrix) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(matrix.created))


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def glance(matrix: Matrix) -> list[tuple[str, list[str], list[str]]]:
    """Per profile table: the keys whose change nobody announced, and the documented ones;
    tables with undocumented changes first."""
    tables: dict[str, tuple[list[str], list[str]]] = {}
    for d in sorted(matrix.differences, key=_difference_order):
        table, key = d.key.split(".", 1)
        quiet, told = tables.setdefault(table, ([], []))
        (told if d.verdict == "documented" else quiet).append(key)
    return sorted(
        ((t, quiet, told) for t, (quiet, told) in tables.items()), key=lambda g: -len(g[1])
    )


def failing(matrix: Matrix) -> list[tuple[str, list[str]]]:
    """Behaviours that failed somewhere, with the targets where they failed."""
    found = []
    for row in matrix.rows:
        where = [t for t, cell in row.cells.items() if cell.word == "fail"]
        if where:
            found.append((row.behaviour.story, where))
    return found


def _markdown_glance(matrix: Matrix) -> list[str]:
    lines = ["## At a glance", "", "| area | changes nobody announced | documented changes |"]
    lines.append("|---|---|---|")
    for table, quiet, told in glance(matrix):
        lines.append(
            f"| {table} | {len(quiet)}: {_md(', '.join(quiet)) or '-'} "
            f"| {len(told)}: {_md(', '.join(told)) or '-'} |"
        )
    lines.append("")
    failed = failing(matrix)
    lines.append(f"Failing behaviours: {len(failed)}." if failed else "No behaviour failed.")
    lines += [f"- {_md(story)}: {', '.join(where)}" for story, where in failed]
    return [*lines, ""]


def render_markdown(matrix: Matrix) -> str:
    lines = [
        f"# {MATRIX_TITLE}",
        "",
        f"Run of {_when(matrix)}. {headline(matrix)}",
        "",
        *_markdown_glance(matrix),
        "## What changes on upgrade",
        "",
        differences_line(matrix),
        "",
        "| | profile key | 6.0.0 -> 6.1.0 | what users see | source | checked by |",
        "|---|---|---|---|---|---|",
    ]
    for d in sorted(matrix.differences, key=_difference_order):
        mark = f"**{d.verdict}**" if d.verdict != "documented" else d.verdict
        checked = "; ".join(matrix.checked_by.get(d.key, ())) or "no test"
        note = d.note or Note(False, "no entry in profiles/differences.toml", "")
        lines.append(
            f"| {mark} | `{d.key}` | {_md(d.shift)} | {_md(note.change)} "
            f"| {_md(note.source)} | {_md(checked)} |"
        )
    lines += [
        "",
        "## Behaviours",
        "",
        "| behaviour | specification | "
        + " | ".join(matrix.targets)
        + (" | " if matrix.targets else "")
        + "upgrade 6.0.0 to 6.1.0 | notes |",
        "|---|---|" + "---|" * len(matrix.targets) + "---|---|",
    ]
    for row in matrix.rows:
        b = row.behaviour
        spec = f"[{b.spec.name}]({b.spec.url})" if b.spec else ""
        cells = "".join(f" {row.cells[t].text} |" for t in matrix.targets)
        notes = "; ".join(row.summaries + [f"profile lacks {k}" for k in row.missing_keys])
        upgrade = _upgrade_text(row)
        if row.upgrade == "undocumented":
            upgrade = f"**{upgrade}**"
        lines.append(
            f"| {_md(b.story)} (`{b.key}`) | {spec} |{cells} {_md(upgrade)} | {_md(notes)} |"
        )
    return "\n".join(lines) + "\n"


def _difference_order(d: Difference) -> tuple[int, str]:
    order = {"undocumented": 0, "not yet assessed": 1, "documented": 2}
    return order[d.verdict], d.key


CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.2em; color: #1b1b1b; }
h1 { font-size: 1.35em; margin: 0 0 .2em; } h2 { font-size: 1.1em; margin: 1.2em 0 .4em; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; }
th, td { border: 1px solid #d0d4da; padding: 3px 6px; vertical-align: top; text-align: left;
  overflow-wrap: break-word; }
th { background: #eef1f5; } code { font-size: 12px; }
.pass { background: #d9f2dd; } .fail { background: #f9d2d2; font-weight: 600; }
.skip, .xfail { background: #eceff3; } .notrun { background: #fff; color: #8a8f98; }
.undocumented { background: #ffe1b3; font-weight: 600; } .documented { background: #e4efff; }
.assess { background: #f3e3ff; } .unchanged { color: #5b6270; }
.small { color: #5b6270; font-size: 12px; }
"""


def _cell_class(word: str) -> str:
    return {"not run": "notrun"}.get(word, word)


def _verdict_class(verdict: str) -> str:
    return {"not yet assessed": "assess"}.get(verdict, verdict)


def render_html(matrix: Matrix) -> str:
    e = html.escape
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(MATRIX_TITLE)}</title><style>{CSS}</style></head><body>",
        f"<h1>{e(MATRIX_TITLE)}</h1>",
        f"<p class='small'>Run of {e(_when(matrix))}. {e(headline(matrix))}</p>",
        *_html_glance(matrix),
        "<h2>What changes on upgrade</h2>",
        f"<p>{e(differences_line(matrix))}</p>",
        "<table><colgroup><col style='width:11%'><col style='width:16%'>"
        "<col style='width:23%'><col style='width:24%'><col style='width:13%'>"
        "<col style='width:13%'></colgroup>"
        "<tr><th></th><th>profile key</th><th>6.0.0 &rarr; 6.1.0</th>"
        "<th>what users see</th><th>source</th><th>checked by</th></tr>",
    ]
    for d in sorted(matrix.differences, key=_difference_order):
        note = d.note or Note(False, "no entry in profiles/differences.toml", "")
        checked = "; ".join(matrix.checked_by.get(d.key, ())) or "no test"
        out.append(
            f"<tr><td class='{_verdict_class(d.verdict)}'>{e(d.verdict)}</td>"
            f"<td><code>{e(d.key)}</code></td><td class='small'><code>{e(d.shift)}</code></td>"
            f"<td>{e(note.change)}</td><td class='small'>{e(note.source)}</td>"
            f"<td class='small'>{e(checked)}</td></tr>"
        )
    out += [
        "</table><h2>Behaviours</h2>",
        "<table><colgroup><col style='width:30%'><col style='width:9%'>"
        + "<col>" * len(matrix.targets)
        + "<col style='width:16%'><col style='width:13%'></colgroup>"
        "<tr><th>behaviour</th><th>specification</th>"
        + "".join(f"<th>{e(t)}</th>" for t in matrix.targets)
        + "<th>upgrade 6.0.0 to 6.1.0</th><th>notes</th></tr>",
    ]
    for row in matrix.rows:
        out.append(_html_row(row, matrix.targets))
    out.append("</table></body></html>")
    return "\n".join(out) + "\n"


def _html_glance(matrix: Matrix) -> list[str]:
    e = html.escape
    out = [
        "<h2>At a glance</h2><table><colgroup><col style='width:16%'><col style='width:50%'>"
        "<col style='width:34%'></colgroup><tr><th>area</th>"
        "<th>changes nobody announced</th><th>documented changes</th></tr>"
    ]
    for table, quiet, told in glance(matrix):
        out.append(
            f"<tr><td>{e(table)}</td>"
            f"<td class='{'undocumented' if quiet else 'unchanged'}'>{len(quiet)}: "
            f"{e(', '.join(quiet)) or '-'}</td>"
            f"<td class='small'>{len(told)}: {e(', '.join(told)) or '-'}</td></tr>"
        )
    out.append("</table>")
    failed = failing(matrix)
    if not failed:
        return [*out, "<p>No behaviour failed.</p>"]
    items = "".join(f"<li>{e(story)}: {e(', '.join(where))}</li>" for story, where in failed)
    return [*out, f"<p class='fail'>Failing behaviours: {len(failed)}</p><ul>{items}</ul>"]


def _html_row(row: Row, targets: Sequence[str]) -> str:
    e = html.escape
    b = row.behaviour
    spec = f"<a href='{e(b.spec.url)}'>{e(b.spec.name)}</a>" if b.spec else ""
    cells = "".join(
        f"<td class='{_cell_class(row.cells[t].word)}' title='{e(row.cells[t].detail)}'>"
        f"{e(row.cells[t].text)}</td>"
        for t in targets
    )
    notes = "; ".join(row.summaries + [f"profile lacks {k}" for k in row.missing_keys])
    upgrade_class = _verdict_class(row.upgrade)
    return (
        f"<tr><td>{e(b.story)}<br><code class='small'>{e(b.key)}</code></td><td>{spec}</td>"
        f"{cells}<td class='{upgrade_class}'>{e(_upgrade_text(row))}</td>"
        f"<td class='small'>{e(notes)}</td></tr>"
    )


# -- writing -------------------------------------------------------------------------------


def write_matrix(matrix: Matrix, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    markdown, page = folder / MARKDOWN_NAME, folder / HTML_NAME
    markdown.write_text(render_markdown(matrix))
    page.write_text(render_html(matrix))
    log.info("upgrade matrix written to %s and %s", markdown, page)
    return markdown, page


def attach_to_allure(matrix: Matrix, results: Path) -> Path:
    """Global attachments of the Allure results: the report shows them on their own tab."""
    results.mkdir(parents=True, exist_ok=True)
    (results / ALLURE_MARKDOWN).write_text(render_markdown(matrix))
    (results / ALLURE_HTML).write_text(render_html(matrix))
    stamp = int(matrix.created * 1000)
    entries = [
        {"name": MATRIX_TITLE, "source": ALLURE_HTML, "type": "text/html", "timestamp": stamp},
        {
            "name": f"{MATRIX_TITLE} (Markdown)",
            "source": ALLURE_MARKDOWN,
            "type": "text/markdown",
            "timestamp": stamp,
        },
    ]
    globals_file = results / ALLURE_GLOBALS
    globals_file.write_text(json.dumps({"attachments": entries}, indent=1))
    return globals_file


def save_outcomes(outcomes: Iterable[Outcome], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"outcomes": [asdict(o) for o in outcomes]}, indent=1))


def read_outcomes(path: Path) -> list[Outcome]:
    try:
        data = json.loads(path.read_text())
        return [Outcome(**entry) for entry in data["outcomes"]]
    except FileNotFoundError:
        raise MatrixError(f"outcomes file {path} does not exist") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise MatrixError(f"outcomes file {path} is not an outcomes list: {exc}") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.matrix",
        description="Merge the outcomes of several runs into one upgrade matrix.",
    )
    parser.add_argument("--outcomes", nargs="+", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("reports"))
    parser.add_argument("--allure-results", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        outcomes = [o for path in args.outcomes for o in read_outcomes(path)]
    except MatrixError as exc:
        parser.error(str(exc))
    matrix = matrix_for_run(outcomes)
    markdown, page = write_matrix(matrix, args.out)
    save_outcomes(outcomes, args.out / OUTCOMES_NAME)
    if args.allure_results is not None:
        attach_to_allure(matrix, args.allure_results)
    print(f"{headline(matrix)}\n{differences_line(matrix)}\nwritten: {markdown}, {page}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
