#!/usr/bin/env python3
"""Runs one task of an original-Jupiter app (a Python file defining
``task(filename, pathin, pathout)``) for Jupiter's circe-worker; app.yaml's
``function: SCRIPT.py:NAME`` tasks run the same way, with ``--function NAME``.

Usage: python3 legacy_runner.py [--function NAME] SCRIPT_PATH PATHIN PATHOUT RESULT_JSON WAIT FILE...

The script is imported as a module named after it (``task3`` for
``scripts/task3.py``), with its folder on ``sys.path``; the working directory
is PATHIN. The FILEs (plain names inside PATHIN) come in groups of WAIT, the
task's ``inputs_to_wait_for``: ``task(filename, pathin, pathout)`` is called
once per group, ``filename`` being the group's one FILE, or the list of its
FILEs (with no FILE: once, with an empty list). Each call returns the output
paths it wrote (a list, or one string); relative ones are relative to PATHIN.
All of them are written, absolute, as a JSON list to RESULT_JSON.

``legacy_runner.py --serve`` is the warm mode circe-worker keeps running: it
takes the same arguments as JSON requests on stdin, one input after another,
importing each script once (see ``serve``).

Exit codes: 0 ok; 1 the task raised (traceback on stderr); 2 bad usage;
3 the task returned paths that do not exist.
"""

import importlib.util
import json
import os
import sys
import traceback

USAGE = "usage: legacy_runner.py [--function NAME] SCRIPT_PATH PATHIN PATHOUT RESULT_JSON WAIT FILE..."


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


def load(script, modules):
    """The script's module, imported once per interpreter."""
    module = modules.get(script)
    if module is not None:
        return module
    name = os.path.splitext(os.path.basename(script))[0]
    folder = os.path.dirname(script)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, script)
    module = importlib.util.module_from_spec(spec)
    if name not in sys.modules:  # never shadow a module already imported (json, os...)
        sys.modules[name] = module
    spec.loader.exec_module(module)
    modules[script] = module
    return module


def run(script, pathin, pathout, wait, files, modules, function="task"):
    """One input: the function once per group of WAIT files. Returns the
    exit code and the output paths (absolute)."""
    script, pathin, pathout = (os.path.abspath(a) for a in (script, pathin, pathout))
    name = os.path.splitext(os.path.basename(script))[0]
    if function != "task":
        name = "%s:%s" % (name, function)
    groups = [files[i : i + wait] for i in range(0, len(files), wait)] or [[]]
    if not os.path.isfile(script):
        return fail(2, "script %s not found" % script), []
    if not os.path.isdir(pathin):
        return fail(2, "input folder %s not found" % pathin), []
    os.makedirs(pathout, exist_ok=True)
    os.chdir(pathin)
    try:
        task = getattr(load(script, modules), function, None)
        if not callable(task):
            raise AttributeError("%s defines no function %s(filename, pathin, pathout)" % (script, function))
        paths = []
        for group in groups:
            filename = group[0] if len(group) == 1 else list(group)
            result = task(filename, pathin + os.sep, pathout + os.sep)
            paths.extend(p for p in output_paths(result, pathin) if p not in paths)
    except SystemExit as e:
        if e.code in (None, 0):
            return fail(1, "task %s called exit() instead of returning its output paths" % name), []
        traceback.print_exc()
        return fail(1, "task %s exited with %r" % (name, e.code)), []
    except BaseException:
        sys.stdout.flush()
        traceback.print_exc()
        return fail(1, "task %s failed" % name), []
    sys.stdout.flush()

    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        return fail(3, "task %s returned output paths that do not exist: %s" % (name, ", ".join(missing))), []
    return 0, paths


def main(argv):
    if argv[:1] == ["--serve"]:
        return serve()
    function = "task"
    if argv[:1] == ["--function"] and len(argv) > 1:
        function, argv = argv[1], argv[2:]
    if len(argv) < 5 or not argv[4].isdigit():
        return fail(2, USAGE)
    code, paths = run(argv[0], argv[1], argv[2], int(argv[4]) or 1, argv[5:], {}, function)
    if code == 0:
        result_json = os.path.abspath(argv[3])
        tmp = result_json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(paths, f)
        os.replace(tmp, result_json)
    return code


def read_exact(stream, n):
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def serve():
    """The warm mode: requests on stdin, replies on stdout, each a 4-byte
    big-endian length and a JSON object. A request names the same things as
    the command line (script, pathin, pathout, wait, files, optionally
    function) and ``log``, a file that gets the call's stdout and stderr
    (truncated at each call; an interpreter keeps one log for all its calls,
    so a call creates no file of its own). The reply is ``{"code": N,
    "paths": [...]}``: N as the exit code above, and the output paths.
    Modules stay imported between calls. End of stdin ends the interpreter."""
    requests = os.fdopen(os.dup(0), "rb", buffering=0)
    replies = os.fdopen(os.dup(1), "wb", buffering=0)
    # Whatever a task prints must never reach the reply stream.
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    modules = {}
    log, log_path = None, None
    while True:
        header = read_exact(requests, 4)
        if header is None:
            return 0
        body = read_exact(requests, int.from_bytes(header, "big"))
        if body is None:
            return 0
        req = json.loads(body)
        if req["log"] != log_path:
            if log is not None:
                os.close(log)
            log_path = req["log"]
            log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        else:
            os.ftruncate(log, 0)
            os.lseek(log, 0, os.SEEK_SET)
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(log, 1)
        os.dup2(log, 2)
        try:
            code, paths = run(
                req["script"],
                req["pathin"],
                req["pathout"],
                req["wait"] or 1,
                req["files"],
                modules,
                req.get("function") or "task",
            )
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
        reply = json.dumps({"code": code, "paths": paths}).encode()
        replies.write(len(reply).to_bytes(4, "big") + reply)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
