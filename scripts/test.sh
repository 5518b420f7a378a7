#!/usr/bin/env bash
# The test command (README, .ci/run): set-up of every real component, type
# check, lint, the esbuild bundles, then the unit and integration tests.
# Prints each step with its duration and a closing "N passed, N failed" line.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

total_start=$(_ms)
bash scripts/setup.sh
export PATH="$CACHE/node/package/bin:$PATH"

step "type check (tsc --noEmit)" npx --no-install tsc --noEmit
step "lint (eslint)" npx --no-install eslint --max-warnings=0 .
step "bundles (esbuild, from the template's build metadata)" npx --no-install tsx scripts/build.ts

results="$CACHE/jest-results.json"
rm -f "$results"
jest_rc=0
step_jest() {
  # Integration suites start real servers on distinct loopback addresses; two workers fit two cores.
  # --forceExit: every suite stops what it started in afterAll; a stray SDK socket must not hang CI.
  npx --no-install jest --maxWorkers=2 --forceExit --json --outputFile="$results" "$@" || jest_rc=$?
  return 0
}
step "tests (jest: unit and integration)" step_jest "$@"

# Orphans of a crashed worker would outlive the run: stop any left behind.
pkill -KILL -P 1 -f "$CACHE/bin/spicedb serve" 2>/dev/null || true

node -e '
  const r = require(process.argv[1]);
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`\nsuites: ${r.numPassedTestSuites} passed, ${r.numFailedTestSuites} failed`);
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
  if (skipped) console.log("skipped tests count as failures here: a test that does not run proves nothing");
  process.exit(r.numFailedTests || r.numFailedTestSuites || skipped || !r.numTotalTests ? 1 : 0);
' "$results" || jest_rc=1
printf 'total: %s\n' "$(_secs "$total_start")"
exit "$jest_rc"
