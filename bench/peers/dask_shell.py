#!/usr/bin/env python3
"""The peer side of `bench --bin peers --only shell`: an app.yaml app of
command tasks (bench/peers/shell_app, /bin/sh scripts) run by Dask
distributed on the same inputs.

Usage: dask_shell.py APP_DIR INPUTS_DIR WORK_DIR [--workers 3] [--threads 1]
                     [--sequential N]

Each input becomes one Dask graph of the app's DAG; every task is one
``subprocess.run`` of the task's command under Jupiter's task contract
(README, "The task contract"): the command's arguments, then the files its
parents wrote for this input, parent by parent in app.yaml's order, each
parent's sorted by name; working directory the app folder; environment
JUPITER_OUTPUT_DIR (an empty folder, every file written there is an output),
JUPITER_INPUT_ID, JUPITER_TASK and JUPITER_WORK_DIR. Parents' outputs are
handed over as paths on the shared disk (no copy). A non-zero exit fails
the run.

Before the clock starts the workers are up and every one has run a process
(warm), and one extra input has gone through the whole DAG. Then all inputs
are submitted at once (inputs/s), then the first SEQUENTIAL inputs one at a
time (makespan: submit to gathered, client side; also the median time a
task's process ran). Prints one JSON object, with the egress tasks' output
files of every input of the timed batch (for the comparison of outputs with
Jupiter's).
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time

import yaml
from dask.distributed import Client, LocalCluster


def load_app(app_dir):
    """[(name, argv, parents)] in an order with parents first."""
    with open(os.path.join(app_dir, "app.yaml")) as f:
        doc = yaml.safe_load(f)
    tasks = doc["tasks"]
    parents = {t["name"]: [] for t in tasks}
    for t in tasks:  # parents in the order they appear in app.yaml
        for child in t.get("children") or []:
            parents[child].append(t["name"])
    argv = {}
    for t in tasks:
        command = t["command"]
        command = shlex.split(command) if isinstance(command, str) else [str(c) for c in command]
        if "/" in command[0]:  # relative to the app folder, as Jupiter resolves it
            command[0] = os.path.normpath(os.path.join(app_dir, command[0]))
        argv[t["name"]] = command
    ordered, done = [], set()
    while len(ordered) < len(tasks):
        ready = [t["name"] for t in tasks if t["name"] not in done and all(p in done for p in parents[t["name"]])]
        if not ready:
            sys.exit("dask_shell.py: app.yaml has a cycle")
        for name in ready:
            ordered.append((name, argv[name], parents[name]))
            done.add(name)
    return ordered


def run_task(app_dir, work, task, argv, input_id, *parents):
    """One task on one input, by Jupiter's task contract; returns its output
    paths and how long the process ran."""
    base = os.path.join(work, input_id, task)
    out_dir, work_dir = os.path.join(base, "out"), os.path.join(base, "work")
    os.makedirs(out_dir)
    os.makedirs(work_dir)
    inputs = [p for parent in parents for p in sorted(parent["paths"], key=os.path.basename)]
    env = dict(
        os.environ,
        JUPITER_OUTPUT_DIR=out_dir,
        JUPITER_INPUT_ID=input_id,
        JUPITER_TASK=task,
        JUPITER_WORK_DIR=work_dir,
    )
    t0 = time.perf_counter()
    done = subprocess.run(argv + inputs, cwd=app_dir, env=env, stdin=subprocess.DEVNULL, capture_output=True)
    ms = (time.perf_counter() - t0) * 1000
    if done.returncode != 0:
        raise RuntimeError("%s on %s: exit %d: %s" % (task, input_id, done.returncode, done.stderr.decode()[-2000:]))
    paths = sorted(os.path.join(out_dir, n) for n in os.listdir(out_dir) if os.path.isfile(os.path.join(out_dir, n)))
    return {"paths": paths, "ms": ms}


def submit(client, app_dir, work, tasks, input_path):
    """One input's graph; returns {task: future}."""
    input_id = os.path.basename(input_path)
    futures = {}
    for name, argv, parents in tasks:
        args = [futures[p] for p in parents] if parents else [{"paths": [input_path]}]
        futures[name] = client.submit(
            run_task, app_dir, work, name, argv, input_id, *args, key="%s-%s-%s" % (name, input_id, os.path.basename(work)), pure=False
        )
    return futures


def egress(tasks):
    return [name for name, _, _ in tasks if not any(name in p for _, _, p in tasks)]


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
    tasks = load_app(app_dir)
    inputs = sorted(os.path.join(os.path.abspath(args.inputs), n) for n in os.listdir(args.inputs))
    root = os.path.abspath(args.work)
    with LocalCluster(
        n_workers=args.workers, threads_per_worker=args.threads, processes=True, dashboard_address=None
    ) as cluster, Client(cluster) as client:
        client.wait_for_workers(args.workers)
        # Warm: every worker forks a process, and one input goes through the DAG.
        client.run(lambda: subprocess.run(["/bin/true"], check=True).returncode)
        client.gather(list(submit(client, app_dir, os.path.join(root, "warm"), tasks, inputs[0]).values()))
        sinks = egress(tasks)

        work = os.path.join(root, "all")
        started = time.perf_counter()
        batch = [(os.path.basename(p), submit(client, app_dir, work, tasks, p)) for p in inputs]
        gathered = client.gather([fs[t] for _, fs in batch for t in sinks])
        wall = time.perf_counter() - started
        outputs, i = {}, 0
        for input_id, _ in batch:
            outputs[input_id] = [p for r in gathered[i : i + len(sinks)] for p in r["paths"]]
            i += len(sinks)
        del batch, gathered

        makespans, runs = [], []
        work = os.path.join(root, "one")
        for p in inputs[: args.sequential]:
            t0 = time.perf_counter()
            fs = submit(client, app_dir, work, tasks, p)
            client.gather([fs[t] for t in sinks])
            makespans.append((time.perf_counter() - t0) * 1000)
            runs.extend(r["ms"] for r in client.gather(list(fs.values())))  # after the clock
    json.dump(
        {
            "inputs": len(inputs),
            "wall_s": wall,
            "inputs_per_s": len(inputs) / wall,
            "sequential_median_ms": statistics.median(makespans) if makespans else None,
            "sequential_task_run_median_ms": statistics.median(runs) if runs else None,
            "outputs": outputs,
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
