#!/usr/bin/env bash
# Stability: the reference suite RUNS times in a row (default 20), then one run interrupted
# with SIGINT halfway. Reports flaky tests (passed in one run, failed in another) and any
# container, network or volume a run left behind. Results: reports/bench/stability.md.
#
#   bash bench/stability.sh [RUNS]
set -uo pipefail
cd "$(dirname "$0")/.."

runs=${1:-20}
out=reports/bench/stability
rm -rf "$out" && mkdir -p "$out"
pytest=(.venv/bin/pytest suites/ --targets=reference -p no:cacheprovider -q -n "${WORKERS:-4}")

leftovers() {
  {
    docker ps -aq --filter label=com.docker.compose.project | while read -r c; do
      docker inspect -f '{{index .Config.Labels "com.docker.compose.project"}}' "$c"
    done
    docker network ls --format '{{.Name}}' | grep '^xc-' || true
    docker volume ls --format '{{.Name}}' | grep '^xc-' || true
  } | grep '^xc-' | sort -u
}

before=$(leftovers)
for i in $(seq 1 "$runs"); do
  started=$(date +%s)
  "${pytest[@]}" --junitxml="$out/run-$i.xml" >"$out/run-$i.log" 2>&1
  echo "run $i: exit $? in $(( $(date +%s) - started )) s"
done

echo "interrupted run: SIGINT after 20 s"
"${pytest[@]}" >"$out/interrupted.log" 2>&1 &
pid=$!
sleep 20
kill -INT "$pid"
# pytest tears the compose projects down on SIGINT; wait for it, with a bound.
for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
kill -0 "$pid" 2>/dev/null && { echo "pytest still running 60 s after SIGINT"; kill -9 "$pid"; }
wait "$pid" 2>/dev/null

after=$(leftovers)
.venv/bin/python bench/stability_report.py "$out" "$runs" "$before" "$after" \
  | tee reports/bench/stability.md
