#!/usr/bin/env bash
# A slow but honest agent: waits, then fixes nothing but prints what it saw.
sleep "${FIXBENCH_TEST_SLEEP:-1}"
echo "problem: $FIXBENCH_PROBLEM"
