#!/bin/sh
# tag TAG INPUT...: every line prefixed with "TAG:", written to ${stem}_TAG.txt.
set -eu
tag=$1
shift
stem=${JUPITER_INPUT_ID%.*}
LC_ALL=C awk -v tag="$tag" '{ print tag ":" $0 }' "$@" > "$JUPITER_OUTPUT_DIR/${stem}_${tag}.txt"
