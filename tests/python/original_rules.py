#!/usr/bin/env python3
"""Runs an original-format Jupiter app on one input, in one process, by the
original's CIRCE rules (circe/original/monitor.py in ANRGUSC/Jupiter), as
the reference Jupiter's outputs are compared with.

Usage: original_rules.py APP_DIR INPUT_FILE OUTPUT_DIR

- configuration.txt: the task count, then `task inputs_to_wait_for flag child...`.
- Firing: arriving files are grouped by the name before the first '_' (else
  before the first '.'); when a group holds inputs_to_wait_for files the task
  is called with the one name, or the list of names in arrival order.
- Routing: flag 'true' sends every output to every child; otherwise the
  outputs are collected until there are as many as children and the i-th goes
  to the i-th child listed. A child 'home' (or datasink*, scheduler) receives
  every output: it lands in OUTPUT_DIR.
"""
import importlib.util
import os
import shutil
import sys
import tempfile


def key(name):
    return name.split("_")[0] if "_" in name else name.split(".")[0]


def main(app_dir, input_file, output_dir):
    with open(os.path.join(app_dir, "configuration.txt")) as f:
        rows = [line.split() for line in f if line.strip()]
    count = int(rows[0][0])
    dag = {r[0]: (int(r[1]), r[2], r[3:]) for r in rows[1 : 1 + count]}
    first = rows[1][0]
    root = tempfile.mkdtemp(prefix="original-rules-")
    state = {}
    for task in dag:
        for side in ("input", "output"):
            os.makedirs(os.path.join(root, task, side))
        state[task] = {"groups": {}, "files_out": []}
    os.makedirs(output_dir, exist_ok=True)
    pending = []  # (task, file name) in arrival order

    def deliver(task, path):
        if task == "home" or task == "scheduler" or task.startswith("datasink"):
            shutil.copy(path, os.path.join(output_dir, os.path.basename(path)))
            return
        shutil.copy(path, os.path.join(root, task, "input", os.path.basename(path)))
        pending.append((task, os.path.basename(path)))

    deliver(first, input_file)
    while pending:
        task, name = pending.pop(0)
        wait, flag, children = dag[task]
        groups = state[task]["groups"]
        groups.setdefault(key(name), []).append(name)
        if len(groups[key(name)]) != wait:
            continue
        files = groups.pop(key(name))
        filename = files[0] if len(files) == 1 else files
        pathin = os.path.join(root, task, "input") + os.sep
        pathout = os.path.join(root, task, "output") + os.sep
        spec = importlib.util.spec_from_file_location(task, os.path.join(app_dir, "scripts", task + ".py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        cwd = os.getcwd()
        os.chdir(pathin)
        try:
            returned = module.task(filename, pathin, pathout)
        finally:
            os.chdir(cwd)
        outputs = [returned] if isinstance(returned, str) else list(returned)
        for out in outputs:
            out = os.path.join(pathin, out)
            if children and children[0] == "home":
                deliver("home", out)
            elif flag == "true":
                for child in children:
                    deliver(child, out)
            else:
                files_out = state[task]["files_out"]
                files_out.append(out)
                if len(files_out) == len(children):
                    for child, paired in zip(children, files_out):
                        deliver(child, paired)
                    files_out.clear()
    shutil.rmtree(root)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
