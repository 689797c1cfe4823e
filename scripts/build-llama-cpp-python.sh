#!/usr/bin/env bash
# Build llama-cpp-python[server] 0.3.36 (its OpenAI-compatible server, `python -m llama_cpp.server`:
# a second real inference server that is not llama-server) from its PyPI sdist, CPU only, into a
# venv cached outside the repo:
#   ${FIXBENCH_CACHE:-$HOME/.cache/fixbench}/llama-cpp-python-0.3.36/venv
# The sdist is the one scripts/build-llama-server.sh caches (llama-server-0.3.36/), downloaded
# here the same way when it is absent, and checked against its sha256.
#
# The library must run on the machine that built it, so the build is never `-march=native`:
# GGML_NATIVE=OFF and the same portable CPU choice as scripts/build-llama-server.sh (AVX2 tier on
# x86_64 when the CPU has all of it, never AVX-512 or AMX; armv8.2-a+dotprod or armv8-a on
# aarch64). FIXBENCH_LLAMA_CPU=native|baseline overrides it, as there. Multimodal (LLAVA_BUILD),
# tools, tests, examples and HTTPS are off, to keep the build short.
# The server's Python dependencies are pinned (PINS below; resolved and tested with Python 3.11).
#
# A venv is accepted, fresh or cached, only when it serves: the smoke test starts the server on
# the model (FIXBENCH_MODEL, else the SmolLM2 file scripts/fetch-model.sh caches), waits for
# GET /v1/models to answer 200 (it has no /health), and wants a 200 chat completion with usage.
# The build key (version, sdist hash, CPU choice, CMAKE_ARGS, compiler, Python, pins) is kept in
# venv/build-key; a cached venv whose key differs or that fails the smoke test is rebuilt, and the
# reason is printed in one line. `--check` only says whether the cached venv would be accepted
# (exit 0) or why not (exit 1), and builds nothing. Concurrent callers are serialised with flock.
# Env: FIXBENCH_SMOKE_TIMEOUT (seconds for the server to start and to answer, default 120).
# Prints the venv's python path on its last line.
set -euo pipefail

LCP_VERSION=0.3.36
LCP_SDIST_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
CACHE="${FIXBENCH_CACHE:-$HOME/.cache/fixbench}"
DEST="$CACHE/llama-cpp-python-$LCP_VERSION"
VENV="$DEST/venv"
PY="$VENV/bin/python"
STAMP="$VENV/build-key"
LOG="$DEST/build.log"
SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TIMEOUT="${FIXBENCH_SMOKE_TIMEOUT:-120}"
CHECK_ONLY=0
[[ "${1:-}" == --check ]] && CHECK_ONLY=1

die() { echo "build-llama-cpp-python: error: $*" >&2; exit 1; }
say() { echo "build-llama-cpp-python: $*" >&2; }

# The exact versions installed next to llama-cpp-python: its runtime dependencies, the `server`
# extra's (uvicorn, fastapi, pydantic-settings, sse-starlette, starlette-context, PyYAML) and
# theirs, and the build backend (used without build isolation, so it is pinned too).
BUILD_PINS=(scikit-build-core==1.1.2 packaging==26.4 pathspec==1.1.1)
PINS=(
    typing-extensions==4.16.0 numpy==2.4.6 diskcache==5.6.3 jinja2==3.1.6 MarkupSafe==3.0.4
    uvicorn==0.54.0 click==8.5.1 h11==0.16.0
    fastapi==0.165.0 starlette==1.10.0 anyio==4.16.0 idna==3.20 annotated-doc==0.0.7
    opentelemetry-api==1.45.2
    pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
    pydantic-settings==2.16.3 python-dotenv==1.2.4
    sse-starlette==3.7.0 starlette-context==0.3.6 PyYAML==6.0.4
)

