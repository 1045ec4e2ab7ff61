"""lower: its one input in lower case."""
import os


def task(filename, pathin, pathout):
    base = filename.split("_")[0]
    with open(os.path.join(pathin, filename)) as f:
        text = f.read()
    out = os.path.join(pathout, "%s_lower" % base)
    with open(out, "w") as f:
        f.write(text.lower())
    return [out]
