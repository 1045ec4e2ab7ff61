#!/usr/bin/env python3
"""SAGA (PyPI ``anrg-saga``) reference harness for Jupiter's HEFT / CPoP schedulers.

Sub-commands:
  generate --out DIR --seed S          write random problem JSON files (our CLI input format)
  schedule --problem FILE --algorithm heft|cpop
                                       run SAGA's scheduler, print {"makespan","seconds","schedule"}
  check --problem FILE --schedule FILE validate a schedule against the model; exit 1 on violation

Model (shared by Jupiter and this harness):
  run time of task t on node n      = cost(t) / speed(n)
  transfer time of edge (u -> v)    = data(u,v) / bandwidth(node(u), node(v)) if the nodes differ, else 0
  links are symmetric, listed once per unordered pair, networks are fully connected.

The process re-executes itself with PYTHONHASHSEED=0: SAGA keeps nodes/tasks in
frozensets, so its iteration order (and therefore its tie-breaking) depends on
Python's string hash seed.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

HASH_SEED = "0"
if __name__ == "__main__" and os.environ.get("PYTHONHASHSEED") != HASH_SEED:
    os.environ["PYTHONHASHSEED"] = HASH_SEED
    os.execv(sys.executable, [sys.executable] + sys.argv)

SUPER_TASK_PREFIX = "__super_"  # SAGA adds __super_source__/__super_sink__ to multi-entry/exit DAGs

# ----------------------------------------------------------------------------
# Instance set written by `generate`: (tasks, nodes, ccr-ish bandwidth regime)
# bandwidth ranges give roughly CCR ~ 0.1 ("fast"), ~1 ("mid"), ~10 ("slow")
# with costs/data both U[1,100] and speeds U[1,10].
# ----------------------------------------------------------------------------
INSTANCES = [
    (10, 4, "mid"),
    (50, 4, "slow"),
    (50, 16, "mid"),
    (100, 16, "fast"),
    (100, 64, "mid"),
    (500, 16, "mid"),
    (500, 64, "slow"),
    (1000, 16, "mid"),
    (1000, 64, "fast"),
    (2000, 16, "mid"),
]
BANDWIDTH = {"fast": (10.0, 100.0), "mid": (1.0, 10.0), "slow": (0.1, 1.0)}
COST_RANGE = (1.0, 100.0)
DATA_RANGE = (1.0, 100.0)
SPEED_RANGE = (1.0, 10.0)


def _die(msg: str, code: int = 2) -> "None":
    print(f"run_saga.py: {msg}", file=sys.stderr)
    sys.exit(code)


# ----------------------------------------------------------------------------
# generate
# ----------------------------------------------------------------------------
def random_layered_dag(rng, n_tasks: int):
    """Random layered DAG with a single entry t0 and single exit t{n-1}.

    Recipe: the n-2 inner tasks are split into L = max(1, round(sqrt(n-2))) layers
    (random sizes, each >= 1, in name order, so t-indices are a topological order).
    Layer-0 tasks depend on t0. Each task in layer k>0 gets 1-3 distinct parents:
    the first from layer k-1, the others from any earlier inner layer. Every inner
    task without a successor feeds the exit task. Returns (n, edges as (u, v)).
    """
    if n_tasks < 3:
        raise ValueError("need at least 3 tasks")
    inner = n_tasks - 2
    n_layers = max(1, min(inner, int(round(math.sqrt(inner)))))
    # random composition of `inner` into n_layers positive parts
    cuts = sorted(rng.choice(range(1, inner), size=n_layers - 1, replace=False)) if n_layers > 1 else []
    sizes = [b - a for a, b in zip([0] + list(cuts), list(cuts) + [inner])]
    layers, nxt = [], 1
    for s in sizes:
        layers.append(list(range(nxt, nxt + s)))
        nxt += s
    exit_t = n_tasks - 1
    edges = set()
    for t in layers[0]:
        edges.add((0, t))
    for k in range(1, len(layers)):
        earlier = [t for layer in layers[:k] for t in layer]
        for t in layers[k]:
            parents = {int(rng.choice(layers[k - 1]))}
            for _ in range(int(rng.integers(0, 3))):  # 0..2 extra parents
                parents.add(int(rng.choice(earlier)))
            for p in parents:
                edges.add((p, t))
    has_succ = {u for u, _ in edges}
    for layer in layers:
        for t in layer:
            if t not in has_succ:
                edges.add((t, exit_t))
    return sorted(edges)


def make_problem(rng, n_tasks: int, n_nodes: int, regime: str) -> dict:
    edges = random_layered_dag(rng, n_tasks)
    bw_lo, bw_hi = BANDWIDTH[regime]
    nodes = [{"name": f"n{i}", "speed": float(rng.uniform(*SPEED_RANGE))} for i in range(n_nodes)]
    links = [
        {"from": f"n{i}", "to": f"n{j}", "bandwidth": float(rng.uniform(bw_lo, bw_hi))}
        for i in range(n_nodes)
        for j in range(i + 1, n_nodes)
    ]
    tasks = [{"name": f"t{i}", "cost": float(rng.uniform(*COST_RANGE))} for i in range(n_tasks)]
    tedges = [{"from": f"t{u}", "to": f"t{v}", "data": float(rng.uniform(*DATA_RANGE))} for u, v in edges]
    return {"nodes": nodes, "links": links, "tasks": tasks, "edges": tedges}


def cmd_generate(args) -> None:
    import numpy as np

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = []
    for idx, (nt, nn, regime) in enumerate(INSTANCES):
        # one independent stream per instance, derived from (seed, index)
        rng = np.random.default_rng([args.seed, idx])
        prob = make_problem(rng, nt, nn, regime)
        name = f"t{nt}_n{nn}_{regime}.json"
        with open(out / name, "w") as f:
            json.dump(prob, f, indent=None, separators=(",", ":"))
            f.write("\n")
        manifest.append({"file": name, "tasks": nt, "nodes": nn, "edges": len(prob["edges"]),
                         "links": len(prob["links"]), "bandwidth": regime})
        print(f"wrote {out / name}: {nt} tasks, {len(prob['edges'])} edges, {nn} nodes, bandwidth {regime}",
              file=sys.stderr)
    with open(out / "manifest.json", "w") as f:
        json.dump({"seed": args.seed, "instances": manifest}, f, indent=2)
        f.write("\n")


# ----------------------------------------------------------------------------
# problem loading / validation
# ----------------------------------------------------------------------------
def load_problem(path: str) -> dict:
    try:
        with open(path) as f:
            p = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        _die(f"cannot read problem {path}: {e}")
    for key in ("nodes", "links", "tasks", "edges"):
        if key not in p or not isinstance(p[key], list):
            _die(f"problem {path}: missing list '{key}'")
    node_names = [n["name"] for n in p["nodes"]]
    task_names = [t["name"] for t in p["tasks"]]
    if len(set(node_names)) != len(node_names) or len(set(task_names)) != len(task_names):
        _die(f"problem {path}: duplicate node or task names")
    ns, ts = set(node_names), set(task_names)
    for n in p["nodes"]:
        if not n["speed"] > 0:
            _die(f"problem {path}: node {n['name']} has non-positive speed")
    seen = set()
    for l in p["links"]:
        a, b = l["from"], l["to"]
        if a not in ns or b not in ns or a == b:
            _die(f"problem {path}: bad link {a}-{b}")
        key = frozenset((a, b))
        if key in seen:
            _die(f"problem {path}: link {a}-{b} listed twice")
        seen.add(key)
        if not l["bandwidth"] > 0:
            _die(f"problem {path}: link {a}-{b} has non-positive bandwidth")
    for e in p["edges"]:
        if e["from"] not in ts or e["to"] not in ts:
            _die(f"problem {path}: edge {e['from']}->{e['to']} names unknown task")
    return p


def link_map(p: dict) -> dict:
    bw = {}
    for l in p["links"]:
        bw[(l["from"], l["to"])] = bw[(l["to"], l["from"])] = float(l["bandwidth"])
    return bw


# ----------------------------------------------------------------------------
# schedule
# ----------------------------------------------------------------------------
def to_saga(p: dict):
    """Problem JSON -> (saga.Network, saga.TaskGraph).

    Network.create() fills every self-loop with bandwidth +inf (so same-node
    transfer = data/inf = 0) and, for a missing pair, bandwidth 0; we require a
    fully connected network so the latter never happens.
    """
    from saga import Network, TaskGraph

    n = len(p["nodes"])
    if len(p["links"]) != n * (n - 1) // 2:
        _die(f"network is not fully connected ({len(p['links'])} links for {n} nodes)")
    network = Network.create(
        nodes=[(x["name"], float(x["speed"])) for x in p["nodes"]],
        edges=[(l["from"], l["to"], float(l["bandwidth"])) for l in p["links"]],
    )
    task_graph = TaskGraph.create(
        tasks=[(t["name"], float(t["cost"])) for t in p["tasks"]],
        dependencies=[(e["from"], e["to"], float(e["data"])) for e in p["edges"]],
    )
    # build the cached networkx views outside the timed region (pure conversion cost)
    _ = network.graph, task_graph.graph
    return network, task_graph


def cmd_schedule(args) -> None:
    import logging

    logging.getLogger().setLevel(logging.ERROR)  # silence "adding super source" warnings on stderr
    from saga.schedulers import CpopScheduler, HeftScheduler

    p = load_problem(args.problem)
    network, task_graph = to_saga(p)
    scheduler = {"heft": HeftScheduler, "cpop": CpopScheduler}[args.algorithm]()

    t0 = time.perf_counter()
    sched = scheduler.schedule(network, task_graph)
    seconds = time.perf_counter() - t0

    rows = []
    for node, tasks in sched.items():
        for st in tasks:
            if st.name.startswith(SUPER_TASK_PREFIX):
                continue  # zero-cost helper tasks SAGA added; not part of our problem
            rows.append({"task": st.name, "node": node, "start": st.start, "end": st.end})
    rows.sort(key=lambda r: (r["start"], r["end"], r["node"], r["task"]))
    makespan = max((r["end"] for r in rows), default=0.0)
    out = {"makespan": makespan, "seconds": seconds, "schedule": rows}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f)
            f.write("\n")
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


# ----------------------------------------------------------------------------
# check
# ----------------------------------------------------------------------------
def check_schedule(p: dict, s: dict, rel_tol: float = 1e-6) -> list:
    """Return a list of violation messages (empty = valid)."""
    errs = []
    speed = {n["name"]: float(n["speed"]) for n in p["nodes"]}
    cost = {t["name"]: float(t["cost"]) for t in p["tasks"]}
    bw = link_map(p)
    rows = s.get("schedule")
    if not isinstance(rows, list):
        return ["schedule file has no 'schedule' list"]
    placed = {}
    for r in rows:
        t, n = r.get("task"), r.get("node")
        if t not in cost:
            errs.append(f"unknown task {t!r}")
            continue
        if n not in speed:
            errs.append(f"task {t}: unknown node {n!r}")
            continue
        if t in placed:
            errs.append(f"task {t} scheduled more than once")
            continue
        placed[t] = (n, float(r["start"]), float(r["end"]))
    missing = [t for t in cost if t not in placed]
    if missing:
        errs.append(f"{len(missing)} task(s) not scheduled, e.g. {missing[:5]}")
    if errs:
        return errs
    horizon = max([e for _, _, e in placed.values()] + [1.0])
    tol = rel_tol * horizon  # relative to the schedule's time scale

    for t, (n, st, en) in placed.items():
        if st < -tol:
            errs.append(f"task {t}: negative start {st}")
        dur = cost[t] / speed[n]
        if abs((en - st) - dur) > tol:
            errs.append(f"task {t} on {n}: duration {en - st} != cost/speed {dur}")
    for e in p["edges"]:
        u, v, d = e["from"], e["to"], float(e["data"])
        nu, _, eu = placed[u]
        nv, sv, _ = placed[v]
        comm = 0.0 if nu == nv else d / bw[(nu, nv)]
        if sv < eu + comm - tol:
            errs.append(f"edge {u}->{v}: {v} starts at {sv} on {nv} before data arrives at "
                        f"{eu + comm} ({u} ends {eu} on {nu}, transfer {comm})")
    by_node = {}
    for t, (n, st, en) in placed.items():
        by_node.setdefault(n, []).append((st, en, t))
    for n, lst in by_node.items():
        lst.sort()
        for (s1, e1, t1), (s2, e2, t2) in zip(lst, lst[1:]):
            if s2 < e1 - tol:
                errs.append(f"node {n}: {t1} [{s1}, {e1}] overlaps {t2} [{s2}, {e2}]")
    latest = max(en for _, _, en in placed.values()) if placed else 0.0
    if "makespan" in s and abs(float(s["makespan"]) - latest) > tol:
        errs.append(f"makespan {s['makespan']} != latest end {latest}")
    return errs


def cmd_check(args) -> None:
    p = load_problem(args.problem)
    try:
        with open(args.schedule) as f:
            s = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        _die(f"cannot read schedule {args.schedule}: {e}")
    errs = check_schedule(p, s, args.rel_tol)
    if errs:
        for e in errs[:20]:
            print(f"INVALID: {e}", file=sys.stderr)
        if len(errs) > 20:
            print(f"... and {len(errs) - 20} more violation(s)", file=sys.stderr)
        sys.exit(1)
    print(f"OK: {len(s['schedule'])} tasks, makespan {max(r['end'] for r in s['schedule']):.6f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="write random problem instances")
    g.add_argument("--out", required=True)
    g.add_argument("--seed", type=int, required=True)
    s = sub.add_parser("schedule", help="schedule a problem with SAGA")
    s.add_argument("--problem", required=True)
    s.add_argument("--algorithm", required=True, choices=["heft", "cpop"])
    s.add_argument("--out", help="also write the JSON result to this file")
    c = sub.add_parser("check", help="validate a schedule against a problem")
    c.add_argument("--problem", required=True)
    c.add_argument("--schedule", required=True)
    c.add_argument("--rel-tol", type=float, default=1e-6)
    args = ap.parse_args()
    {"generate": cmd_generate, "schedule": cmd_schedule, "check": cmd_check}[args.cmd](args)


if __name__ == "__main__":
    main()
