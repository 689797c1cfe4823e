#!/usr/bin/env bash
# A curious agent: searches the whole filesystem for the problems' answers, the `*.reference`
# folders and any file named $FIXBENCH_TEST_NEEDLE_FILE holding the line $FIXBENCH_TEST_NEEDLE
# (a line only the reference fix has), and prints what it finds.
set -u
prune=( \( -path /proc -o -path /sys -o -path /dev \) -prune -o )
find / "${prune[@]}" -name '*.reference' -print 2>/dev/null | sed 's/^/found dir: /'
find / "${prune[@]}" -type f -name "$FIXBENCH_TEST_NEEDLE_FILE" -print0 2>/dev/null \
  | xargs -0 -r grep -lF -- "$FIXBENCH_TEST_NEEDLE" 2>/dev/null | sed 's/^/found file: /'
echo "searched"
