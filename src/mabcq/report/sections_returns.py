"""Report sections from returns.csv, behavior.csv and grid.json: the header, Table 6 with its
aggregate, and the learning-curve figures 2, 4 and 5. Each returns markdown lines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mabcq.paper import TASK_OPTIMISM
from mabcq.report.context import SWIMMER, Context, main_tasks
from mabcq.report.figures import Line, Panel, plot_panels
from mabcq.report.paper import PAPER_SCALE, TABLE6_RETURN
from mabcq.report.tables import (
    CellStats,
    curves,
    eps_of,
    family_name,
    in_main_grid,
    interval,
    iqm,
    markdown_table,
    mean_std,
    method_label,
    number,
    order_methods,
    order_tasks,
    rows_by_seed,
    stratified_bootstrap_iqm_ci,
    summarize,
    task_label,
)

BEHAVIOR_LEVELS = ("expert", "intermediate", "dataset")  # first in the table, in this order


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{key} {_text(item)}" for key, item in sorted(value.items()))
    if isinstance(value, list | tuple):
        return ", ".join(_text(item) for item in value)
    return str(value)


def header(ctx: Context) -> list[str]:
    lines = ["# MABCQ results report", ""]
    grid = ctx.results.grid
    if grid is None:
        lines += ["> **Warning: `grid.json` is missing, so the scale of this run (preset, "
                  "seeds, updates) is unknown.**", ""]
        ctx.missing.append("run settings: `grid.json` is missing")
        return lines
    preset = grid.get("preset")
    if preset is None:
        lines += ["> **Warning: `grid.json` names no preset, so the scale of this run is "
                  "unknown; check it against the settings below.**", ""]
    elif preset != "paper":
        lines += [f"> **Warning: a reduced run (preset `{preset}`), not the paper's scale "
                  f"({PAPER_SCALE}). Its numbers are not comparable with the paper's.**", ""]
    settings = [("preset", "preset"), ("tasks", "tasks"), ("methods", "methods"),
                ("seeds", "seeds"), ("recipes", "dataset recipes"),
                ("updates", "updates per run"),
                ("eval_every", "evaluate every (updates)"),
                ("eval_episodes", "episodes per evaluation"), ("batch_size", "batch size"),
                ("transitions_per_agent", "transitions per agent"),
                # grid.json keeps the last call's machine, which may have trained nothing: each
                # cell's own device is in Grid completeness and timing.csv
                ("device", "device of the last call (each cell's: Grid completeness)"),
                ("versions", "versions of the last call"), ("wall_time_s", "wall time (s)")]
    rows = []
    for key, label in settings:
        value = _text(grid[key]) if key in grid else "— (not in grid.json)"
        if key == "seeds" and isinstance(grid.get(key), list):
            value += f" ({len(grid[key])} seeds)"
        if key == "wall_time_s" and isinstance(grid.get(key), dict):  # seconds, to 0.1 s
            value = _text({name: round(seconds, 1) if isinstance(seconds, float) else seconds
                           for name, seconds in grid[key].items()})
        rows.append((label, value))
    lines += ["What was run (`grid.json`):", ""] + markdown_table(("setting", "value"), rows)
    return lines + [""]


def file_summary(ctx: Context) -> list[str]:
    results = ctx.results
    rows = []
    for name, table in (("returns.csv", results.returns), ("diagnostics.csv", results.diagnostics),
                        ("timing.csv", results.timing), ("behavior.csv", results.behavior)):
        count = "missing" if table is None else f"{len(table)} row{'' if len(table) == 1 else 's'}"
        rows.append((f"`{name}`", count))
    rows.append(("`grid.json`", "missing" if results.grid is None else "present"))
    return ["Files read:", ""] + markdown_table(("file", "status"), rows) + [""]


def behavior_levels(ctx: Context, task: str) -> dict[str, list[dict]]:
    """level -> rows of behavior.csv for `task`, expert/intermediate/dataset first."""
    by_level: dict[str, list[dict]] = {}
    for row in ctx.results.behavior or []:
        if row["task"] == task:
            by_level.setdefault(row["level"], []).append(row)
    order = [level for level in BEHAVIOR_LEVELS if level in by_level]
    order += sorted(set(by_level) - set(BEHAVIOR_LEVELS))
    return {level: sorted(by_level[level], key=lambda row: row["step"] or 0) for level in order}


def recipes_of(ctx: Context, task: str, method: str) -> list[str]:
    """The dataset recipes a (task, method)'s rows of returns.csv name (none: an older file)."""
    return sorted({row["recipe"] for row in ctx.results.returns or []
                   if row["task"] == task and row["method"] == method and row.get("recipe")})


