#!/usr/bin/env bash
# Prove that a llama-server binary does its job on this machine: start it on the model, wait for
# /health, generate a few tokens through /v1/chat/completions, stop it. `--version` is not
# enough: a binary built for CPU extensions this machine lacks (or that are broken here, such
# as ggml's AMX path under some hypervisors) starts, prints its version, and dies loading the
# model.
#   scripts/smoke-llama-server.sh BINARY [MODEL]
# MODEL defaults to FIXBENCH_MODEL, else the SmolLM2 file scripts/fetch-model.sh caches.
# Env: FIXBENCH_SMOKE_TIMEOUT (seconds for /health and for the answer, default 90).
# Exit 0 and prints "ok: <n> tokens in <ms> ms" when it serves; else exit 1 with one line on
# stderr saying how it failed (exit code or signal name), then the last lines of its log.
set -euo pipefail

BIN="${1:?usage: smoke-llama-server.sh BINARY [MODEL]}"
CACHE="${FIXBENCH_CACHE:-$HOME/.cache/fixbench}"
MODEL="${2:-${FIXBENCH_MODEL:-$CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf}}"
TIMEOUT="${FIXBENCH_SMOKE_TIMEOUT:-90}"

fail() {
    echo "smoke: $BIN $1" >&2
    if [[ -s "${LOG:-}" ]]; then echo "--- last lines of its log:" >&2; tail -n 15 "$LOG" >&2; fi
    exit 1
}
# "exited with code N" or "was killed by SIGSEGV (signal 11)" for a status from `wait`.
how_it_died() {
    local rc="$1"
    if (( rc > 128 )) && name="$(kill -l $((rc - 128)) 2>/dev/null)"; then
        echo "was killed by SIG$name (signal $((rc - 128)))"
    else
        echo "exited with code $rc"
    fi
}

[[ -x "$BIN" ]] || fail "is not an executable file"
[[ -s "$MODEL" ]] || { echo "smoke: model not found at $MODEL: run scripts/fetch-model.sh" >&2; exit 1; }
command -v curl >/dev/null || { echo "smoke: curl not found: apt-get install -y curl" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/fixbench-smoke.XXXXXX")"
LOG="$WORK/llama-server.log"
PID=
cleanup() {
    if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
URL="http://127.0.0.1:$PORT"
"$BIN" -m "$MODEL" --host 127.0.0.1 --port "$PORT" -c 512 -np 1 -t 1 </dev/null >"$LOG" 2>&1 &
PID=$!

started=$SECONDS
until [[ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$URL/health" 2>/dev/null || true)" == 200 ]]; do
    if ! kill -0 "$PID" 2>/dev/null; then
        # (bash's own "Segmentation fault" notice is dropped: the line below says it.)
        rc=0; { wait "$PID"; } 2>/dev/null || rc=$?; PID=
        fail "$(how_it_died "$rc") while starting on $(basename "$MODEL")"
    fi
    (( SECONDS - started < TIMEOUT )) || fail "did not answer /health within ${TIMEOUT} s"
    sleep 0.2
done

BODY='{"messages":[{"role":"user","content":"Say hello."}],"max_tokens":4,"temperature":0}'
ANSWER="$WORK/answer.json"
code="$(curl -s -o "$ANSWER" -m "$TIMEOUT" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d "$BODY" "$URL/v1/chat/completions" 2>/dev/null || true)"
if ! kill -0 "$PID" 2>/dev/null; then
    rc=0; { wait "$PID"; } 2>/dev/null || rc=$?; PID=
    fail "$(how_it_died "$rc") while generating"
fi
[[ "$code" == 200 ]] || fail "answered /v1/chat/completions with HTTP ${code:-nothing}"
summary="$(python3 - "$ANSWER" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))
n = a["usage"]["completion_tokens"]
assert n > 0, "no tokens generated"
assert isinstance(a["choices"][0]["message"]["content"], str)
print(f'{n} tokens in {a["timings"]["predicted_ms"] + a["timings"]["prompt_ms"]:.0f} ms')
PY
)" || fail "gave an answer without generated tokens: $(head -c 300 "$ANSWER")"
echo "ok: $summary"
