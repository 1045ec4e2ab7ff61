#!/usr/bin/env python3
"""The peer side of `bench --bin peers`: an original-format Jupiter app's
task functions run by Dask distributed on the same inputs.

Usage: dask_app.py APP_DIR INPUTS_DIR WORK_DIR [--workers 3] [--threads 1] [--sequential N]

Each input becomes one Dask graph of the app's DAG: every task is a call of
the same ``task(filename, pathin, pathout)`` from ``APP_DIR/scripts``, with
the files its parents returned linked into its own input folder, as Jupiter
gives them. Every worker process imports each script once (like Jupiter's
warm interpreters). All inputs are submitted at once; prints one JSON object:
inputs, wall seconds, inputs/s, and the median makespan of SEQUENTIAL inputs
sent one at a time afterwards.
"""
import argparse
import importlib.util
import json
import os
import statistics
import sys
import time

from dask.distributed import Client, LocalCluster

MODULES = {}


def load(app_dir, task):
    module = MODULES.get(task)
    if module is None:
        script = os.path.join(app_dir, "scripts", task + ".py")
        if os.path.dirname(script) not in sys.path:  # as Jupiter's runner does
            sys.path.insert(0, os.path.dirname(script))
        spec = importlib.util.spec_from_file_location(task, script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        MODULES[task] = module
    return module


def call(app_dir, work, task, input_id, *parent_outputs):
    """One task on one input: its parents' files side by side in pathin."""
    base = os.path.join(work, input_id, task)
    pathin, pathout = os.path.join(base, "in"), os.path.join(base, "out")
    os.makedirs(pathin, exist_ok=True)
    os.makedirs(pathout, exist_ok=True)
    names = []
    for paths in parent_outputs:
        for p in paths:
            name = os.path.basename(p)
            os.link(p, os.path.join(pathin, name))
            names.append(name)
    os.chdir(pathin)
    filename = names[0] if len(names) == 1 else names
    result = load(app_dir, task).task(filename, pathin + os.sep, pathout + os.sep)
    result = [result] if isinstance(result, str) else list(result)
    return [os.path.join(pathin, p) for p in result]


def dag(app_dir):
    """task -> parents, and the ingress task, from configuration.txt."""
    with open(os.path.join(app_dir, "configuration.txt")) as f:
        rows = [line.split() for line in f if line.strip()]
    tasks = [r[0] for r in rows[1 : 1 + int(rows[0][0])]]
    parents = {t: [] for t in tasks}
    for r in rows[1 : 1 + len(tasks)]:
        for child in r[3:]:
            if child in parents:
                parents[child].append(r[0])
    return tasks, parents


def submit(client, app_dir, work, tasks, parents, input_path):
    input_id = os.path.basename(input_path)
    futures = {}
    for task in tasks:  # configuration.txt lists parents first
        if parents[task]:
            args = [futures[p] for p in parents[task]]
        else:
            args = [[input_path]]
        futures[task] = client.submit(call, app_dir, work, task, input_id, *args, key="%s-%s" % (task, input_id), pure=False)
    sinks = [t for t in tasks if not any(t in parents[c] for c in tasks)]
    return [futures[t] for t in sinks]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("app_dir")
    ap.add_argument("inputs")
    ap.add_argument("work")
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sequential", type=int, default=20)
    args = ap.parse_args()
    app_dir = os.path.abspath(args.app_dir)
    tasks, parents = dag(app_dir)
    inputs = sorted(os.path.join(os.path.abspath(args.inputs), n) for n in os.listdir(args.inputs))
    with LocalCluster(n_workers=args.workers, threads_per_worker=args.threads, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        # Import every script once per worker before the clock starts.
        client.run(lambda: len([load(app_dir, t) for t in tasks]))
        work = os.path.join(os.path.abspath(args.work), "all")
        started = time.perf_counter()
        futures = [f for p in inputs for f in submit(client, app_dir, work, tasks, parents, p)]
        client.gather(futures)
        wall = time.perf_counter() - started
        makespans = []
        work = os.path.join(os.path.abspath(args.work), "one")
        for p in inputs[: args.sequential]:
            t0 = time.perf_counter()
            client.gather(submit(client, app_dir, work, tasks, parents, p))
            makespans.append((time.perf_counter() - t0) * 1000)
    json.dump(
        {
            "inputs": len(inputs),
            "wall_s": wall,
            "inputs_per_s": len(inputs) / wall,
            "sequential_median_ms": statistics.median(makespans) if makespans else None,
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
