# ecap — the two commands a newcomer needs are `make run` and `make test`.
.PHONY: run test test-deploy lint bench services build clean

# Build the browser app (when Node/npm are here), then build (release) and start
# the whole platform on SQLite under ./data, with demo accounts.
run:
	@if [ -f frontend/package-lock.json ] && command -v npm >/dev/null 2>&1; then \
		cd frontend && npm ci --no-audit --no-fund && npm run build; \
	else \
		echo "make run: npm not found, building without the dashboard (the API works; / says how to add it)"; \
	fi
	cargo run --release -p ecap -- serve --demo

# Every test: format and lint gates, then unit, integration, CLI and the store
# tests on SQLite, PostgreSQL and MariaDB (those servers must answer; `make services`).
test:
	bash scripts/test.sh

# Deployment files run for real or scanned (docs/deploy.md): checkov, hadolint,
# actionlint, the image (build, health, stop) and the Compose topology on this
# machine's Docker engine. deploy/test/prepare.sh installs what it needs.
test-deploy:
	bash deploy/test/prepare.sh
	python3 deploy/test/run.py

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

# Starts PostgreSQL, MariaDB and Redis on this machine when they are not answering.
services:
	bash scripts/services.sh

bench:
	python3 bench/run.py

build:
	cargo build --release -p ecap

clean:
	cargo clean
