#!/bin/sh
# left: word frequencies, most frequent first.
set -eu
export LC_ALL=C
sort "$1" | uniq -c | sort -k1,1nr -k2,2 > "$JUPITER_OUTPUT_DIR/${JUPITER_INPUT_ID%.*}.freq"
