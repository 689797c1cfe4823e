#!/bin/bash
# fixbench as a Slurm job array: one array task per shard, the runs on the shared filesystem,
# then a job that merges them into one run once every task has ended. From the checkout of your
# suite (harness.toml says the agents, problems and server), on a login node:
#
#   examples/scale-out/slurm-array.sh              # submits the array and the merge after it
#
# (`sbatch examples/scale-out/slurm-array.sh` submits the array alone; merge it later with
# `examples/scale-out/slurm-array.sh merge JOB_ID`.)
#
# Task K of N runs shard K/N as run `slurm-<array job id>-<K>of<N>`, so a task that Slurm
# requeues (node failure, preemption) continues its run and skips the trials it finished.
# The merge waits with afterany, so it also runs after a failed task, and names what it lacks.
#SBATCH --job-name=fixbench
#SBATCH --array=1-3
#SBATCH --requeue
#SBATCH --cpus-per-task=2
#SBATCH --mem=4G
#SBATCH --time=04:00:00
#SBATCH --output=fixbench-%A_%a.out
set -euo pipefail

# On the shared filesystem: each array job's shard runs in shards/<job id>/, and the merged runs
# in results/, a results folder the reports read (fixbench show/compare/gate --results ...).
DATA="${FIXBENCH_DATA:-$HOME/fixbench-data}"

case "${1:-}" in
merge)
    JOB="${2:?usage: $0 merge ARRAY_JOB_ID}"
    RUN="slurm-$JOB"
    fixbench merge "$DATA/shards/$JOB" --partial --results "$DATA/results" --run-id "$RUN"
    mkdir -p "$DATA/reports"
    fixbench junit "$RUN" --results "$DATA/results" -o "$DATA/reports/$RUN.xml"
    # The gate, once a baseline `main` is saved: fixbench baseline save main RUN --results "$DATA/results"
    if [[ -f "$DATA/results/baselines/main.json" ]]; then
        fixbench gate --baseline main "$RUN" --results "$DATA/results"
    fi
    ;;
"")
    if [[ -z "${SLURM_ARRAY_JOB_ID:-}" ]]; then
        # Not in a job: submit the array, then the merge depending on all of its tasks. The merge
        # is a wrapped command, so this file's #SBATCH lines (the array) do not apply to it.
        JOB="$(sbatch --parsable "$0")"
        JOB="${JOB%%;*}"
        sbatch --dependency="afterany:$JOB" --job-name=fixbench-merge --output="fixbench-$JOB-merge.out" \
            --wrap="bash $(printf '%q' "$(realpath "$0")") merge $JOB"
        echo "submitted array job $JOB and its merge: the merged run will be slurm-$JOB in $DATA/results"
        exit 0
    fi
    N="$SLURM_ARRAY_TASK_COUNT"
    K=$(((SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN) / ${SLURM_ARRAY_TASK_STEP:-1} + 1))
    exec fixbench run --shard "$K/$N" --run-id "slurm-$SLURM_ARRAY_JOB_ID-${K}of$N" \
        --results "$DATA/shards/$SLURM_ARRAY_JOB_ID"
    ;;
*)
    echo "usage: $0 [merge ARRAY_JOB_ID]" >&2
    exit 2
    ;;
esac
