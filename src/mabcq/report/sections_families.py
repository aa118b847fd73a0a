"""Report sections for MABCQ's weights on other base learners: Figure 6 (CQL vs MACQL, the
paper's Appendix B, on medium-replay data) and the TD3+BC comparison (not in the paper).

Each section shows its family's runs only (learners.registry: macql/macql-no-*/cql,
matd3bc/matd3bc-no-*/td3bc), with the dataset recipe each cell trained on, the behavior policy's
and that dataset's own returns beside them, and the same one-std verdict as Table 6.
"""

from __future__ import annotations

import numpy as np

from mabcq.report.context import Context
from mabcq.report.figures import Line, Panel, plot_panels
from mabcq.report.sections_returns import (
    behavior_levels,
    final_stats,
    recipes_of,
    updates_text,
    versus,
)
from mabcq.report.tables import (
    curves,
    family_name,
    interval,
    markdown_table,
    mean_std,
    method_label,
    number,
    order_methods,
    order_tasks,
    task_label,
)

FIGURE6 = "fig6_cql.png"
TD3BC_FIGURE = "fig_td3bc.png"


def figure6(ctx: Context) -> list[str]:
    lines = ["## Figure 6: CQL vs MACQL (Appendix B)", ""]
    return lines + _family_section(
        ctx, "cql", FIGURE6, "Figure 6: MACQL vs CQL", "medium-replay",
        "`mabcq reproduce --tasks halfcheetah-2x3,hopper-3x1,walker2d-2x3 --methods macql,cql "
        "--recipe medium-replay`",
        "The paper shows Figure 6 as curves only (MACQL above CQL on D4RL medium-replay data of "
        "HalfCheetah, Hopper and Walker after 5 x 10^4, 10^5 and 1.2 x 10^5 updates); it prints "
        "no numbers to set beside these. The weights multiply CQL's TD loss and its actor "
        "objective, not its conservative regularizer (docs/learners.md).")


def td3bc_table(ctx: Context) -> list[str]:
    lines = ["## TD3+BC vs MA-TD3+BC", ""]
    return lines + _family_section(
        ctx, "td3bc", TD3BC_FIGURE, "TD3+BC vs MA-TD3+BC", None,
        "`mabcq reproduce --tasks TASK --methods matd3bc,td3bc`",
        "Not in the paper: the weights on TD3+BC (its paper's defaults), multiplying its TD loss "
        "and its whole per-sample actor loss (docs/learners.md).")


def _family_section(ctx: Context, family: str, figure: str, title: str,
                    expected_recipe: str | None, command: str, note: str) -> list[str]:
    what = f"{title} (methods of the {family} family)"
    if ctx.results.returns is None:
        return ctx.file_missing("returns.csv", what)
    rows = [row for row in ctx.results.returns if family_name(row["method"]) == family]
    if not rows:
        ctx.missing.append(f"{what}: `returns.csv` has no rows for them")
        return [f"_{what}: not reported, `returns.csv` has no rows for them; {command} writes "
                "them._", ""]
    tasks = order_tasks({row["task"] for row in rows})
    methods = order_methods({row["method"] for row in rows})
    recipes = sorted({recipe for task in tasks for method in methods
                      for recipe in recipes_of(ctx, task, method)})
    lines = []
    if expected_recipe is not None and recipes != [expected_recipe]:
        lines += [f"> **Warning: the paper's runs use {expected_recipe} data; these used "
                  f"{', '.join(recipes) or 'an unrecorded recipe'}.**", ""]
    lines += _figure(ctx, figure, title, tasks, methods)
    lines += _table(ctx, tasks, methods) + ["", note, ""]
    if f"ma{family}" in methods and family in methods:
        lines += versus(ctx, tasks, f"ma{family}", family)
    return lines


def _dataset_level(ctx: Context, task: str, recipes: list[str]) -> tuple[str, list[dict]] | None:
    """behavior.csv's row of the dataset these runs trained on ("dataset" or "dataset-R")."""
    from mabcq.grid.cells import dataset_level

    if len(recipes) != 1:
        return None
    level = dataset_level(task, recipes[0])
    rows = behavior_levels(ctx, task).get(level)
    return (level, rows) if rows else None


def _figure(ctx: Context, name: str, title: str, tasks: list[str], methods: list[str]
            ) -> list[str]:
    by_cell = curves(ctx.results.returns or [], "return")
    panels = []
    for task in tasks:
        lines = [Line(method_label(method), by_cell[(task, method)], ctx.method_color(method))
                 for method in methods if (task, method) in by_cell]
        recipes = sorted({r for m in methods for r in recipes_of(ctx, task, m)})
        references = []
        expert = behavior_levels(ctx, task).get("expert")
        if expert:
            value = float(np.mean([row["return"] for row in expert]))
            references.append((f"data: expert ({number(value)})", value))
        dataset = _dataset_level(ctx, task, recipes)
        if dataset:
            value = float(np.mean([row["return"] for row in dataset[1]]))
            references.append((f"data: {recipes[0]} episodes ({number(value)})", value))
        if lines:
            suffix = f" ({', '.join(recipes)} data)" if recipes else ""
            panels.append(Panel(task_label(task) + suffix, lines, references))
    plot_panels(ctx.out_dir / name, title, "return (mean ± std over seeds)", panels)
    ctx.figures.append(name)
    return [f"![{title}]({name})", ""]


def _table(ctx: Context, tasks: list[str], methods: list[str]) -> list[str]:
    stats = final_stats(ctx)
    rows = []
    for task in tasks:
        task_recipes = set()
        for method in methods:
            if (task, method) not in stats:
                continue
            cell, updates = stats[(task, method)]
            recipes = recipes_of(ctx, task, method)
            task_recipes.update(recipes)
            rows.append((task_label(task), method_label(method), ", ".join(recipes) or "—",
                         mean_std(cell), interval(cell), str(cell.n),
                         updates_text(ctx, updates, task, method)))
        dataset = _dataset_level(ctx, task, sorted(task_recipes))
        if dataset:
            value = float(np.mean([row["return"] for row in dataset[1]]))
            rows.append((task_label(task), "data: dataset episodes", sorted(task_recipes)[0],
                         number(value), "—", "—", "agent 0's dataset file"))
    header = ("task", "method", "data (recipe)", "final return, mean ± std", "95% bootstrap CI",
              "seeds", "final updates")
    return markdown_table(header, rows) + [
        "", "Final return and statistics as in Table 6 (each seed's last evaluation)."]
