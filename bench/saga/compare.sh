#!/usr/bin/env bash
# Our HEFT and CPoP against SAGA's (PyPI anrg-saga) on the same random
# instances, in one run: per instance the makespan ratio (ours / SAGA) and
# the scheduler run-time ratio (SAGA / ours = how many times faster we are).
# Usage: bench/saga/compare.sh [OUTDIR]   (default bench/saga/out)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="${1:-$HERE/out}"
SEED="${SEED:-42}"
PY="$HERE/.venv/bin/python"
"$HERE/setup.sh" >/dev/null
(cd "$ROOT" && cargo build --release -q -p jupiter-bench --bin schedulers)
OURS="$ROOT/target/release/schedulers"
"$PY" "$HERE/run_saga.py" generate --out "$OUT/instances" --seed "$SEED" 2>/dev/null
mkdir -p "$OUT/saga" "$OUT/ours"
TABLE="$OUT/compare.tsv"
printf 'instance\talgorithm\tsaga_makespan\tour_makespan\tmakespan_ratio\tsaga_s\tour_s\tspeedup\n' >"$TABLE"
for prob in $(ls "$OUT"/instances/t*.json | sort -V); do
  inst="$(basename "$prob" .json)"
  for alg in heft cpop; do
    saga="$OUT/saga/${inst}.${alg}.json"
    ours="$OUT/ours/${inst}.${alg}.json"
    PYTHONHASHSEED=0 "$PY" "$HERE/run_saga.py" schedule --problem "$prob" --algorithm "$alg" --out "$saga" >/dev/null
    "$OURS" --problem "$prob" --algorithm "$alg" --check >"$ours"
    "$PY" - "$saga" "$ours" "$inst" "$alg" >>"$TABLE" <<'PYEOF'
import json, sys
s = json.load(open(sys.argv[1])); o = json.load(open(sys.argv[2]))
print(f"{sys.argv[3]}\t{sys.argv[4]}\t{s['makespan']:.6f}\t{o['makespan']:.6f}\t{o['makespan']/s['makespan']:.4f}"
      f"\t{s['seconds']:.4f}\t{o['seconds']:.6f}\t{s['seconds']/max(o['seconds'],1e-9):.0f}")
PYEOF
    tail -n1 "$TABLE"
  done
done
column -t "$TABLE"
