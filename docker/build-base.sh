#!/usr/bin/env bash
# Builds the base image the Dockerfiles use, debian:bookworm-slim, locally:
# on a machine that can pull, `docker pull debian:bookworm-slim` does the
# same job and this script is not needed. Here nothing can be pulled, so a
# minimal Debian is bootstrapped from the Debian mirror and imported under
# that tag, with Python 3 (the original Jupiter's tasks need it).
#
# Usage: docker/build-base.sh [--force]     (needs root, debootstrap, docker)
set -euo pipefail
TAG="debian:bookworm-slim"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
if [[ "${1:-}" != "--force" ]] && docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "base image $TAG already present (use --force to rebuild)"
  exit 0
fi
command -v debootstrap >/dev/null || {
  echo "installing debootstrap..." >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null
}
ROOTFS="$(mktemp -d /tmp/jupiter-rootfs.XXXXXX)"
trap 'rm -rf "$ROOTFS"' EXIT
echo "bootstrapping a minimal Debian bookworm into $ROOTFS (a few minutes)..." >&2
debootstrap --variant=minbase --include=python3,ca-certificates bookworm "$ROOTFS" "$MIRROR" >/dev/null
# Keep the image small: no apt lists, no docs.
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/var/cache/apt/*.bin
tar -C "$ROOTFS" -c . | docker import - "$TAG" >/dev/null
echo "imported $TAG ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}'))"
