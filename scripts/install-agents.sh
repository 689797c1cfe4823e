#!/usr/bin/env bash
# Install coding agents into a prefix local to this repo (never globally):
#   npm agents  -> .agents/npm          (npm install --prefix .agents/npm, exact pins)
#   PyPI agents -> .agents/py/<agent>   (one venv per agent: their pinned deps clash)
#   every binary is linked from .agents/bin/<binary>
# Usage: scripts/install-agents.sh            # pi and mini-swe-agent (the required pair)
#        scripts/install-agents.sh --all      # also opencode, aider, codex, claude
#        scripts/install-agents.sh --only NAME [NAME...]
# Idempotent: an agent already installed at its pinned version is not reinstalled.
# Prints "<binary path> <version>" for each agent on the last lines.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
AGENTS="$ROOT/.agents"
NPM_PREFIX="$AGENTS/npm"
PY_ROOT="$AGENTS/py"
BIN_DIR="$AGENTS/bin"

# name | kind | package | pinned version | binary | smoke-test argument | extra pip pins
# mini-swe-agent: litellm 1.106.x imports the optional `mcp` package whenever a request
# carries tools (mini's default mode), so pin litellm with its [mcp] extra.
CATALOG="
pi|npm|@mariozechner/pi-coding-agent|0.73.1|pi|--version|
mini-swe-agent|py|mini-swe-agent|2.4.6|mini|--help|litellm[mcp]==1.106.2
opencode|npm|opencode-ai|1.18.33|opencode|--version|
aider|py|aider-chat|0.86.2|aider|--version|
codex|npm|@openai/codex|0.169.0|codex|--version|
claude|npm|@anthropic-ai/claude-code|2.1.330|claude|--version|
"
DEFAULT=(pi mini-swe-agent)
ALL=(pi mini-swe-agent opencode aider codex claude)

die() { echo "install-agents: error: $*" >&2; exit 1; }
usage() { awk 'NR>1 && !/^#/ {exit} NR>1 {sub(/^# ?/, ""); print}' "${BASH_SOURCE[0]}" >&2; exit "${1:-2}"; }
entry() { grep "^$1|" <<<"$CATALOG" || true; }

