"""`mabcq reproduce`: the paper's grid of (task, method, seed) cells, resumable, in one layout.

A task's methods of one learner family (MABCQ, its ablations, BCQ and the eps sweep; MACQL and
CQL; MA-TD3+BC and TD3+BC; learners.registry) and all their seeds and agents train in ONE
compiled step (training.config.run_learner); DDPG and Behavior train as their own groups. `--recipe`
trains on another dataset recipe than the task's own (e.g. medium-replay for Appendix B's CQL
runs); every cell records its recipe, and a cell is never mixed with one of another recipe.
A finished cell is written once, atomically, and never trained again: a killed grid resumes
the group in flight from its checkpoint and skips the rest. The CSVs are rebuilt from
the cells after every group, so they always hold exactly the finished cells. The groups train
here one after another, or as Ray tasks over a cluster (`--backend ray`, grid.runners).

Layout of OUT (docs/reproduce.md):
    grid.json                              the request, the machine, versions, wall times
    cells/<task>/<method>/seed_<s>.json    one finished cell: recipe, metric rows, group timing
    cells/<task>/behavior[-<recipe>].json  behavior levels' returns, the dataset's own return
    runs/<task>/<group>/                   a group's training run (checkpoint, logs, policies)
    returns.csv  diagnostics.csv  timing.csv  behavior.csv    built from cells/ (report input)
Datasets live in DATA_ROOT/<preset>/<task>/<recipe>/ (default runs/data), shared by grids.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mabcq.grid.cells import (
    behavior_path,
    behavior_rows,
    cell_path,
    check_code,
    check_recipes,
    collect,
)
from mabcq.grid.groups import Grid, GroupJob, ensure_datasets, group_name, groups
from mabcq.grid.record import grid_record
from mabcq.util import atomic
from mabcq.util.provenance import code_version


def reproduce(grid: Grid, out: Path, data_root: Path, progress: bool = True,
              overrides: dict[str, Any] | None = None, data_jobs: int = 1,
              ray_options: Any = None, unit: str = "group", workers: int = 1,
              deadline: float | None = None,
              allowed_commits: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run every missing cell of `grid` into OUT; returns the wall split in seconds, the cell
    count, the groups that failed (`failed`: ray_backend.Failure) and the cells left at the
    deadline (`left`).

    allowed_commits: commits (prefixes) whose finished cells may stay beside this code's in OUT
    (grid.cells.check_code).

    ray_options: None trains here: unit "cell" as (task, method, seed) cells in `workers`
    single-threaded worker processes, none started that cannot finish by `deadline` (epoch
    seconds; grid.pool), unit "group" the groups in this process, one after another; a
    ray_backend.RayOptions trains each group (each cell with unit "cell") as a Ray task.
    """
    from mabcq.data.io import check_dataset_versions, load_dataset_dir
    from mabcq.grid.runners import LocalGroups, RayGroups
    from mabcq.training.logs import write_json_atomic

    overrides = dict(overrides or {})
    split: dict[str, Any] = {"data_s": 0.0, "train_s": 0.0, "eval_s": 0.0}
    started = time.perf_counter()
    check_out(grid, out, allowed_commits)
    if ray_options is None and unit == "cell":
        return _reproduce_cells(grid, out, data_root, progress, overrides, data_jobs, workers,
                                deadline, split, started)
    runner = (LocalGroups if ray_options is None else RayGroups)(
        grid, out, overrides, split, progress, ray_options)
    with runner:  # Ray joined (and its resources checked) before anything is written
        out.mkdir(parents=True, exist_ok=True)
        # The request first, so results of a grid killed before its end still say what they are.
        write_json_atomic(out / "grid.json", grid_record(grid, out, {**split, "wall_s": 0.0},
                                                         overrides))
        for task in grid.tasks:
            methods = grid.task_methods(task)
            wanted = {(method, seed) for method in methods for seed in grid.seeds}
            recipe = grid.recipe_for(task)
            missing = {cell for cell in wanted if not cell_path(out, task, *cell).is_file()}
            data_dir, data_seconds = ensure_datasets(task, grid.preset, data_root, progress,
                                                     data_jobs, recipe)
            split["data_s"] += data_seconds
            datasets = load_dataset_dir(data_dir)
            check_dataset_versions(datasets, str(data_dir))
            atomic.write_json(behavior_path(out, task, recipe),
                              behavior_rows(task, datasets, recipe))
            todo = groups(task, methods, missing, unit)
            print(f"{task}: {len(wanted) - len(missing)} of {len(wanted)} cells done; "
                  f"{len(todo)} group(s) to train")
            for group_methods, seeds in todo:
                runner.add(GroupJob(task, group_methods, seeds, recipe,
                                    out / "runs" / task / group_name(group_methods, seeds),
                                    data_seconds), datasets)
                data_seconds = 0.0  # counted once per task
        failures = runner.run()
    counts = collect(out)
    split["wall_s"] = time.perf_counter() - started
    write_json_atomic(out / "grid.json", grid_record(grid, out, split, overrides))
    split["cells"] = counts["cells"]
    split["failed"] = failures
    split["left"] = []
    return split


def check_out(grid: Grid, out: Path, allowed_commits: tuple[str, ...] = ()) -> None:
    """Before any work: OUT's finished cells come from this code (or ALLOWED_COMMITS) and
    from the recipes this grid asks for; else UserError."""
    check_code(out, code_version()["commit"], allowed_commits)  # one implementation per grid
    for task in grid.tasks:
        check_recipes(out, task, grid.recipe_for(task),
                      {(method, seed) for method in grid.task_methods(task)
                       for seed in grid.seeds})


def print_plan(grid: Grid, out: Path, data_root: Path, overrides: dict[str, Any] | None = None,
               data_jobs: int = 1, workers: int = 1, deadline: float | None = None,
               allowed_commits: tuple[str, ...] = ()) -> int:
    """What reproduce() with unit "cell" would run: the same checks, then the cells left in
    their order, each with its estimate, the totals and what fits before DEADLINE; nothing is
    trained, built or written. Returns the number of cells left."""
    from mabcq.grid.pool import CellGrid

    check_out(grid, out, allowed_commits)
    cells = CellGrid(grid, out, data_root, dict(overrides or {}), {}, False, data_jobs,
                     workers, deadline)
    left = cells.missing()
    cells.print_plan(left)
    return len(left)


def _reproduce_cells(grid: Grid, out: Path, data_root: Path, progress: bool,
                     overrides: dict[str, Any], data_jobs: int, workers: int,
                     deadline: float | None, split: dict[str, Any],
                     started: float) -> dict[str, Any]:
    """reproduce() with unit "cell" here: every missing cell in a worker process."""
    from mabcq.grid.pool import CellGrid
    from mabcq.training.logs import write_json_atomic

    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "grid.json", grid_record(grid, out, {**split, "wall_s": 0.0},
                                                     overrides))
    outcome = CellGrid(grid, out, data_root, overrides, split, progress, data_jobs, workers,
                       deadline).run()
    counts = collect(out)
    split["wall_s"] = time.perf_counter() - started
    write_json_atomic(out / "grid.json", grid_record(grid, out, split, overrides))
    return {**split, "cells": counts["cells"], "failed": outcome.failed, "left": outcome.left}
