#!/usr/bin/env bash
# On the GPU machine, from the repository root, with .whl carried: the paper-scale grid of the
# given tasks into results/paper, then its results (not the datasets, run dirs or checkpoints)
# as one archive in $OUT: unpack it over results/paper here.
#   bash scripts/device_grid.sh "hopper-3x1,walker2d-2x3" [more `mabcq reproduce` flags]
#   bash scripts/device_grid.sh hopper-3x1 --methods macql,cql --recipe medium-replay  # Figure 6
# The grid stops after GRID_SECONDS (default 540, inside a device command's 10 minutes) and still
# archives what finished; exit 124 then means "call again": the same command resumes (finished
# cells skipped, the group in flight from its checkpoint, datasets reused while the machine is
# warm; a fresh machine rebuilds them from the shipped policies, the same bytes).
# The machine gets a copy of the working tree without .git, so the code's commit is declared:
# check out the grid's pinned commit in the session's tree first and pass it,
#   MABCQ_CODE_COMMIT=<pinned commit> bash scripts/device_grid.sh TASKS
# (every cell records it; `mabcq reproduce` refuses a grid holding cells of another commit).
set -uo pipefail
: "${MABCQ_CODE_COMMIT:?set MABCQ_CODE_COMMIT to the pinned commit of the grid (docs/reproduce.md)}"
[[ "$MABCQ_CODE_COMMIT" =~ ^[0-9a-fA-F]{40}$ ]] || {
    echo "device_grid: error: MABCQ_CODE_COMMIT must be a full 40-digit commit" >&2; exit 2; }
export MABCQ_CODE_COMMIT
tasks="$1"; shift
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:src XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
export MABCQ_JAX_CACHE=/tmp/mabcq-jax-cache
out=results/paper  # the committed cells of other tasks are kept and skipped
timeout -s TERM "${GRID_SECONDS:-540}" python3 -m mabcq reproduce --preset paper --tasks "$tasks" \
    --out "$out" --data-root runs/data --no-progress "$@" 2>&1 | tee -a "${OUT:-/tmp}/grid.log"
status=${PIPESTATUS[0]}
[ "$status" = 124 ] && echo "device_grid: time limit reached; run the same command again to resume" \
    | tee -a "${OUT:-/tmp}/grid.log"
tar czf "${OUT:-/tmp}/results.tgz" -C "$out" --exclude='runs' . 2>/dev/null
exit "$status"
