#!/usr/bin/env bash
# Build a CPU-only llama-server from the llama.cpp tree vendored in the llama-cpp-python sdist
# (llama.cpp commit 0c1e570) and cache it outside the repo:
#   ${FIXBENCH_CACHE:-$HOME/.cache/fixbench}/llama-server-0.3.36/bin/llama-server
#
# The binary must run on the machine that built it, whatever CPU extensions it advertises, so
# the build is never `-march=native` (ggml's default): GGML_NATIVE=OFF and a portable baseline
# picked by `uname -m` and the CPU's flags, made only of extensions known to work:
#   x86_64   AVX2 tier (SSE4.2 AVX AVX2 FMA F16C BMI2) when the CPU has all of them, else SSE4.2,
#            else none. Never AVX-512 or AMX (ggml's AMX path segfaults in its warm-up decode on
#            Xeons under KVM that advertise amx_tile/amx_int8).
#   aarch64  armv8.2-a+dotprod when the CPU has asimddp, else armv8-a (NEON).
#   other    the compiler's default target.
# FIXBENCH_LLAMA_CPU=native|baseline overrides the choice (native: ggml's -march=native, for
# benchmarks; baseline: no extensions at all). scripts/bench-llama-build.sh compares them.
#
# A binary is accepted, fresh or cached, only when scripts/smoke-llama-server.sh serves a chat
# completion with it on the model. The cache key (llama.cpp version, CPU choice, cmake flags,
# compiler) is kept in bin/build-key; a cached binary whose key differs or that fails the smoke
# test is rebuilt, and the reason is printed in one line. The smoke test's model is FIXBENCH_MODEL,
# else the SmolLM2 file scripts/fetch-model.sh caches. `--check` only says whether the cached
# binary would be accepted (exit 0) or why not (exit 1), and builds nothing.
# Concurrent callers are serialised with flock; the second one reuses the first's build.
# Prints the binary path on its last line.
set -euo pipefail

LCP_VERSION=0.3.36
CACHE="${FIXBENCH_CACHE:-$HOME/.cache/fixbench}"
DEST="$CACHE/llama-server-$LCP_VERSION"
BIN="$DEST/bin/llama-server"
STAMP="$DEST/bin/build-key"
LOG="$DEST/build.log"
SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CHECK_ONLY=0
[[ "${1:-}" == --check ]] && CHECK_ONLY=1

die() { echo "build-llama-server: error: $*" >&2; exit 1; }
say() { echo "build-llama-server: $*" >&2; }

# The CPU choice and the cmake flags that follow from it (TARGET, GGML_CPU), and cached_or_lock.
. "$(dirname "${BASH_SOURCE[0]}")/llama-build-common.sh"
# LLAMA_CURL is deprecated in this tree (downloads go through cpp-httplib; LLAMA_OPENSSL=OFF
# drops HTTPS). UI: no npm build and no prebuilt download (would need network).
CMAKE_FLAGS=(
    -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DLLAMA_OPENSSL=OFF
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF
    -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON
    -DGGML_BUILD_TESTS=OFF -DGGML_BUILD_EXAMPLES=OFF "${GGML_CPU[@]}"
)
compiler() { c++ --version 2>/dev/null | head -n 1 || echo "no c++"; }
KEY="llama-cpp-python=$LCP_VERSION arch=$ARCH cpu=$TARGET compiler=$(compiler) cmake=${CMAKE_FLAGS[*]}"

# Why the cached binary cannot be used (empty when it can). Runs the smoke test.
MODEL=
rejected() {
    [[ -x "$BIN" ]] || { echo "no cached llama-server"; return; }
    [[ -f "$STAMP" ]] || { echo "the cached llama-server has no build key (an older setup built it)"; return; }
    [[ "$(cat "$STAMP")" == "$KEY" ]] || { echo "the cached llama-server was built with other options ($(sed 's/ compiler=.*//' "$STAMP")), this machine needs cpu=$TARGET"; return; }
    local why
    if ! why="$("$SCRIPTS/smoke-llama-server.sh" "$BIN" "$MODEL" 2>&1 >/dev/null)"; then
        echo "the cached llama-server fails the smoke test: $(grep -m1 '^smoke: ' <<<"$why" | sed 's/^smoke: //')"
    fi
}

