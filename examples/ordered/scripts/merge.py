"""merge: waits for 2 files with one prefix (upper's and lower's) and
interleaves their lines; ``filename`` is the list of both."""
import os


def task(filename, pathin, pathout):
    assert isinstance(filename, list) and len(filename) == 2, filename
    texts = {}
    for name in filename:
        with open(os.path.join(pathin, name)) as f:
            texts[name.split("_", 1)[1]] = f.read().splitlines()
    base = filename[0].split("_")[0]
    merged = []
    for up, low in zip(texts["upper"], texts["lower"]):
        merged += [up, low]
    out = os.path.join(pathout, "%s_merged.txt" % base)
    with open(out, "w") as f:
        f.write("".join(line + "\n" for line in merged))
    return [out]
