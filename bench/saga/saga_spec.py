#!/usr/bin/env python3
"""Executable spec of SAGA 2.0.2's HEFT and CPoP, written independently of SAGA's
code paths (plain dicts/lists, no saga.Schedule), used to confirm that the
semantics documented in README.md reproduce SAGA's schedules exactly.

  python saga_spec.py --problem P.json --algorithm heft|cpop [--saga SAGA_RESULT.json]

Prints {"makespan", "cp_tasks" (CPoP), "schedule"}; with --saga also compares
task->node assignments and start times against a `run_saga.py schedule` result
and exits 1 on mismatch.

Only thing borrowed from SAGA: the *node iteration order* (order of
saga.Network.nodes, a frozenset, which depends on PYTHONHASHSEED) and the
topological order networkx yields for SAGA's task graph; both only matter for
exact ties. Pass --name-order to use sorted names instead and see if it matters.
"""
from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import sys

if __name__ == "__main__" and os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

import numpy as np


def isclose(a, b):  # numpy.isclose defaults, as used by SAGA's CPoP
    return abs(a - b) <= 1e-8 + 1e-5 * abs(b)


def load(path, name_order):
    p = json.load(open(path))
    speed = {n["name"]: float(n["speed"]) for n in p["nodes"]}
    cost = {t["name"]: float(t["cost"]) for t in p["tasks"]}
    bw = {}
    for l in p["links"]:
        bw[(l["from"], l["to"])] = bw[(l["to"], l["from"])] = float(l["bandwidth"])
    succ = {t: [] for t in cost}
    pred = {t: [] for t in cost}
    for e in p["edges"]:
        succ[e["from"]].append((e["to"], float(e["data"])))
        pred[e["to"]].append((e["from"], float(e["data"])))
    if name_order:
        nodes = sorted(speed)
        import networkx as nx
        g = nx.DiGraph()
        g.add_nodes_from(sorted(cost))
        g.add_edges_from((e["from"], e["to"]) for e in p["edges"])
        topo = list(nx.topological_sort(g))
    else:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from run_saga import to_saga
        net, tg = to_saga(p)
        nodes = [n.name for n in net.nodes]
        topo = [t.name for t in tg.topological_sort()]
    return speed, cost, bw, succ, pred, nodes, topo


def comm_mean_factor(speed, bw):
    """SAGA averages data/bandwidth over Network.edges: every unordered pair incl.
    the n self-loops (bandwidth inf -> 0). So mean = data * sum_{i<j} 1/bw_ij / (n(n+1)/2)."""
    n = len(speed)
    names = sorted(speed)
    inv = [1.0 / bw[(a, b)] for i, a in enumerate(names) for b in names[i + 1:]]
    return sum(inv) / (n * (n + 1) / 2)


def ranks(speed, cost, bw, succ, pred, topo):
    n = len(speed)
    f = comm_mean_factor(speed, bw)
    mean_inv_speed = sum(1.0 / s for s in speed.values()) / n
    mean_speed = sum(speed.values()) / n
    up = {}
    for t in reversed(topo):
        wbar = cost[t] * mean_inv_speed  # mean over nodes of cost/speed
        up[t] = wbar + max((up[s] + d * f for s, d in succ[t]), default=0.0)
    down = {}
    for t in topo:
        # NB: adds the task's OWN cost, averaged as cost/mean(speed); entry tasks get 0
        down[t] = max((down[p] + d * f + cost[t] / mean_speed for p, d in pred[t]), default=0.0)
    return up, down


def est_insertion(lst, ready, dur):
    """SAGA Schedule.get_earliest_start_time(append_only=False). lst sorted by (start,end)."""
    if not lst or ready + dur <= lst[0][0]:
        return ready
    for (ls, le, _), (rs, re_, _) in zip(lst, lst[1:]):
        if ready >= le and ready + dur <= rs:
            return ready
        elif ready < le and le + dur <= rs:
            return le
    return max(ready, lst[-1][1])


