#!/usr/bin/env bash
# Creates bench/saga/.venv (if missing) and installs the pinned SAGA reference
# package. Idempotent: re-running only verifies the install.
set -euo pipefail

SAGA_PIN="anrg-saga==2.0.2"   # newest release that supports Python 3.11 (2.0.3+ need >=3.12)
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
PY="${PYTHON:-python3}"

die() { echo "setup.sh: error: $*" >&2; exit 1; }

command -v "$PY" >/dev/null 2>&1 || die "'$PY' not found (set PYTHON=/path/to/python3.11+)"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || die "Python >= 3.11 required, found $("$PY" --version 2>&1)"

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup.sh: creating venv at $VENV"
  "$PY" -m venv "$VENV" 2>/dev/null \
    || die "could not create venv (on Debian: apt-get install python3-venv)"
fi

if "$VENV/bin/python" - "$SAGA_PIN" <<'PYEOF' 2>/dev/null
import sys
from importlib.metadata import version
want = sys.argv[1].split("==")[1]
sys.exit(0 if version("anrg-saga") == want else 1)
PYEOF
then
  echo "setup.sh: $SAGA_PIN already installed in $VENV"
else
  echo "setup.sh: installing $SAGA_PIN into $VENV (quiet)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$SAGA_PIN" \
    || die "pip install $SAGA_PIN failed (needs PyPI access)"
fi

"$VENV/bin/python" -c 'import saga, saga.schedulers; from saga.schedulers import HeftScheduler, CpopScheduler' \
  || die "installed SAGA does not import"
echo "setup.sh: ok ($("$VENV/bin/python" --version), $SAGA_PIN). Run: $VENV/bin/python $HERE/run_saga.py --help"
