#!/usr/bin/env bash
# Builds one image per role (and one for jupiterctl), tagged jupiter/<role>:$TAG
# (default dev): release binaries from cargo, then docker/Dockerfile for each.
# Usage: docker/build-images.sh [TAG]
set -euo pipefail
TAG="${1:-dev}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROLES=(drupe-central drupe-droplet wave-home wave-worker circe-home circe-worker jupiterctl)
"$ROOT/docker/build-base.sh"
echo "building release binaries..." >&2
(cd "$ROOT" && cargo build --release -q $(printf -- '-p %s ' "${ROLES[@]}"))
STAGE="$(mktemp -d /tmp/jupiter-images.XXXXXX)"
trap 'rm -rf "$STAGE"' EXIT
cp "$ROOT/docker/Dockerfile" "$STAGE/"
for role in "${ROLES[@]}"; do
  cp "$ROOT/target/release/$role" "$STAGE/"
done
for role in "${ROLES[@]}"; do
  docker build -q --build-arg ROLE="$role" -t "jupiter/$role:$TAG" "$STAGE" >/dev/null
  echo "built jupiter/$role:$TAG"
done
