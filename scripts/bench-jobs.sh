#!/usr/bin/env bash
# Trials at once against one at a time, side by side in one run:
#   1. a 2-second sleeping agent on the 3 problems × 4 repeats, at --jobs 1 and --jobs 4:
#      the wall-time ratio (ideal 4) and the harness's own CPU time per trial at both;
#   2. a 0-second agent (`true`) on the 3 problems × 16 repeats, at --jobs 1 and --jobs 16:
#      trials per second, and the ratio.
# Agents and grading run sandboxed, as by default. The harness's CPU time is fixbench's own
# process (all its threads: scheduling, proxies, saving), not the agents' or pytest's,
# sampled from /proc every 20 ms while it runs.
#
#   scripts/bench-jobs.sh [ROUNDS]      (default 1; with more, the medians are printed)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-1}
PY=${FIXBENCH_PYTHON:-$PWD/.venv/bin/python}
[ -x "$PY" ] || { echo "no Python with pytest at $PY: run scripts/setup.sh" >&2; exit 3; }
cargo build --release --quiet
BIN=$PWD/target/release/fixbench
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
# One untimed run warms the file cache and fixbench's starter cache.
"$BIN" run --cmd true --python "$PY" --results "$WORK/warm" --json > /dev/null 2>&1

python3 - "$BIN" "$PY" "$WORK" "$ROUNDS" <<'PY'
import os, statistics, subprocess, sys, time

BIN, PY, WORK, ROUNDS = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
TICK = os.sysconf("SC_CLK_TCK")

def run(label, cmd, repeat, jobs, results):
    """One `fixbench run`: wall seconds, fixbench's own CPU seconds, trials."""
    out = os.path.join(WORK, f"{label}.json")
    args = [BIN, "run", "--cmd", cmd, "--repeat", str(repeat), "--jobs", str(jobs),
            "--python", PY, "--results", results, "--json"]
    t0 = time.monotonic()
    with open(out, "w") as f:
        p = subprocess.Popen(args, stdout=f, stderr=subprocess.DEVNULL)
    cpu = 0.0
    while p.poll() is None:
        try:
            fields = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / TICK  # utime + stime, this process only
        except (OSError, IndexError):
            pass
        time.sleep(0.02)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(f"{label}: fixbench exited with {p.returncode}")
    import json
    trials = len(json.load(open(out))["trials"])
    return wall, cpu, trials

cases = [("sleep2-j1", "sleep 2", 4, 1), ("sleep2-j4", "sleep 2", 4, 4),
         ("true-j1", "true", 16, 1), ("true-j16", "true", 16, 16)]
rows = {c[0]: [] for c in cases}
print(f"{'round':<6} {'case':<10} {'trials':>6} {'wall_s':>8} {'trials/s':>9} {'cpu_ms/trial':>13}")
for r in range(1, ROUNDS + 1):
    for label, cmd, repeat, jobs in cases:
        wall, cpu, n = run(label, cmd, repeat, jobs, os.path.join(WORK, f"r{r}-{label}"))
        rows[label].append((wall, cpu, n))
        print(f"{r:<6} {label:<10} {n:>6} {wall:>8.2f} {n / wall:>9.2f} {cpu / n * 1000:>13.1f}")

med = lambda label, i: statistics.median(x[i] for x in rows[label])
n = lambda label: rows[label][0][2]
print()
print(f"sleeping agent, 12 trials: --jobs 1 {med('sleep2-j1', 0):.2f} s, --jobs 4 {med('sleep2-j4', 0):.2f} s: "
      f"ratio {med('sleep2-j1', 0) / med('sleep2-j4', 0):.2f} (ideal 4)")
print(f"harness CPU per trial: --jobs 1 {med('sleep2-j1', 1) / n('sleep2-j1') * 1000:.1f} ms, "
      f"--jobs 4 {med('sleep2-j4', 1) / n('sleep2-j4') * 1000:.1f} ms")
tps1 = n("true-j1") / med("true-j1", 0)
tps16 = n("true-j16") / med("true-j16", 0)
print(f"0-second agent, 48 trials: --jobs 1 {tps1:.2f} trials/s, --jobs 16 {tps16:.2f} trials/s: ratio {tps16 / tps1:.2f} "
      f"(on {os.cpu_count()} cores; grading is bounded by --grade-jobs = the cores)")
PY
