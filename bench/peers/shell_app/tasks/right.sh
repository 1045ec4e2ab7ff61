#!/bin/sh
# right: the distinct words, ROT13-ed and sorted.
set -eu
export LC_ALL=C
tr 'a-z' 'n-za-m' < "$1" | sort -u > "$JUPITER_OUTPUT_DIR/${JUPITER_INPUT_ID%.*}.rot13"
