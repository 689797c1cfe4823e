#!/usr/bin/env bash
# An agent that parks: says where it runs, starts a child, records both pids in
# $FIXBENCH_TEST_MARKS and waits for a long time (FIXBENCH_TEST_PARK=0: it returns at once).
echo "workdir=$FIXBENCH_WORKDIR home=$HOME base=${FIXBENCH_BASE_URL:-}"
if [ "${FIXBENCH_TEST_PARK:-1}" = 1 ]; then
  sleep 300 &
  child=$!
  echo "$$ $child" > "$FIXBENCH_TEST_MARKS/$FIXBENCH_PROBLEM-$$"
  wait
fi
