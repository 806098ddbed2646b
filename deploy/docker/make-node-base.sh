#!/usr/bin/env bash
# A local stand-in for node:20-bookworm-slim where no image registry is
# reachable: the local Debian base + this machine's Node.js 20 and npm (copied),
# + this machine's CA bundle (npm reaches its registry through the same TLS
# setup as the host). Tagged ecap-base/node:20-bookworm; use it with
#   --build-arg NODE_IMAGE=ecap-base/node:20-bookworm
# Idempotent unless FORCE=1.
set -euo pipefail
base="${BASE_TAG:-ecap-base/debian:bookworm}"
tag="${NODE_TAG:-ecap-base/node:20-bookworm}"
if [[ "${FORCE:-0}" != 1 ]] && docker image inspect "$tag" >/dev/null 2>&1; then
    echo "node image $tag exists"
    exit 0
fi
node=$(readlink -f "$(command -v node)")
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
docker image inspect "$base" >/dev/null 2>&1 || bash "$(dirname "$0")/make-base.sh"
cid=$(docker create --network host -v "$node:/mnt/node:ro" -v "$npm_dir:/mnt/npm:ro" \
    -v /etc/ssl/certs/ca-certificates.crt:/mnt/ca.crt:ro "$base" sleep infinity)
trap 'docker rm -f "$cid" >/dev/null' EXIT
docker start "$cid" >/dev/null
docker exec "$cid" sh -c '
    set -e
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        libstdc++6 ca-certificates >/dev/null
    rm -rf /var/lib/apt/lists/*
    cp /mnt/ca.crt /etc/ssl/certs/ca-certificates.crt
    install -m 0755 /mnt/node /usr/local/bin/node
    mkdir -p /usr/local/lib/node_modules && cp -a /mnt/npm /usr/local/lib/node_modules/npm
    ln -sf ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm
    ln -sf ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx
    node --version && npm --version'
docker commit --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' "$cid" "$tag" >/dev/null
echo "built $tag"
