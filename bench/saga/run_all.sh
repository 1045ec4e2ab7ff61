#!/usr/bin/env bash
# Full reproduction: setup, generate (seed 42 unless SEED is set), schedule every
# instance with SAGA HEFT and CPoP, validate each schedule, print a TSV summary.
# Usage: bench/saga/run_all.sh [OUTDIR]   (default bench/saga/out)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${1:-$HERE/out}"
SEED="${SEED:-42}"
PY="$HERE/.venv/bin/python"
"$HERE/setup.sh" >/dev/null
"$PY" "$HERE/run_saga.py" generate --out "$OUT/instances" --seed "$SEED" 2>/dev/null
mkdir -p "$OUT/saga"
SUMMARY="$OUT/summary.tsv"
printf 'instance\talgorithm\tmakespan\tseconds\tcheck\n' >"$SUMMARY"
for prob in $(ls "$OUT"/instances/t*.json | sort -V); do
  inst="$(basename "$prob" .json)"
  for alg in heft cpop; do
    res="$OUT/saga/${inst}.${alg}.json"
    "$PY" "$HERE/run_saga.py" schedule --problem "$prob" --algorithm "$alg" --out "$res" >/dev/null
    if "$PY" "$HERE/run_saga.py" check --problem "$prob" --schedule "$res" >/dev/null; then ok=OK; else ok=INVALID; fi
    "$PY" - "$res" "$inst" "$alg" "$ok" >>"$SUMMARY" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]}\t{sys.argv[3]}\t{r['makespan']:.6f}\t{r['seconds']:.3f}\t{sys.argv[4]}")
PYEOF
    tail -n1 "$SUMMARY"
  done
done
echo "summary: $SUMMARY"
if grep -q INVALID "$SUMMARY"; then echo "some schedules are INVALID" >&2; exit 1; fi
