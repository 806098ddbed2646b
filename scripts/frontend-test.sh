#!/usr/bin/env bash
# The browser app's gate (issue 11), run by scripts/test.sh: Biome (format +
# lint), the API types against the server's OpenAPI document, Vitest, the
# production build, then the end-to-end story with axe-core and screenshots in
# Debian's Chromium against `ecap serve` on a fresh database (never a
# downloaded browser). Screenshots land in target/frontend-screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
step() { echo "== frontend: $* ($(( $(date +%s) - started ))s)"; }

command -v npm >/dev/null 2>&1 || { echo "frontend: npm is missing (Node 20 + npm 11 needed)"; exit 1; }
export CHROME_PATH=${CHROME_PATH:-/usr/bin/chromium}
if [ ! -x "$CHROME_PATH" ]; then
  step "installing Debian's chromium"
  apt-get install -y chromium >/dev/null || { apt-get update >/dev/null && apt-get install -y chromium >/dev/null; }
fi

step "npm ci"
(cd frontend && npm ci --no-audit --no-fund --loglevel=error)
step "biome check"
(cd frontend && npx biome check .)
step "build (tsc strict + vite + gzip/brotli)"
(cd frontend && npm run build --silent)
step "cargo build -p ecap (embeds frontend/dist)"
cargo build -q -p ecap
export ECAP_BIN="$PWD/target/debug/ecap"
step "API types match the server's OpenAPI document"
(cd frontend && node scripts/gen-api.mjs --check)
step "vitest"
(cd frontend && npx vitest run --reporter=dot)
step "end to end in chromium (story, axe desktop+phone, screenshots)"
(cd frontend && SHOTS_DIR="$PWD/../target/frontend-screenshots" node e2e/run.mjs)
step "passed"
