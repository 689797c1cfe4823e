#!/usr/bin/env bash
# Making a problem from a real library: `fixbench new` + `inject` + `validate` on the PyPI sdist
# of cachetools 5.5.0 (src/ layout, 215 tests; scripts/fetch-test-libs.sh downloads it), with the
# release build and sandboxed grading, TRIES times (default 3). Prints each step's wall time per
# try, the suite's own time beside them (what every grading pays), and the share of the whole
# that is `inject`. Also the same with `--bugs 1` and `--bugs 5`.
#
#   scripts/bench-authoring.sh [SEED]     (default 1)
set -euo pipefail
cd "$(dirname "$0")/.."
SEED=${1:-1}
TRIES=${TRIES:-3}
cargo build --release --quiet --bin fixbench
BIN="$PWD/target/release/fixbench"
SDISTS="$(scripts/fetch-test-libs.sh | tail -n 1)"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
tar xzf "$SDISTS/cachetools-5.5.0.tar.gz" -C "$WORK"
export FIXBENCH_PYTHON="${FIXBENCH_PYTHON:-$PWD/.venv/bin/python}"
now() { date +%s.%N; }
echo "cachetools 5.5.0, $(nproc) cores, seed $SEED"
printf '%-6s %-5s %8s %8s %10s %8s %11s %s\n' try bugs new_s inject_s validate_s total_s inject_share suite_s
for bugs in 3 1 5; do
  for try in $(seq 1 "$TRIES"); do
    P="$WORK/p-$bugs-$try"
    t0=$(now); "$BIN" new cachetools --from "$WORK/cachetools-5.5.0" --problems-dir "$P" >/dev/null
    t1=$(now); "$BIN" inject cachetools --bugs "$bugs" --seed "$SEED" --problems-dir "$P" >/dev/null
    t2=$(now); "$BIN" validate --problem cachetools --problems-dir "$P" --json >"$WORK/v.json"
    t3=$(now)
    suite=$(python3 -c 'import json,sys; print("%.2f" % json.load(open(sys.argv[1]))["problems"][0]["suite_s"])' "$WORK/v.json")
    awk -v b="$bugs" -v t="$try" -v a="$t0" -v c="$t1" -v d="$t2" -v e="$t3" -v s="$suite" 'BEGIN {
      printf "%-6s %-5s %8.1f %8.1f %10.1f %8.1f %10.0f%% %s\n", t, b, c-a, d-c, e-d, e-a, 100*(d-c)/(e-a), s }'
    [[ $bugs == 3 ]] || break
  done
done
