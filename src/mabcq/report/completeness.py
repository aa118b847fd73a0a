"""The report's "Grid completeness" section: which planned (task, method, seed) cells are
finished, which are missing, and on which device each ran, so a report made while the grid is
still running says plainly how many seeds every number has.

Planned = grid.json's tasks x methods x seeds (the eps sweep on the paper's four tasks when
`eps_sweep`; a method only on the tasks whose family grid.json's `recipes` names, when it names
any); finished = the cells with rows in returns.csv (a cell is written only when it ends).
"""

from __future__ import annotations

from typing import Any

from mabcq.paper import EPS_SWEEP, PAPER_TASKS
from mabcq.report.context import Context
from mabcq.report.tables import (
    markdown_table,
    method_label,
    order_methods,
    order_tasks,
    task_label,
)


def planned_cells(grid: dict[str, Any]) -> set[tuple[str, str, int]] | None:
    """grid.json's planned cells, or None when it does not say (no tasks, methods or seeds)."""
    from mabcq.errors import UserError
    from mabcq.learners.registry import eps_method, family_of

    tasks, methods, seeds = grid.get("tasks"), grid.get("methods"), grid.get("seeds")
    if not all(isinstance(value, list) and value for value in (tasks, methods, seeds)):
        return None
    recipes = grid.get("recipes") if isinstance(grid.get("recipes"), dict) else None
    cells = set()
    for task in tasks:
        names = list(methods)
        if grid.get("eps_sweep") and task in PAPER_TASKS:
            names += [eps_method(eps) for eps in EPS_SWEEP if eps_method(eps) not in names]
        for method in names:
            try:
                family = family_of(method).name
            except UserError:
                family = None
            if recipes and family and f"{task}/{family}" not in recipes:
                continue
            cells |= {(task, method, int(seed)) for seed in seeds}
    return cells


def _seeds(values: set[int]) -> str:
    return ", ".join(str(seed) for seed in sorted(values)) if values else "—"


def devices(ctx: Context, task: str, method: str) -> str:
    """The devices timing.csv names for a (task, method)'s groups or cells, and those its cell
    files name (a cell copied under another name that builds the same learner keeps the
    timing row of the run that trained it: grid.share.alias_cells)."""
    found = sorted({row["device"] for row in ctx.results.timing or []
                    if row["task"] == task and method in row["methods"].split("+")}
                   | {row["device"] for row in ctx.results.data or []
                      if row["task"] == task and row["method"] == method})
    return "; ".join(found) if found else "—"


def completeness(ctx: Context) -> list[str]:
    lines = ["## Grid completeness", ""]
    grid = ctx.results.grid
    planned = planned_cells(grid) if grid is not None else None
    if planned is None:
        return lines + ["_Not known: `grid.json` is missing or names no tasks, methods and "
                        "seeds._", ""]
    finished = {(row["task"], row["method"], row["seed"]) for row in ctx.results.returns or []}
    missing = planned - finished
    done = len(planned) - len(missing)
    if missing:
        ctx.missing.append(f"{len(missing)} of {len(planned)} planned cells missing (see Grid "
                           "completeness)")
        lines += [f"> **Incomplete grid: {done} of {len(planned)} planned cells finished, "
                  f"{len(missing)} missing. Every number below is over the seeds finished so "
                  "far (the seeds column of each table, and this table).**", ""]
    else:
        lines += [f"All {len(planned)} planned cells are finished.", ""]
    pairs = {(task, method) for task, method, _ in planned | finished}
    rows = []
    for task in order_tasks({task for task, _ in pairs}):
        for method in order_methods({method for row_task, method in pairs if row_task == task}):
            have = {seed for row_task, row_method, seed in finished
                    if (row_task, row_method) == (task, method)}
            lacking = {seed for row_task, row_method, seed in missing
                       if (row_task, row_method) == (task, method)}
            rows.append((task_label(task), method_label(method), f"{len(have)}", _seeds(have),
                         _seeds(lacking), devices(ctx, task, method)))
    lines += markdown_table(("task", "method", "seeds finished", "finished", "missing",
                             "device"), rows)
    return lines + ["", "Planned: grid.json's tasks x methods x seeds; finished: the cells "
                    "in returns.csv; device: timing.csv's, per group or cell.", "",
                    *same_data(ctx)]


def same_data(ctx: Context) -> list[str]:
    """Whether a task's cells trained on one dataset: the distinct `data_sha256` of the cells
    that record it, per (task, recipe), with the devices that trained on each. Cells of two
    machine kinds or a lent GPU stand beside each other in one table only on the same data
    (docs/reproduce.md, "CPU machines of two kinds")."""
    rows = ctx.results.data or []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["task"], str(row["recipe"])), []).append(row)
    table = []
    for task in order_tasks({task for task, _ in groups}):
        for recipe in sorted(recipe for group_task, recipe in groups if group_task == task):
            cells = groups[(task, recipe)]
            hashes: dict[str, list[dict[str, Any]]] = {}
            for cell in cells:
                if cell["data_sha256"]:
                    hashes.setdefault(cell["data_sha256"], []).append(cell)
            if not hashes:
                continue
            found = "; ".join(
                f"`{digest[:12]}`: {len(held)} ({', '.join(sorted({c['device'] for c in held}))})"
                for digest, held in sorted(hashes.items(), key=lambda item: -len(item[1])))
            verdict = "one dataset" if len(hashes) == 1 else f"**{len(hashes)} datasets**"
            table.append((task_label(task), recipe, f"{sum(map(len, hashes.values()))} of "
                          f"{len(cells)}", verdict, found))
    if not table:
        return []
    warning = (["> **Cells of one task trained on different data: their returns are not draws "
                "of one experiment.**", ""] if any(row[3] != "one dataset" for row in table)
               else [])
    return ["### Same data", "", *warning, *markdown_table(
        ("task", "recipe", "cells with a data hash", "verdict", "hash: cells (devices)"), table),
        "", "The hash of the arrays each cell trained on (`provenance.data_sha256`; `mabcq data "
        "info` prints a file's); cells made before cells recorded it are not counted.", ""]
