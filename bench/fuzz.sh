#!/usr/bin/env bash
# The long schemathesis run (issue 14 #2): the bounded run of `make test`
# (scripts/fuzz-test.sh) with a larger budget, FUZZ_BUDGET seconds in all
# (default 3600: 15 minutes per role), printing the table BENCHMARKS.md keeps.
# Reports (JUnit and schemathesis' text) go to target/fuzz/. A benchmark, so
# on the release build (schemathesis' 10 s response-time check then judges the
# shipped code: the inventory sync walks every demo order, 13–30 s on a debug
# build); ECAP_BIN chooses another binary.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${ECAP_BIN:-}" ]; then
  cargo build --quiet --release -p ecap
  export ECAP_BIN=target/release/ecap
fi
exec python3 scripts/fuzz.py --budget "${FUZZ_BUDGET:-3600}" --long "$@"
