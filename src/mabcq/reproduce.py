"""`mabcq reproduce`: the paper's grid of (task, method, seed) cells, resumable, in one layout.

A task's BCQ-family methods (MABCQ, its ablations, BCQ, the eps sweep) and all their seeds and
agents train in ONE compiled step (train.run_learner); DDPG and Behavior train as their own
groups. A finished cell is written once, atomically, and never trained again: a killed grid
resumes the group in flight from its checkpoint and skips the rest. The CSVs are rebuilt from
the cells after every group, so they always hold exactly the finished cells.

Layout of OUT (docs/reproduce.md):
    grid.json                              the request, the machine, versions, wall times
    cells/<task>/<method>/seed_<s>.json    one finished cell: metric rows, its group's timing
    runs/<task>/<group>/                   a group's training run (checkpoint, logs, policies)
    returns.csv  diagnostics.csv  timing.csv  behavior.csv    built from cells/ (report input)
Datasets live in DATA_ROOT/<preset>/<task>/<recipe>/ (default runs/data), shared by grids.
"""

from __future__ import annotations

import csv
import io
import json
import math
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mabcq import atomic
from mabcq.config import BCQ_FAMILY, EPS_SWEEP, eps_method, parse_method
from mabcq.errors import UserError

PAPER_TASKS = ("halfcheetah-2x3", "walker2d-2x3", "hopper-3x1", "ant-4x2")
PAPER_METHODS = ("mabcq", "mabcq-no-tn", "mabcq-no-vd", "bcq", "ddpg", "behavior")
# The appendix's Swimmer runs on the low-quality recipe (early + intermediate, no expert).
TASK_RECIPES = {"swimmer-2x1": "low"}

RETURNS_COLUMNS = ("task", "method", "seed", "updates", "return")
DIAGNOSTIC_COLUMNS = ("task", "method", "seed", "updates", "value_difference",
                      "extrapolation_error", "lambda_vd_mean", "lambda_vd_at_clip",
                      "lambda_tn_mean", "lambda_tn_data_in_paper_range", "critic_loss", "q_mean")
TIMING_COLUMNS = ("task", "group", "methods", "seeds", "agents", "device", "ms_per_update",
                  "train_s", "eval_s", "data_s")
BEHAVIOR_COLUMNS = ("task", "level", "step", "return")


@dataclass(frozen=True)
class Grid:
    """What `mabcq reproduce` was asked to run."""

    tasks: tuple[str, ...]
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    preset: str
    eps_sweep: bool = False

    def task_methods(self, task: str) -> tuple[str, ...]:
        """The methods of `task`: the requested ones, plus the eps sweep (not on Swimmer)."""
        methods = list(self.methods)
        if self.eps_sweep and task in PAPER_TASKS:
            methods += [eps_method(eps) for eps in EPS_SWEEP if eps_method(eps) not in methods]
        return tuple(methods)


def recipe_of(task: str) -> str:
    return TASK_RECIPES.get(task, "paper")


def cell_path(out: Path, task: str, method: str, seed: int) -> Path:
    return out / "cells" / task / method / f"seed_{seed}.json"


def groups(task: str, methods: Sequence[str], missing: set[tuple[str, int]]
           ) -> list[tuple[tuple[str, ...], tuple[int, ...]]]:
    """The missing cells of a task as training groups (methods, seeds), each one compiled step.

    BCQ-family methods missing the same seeds share a group; DDPG and Behavior are groups of
    their own. Cells already finished are in no group.
    """
    by_seeds: dict[tuple[int, ...], list[str]] = {}
    result = []
    for method in methods:
        seeds = tuple(sorted(seed for name, seed in missing if name == method))
        if not seeds:
            continue
        if parse_method(method)[0] in BCQ_FAMILY:
            by_seeds.setdefault(seeds, []).append(method)
        else:
            result.append(((method,), seeds))
    return [(tuple(names), seeds) for seeds, names in by_seeds.items()] + result


def group_name(methods: Sequence[str], seeds: Sequence[int]) -> str:
    return "+".join(methods) + "_seeds" + "-".join(str(seed) for seed in seeds)


def device_name() -> str:
    """The accelerator the update runs on, in words (for timing.csv and the report)."""
    import os

    import jax

    device = jax.devices()[0]
    if device.platform == "cpu":
        return f"cpu: {_cpu_model()} ({os.cpu_count()} cores)"
    return f"{device.platform}: {device.device_kind}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ensure_datasets(task: str, preset: str, data_root: Path, progress: bool,
                    jobs: int = 1) -> tuple[Path, float]:
    """The task's dataset directory for this preset, built if missing (`mabcq data build`, which
    keeps finished agent files after a kill; `jobs` agent files at once). Returns (directory,
    seconds spent building)."""
    from mabcq.cli import main

    directory = data_root / preset / task / recipe_of(task)
    started = time.perf_counter()
    args = ["data", "build", task, "--recipe", recipe_of(task), "--preset", preset,
            "--out", str(directory), "--jobs", str(jobs)]
    if not progress:
        args.append("--no-progress")
    if not _complete(directory, task):
        print(f"building the {recipe_of(task)} datasets of {task} ({preset}) in {directory}")
        if main(args) != 0:
            raise UserError(f"building the datasets of {task} in {directory} failed (see above)")
        return directory, time.perf_counter() - started
    return directory, 0.0