def recipe_note(ctx: Context, task: str, method: str) -> str:
    """" (medium-replay data)" when a cell trained on another recipe than the task's own."""
    from mabcq.grid.cells import recipe_of

    other = [recipe for recipe in recipes_of(ctx, task, method) if recipe != recipe_of(task)]
    return f" ({', '.join(other)} data)" if other else ""


def expert_return(ctx: Context, task: str) -> float | None:
    rows = behavior_levels(ctx, task).get("expert")
    return float(np.mean([row["return"] for row in rows])) if rows else None


def final_stats(ctx: Context) -> dict[tuple[str, str], tuple[CellStats, list[int]]]:
    """(task, method) -> (stats of the final returns over seeds, each seed's final updates)."""
    result = {}
    for key, seeds in rows_by_seed(ctx.results.returns or []).items():
        values = [row["return"] for row in seeds.values()]
        result[key] = (summarize(values), [row["updates"] for row in seeds.values()])
    return result


def planned_updates(ctx: Context, task: str, method: str) -> int | None:
    """grid.json's update count for (task, method): one number, or per "task/family"."""
    planned = (ctx.results.grid or {}).get("updates")
    if isinstance(planned, dict):
        planned = planned.get(f"{task}/{family_name(method)}")
    return planned if isinstance(planned, int) else None


def updates_text(ctx: Context, updates: list[int], task: str, method: str) -> str:
    low, high = min(updates), max(updates)
    text = str(high) if low == high else f"{low}–{high} (differs across seeds)"
    planned = planned_updates(ctx, task, method)
    if planned is not None and low < planned:
        text += f" ⚠ incomplete: grid.json plans {planned}"
    return text


def final_return_table(ctx: Context, tasks: list[str], methods: list[str]) -> list[str]:
    """Final returns per (task, method) beside the paper's, then the behavior policies' own."""
    stats = final_stats(ctx)
    rows = []
    for task in tasks:
        for method in methods:
            if (task, method) not in stats:
                continue
            cell, updates = stats[(task, method)]
            paper = TABLE6_RETURN.get((task, method))
            rows.append((task_label(task), method_label(method) + recipe_note(ctx, task, method),
                         mean_std(cell), interval(cell),
                         str(cell.n), updates_text(ctx, updates, task, method),
                         f"{paper[0]:.0f} ± {paper[1]:.0f}" if paper else "—"))
        for level, level_rows in behavior_levels(ctx, task).items():
            if level.startswith("dataset-"):  # another recipe's data: its own section
                continue
            steps = [str(row["step"]) for row in level_rows if row["step"] is not None]
            from_file = level == "dataset" or level.startswith("part:")
            where = ("agent 0's dataset file" if from_file
                     else f"SAC step {', '.join(steps)}" if steps else "—")
            value = float(np.mean([row["return"] for row in level_rows]))
            label = ("data: dataset episodes" if level == "dataset" else
                     f"data: part {level[5:]} episodes" if level.startswith("part:")
                     else f"data: {level} policy")
            rows.append((task_label(task), label, number(value), "—", "—", where, "—"))
    header = ("task", "method", "final return, mean ± std", "95% bootstrap CI", "seeds",
              "final updates", "paper (Table 6)")
    return markdown_table(header, rows)


def _stats_note(ctx: Context) -> str:
    episodes = (ctx.results.grid or {}).get("eval_episodes", "?")
    return (f"Each seed's return is its final evaluation (the row with the largest `updates`; no "
            f"checkpoint is picked), the mean over {episodes} evaluation episodes. std is the "
            f"population std over seeds (ddof=0, as `mabcq train` prints); the CI is a "
            f"percentile bootstrap of the mean over seeds (10000 resamples, numpy seed 0). "
            f"`data:` rows are the behavior policies' own returns (`behavior.csv`), one "
            f"evaluation each; the paper's numbers come from its own datasets.")


