"""Report sections from diagnostics.csv and timing.csv: Figure 3 (value difference), Table 5
(extrapolation error), Table 7 (time per update) and the lambda diagnostics."""

from __future__ import annotations

import math

import numpy as np

from mabcq.paper import TASK_OPTIMISM
from mabcq.report.context import Context, main_tasks
from mabcq.report.figures import Line, Panel, plot_panels
from mabcq.report.paper import TABLE5_EXTRAPOLATION, TABLE7_HARDWARE, TABLE7_MS
from mabcq.report.tables import (
    curves,
    eps_of,
    family_name,
    in_main_grid,
    interval,
    markdown_table,
    mean_std,
    method_label,
    number,
    order_methods,
    order_tasks,
    rows_by_seed,
    summarize,
    task_label,
)

VALUE_DIFFERENCE_METHODS = ("mabcq", "mabcq-no-tn", "bcq")
CLIP_TOLERANCE = 0.01  # a batch-mean lambda_vd this close to 1 +- eps means (almost) all clipped


def figure3(ctx: Context) -> list[str]:
    lines = ["## Figure 3: value difference among agents", ""]
    what = "Figure 3 (value difference)"
    if ctx.results.diagnostics is None:
        return lines + ctx.file_missing("diagnostics.csv", what)
    by_cell = curves(ctx.results.diagnostics, "value_difference")
    tasks = order_tasks(main_tasks({task for (task, _) in by_cell}))
    panels = []
    for task in tasks:
        methods = [method for method in VALUE_DIFFERENCE_METHODS if (task, method) in by_cell]
        if methods:
            panels.append(Panel(task_label(task), [
                Line(method_label(method), by_cell[(task, method)], ctx.method_color(method))
                for method in methods]))
    if not panels:
        return lines + ctx.rows_missing("diagnostics.csv", what, "value_difference of "
                                        + ", ".join(VALUE_DIFFERENCE_METHODS))
    name = "fig3_value_difference.png"
    title = "Figure 3: value difference max_i V_i(s) - min_i V_i(s)"
    plot_panels(ctx.out_dir / name, title, "value difference (mean ± std over seeds)", panels)
    ctx.figures.append(name)
    return lines + [f"![{title}]({name})", "",
                    "V_i(s) = Q_i(s, π_i(s)) on a uniform sample of the union of all agents' "
                    "states; empty cells (one agent) are left out.", ""]


def table5(ctx: Context) -> list[str]:
    lines = ["## Table 5: extrapolation error at the final evaluation", ""]
    what = "Table 5 (extrapolation error)"
    if ctx.results.diagnostics is None:
        return lines + ctx.file_missing("diagnostics.csv", what)
    final = rows_by_seed(ctx.results.diagnostics)
    rows = []
    for task in order_tasks(main_tasks({task for (task, _) in final})):
        methods = order_methods(method for (row_task, method) in final
                                if row_task == task and eps_of(method) is None
                                and in_main_grid(method))
        for method in methods:
            seeds = final[(task, method)].values()
            cell = summarize([row["extrapolation_error"] for row in seeds])
            if cell.n == 0:
                continue
            paper = TABLE5_EXTRAPOLATION.get((task, method))
            rows.append((task_label(task), method_label(method), mean_std(cell), interval(cell),
                         f"{cell.n}/{len(seeds)}", str(max(row["updates"] for row in seeds)),
                         f"{paper[0]:.1f} ± {paper[1]:.1f}" if paper else "—"))
    if not rows:
        return lines + ctx.rows_missing("diagnostics.csv", what, "extrapolation_error")
    header = ("task", "method", "extrapolation error, mean ± std", "95% bootstrap CI",
              "seeds with a value", "final updates", "paper (Table 5)")
    return lines + markdown_table(header, rows) + [
        "", "Extrapolation error = |(1/N) Σ_i Q_i(s, a_i) − R|, R the Monte-Carlo return, at "
        "each seed's final evaluation; std and CI as in Table 6.", ""]


