#!/usr/bin/env bash
# `fixbench merge` at scale: builds fixbench (release), writes 64 shard runs of one
# 10,080-trial plan (examples/gen_store.rs --shards: each trial with its record and small log,
# diff and JUnit files, as on 64 machines), then, TRIES times in turn (default 3):
#   - `cp -al` of the shard folders: the filesystem's own floor for linking that many files;
#   - `fixbench merge` of them into one run: wall time and peak memory;
#   - `fixbench show --json` of the merged run: reading it back, as every report does.
# Prints each one's best wall time and its peak memory, and merge's ratio to the floor.
#
#   scripts/bench-merge.sh [TRIALS] [SHARDS]     (default 10080 64)
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS=${1:-10080}
SHARDS=${2:-64}
TRIES=${TRIES:-3}
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 3; }
cargo build --release --quiet --bin fixbench --example gen_store
BIN=target/release/fixbench
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
target/release/examples/gen_store "$WORK/shards" --shards "$SHARDS" --trials "$TRIALS"
echo "shards: $(du -sh --apparent-size "$WORK/shards" | cut -f1), $(find "$WORK/shards" -type f | wc -l) files; $(nproc) cores"

# Runs the command, prints "seconds KB".
timed() {
  "$TIME" -f '%e %M' -o "$WORK/t" "$@" >/dev/null 2>"$WORK/err" || { cat "$WORK/err" >&2; exit 1; }
  tail -n 1 "$WORK/t"
}
best() { # best wall of $1 and its peak, from lines "s kb"
  sort -n "$1" | head -n 1
}
: >"$WORK/cp"; : >"$WORK/merge"; : >"$WORK/show"
for i in $(seq "$TRIES"); do
  rm -rf "$WORK/floor" "$WORK/out"; sync
  timed cp -al "$WORK/shards" "$WORK/floor" >>"$WORK/cp"
  sync
  timed "$BIN" merge "$WORK/shards" --results "$WORK/out" --run-id merged >>"$WORK/merge"
  timed "$BIN" show merged --json --results "$WORK/out" >>"$WORK/show"
done
read -r cp_s cp_kb < <(best "$WORK/cp")
read -r m_s m_kb < <(best "$WORK/merge")
read -r s_s s_kb < <(best "$WORK/show")
printf '%-52s %9s %10s\n' "best of $TRIES" "wall (s)" "peak (MB)"
printf '%-52s %9s %10s\n' "cp -al of the $SHARDS shard folders (the floor)" "$cp_s" "$((cp_kb / 1024))"
printf '%-52s %9s %10s\n' "fixbench merge: $SHARDS shards, $TRIALS trials" "$m_s" "$((m_kb / 1024))"
printf '%-52s %9s %10s\n' "fixbench show --json of the merged run" "$s_s" "$((s_kb / 1024))"
echo "merge / cp -al: $(python3 -c "print(f'{$m_s / max($cp_s, 0.01):.2f}')")×"
