#!/usr/bin/env bash
# Creates bench/peers/.venv (if missing) with the pinned Dask the peer
# benchmark compares with. Idempotent: re-running only verifies the install.
set -euo pipefail

DASK_PIN="dask[distributed]==2024.12.1"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
PY="${PYTHON:-python3}"

die() { echo "setup.sh: error: $*" >&2; exit 1; }

command -v "$PY" >/dev/null 2>&1 || die "'$PY' not found (set PYTHON=/path/to/python3)"
if [ ! -x "$VENV/bin/python" ]; then
  echo "setup.sh: creating venv at $VENV" >&2
  "$PY" -m venv "$VENV" || die "could not create venv (on Debian: apt-get install python3-venv)"
fi
if ! "$VENV/bin/python" -c 'import dask.distributed' 2>/dev/null; then
  echo "setup.sh: installing $DASK_PIN into $VENV (quiet)" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$DASK_PIN" \
    || die "pip install $DASK_PIN failed (needs PyPI access)"
fi
"$VENV/bin/python" -c 'import dask, distributed; print("setup.sh: ok, dask", dask.__version__)' >&2
