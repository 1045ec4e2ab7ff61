#!/bin/sh
# join: its inputs concatenated in argument order (left's, then right's).
set -eu
stem=${JUPITER_INPUT_ID%.*}
cat "$@" > "$JUPITER_OUTPUT_DIR/${stem}.joined"
