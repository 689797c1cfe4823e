#!/usr/bin/env bash
# Create the repo's Python venv (.venv) with the pinned test tooling the problems need (uv makes
# the environments of problems' `requires`).
# Idempotent: does nothing when .venv already has exactly these versions.
# Prints the venv's python path on its last line.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
PINS=(pytest==8.3.4 junitparser==3.2.0 uv==0.13.9)

die() { echo "setup-python: error: $*" >&2; exit 1; }

pins_ok() {
    [[ -x "$PY" ]] || return 1
    "$PY" - "${PINS[@]}" <<'PYEOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    if version(name) != want:
        sys.exit(1)
PYEOF
}

if pins_ok; then echo "$PY"; exit 0; fi

BASE="${PYTHON:-python3}"
command -v "$BASE" >/dev/null || die "python3 not found: apt-get install -y python3 python3-venv"
"$BASE" -c 'import sys; sys.exit(sys.version_info < (3, 9))' \
    || die "$("$BASE" --version 2>&1) is too old: need Python >= 3.9"

# A venv whose interpreter no longer runs (e.g. the base Python was removed) is rebuilt.
if [[ -d "$VENV" ]] && ! "$PY" -c 'import sys' >/dev/null 2>&1; then
    rm -rf "$VENV"
fi
if [[ ! -x "$PY" ]]; then
    "$BASE" -m venv "$VENV" >/dev/null 2>&1 \
        || die "'$BASE -m venv $VENV' failed: on Debian run 'apt-get install -y python3-venv' and re-run"
fi
LOG="$VENV/setup-python.log"
"$PY" -m pip install -q --disable-pip-version-check "${PINS[@]}" >"$LOG" 2>&1 \
    || { tail -n 20 "$LOG" >&2; die "pip install ${PINS[*]} failed (needs PyPI access); log: $LOG"; }
pins_ok || die "installed ${PINS[*]} but the versions in $VENV do not match; delete $VENV and re-run"
echo "$PY"
