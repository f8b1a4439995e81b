#!/usr/bin/env bash
# Builds the Debian bookworm base image that the reference servers are built FROM.
# No container registry is reachable, so the image is made with debootstrap and
# `docker import`. Idempotent: an existing image of that name is kept.
set -euo pipefail

image="${1:-xmpp-conformance/debian-base:bookworm}"
mirror="${DEBIAN_MIRROR:-}"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "base image $image already present"
  exit 0
fi

if [ -z "$mirror" ]; then
  # Use the mirror this machine's apt already trusts.
  mirror=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' \
             /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
           | grep -oE 'https?://[^ ]+' | head -n 1 || true)
  mirror="${mirror:-http://deb.debian.org/debian}"
fi

root=$(mktemp -d /tmp/debian-base.XXXXXX)
trap 'rm -rf "$root"' EXIT

echo "debootstrap bookworm from $mirror into $root"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 || {
  tail -n 30 "$root.log" >&2
  echo "debootstrap failed; full log in $root.log" >&2
  exit 1
}

security="${mirror%/debian*}/debian-security"
cat >"$root/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
SOURCES
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

tar -C "$root" -c . | docker import - "$image" >/dev/null
echo "base image $image imported"
