#!/usr/bin/env python3
"""Runs one task of an original-Jupiter app (a Python file defining
``task(filename, pathin, pathout)``) for Jupiter's circe-worker.

Usage: python3 legacy_runner.py SCRIPT_PATH PATHIN PATHOUT RESULT_JSON WAIT FILE...

The script is imported as a module named after it (``task3`` for
``scripts/task3.py``), with its folder on ``sys.path``; the working directory
is PATHIN. The FILEs (plain names inside PATHIN) come in groups of WAIT, the
task's ``inputs_to_wait_for``: ``task(filename, pathin, pathout)`` is called
once per group, ``filename`` being the group's one FILE, or the list of its
FILEs (with no FILE: once, with an empty list). Each call returns the output
paths it wrote (a list, or one string); relative ones are relative to PATHIN.
All of them are written, absolute, as a JSON list to RESULT_JSON.

Exit codes: 0 ok; 1 the task raised (traceback on stderr); 2 bad usage;
3 the task returned paths that do not exist.
"""

import importlib.util
import json
import os
import sys
import traceback

USAGE = "usage: legacy_runner.py SCRIPT_PATH PATHIN PATHOUT RESULT_JSON WAIT FILE..."


def fail(code, message):
    sys.stdout.flush()
    sys.stderr.write("legacy_runner: %s\n" % message)
    sys.stderr.flush()
    return code


def output_paths(result, pathin):
    """The task's return value as a list of absolute, normalised paths."""
    if result is None:
        raise TypeError("task() returned None; it must return the list of output paths it wrote")
    if isinstance(result, (str, bytes, os.PathLike)):
        result = [result]
    paths = []
    for p in result:
        p = os.fsdecode(os.fspath(p))
        if not os.path.isabs(p):
            p = os.path.join(pathin, p)
        paths.append(os.path.normpath(p))
    return paths


def main(argv):
    if len(argv) < 5 or not argv[4].isdigit():
        return fail(2, USAGE)
    script, pathin, pathout, result_json = (os.path.abspath(a) for a in argv[:4])
    wait = int(argv[4]) or 1
    files = argv[5:]
    groups = [files[i : i + wait] for i in range(0, len(files), wait)] or [[]]
    name = os.path.splitext(os.path.basename(script))[0]
    if not os.path.isfile(script):
        return fail(2, "script %s not found" % script)
    if not os.path.isdir(pathin):
        return fail(2, "input folder %s not found" % pathin)
    os.makedirs(pathout, exist_ok=True)

    sys.path.insert(0, os.path.dirname(script))
    os.chdir(pathin)
    try:
        spec = importlib.util.spec_from_file_location(name, script)
        module = importlib.util.module_from_spec(spec)
        if name not in sys.modules:  # never shadow a module already imported (json, os...)
            sys.modules[name] = module
        spec.loader.exec_module(module)
        task = getattr(module, "task", None)
        if not callable(task):
            raise AttributeError("%s defines no function task(filename, pathin, pathout)" % script)
        paths = []
        for group in groups:
            filename = group[0] if len(group) == 1 else list(group)
            result = task(filename, pathin + os.sep, pathout + os.sep)
            paths.extend(p for p in output_paths(result, pathin) if p not in paths)
    except SystemExit as e:
        if e.code in (None, 0):
            return fail(1, "task %s called exit() instead of returning its output paths" % name)
        traceback.print_exc()
        return fail(1, "task %s exited with %r" % (name, e.code))
    except BaseException:
        sys.stdout.flush()
        traceback.print_exc()
        return fail(1, "task %s failed" % name)
    sys.stdout.flush()

    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        return fail(3, "task %s returned output paths that do not exist: %s" % (name, ", ".join(missing)))

    tmp = result_json + ".tmp"
    with open(tmp, "w") as f:
        json.dump(paths, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, result_json)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
