#!/usr/bin/env bash
# Builds the local Debian bookworm base image used when no image registry is
# reachable: debootstrap (minbase) from this machine's Debian mirror, then
# `docker import`. Tagged ecap-base/debian:bookworm (override with BASE_TAG).
# Idempotent: does nothing when the tag exists (FORCE=1 rebuilds).
set -euo pipefail
tag="${BASE_TAG:-ecap-base/debian:bookworm}"
if [[ "${FORCE:-0}" != 1 ]] && docker image inspect "$tag" >/dev/null 2>&1; then
    echo "base image $tag exists"
    exit 0
fi
# The mirror apt already uses on this machine (deb822 or one-line format).
mirror="${DEBIAN_MIRROR:-}"
if [[ -z "$mirror" ]]; then
    mirror=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -1 || true)
fi
if [[ -z "$mirror" ]]; then
    mirror=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' | grep -v security | head -1 || true)
fi
mirror="${mirror:-http://deb.debian.org/debian}"
root=$(mktemp -d /var/tmp/ecap-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "debootstrap bookworm from $mirror into $root"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 || {
    tail -30 "$root.log"
    exit 1
}
rm -f "$root.log"
# Same sources inside the image as debian:bookworm: main, updates, security.
cat >"$root/etc/apt/sources.list" <<SRC
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
SRC
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' - "$tag"
echo "built $tag ($(docker image inspect -f '{{.Size}}' "$tag") bytes)"
