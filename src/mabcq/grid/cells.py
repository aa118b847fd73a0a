"""The results layout of `mabcq reproduce` (cells/, the CSVs built from them), apart from the
training: each finished (task, method, seed) cell is one JSON file with its dataset recipe and
metric rows; returns.csv, diagnostics.csv, timing.csv and behavior.csv are rebuilt from cells/
(sorted, so a resumed grid writes what a straight one does). docs/reproduce.md describes it.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mabcq.errors import UserError
from mabcq.util import atomic
from mabcq.util.jsonfile import read_json_object

# The appendix's Swimmer runs on the low-quality recipe (early + intermediate, no expert).
TASK_RECIPES = {"swimmer-2x1": "low"}

RETURNS_COLUMNS = ("task", "method", "seed", "updates", "return", "recipe")
# The weights' diagnostics of metrics.csv that the report shows (issue 19; weights.py).
WEIGHT_DIAGNOSTICS = ("lambda_vd_at_low", "lambda_vd_at_high", "lambda_vd_terminal_mean",
                      "lambda_vd_nonterminal_mean", "terminal_share", "lambda_vd_p05",
                      "lambda_vd_p50", "lambda_vd_p95", "lambda_tn_p05", "lambda_tn_p50",
                      "lambda_tn_p95", "lambda_tn_at_low", "lambda_tn_at_high", "lambda_tn_ess",
                      "weight_ess")
DIAGNOSTIC_COLUMNS = ("task", "method", "seed", "updates", "value_difference",
                      "extrapolation_error", "lambda_vd_mean", "lambda_vd_at_clip",
                      "lambda_tn_mean", "lambda_tn_data_in_paper_range", "critic_loss", "q_mean",
                      *WEIGHT_DIAGNOSTICS, "recipe")
# workers..actual_s: how the cell was run (0 workers: in the driver's process) and the seconds
# its estimate gave against what it took (process start to cell file), so estimates stay honest.
TIMING_COLUMNS = ("task", "group", "methods", "seeds", "agents", "device", "ms_per_update",
                  "train_s", "eval_s", "data_s", "workers", "updates", "evaluations",
                  "estimate_s", "actual_s")
# What a cell records about how it ran, not what it computed: wall clocks and provenance. Two
# runs of one cell (1 or N workers, another day) differ only there (cell_numbers).
CLOCK_COLUMNS = ("time_per_update_ms", "wall_time_s")
RUN_FIELDS = ("timing", "provenance", "group")
BEHAVIOR_COLUMNS = ("task", "level", "step", "return")


def recipe_of(task: str) -> str:
    """The task's own recipe: the paper's, or the low-quality one for Swimmer."""
    return TASK_RECIPES.get(task, "paper")


def dataset_level(task: str, recipe: str) -> str:
    """behavior.csv's level of a dataset's own mean return: "dataset" for the task's own recipe,
    "dataset-<recipe>" for another (so Table 6's data rows keep describing the paper's data)."""
    return "dataset" if recipe == recipe_of(task) else f"dataset-{recipe}"


def cell_path(out: Path, task: str, method: str, seed: int) -> Path:
    return out / "cells" / task / method / f"seed_{seed}.json"


def policy_files(results_dir: Path, task: str, method: str, seed: int, n_agents: int
                 ) -> list[Path] | None:
    """The agent files of (task, method, seed) in RESULTS/runs/<task>/*/policies/ (the first
    group that has them all), or None."""
    runs = results_dir / "runs" / task
    if not runs.is_dir():
        return None
    for group in sorted(path for path in runs.iterdir() if path.is_dir()):
        files = group_policy_files(group, method, seed, n_agents)
        if files is not None:
            return files
    return None


def group_policy_files(run_dir: Path, method: str, seed: int, n_agents: int
                       ) -> list[Path] | None:
    """The agent files of (method, seed) in one group's run dir, or None when any is missing:
    a group of several methods keeps policies/<method>/seed_<s>/, a group of one
    policies/seed_<s>/ (the group's name is its methods joined by '+', then _seeds...)."""
    methods = run_dir.name.rsplit("_seeds", 1)[0].split("+")
    if method not in methods:
        return None
    base = run_dir / "policies" / (method if len(methods) > 1 else "") / f"seed_{seed}"
    files = [base / f"agent_{agent}.msgpack" for agent in range(n_agents)]
    return files if all(path.is_file() for path in files) else None


def write_cells(out: Path, task: str, run_dir: Path, summary: dict[str, Any],
                timing: dict[str, Any], recipe: str) -> None:
    """Split a finished group's metrics.csv into one cell file per (method, seed)."""
    from mabcq.training.logs import read_csv_rows

    write_cell_rows(out, task, read_csv_rows(run_dir / "metrics.csv"), run_dir.name, summary,
                    timing, recipe)


def write_cell_rows(out: Path, task: str, rows: Sequence[dict[str, Any]], group: str,
                    summary: dict[str, Any], timing: dict[str, Any], recipe: str,
                    provenance: dict[str, Any] | None = None) -> None:
    """One cell file per (method, seed) of a finished group from its metrics rows (the rows
    of its metrics.csv, read here or sent back by a Ray task), each written atomically, with
    the provenance of the process that trained it (provenance.cell_provenance)."""
    from mabcq.training.logs import write_json_atomic

    methods = summary["method"].split("+")
    for method in methods:
        for seed in summary["seeds"]:
            mine = [row for row in rows
                    if int(row["seed"]) == seed and row.get("method", method) == method]
            write_json_atomic(cell_path(out, task, method, seed),
                              {"task": task, "method": method, "seed": seed, "recipe": recipe,
                               "rows": mine, "group": group, "timing": timing,
                               "provenance": provenance})


def cell_numbers(cell: dict[str, Any]) -> dict[str, Any]:
    """A cell without its clocks and provenance: what must not depend on how it was run (one
    worker or N, this machine or a resumed call). Two cells made by the same code and settings
    have equal cell_numbers, compared bitwise (the floats as written)."""
    rows = [{name: value for name, value in row.items() if name not in CLOCK_COLUMNS}
            for row in cell["rows"]]
    return {**{key: value for key, value in cell.items() if key not in RUN_FIELDS},
            "rows": rows}


def differing_cells(first: Path, second: Path) -> list[str]:
    """The cells of two results directories whose numbers differ (cell_numbers, bitwise), or
    that only one of them holds: how a smoke grid of two commits (or 1 and N workers) is
    compared before a pinned grid's commit moves (docs/reproduce.md)."""
    def numbers(out: Path) -> dict[str, str]:
        return {str(path.relative_to(out)):
                json.dumps(cell_numbers(read_json_object(path, "cell record")))
                for path in sorted((out / "cells").glob("*/*/seed_*.json"))}

    ours, theirs = numbers(first), numbers(second)
    return sorted(name for name in set(ours) | set(theirs) if ours.get(name) != theirs.get(name))


