"""The BCQ policy taken apart (acting.csv, `mabcq acting`): per task and method, the final
evaluation's return with the whole policy, with G1 alone, with the critic's choice among G1's
candidates but no xi, and with xi on one G1 sample; and the two steps' paired effects.

Every variant re-runs the same episodes (same simulator seeds, same keys) as the cell's recorded
final evaluation, so a difference between two variants of one seed comes from the switched part
alone; over seeds they are averaged like Table 6 (mean ± population std)."""

from __future__ import annotations

from mabcq.report.context import Context
from mabcq.report.tables import (
    markdown_table,
    mean_std,
    method_label,
    order_methods,
    order_tasks,
    summarize,
    task_label,
)
from mabcq.training.acting import VARIANTS

ACTING_VARIANTS = tuple(VARIANTS)  # policy, g1, argmax, perturb
WHAT = "the BCQ policy taken apart"


def _by_cell(rows: list[dict]) -> dict[tuple[str, str], dict[int, dict[str, dict]]]:
    """(task, method) -> seed -> variant -> row, at each seed's last re-run update."""
    final: dict[tuple[str, str, int], int] = {}
    for row in rows:
        key = (row["task"], row["method"], row["seed"])
        final[key] = max(final.get(key, row["updates"]), row["updates"])
    cells: dict[tuple[str, str], dict[int, dict[str, dict]]] = {}
    for row in rows:
        if row["updates"] == final[(row["task"], row["method"], row["seed"])]:
            cell = cells.setdefault((row["task"], row["method"]), {})
            cell.setdefault(row["seed"], {})[row["variant"]] = row
    return cells


def _paired(seeds: dict[int, dict[str, dict]], high: str, low: str) -> str:
    """mean ± std over seeds of return(high) - return(low), same seed's episodes."""
    return mean_std(summarize([variants[high]["return"] - variants[low]["return"]
                               for variants in seeds.values()
                               if high in variants and low in variants]))


def acting_section(ctx: Context) -> list[str]:
    lines = ["## The BCQ policy taken apart: G1, the critic's choice, the perturbation ξ", ""]
    rows = ctx.results.acting
    if rows is None:
        ctx.missing.append(f"{WHAT}: `acting.csv` is missing")
        return lines + [f"_{WHAT}: not reported, `acting.csv` is missing; `mabcq acting "
                        "RESULTS` writes it from the finished cells' policies._", ""]
    cells = _by_cell(rows)
    table = []
    for task in order_tasks({task for task, _ in cells}):
        for method in order_methods(method for row_task, method in cells if row_task == task):
            seeds = cells[(task, method)]
            means = [mean_std(summarize([variants[name]["return"]
                                         for variants in seeds.values() if name in variants]))
                     for name in ACTING_VARIANTS]
            table.append((task_label(task), method_label(method), str(len(seeds)), *means,
                          _paired(seeds, "argmax", "g1"), _paired(seeds, "policy", "argmax")))
    policy_rows = [row for row in rows if row["variant"] == "policy"]
    failed = [row for row in policy_rows if row["reproduces"] != "yes"]
    check = (f"All {len(policy_rows)} `policy` re-runs reproduce their cell's recorded final "
             "return bit for bit." if not failed else
             f"**{len(failed)} of {len(policy_rows)} `policy` re-runs do not reproduce their "
             "cell's recorded final return**: "
             + ", ".join(f"{row['task']} {row['method']} seed {row['seed']}" for row in failed)
             + "; their rows are not the cell's own evaluation.")
    header = ("task", "method", "seeds", "policy (n=10, ξ)", "g1 (n=1, no ξ)",
              "argmax (n=10, no ξ)", "perturb (n=1, ξ)", "critic's choice: argmax − g1",
              "ξ: policy − argmax")
    return lines + markdown_table(header, table) + [
        "", "Each cell's final evaluation re-run with one part of π_i changed (`mabcq acting`, "
        "acting.csv): n, the actions drawn from G1 per state, and Φ, the perturbation's range "
        "(0: no ξ). The same episodes (simulator seeds and key streams) as the recorded final "
        "return, so the two right-hand columns are paired per seed; mean ± std over seeds. "
        "Where G1 is fitted before the critic (Algorithm 1, line 4, as in the grid), g1 is "
        "the same for every method of a task and seed. " + check, ""]
