#!/usr/bin/env bash
# Builds one image per role (and one for jupiterctl), tagged jupiter/<role>:$TAG
# (default dev): release binaries from cargo, then docker/Dockerfile for each.
# Usage: docker/build-images.sh [TAG]     (CARGO_TARGET_DIR is honoured)
set -euo pipefail
TAG="${1:-dev}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROLES=(drupe-central drupe-droplet wave-home wave-worker circe-home circe-worker jupiterctl)
"$ROOT/docker/build-base.sh"
echo "building release binaries..." >&2
(cd "$ROOT" && cargo build --release -q $(printf -- '-p %s ' "${ROLES[@]}"))
STAGE="$(mktemp -d /tmp/jupiter-images.XXXXXX)"
trap 'rm -rf "$STAGE"' EXIT
for role in "${ROLES[@]}"; do
  # One small build context per role: only its binary is sent to the engine.
  mkdir -p "$STAGE/$role"
  cp "$ROOT/docker/Dockerfile" "$STAGE/$role/"
  cp "${CARGO_TARGET_DIR:-$ROOT/target}/release/$role" "$STAGE/$role/"
  # The release profile keeps line tables for local profiling; images do
  # not need them (symbols stay, so backtraces still name functions).
  strip --strip-debug "$STAGE/$role/$role" 2>/dev/null || true
done
build() {
  local role="$1"
  if ! docker build -q --build-arg ROLE="$role" -t "jupiter/$role:$TAG" "$STAGE/$role" >"$STAGE/$role.log" 2>&1; then
    echo "building jupiter/$role:$TAG failed:" >&2
    cat "$STAGE/$role.log" >&2
    return 1
  fi
  echo "built jupiter/$role:$TAG"
}
for role in "${ROLES[@]}"; do
  build "$role"
done