def read_cells(out: Path) -> list[dict[str, Any]]:
    """Every finished cell under OUT/cells, in path order."""
    return [read_json_object(path, "cell record")
            for path in sorted((out / "cells").glob("*/*/*.json"))]


def collect(out: Path) -> dict[str, int]:
    """Rebuild the CSVs from cells/ (sorted, so a resumed grid writes what a straight one does)."""
    cells = read_cells(out)
    returns, diagnostics, timing = [], [], {}
    for cell in cells:
        for row in cell["rows"]:
            key = {"task": cell["task"], "method": cell["method"], "seed": cell["seed"],
                   "updates": int(row["update"])}
            recipe = cell.get("recipe") or recipe_of(cell["task"])  # cells before issue 9
            returns.append({**key, "return": row.get("return_mean", ""), "recipe": recipe})
            diagnostics.append({**key, **{name: row.get(name, "")
                                          for name in DIAGNOSTIC_COLUMNS[4:-1]},
                                "recipe": recipe})
        timing[(cell["task"], cell["group"])] = cell["timing"]
    def order(row: dict[str, Any]) -> tuple[Any, ...]:
        return row["task"], row["method"], row["seed"], row["updates"]

    _write_csv(out / "returns.csv", RETURNS_COLUMNS, sorted(returns, key=order))
    _write_csv(out / "diagnostics.csv", DIAGNOSTIC_COLUMNS, sorted(diagnostics, key=order))
    _write_csv(out / "timing.csv", TIMING_COLUMNS, [timing[key] for key in sorted(timing)])
    behavior = [row for path in sorted((out / "cells").glob("*/behavior*.json"))
                for row in json.loads(path.read_text())]
    _write_csv(out / "behavior.csv", BEHAVIOR_COLUMNS, behavior)
    return {"cells": len(cells), "returns": len(returns)}


