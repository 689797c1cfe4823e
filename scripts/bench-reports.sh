#!/usr/bin/env bash
# The reports at scale: builds fixbench (release), writes a synthetic store of 10,000 trials
# (examples/gen_store.rs) and times each report command on it, with its peak memory.
# The target: every command under a second and a few hundred MB.
#
#   scripts/bench-reports.sh [TRIALS] [RUNS]     (default 10000 60)
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS=${1:-10000}
RUNS=${2:-60}
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 3; }

cargo build --release --quiet --bin fixbench --example gen_store
BIN=target/release/fixbench
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
STORE=$WORK/results
target/release/examples/gen_store "$STORE" --trials "$TRIALS" --runs "$RUNS" --regress-from $((RUNS * 3 / 4))
echo "store: $(du -sh "$STORE" | cut -f1) on disk, $(nproc) cores"
ALL=$(ls "$STORE" | grep -v baselines | tr '\n' ' ')

printf '%-58s %9s %10s\n' command "wall (s)" "peak (MB)"
bench() {
  local name=$1; shift
  # best of three, as the first run also pays for the page cache
  local best="" mem=""
  for _ in 1 2 3; do
    "$TIME" -f '%e %M' -o "$WORK/t" "$BIN" "$@" >/dev/null 2>"$WORK/err" || {
      code=$?; [ $code -eq 5 ] || { cat "$WORK/err" >&2; exit $code; }; }
    read -r s kb < <(tail -n 1 "$WORK/t")
    if [ -z "$best" ] || awk "BEGIN{exit !($s < $best)}"; then best=$s; mem=$kb; fi
  done
  printf '%-58s %9s %10.0f\n' "$name" "$best" "$(awk "BEGIN{print $mem/1024}")"
}
bench "history" history --results "$STORE"
# shellcheck disable=SC2086
bench "compare (all $RUNS runs, --by model, table)" compare $ALL --by model --results "$STORE"
# shellcheck disable=SC2086
bench "compare (all $RUNS runs, --by label:flags, json)" compare $ALL --by label:flags --format json --results "$STORE"
bench "gate (latest vs latest~$((RUNS / 2)), --max-slowdown 1.2)" gate --baseline "latest~$((RUNS / 2))" latest --max-slowdown 1.2 --results "$STORE"
bench "plot over time (png)" plot --by model -o "$WORK/a.png" --results "$STORE"
bench "plot over time (svg, decode_tps)" plot --by model --metric decode_tps -o "$WORK/a.svg" --results "$STORE"
# shellcheck disable=SC2086
bench "plot bars (all $RUNS runs, png)" plot --kind bars $ALL --by model -o "$WORK/b.png" --results "$STORE"
bench "plot timeline (png)" plot --kind timeline -o "$WORK/c.png" --results "$STORE"
