#!/bin/sh
# split: odd-numbered lines to ${stem}_left.txt, even-numbered ones to ${stem}_right.txt.
set -eu
stem=${JUPITER_INPUT_ID%.*}
LC_ALL=C awk 'NR % 2 == 1' "$@" > "$JUPITER_OUTPUT_DIR/${stem}_left.txt"
LC_ALL=C awk 'NR % 2 == 0' "$@" > "$JUPITER_OUTPUT_DIR/${stem}_right.txt"
