#!/usr/bin/env bash
# The whole BCQ cross-check of issue 17 on a 2-core machine: two lanes, each pinned to one core
# and single-threaded, so that they do not slow each other. Lane d3rlpy trains and evaluates
# d3rlpy's BCQ (3 seeds per task, one after another); lane ours trains our BCQ's variants
# (3 seeds side by side per call). Finished results (OUT/TASK/*.json) are skipped, so the script
# resumes where a previous call stopped. Then: python benchmarks/xcheck_bcq.py table OUT.
#
#   bash benchmarks/xcheck_all.sh [SECONDS]      # stop both lanes after SECONDS (default: none)
#
# Needs: the paper datasets under runs/data/paper/TASK/paper (`mabcq data build TASK --preset
# paper --out ...`), d3rlpy importable (benchmarks/setup_d3rlpy_venv.sh; PYTHON= that venv).
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"  # the side venv sees the package here
OUT=${OUT:-results/xcheck}
TASKS=${TASKS:-"hopper-3x1 halfcheetah-2x3"}
D3RLPY_TASKS=${D3RLPY_TASKS:-$TASKS}  # each lane's order of tasks
OURS_TASKS=${OURS_TASKS:-$TASKS}
LANES=${LANES:-"d3rlpy ours"}
VARIANTS=${VARIANTS:-"default reference latent-2a vae-every-step torch-init"}
SEEDS=${SEEDS:-"0 1 2"}
STEPS=${STEPS:-20000}
EVERY=${EVERY:-5000}
limit=${1:-0}
export XLA_FLAGS="--xla_cpu_multi_thread_eigen=false"
mkdir -p "$OUT/logs"

run() {  # run CORE CMD...: pinned to one core, stopped at the deadline
    local core=$1; shift
    if [ "$limit" -gt 0 ]; then
        local left=$(( deadline - $(date +%s) ))
        [ "$left" -gt 60 ] || return 124
        timeout "$left" taskset -c "$core" "$@"
    else
        taskset -c "$core" "$@"
    fi
}
deadline=$(( $(date +%s) + limit ))

lane_d3rlpy() {
    for task in $D3RLPY_TASKS; do
        for seed in $SEEDS; do
            [ -f "$OUT/$task/d3rlpy-d3rlpy-seed$seed.json" ] && continue
            run 0 "$PYTHON" benchmarks/xcheck_bcq.py d3rlpy "$task" \
                --data "runs/data/paper/$task/paper" --seed "$seed" --steps "$STEPS" \
                --eval-every "$EVERY" --out "$OUT" || return
        done
    done
}

lane_ours() {
    for task in $OURS_TASKS; do
        for variant in $VARIANTS; do
            local seeds_csv done=1
            seeds_csv=$(echo $SEEDS | tr ' ' ',')
            for seed in $SEEDS; do
                [ -f "$OUT/$task/ours-$variant-seed$seed.json" ] || done=0
            done
            [ "$done" = 1 ] && continue
            run 1 "$PYTHON" benchmarks/xcheck_bcq.py ours "$task" \
                --data "runs/data/paper/$task/paper" --seeds "$seeds_csv" --steps "$STEPS" \
                --eval-every "$EVERY" --variant "$variant" --out "$OUT" || return
        done
    done
}

for lane in $LANES; do
    "lane_$lane" >> "$OUT/logs/$lane.log" 2>&1 &
done
wait
"$PYTHON" benchmarks/xcheck_bcq.py table "$OUT"