def _complete(directory: Path, task: str) -> bool:
    from mabcq.envs.tasks import get_task

    return all((directory / f"agent_{i}.h5").is_file() for i in range(get_task(task).n_agents))


def train_group(task: str, methods: Sequence[str], seeds: Sequence[int], grid: Grid,
                datasets: Sequence[Any], run_dir: Path, progress: bool,
                overrides: dict[str, Any]) -> dict[str, Any]:
    """Train one group (resuming its run dir when it holds a checkpoint); its summary."""
    from mabcq.train import make_config, train

    config = make_config(task, "+".join(methods), seeds, grid.preset, **overrides)
    resume = (run_dir / "config.json").exists()
    summary = train(config, datasets, run_dir, resume=resume, progress=progress)
    assert summary is not None
    return summary


def write_cells(out: Path, task: str, run_dir: Path, summary: dict[str, Any],
                timing: dict[str, Any]) -> None:
    """Split a finished group's metrics.csv into one cell file per (method, seed)."""
    from mabcq.logging_utils import read_csv_rows, write_json_atomic

    rows = read_csv_rows(run_dir / "metrics.csv")
    methods = summary["method"].split("+")
    for method in methods:
        for seed in summary["seeds"]:
            mine = [row for row in rows
                    if int(row["seed"]) == seed and row.get("method", method) == method]
            write_json_atomic(cell_path(out, task, method, seed),
                              {"task": task, "method": method, "seed": seed, "rows": mine,
                               "group": run_dir.name, "timing": timing})


def group_timing(task: str, methods: Sequence[str], seeds: Sequence[int], n_agents: int,
                 run_dir: Path, summary: dict[str, Any], data_seconds: float) -> dict[str, Any]:
    """One timing.csv row: ms per update of the whole group (the median over its evaluation
    windows, compile excluded) and the wall split."""
    import numpy as np

    from mabcq.logging_utils import read_csv_rows

    per_update = [float(row["time_per_update_ms"]) for row in read_csv_rows(
        run_dir / "metrics.csv") if row.get("time_per_update_ms") not in (None, "", "nan")]
    per_update = [value for value in per_update if math.isfinite(value)]
    eval_seconds = float(summary.get("eval_time_s") or 0.0)
    return {"task": task, "group": run_dir.name, "methods": "+".join(methods),
            "seeds": len(seeds), "agents": n_agents, "device": device_name(),
            "ms_per_update": float(np.median(per_update)) if per_update else float("nan"),
            "train_s": float(summary["wall_time_s"]) - eval_seconds, "eval_s": eval_seconds,
            "data_s": data_seconds}


def read_cells(out: Path) -> list[dict[str, Any]]:
    """Every finished cell under OUT/cells, in path order."""
    return [json.loads(path.read_text()) for path in sorted((out / "cells").glob("*/*/*.json"))]


def collect(out: Path) -> dict[str, int]:
    """Rebuild the CSVs from cells/ (sorted, so a resumed grid writes what a straight one does)."""
    cells = read_cells(out)
    returns, diagnostics, timing = [], [], {}
    for cell in cells:
        for row in cell["rows"]:
            key = {"task": cell["task"], "method": cell["method"], "seed": cell["seed"],
                   "updates": int(row["update"])}
            returns.append({**key, "return": row.get("return_mean", "")})
            diagnostics.append({**key, **{name: row.get(name, "")
                                          for name in DIAGNOSTIC_COLUMNS[4:]}})
        timing[(cell["task"], cell["group"])] = cell["timing"]
    def order(row: dict[str, Any]) -> tuple[Any, ...]:
        return row["task"], row["method"], row["seed"], row["updates"]

    _write_csv(out / "returns.csv", RETURNS_COLUMNS, sorted(returns, key=order))
    _write_csv(out / "diagnostics.csv", DIAGNOSTIC_COLUMNS, sorted(diagnostics, key=order))
    _write_csv(out / "timing.csv", TIMING_COLUMNS, [timing[key] for key in sorted(timing)])
    behavior = [row for path in sorted((out / "cells").glob("*/behavior.json"))
                for row in json.loads(path.read_text())]
    _write_csv(out / "behavior.csv", BEHAVIOR_COLUMNS, behavior)
    return {"cells": len(cells), "returns": len(returns)}


