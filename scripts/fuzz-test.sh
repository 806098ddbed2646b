#!/usr/bin/env bash
# The bounded schemathesis run of the test command (issue 14 #2): every check,
# every phase, as anonymous, customer, merchant and admin, each on its own
# `ecap serve --demo` (SQLite, temporary data directory, random port), within
# FUZZ_BUDGET seconds of fuzzing in all (default 140; about 4–5 minutes with start-up and
# the phases schemathesis finishes past its budget). Builds the debug binary if needed
# and pip-installs schemathesis 4.x when it is missing. Exit 1 on any failure.
# The long run is bench/fuzz.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${ECAP_BIN:-}" ]; then
  cargo build --quiet -p ecap
fi
# A fixed seed: the gate replays the same cases run to run (bench/fuzz.sh explores).
exec python3 scripts/fuzz.py --budget "${FUZZ_BUDGET:-140}" --seed "${FUZZ_SEED:-20261207}" "$@"
