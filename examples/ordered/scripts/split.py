"""split: odd lines, even lines, and the whole text, written in that order.

Its flag in configuration.txt is ``false``: the i-th file written goes to the
i-th child listed (upper, lower, words). The names say nothing about the
children on purpose: only the order routes them.
"""
import os


def task(filename, pathin, pathout):
    base = filename.split("_")[0].split(".")[0]
    with open(os.path.join(pathin, filename)) as f:
        lines = f.read().splitlines()
    parts = [("odd", lines[0::2]), ("even", lines[1::2]), ("all", lines)]
    outputs = []
    for name, chosen in parts:
        out = os.path.join(pathout, "%s_%s" % (base, name))
        with open(out, "w") as f:
            f.write("".join(line + "\n" for line in chosen))
        outputs.append(out)
    return outputs
