#!/usr/bin/env bash
# The browser for the report's tests (tests/integration/browser.rs) and its first-paint
# measurement (examples/report_paint.rs, scripts/bench-report.sh): Debian's `chromium`, installed
# with apt-get when missing (root), then checked on this machine — a binary is never trusted
# because it is installed: it must run headless on a tiny local page whose script writes a marker,
# and print that marker back. Idempotent and quiet; prints the chromium path on its last line.
# Not part of scripts/setup.sh: the quickstart needs no browser. scripts/test.sh calls it.
#
#   scripts/setup-chromium.sh          FIXBENCH_CHROMIUM=/path/to/chromium checks that one instead
set -euo pipefail
die() { echo "setup-chromium: error: $*" >&2; exit 1; }

if [[ -n "${FIXBENCH_CHROMIUM:-}" ]]; then
    CHROMIUM="$FIXBENCH_CHROMIUM"
    [[ -x "$CHROMIUM" ]] || die "FIXBENCH_CHROMIUM=$CHROMIUM is not an executable; unset it to use Debian's chromium"
else
    if ! command -v chromium >/dev/null; then
        [[ $(id -u) -eq 0 ]] || die "chromium missing and not root: run 'apt-get install -y chromium' and re-run"
        export DEBIAN_FRONTEND=noninteractive
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; } >/dev/null 2>&1 \
            || die "apt-get install -y --no-install-recommends chromium failed"
    fi
    CHROMIUM="$(command -v chromium)" || die "chromium still missing after apt-get install -y chromium"
fi

# The check: a page whose script replaces its body with a marker, dumped after scripts ran.
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
MARKER="fixbench-chromium-ok-$$"
cat >"$WORK/check.html" <<HTML
<!doctype html><html><body>not run<script>
document.body.textContent = ["fixbench", "chromium", "ok", "$$"].join("-");
</script></body></html>
HTML
# The flags every use of chromium here passes (the Rust driver too): no sandbox (root, containers),
# no GPU, and none of the background traffic that would flood a closed network.
FLAGS=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
       --disable-background-networking --disable-component-update --disable-sync
       --user-data-dir="$WORK/profile")
if ! dom="$(timeout 60 "$CHROMIUM" "${FLAGS[@]}" --dump-dom "file://$WORK/check.html" 2>"$WORK/err")"; then
    tail -n 5 "$WORK/err" >&2
    die "'$CHROMIUM --headless --dump-dom' failed on this machine (its last lines above)"
fi
grep -q "$MARKER" <<<"$dom" || {
    tail -n 5 "$WORK/err" >&2
    die "'$CHROMIUM --headless --dump-dom' ran but the page's script did not (no marker in its output)"
}
echo "$CHROMIUM"
