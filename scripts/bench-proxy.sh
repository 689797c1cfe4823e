#!/usr/bin/env bash
# Recording-proxy overhead (benches/proxy.rs), two parts printed as Markdown tables:
#  1. the same streamed chat request direct, through the proxy and through a proxy recording the
#     transcript, against a real llama-server,
#     alternated in one process; median TTFT and total, and the median ratio proxied/direct;
#  2. 200 concurrent streamed requests through the proxy against a local stub upstream:
#     none may be lost or go unrecorded; p50/p99 added latency.
#
#   scripts/bench-proxy.sh [--server URL] [--pairs N] [--concurrency N] [--rounds N]
#
# Without --server it starts the test server with scripts/serve.sh on port 8097 (one slot,
# SmolLM2 on CPU; run scripts/setup.sh first) and stops it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVER=""
ARGS=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --server) SERVER="$2"; shift 2 ;;
        --pairs|--concurrency|--rounds) ARGS+=("$1" "$2"); shift 2 ;;
        -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench-proxy: unknown argument '$1'" >&2; exit 2 ;;
    esac
done

if [[ -z "$SERVER" ]]; then
    PORT=8097
    # Leave cores to the client and the proxy: the comparison is about the proxy, not about
    # how they fight llama-server's spinning threads for the CPU.
    THREADS=$(( $(nproc) > 2 ? $(nproc) - 2 : 1 ))
    SERVER="$(scripts/serve.sh start --port "$PORT" -- -t "$THREADS" | tail -n 1)"
    trap 'scripts/serve.sh stop --port '"$PORT"' >/dev/null' EXIT
fi

echo "# fixbench proxy benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores)"
echo
cargo bench --quiet --bench proxy -- --server "$SERVER" "${ARGS[@]}"
