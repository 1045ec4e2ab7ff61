#!/usr/bin/env bash
# Jupiter against Dask distributed, in one run (bench --bin peers): the same
# original-format Python app, and the same app of /bin/sh tasks
# (bench/peers/shell_app). Installs Dask in bench/peers/.venv first.
# Usage: bench/peers/compare.sh [peers flags, e.g. --inputs 100 --sequential 20
#                                --only python|shell --dask-threads 1]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
"$HERE/setup.sh"
cd "$ROOT"
cargo build --release -q -p jupiter-bench --bin peers
exec "$ROOT/target/release/peers" --dask-python "$HERE/.venv/bin/python" "$@"
