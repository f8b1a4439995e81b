#!/usr/bin/env bash
# Stability: the reference suite RUNS times in a row (default 20) on WORKERS xdist workers
# (default 4, as `make conformance`), then one run interrupted with SIGINT halfway through
# (half the mean duration of the runs before it). Reports flaky tests (passed in one run,
# failed in another) and every container, network, volume or run folder a run left
# behind. Each run has its own run id (XC_RUN_ID=stab<stamp>n<i>), so servers of other
# people's runs on the same machine are not counted. Results: reports/bench/stability.md.
#
#   bash bench/stability.sh [RUNS]
set -uo pipefail
cd "$(dirname "$0")/.."
# As the Makefile does: pytest keeps the modules it rewrites as bytecode.
unset PYTHONDONTWRITEBYTECODE

runs=${1:-20}
workers=${WORKERS:-4}
out=reports/bench/stability
stamp=$(date +%s)
prefix="stab${stamp}"
rm -rf "$out" && mkdir -p "$out"

# A command started with `&` by a shell without job control ignores SIGINT, and so does
# everything it starts; pytest then never sees the signal of the interrupted run. Each run
# gets SIGINT's default back.
pytest_run() { # run id, junit file, log file
  XC_RUN_ID="$1" env --default-signal=INT .venv/bin/pytest suites/ --targets=reference \
    -p no:cacheprovider -q -n "$workers" -o addopts= -ra --strict-markers \
    --report-dir="$out/report-$1" --junitxml="$2" >"$3" 2>&1
}

leftovers() { # what runs of this bench left: compose projects, trial containers, folders
  {
    docker ps -aq --filter label=com.docker.compose.project | while read -r c; do
      docker inspect -f '{{index .Config.Labels "com.docker.compose.project"}}' "$c"
    done
    docker ps -aq --filter label=xmpp-conformance.run | while read -r c; do
      echo "trial:$(docker inspect -f '{{index .Config.Labels "xmpp-conformance.run"}}' "$c")"
    done
    docker network ls --format '{{.Name}}'
    docker volume ls --format '{{.Name}}'
    ls -d "${TMPDIR:-/tmp}"/xc-* 2>/dev/null | sed 's|.*/|folder:|'
  } | grep -E "(^|[:-])(xc-)?${prefix}" | sort -u
}

: >"$out/runs.tsv"
for i in $(seq 1 "$runs"); do
  started=$(date +%s)
  pytest_run "${prefix}n${i}" "$out/run-$i.xml" "$out/run-$i.log"
  status=$?
  seconds=$(( $(date +%s) - started ))
  printf '%s\t%s\t%s\n' "$i" "$status" "$seconds" >>"$out/runs.tsv"
  echo "run $i: exit $status in $seconds s; left behind: $(leftovers | wc -l)"
done
leftovers >"$out/leftovers-after-runs.txt"

mean=$(awk -F'\t' '{ s += $3 } END { print (NR ? int(s / NR) : 80) }' "$out/runs.tsv")
after=$(( mean / 2 > 5 ? mean / 2 : 5 ))
echo "interrupted run: SIGINT after $after s"
pytest_run "${prefix}int" "$out/interrupted.xml" "$out/interrupted.log" &
pid=$!
sleep "$after"
# The pytest controller is the child of the function's subshell: signal the controller.
controller=$(pgrep -P "$pid" -f 'bin/pytest' || echo "$pid")
kill -INT "$controller"
interrupted_at=$(date +%s)
for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
if kill -0 "$pid" 2>/dev/null; then
  echo "pytest still running 120 s after SIGINT; killing it"
  kill -9 "$controller" "$pid" 2>/dev/null
fi
wait "$pid"
status=$?
printf '%s\t%s\t%s\n' "$after" "$status" "$(( $(date +%s) - interrupted_at ))" \
  >"$out/interrupted.tsv"
leftovers >"$out/leftovers-after-interrupt.txt"
echo "interrupted run: exit $status; left behind: $(wc -l <"$out/leftovers-after-interrupt.txt")"

.venv/bin/python bench/stability_report.py "$out" "$runs" | tee reports/bench/stability.md
