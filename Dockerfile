# ecap container image (multi-stage, BuildKit: DOCKER_BUILDKIT=1).
#
#   docker build -t ecap .                          # compiles in the container
#   cargo build --release -p ecap && \
#   docker build --build-arg ECAP_BINARY=prebuilt -t ecap .   # reuses the host's binary
#
# Base images are build arguments so a registry mirror or a local base can
# stand in (deploy/docker/make-base.sh makes one with debootstrap; docs/deploy.md).
# No `# syntax=` line: the frontend built into the engine is used, so the build
# needs no registry for it.
#
# checkov:skip=CKV_DOCKER_7:the check cannot resolve "FROM binary-${ECAP_BINARY}" (a stage chosen by a build argument); every base image argument below has a fixed version tag, which deploy/test/run.py asserts

ARG RUST_IMAGE=rust:1.95-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim
ARG RUNTIME_IMAGE=debian:bookworm-slim
# source: compile in the builder stage; prebuilt: copy target/release/ecap from the context.
ARG ECAP_BINARY=source

# ---- dashboard (frontend/ → frontend/dist, embedded by crates/ecap/build.rs) ----
FROM ${NODE_IMAGE} AS web
WORKDIR /web
# The glob keeps the build working while frontend/ does not exist (Makefile is a
# file that always does, so COPY never has zero sources).
COPY Makefile fronten[d] /web/
RUN if [ -f package.json ]; then \
        if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi \
        && npm run build; \
    fi \
    && mkdir -p dist

# ---- manifests only, so the dependency layer below is reused until they change ----
FROM ${RUNTIME_IMAGE} AS plan
COPY . /src
RUN sh /src/deploy/docker/skeleton.sh /src /skeleton

# ---- builder ----
FROM ${RUST_IMAGE} AS builder
WORKDIR /src
ENV CARGO_TERM_COLOR=never
# Every dependency, compiled against stub crates: one cached layer.
COPY --from=plan /skeleton/ ./
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    cargo build --release --locked -p ecap
COPY . .
COPY --from=web /web/dist frontend/dist
# COPY keeps the files' old times: touch them so cargo rebuilds the real crates.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    find crates -name '*.rs' -exec touch {} + \
    && cargo build --release --locked -p ecap \
    && install -D -m 0755 target/release/ecap /out/ecap

FROM builder AS binary-source

# The host's binary (built on Debian bookworm, like the runtime base).
FROM ${RUNTIME_IMAGE} AS binary-prebuilt
# target/release/ecap, or target/debug/ecap for a quick test image.
ARG ECAP_PREBUILT=target/release/ecap
COPY ${ECAP_PREBUILT} /out/ecap

# A stage chosen by a build argument, not an image (the stages above).
# hadolint ignore=DL3006
FROM binary-${ECAP_BINARY} AS binary

# ---- runtime ----
FROM ${RUNTIME_IMAGE} AS runtime
ARG ECAP_UID=10001
# ca-certificates is not pinned: the newest in the base's suite is the one wanted.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
    && groupadd --system --gid "${ECAP_UID}" ecap \
    && useradd --system --uid "${ECAP_UID}" --gid ecap --home-dir /var/lib/ecap --shell /usr/sbin/nologin ecap \
    && install -d -o ecap -g ecap -m 0750 /var/lib/ecap
COPY --from=binary /out/ecap /usr/local/bin/ecap
# Defaults for a container; every setting can be overridden (README lists them).
# ECAP_ONLY=users|catalog|orders|analytics|gateway runs one service of the split shape.
ENV HOST=0.0.0.0 \
    ECAP_DATA_DIR=/var/lib/ecap \
    LOG_FORMAT=json
WORKDIR /var/lib/ecap
USER ${ECAP_UID}:${ECAP_UID}
EXPOSE 8000 8001 8002 8003 8004
# `serve` finishes in-flight requests on SIGTERM (docker stop), then exits 0.
STOPSIGNAL SIGTERM
# GET /ready on the port `serve` listens on (PORT / ECAP_ONLY); no curl in the image.
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 CMD ["ecap", "healthcheck"]
ENTRYPOINT ["ecap"]
CMD ["serve"]
