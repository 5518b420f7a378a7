#!/usr/bin/env bash
# The benchmark command (`npm run bench`): set-up of every component, the
# esbuild bundles, then each benchmark script in turn, and the merged report
# docs/benchmarks.md. A step that fails is recorded in the report's table and
# the others still run; the exit status is non-zero if any step failed.
# Benchmarks measure; they are never part of the test command.
#
# usage: bash scripts/bench.sh
#   BENCH_ONLY="startup reconciler"  run only these (the others are listed as not run,
#                                    their fragments from an earlier run kept and marked)
#   BENCH_TIMEOUT_SECONDS=5400       limit of one benchmark script
#   Each script's own knobs (BENCH_RUNS, BENCH_STARTUP_RUNS, ...) pass through.
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
# lib.sh sets -e: here a failing step is recorded, not fatal.
set +e
cd "$ROOT" || exit 1

BENCHES=(seed cluster startup reconciler)
RESULTS="$CACHE/results"
STATUS="$RESULTS/bench-status.tsv"
mkdir -p "$RESULTS"
: > "$STATUS"
STARTED="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
failed=0

# record NAME RESULT SECONDS LOG
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$STATUS"; }

# run_step NAME CMD...: runs CMD with its output shown and kept in $RESULTS/bench-NAME.log.
run_step() {
  local name="$1"; shift
  local log="$RESULTS/bench-$name.log"
  local start; start=$(_ms)
  printf '==> %s\n' "$name"
  timeout --kill-after=60 "${BENCH_TIMEOUT_SECONDS:-5400}" "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local secs=$(( ($(_ms) - start) / 1000 ))
  if [ "$rc" -eq 0 ]; then
    record "$name" ok "$secs" "$log"
    printf '    %s: done in %ss\n' "$name" "$secs"
  else
    local what="FAILED (exit $rc)"
    [ "$rc" -eq 124 ] && what="FAILED (timed out after ${BENCH_TIMEOUT_SECONDS:-5400} s)"
    record "$name" "$what" "$secs" "$log"
    printf '    %s: %s after %ss; log: %s\n' "$name" "$what" "$secs" "$log" >&2
    failed=1
  fi
}

run_step setup bash scripts/setup.sh
export PATH="$CACHE/node/package/bin:$PATH"
run_step bundles npx --no-install tsx scripts/build.ts

for b in "${BENCHES[@]}"; do
  if [ -n "${BENCH_ONLY:-}" ] && [[ " $BENCH_ONLY " != *" $b "* ]]; then
    record "$b" "not run (BENCH_ONLY)" 0 ""
    printf '==> %s: not run (BENCH_ONLY=%s)\n' "$b" "$BENCH_ONLY"
  elif [ ! -f "scripts/bench-$b.ts" ]; then
    record "$b" "FAILED (scripts/bench-$b.ts does not exist)" 0 ""
    printf '==> %s: FAILED: scripts/bench-%s.ts does not exist\n' "$b" "$b" >&2
    failed=1
  else
    run_step "$b" npx --no-install tsx "scripts/bench-$b.ts"
  fi
done

npx --no-install tsx scripts/bench-report.ts --status "$STATUS" --started "$STARTED" || failed=1
exit "$failed"