def behavior_rows(task: str, datasets: Sequence[Any]) -> list[dict[str, Any]]:
    """behavior.csv rows of a task: the behavior levels' own eval returns (from agent 0's file
    metadata) and the mean episode return in agent 0's dataset."""
    meta = datasets[0].metadata
    rows = []
    for level, value in sorted((meta.get("behavior") or {}).get("levels", {}).items()):
        rows.append({"task": task, "level": level, "step": value.get("step", ""),
                     "return": value.get("return_mean", "")})
    episodes = meta.get("episode_returns") or {}
    rows.append({"task": task, "level": "dataset", "step": "",
                 "return": episodes.get("mean", "")})
    return rows


def _write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n",
                            extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({name: _cell(row.get(name)) for name in columns})
    atomic.write_bytes(path, buffer.getvalue().encode())


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def reproduce(grid: Grid, out: Path, data_root: Path, progress: bool = True,
              overrides: dict[str, Any] | None = None, data_jobs: int = 1
              ) -> dict[str, float]:
    """Run every missing cell of `grid` into OUT; returns the wall split in seconds."""
    from mabcq.data.io import check_dataset_versions, load_dataset_dir
    from mabcq.envs.tasks import get_task
    from mabcq.logging_utils import write_json_atomic

    overrides = dict(overrides or {})
    out.mkdir(parents=True, exist_ok=True)
    split = {"data_s": 0.0, "train_s": 0.0, "eval_s": 0.0}
    started = time.perf_counter()
    # The request first, so results of a grid killed before its end still say what they are.
    write_json_atomic(out / "grid.json", grid_record(grid, out, {**split, "wall_s": 0.0},
                                                     overrides))
    for task in grid.tasks:
        methods = grid.task_methods(task)
        wanted = {(method, seed) for method in methods for seed in grid.seeds}
        missing = {cell for cell in wanted if not cell_path(out, task, *cell).is_file()}
        data_dir, data_seconds = ensure_datasets(task, grid.preset, data_root, progress,
                                                 data_jobs)
        split["data_s"] += data_seconds
        datasets = load_dataset_dir(data_dir)
        check_dataset_versions(datasets, str(data_dir))
        atomic.write_json(out / "cells" / task / "behavior.json", behavior_rows(task, datasets))
        todo = groups(task, methods, missing)
        print(f"{task}: {len(wanted) - len(missing)} of {len(wanted)} cells done; "
              f"{len(todo)} group(s) to train")
        for group_methods, seeds in todo:
            run_dir = out / "runs" / task / group_name(group_methods, seeds)
            summary = train_group(task, group_methods, seeds, grid, datasets, run_dir,
                                  progress, overrides)
            timing = group_timing(task, group_methods, seeds, get_task(task).n_agents,
                                  run_dir, summary, data_seconds)
            data_seconds = 0.0  # counted once per task
            write_cells(out, task, run_dir, summary, timing)
            split["train_s"] += timing["train_s"]
            split["eval_s"] += timing["eval_s"]
            collect(out)
    counts = collect(out)
    split["wall_s"] = time.perf_counter() - started
    write_json_atomic(out / "grid.json", grid_record(grid, out, split, overrides))
    split["cells"] = counts["cells"]
    return split


def grid_record(grid: Grid, out: Path, split: dict[str, float],
                overrides: dict[str, Any]) -> dict[str, Any]:
    """grid.json: the request, the scale it ran at, the machine, versions, and the seconds per
    stage summed over every call that worked on OUT (a resumed grid adds to them)."""
    from mabcq.data.recipes import DATA_PRESETS
    from mabcq.provenance import RESULT_LIBRARIES, library_versions
    from mabcq.train import make_config

    probe = make_config(grid.tasks[0], grid.methods[0], grid.seeds, grid.preset, **overrides)
    batch = probe.learner_overrides.get("batch_size", 1024)
    totals, before = dict(split), {}
    if (out / "grid.json").is_file():
        before = json.loads((out / "grid.json").read_text())
        previous = before.get("wall_time_s", {})
        totals = {name: value + float(previous.get(name) or 0.0) for name, value in split.items()}

    def union(name: str, current: Sequence[Any]) -> list[Any]:
        """What earlier calls on OUT ran (a grid run by task chunks) and this one, in order."""
        return list(dict.fromkeys([*before.get(name, []), *current]))

    tasks = union("tasks", grid.tasks)
    if before and before.get("preset") != grid.preset:
        raise UserError(f"{out}: holds a {before.get('preset')} grid; use another --out for "
                        f"the {grid.preset} preset")
    return {"preset": grid.preset, "tasks": tasks, "methods": union("methods", grid.methods),
            "seeds": union("seeds", grid.seeds), "eps_sweep": grid.eps_sweep or bool(
                before.get("eps_sweep")),
            "recipes": {**before.get("recipes", {}),
                        **{task: recipe_of(task) for task in grid.tasks}},
            "updates": probe.updates, "eval_every": probe.eval_every,
            "eval_episodes": probe.eval_episodes, "batch_size": batch,
            "transitions_per_agent": DATA_PRESETS[grid.preset].size,
            "overrides": overrides, "device": device_name(),
            "versions": library_versions(RESULT_LIBRARIES),
            "wall_time_s": totals}
