#!/bin/sh
# join (2 parents): left's frequencies ($1) beside right's words ($2), then
# the line, word and byte counts of both.
set -eu
export LC_ALL=C
out="$JUPITER_OUTPUT_DIR/${JUPITER_INPUT_ID%.*}.joined"
paste "$1" "$2" > "$out"
cat "$1" "$2" | wc -l -w -c >> "$out"
