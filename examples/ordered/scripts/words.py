"""words: two files with different name prefixes (before the first '_'),
``{base}_words`` (one word a line) and ``{base}-long_words`` (the words of
more than four letters). tally waits for 1 file, so it is called once for
each prefix."""
import os


def task(filename, pathin, pathout):
    base = filename.split("_")[0]
    with open(os.path.join(pathin, filename)) as f:
        words = f.read().split()
    outputs = []
    for name, chosen in (
        ("%s_words" % base, words),
        ("%s-long_words" % base, [w for w in words if len(w) > 4]),
    ):
        out = os.path.join(pathout, name)
        with open(out, "w") as f:
            f.write("".join(w + "\n" for w in chosen))
        outputs.append(out)
    return outputs
