"""The grid's training groups: what `mabcq reproduce` was asked (Grid), its missing cells as
groups of one compiled step each, the datasets they train on, and one group trained and turned
into its cells' rows, timing and provenance. Every runner (mabcq.grid.runners: here or on Ray;
mabcq.grid.pool and mabcq.grid.worker: cells in worker processes) calls these, so they write
alike; mabcq.grid.reproduce drives them."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mabcq.grid.cells import collect, recipe_of, write_cell_rows
from mabcq.learners.registry import eps_method, family_of
from mabcq.paper import EPS_SWEEP, PAPER_TASKS
from mabcq.util.provenance import device_name

# Appendix B, Figure 6: CQL vs MACQL on medium-replay data, trained for as many updates as the
# figure's x-axes show (HalfCheetah 5 x 10^4, Hopper 10^5, Walker 1.2 x 10^5). Used at the paper
# preset when --updates is not given; other tasks and presets use the preset's count.
FAMILY_TASK_UPDATES: dict[str, dict[str, int]] = {
    "cql": {"halfcheetah-2x3": 50_000, "hopper-3x1": 100_000, "walker2d-2x3": 120_000},
}
CQL_TASKS = tuple(FAMILY_TASK_UPDATES["cql"])


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
    from mabcq.data.sources import build_dataset_files
    from mabcq.envs.tasks import get_task

    recipe = recipe or recipe_of(task)
    directory = data_root / preset / task / recipe
    started = time.perf_counter()
    if not datasets_complete(directory, task):
        print(f"building the {recipe} datasets of {task} ({preset}) in {directory}")
        # `mabcq data build TASK --recipe R --preset P --out DIR --jobs J [--size N]`
        for path in build_dataset_files(get_task(task), recipe, preset, directory,
                                        size=dataset_size(task, preset, recipe), jobs=jobs,
                                        progress=progress):
            print(path)
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


def datasets_complete(directory: Path, task: str) -> bool:
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
    from mabcq.training.config import make_config
    from mabcq.training.loop import train

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
    with `threads`, XLA_FLAGS) of this process, with the data's content hash. Every backend
    calls this, so they write alike."""
    from mabcq.envs.tasks import get_task
    from mabcq.training.logs import read_csv_rows
    from mabcq.util.provenance import cell_provenance, combined_sha256

    provenance = cell_provenance(threads)  # the code as imported, before the long training
    provenance["data_sha256"] = combined_sha256(
        {f"agent_{index}": data.content_sha256() for index, data in enumerate(datasets)})
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
    from mabcq.training.config import make_config

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
