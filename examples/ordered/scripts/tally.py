"""tally: called once per file (inputs_to_wait_for 1); counts the words of
the one file ``filename`` names."""
import os


def task(filename, pathin, pathout):
    assert isinstance(filename, str), filename
    key = filename.split("_")[0]
    with open(os.path.join(pathin, filename)) as f:
        words = f.read().split()
    out = os.path.join(pathout, "%s_tally.txt" % key)
    with open(out, "w") as f:
        f.write("%s: %d words, first %s\n" % (key, len(words), words[0] if words else "-"))
    return [out]