def place(t, candidates, speed, cost, bw, pred, where, timeline):
    best, best_f = None, math.inf
    for n in candidates:
        ready = 0.0
        for p, d in pred[t]:
            pn, _, pe = where[p]
            ready = max(ready, pe + (0.0 if pn == n else d / bw[(pn, n)]))
        dur = cost[t] / speed[n]
        f = est_insertion(timeline[n], ready, dur) + dur
        if f < best_f:  # strict: first node in iteration order wins ties
            best, best_f = n, f
    dur = cost[t] / speed[best]
    start = best_f - dur  # SAGA stores start = finish - duration (may differ by 1 ulp)
    where[t] = (best, start, best_f)
    lst = timeline[best]
    lst.append((start, best_f, t))
    lst.sort(key=lambda x: (x[0], x[1]))


def heft(speed, cost, bw, succ, pred, nodes, topo):
    up, _ = ranks(speed, cost, bw, succ, pred, topo)
    pos = {t: i for i, t in enumerate(reversed(topo))}  # larger = earlier in topo order
    order = sorted(up, key=lambda t: (up[t], pos[t]), reverse=True)
    where, timeline = {}, {n: [] for n in nodes}
    for t in order:
        place(t, nodes, speed, cost, bw, pred, where, timeline)
    return where, None


def cpop(speed, cost, bw, succ, pred, nodes, topo):
    up, down = ranks(speed, cost, bw, succ, pred, topo)
    rank = {t: up[t] + down[t] for t in up}
    entries = [t for t in cost if not pred[t]]
    cp_rank = max(rank[t] for t in entries)
    cp = [t for t in cost if isclose(rank[t], cp_rank)]
    cp_node = min(nodes, key=lambda n: sum(cost[t] / speed[n] for t in cp))  # first minimal
    where, timeline = {}, {n: [] for n in nodes}
    remaining = {t: len(pred[t]) for t in cost}
    pq = [(-rank[t], t) for t in entries]  # ties: smaller task NAME first (string order)
    heapq.heapify(pq)
    while pq:
        r, t = heapq.heappop(pq)
        cands = [cp_node] if isclose(-r, cp_rank) else nodes
        place(t, cands, speed, cost, bw, pred, where, timeline)
        for s, _ in succ[t]:
            remaining[s] -= 1
            if remaining[s] == 0:
                heapq.heappush(pq, (-rank[s], s))
    return where, {"cp_rank": cp_rank, "cp_tasks": cp, "cp_node": cp_node}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--problem", required=True)
    ap.add_argument("--algorithm", required=True, choices=["heft", "cpop"])
    ap.add_argument("--saga", help="run_saga.py schedule output to compare with")
    ap.add_argument("--name-order", action="store_true")
    a = ap.parse_args()
    data = load(a.problem, a.name_order)
    where, info = (heft if a.algorithm == "heft" else cpop)(*data)
    makespan = max(e for _, _, e in where.values())
    out = {"makespan": makespan, "cpop": info,
           "schedule": [{"task": t, "node": n, "start": s, "end": e} for t, (n, s, e) in where.items()]}
    if not a.saga:
        json.dump(out, sys.stdout)
        print()
        return
    ref = {r["task"]: r for r in json.load(open(a.saga))["schedule"]}
    diff_node = [t for t, (n, _, _) in where.items() if ref[t]["node"] != n]
    diff_time = [t for t, (_, s, _) in where.items() if abs(ref[t]["start"] - s) > 1e-9 * max(1, makespan)]
    refm = max(r["end"] for r in ref.values())
    extra = f", cp_tasks={len(info['cp_tasks'])} cp_node={info['cp_node']}" if info else ""
    status = "MATCH" if not diff_node and not diff_time else "DIFF"
    print(f"{status} {a.algorithm}: spec makespan {makespan:.9f} saga {refm:.9f}, "
          f"{len(diff_node)} node diffs, {len(diff_time)} start diffs{extra}")
    sys.exit(0 if status == "MATCH" else 1)


if __name__ == "__main__":
    main()
