"""One grid cell in its own process: `python -m mabcq.grid.worker SPEC` (grid.pool).

The process pins itself to one core before JAX is imported, and XLA runs single-threaded
(worker_environment), so a cell's numbers are the same whichever core and however many workers
run beside it: every cell of a CPU grid is made in exactly this kind of process, one worker or
N. It trains the cell (resuming its checkpoint), writes its cell file atomically with its
timing (estimate against actual) and provenance, and exits 0; a user error exits 2 with one
line, anything else 1 with its traceback in the cell's worker.log.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# XLA's CPU backend on one thread, and BLAS in numpy too (the diagnostics).
SINGLE_THREAD_XLA = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
SINGLE_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def worker_environment(base: Mapping[str, str], package_root: str) -> dict[str, str]:
    """The environment of a worker process: single-threaded XLA and BLAS, GPU memory taken as
    needed (workers may share a card), and this very mabcq first on the path."""
    env = dict(base)
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {SINGLE_THREAD_XLA}".strip()
    for name in SINGLE_THREAD_VARIABLES:
        env[name] = "1"
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    env["PYTHONPATH"] = os.pathsep.join(
        [package_root, *[part for part in env.get("PYTHONPATH", "").split(os.pathsep) if part]])
    return env


def run_cell(spec: dict[str, Any]) -> None:
    """Train the cell `spec` describes (grid.pool.cell_spec) and write its cell file."""
    from mabcq.data.io import load_dataset_dir
    from mabcq.grid.cells import write_cell_rows
    from mabcq.grid.groups import Grid, run_group
    from mabcq.util.compile_cache import enable_compilation_cache

    enable_compilation_cache()
    grid = Grid(**{**spec["grid"], "tasks": tuple(spec["grid"]["tasks"]),
                   "methods": tuple(spec["grid"]["methods"]),
                   "seeds": tuple(spec["grid"]["seeds"])})
    datasets = load_dataset_dir(spec["data_dir"])
    run_dir = Path(spec["run_dir"])
    rows, summary, timing, provenance = run_group(
        spec["task"], (spec["method"],), (spec["seed"],), grid, datasets, run_dir, False,
        spec["overrides"], spec["data_s"], threads="one thread", env_workers=0)
    timing.update(workers=spec["workers"], estimate_s=spec["estimate_s"],
                  actual_s=time.time() - spec["dispatched_at"])
    write_cell_rows(Path(spec["out"]), spec["task"], rows, run_dir.name, summary, timing,
                    spec["recipe"], provenance)


def die_with_parent(parent: int) -> None:
    """Linux: be sent SIGTERM when the driver dies (killed, or its machine's session ended),
    so no orphan goes on writing a run dir that the next call resumes; the cell then resumes
    from its checkpoint. Exits at once when the driver is already gone."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return  # not Linux: the driver stops its workers on Ctrl-C and errors only
    if os.getppid() != parent:
        sys.exit(1)


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    die_with_parent(int(spec["parent"]))
    if spec.get("core") is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(spec["core"])})  # before JAX sizes its thread pools
    from mabcq.errors import UserError

    try:
        run_cell(spec)
    except UserError as error:
        print(f"mabcq: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
