#!/usr/bin/env bash
# An agent that hangs and leaves children behind: one in its process group, one in a session
# of its own, one double-forked daemon. Their pids go to $FIXBENCH_TEST_PIDFILE.
set -u
sleep 3001 & echo $! >> "$FIXBENCH_TEST_PIDFILE"
setsid sleep 3002 & echo $! >> "$FIXBENCH_TEST_PIDFILE"
( setsid bash -c 'sleep 3003 & echo $! >> "$FIXBENCH_TEST_PIDFILE"; wait' & )
sleep 3000
