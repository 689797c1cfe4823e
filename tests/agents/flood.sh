#!/usr/bin/env bash
# An agent that prints hundreds of MB on stdout and some on stderr.
head -c 300000000 /dev/zero | tr '\0' 'x'
head -c 20000000 /dev/zero >&2
exit 0
