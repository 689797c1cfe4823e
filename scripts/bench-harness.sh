#!/usr/bin/env bash
# Harness overhead: `fixbench run --agent null` on the three problems against a 15-line bash
# loop doing the same work (copy, run nothing, pytest, count), alternated in one script.
# fixbench grades in its bubblewrap sandbox (the default); each round also times the same run
# with `--grade-isolation none`, to show what containing the grading costs.
# Prints each round's times and the median ratios fixbench / loop and sandboxed / unsandboxed.
#
#   scripts/bench-harness.sh [ROUNDS]      (default 9)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-9}
PY=${FIXBENCH_PYTHON:-$PWD/.venv/bin/python}
[ -x "$PY" ] || { echo "no Python with pytest at $PY: run scripts/setup.sh" >&2; exit 3; }
cargo build --release --quiet
BIN=$PWD/target/release/fixbench
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT

loop() {  # the 15-line baseline: copy the problem, run nothing, pytest with a report, count passes
  local total=0
  for p in problems/*/; do
    name=$(basename "$p"); d=$(mktemp -d "$WORK/loop.XXXX")
    cp -r "$p/PROBLEM.md" "$p/$name" "$p/tests" "$d/"
    printf '[pytest]\npythonpath = .\n' > "$d/pytest.ini"
    (cd "$d" && "$PY" -I -B -m pytest -q -p no:cacheprovider --junitxml="$d/junit.xml" >/dev/null || true)
    n=$(grep -o '<testcase ' "$d/junit.xml" | wc -l); f=$(grep -c -E '<(failure|error)' "$d/junit.xml" || true)
    total=$((total + n - f)); rm -rf "$d"
  done
  echo "$total" > "$WORK/loop.count"
}

harness() {  # [extra flags]
  "$BIN" run --agent null --isolation none --python "$PY" --results "$WORK/results" --json "$@" > "$WORK/run.json" 2>/dev/null
}

now() { date +%s.%N; }
# One untimed round each warms the file cache and fixbench's starter cache.
loop; harness; harness --grade-isolation none
ratios=(); gratios=()
printf '%-6s %10s %10s %14s %8s %8s\n' round loop_s fixbench_s unsandboxed_s ratio sb/none
for i in $(seq 1 "$ROUNDS"); do
  t0=$(now); loop; t1=$(now); harness --grade-isolation none; t2=$(now); harness; t3=$(now)
  read -r l u h r g < <(awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" 'BEGIN { print b-a, c-b, d-c, (d-c)/(b-a), (d-c)/(c-b) }')
  ratios+=("$r"); gratios+=("$g")
  printf '%-6s %10.3f %10.3f %14.3f %8.3f %8.3f\n' "$i" "$l" "$h" "$u" "$r" "$g"
done
passed=$("$PY" -c 'import json,sys; print(sum(t["passed"] for t in json.load(open(sys.argv[1]))["trials"]))' "$WORK/run.json")
echo "tests passed: loop $(cat "$WORK/loop.count"), fixbench $passed (must match)"
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
printf 'median ratio fixbench/loop over %d rounds: %.3f\n' "$ROUNDS" "$(median "${ratios[@]}")"
printf 'median ratio grading sandboxed/unsandboxed: %.3f\n' "$(median "${gratios[@]}")"
