#!/usr/bin/env bash
# One-shot setup for fixbench: Python venv, model, llama-server build (smoke-tested on the model), agents (pi and
# mini-swe-agent), bubblewrap. Every step is idempotent and cached; re-running is cheap.
# Then the fixbench build itself (last lines). Prints a summary of where everything is.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
S="$ROOT/scripts"
die() { echo "setup: error: $*" >&2; exit 1; }
last() { tail -n 1 <<<"$1"; }

out="$("$S/setup-python.sh")" || die "scripts/setup-python.sh failed"; PY="$(last "$out")"
out="$("$S/fetch-model.sh")" || die "scripts/fetch-model.sh failed"; MODEL="$(last "$out")"
# Every llama-server is smoke-tested on this machine before it is used: the cached build by
# build-llama-server.sh (which rebuilds one that fails), your own (FIXBENCH_LLAMA_SERVER) here.
if [[ -n "${FIXBENCH_LLAMA_SERVER:-}" ]]; then
    SERVER="$FIXBENCH_LLAMA_SERVER"
    "$S/smoke-llama-server.sh" "$SERVER" "$MODEL" >/dev/null \
        || die "FIXBENCH_LLAMA_SERVER=$SERVER cannot serve on this machine (above); unset it to use the project's own build"
else
    out="$("$S/build-llama-server.sh")" || die "scripts/build-llama-server.sh failed"; SERVER="$(last "$out")"
fi
AGENTS="$("$S/install-agents.sh")" || die "scripts/install-agents.sh failed"

if ! command -v bwrap >/dev/null; then
    [[ $(id -u) -eq 0 ]] || die "bwrap missing and not root: run 'apt-get install -y bubblewrap' and re-run"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq bubblewrap; } >/dev/null 2>&1 \
        || die "apt-get install -y bubblewrap failed"
fi
BWRAP="$(command -v bwrap)"

# build fixbench
command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs) and re-run"
(cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"

cat <<SUMMARY
python venv   $PY
llama-server  $SERVER
model         $MODEL
bubblewrap    $BWRAP
fixbench      $ROOT/target/release/fixbench
agents (path version):
$(sed 's/^/  /' <<<"$AGENTS")
start server  $S/serve.sh start   (logs/pids in ${FIXBENCH_CACHE:-$HOME/.cache/fixbench}/run)
SUMMARY
