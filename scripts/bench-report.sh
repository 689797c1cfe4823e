#!/usr/bin/env bash
# The HTML report at scale: builds fixbench (release) and the examples gen_store and
# report_paint, writes a synthetic store (examples/gen_store.rs; default 10,080 trials over 60
# runs) and measures `fixbench report` over every run in it: wall time and peak memory (best of
# TRIES, environment, default 3), the file's size, and how fast it opens in headless chromium
# (examples/report_paint.rs: first contentful paint, DOMContentLoaded, load, data-ready="1").
# Then the same for one run of 100 trials with transcripts, whose file should stay under 5 MB.
#
#   scripts/bench-report.sh [TRIALS] [RUNS]          (default 10080 60)
#
# Targets: written in under 2 s, first paint under 2 s, the 100-trial file under 5 MB. Exits 4
# when one is missed. FIXBENCH=PATH measures another fixbench binary; chromium comes from
# scripts/setup-chromium.sh (FIXBENCH_CHROMIUM to use your own).
set -euo pipefail
cd "$(dirname "$0")/.."
die() { echo "bench-report: error: $*" >&2; exit 1; }
TRIALS=${1:-10080}
RUNS=${2:-60}
TRIES=${TRIES:-3}
TIME=/usr/bin/time
[ -x "$TIME" ] || die "needs GNU time at /usr/bin/time (apt-get install time)"
TARGET=${CARGO_TARGET_DIR:-target}

cargo build --release --quiet --bin fixbench --example gen_store --example report_paint \
  || die "cargo build --release --bin fixbench --example gen_store --example report_paint failed"
BIN=${FIXBENCH:-$TARGET/release/fixbench}
GEN=$TARGET/release/examples/gen_store
PAINT=$TARGET/release/examples/report_paint
"$BIN" report --help >/dev/null 2>&1 \
  || die "'$BIN report' is missing: this fixbench has no report command (fixbench report [RUN...] -o FILE)"
out="$(scripts/setup-chromium.sh)" || die "scripts/setup-chromium.sh failed"
FIXBENCH_CHROMIUM="$(tail -n 1 <<<"$out")"
export FIXBENCH_CHROMIUM

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# gen DIR TRIALS RUNS: a store with transcripts when gen_store can write them, else without.
gen() {
  local dir=$1 trials=$2 runs=$3
  if "$GEN" "$dir" --trials "$trials" --runs "$runs" --transcripts >"$WORK/gen.out" 2>"$WORK/gen.err"; then
    TRANSCRIPTS="with transcripts"
  elif grep -q -- "--transcripts" "$WORK/gen.err"; then
    rm -rf "$dir"
    "$GEN" "$dir" --trials "$trials" --runs "$runs" >"$WORK/gen.out" || die "gen_store $dir failed"
    TRANSCRIPTS="WITHOUT transcripts (gen_store has no --transcripts)"
  else
    cat "$WORK/gen.err" >&2
    die "gen_store $dir --trials $trials --runs $runs --transcripts failed"
  fi
  echo "store: $(cat "$WORK/gen.out"), $TRANSCRIPTS, $(du -sh --apparent-size "$dir" | cut -f1) on disk"
}

# The runs of a store: its folders that hold a run.json.
run_ids() {
  local d
  for d in "$1"/*/; do
    [ -e "$d/run.json" ] && basename "$d"
  done
  return 0
}

# measure NAME STORE: sets WALL (s, best of TRIES), PEAK (MB, of that run), SIZE (MB), FCP,
# READY (ms, best of TRIES loads) for `fixbench report` over every run of STORE.
measure() {
  local name=$1 store=$2 file="$WORK/$1.html" s kb ids
  mapfile -t ids < <(run_ids "$store")
  [ ${#ids[@]} -gt 0 ] || die "no runs (folders with run.json) in $store"
  WALL="" PEAK=""
  for _ in $(seq "$TRIES"); do
    rm -f "$file"
    "$TIME" -f '%e %M' -o "$WORK/t" "$BIN" report --results "$store" "${ids[@]}" -o "$file" \
      >/dev/null 2>"$WORK/err" || { cat "$WORK/err" >&2; die "fixbench report (${#ids[@]} runs of $store) failed"; }
    read -r s kb < <(tail -n 1 "$WORK/t")
    if [ -z "$WALL" ] || awk "BEGIN{exit !($s < $WALL)}"; then WALL=$s; PEAK=$(awk "BEGIN{printf \"%.0f\", $kb/1024}"); fi
  done
  [ -s "$file" ] || die "fixbench report wrote no $file"
  SIZE=$(awk "BEGIN{printf \"%.2f\", $(stat -c %s "$file")/1e6}")
  "$PAINT" "$file" --tries "$TRIES" | tee "$WORK/paint" | sed 's/^/  /'
  local best
  best=$(tail -n 1 "$WORK/paint")
  FCP=$(sed -n 's/.*fcp_ms=\([^ ]*\).*/\1/p' <<<"$best")
  READY=$(sed -n 's/.*ready_ms=\([^ ]*\).*/\1/p' <<<"$best")
  echo "$name: ${#ids[@]} runs, written in ${WALL} s (peak ${PEAK} MB), ${SIZE} MB"
}

MISSED=0
ROWS=()
# row FIGURE TARGET VALUE UNIT [LIMIT]: a table row; with LIMIT, VALUE must be under it.
row() {
  local verdict=""
  if [ -n "${5:-}" ]; then
    if [ "$3" != "-" ] && awk "BEGIN{exit !($3 < $5)}"; then verdict=ok; else verdict=MISSED; MISSED=1; fi
  fi
  ROWS+=("$(printf '%-46s %10s %12s %7s' "$1" "$2" "$3 $4" "$verdict")")
}

echo "$(nproc) cores, $("$FIXBENCH_CHROMIUM" --version 2>/dev/null | head -n 1)"
gen "$WORK/big" "$TRIALS" "$RUNS"
BIG_TX=$TRANSCRIPTS
measure big "$WORK/big"
row "$TRIALS trials, $RUNS runs: write (wall)" "< 2 s" "$WALL" s 2
row "  peak memory" "" "$PEAK" MB
row "  file size" "" "$SIZE" MB
row "  first contentful paint" "< 2000 ms" "$FCP" ms 2000
row "  data-ready=1 (matrix drawn)" "" "$READY" ms

gen "$WORK/small" 100 1
SMALL_TX=$TRANSCRIPTS
measure small "$WORK/small"
row "100 trials, 1 run: file size" "< 5 MB" "$SIZE" MB 5
row "  write (wall)" "" "$WALL" s
row "  first contentful paint" "" "$FCP" ms

echo
echo "stores: $TRIALS trials $BIG_TX; 100 trials $SMALL_TX; best of $TRIES"
printf '%-46s %10s %12s %7s\n' figure target measured ""
printf '%s\n' "${ROWS[@]}"
[ "$MISSED" -eq 0 ] || { echo "bench-report: a target was missed" >&2; exit 4; }
