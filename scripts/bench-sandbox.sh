#!/usr/bin/env bash
# Sandbox start-up cost per trial: `fixbench run --agent null` with `--isolation sandbox` (the
# null agent runs /bin/true in a bubblewrap sandbox) against `--isolation none` (it runs
# nothing), alternated round by round in one script. Per trial it compares the whole trial
# (workdir, agent, pytest grading, record: `wall_s`) and the agent step alone (`agent_s`).
# A third column, `--isolation none --cmd /bin/true`, starts the same program unisolated, to
# tell the sandbox's own cost from that of starting and reaping any agent process.
# Prints each round, then mean ± σ per trial and the ratio sandbox / none of the means.
#
#   scripts/bench-sandbox.sh [ROUNDS] [REPEAT]      (default 7 rounds of 3 problems × 5 repeats)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-7}
REPEAT=${2:-5}
PY=${FIXBENCH_PYTHON:-$PWD/.venv/bin/python}
[ -x "$PY" ] || { echo "no Python with pytest at $PY: run scripts/setup.sh" >&2; exit 3; }
command -v "${FIXBENCH_BWRAP:-bwrap}" >/dev/null || { echo "no bubblewrap: run scripts/setup.sh" >&2; exit 3; }
cargo build --release --quiet
BIN=$PWD/target/release/fixbench
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT

run() {  # run KIND ROUND: one run, its trials' wall_s and agent_s appended to $WORK/KIND.tsv
  case $1 in
    none) args=(--agent null --isolation none) ;;
    sandbox) args=(--agent null --isolation sandbox) ;;
    exec) args=(--cmd /bin/true --isolation none) ;;
  esac
  "$BIN" run "${args[@]}" --repeat "$REPEAT" --python "$PY" \
    --results "$WORK/results" --json > "$WORK/run.json" 2> "$WORK/stderr.log" \
    || { cat "$WORK/stderr.log" >&2; exit 1; }
  "$PY" - "$WORK/run.json" "$2" >> "$WORK/$1.tsv" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))
for t in run["trials"]:
    assert t["error"] is None and t["passed"] == t["baseline"], t
    print(sys.argv[2], t["wall_s"], t["agent_s"], sep="\t")
PY
}

# One untimed round each warms the file cache and the Python imports.
KINDS=(none sandbox exec)
for k in "${KINDS[@]}"; do run "$k" 0; done
for k in "${KINDS[@]}"; do : > "$WORK/$k.tsv"; done
printf '%-6s %14s %14s %14s %8s\n' round none_ms sandbox_ms exec_ms ratio
for i in $(seq 1 "$ROUNDS"); do
  # Rotate the order so that drift (other load, caches) falls on every kind alike.
  for j in 0 1 2; do run "${KINDS[$(( (i + j) % 3 ))]}" "$i"; done
  "$PY" - "$WORK" "$i" <<'PY'
import statistics as st, sys
def mean(kind):
    return st.mean(float(l.split("\t")[1]) for l in open(f"{sys.argv[1]}/{kind}.tsv") if l.split("\t")[0] == sys.argv[2])
n, s, e = mean("none"), mean("sandbox"), mean("exec")
print(f"{sys.argv[2]:<6} {n*1000:14.1f} {s*1000:14.1f} {e*1000:14.1f} {s/n:8.3f}")
PY
done
"$PY" - "$WORK" "$ROUNDS" "$REPEAT" <<'PY'
import math, statistics as st, sys
work, rounds, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def col(kind, i):
    return [float(l.split("\t")[i]) for l in open(f"{work}/{kind}.tsv")]
def ms(xs):
    return f"{st.mean(xs)*1000:7.1f} ± {st.stdev(xs)*1000:5.1f} ms"
print()
for what, i in [("per trial (wall_s)", 1), ("agent step (agent_s)", 2)]:
    print(f"{what:<22} none {ms(col('none', i))}   sandbox {ms(col('sandbox', i))}   exec /bin/true {ms(col('exec', i))}")
n, s = col("none", 1), col("sandbox", 1)
mn, msb = st.mean(n), st.mean(s)
r = msb / mn
# σ of the ratio of means, from each side's standard error
dr = r * math.sqrt((st.stdev(n) / mn) ** 2 / len(n) + (st.stdev(s) / msb) ** 2 / len(s))
med = st.median(st.mean(float(l.split("\t")[1]) for l in open(f"{work}/sandbox.tsv") if l.split("\t")[0] == str(k))
                / st.mean(float(l.split("\t")[1]) for l in open(f"{work}/none.tsv") if l.split("\t")[0] == str(k))
                for k in range(1, rounds + 1))
a_n, a_s, a_e = (st.mean(col(k, 2)) for k in ("none", "sandbox", "exec"))
print(f"\nper trial, sandbox / none: {r:.3f} ± {dr:.3f} (mean of {len(n)} trials each; median of round ratios {med:.3f})")
print(f"sandbox start-up: {(a_s - a_n)*1000:.1f} ms per trial, of which {(a_e - a_n)*1000:.1f} ms any agent process costs unisolated")
PY
