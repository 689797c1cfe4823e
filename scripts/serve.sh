#!/usr/bin/env bash
# Run the cached CPU llama-server with the SmolLM2-135M model in the background.
# Usage: scripts/serve.sh start|stop|status [--port P] [-- extra llama-server args]
#   start   start (or reuse) a server on 127.0.0.1:P (default 8089) and wait for /health
#   stop    TERM the server, KILL it after 5 s
#   status  exit 0 and print the URL when it runs and answers /health, else exit 3
# Defaults: --metrics --slot-save-path <cache>/slots -c 8192 -np 1; extra args come after
# them, so e.g. `-- -c 4096 -np 2` overrides (llama-server keeps the last value given).
# Env: FIXBENCH_CACHE (default ~/.cache/fixbench), FIXBENCH_LLAMA_SERVER, FIXBENCH_MODEL,
#      FIXBENCH_SERVE_TIMEOUT (seconds to wait for /health, default 120).
# Files: <cache>/run/llama-server-P.pid and <cache>/run/llama-server-P.log.
# Prints the base URL (http://127.0.0.1:P) on its last line (start, status).
set -euo pipefail

CACHE="${FIXBENCH_CACHE:-$HOME/.cache/fixbench}"
BIN="${FIXBENCH_LLAMA_SERVER:-$CACHE/llama-server-0.3.36/bin/llama-server}"
MODEL="${FIXBENCH_MODEL:-$CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
TIMEOUT="${FIXBENCH_SERVE_TIMEOUT:-120}"
HOST=127.0.0.1
PORT=8089
SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

die() { echo "serve: error: $*" >&2; exit 1; }
usage() { awk 'NR>1 && !/^#/ {exit} NR>1 {sub(/^# ?/, ""); print}' "${BASH_SOURCE[0]}" >&2; exit 2; }

[[ $# -ge 1 ]] || usage
CMD="$1"; shift
EXTRA=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --port) [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || die "--port needs a number"; PORT="$2"; shift 2 ;;
        --port=*) PORT="${1#--port=}"; [[ "$PORT" =~ ^[0-9]+$ ]] || die "--port needs a number"; shift ;;
        --) shift; EXTRA=("$@"); break ;;
        -h|--help) usage ;;
        *) die "unknown argument '$1' (extra llama-server args go after --)" ;;
    esac
done

RUN="$CACHE/run"
PIDFILE="$RUN/llama-server-$PORT.pid"
LOG="$RUN/llama-server-$PORT.log"
URL="http://$HOST:$PORT"

# The pid in the pidfile, if that process is still our llama-server.
live_pid() {
    [[ -f "$PIDFILE" ]] || return 1
    local pid; pid="$(cat "$PIDFILE" 2>/dev/null)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == llama-server ]] || return 1
    echo "$pid"
}
health_code() { curl -s -o /dev/null -m 2 -w '%{http_code}' "$URL/health" 2>/dev/null || true; }

case "$CMD" in
start)
    command -v curl >/dev/null || die "curl not found: apt-get install -y curl"
    command -v setsid >/dev/null || die "setsid not found: apt-get install -y util-linux"
    [[ -x "$BIN" ]] || die "llama-server not found at $BIN: run $SCRIPTS/build-llama-server.sh"
    [[ -s "$MODEL" ]] || die "model not found at $MODEL: run $SCRIPTS/fetch-model.sh"
    mkdir -p "$RUN" "$CACHE/slots"
    if pid="$(live_pid)"; then
        [[ "$(health_code)" == 200 ]] || die "llama-server pid $pid is running on port $PORT but /health is not 200; see $LOG or run '$0 stop --port $PORT'"
        echo "serve: already running (pid $pid); extra args ignored, stop it first to change them" >&2
        echo "$URL"; exit 0
    fi
    rm -f "$PIDFILE"
    code="$(health_code)"
    [[ "$code" == 000 ]] || die "something else already answers on $URL (HTTP $code): pick another --port"
    setsid "$BIN" -m "$MODEL" --host "$HOST" --port "$PORT" \
        --metrics --slot-save-path "$CACHE/slots" -c 8192 -np 1 "${EXTRA[@]}" \
        </dev/null >"$LOG" 2>&1 &
    pid=$!
    echo "$pid" >"$PIDFILE"
    deadline=$((SECONDS + TIMEOUT))
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PIDFILE"
            rc=0; wait "$pid" || rc=$?
            echo "--- last lines of $LOG:" >&2; tail -n 30 "$LOG" >&2
            if (( rc > 128 )) && sig="$(kill -l $((rc - 128)) 2>/dev/null)"; then
                die "llama-server was killed by SIG$sig (signal $((rc - 128))) during startup: $BIN cannot run on this machine. Rebuild it with $SCRIPTS/build-llama-server.sh (it smoke-tests what it builds), or point FIXBENCH_LLAMA_SERVER at a llama-server of your own"
            fi
            die "llama-server exited with code $rc during startup (its log, above, says why: $LOG)"
        fi
        [[ "$(health_code)" == 200 ]] && break
        if (( SECONDS >= deadline )); then
            kill -KILL "$pid" 2>/dev/null || true; rm -f "$PIDFILE"
            echo "--- last lines of $LOG:" >&2; tail -n 30 "$LOG" >&2
            die "/health did not return 200 within ${TIMEOUT}s; server killed (raise FIXBENCH_SERVE_TIMEOUT?)"
        fi
        sleep 0.5
    done
    echo "$URL"
    ;;
stop)
    if pid="$(live_pid)"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "serve: pid $pid ignored TERM for 5 s, sending KILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
        rm -f "$PIDFILE"
        echo "stopped llama-server pid $pid on port $PORT"
    else
        rm -f "$PIDFILE"
        echo "not running on port $PORT"
    fi
    ;;
status)
    if pid="$(live_pid)"; then
        code="$(health_code)"
        echo "running pid $pid, /health $code, log $LOG"
        echo "$URL"
        [[ "$code" == 200 ]] || exit 3
    else
        echo "not running on port $PORT" >&2
        exit 3
    fi
    ;;
*) usage ;;
esac
