"""task0, the ingress task: fans its input out to task1..task4.

Writes one file per child, ``{base}_task0_{child}.txt`` holding
``task0 -> {child}`` and the input. Its flag in configuration.txt is
``false``: the i-th file written goes to the i-th child listed there
(task1 task3 task2 task4), whatever its name, so they are written in that
order.
"""
import os

CHILDREN = ["task1", "task3", "task2", "task4"]  # configuration.txt order


def task(filename, pathin, pathout):
    names = filename if isinstance(filename, list) else [filename]
    base = names[0].split("_")[0].split(".")[0]
    print("task0: input %s (base %s) from %s" % (names, base, pathin))
    with open(os.path.join(pathin, names[0]), "rb") as f:
        content = f.read()
    outputs = []
    for child in CHILDREN:
        out = os.path.join(pathout, "%s_task0_%s.txt" % (base, child))
        with open(out, "wb") as f:
            f.write(("task0 -> %s\n" % child).encode() + content)
        print("task0: wrote %s for %s" % (out, child))
        outputs.append(out)
    return outputs