MODEL="${FIXBENCH_MODEL:-}"
if [[ -z "$MODEL" ]]; then
    MODEL="$("$SCRIPTS/fetch-model.sh" | tail -n 1)" || die "scripts/fetch-model.sh failed (the smoke test needs the model)"
fi
cached_or_lock "$BIN"

apt_install() {
    [[ $(id -u) -eq 0 ]] || die "$* missing and not root: install it (apt-get install -y $*) and re-run"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null 2>&1 || die "apt-get update failed"
    apt-get install -y -qq "$@" >/dev/null 2>&1 || die "apt-get install -y $* failed"
}
command -v cmake >/dev/null || apt_install cmake
if ! command -v c++ >/dev/null || ! command -v make >/dev/null; then apt_install build-essential; fi
command -v curl >/dev/null || apt_install curl
KEY="llama-cpp-python=$LCP_VERSION arch=$ARCH cpu=$TARGET compiler=$(compiler) cmake=${CMAKE_FLAGS[*]}"

PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null || die "python3 not found (needed for pip download)"

SDIST="$DEST/llama_cpp_python-$LCP_VERSION.tar.gz"
SRC="$DEST/src"
BUILD="$DEST/build"
if [[ ! -s "$SDIST" ]]; then
    # --no-binary only for llama-cpp-python itself: `--no-binary :all:` would also force
    # pip's metadata step to build its build dependencies (cmake!) from source.
    rm -rf "$DEST/dl"; mkdir -p "$DEST/dl"
    "$PY" -m pip download -q --disable-pip-version-check --no-deps \
        --no-binary llama-cpp-python "llama-cpp-python==$LCP_VERSION" -d "$DEST/dl" >"$DEST/download.log" 2>&1 \
        || { tail -n 20 "$DEST/download.log" >&2; die "pip download llama-cpp-python==$LCP_VERSION failed (needs PyPI access); log: $DEST/download.log"; }
    mv "$DEST/dl/llama_cpp_python-$LCP_VERSION.tar.gz" "$SDIST"
    rm -rf "$DEST/dl"
fi
if [[ ! -f "$SRC/CMakeLists.txt" ]]; then
    rm -rf "$SRC" "$DEST/extract"; mkdir -p "$DEST/extract"
    tar -xzf "$SDIST" -C "$DEST/extract" "llama_cpp_python-$LCP_VERSION/vendor/llama.cpp" \
        || die "cannot extract vendor/llama.cpp from $SDIST (delete it and re-run)"
    mv "$DEST/extract/llama_cpp_python-$LCP_VERSION/vendor/llama.cpp" "$SRC"
    rm -rf "$DEST/extract"
fi

say "building llama-server for cpu=$TARGET (about 5 min on 2 cores); log: $LOG"
# A build folder from other options would keep their cache entries: start clean.
rm -rf "$BUILD"
{
    cmake -S "$SRC" -B "$BUILD" "${CMAKE_FLAGS[@]}" \
    && cmake --build "$BUILD" --config Release --target llama-server -j"$(nproc)"
} >"$LOG" 2>&1 || { tail -n 30 "$LOG" >&2; die "build failed; full log: $LOG"; }

# Accept the new binary only once it serves; only then does it replace the cached one.
NEW="$BUILD/bin/llama-server"
if ! smoke="$("$SCRIPTS/smoke-llama-server.sh" "$NEW" "$MODEL" 2>&1)"; then
    echo "$smoke" >&2
    die "the llama-server just built (cpu=$TARGET) cannot serve on this machine. Ways out: build with no CPU extensions (FIXBENCH_LLAMA_CPU=baseline $0), or point FIXBENCH_LLAMA_SERVER at a llama-server of your own; build log: $LOG"
fi
mkdir -p "$DEST/bin"
install -m 0755 "$NEW" "$BIN.tmp"
mv -f "$BIN.tmp" "$BIN"
printf '%s\n' "$KEY" >"$STAMP"
say "built and smoke-tested ($smoke); cpu=$TARGET"
echo "$BIN"
