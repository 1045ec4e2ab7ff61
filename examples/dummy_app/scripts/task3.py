"""A middle task with one parent (task0): writes ``{base}_{task}.txt``,
the task's name on a line followed by its input."""
import os

NAME = os.path.basename(__file__).split(".")[0]


def task(filename, pathin, pathout):
    names = filename if isinstance(filename, list) else [filename]
    base = names[0].split("_")[0].split(".")[0]
    print("%s: input %s (base %s)" % (NAME, names, base))
    data = NAME.encode() + b"\n"
    for name in names:
        with open(os.path.join(pathin, name), "rb") as f:
            data += f.read()
    out = os.path.join(pathout, "%s_%s.txt" % (base, NAME))
    with open(out, "wb") as f:
        f.write(data)
    print("%s: wrote %s (%d bytes)" % (NAME, out, len(data)))
    return [out]