def table7(ctx: Context) -> list[str]:
    lines = ["## Table 7: time per update", ""]
    timing = ctx.results.timing
    if timing is None:
        return lines + ctx.file_missing("timing.csv", "Table 7 (time per update)")
    if not timing:
        return lines + ctx.rows_missing("timing.csv", "Table 7 (time per update)", "any group")
    order = {task: index for index, task in enumerate(order_tasks({r["task"] for r in timing}))}
    rows = []
    for row in sorted(timing, key=lambda row: (order[row["task"]], row["group"])):
        methods = row["methods"].split("+")
        runs = len(methods) * row["seeds"]
        paper = [f"{method_label(m)} {TABLE7_MS[(row['task'], m)]:.0f}" for m in ("mabcq", "bcq")
                 if (row["task"], m) in TABLE7_MS and m in methods]
        rows.append((task_label(row["task"]), row["group"], ", ".join(methods), str(row["seeds"]),
                     str(row["agents"]), row["device"], number(row["ms_per_update"], 2),
                     number(row["ms_per_update"] / runs, 2),
                     number(row["ms_per_update"] / (runs * row["agents"]), 3),
                     " / ".join(paper) or "—", number(row["train_s"]), number(row["eval_s"]),
                     number(row["data_s"])))
    header = ("task", "group", "methods", "seeds", "agents", "device", "ms per update (group)",
              "ms per method-seed update", "ms per agent-update", "paper ms per update",
              "train s", "eval s", "data s")
    devices = sorted({row["device"] for row in timing})
    return lines + markdown_table(header, rows) + [
        "", f"Measured on: {'; '.join(devices)}. The paper's Table 7 is one method's update on "
        f"{TABLE7_HARDWARE}. One compiled step here updates every method x seed x agent of a "
        "group together: ms per method-seed update = ms / (methods x seeds), ms per "
        "agent-update = ms / (methods x seeds x agents), averages of that shared step, not "
        "separately measured times. Compare with the paper only as an order of magnitude "
        "(other hardware, other batching). Stage split: seconds spent training, evaluating in "
        "the simulator and loading data for the group.", ""] + _estimates(timing)


def _estimates(timing: list[dict]) -> list[str]:
    """How honest the command's estimates were: each worker cell's actual seconds (process start
    to cell file) over what the plan said before it started (timing.csv's actual_s,
    estimate_s), per method family; a cell resumed from a checkpoint compares its last call."""
    ratios: dict[str, list[float]] = {}
    for row in timing:
        estimate, actual = row.get("estimate_s", math.nan), row.get("actual_s", math.nan)
        if math.isfinite(estimate) and math.isfinite(actual) and estimate > 0:
            family = family_name(row["methods"].split("+")[0]) or "other"
            ratios.setdefault(family, []).append(actual / estimate)
    if not ratios:
        return []
    rows = [(family, str(len(values)), number(float(np.median(values)), 2),
             f"{min(values):.2f}-{max(values):.2f}") for family, values in sorted(ratios.items())]
    return ["The command's estimates against what the cells took (actual / estimate, per "
            "learner family; above 1: the cell took longer than estimated):", ""] + \
        markdown_table(("family", "cells", "median", "range"), rows) + [""]


def _mean_column(rows: list[dict], column: str) -> tuple[float, int]:
    values = [row[column] for row in rows if math.isfinite(row[column])]
    return (float(np.mean(values)) if values else math.nan), len(values)


def _clip_position(lambda_vd: float, eps: float) -> str:
    if not math.isfinite(lambda_vd):
        return "—"
    if abs(lambda_vd - (1 + eps)) <= CLIP_TOLERANCE:
        return "at 1+ε"
    if abs(lambda_vd - (1 - eps)) <= CLIP_TOLERANCE:
        return "at 1−ε"
    if not 1 - eps < lambda_vd < 1 + eps:
        return "outside (the run used another ε?)"
    return "inside"


