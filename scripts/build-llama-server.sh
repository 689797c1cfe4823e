#!/usr/bin/env bash
# Build a CPU-only llama-server from the llama.cpp tree vendored in the
# llama-cpp-python sdist (llama.cpp commit 0c1e570) and cache it outside the repo:
#   ${FIXBENCH_CACHE:-$HOME/.cache/fixbench}/llama-server-0.3.36/bin/llama-server
# Rebuilds only when that binary is missing or does not run `--version`.
# Concurrent callers are serialised with flock; the second one reuses the first's build.
# Prints the binary path on its last line.
set -euo pipefail

LCP_VERSION=0.3.36
CACHE="${FIXBENCH_CACHE:-$HOME/.cache/fixbench}"
DEST="$CACHE/llama-server-$LCP_VERSION"
BIN="$DEST/bin/llama-server"
LOG="$DEST/build.log"

die() { echo "build-llama-server: error: $*" >&2; exit 1; }
ok() { [[ -x "$BIN" ]] && "$BIN" --version >/dev/null 2>&1; }

if ok; then echo "$BIN"; exit 0; fi

mkdir -p "$DEST" || die "cannot create $DEST (set FIXBENCH_CACHE to a writable directory)"
command -v flock >/dev/null || die "flock not found: apt-get install -y util-linux"
exec 9>"$DEST/.lock"
if ! flock -n 9; then
    echo "build-llama-server: another build holds $DEST/.lock, waiting..." >&2
    flock 9
fi
# Someone else may have finished the build while we waited.
if ok; then echo "$BIN"; exit 0; fi

apt_install() {
    [[ $(id -u) -eq 0 ]] || die "$* missing and not root: install it (apt-get install -y $*) and re-run"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null 2>&1 || die "apt-get update failed"
    apt-get install -y -qq "$@" >/dev/null 2>&1 || die "apt-get install -y $* failed"
}
command -v cmake >/dev/null || apt_install cmake
if ! command -v c++ >/dev/null || ! command -v make >/dev/null; then apt_install build-essential; fi

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

echo "build-llama-server: building llama-server (about 5 min on 2 cores); log: $LOG" >&2
# LLAMA_CURL is deprecated in this tree (downloads go through cpp-httplib; LLAMA_OPENSSL=OFF
# drops HTTPS). UI: no npm build and no prebuilt download (would need network).
{
    cmake -S "$SRC" -B "$BUILD" \
        -DCMAKE_BUILD_TYPE=Release \
        -DBUILD_SHARED_LIBS=OFF \
        -DLLAMA_OPENSSL=OFF \
        -DLLAMA_BUILD_TESTS=OFF \
        -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_BUILD_APP=OFF \
        -DLLAMA_BUILD_UI=OFF \
        -DLLAMA_USE_PREBUILT_UI=OFF \
        -DLLAMA_BUILD_SERVER=ON \
        -DLLAMA_BUILD_TOOLS=ON \
        -DGGML_BUILD_TESTS=OFF \
        -DGGML_BUILD_EXAMPLES=OFF \
    && cmake --build "$BUILD" --config Release --target llama-server -j"$(nproc)"
} >"$LOG" 2>&1 || { tail -n 30 "$LOG" >&2; die "build failed; full log: $LOG"; }

mkdir -p "$DEST/bin"
install -m 0755 "$BUILD/bin/llama-server" "$BIN.tmp"
mv -f "$BIN.tmp" "$BIN"
ok || die "$BIN was built but '$BIN --version' fails; see $LOG"
echo "$BIN"
