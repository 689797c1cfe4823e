#!/usr/bin/env bash
# Trials at once against one at a time, side by side in one run:
#   1. a 2-second sleeping agent on the 3 problems × 4 repeats, at --jobs 1 and --jobs 4:
#      the wall-time ratio (ideal 4) and the harness's own CPU time per trial at both;
#   2. a 0-second agent (`true`) on the 3 problems × 16 repeats, at --jobs 1 and --jobs 16:
#      trials per second, and the ratio.
# Agents and grading run sandboxed, as by default. The harness's CPU time is fixbench's own
# process (all its threads: scheduling, proxies, saving), not the agents' or pytest's,
# sampled from /proc every 20 ms while it runs; "cores busy" is everything's CPU time (fixbench,
# agents, pytest) over the wall time, which says when the machine, not fixbench, is the limit.
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
# All runs share one store, as a user's do: the starters' grades are cached after the first.
"$BIN" run --cmd true --python "$PY" --results "$WORK/results" --json > /dev/null 2>&1

python3 - "$BIN" "$PY" "$WORK" "$ROUNDS" <<'PY'
import os, statistics, subprocess, sys, time

BIN, PY, WORK, ROUNDS = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
TICK = os.sysconf("SC_CLK_TCK")

def run(label, cmd, repeat, jobs, results):
    """One `fixbench run`: wall seconds, fixbench's own CPU seconds, all CPU seconds (fixbench,
    agents, pytest: everything it waited for), trials."""
    out = os.path.join(WORK, f"{label}.json")
    args = [BIN, "run", "--cmd", cmd, "--repeat", str(repeat), "--jobs", str(jobs),
            "--python", PY, "--results", results, "--json"]
    t0 = time.monotonic()
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    null = os.open(os.devnull, os.O_WRONLY)
    pid = os.posix_spawn(BIN, args, os.environ, file_actions=[
        (os.POSIX_SPAWN_DUP2, fd, 1), (os.POSIX_SPAWN_DUP2, null, 2)])
    os.close(fd)
    os.close(null)
    cpu = 0.0
    while True:
        got, status, usage = os.wait4(pid, os.WNOHANG)
        if got == pid:
            break
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / TICK  # utime + stime, this process only
        except (OSError, IndexError):
            pass
        time.sleep(0.02)
    wall = time.monotonic() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{label}: fixbench exited with {os.waitstatus_to_exitcode(status)}")
    everything = usage.ru_utime + usage.ru_stime
    import json
    trials = len(json.load(open(out))["trials"])
    return wall, cpu, everything, trials

cases = [("sleep2-j1", "sleep 2", 4, 1), ("sleep2-j4", "sleep 2", 4, 4),
         ("true-j1", "true", 16, 1), ("true-j16", "true", 16, 16)]
rows = {c[0]: [] for c in cases}
print(f"{'round':<6} {'case':<10} {'trials':>6} {'wall_s':>8} {'trials/s':>9} {'cpu_ms/trial':>13} {'cores busy':>11}")
for r in range(1, ROUNDS + 1):
    for label, cmd, repeat, jobs in cases:
        wall, cpu, everything, n = run(label, cmd, repeat, jobs, os.path.join(WORK, "results"))
        rows[label].append((wall, cpu, n, everything))
        print(f"{r:<6} {label:<10} {n:>6} {wall:>8.2f} {n / wall:>9.2f} {cpu / n * 1000:>13.1f} {everything / wall:>11.2f}")

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
print(f"cores busy (fixbench, agents and pytest together): sleeping --jobs 4 {med('sleep2-j4', 3) / med('sleep2-j4', 0):.2f}, "
      f"0-second --jobs 1 {med('true-j1', 3) / med('true-j1', 0):.2f}, --jobs 16 {med('true-j16', 3) / med('true-j16', 0):.2f} "
      f"of {os.cpu_count()}: where they are all busy, grading's CPU is the limit, not the harness")
PY
