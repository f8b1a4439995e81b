"""The generated HTML report, opened in a real browser: headless Chromium from Debian.

Needs a report built from a run's results (`bash scripts/report.sh build`), so it is
deselected unless `--report-check` is given; `make test` runs it after the suites and the
build (`bash scripts/report.sh check`). The report is served over HTTP on 127.0.0.1 on a
port the system picks, since the Allure 3 page does not render from file://. The main page
is saved as reports/report-screenshot.png and the matrix as reports/matrix-screenshot.png.
"""

from __future__ import annotations

import functools
import html
import json
import logging
import os
import shutil
import struct
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from harness.matrix import MATRIX_TITLE
from harness.reporting import categorize

log = logging.getLogger(__name__)

pytestmark = pytest.mark.report_check

ROOT = Path(__file__).resolve().parent.parent
# The folders scripts/report.sh built from and into (ALLURE_RESULTS, ALLURE_REPORT).
REPORT = ROOT / os.environ.get("ALLURE_REPORT", "reports/allure-report")
RESULTS = ROOT / os.environ.get("ALLURE_RESULTS", "reports/allure-results")
SCREENSHOT = ROOT / "reports" / "report-screenshot.png"
MATRIX_SCREENSHOT = ROOT / "reports" / "matrix-screenshot.png"
WINDOW = (1400, 900)
# Debian's chromium, or another Chromium-based browser named by CHROMIUM.
BROWSER = os.environ.get("CHROMIUM", "chromium")
CHROMIUM_TIMEOUT = 90.0
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--virtual-time-budget=8000",
    f"--window-size={WINDOW[0]},{WINDOW[1]}",
)


@dataclass(frozen=True)
class Page:
    """What the browser made of one URL: the rendered DOM and a screenshot."""

    url: str
    dom: str
    screenshot: Path


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("report server: " + format, *args)


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    """The built report over HTTP on 127.0.0.1, on a port the system picks."""
    if not (REPORT / "index.html").is_file():
        pytest.fail(f"no report at {REPORT}: build it first (bash scripts/report.sh build)")
    handler = functools.partial(QuietHandler, directory=str(REPORT))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="report-server", daemon=True)
    thread.start()
    log.info("serving %s on 127.0.0.1:%d", REPORT, server.server_port)
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


def browse(url: str, screenshot: Path, profile: Path) -> Page:
    """Loads `url` in a fresh headless Chromium, with a bound on the whole run."""
    binary = shutil.which(BROWSER)
    if binary is None:
        pytest.fail(f"{BROWSER} is not installed: bash scripts/report.sh tools installs chromium")
    screenshot.unlink(missing_ok=True)
    argv = [
        binary,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        "--dump-dom",
        f"--screenshot={screenshot}",
        url,
    ]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"chromium did not render {url} within {CHROMIUM_TIMEOUT:g} s")
    if done.returncode != 0 or not done.stdout.strip():
        pytest.fail(
            f"chromium rendered nothing for {url} (exit {done.returncode}): {done.stderr[-800:]}"
        )
    log.info("chromium rendered %s: %d characters of DOM", url, len(done.stdout))
    return Page(url, done.stdout, screenshot)


@pytest.fixture(scope="module")
def main_page(served: str, tmp_path_factory: pytest.TempPathFactory) -> Page:
    return browse(served, SCREENSHOT, tmp_path_factory.mktemp("chromium-main"))


def tab(served: str, name: str, profile: Path) -> Page:
    return browse(f"{served}#{name}", profile / f"{name}.png", profile)


@pytest.fixture(scope="module")
def categories_tab(served: str, tmp_path_factory: pytest.TempPathFactory) -> Page:
    return tab(served, "categories", tmp_path_factory.mktemp("chromium-categories"))


@pytest.fixture(scope="module")
def attachments_tab(served: str, tmp_path_factory: pytest.TempPathFactory) -> Page:
    return tab(served, "globalAttachments", tmp_path_factory.mktemp("chromium-attachments"))


@pytest.fixture(scope="module")
def matrix_page(served: str, tmp_path_factory: pytest.TempPathFactory) -> Page:
    return browse(
        served + matrix_attachment_path(), MATRIX_SCREENSHOT, tmp_path_factory.mktemp("chromium")
    )


def matrix_attachment_path() -> str:
    """Where the report keeps the matrix: a global attachment listed in its globals widget."""
    listed = json.loads((REPORT / "widgets" / "globals.json").read_text())
    for attachment in listed.get("attachments", []):
        if attachment.get("name") == MATRIX_TITLE:
            return f"data/attachments/{attachment['id']}{attachment['ext']}"
    raise AssertionError(
        f"the report has no global attachment named {MATRIX_TITLE!r}: {listed.get('attachments')}"
    )


def result_files() -> list[dict[str, Any]]:
    """The results the report was built from (scripts/report.sh lists them)."""
    listing = REPORT / "built-from.txt"
    if not listing.is_file():
        pytest.fail(f"{listing} is missing: build the report with bash scripts/report.sh build")
    names = [n for n in listing.read_text().split() if n.endswith("-result.json")]
    return [json.loads((RESULTS / n).read_text()) for n in names if (RESULTS / n).is_file()]


def in_dom(text: str, dom: str) -> bool:
    """Whether text shows on the page; the DOM writes `<` and `>` in text as entities."""
    return html.escape(text, quote=False) in dom


def labels(result: dict[str, Any], name: str) -> list[str]:
    return [str(label["value"]) for label in result.get("labels", []) if label["name"] == name]


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG file"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_report_shows_every_specification_the_run_tested(main_page: Page) -> None:
    epics = {e for r in result_files() for e in labels(r, "epic")}
    assert epics, f"no result in {RESULTS} has an epic label"

    missing = sorted(e for e in epics if not in_dom(e, main_page.dom))

    assert not missing, f"{main_page.url} does not show these specifications: {missing}"


def test_report_sorts_the_failures_into_the_run_categories(categories_tab: Page) -> None:
    failed = [r for r in result_files() if r.get("status") in ("failed", "broken")]
    expected = {categorize(r.get("statusDetails", {}).get("message", "")) for r in failed}

    missing = sorted(c for c in expected if not in_dom(c, categories_tab.dom))

    assert not missing, f"{categories_tab.url} lacks these failure categories: {missing}"


def test_report_lists_the_upgrade_matrix_among_global_attachments(attachments_tab: Page) -> None:
    assert MATRIX_TITLE in attachments_tab.dom, (
        f"{attachments_tab.url} does not list {MATRIX_TITLE!r} among the global attachments"
    )


def test_matrix_in_the_report_shows_each_behaviour_and_the_upgrade_verdicts(
    matrix_page: Page,
) -> None:
    stories = {s for r in result_files() for s in labels(r, "story")}

    missing = sorted(s for s in stories if not in_dom(s, matrix_page.dom))

    assert "What changes on upgrade" in matrix_page.dom, f"{matrix_page.url}: no upgrade table"
    assert not missing, f"the matrix at {matrix_page.url} lacks these behaviours: {missing}"


def test_screenshots_of_report_and_matrix_are_window_sized_pictures(
    main_page: Page, matrix_page: Page
) -> None:
    sizes = {page.screenshot.name: png_size(page.screenshot) for page in (main_page, matrix_page)}

    assert all(size == WINDOW for size in sizes.values()), f"screenshot sizes: {sizes}"
