#!/usr/bin/env bash
# Prefill and decode speed of the portable llama-server that setup builds against ggml's native
# (-march=native) build of the same tree, side by side in one run, on this machine.
#   scripts/bench-llama-build.sh [ROUNDS] [REQUESTS]     (defaults 5 rounds, 4 requests each)
# Each round starts one build, sends REQUESTS identical requests (a ~600-token prompt with the
# prompt cache off, then exactly 64 generated tokens with EOS ignored), stops it, and does the
# same with the other; the order alternates per round. Both use SmolLM2-135M Q4_1, -t 1, -c 2048.
# Prints per-build medians of llama-server's own timings (prompt_per_second,
# predicted_per_second) and the median of the per-round ratios portable/native.
# The native build is made once with FIXBENCH_LLAMA_CPU=native into <cache>/bench-native
# (about 5 min on 2 cores); FIXBENCH_BENCH_NATIVE names an existing native binary instead.
# Only meaningful on a machine where the native build works (on an AMX Xeon under KVM it dies).
set -euo pipefail
ROUNDS="${1:-5}"
REQUESTS="${2:-4}"
S="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${FIXBENCH_CACHE:-$HOME/.cache/fixbench}"

MODEL="$("$S/fetch-model.sh" | tail -n 1)"
PORTABLE="$("$S/build-llama-server.sh" | tail -n 1)"
NATIVE="${FIXBENCH_BENCH_NATIVE:-}"
if [[ -z "$NATIVE" ]]; then
    NATIVE="$(FIXBENCH_CACHE="$CACHE/bench-native" FIXBENCH_MODEL="$MODEL" FIXBENCH_LLAMA_CPU=native \
        "$S/build-llama-server.sh" | tail -n 1)"
fi
echo "portable: $PORTABLE ($(sed 's/.* cpu=\([^ ]*\).*/cpu=\1/' "$(dirname "$PORTABLE")/build-key" 2>/dev/null || echo '?'))"
echo "native:   $NATIVE"
echo "cpu:      $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') ($(uname -m), $(nproc) cores)"

python3 - "$ROUNDS" "$REQUESTS" "$MODEL" "$PORTABLE" "$NATIVE" <<'PY'
import json, socket, statistics, subprocess, sys, tempfile, time, urllib.request

rounds, requests, model = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
builds = {"portable": sys.argv[4], "native": sys.argv[5]}
prompt = " ".join(f"Item {i}: the quick brown fox jumps over the lazy dog." for i in range(45))

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def post(url, body):
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=300))

def measure(binary):
    port = free_port()
    log = tempfile.TemporaryFile()
    p = subprocess.Popen([binary, "-m", model, "--host", "127.0.0.1", "--port", str(port),
                          "-t", "1", "-c", "2048", "-np", "1"], stdout=log, stderr=log)
    try:
        for _ in range(600):
            if p.poll() is not None:
                log.seek(0); sys.exit(f"{binary} exited with {p.returncode}:\n{log.read().decode()[-2000:]}")
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).status == 200: break
            except Exception: pass
            time.sleep(0.2)
        url = f"http://127.0.0.1:{port}/completion"
        post(url, {"prompt": "warm up", "n_predict": 4})
        out = []
        for _ in range(requests):
            t = post(url, {"prompt": prompt, "n_predict": 64, "ignore_eos": True, "cache_prompt": False,
                           "temperature": 0})["timings"]
            out.append((t["prompt_n"], t["prompt_per_second"], t["predicted_n"], t["predicted_per_second"]))
        return out
    finally:
        p.terminate(); p.wait()

samples = {k: [] for k in builds}
ratios = {"prefill": [], "decode": []}
for r in range(rounds):
    order = list(builds) if r % 2 == 0 else list(reversed(builds))
    got = {k: measure(builds[k]) for k in order}
    med = {k: (statistics.median(s[1] for s in v), statistics.median(s[3] for s in v)) for k, v in got.items()}
    for k, v in got.items(): samples[k].extend(v)
    ratios["prefill"].append(med["portable"][0] / med["native"][0])
    ratios["decode"].append(med["portable"][1] / med["native"][1])
    print(f"round {r + 1}/{rounds}: prefill {med['portable'][0]:.0f} vs {med['native'][0]:.0f} tok/s, "
          f"decode {med['portable'][1]:.1f} vs {med['native'][1]:.1f} tok/s (portable vs native)", flush=True)

n_prompt, n_gen = samples["native"][0][0], samples["native"][0][2]
print(f"\n{rounds} rounds x {requests} requests per build; prompt {n_prompt} tokens, {n_gen} generated\n")
print("| build | prefill tok/s (median) | decode tok/s (median) |")
print("|---|---|---|")
for k in builds:
    print(f"| {k} | {statistics.median(s[1] for s in samples[k]):.1f} | {statistics.median(s[3] for s in samples[k]):.1f} |")
for what, v in ratios.items():
    print(f"{what}: portable/native = {statistics.median(v):.3f} (median of rounds; range {min(v):.3f}-{max(v):.3f})")
PY
