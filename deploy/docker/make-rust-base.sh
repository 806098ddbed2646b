#!/usr/bin/env bash
# A local stand-in for the official Rust image, for building the Dockerfile's
# compile-in-container path where no image registry is reachable: the local
# Debian base (make-base.sh) + gcc + this machine's Rust toolchain (rustup's
# toolchain directory, copied) + this machine's CA bundle (so cargo reaches
# crates.io through the same TLS setup as the host). Tagged
# ecap-base/rust:1.95-bookworm (RUST_TAG); use it with
#   --build-arg RUST_IMAGE=ecap-base/rust:1.95-bookworm
# Idempotent unless FORCE=1.
set -euo pipefail
base="${BASE_TAG:-ecap-base/debian:bookworm}"
tag="${RUST_TAG:-ecap-base/rust:1.95-bookworm}"
if [[ "${FORCE:-0}" != 1 ]] && docker image inspect "$tag" >/dev/null 2>&1; then
    echo "rust image $tag exists"
    exit 0
fi
toolchain=$(rustc --print sysroot)
toolchain=$(readlink -f "$toolchain")
docker image inspect "$base" >/dev/null 2>&1 || bash "$(dirname "$0")/make-base.sh"
cid=$(docker create --network host -v "$toolchain:/mnt/toolchain:ro" \
    -v /etc/ssl/certs/ca-certificates.crt:/mnt/ca.crt:ro "$base" sleep infinity)
trap 'docker rm -f "$cid" >/dev/null' EXIT
docker start "$cid" >/dev/null
docker exec "$cid" sh -c '
    set -e
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        gcc libc6-dev make pkg-config ca-certificates >/dev/null
    rm -rf /var/lib/apt/lists/*
    cp /mnt/ca.crt /etc/ssl/certs/ca-certificates.crt
    cp -a /mnt/toolchain /usr/local/rust
    mkdir -p /usr/local/cargo/bin
    for b in /usr/local/rust/bin/*; do ln -sf "$b" /usr/local/cargo/bin/; done
    /usr/local/cargo/bin/cargo --version'
docker commit \
    --change 'ENV CARGO_HOME=/usr/local/cargo' \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$cid" "$tag" >/dev/null
echo "built $tag"
