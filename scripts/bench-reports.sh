#!/usr/bin/env bash
# The reports at scale: builds fixbench (release), writes a synthetic store of 10,000 trials
# (examples/gen_store.rs) and times each report command on it, with its peak memory.
# The target: every command under a second and a few hundred MB.
#
#   scripts/bench-reports.sh [TRIALS] [RUNS] [--against DIR]     (default 10000 60)
#
# Each command's best of TRIES runs (environment, default 3) is shown.
# With --against DIR (another checkout of fixbench, e.g. `git worktree add /tmp/base main`),
# that fixbench is built too and writes its own store of the same runs, and each command runs
# on both in turn: its wall time and peak memory side by side, and the ratio this / that.
set -euo pipefail
cd "$(dirname "$0")/.."
AGAINST=""
POS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --against) AGAINST=$(cd "$2" && pwd); shift 2 ;;
    *) POS+=("$1"); shift ;;
  esac
done
TRIALS=${POS[0]:-10000}
RUNS=${POS[1]:-60}
TRIES=${TRIES:-3}
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 3; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# Builds the checkout in $1 and writes its store to $2.
store() {
  (cd "$1" && cargo build --release --quiet --bin fixbench --example gen_store)
  "$1/target/release/examples/gen_store" "$2" --trials "$TRIALS" --runs "$RUNS" --regress-from $((RUNS * 3 / 4))
  echo "store: $(du -sh --apparent-size "$2" | cut -f1) on disk ($(basename "$1"))"
}
BIN=target/release/fixbench
STORE=$WORK/results
store . "$STORE"
if [ -n "$AGAINST" ]; then
  store "$AGAINST" "$WORK/against"
fi
echo "$(nproc) cores"
ALL=$(ls "$STORE" | grep -v baselines | tr '\n' ' ')

# Runs `$1 ARGS --results $2` and prints "seconds KB".
timed() {
  local bin=$1 results=$2; shift 2
  "$TIME" -f '%e %M' -o "$WORK/t" "$bin" "$@" --results "$results" >/dev/null 2>"$WORK/err" || {
    code=$?; [ $code -eq 5 ] || { cat "$WORK/err" >&2; exit $code; }; }
  tail -n 1 "$WORK/t"
}
if [ -n "$AGAINST" ]; then
  printf '%-58s %9s %10s %9s %10s %7s\n' command "wall (s)" "peak (MB)" "against" "peak (MB)" ratio
else
  printf '%-58s %9s %10s\n' command "wall (s)" "peak (MB)"
fi
bench() {
  local name=$1; shift
  # the best, as the first run also pays for the page cache; both sides in turn
  local best="" mem="" abest="" amem="" s kb
  for _ in $(seq "$TRIES"); do
    read -r s kb < <(timed "$BIN" "$STORE" "$@")
    if [ -z "$best" ] || awk "BEGIN{exit !($s < $best)}"; then best=$s; mem=$kb; fi
    if [ -n "$AGAINST" ]; then
      read -r s kb < <(timed "$AGAINST/$BIN" "$WORK/against" "$@")
      if [ -z "$abest" ] || awk "BEGIN{exit !($s < $abest)}"; then abest=$s; amem=$kb; fi
    fi
  done
  if [ -n "$AGAINST" ]; then
    printf '%-58s %9s %10.0f %9s %10.0f %7s\n' "$name" "$best" "$(awk "BEGIN{print $mem/1024}")" "$abest" \
      "$(awk "BEGIN{print $amem/1024}")" "$(awk "BEGIN{printf \"%.2f\", ($abest > 0) ? $best/$abest : 1}")"
  else
    printf '%-58s %9s %10.0f\n' "$name" "$best" "$(awk "BEGIN{print $mem/1024}")"
  fi
}
bench "history" history
# shellcheck disable=SC2086
bench "compare (all $RUNS runs, --by model, table)" compare $ALL --by model
# shellcheck disable=SC2086
bench "compare (all $RUNS runs, --by label:flags, json)" compare $ALL --by label:flags --format json
bench "gate (latest vs latest~$((RUNS / 2)), --max-slowdown 1.2)" gate --baseline "latest~$((RUNS / 2))" latest --max-slowdown 1.2
bench "plot over time (png)" plot --by model -o "$WORK/a.png"
bench "plot over time (svg, decode_tps)" plot --by model --metric decode_tps -o "$WORK/a.svg"
# shellcheck disable=SC2086
bench "plot bars (all $RUNS runs, png)" plot --kind bars $ALL --by model -o "$WORK/b.png"
bench "plot timeline (png)" plot --kind timeline -o "$WORK/c.png"
