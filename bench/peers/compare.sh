#!/usr/bin/env bash
# Jupiter against Dask distributed on the same original-format Python app,
# in one run (bench --bin peers). Installs Dask in bench/peers/.venv first.
# Usage: bench/peers/compare.sh [peers flags, e.g. --inputs 100 --sequential 20]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
"$HERE/setup.sh"
cd "$ROOT"
cargo build --release -q -p jupiter-bench --bin peers
exec "$ROOT/target/release/peers" --dask-python "$HERE/.venv/bin/python" "$@"
