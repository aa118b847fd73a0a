"""`mabcq reproduce`: the paper's grid of (task, method, seed) cells, resumable, in one layout.

A task's methods of one learner family (MABCQ, its ablations, BCQ and the eps sweep; MACQL and
CQL; MA-TD3+BC and TD3+BC; learners.registry) and all their seeds and agents train in ONE
compiled step (train.run_learner); DDPG and Behavior train as their own groups. `--recipe`
trains on another dataset recipe than the task's own (e.g. medium-replay for Appendix B's CQL
runs); every cell records its recipe, and a cell is never mixed with one of another recipe.
A finished cell is written once, atomically, and never trained again: a killed grid resumes
the group in flight from its checkpoint and skips the rest. The CSVs are rebuilt from
the cells after every group, so they always hold exactly the finished cells. The groups train
here one after another, or as Ray tasks over a cluster (`--backend ray`, reproduce_runners).

Layout of OUT (docs/reproduce.md):
    grid.json                              the request, the machine, versions, wall times
    cells/<task>/<method>/seed_<s>.json    one finished cell: recipe, metric rows, group timing
    cells/<task>/behavior[-<recipe>].json  behavior levels' returns, the dataset's own return
    runs/<task>/<group>/                   a group's training run (checkpoint, logs, policies)
    returns.csv  diagnostics.csv  timing.csv  behavior.csv    built from cells/ (report input)
Datasets live in DATA_ROOT/<preset>/<task>/<recipe>/ (default runs/data), shared by grids.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mabcq import atomic
from mabcq.config import EPS_SWEEP
from mabcq.errors import UserError
from mabcq.learners.registry import eps_method, family_of
from mabcq.provenance import device_name
from mabcq.reproduce_cells import (  # noqa: F401 (re-exported: the layout's names)
    BEHAVIOR_COLUMNS,
    DIAGNOSTIC_COLUMNS,
    RETURNS_COLUMNS,
    TASK_RECIPES,
    TIMING_COLUMNS,
    behavior_path,
    behavior_rows,
    cell_path,
    check_recipes,
    collect,
    dataset_level,
    read_cells,
    recipe_of,
    write_cell_rows,
    write_cells,
)

PAPER_TASKS = ("halfcheetah-2x3", "walker2d-2x3", "hopper-3x1", "ant-4x2")
PAPER_METHODS = ("mabcq", "mabcq-no-tn", "mabcq-no-vd", "bcq", "ddpg", "behavior")
# The BCQ family at Table 8's "VAE hidden space 10" read literally as the latent size (the main
# rows use 2 x the action size: issue 17): rows of their own, 3 seeds on the four tasks
# (`mabcq reproduce --methods mabcq-latent10,... --seeds 0,1,2`; docs/reproduce.md).
LITERAL_METHODS = ("mabcq-latent10", "mabcq-latent10-no-tn", "mabcq-latent10-no-vd", "bcq-latent10")
# Appendix B, Figure 6: CQL vs MACQL on medium-replay data, trained for as many updates as the
# figure's x-axes show (HalfCheetah 5 x 10^4, Hopper 10^5, Walker 1.2 x 10^5). Used at the paper
# preset when --updates is not given; other tasks and presets use the preset's count.
FAMILY_TASK_UPDATES: dict[str, dict[str, int]] = {
    "cql": {"halfcheetah-2x3": 50_000, "hopper-3x1": 100_000, "walker2d-2x3": 120_000},
}
CQL_TASKS = tuple(FAMILY_TASK_UPDATES["cql"])


def grid_record(grid: Grid, out: Path, split: dict[str, float],
                overrides: dict[str, Any]) -> dict[str, Any]:
    """grid.json (reproduce_record.grid_record)."""
    from mabcq.reproduce_record import grid_record as record

    return record(grid, out, split, overrides)


def merge_records(previous: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """`current` grid.json over an earlier one of the same OUT (reproduce_record)."""
    from mabcq.reproduce_record import merge_records as merge

    return merge(previous, current)

@dataclass(frozen=True)
class Grid:
    """What `mabcq reproduce` was asked to run."""

    tasks: tuple[str, ...]
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    preset: str
    eps_sweep: bool = False
    recipe: str | None = None  # every task's dataset recipe; None: each task's own (recipe_of)

    def task_methods(self, task: str) -> tuple[str, ...]:
        """The methods of `task`: the requested ones, plus the eps sweep (not on Swimmer)."""
        methods = list(self.methods)
        if self.eps_sweep and task in PAPER_TASKS:
            methods += [eps_method(eps) for eps in EPS_SWEEP if eps_method(eps) not in methods]
        return tuple(methods)

    def recipe_for(self, task: str) -> str:
        return self.recipe or recipe_of(task)


UNITS = ("group", "cell")  # what one compiled step (one Ray task) trains


def groups(task: str, methods: Sequence[str], missing: set[tuple[str, int]],
           unit: str = "group") -> list[tuple[tuple[str, ...], tuple[int, ...]]]:
    """The missing cells of a task as training groups (methods, seeds), each one compiled step.

    Methods of one weighted family (learners.registry: mabcq/bcq/..., macql/cql/...,
    matd3bc/td3bc/...) missing the same seeds share a group, trained by the family's full
    learner; DDPG and Behavior are groups of their own. Cells already finished are in no group.
    unit "cell": every (method, seed) is a group of its own (many small Ray tasks to spread over
    many GPUs; each equals its slice of a group to float tolerance, tests/test_variants.py).
    """
    by_family: dict[tuple[str, tuple[int, ...]], list[str]] = {}
    result = []
    for method in methods:
        seeds = tuple(sorted(seed for name, seed in missing if name == method))
        if not seeds:
            continue
        if unit == "cell":
            result += [((method,), (seed,)) for seed in seeds]
            continue
        family = family_of(method)
        if family.weighted:
            by_family.setdefault((family.name, seeds), []).append(method)
        else:
            result.append(((method,), seeds))
    return [(tuple(names), seeds) for (_, seeds), names in by_family.items()] + result


def group_name(methods: Sequence[str], seeds: Sequence[int]) -> str:
    return "+".join(methods) + "_seeds" + "-".join(str(seed) for seed in seeds)


def ensure_datasets(task: str, preset: str, data_root: Path, progress: bool,
                    jobs: int = 1, recipe: str | None = None) -> tuple[Path, float]:
    """The task's dataset directory for this preset and recipe (default: the task's own), built
    if missing (`mabcq data build`, which keeps finished agent files after a kill; `jobs` agent
    files at once). Returns (directory, seconds spent building)."""
    from mabcq.cli import main

    recipe = recipe or recipe_of(task)
    directory = data_root / preset / task / recipe
    started = time.perf_counter()
    args = ["data", "build", task, "--recipe", recipe, "--preset", preset,
            "--out", str(directory), "--jobs", str(jobs)]
    size = dataset_size(task, preset, recipe)
    if size is not None:
        args += ["--size", str(size)]
    if not progress:
        args.append("--no-progress")
    if not _complete(directory, task):
        print(f"building the {recipe} datasets of {task} ({preset}) in {directory}")
        if main(args) != 0:
            raise UserError(f"building the datasets of {task} in {directory} failed (see above)")
        return directory, time.perf_counter() - started
    return directory, 0.0


def dataset_size(task: str, preset: str, recipe: str) -> int | None:
    """`data build --size`: None (the preset's size), except for a recipe that is SAC's replay
    up to a level (medium-replay) built from a shipped set: all of that replay the set re-creates,
    at most the preset's size, as D4RL's medium-replay is the whole buffer up to the medium
    policy (with the shipped sets: halfcheetah 70 000, hopper 180 000, walker2d 270 000)."""
    from mabcq.behavior.ship import has_shipped, load_shipped
    from mabcq.data.recipes import DATA_PRESETS, get_recipe

    parts = get_recipe(recipe)
    if preset == "smoke" or len(parts) != 1 or not parts[0].replay_until or not has_shipped(task):
        return None
    record = load_shipped(task)
    available = min(int(record["early"]["until_step"]),
                    int(record["levels"][parts[0].replay_until]["step"]))
    return min(DATA_PRESETS[preset].size, available)


def _complete(directory: Path, task: str) -> bool:
    from mabcq.envs.tasks import get_task

    return all((directory / f"agent_{i}.h5").is_file() for i in range(get_task(task).n_agents))


def group_overrides(task: str, methods: Sequence[str], preset: str,
                    overrides: dict[str, Any]) -> dict[str, Any]:
    """The flags a group trains with: the grid's overrides, plus the family's per-task update
    count (FAMILY_TASK_UPDATES) at the paper preset unless --updates was given."""
    counts = FAMILY_TASK_UPDATES.get(family_of(methods[0]).name, {})
    if preset == "paper" and "updates" not in overrides and task in counts:
        return {**overrides, "updates": counts[task]}
    return dict(overrides)


def train_group(task: str, methods: Sequence[str], seeds: Sequence[int], grid: Grid,
                datasets: Sequence[Any], run_dir: Path, progress: bool,
                overrides: dict[str, Any], env_workers: int | None = None) -> dict[str, Any]:
    """Train one group (resuming its run dir when it holds a checkpoint); its summary."""
    from mabcq.train import make_config, train

    config = make_config(task, "+".join(methods), seeds, grid.preset,
                         **group_overrides(task, methods, grid.preset, overrides))
    resume = (run_dir / "config.json").exists()
    summary = train(config, datasets, run_dir, resume=resume, progress=progress,
                    env_workers=env_workers)
    assert summary is not None
    return summary


def run_group(task: str, methods: Sequence[str], seeds: Sequence[int], grid: Grid,
              datasets: Sequence[Any], run_dir: Path, progress: bool,
              overrides: dict[str, Any], data_seconds: float, threads: str = "all cores",
              env_workers: int | None = None
              ) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Train one group (train_group) and read back what its cells are made of: the metrics
    rows, the summary, the timing.csv row and the provenance (code and library versions, device
    with `threads`) of this process. Every backend calls this, so they write alike."""
    from mabcq.envs.tasks import get_task
    from mabcq.logging_utils import read_csv_rows
    from mabcq.provenance import cell_provenance

    provenance = cell_provenance(threads)  # the code as imported, before the long training
    summary = train_group(task, methods, seeds, grid, datasets, run_dir, progress, overrides,
                          env_workers)
    rows = read_csv_rows(run_dir / "metrics.csv")
    timing = group_timing(task, methods, seeds, get_task(task).n_agents, run_dir.name, rows,
                          summary, data_seconds)
    timing["device"] = provenance["device"]
    timing["updates"] = planned_updates(task, methods, grid, overrides)
    timing["evaluations"] = len({row["update"] for row in rows})
    timing["actual_s"] = float(summary["wall_time_s"])  # a worker adds its start-up to it
    return rows, summary, timing, provenance


def planned_updates(task: str, methods: Sequence[str], grid: Grid,
                    overrides: dict[str, Any]) -> int:
    """Updates a group trains, pretraining (G1/G2, the VAE) included."""
    from mabcq.run_config import make_config

    config = make_config(task, "+".join(methods), (0,), grid.preset,
                         **group_overrides(task, methods, grid.preset, overrides))
    return config.pretrain_updates + config.updates


def group_timing(task: str, methods: Sequence[str], seeds: Sequence[int], n_agents: int,
                 group: str, rows: Sequence[dict[str, Any]], summary: dict[str, Any],
                 data_seconds: float) -> dict[str, Any]:
    """One timing.csv row: ms per update of the whole group (the median over its evaluation
    windows' metrics rows, compile excluded) and the wall split."""
    import numpy as np

    per_update = [float(row["time_per_update_ms"]) for row in rows
                  if row.get("time_per_update_ms") not in (None, "", "nan")]
    per_update = [value for value in per_update if math.isfinite(value)]
    eval_seconds = float(summary.get("eval_time_s") or 0.0)
    return {"task": task, "group": group, "methods": "+".join(methods),
            "seeds": len(seeds), "agents": n_agents, "device": device_name(),
            "ms_per_update": float(np.median(per_update)) if per_update else float("nan"),
            "train_s": float(summary["wall_time_s"]) - eval_seconds, "eval_s": eval_seconds,
            "data_s": data_seconds, "workers": 0}


@dataclass(frozen=True)
class GroupJob:
    """One group of a grid to train: its cells, recipe, run dir, and the dataset seconds its
    timing row carries (a task's first group only)."""

    task: str
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    recipe: str
    run_dir: Path
    data_seconds: float

    @property
    def label(self) -> str:
        return f"{self.task} {self.run_dir.name}"


def reproduce(grid: Grid, out: Path, data_root: Path, progress: bool = True,
              overrides: dict[str, Any] | None = None, data_jobs: int = 1,
              ray_options: Any = None, unit: str = "group", workers: int = 1,
              deadline: float | None = None) -> dict[str, Any]:
    """Run every missing cell of `grid` into OUT; returns the wall split in seconds, the cell
    count, the groups that failed (`failed`: ray_backend.Failure) and the cells left at the
    deadline (`left`).

    ray_options: None trains here: unit "cell" as (task, method, seed) cells in `workers`
    single-threaded worker processes, none started that cannot finish by `deadline` (epoch
    seconds; reproduce_pool), unit "group" the groups in this process, one after another; a
    ray_backend.RayOptions trains each group (each cell with unit "cell") as a Ray task.
    """
    from mabcq.data.io import check_dataset_versions, load_dataset_dir
    from mabcq.logging_utils import write_json_atomic
    from mabcq.reproduce_runners import LocalGroups, RayGroups

    overrides = dict(overrides or {})
    split: dict[str, Any] = {"data_s": 0.0, "train_s": 0.0, "eval_s": 0.0}
    started = time.perf_counter()
    for task in grid.tasks:  # a finished cell of another recipe stops the grid before any work
        check_recipes(out, task, grid.recipe_for(task),
                      {(method, seed) for method in grid.task_methods(task)
                       for seed in grid.seeds})
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


def _reproduce_cells(grid: Grid, out: Path, data_root: Path, progress: bool,
                     overrides: dict[str, Any], data_jobs: int, workers: int,
                     deadline: float | None, split: dict[str, Any],
                     started: float) -> dict[str, Any]:
    """reproduce() with unit "cell" here: every missing cell in a worker process."""
    from mabcq.logging_utils import write_json_atomic
    from mabcq.reproduce_pool import CellGrid

    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "grid.json", grid_record(grid, out, {**split, "wall_s": 0.0},
                                                     overrides))
    outcome = CellGrid(grid, out, data_root, overrides, split, progress, data_jobs, workers,
                       deadline).run()
    counts = collect(out)
    split["wall_s"] = time.perf_counter() - started
    write_json_atomic(out / "grid.json", grid_record(grid, out, split, overrides))
    return {**split, "cells": counts["cells"], "failed": outcome.failed, "left": outcome.left}


def finish_group(out: Path, job: GroupJob, rows: Sequence[dict[str, Any]],
                 summary: dict[str, Any], timing: dict[str, Any],
                 split: dict[str, Any], provenance: dict[str, Any] | None = None) -> None:
    """A trained group's cells into OUT (atomically), its seconds into the split, the CSVs
    rebuilt (so they always hold exactly the finished cells)."""
    write_cell_rows(out, job.task, rows, job.run_dir.name, summary, timing, job.recipe,
                    provenance)
    split["train_s"] += timing["train_s"]
    split["eval_s"] += timing["eval_s"]
    collect(out)
