#!/bin/sh
# upper: the input with a-z turned into A-Z.
# Jupiter runs `upper.sh INPUT...`; every file written to $JUPITER_OUTPUT_DIR is an output.
set -eu
cat "$@" | LC_ALL=C tr 'abcdefghijklmnopqrstuvwxyz' 'ABCDEFGHIJKLMNOPQRSTUVWXYZ' \
    > "$JUPITER_OUTPUT_DIR/$JUPITER_INPUT_ID"
