#!/usr/bin/env bash
# The HTML report of a run, built offline with Allure 3 from reports/allure-results.
#
#   bash scripts/report.sh tools      installs what the report needs when it is missing:
#                                     Node.js and npm, Allure (npm ci), Chromium (Debian)
#   bash scripts/report.sh build      builds reports/allure-report, keeping the history of
#                                     earlier builds in reports/allure-history.jsonl; does
#                                     nothing when the report is newer than every result
#                                     (ALLURE_RESULTS, ALLURE_REPORT and ALLURE_HISTORY name
#                                     other folders and files)
#   bash scripts/report.sh serve      builds, then serves the report on 127.0.0.1
#                                     (REPORT_PORT, default 8765; Ctrl-C stops it)
#   bash scripts/report.sh check      opens the report in headless Chromium and checks that
#                                     the tests and the upgrade matrix are in it; saves
#                                     reports/report-screenshot.png
#
# The Allure 3 page renders only over HTTP, not from file://.
set -euo pipefail
cd "$(dirname "$0")/.."

# Other folders can be named for a one-off report; scripts/allurerc.mjs reads the same names.
export ALLURE_RESULTS=${ALLURE_RESULTS:-reports/allure-results}
export ALLURE_REPORT=${ALLURE_REPORT:-reports/allure-report}
export ALLURE_HISTORY=${ALLURE_HISTORY:-reports/allure-history.jsonl}
RESULTS=$ALLURE_RESULTS
REPORT=$ALLURE_REPORT
ALLURE=node_modules/.bin/allure
PYTHON=${PYTHON:-.venv/bin/python}

log() { echo "[report] $*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "missing: $*; install them (apt-get install $*) or run as root" >&2
    exit 1
  fi
  log "installing $* from Debian"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
}

node_tools() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
  fi
  if [ ! -x "$ALLURE" ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    log "installing Allure from package-lock.json (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
  fi
}

browser() {
  # CHROMIUM names another Chromium-based browser (the nightly workflow uses the runner's).
  command -v "${CHROMIUM:-chromium}" >/dev/null 2>&1 || apt_install chromium
}

up_to_date() {
  [ -f "$REPORT/index.html" ] || return 1
  [ -z "$(find "$RESULTS" -newer "$REPORT/index.html" -print -quit)" ]
}

build() {
  if [ ! -d "$RESULTS" ] || [ -z "$(ls -A "$RESULTS")" ]; then
    echo "no results in $RESULTS: run the suite first (make test or make conformance)" >&2
    exit 1
  fi
  node_tools
  if up_to_date; then
    log "$REPORT is newer than every result: kept as it is"
    return
  fi
  # Allure writes into a subfolder when the output folder is not empty: start afresh, but
  # remove only a folder that holds an earlier report.
  if [ -d "$REPORT" ] && [ -n "$(ls -A "$REPORT")" ]; then
    if [ ! -f "$REPORT/summary.json" ]; then
      echo "$REPORT is not empty and holds no earlier report: not overwriting it" >&2
      exit 1
    fi
    rm -rf "$REPORT"
  fi
  local started inputs
  started=$(now)
  # The files present before the build: all of them are in the report (the browser check
  # reads this list; files a concurrent run adds meanwhile may or may not be).
  inputs=$(ls "$RESULTS")
  "$ALLURE" generate --config scripts/allurerc.mjs "$RESULTS" >reports/allure-generate.log 2>&1 || {
    cat reports/allure-generate.log >&2
    echo "allure generate failed; its output is above and in reports/allure-generate.log" >&2
    exit 1
  }
  printf '%s\n' "$inputs" >"$REPORT/built-from.txt"
  log "built $REPORT in $(since "$started") s (history: $ALLURE_HISTORY)"
}

serve() {
  build
  local port=${REPORT_PORT:-8765}
  log "serving $REPORT at http://127.0.0.1:$port/ (Ctrl-C stops it)"
  exec "$PYTHON" -m http.server "$port" --bind 127.0.0.1 --directory "$REPORT"
}

check() {
  browser
  local started
  started=$(now)
  "$PYTHON" -m pytest tests/test_report_in_browser.py --report-check -p no:cacheprovider \
    -o addopts="-ra --strict-markers" -q
  log "checked in a browser in $(since "$started") s: reports/report-screenshot.png"
}

case "${1:-}" in
  tools) node_tools; browser ;;
  build) build ;;
  serve) serve ;;
  check) check ;;
  *) echo "usage: $0 tools|build|serve|check" >&2; exit 2 ;;
esac
