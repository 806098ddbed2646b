#!/usr/bin/env bash
# The test command (`make test`): lint gates, then every test of the workspace
# with nextest, then how many store/API tests ran on each database.
set -uo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check || { echo "formatting differs: run cargo fmt --all"; exit 1; }
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings || exit 1

log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast --status-level pass --final-status-level fail 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
else
  echo "(cargo-nextest not found: using cargo test)"
  cargo test --workspace --no-fail-fast 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
fi

python3 - "$log" "$status" <<'PY'
import re, sys
text = open(sys.argv[1], errors="replace").read()
status = int(sys.argv[2])
passed, failed = [], []
# nextest: "PASS [ 0.4s] (1/8) crate::binary module::test"; cargo test: "test module::test ... ok"
for m in re.finditer(r"^\s+(PASS|FAIL|SIGSEGV|TIMEOUT|SIGABRT)\s+\[[^\]]*\]\s+(?:\(\s*\d+/\d+\)\s+)?(\S+)\s+(\S+)\s*$", text, re.M):
    (passed if m.group(1) == "PASS" else failed).append(m.group(3))
for m in re.finditer(r"^test (\S+) \.\.\. (ok|FAILED)$", text, re.M):
    (passed if m.group(2) == "ok" else failed).append(m.group(1))
failed = sorted(set(failed))
print()
print("== tests per database (modules sqlite::, postgres::, mysql::)")
for db in ("sqlite", "postgres", "mysql"):
    n = sum(1 for t in passed if t.startswith(db + "::"))
    f = sum(1 for t in failed if t.startswith(db + "::"))
    print(f"  {db:<9} {n} passed, {f} failed")
if status != 0 and not failed:
    print("the test run failed before running tests (build error?)")
    sys.exit(status or 1)
print(f"tests: {len(passed)} passed, {len(failed)} failed")
sys.exit(1 if failed or status != 0 else 0)
PY
rust_status=$?

# ---- the API fuzzed from its own OpenAPI document (issue 14) -----------------
# schemathesis, every check and phase, four roles, a few minutes in all.
echo
echo "== schemathesis (scripts/fuzz-test.sh)"
bash scripts/fuzz-test.sh
fuzz_status=$?

# ---- frontend (issue 11, owned by the frontend engineer) ----------------------
# Biome, API-type drift, Vitest, build, and the end-to-end story with axe and
# screenshots in Debian's Chromium: scripts/frontend-test.sh.
echo
echo "== frontend"
bash scripts/frontend-test.sh
frontend_status=$?
exit $(( rust_status != 0 || fuzz_status != 0 || frontend_status != 0 ))