def table6(ctx: Context) -> list[str]:
    lines = ["## Table 6: final return", ""]
    returns, behavior = ctx.results.returns, ctx.results.behavior
    if returns is None and behavior is None:
        return lines + ctx.file_missing("returns.csv", "Table 6 (final returns)")
    if returns is None:
        lines += ctx.file_missing("returns.csv", "Table 6's trained methods")
    if behavior is None:
        lines += ctx.file_missing("behavior.csv", "the behavior policies' returns")
    trained = [row for row in returns or []
               if eps_of(row["method"]) is None and in_main_grid(row["method"])]
    tasks = order_tasks(main_tasks({row["task"] for row in trained + (behavior or [])}))
    methods = order_methods({row["method"] for row in trained})
    if not tasks:
        return lines + ctx.rows_missing("returns.csv", "Table 6", "any main task")
    lines += final_return_table(ctx, tasks, methods) + ["", _stats_note(ctx), ""]
    lines += _aggregate(ctx, tasks, methods)
    return lines + (_versus_bcq(ctx, tasks) if returns is not None else [])


def _aggregate(ctx: Context, tasks: list[str], methods: list[str]) -> list[str]:
    experts = {task: expert_return(ctx, task) for task in tasks}
    usable = [task for task in tasks if experts[task] is not None and experts[task] > 0]
    lines = ["### Aggregate over tasks (IQM)", ""]
    if ctx.results.behavior is None:
        return lines + ctx.file_missing("behavior.csv", "the aggregate (IQM of returns "
                                        "normalized by the expert's)")
    if not usable:
        return lines + ctx.rows_missing("behavior.csv", "the aggregate (IQM)",
                                        "an expert level with a positive return")
    final = rows_by_seed(ctx.results.returns or [])
    rows = []
    for method in methods:
        per_task = [[row["return"] / experts[task] for row in final[(task, method)].values()]
                    for task in usable if (task, method) in final]
        if not per_task:
            continue
        low, high = stratified_bootstrap_iqm_ci(per_task)
        pooled = [score for scores in per_task for score in scores]
        rows.append((method_label(method), number(iqm(pooled), 3),
                     f"[{number(low, 3)}, {number(high, 3)}]", f"{len(per_task)}/{len(usable)}",
                     str(len(pooled))))
    for level in ("intermediate", "dataset"):
        scores = [float(np.mean([row["return"] for row in behavior_levels(ctx, task)[level]]))
                  / experts[task] for task in usable if level in behavior_levels(ctx, task)]
        if scores:
            rows.append((f"data: {level}", number(iqm(scores), 3), "—",
                         f"{len(scores)}/{len(usable)}", str(len(scores))))
    skipped = sorted(set(tasks) - set(usable))
    lines += markdown_table(("method", "IQM of normalized final return", "95% stratified "
                             "bootstrap CI", "tasks", "runs (task x seed)"), rows)
    lines += ["", "Normalized return = final return / the expert behavior policy's return on "
              "that task (`behavior.csv`, level `expert`; 1.0 = expert, not shifted by a random "
              "policy's score). IQM = mean of the middle 50% of all task x seed scores; the CI "
              "resamples seeds within each task (rliable's stratified bootstrap). A method "
              "missing tasks is averaged over fewer tasks: compare rows only at equal tasks."
              + (f" Left out (no positive expert return): {', '.join(skipped)}." if skipped
                 else ""), ""]
    return lines


def beats_by_std(mabcq: tuple[float, float], bcq: tuple[float, float]) -> tuple[float, float, bool]:
    difference, bound = mabcq[0] - bcq[0], max(mabcq[1], bcq[1])
    return difference, bound, difference > bound


def _versus_bcq(ctx: Context, tasks: list[str]) -> list[str]:
    return versus(ctx, tasks, "mabcq", "bcq", TABLE6_RETURN)


def versus(ctx: Context, tasks: list[str], weighted: str, plain: str,
           paper: dict[tuple[str, str], tuple[float, float]] | None = None) -> list[str]:
    """Per task: does `weighted` beat `plain` by more than the larger of their two stds?"""
    stats = final_stats(ctx)
    name, base = method_label(weighted), method_label(plain)
    lines = [f"### Does {name} beat {base} by more than one std?", "",
             f"Rule: {name}'s mean minus {base}'s mean exceeds the larger of their two stds.", ""]
    for task in tasks:
        if (task, weighted) not in stats or (task, plain) not in stats:
            lines.append(f"- {task_label(task)}: not both {name} and {base} in `returns.csv`.")
            continue
        ours, theirs = stats[(task, weighted)][0], stats[(task, plain)][0]
        difference, bound, better = beats_by_std((ours.mean, ours.std), (theirs.mean, theirs.std))
        if min(ours.n, theirs.n) < 2:
            verdict = "cannot tell (fewer than 2 seeds: no spread)"
        else:
            overlap = ours.ci_low <= theirs.ci_high and theirs.ci_low <= ours.ci_high
            verdict = (f"{'yes' if better else 'no'} (95% CIs "
                       f"{'overlap' if overlap else 'do not overlap'})")
        line = (f"- {task_label(task)}: {name} − {base} = {number(difference)}, larger std "
                f"{number(bound)}: {verdict}.")
        paper_ours, paper_theirs = ((paper or {}).get((task, key)) for key in (weighted, plain))
        if paper_ours and paper_theirs:
            p_difference, p_bound, p_better = beats_by_std(paper_ours, paper_theirs)
            line += (f" Paper, same rule: {p_difference:.0f} vs larger std {p_bound:.0f}: "
                     f"{'yes' if p_better else 'no'}.")
        lines.append(line)
    return lines + [""]


