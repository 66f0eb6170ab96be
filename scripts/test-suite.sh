#!/usr/bin/env bash
# The whole test suite as `make test` runs it: two pytest processes at once, one per half of
# the suite, each with its own Redis database (AUTH_TEST_REDIS_DB and the one below it; each
# process creates its own PostgreSQL databases). The suite waits on servers, subprocesses and
# browsers a third of the time, so two processes finish it in about two thirds of the time on
# two cores: CI's 30-minute budget. Each line is prefixed with its half, [A] or [B]; the exit
# status is the first failing half's, and a failing half's summary (what failed, and why in
# one line each) is printed again at the very end, where a truncated CI log still shows it.
# One process: `make unit PYTEST_ARGS=tests`.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
base=${AUTH_TEST_REDIS_DB:-15}
other=$((base - 1))
if [ "$other" -lt 1 ]; then other=$((base + 1)); fi  # never Redis database 0

# Halves balanced by the time each directory took in CI (the durations it prints). One
# subdirectory of tests/integration runs in half A (2026-12-06, this machine: with it in B,
# B took 26.7 min and A 20.1; with it and tests/integration/fuzz in A, A 25.7 and B 22.3).
MOVED=(tests/integration/backup)
HALF_A=(tests/api tests/browser tests/deploy tests/e2e tests/examples tests/harness
        tests/monitoring tests/suite "${MOVED[@]}")
HALF_B=(tests/integration tests/unit "${MOVED[@]/#/--ignore=}")

# A directory of tests in neither half would never run: refuse instead.
for dir in tests/*/; do
  dir=${dir%/}
  case " ${HALF_A[*]} ${HALF_B[*]} tests/support " in *" $dir "*) continue ;; esac
  if compgen -G "$dir/test_*.py" >/dev/null || compgen -G "$dir/*/test_*.py" >/dev/null; then
    echo "scripts/test-suite.sh: $dir is in neither half; add it to HALF_A or HALF_B" >&2
    exit 2
  fi
done

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

half() {  # name redis-db paths...
  local name=$1 db=$2
  shift 2
  AUTH_TEST_REDIS_DB=$db "$PY" -m pytest -p no:cacheprovider "$@" 2>&1 \
    | sed -u "s/^/[$name] /" | tee "$logs/$name"
  return "${PIPESTATUS[0]}"
}

summary() {  # name: the failing half's short summary, from pytest's own section to its end
  echo "--- half $1 failed; its summary again:"
  # each failure's heading and its E lines (the assertion and the exception), then the summary
  grep -E '^\[.\] (_{3,} .+ _{3,}$|E  )' "$logs/$1" | head -n 80
  if grep -q '=* short test summary info =*' "$logs/$1"; then
    sed -n '/=* short test summary info =*/,$p' "$logs/$1" | grep -v '^\[.\] SKIPPED' | tail -n 60
  else  # no summary: pytest itself stopped (collection error, crash); its last words
    tail -n 40 "$logs/$1"
  fi
}

half A "$base" "${HALF_A[@]}" &
a=$!
half B "$other" "${HALF_B[@]}" &
b=$!
wait "$a"; status_a=$?
wait "$b"; status_b=$?
if [ "$status_a" -ne 0 ]; then summary A; fi
if [ "$status_b" -ne 0 ]; then summary B; fi
echo "test halves: A exit $status_a, B exit $status_b"
if [ "$status_a" -ne 0 ]; then exit "$status_a"; fi
exit "$status_b"
