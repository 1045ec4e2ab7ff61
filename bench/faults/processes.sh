#!/usr/bin/env bash
# The throughput cost of `--processes` (every role its own supervised
# process) against every role in one process: the pipeline benchmark in
# both modes, alternated, ROUNDS times each (default 3), on the same build.
# Prints one line per run and the medians.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
cargo build --release -q -p jupiterctl -p jupiter-bench
out=$(mktemp)
for i in $(seq "$ROUNDS"); do
  for mode in in-process processes; do
    flag=()
    [ "$mode" = processes ] && flag=(--processes)
    target/release/pipeline --json "${flag[@]}" >>"$out"
  done
done
python3 - "$out" <<'PY'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
by = {}
for r in runs:
    t, u = r["throughput"], r["unloaded"]
    row = (t["inputs_per_s"], u["hop_ms"]["median"], u["makespan_ms"]["median"])
    by.setdefault(r["roles"], []).append(row)
    print(f'{r["roles"]:>10}: {row[0]:6.1f} inputs/s, unloaded hop median {row[1]:5.2f} ms, makespan alone {row[2]:6.1f} ms')
med = {k: [statistics.median(c) for c in zip(*v)] for k, v in by.items()}
for k, (tp, hop, mk) in med.items():
    print(f'median {k:>10}: {tp:6.1f} inputs/s, hop {hop:5.2f} ms, makespan {mk:6.1f} ms')
a, b = med["in-process"], med["processes"]
print(f'--processes / in-process: throughput {b[0]/a[0]:.2f}x, unloaded hop {b[1]/a[1]:.2f}x, makespan alone {b[2]/a[2]:.2f}x')
PY
rm -f "$out"