def learning_curve_panels(ctx: Context, tasks: list[str],
                          keep: Callable[[str], bool]) -> list[Panel]:
    """One panel per task: the return curves of the methods `keep(method)` accepts."""
    by_cell = curves(ctx.results.returns or [], "return")
    panels = []
    for task in tasks:
        methods = order_methods(method for (row_task, method) in by_cell
                                if row_task == task and keep(method))
        lines = [Line(method_label(method), by_cell[(task, method)], ctx.method_color(method))
                 for method in methods]
        levels = behavior_levels(ctx, task)
        references = [(f"data: {level} ({number(np.mean([r['return'] for r in levels[level]]))})",
                       float(np.mean([row["return"] for row in levels[level]])))
                      for level in ("expert", "dataset") if level in levels]
        if lines:
            panels.append(Panel(task_label(task), lines, references))
    return panels


def _curve_figure(ctx: Context, name: str, title: str, tasks: list[str],
                  keep: Callable[[str], bool], what: str) -> list[str]:
    if ctx.results.returns is None:
        return ctx.file_missing("returns.csv", what)
    panels = learning_curve_panels(ctx, tasks, keep)
    if not panels:
        return ctx.rows_missing("returns.csv", what, "these tasks and methods")
    plot_panels(ctx.out_dir / name, title, "return (mean ± std over seeds)", panels)
    ctx.figures.append(name)
    return [f"![{title}]({name})", ""]


def figure2(ctx: Context) -> list[str]:
    tasks = order_tasks(main_tasks({row["task"] for row in ctx.results.returns or []}))
    return ["## Figure 2: learning curves", ""] + _curve_figure(
        ctx, "fig2_learning_curves.png", "Figure 2: return vs updates", tasks,
        lambda method: eps_of(method) is None and in_main_grid(method),
        "Figure 2 (learning curves)")


def figure5(ctx: Context) -> list[str]:
    lines = ["## Figure 5: the optimism level ε", ""]
    rows = ctx.results.returns or []
    tasks = order_tasks(main_tasks({row["task"] for row in rows
                                    if eps_of(row["method"]) is not None}))
    lines += _curve_figure(ctx, "fig5_eps_sweep.png", "Figure 5: MABCQ with different ε",
                           tasks, lambda method: eps_of(method) is not None,
                           "Figure 5 (ε sweep, methods mabcq-eps*)")
    if not tasks:
        return lines
    stats = final_stats(ctx)
    methods = [method for method in order_methods({m for (_, m) in stats}) if eps_of(method)
               is not None]
    table = [[method_label(method)] + [
        f"{mean_std(stats[(task, method)][0])} (n={stats[(task, method)][0].n})"
        if (task, method) in stats else "—" for task in tasks] for method in methods]
    table.append(["paper's ε (Table 8)"] + [number(TASK_OPTIMISM.get(task), 2) for task in tasks])
    lines += ["Final return, mean ± std over seeds (n seeds):", ""]
    return lines + markdown_table(["ε"] + [task_label(task) for task in tasks], table) + [""]


def figure4(ctx: Context) -> list[str]:
    lines = ["## Figure 4: Swimmer 2x1, low-quality data", ""]
    lines += _curve_figure(ctx, "fig4_swimmer.png", "Figure 4: Swimmer 2x1 (low-quality data)",
                           [SWIMMER], lambda method: True, "Figure 4 (swimmer-2x1)")
    methods = order_methods({row["method"] for row in ctx.results.returns or []
                             if row["task"] == SWIMMER})
    if methods:
        lines += final_return_table(ctx, [SWIMMER], methods) + [
            "", "Columns and statistics as in Table 6; the paper gives Swimmer as a figure only.",
            ""]
    return lines