WANT=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --all) WANT=("${ALL[@]}"); shift ;;
        --only) shift
                [[ $# -gt 0 && "$1" != --* ]] || die "--only needs at least one agent name (${ALL[*]})"
                while [[ $# -gt 0 && "$1" != --* ]]; do WANT+=("$1"); shift; done ;;
        -h|--help) usage 0 ;;
        *) die "unknown argument '$1' (use --all or --only NAME...; names: ${ALL[*]})" ;;
    esac
done
[[ ${#WANT[@]} -gt 0 ]] || WANT=("${DEFAULT[@]}")
NORM=()
for a in "${WANT[@]}"; do
    [[ "$a" == mini ]] && a=mini-swe-agent   # accept the binary's name too
    [[ -n "$(entry "$a")" ]] || die "unknown agent '$a' (known: ${ALL[*]})"
    [[ " ${NORM[*]-} " == *" $a "* ]] || NORM+=("$a")
done
WANT=("${NORM[@]}")

mkdir -p "$BIN_DIR" "$PY_ROOT"

npm_installed_version() {  # package -> version installed under NPM_PREFIX, or empty
    local pj="$NPM_PREFIX/node_modules/$1/package.json"
    [[ -f "$pj" ]] && node -p "require(process.argv[1]).version" "$pj" 2>/dev/null || true
}
py_installed_version() {  # agent package -> version in its venv, or empty
    local py="$PY_ROOT/$1/bin/python"
    [[ -x "$py" ]] && "$py" -c 'import sys; from importlib.metadata import version; print(version(sys.argv[1]))' "$2" 2>/dev/null || true
}
# The venv records the exact requirement list it was installed with.
py_stamp() { echo "$PY_ROOT/$1/.fixbench-requirements"; }

NPM_TODO=()
PY_TODO=()
for a in "${WANT[@]}"; do
    IFS='|' read -r name kind pkg ver bin _ extra <<<"$(entry "$a")"
    if [[ "$kind" == npm ]]; then
        [[ "$(npm_installed_version "$pkg")" == "$ver" && -x "$NPM_PREFIX/node_modules/.bin/$bin" ]] || NPM_TODO+=("$pkg@$ver")
    else
        reqs="$pkg==$ver${extra:+ $extra}"
        [[ "$(py_installed_version "$name" "$pkg")" == "$ver" && -x "$PY_ROOT/$name/bin/$bin" \
           && "$(cat "$(py_stamp "$name")" 2>/dev/null)" == "$reqs" ]] || PY_TODO+=("$name|$reqs")
    fi
done

if [[ ${#NPM_TODO[@]} -gt 0 ]]; then
    command -v node >/dev/null && command -v npm >/dev/null \
        || die "node/npm not found: apt-get install -y nodejs npm (Node >= 20.6 needed)"
    node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a==20&&b>=6)?0:1)' \
        || die "Node $(node --version) is too old: the npm agents need Node >= 20.6"
    mkdir -p "$NPM_PREFIX"
    log="$AGENTS/npm-install.log"
    npm install --prefix "$NPM_PREFIX" --save-exact --no-audit --no-fund --loglevel=error \
        "${NPM_TODO[@]}" </dev/null >"$log" 2>&1 \
        || { tail -n 30 "$log" >&2; die "npm install ${NPM_TODO[*]} failed; log: $log"; }
fi

if [[ ${#PY_TODO[@]} -gt 0 ]]; then
    BASE="${PYTHON:-python3}"
    command -v "$BASE" >/dev/null || die "python3 not found: apt-get install -y python3 python3-venv"
    for item in "${PY_TODO[@]}"; do
        IFS='|' read -r name reqs <<<"$item"
        venv="$PY_ROOT/$name"
        log="$AGENTS/py-$name-install.log"
        if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
            rm -rf "$venv"
            "$BASE" -m venv "$venv" >"$log" 2>&1 \
                || die "'$BASE -m venv $venv' failed: on Debian run 'apt-get install -y python3-venv'"
        fi
        read -r -a req_list <<<"$reqs"
        "$venv/bin/python" -m pip install -q --disable-pip-version-check "${req_list[@]}" </dev/null >>"$log" 2>&1 \
            || { tail -n 30 "$log" >&2; die "pip install $reqs failed; log: $log"; }
        echo "$reqs" >"$(py_stamp "$name")"
    done
fi

# Link binaries, then smoke-test each (--version, or --help for mini) in a throwaway HOME/config dir so
# that nothing is written to the user's real configuration.
SCRATCH="$(mktemp -d)"
trap 'rm -rf "$SCRATCH"' EXIT
REPORT=()
for a in "${WANT[@]}"; do
    IFS='|' read -r name kind pkg ver bin smoke _ <<<"$(entry "$a")"
    if [[ "$kind" == npm ]]; then target="../npm/node_modules/.bin/$bin"; got="$(npm_installed_version "$pkg")"
    else target="../py/$name/bin/$bin"; got="$(py_installed_version "$name" "$pkg")"; fi
    [[ -x "$BIN_DIR/$target" ]] || die "$name: $BIN_DIR/$target missing after install"
    [[ "$got" == "$ver" ]] || die "$name: installed version '$got' is not the pinned $ver"
    ln -sfn "$target" "$BIN_DIR/$bin"
    out="$(cd "$SCRATCH" && HOME="$SCRATCH" XDG_CONFIG_HOME="$SCRATCH/.config" XDG_DATA_HOME="$SCRATCH/.local/share" \
        XDG_CACHE_HOME="$SCRATCH/.cache" PI_OFFLINE=1 PI_CODING_AGENT_DIR="$SCRATCH/pi" \
        MSWEA_CONFIGURED=true MSWEA_GLOBAL_CONFIG_DIR="$SCRATCH/mswea" CODEX_HOME="$SCRATCH/codex" \
        CLAUDE_CONFIG_DIR="$SCRATCH/claude" OPENCODE_DISABLE_AUTOUPDATE=1 \
        timeout 60 "$BIN_DIR/$bin" "$smoke" </dev/null 2>&1)" \
        || die "$name: '$BIN_DIR/$bin $smoke' failed: $(tail -n 5 <<<"$out")"
    REPORT+=("$BIN_DIR/$bin $got")
done
printf '%s\n' "${REPORT[@]}"