# The CPU choice, as for llama-server (TARGET, GGML_CPU), and cached_or_lock.
. "$(dirname "${BASH_SOURCE[0]}")/llama-build-common.sh"
# LLAVA_BUILD is 0.3.36's multimodal (mtmd) library; the server imports it only for llava chat
# formats. llama-cpp-python's CMakeLists forces BUILD_SHARED_LIBS and LLAMA_BUILD_COMMON on.
CMAKE_ARGS="${GGML_CPU[*]} -DLLAVA_BUILD=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
-DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
-DGGML_BUILD_TESTS=OFF -DGGML_BUILD_EXAMPLES=OFF"
BASE="${PYTHON:-python3}"
compiler() { c++ --version 2>/dev/null | head -n 1 || echo "no c++"; }
base_python() { "$BASE" --version 2>&1 || echo "no $BASE"; }
key() {
    echo "llama-cpp-python=$LCP_VERSION sdist-sha256=$LCP_SDIST_SHA256 arch=$ARCH cpu=$TARGET compiler=$(compiler) python=$(base_python) cmake=$CMAKE_ARGS pins=${BUILD_PINS[*]} ${PINS[*]}"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Start the server from venv python $1 on the model, wait for /v1/models, ask for 8 tokens, stop
# it. Exit 0 and print "ok: ..." when it serves; else exit 1 with "smoke: ..." on stderr, then
# the last lines of its log.
smoke() (
    local py="$1" work port url pid= code started
    work="$(mktemp -d "${TMPDIR:-/tmp}/fixbench-lcp-smoke.XXXXXX")"
    stop() {
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -rf "$work"
    }
    trap stop EXIT
    fail() {
        echo "smoke: llama_cpp.server ($py) $1" >&2
        if [[ -s "$work/server.log" ]]; then echo "--- last lines of its log:" >&2; tail -n 15 "$work/server.log" >&2; fi
        exit 1
    }
    [[ -x "$py" ]] || fail "is not an executable file"
    port="$(free_port)"; url="http://127.0.0.1:$port"
    # A clean environment: the server's settings (pydantic-settings, no prefix) also come from
    # variables such as API_KEY, CONFIG_FILE, MODEL, CACHE or VERBOSE.
    env -i PATH="$PATH" HOME="$HOME" ${TMPDIR:+TMPDIR="$TMPDIR"} "$py" -m llama_cpp.server --model "$MODEL" --host 127.0.0.1 --port "$port" --n_ctx 2048 \
        </dev/null >"$work/server.log" 2>&1 &
    pid=$!
    started=$SECONDS
    until [[ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url/v1/models" 2>/dev/null || true)" == 200 ]]; do
        kill -0 "$pid" 2>/dev/null || { rc=0; wait "$pid" 2>/dev/null || rc=$?; pid=; fail "exited with status $rc while starting on $(basename "$MODEL")"; }
        (( SECONDS - started < TIMEOUT )) || fail "did not answer GET /v1/models with 200 within ${TIMEOUT} s"
        sleep 0.2
    done
    local up=$((SECONDS - started))
    code="$(curl -s -o "$work/answer.json" -m "$TIMEOUT" -w '%{http_code} %{time_total}' -H 'Content-Type: application/json' \
        -d '{"messages":[{"role":"user","content":"Say hello."}],"max_tokens":8,"temperature":0}' \
        "$url/v1/chat/completions" 2>/dev/null || true)"
    kill -0 "$pid" 2>/dev/null || { rc=0; wait "$pid" 2>/dev/null || rc=$?; pid=; fail "exited with status $rc while generating"; }
    [[ "${code%% *}" == 200 ]] || fail "answered POST /v1/chat/completions with HTTP ${code%% *}: $(head -c 300 "$work/answer.json" 2>/dev/null)"
    python3 - "$work/answer.json" "${code#* }" "$up" <<'PYEOF' || fail "gave an answer without usage or content: $(head -c 300 "$work/answer.json")"
import json, sys
a = json.load(open(sys.argv[1]))
u = a["usage"]
assert u["completion_tokens"] > 0 and u["prompt_tokens"] > 0
assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
assert isinstance(a["choices"][0]["message"]["content"], str)
print(f'ok: {u["completion_tokens"]} tokens in {float(sys.argv[2]) * 1000:.0f} ms, /v1/models answered after {sys.argv[3]} s')
PYEOF
)

# Why the cached venv cannot be used (empty when it can). Runs the smoke test.
rejected() {
    [[ -x "$PY" ]] || { echo "no cached llama-cpp-python venv"; return; }
    [[ -f "$STAMP" ]] || { echo "the cached llama-cpp-python venv has no build key (an unfinished build)"; return; }
    [[ "$(cat "$STAMP")" == "$(key)" ]] || { echo "the cached llama-cpp-python venv was built with other options ($(sed 's/ compiler=.*//' "$STAMP")), this machine needs cpu=$TARGET"; return; }
    local why
    if ! why="$(smoke "$PY" 2>&1 >/dev/null)"; then
        echo "the cached llama-cpp-python venv fails the smoke test: $(grep -m1 '^smoke: ' <<<"$why" | sed 's/^smoke: //')"
    fi
}

command -v curl >/dev/null || die "curl not found: apt-get install -y curl"
MODEL="${FIXBENCH_MODEL:-}"
if [[ -z "$MODEL" ]]; then
    MODEL="$("$SCRIPTS/fetch-model.sh" | tail -n 1)" || die "scripts/fetch-model.sh failed (the smoke test needs the model)"
fi
[[ -s "$MODEL" ]] || die "model not found at $MODEL"
cached_or_lock "$PY"

command -v "$BASE" >/dev/null || die "$BASE not found: apt-get install -y python3 python3-venv"
command -v cmake >/dev/null || die "cmake not found: apt-get install -y cmake (or run scripts/build-llama-server.sh, which installs it)"
command -v c++ >/dev/null || die "c++ not found: apt-get install -y build-essential"

# The sdist: build-llama-server.sh's copy, else our own, downloaded like it does.
SDIST="$CACHE/llama-server-$LCP_VERSION/llama_cpp_python-$LCP_VERSION.tar.gz"
if [[ ! -s "$SDIST" ]]; then
    SDIST="$DEST/llama_cpp_python-$LCP_VERSION.tar.gz"
    if [[ ! -s "$SDIST" ]]; then
        rm -rf "$DEST/dl"; mkdir -p "$DEST/dl"
        "$BASE" -m pip download -q --disable-pip-version-check --no-deps \
            --no-binary llama-cpp-python "llama-cpp-python==$LCP_VERSION" -d "$DEST/dl" >"$DEST/download.log" 2>&1 \
            || { tail -n 20 "$DEST/download.log" >&2; die "pip download llama-cpp-python==$LCP_VERSION failed (needs PyPI access); log: $DEST/download.log"; }
        mv "$DEST/dl/llama_cpp_python-$LCP_VERSION.tar.gz" "$SDIST"
        rm -rf "$DEST/dl"
    fi
fi
got="$(sha256sum "$SDIST" | cut -d' ' -f1)"
[[ "$got" == "$LCP_SDIST_SHA256" ]] || die "$SDIST has sha256 $got, expected $LCP_SDIST_SHA256 (delete it and re-run)"

# Build in place: whatever is there failed above, so it goes. The key is written only once the
# new venv has served, so an interrupted build is never accepted.
say "building llama-cpp-python $LCP_VERSION for cpu=$TARGET (about 10 min on 2 cores); log: $LOG"
rm -rf "$VENV"
t0=$SECONDS
{
    echo "CMAKE_ARGS=$CMAKE_ARGS"
    "$BASE" -m venv "$VENV" \
    && "$PY" -m pip install --disable-pip-version-check -q "${BUILD_PINS[@]}" \
    && CMAKE_ARGS="$CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
        "$PY" -m pip install --disable-pip-version-check --no-cache-dir --no-build-isolation -v \
        "llama_cpp_python[server] @ file://$SDIST" "${PINS[@]}" \
    && "$PY" -m pip check
} >"$LOG" 2>&1 || { tail -n 30 "$LOG" >&2; die "build failed; full log: $LOG"; }

if ! out="$(smoke "$PY" 2>&1)"; then
    echo "$out" >&2
    die "the llama-cpp-python just built (cpu=$TARGET) cannot serve on this machine. Way out: build with no CPU extensions (FIXBENCH_LLAMA_CPU=baseline $0); build log: $LOG"
fi
key >"$STAMP"
say "built in $((SECONDS - t0)) s and smoke-tested ($out); cpu=$TARGET"
echo "$PY"
