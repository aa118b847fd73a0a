#!/usr/bin/env bash
# On the GPU machine, from the repository root, with .whl and .pin carried: the paper-scale grid
# of the given tasks into results/paper with the pinned code, then its results (not the
# datasets, run dirs or checkpoints) as one archive in $OUT. Here, first:
#   bash scripts/fetch_device_wheels.sh && rm .whl/pytest* .whl/pluggy* .whl/iniconfig* .whl/pyopengl*
#   bash scripts/device_pin.sh <pinned commit>            # the pin's code into .pin/
# then one device call (carry [".whl", ".pin"], timeout_s 600):
#   bash scripts/device_grid.sh "hopper-3x1" [more `mabcq reproduce` flags]
#   bash scripts/device_grid.sh hopper-3x1 --methods macql,cql --recipe medium-replay  # Figure 6
# and back here: unpack $OUT/results.tgz into a folder of its own and add its cells with
#   PYTHONPATH=src python scripts/merge_device_cells.py <folder> results/paper --commit <pin>
# (never over results/paper: grid.json and the behavior files there are this machine's).
# The grid stops after GRID_SECONDS (default 540, inside a device command's 10 minutes) and still
# archives what finished; exit 124 then means "call again": the same command resumes (finished
# cells skipped, the group in flight from its checkpoint, datasets reused while the machine is
# warm; a fresh machine rebuilds them from the shipped policies).
# The machine's copy of the tree has no git history of ours (one there named a commit we did not
# run), so git is hidden from the run; the pin is declared by .pin/COMMIT (merge_device_cells.py
# writes it into every cell's provenance).
set -uo pipefail
[ -f .pin/COMMIT ] || { echo "device_grid: error: no .pin/COMMIT (run scripts/device_pin.sh here and carry .pin)" >&2; exit 2; }
MABCQ_CODE_COMMIT="$(cat .pin/COMMIT)"
[[ "$MABCQ_CODE_COMMIT" =~ ^[0-9a-fA-F]{40}$ ]] || {
    echo "device_grid: error: .pin/COMMIT must hold a full 40-digit commit" >&2; exit 2; }
export MABCQ_CODE_COMMIT GIT_DIR=/nonexistent-device-copy
tasks="${1:?usage: device_grid.sh TASKS [more mabcq reproduce flags]}"; shift
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
[ -d .pin/src/mabcq/behavior/shipped ] || cp -a src/mabcq/behavior/shipped .pin/src/mabcq/behavior/ \
    || exit 1
export PYTHONPATH="/tmp/site:$PWD/.pin/src" XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
export MABCQ_JAX_CACHE=/tmp/mabcq-jax-cache
out=results/paper  # the committed cells of other tasks are kept and skipped
echo "device_grid: pin ${MABCQ_CODE_COMMIT:0:12}, tasks $tasks, $(nvidia-smi --query-gpu=name \
    --format=csv,noheader 2>/dev/null | head -1)" | tee -a "${OUT:-/tmp}/grid.log"
timeout -s TERM "${GRID_SECONDS:-540}" python3 -m mabcq reproduce --preset paper --tasks "$tasks" \
    --out "$out" --data-root runs/data --no-progress "$@" 2>&1 | tee -a "${OUT:-/tmp}/grid.log"
status=${PIPESTATUS[0]}
[ "$status" = 124 ] && echo "device_grid: time limit reached; run the same command again to resume" \
    | tee -a "${OUT:-/tmp}/grid.log"
tar czf "${OUT:-/tmp}/results.tgz" -C "$out" --exclude='runs' . 2>/dev/null
exit "$status"
