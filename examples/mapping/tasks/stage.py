"""One stage of the mapping example: burn a fixed amount of CPU in pure
Python, then write this stage's outputs. Deterministic: the same input gives
the same bytes, so a run can be checked against a direct run.

Usage (as Jupiter runs it): stage.py STAGE INPUT...
Environment: JUPITER_OUTPUT_DIR, JUPITER_INPUT_ID (see the README).
"""
import hashlib
import os
import random
import sys

# Work units of each stage: loop iterations of `crunch` (about 0.1 s per
# 1,000,000 on one core of the reference machine).
WORK = {"ingest": 2_000_000, "detect": 4_000_000, "classify": 4_000_000,
        "track": 4_000_000, "fuse": 2_000_000}
# Bytes each stage sends to each child.
OUT_BYTES = {"ingest": 1_500_000, "detect": 1_000_000, "classify": 1_000_000,
             "track": 1_000_000}
CHILDREN = {"ingest": ["detect", "classify", "track"],
            "detect": ["fuse"], "classify": ["fuse"], "track": ["fuse"]}


def crunch(seed: int, units: int) -> int:
    acc = seed & 0xFFFFFFFF
    for i in range(units):
        acc = (acc * 1103515245 + 12345 + i) & 0xFFFFFFFF
    return acc


def main() -> None:
    stage, inputs = sys.argv[1], sys.argv[2:]
    out_dir = os.environ["JUPITER_OUTPUT_DIR"]
    stem = os.environ["JUPITER_INPUT_ID"].split(".")[0]
    digest = hashlib.sha256(stage.encode())
    for path in inputs:
        with open(path, "rb") as f:
            digest.update(f.read())
    seed = int.from_bytes(digest.digest()[:8], "big")
    acc = crunch(seed, WORK[stage])
    rng = random.Random(acc)
    if stage == "fuse":
        with open(os.path.join(out_dir, f"{stem}.fused"), "w") as f:
            f.write(f"{stem} {acc:08x} {digest.hexdigest()}\n")
        return
    for child in CHILDREN[stage]:
        name = f"{stem}_{child}.bin"
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(rng.randbytes(OUT_BYTES[stage]))


if __name__ == "__main__":
    main()