def behavior_rows(task: str, datasets: Sequence[Any], recipe: str) -> list[dict[str, Any]]:
    """behavior.csv rows of a task: the behavior levels' own eval returns (from agent 0's file
    metadata) and the mean episode return in agent 0's dataset (level `dataset_level`). For a
    recipe other than the task's own only the dataset row: the levels are the same policies."""
    meta = datasets[0].metadata
    rows = []
    if recipe == recipe_of(task):
        for level, value in sorted((meta.get("behavior") or {}).get("levels", {}).items()):
            rows.append({"task": task, "level": level, "step": value.get("step", ""),
                         "return": value.get("return_mean", "")})
    episodes = meta.get("episode_returns") or {}
    rows.append({"task": task, "level": dataset_level(task, recipe), "step": "",
                 "return": episodes.get("mean", "")})
    if recipe == recipe_of(task):  # per part: the mean over all episodes hides the good parts
        for name, value in part_returns(datasets[0]).items():
            rows.append({"task": task, "level": f"part:{name}", "step": "", "return": value})
    return rows


def part_returns(dataset: Any) -> dict[str, float]:
    """Mean undiscounted episode return of each part of a dataset file (an episode belongs to
    the part of its first transition)."""
    import numpy as np

    ends = np.flatnonzero(dataset.terminals | dataset.timeouts)
    if len(ends) == 0 or dataset.parts is None:
        return {}
    starts = np.r_[0, ends[:-1] + 1]
    returns = np.add.reduceat(dataset.rewards.astype(np.float64), starts)
    names = dataset.metadata.get("parts") or []
    first_part = np.asarray(dataset.parts)[starts]
    return {str(names[index]) if index < len(names) else str(index):
            float(returns[first_part == index].mean()) for index in np.unique(first_part)}


def behavior_path(out: Path, task: str, recipe: str) -> Path:
    suffix = "" if recipe == recipe_of(task) else f"-{recipe}"
    return out / "cells" / task / f"behavior{suffix}.json"


def trained_as(cell: dict[str, Any], method: str) -> str:
    """The method whose run made CELL, METHOD's cell: METHOD itself, or, for a copy under a
    name that builds the same learner (grid.share.alias_cells), the method it was trained as
    (`provenance.trained_as`), whose policies and group that run keeps."""
    return str((cell.get("provenance") or {}).get("trained_as") or method)


def made_at(commit: str, prefixes: tuple[str, ...]) -> bool:
    """Whether COMMIT is one of the commits PREFIXES name (7+ hex digits each, any case)."""
    return commit.lower().startswith(tuple(prefix.lower() for prefix in prefixes))


def check_code(out: Path, ours: str, allowed: tuple[str, ...] = ()) -> None:
    """A grid's cells come from one implementation (docs/reproduce.md, "A pinned checkout"):
    refuse to add to OUT while it holds finished cells trained at a commit other than OURS
    (this code's, util.provenance.code_version) and not ALLOWED (commit prefixes, given once a
    smoke grid of both commits is bitwise equal). OURS "unknown" (not a git checkout) checks
    nothing; a cell without provenance counts as commit "unknown"."""
    if ours == "unknown":
        return
    others: dict[str, list[Path]] = {}
    for path in sorted((out / "cells").glob("*/*/seed_*.json")):
        code = (read_json_object(path, "cell record").get("provenance") or {}).get("code") or {}
        commit = str(code.get("commit") or "unknown")
        if commit != ours and not made_at(commit, allowed):
            others.setdefault(commit, []).append(path)
    if others:
        commit, paths = max(others.items(), key=lambda item: len(item[1]))
        count = sum(len(paths) for paths in others.values())
        raise UserError(
            f"{out}: {count} finished cell(s) were trained at other code ({commit[:12]}: "
            f"{len(paths)}, e.g. {paths[0]}), this code is at {ours[:12]}; one grid comes from "
            f"one commit: run from a checkout at {commit[:12]} (docs/reproduce.md, \"A pinned "
            "checkout\"), give another --out, or, once a smoke grid of both commits is bitwise "
            f"equal (scripts/compare_grids.py), pass --allow-commits {commit[:12]}")


def check_recipes(out: Path, task: str, recipe: str, cells: set[tuple[str, int]]) -> None:
    """A finished cell of another recipe is never counted as this grid's: refuse, naming it."""
    for method, seed in sorted(cells):
        path = cell_path(out, task, method, seed)
        if path.is_file():
            held = read_json_object(path, "cell record").get("recipe") or recipe_of(task)
            if held != recipe:
                raise UserError(f"{path}: this cell was trained on {held} data, not {recipe}; "
                                f"give this grid another --out (or leave out {method})")


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
