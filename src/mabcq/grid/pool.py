"""A CPU grid as (task, method, seed) cells in worker processes (`mabcq reproduce --unit cell`,
the default on a CPU): the order and estimates of grid.plan, `--workers N` single-threaded
processes pinned to a core each (grid.worker), and a deadline (`--stop-after`, `--until`)
before which no cell starts that its estimate says cannot finish.

Why cells, and why every cell in a worker: on a CPU a grid step costs the sum of its methods'
steps (docs/reproduce.md, "Wall time"), so putting a task's BCQ-family methods in one step saves
nothing, while a (task, method, seed) cell is a piece of 5-15 minutes that finishes, and is
committed, on its own. Every cell runs in the same kind of process (one XLA thread, one core),
so its numbers do not depend on how many workers run or on which core.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mabcq.grid.plan import (
    Cell,
    CellCost,
    Estimate,
    duration_text,
    estimate_build,
    estimate_cell,
    fits,
    order_cells,
    overrun_allowance,
)
from mabcq.util.provenance import usable_cores

POLL_S = 0.2


def default_workers() -> int:
    """--workers when not given: one per core this process may use. Two single-threaded cells
    on a 2-core CPU ran at ~1.9x the cells per hour of one, with the same numbers bitwise
    (docs/reproduce.md, "On a CPU")."""
    return len(usable_cores()) or os.cpu_count() or 1


def worker_cores(workers: int) -> list[int | None]:
    """The core of each worker slot: the cores this process may run on (taskset), one per
    worker, shared round-robin when there are more workers than cores."""
    cores = usable_cores()
    if not cores:
        return [None] * workers
    return [cores[index % len(cores)] for index in range(workers)]


@dataclass
class Running:
    cell: Cell
    slot: int
    process: subprocess.Popen
    log: IO[bytes]
    log_path: Path
    estimate: Estimate
    started: float
    stopped: bool = False  # terminated past the deadline: resumes from its checkpoint


@dataclass
class Outcome:
    """What a call did: cells finished, cells left (stopped at the deadline), failures."""

    finished: int = 0
    left: list[Cell] = field(default_factory=list)
    failed: list[Any] = field(default_factory=list)


class CellGrid:
    """The missing cells of a grid, their costs and estimates, and the worker slots."""

    def __init__(self, grid: Any, out: Path, data_root: Path, overrides: dict[str, Any],
                 split: dict[str, Any], progress: bool, data_jobs: int, workers: int,
                 deadline: float | None) -> None:
        self.grid, self.out, self.data_root, self.overrides = grid, out, data_root, overrides
        self.split, self.progress, self.data_jobs = split, progress, data_jobs
        self.workers, self.deadline = workers, deadline
        self.cores = worker_cores(workers)
        self.costs: dict[tuple[str, str], CellCost] = {}
        self.prepared: dict[str, float] = {}  # task -> dataset seconds not yet carried by a cell
        self.history = self._history()

    # ---- what is left, in which order, at what cost ----

    def missing(self) -> list[Cell]:
        from mabcq.grid.cells import cell_path

        cells = [Cell(task, method, seed) for task in self.grid.tasks
                 for method in self.grid.task_methods(task) for seed in self.grid.seeds]
        cells = [cell for cell in cells
                 if not cell_path(self.out, cell.task, cell.method, cell.seed).is_file()]
        ready = {task for task in self.grid.tasks if self._data_ready(task)}
        methods = {task: self.grid.task_methods(task) for task in self.grid.tasks}
        return order_cells(cells, self.grid.tasks, methods, self.grid.seeds[0], ready)

    def cost(self, cell: Cell) -> CellCost:
        from mabcq.envs.tasks import get_task
        from mabcq.grid.groups import group_overrides
        from mabcq.learners.registry import family_of
        from mabcq.training.config import make_config

        key = (cell.task, cell.method)
        if key not in self.costs:
            config = make_config(cell.task, cell.method, (cell.seed,), self.grid.preset,
                                 **group_overrides(cell.task, (cell.method,), self.grid.preset,
                                                   self.overrides))
            self.costs[key] = CellCost(family_of(cell.method).name, get_task(cell.task).n_agents,
                                       config.pretrain_updates + config.updates,
                                       -(-config.updates // config.eval_every),
                                       config.pretrain_updates)
        return self.costs[key]

    def estimate(self, cell: Cell) -> Estimate:
        """The cell's own seconds (its dataset build is build_estimate)."""
        return estimate_cell(cell, self.cost(cell), self.history, self.grid.preset,
                             self.workers, self.cpu, self._done_fraction(cell), self.device)

    def build_estimate(self, task: str) -> float:
        """Seconds to build `task`'s datasets before its first cell; 0 when they are here."""
        if task in self.prepared or self._data_ready(task):
            return 0.0
        from mabcq.data.recipes import DATA_PRESETS
        from mabcq.envs.tasks import get_task
        from mabcq.grid.groups import dataset_size

        recipe = self.grid.recipe_for(task)
        size = (dataset_size(task, self.grid.preset, recipe)
                or DATA_PRESETS[self.grid.preset].size)
        return estimate_build(task, get_task(task).n_agents, size, self.data_jobs, self.history)

    @functools.cached_property
    def cpu(self) -> bool:
        import jax

        return jax.default_backend() == "cpu"

    @functools.cached_property
    def device(self) -> str:
        """This machine in timing.csv's words, without the worker's thread note."""
        from mabcq.util.provenance import device_name

        return device_name()

    def _history(self) -> list[dict[str, Any]]:
        from mabcq.grid.cells import read_cells
        from mabcq.learners.registry import family_of

        rows = []
        for cell in read_cells(self.out):
            timing = cell.get("timing") or {}
            if timing.get("methods"):
                rows.append({**timing, "family": family_of(timing["methods"].split("+")[0]).name})
        return rows

    def _data_dir(self, task: str) -> Path:
        return self.data_root / self.grid.preset / task / self.grid.recipe_for(task)

    def _data_ready(self, task: str) -> bool:
        from mabcq.grid.groups import datasets_complete

        return datasets_complete(self._data_dir(task), task)

    def _run_dir(self, cell: Cell) -> Path:
        from mabcq.grid.groups import group_name

        return self.out / "runs" / cell.task / group_name((cell.method,), (cell.seed,))

    def _done_fraction(self, cell: Cell) -> float:
        """The part of a cell's updates its checkpoint holds (a cell stopped or killed earlier):
        pretraining and the updates up to its last metrics row (none yet: counted as 0)."""
        from mabcq.training.logs import read_csv_rows

        run_dir = self._run_dir(cell)
        if not (run_dir / "checkpoint.npz").is_file() or not (run_dir / "metrics.csv").is_file():
            return 0.0
        trained = [int(row["update"]) for row in read_csv_rows(run_dir / "metrics.csv")
                   if row.get("update")]
        cost = self.cost(cell)
        return min(1.0, (cost.pretrain + max(trained)) / cost.updates) if trained else 0.0

    # ---- the plan, printed before any work ----

    def print_plan(self, cells: Sequence[Cell]) -> None:
        done = sum(len(self.grid.task_methods(task)) * len(self.grid.seeds)
                   for task in self.grid.tasks) - len(cells)
        print(f"{done} cells done, {len(cells)} to run with {self.workers} worker(s) "
              f"(one thread each, cores {', '.join(str(core) for core in self.cores)}):")
        total, builds, unknown, seen = 0.0, 0.0, 0, set()
        for cell in cells:
            estimate = self.estimate(cell)
            build = self.build_estimate(cell.task) if cell.task not in seen else 0.0
            seen.add(cell.task)
            extra = f" + dataset build ~{duration_text(build)}" if build else ""
            print(f"  {cell.label:<42} ~{duration_text(estimate.seconds):>6}{extra}  "
                  f"[{estimate.source}]")
            total += estimate.seconds or 0.0
            builds += build
            unknown += estimate.seconds is None
        wall = builds + total / max(1, self.workers)
        data = f", dataset builds ~{duration_text(builds)}" if builds else ""
        print(f"remaining: {len(cells)} cells, ~{duration_text(total)} of cell time"
              f"{f' ({unknown} unknown)' if unknown else ''}{data}; ~{duration_text(wall)} "
              f"wall with {self.workers} worker(s)")
        if self.deadline is not None:
            fitting = self._simulate(cells)
            print(f"deadline {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(self.deadline))}"
                  f" (in {duration_text(self.deadline - time.time())}): about {fitting} of "
                  f"{len(cells)} cells fit", flush=True)

    def _simulate(self, cells: Sequence[Cell]) -> int:
        """How many cells the dispatch loop would start before the deadline, on estimates."""
        free = [time.time()] * self.workers
        seen, count = set(), 0
        for cell in cells:
            slot = min(range(self.workers), key=free.__getitem__)
            build = self.build_estimate(cell.task) if cell.task not in seen else 0.0
            seconds = (self.estimate(cell).seconds or 0.0) + build
            if fits(free[slot], seconds, self.deadline):
                free[slot] += seconds
                seen.add(cell.task)
                count += 1
        return count

    # ---- running them ----

    def run(self) -> Outcome:
        from mabcq.grid.ray_backend import Failure

        queue, outcome = self.missing(), Outcome()
        self.print_plan(queue)
        running: list[Running] = []
        try:
            while True:
                for job in [job for job in running if job.process.poll() is not None]:
                    running.remove(job)
                    self._reap(job, outcome, Failure)
                self._enforce_deadline(running)
                busy = {job.slot for job in running}
                for slot in [slot for slot in range(self.workers) if slot not in busy]:
                    job = self._start_next(queue, slot)
                    if job is None:
                        break
                    running.append(job)
                if not running:
                    break
                time.sleep(POLL_S)
        finally:
            for job in running:  # an error or Ctrl-C here: stop the workers (they resume)
                job.process.terminate()
            for job in running:
                job.process.wait()
                job.log.close()
        outcome.left += queue
        return outcome

    def _start_next(self, queue: list[Cell], slot: int) -> Running | None:
        """Start the first queued cell that fits before the deadline (building its task's
        datasets first when they are missing) in worker `slot`; None when none fits."""
        for cell in list(queue):
            estimate = self.estimate(cell)
            if not fits(time.time(), (estimate.seconds or 0.0) + self.build_estimate(cell.task),
                        self.deadline):
                continue
            self._prepare(cell.task)
            if not fits(time.time(), estimate.seconds, self.deadline):  # the build ran long
                continue
            queue.remove(cell)
            return self._spawn(cell, slot, estimate)
        return None

    def _prepare(self, task: str) -> None:
        """A task's datasets built (when missing) and checked, its behavior rows written; once
        per call, before its first cell."""
        if task in self.prepared:
            return
        from mabcq.data.io import check_dataset_versions, load_dataset_dir
        from mabcq.grid.cells import behavior_path, behavior_rows
        from mabcq.grid.groups import ensure_datasets
        from mabcq.util import atomic

        recipe = self.grid.recipe_for(task)
        directory, seconds = ensure_datasets(task, self.grid.preset, self.data_root,
                                             self.progress, self.data_jobs, recipe)
        self.split["data_s"] += seconds
        datasets = load_dataset_dir(directory)
        check_dataset_versions(datasets, str(directory))
        atomic.write_json(behavior_path(self.out, task, recipe),
                          behavior_rows(task, datasets, recipe))
        self.prepared[task] = seconds

    def _spawn(self, cell: Cell, slot: int, estimate: Estimate) -> Running:
        import mabcq
        from mabcq.grid.worker import worker_environment

        run_dir = self._run_dir(cell)
        run_dir.mkdir(parents=True, exist_ok=True)
        spec = {"task": cell.task, "method": cell.method, "seed": cell.seed,
                "grid": {"tasks": list(self.grid.tasks), "methods": list(self.grid.methods),
                         "seeds": list(self.grid.seeds), "preset": self.grid.preset,
                         "eps_sweep": self.grid.eps_sweep, "recipe": self.grid.recipe},
                "recipe": self.grid.recipe_for(cell.task), "overrides": self.overrides,
                "data_dir": str(self._data_dir(cell.task)), "run_dir": str(run_dir),
                "out": str(self.out), "core": self.cores[slot], "workers": self.workers,
                "estimate_s": estimate.seconds, "data_s": self.prepared.get(cell.task, 0.0),
                "dispatched_at": time.time(), "parent": os.getpid()}
        self.prepared[cell.task] = 0.0  # a task's build seconds go with its first cell only
        log_path = run_dir / "worker.log"
        log = open(log_path, "ab")
        env = worker_environment(os.environ, str(Path(mabcq.__file__).resolve().parents[1]))
        process = subprocess.Popen([sys.executable, "-m", "mabcq.grid.worker",
                                    json.dumps(spec)], env=env, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        print(f"{_clock()} start {cell.label} on core {self.cores[slot]} (~"
              f"{duration_text(estimate.seconds)})", flush=True)
        return Running(cell, slot, process, log, log_path, estimate, time.time())

    def _enforce_deadline(self, running: list[Running]) -> None:
        """Stop a cell that runs past the deadline by more than its allowance: it resumes
        from its last checkpoint (every evaluation) on the next call."""
        if self.deadline is None:
            return
        for job in running:
            if not job.stopped and time.time() > (self.deadline
                                                  + overrun_allowance(job.estimate.seconds)):
                job.stopped = True
                job.process.terminate()

    def _reap(self, job: Running, outcome: Outcome, failure: Any) -> None:
        from mabcq.grid.cells import cell_path, collect

        job.log.close()
        code = job.process.returncode
        path = cell_path(self.out, job.cell.task, job.cell.method, job.cell.seed)
        took = time.time() - job.started
        if code == 0 and path.is_file():
            cell = json.loads(path.read_text())
            timing = cell["timing"]
            self.history = self._history()
            self.split["train_s"] += float(timing.get("train_s") or 0.0)
            self.split["eval_s"] += float(timing.get("eval_s") or 0.0)
            collect(self.out)
            outcome.finished += 1
            took = float(timing.get("actual_s") or took)  # the worker's own clock: this loop
            # may have noticed the cell late (it builds a task's datasets in between)
            print(f"{_clock()} done  {job.cell.label} in {duration_text(took)} (estimate "
                  f"{duration_text(job.estimate.seconds)})", flush=True)
        elif job.stopped:
            outcome.left.append(job.cell)
            print(f"{_clock()} stopped {job.cell.label} past the deadline after "
                  f"{duration_text(took)}; it resumes from its last checkpoint on the next run",
                  flush=True)
        else:
            lines = job.log_path.read_text(errors="replace").strip().splitlines()
            outcome.failed.append(failure(job.cell.label, 1, f"exit {code}: "
                                          f"{lines[-1] if lines else 'no output'} "
                                          f"(log: {job.log_path})"))
            print(f"{_clock()} FAILED {job.cell.label}: exit {code}, see {job.log_path}",
                  flush=True)


def _clock() -> str:
    """The local time of day a cell's line is printed at: the log of a long queue says when
    each cell started and ended (its cell file keeps only durations)."""
    return time.strftime("%H:%M:%S")