def lambda_table(ctx: Context) -> list[str]:
    lines = ["## λ diagnostics (MABCQ)", ""]
    what = "λ diagnostics"
    if ctx.results.diagnostics is None:
        return lines + ctx.file_missing("diagnostics.csv", what)
    picks = {pick: rows_by_seed(ctx.results.diagnostics, pick) for pick in ("first", "last")}
    tasks = order_tasks(task for (task, method) in picks["last"] if method == "mabcq")
    rows = []
    for task in tasks:
        eps = TASK_OPTIMISM.get(task, 0.8)
        for pick, label in (("first", "first"), ("last", "final")):
            seeds = list(picks[pick][(task, "mabcq")].values())
            updates = sorted({row["updates"] for row in seeds})
            lambda_vd, n_vd = _mean_column(seeds, "lambda_vd_mean")
            at_clip, _ = _mean_column(seeds, "lambda_vd_at_clip")
            lambda_tn, _ = _mean_column(seeds, "lambda_tn_mean")
            in_range, _ = _mean_column(seeds, "lambda_tn_data_in_paper_range")
            rows.append((task_label(task), f"{label} ({'/'.join(map(str, updates))})",
                         number(lambda_vd, 3), f"[{1 - eps:.2f}, {1 + eps:.2f}]",
                         _clip_position(lambda_vd, eps), number(at_clip, 3),
                         number(lambda_tn, 3),
                         number(in_range, 3), f"{n_vd}/{len(seeds)}"))
    if not rows:
        return lines + ctx.rows_missing("diagnostics.csv", what, "method mabcq")
    header = ("task", "evaluation (updates)", "λvd batch mean", "clip [1−ε, 1+ε]", "λvd vs clip",
              "share of samples with λvd at the clip", "λtn batch mean",
              "share of own data with λtn in [0.2, 1.4]", "seeds with λvd")
    return lines + markdown_table(header, rows) + [
        "", "Means over seeds. ε is the paper's Table 8 value for the task (0.8 elsewhere), the "
        "default of `mabcq train`; a run with `--optimism` used another. \"at 1+ε\" means the "
        f"batch mean is within {CLIP_TOLERANCE} of the clip: (almost) every sample is clipped, "
        "so λvd acts as a constant there; the share column counts the samples at either bound "
        "(from the update metrics; empty for results written without it). The paper reports "
        "λtn in [0.2, 1.4] for almost all samples.", ""]


# (column of diagnostics.csv, header, digits) of the weights' diagnostics table (issue 19).
WEIGHT_COLUMNS = (
    ("lambda_vd_at_low", "λvd at 1−ε", 3), ("lambda_vd_at_high", "λvd at 1+ε", 3),
    ("lambda_vd_terminal_mean", "λvd mean, terminal s'", 3),
    ("lambda_vd_nonterminal_mean", "λvd mean, other s'", 3),
    ("terminal_share", "terminal share", 3),
    ("lambda_vd_p05", "λvd p05", 2), ("lambda_vd_p50", "λvd p50", 2),
    ("lambda_vd_p95", "λvd p95", 2),
    ("lambda_tn_p05", "λtn p05", 2), ("lambda_tn_p50", "λtn p50", 2),
    ("lambda_tn_p95", "λtn p95", 2), ("lambda_tn_at_low", "λtn at low clip", 3),
    ("lambda_tn_at_high", "λtn at high clip", 3), ("lambda_tn_ess", "λtn ESS", 3),
    ("weight_ess", "w ESS", 3),
)


def weight_diagnostics_table(ctx: Context) -> list[str]:
    """Every weighted method's batch diagnostics at the final evaluation (means over seeds)."""
    lines = ["## The weights' diagnostics (final evaluation)", ""]
    what = "weights' diagnostics"
    if ctx.results.diagnostics is None:
        return lines + ctx.file_missing("diagnostics.csv", what)
    final = rows_by_seed(ctx.results.diagnostics)
    rows = []
    for task in order_tasks({task for (task, _) in final}):
        for method in order_methods(method for (row_task, method) in final if row_task == task):
            seeds = list(final[(task, method)].values())
            means = [_mean_column(seeds, column) for column, _, _ in WEIGHT_COLUMNS]
            if not any(count for _, count in means):
                continue  # no weight, or results written before these columns
            rows.append((task_label(task), method_label(method),
                         *(number(mean, digits) for (mean, _), (_, _, digits)
                           in zip(means, WEIGHT_COLUMNS, strict=True)), str(len(seeds))))
    if not rows:
        return lines + ctx.rows_missing("diagnostics.csv", what, "any weighted method with the "
                                        "weights' diagnostics columns")
    header = ("task", "method", *(label for _, label, _ in WEIGHT_COLUMNS), "seeds")
    return lines + markdown_table(header, rows) + [
        "", "Per mini-batch of the update, averaged over the last evaluation window, then over "
        "seeds (— where a method does not use the weight). \"at 1−ε\"/\"at 1+ε\": share of "
        "samples at lambda_vd's clip; terminal / other s': lambda_vd's mean over the window's "
        "terminal and other transitions (the paper's formula gives 1 ± ε on terminals by the "
        "sign of the critic's residual alone; `vdterm1` sets them to 1); p05/p50/p95: batch "
        "quantiles; λtn at low/high clip: share at the `tnclip` range, or at the safety clamp "
        "e^±10 without it (before `tnnorm`'s division by the batch mean); ESS: "
        "(Σw)² / (B Σw²), the share of the batch that the weighted batch is worth.", ""]
