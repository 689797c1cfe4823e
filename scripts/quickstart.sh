#!/usr/bin/env bash
# The first command on a fresh machine: sets everything up (scripts/setup.sh), starts a
# llama-server with SmolLM2-135M on a free loopback port, runs the suite through it with the pi
# agent and the built-in null and oracle agents, prints the table and what the server saw, writes
# the run as one HTML report (quickstart-report.html: matrix, each trial's diff and conversation),
# and stops the server again.
#   scripts/quickstart.sh [extra `fixbench run` flags, e.g. --repeat 2]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh >/dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=$(scripts/serve.sh start --port "$PORT" -- -t 1 | tail -n 1)
trap 'scripts/serve.sh stop --port "$PORT" >/dev/null 2>&1 || true' EXIT INT TERM
echo "llama-server (SmolLM2-135M, CPU) at $URL"
target/release/fixbench run --server "$URL" --agent null --agent oracle --agent pi \
    --timeout "${FIXBENCH_QUICKSTART_TIMEOUT:-60}" --label quickstart=true \
    --report quickstart-report.html "$@"
target/release/fixbench doctor --server "$URL" latest
