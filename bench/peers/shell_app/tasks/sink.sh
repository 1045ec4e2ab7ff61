#!/bin/sh
# sink: a summary of join's file: its counts, checksum and first lines.
set -eu
export LC_ALL=C
{
  wc -l -w -c < "$1"
  cksum < "$1"
  head -n 3 "$1"
} > "$JUPITER_OUTPUT_DIR/${JUPITER_INPUT_ID%.*}.summary"
