#!/usr/bin/env bash
# The whole check: lint, types, contract drift, then the tap suite on embedded PGlite and,
# when TEST_DATABASE_URL is set, again on that PostgreSQL database.
set -uo pipefail
cd "$(dirname "$0")/.."

npx biome check . || exit 1
npx tsc -p . || exit 1
bash scripts/generate-contract.sh --check || exit 1
# Breaking changes since the last released contract must be declared in CHANGELOG.md.
npx tsx scripts/contract-diff.ts || exit 1

# Test files load one migrated embedded database from here instead of each creating their own.
TEST_TEMPLATE_DIR=$(mktemp -d)
# The production build, made once for both passes (test/production-build.test.ts runs it); inside
# the project, so that the compiled code finds node_modules as the real build does.
mkdir -p build
TEST_BUILD_DIR=$(mktemp -d build/test-XXXXXX)
export TEST_TEMPLATE_DIR TEST_BUILD_DIR
trap 'rm -rf "$TEST_TEMPLATE_DIR" "$TEST_BUILD_DIR"' EXIT
bash scripts/build.sh "$TEST_BUILD_DIR" >/dev/null || exit 1

passed=0
failed=0
skipped=0
status=0
run_suite() { # $1 = label; the rest of the environment selects the database
  local log
  log=$(mktemp)
  echo "== tests on $1"
  local started=$SECONDS
  npx tap "${@:2}" 2>&1 | tee "$log"
  local code=${PIPESTATUS[0]}
  echo "== tests on $1 took $((SECONDS - started)) s"
  local summary
  summary=$(grep -E '^# \{ total: [0-9]+' "$log" | tail -1)
  local pass fail skip
  pass=$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<<"$summary")
  fail=$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<<"$summary")
  skip=$(sed -nE 's/.*skip: ([0-9]+).*/\1/p' <<<"$summary")
  passed=$((passed + ${pass:-0}))
  failed=$((failed + ${fail:-0}))
  skipped=$((skipped + ${skip:-0}))
  if [ "$code" -ne 0 ] || [ -z "$summary" ]; then status=1; failed=$((failed > 0 ? failed : 1)); fi
  rm -f "$log"
}

TEST_DATABASE_URL= run_suite "embedded PGlite" "$@"
if [ -n "${TEST_DATABASE_URL:-}" ]; then
  # Files run side by side here too: the event feed shows an event only once every older
  # transaction of the whole cluster has ended, so tests read the feed until what they expect shows
  # (test/fixtures/feed.ts) rather than once.
  # A file that uses no test fixture and does not read TEST_DATABASE_URL cannot reach a database:
  # the first pass ran it in full, so the second runs only the others (unless arguments name what
  # to run). Any fixture counts, as most of them reach the database through fixtures/app.ts.
  if [ $# -eq 0 ]; then
    mapfile -t files < <(grep -lE "fixtures/|TEST_DATABASE_URL" test/*.test.ts)
    set -- "${files[@]}"
  fi
  run_suite "PostgreSQL" "$@"
fi
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
exit "$status"
