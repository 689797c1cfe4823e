#!/usr/bin/env bash
# The real libraries the tests make problems from (tests/integration/real_codebases.rs), as the
# source distributions PyPI serves, pinned by version and sha256, cached in
# ${FIXBENCH_CACHE:-$HOME/.cache/fixbench}/sdists/. Idempotent. Prints the folder on its last line.
set -euo pipefail

CACHE="${FIXBENCH_CACHE:-$HOME/.cache/fixbench}"
DIR="$CACHE/sdists"
# name==version sha256 of the sdist
LIBS=(
    "cachetools==5.5.0 2cc24fb4cbe39633fb7badd9db9ca6295d766d9c2995f245725a46715d050f2a"
)
die() { echo "fetch-test-libs: error: $*" >&2; exit 1; }
PY="${PYTHON:-python3}"
mkdir -p "$DIR" || die "cannot create $DIR (set FIXBENCH_CACHE to a writable directory)"
for entry in "${LIBS[@]}"; do
    read -r req sum <<<"$entry"
    name="${req%%==*}"; version="${req##*==}"
    file="$DIR/$name-$version.tar.gz"
    if [[ -f "$file" ]] && [[ "$(sha256sum "$file" | cut -d' ' -f1)" == "$sum" ]]; then continue; fi
    tmp="$(mktemp -d "$DIR/.fetch.XXXXXX")"
    "$PY" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: "$req" -d "$tmp" >"$tmp/pip.log" 2>&1 \
        || { tail -n 20 "$tmp/pip.log" >&2; rm -rf "$tmp"; die "pip download $req failed (needs PyPI access)"; }
    got="$(ls "$tmp"/*.tar.gz 2>/dev/null | head -n1)"
    [[ -n "$got" ]] || { rm -rf "$tmp"; die "pip download $req gave no .tar.gz"; }
    [[ "$(sha256sum "$got" | cut -d' ' -f1)" == "$sum" ]] || { rm -rf "$tmp"; die "$req: sha256 differs from the pinned $sum"; }
    mv "$got" "$file"
    rm -rf "$tmp"
done
echo "$DIR"
