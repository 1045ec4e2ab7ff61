"""upper: its one input in upper case."""
import os


def task(filename, pathin, pathout):
    base = filename.split("_")[0]
    with open(os.path.join(pathin, filename)) as f:
        text = f.read()
    out = os.path.join(pathout, "%s_upper" % base)
    with open(out, "w") as f:
        f.write(text.upper())
    return [out]
