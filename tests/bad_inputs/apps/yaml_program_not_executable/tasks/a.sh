#!/bin/sh
cat "$@"
