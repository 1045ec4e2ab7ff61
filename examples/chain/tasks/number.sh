#!/bin/sh
# number: every line prefixed with its line number, "1: ...".
set -eu
LC_ALL=C awk '{ printf "%d: %s\n", NR, $0 }' "$@" > "$JUPITER_OUTPUT_DIR/$JUPITER_INPUT_ID"
