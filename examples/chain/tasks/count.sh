#!/bin/sh
# count: the input followed by a last line "lines: N".
set -eu
LC_ALL=C awk '{ print } END { printf "lines: %d\n", NR }' "$@" > "$JUPITER_OUTPUT_DIR/$JUPITER_INPUT_ID"
