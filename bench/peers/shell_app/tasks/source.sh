#!/bin/sh
# source: the input's words, one per line, lower-cased, in order.
set -eu
export LC_ALL=C
tr -cs 'A-Za-z0-9' '\n' < "$1" | tr 'A-Z' 'a-z' > "$JUPITER_OUTPUT_DIR/${JUPITER_INPUT_ID%.*}.words"
