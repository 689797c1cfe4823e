#!/usr/bin/env bash
# An agent that deletes its own workdir and exits non-zero.
cd / && rm -rf "$FIXBENCH_WORKDIR"
exit 7
