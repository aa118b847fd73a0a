"""The weights study's section (issue 19): docs/study.md's measures and its decision rules, as
written there before any of its runs, applied to whatever cells exist.

Primary measure: each seed's final return; robustness: the mean of its last three evaluations.
Each option of the estimator (mabcq-vdterm1, -tnclip, -tnnorm, -relguard, -combined) is compared
with `mabcq` and with `bcq` seed by seed (paired: same seed, same data, same initialization), the
95% percentile bootstrap CI of the mean paired difference over seeds (tables.bootstrap_ci). The
rules (docs/study.md, "What counts as an effect") then give one of: the estimator, data or
method, no answer, or a defect when a control fails. With fewer than the design's 5 seeds the
answer is marked preliminary. A sensitivity reading (added after the design, no rule changes)
repeats the final return's comparisons and the rules with a Student-t CI, since a percentile
bootstrap over 5 seeds covers the mean less often than it says.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from mabcq.report.context import Context
from mabcq.report.load import same_row
from mabcq.report.study_stats import (
    BASELINE,
    EFFECT_SHARE,
    LAST_EVALUATIONS,
    REFERENCE,
    VARIANTS,
    Paired,
    comparisons,
    per_seed,
    seed_correlation,
)
from mabcq.report.tables import (
    bootstrap_ci,
    interval,
    markdown_table,
    mean_std,
    method_label,
    number,
    order_tasks,
    rows_by_seed,
    student_t_ci,
    summarize,
    task_label,
)

TERMINAL_TASKS = ("hopper-3x1", "walker2d-2x3")  # episodes end by falling
CONTROL_TASK = "halfcheetah-2x3"  # no terminal transitions
STUDY_TASKS = (*TERMINAL_TASKS, CONTROL_TASK)
DESIGN_METHODS = (REFERENCE, *VARIANTS, BASELINE)
ABLATIONS = ("mabcq-no-tn", "mabcq-no-vd")  # the main grid's, shown beside for context
DESIGN_SEEDS = 5
REGIME_TN_IN_RANGE = 0.95  # lambda_tn in [0.2, 1.4] for at least 95% of own-data samples
REGIME_VD_AT_CLIP = 0.5  # lambda_vd at a clip for under half the batch ...
REGIME_AFTER = 10_000  # ... at every evaluation from 10^4 updates on


def _difference_text(result: Paired) -> str:
    if result.n == 0:
        return "—"
    ci = f"[{number(result.ci_low)}, {number(result.ci_high)}]" if result.n >= 2 else "—"
    return f"{number(result.mean)} {ci}"


def study_section(ctx: Context) -> list[str]:
    lines = ["## The weights study (issue 19, docs/study.md)", ""]
    what = "the weights study (methods mabcq-vdterm1 ... mabcq-combined)"
    if ctx.results.returns is None:
        return lines + ctx.file_missing("returns.csv", what)
    rows = [row for row in ctx.results.returns if row["task"] in STUDY_TASKS]
    if not any(row["method"] in VARIANTS for row in rows):
        ctx.missing.append(f"{what}: `returns.csv` has no rows for them")
        return lines + [f"_{what}: not in these results; `bash scripts/cpu_queue.sh HH:MM` "
                        "writes them into results/study._", ""]
    values = {measure: per_seed(rows, measure) for measure in ("final", "last3")}
    tasks = order_tasks(STUDY_TASKS)
    lines += _returns_table(values, tasks)
    compared = {measure: comparisons(values, measure, tasks, bootstrap_ci) for measure in values}
    for measure, title in (("final", "final return"),
                           ("last3", f"mean of the last {LAST_EVALUATIONS} evaluations")):
        lines += _paired_table(compared[measure], tasks, title)
    controls = _controls(ctx)
    lines += ["Controls (they must hold, else the study reports a defect):", ""]
    lines += [f"- {text}: **{'holds' if ok else 'not checked yet' if ok is None else 'fails'}**"
              for text, ok in controls] + [""]
    seeds = {(task, method): len(values["final"].get((task, method), {}))
             for task in tasks for method in DESIGN_METHODS}
    verdict = _verdict(ctx, compared["final"], controls, seeds)
    return (lines + _answer(seeds, verdict.lines)
            + _sensitivity(ctx, values["final"], compared["final"],
                           comparisons(values, "final", tasks, student_t_ci), controls, seeds,
                           verdict))


def _returns_table(values: dict, tasks: list[str]) -> list[str]:
    rows = []
    for task in tasks:
        for method in (*DESIGN_METHODS, *ABLATIONS):
            final = summarize(list(values["final"].get((task, method), {}).values()))
            last3 = summarize(list(values["last3"].get((task, method), {}).values()))
            if final.n:
                rows.append((task_label(task), method_label(method), mean_std(final),
                             interval(final), mean_std(last3), interval(last3), str(final.n)))
    header = ("task", "method", "final return", "95% CI", f"last {LAST_EVALUATIONS} evaluations",
              "95% CI", "seeds")
    return markdown_table(header, rows) + [
        "", "Mean ± std over seeds; 95% percentile bootstrap CI over seeds (10 000 resamples, "
            "numpy seed 0), as Table 6. The two ablations (the main grid's cells, shown for "
            "context) take no part in the rules below.", ""]


def _paired_table(comparisons: dict, tasks: list[str], title: str) -> list[str]:
    rows = []
    for task in tasks:
        reference = comparisons[(task, REFERENCE, BASELINE)]
        if reference.n:
            rows.append((task_label(task), method_label(REFERENCE), "—", "—",
                         _difference_text(reference), str(reference.n)))
        for variant in VARIANTS:
            versus_ref = comparisons[(task, variant, REFERENCE)]
            versus_base = comparisons[(task, variant, BASELINE)]
            if not (versus_ref.n or versus_base.n):
                continue
            rows.append((task_label(task), method_label(variant), _difference_text(versus_ref),
                         versus_ref.verdict, _difference_text(versus_base), str(versus_ref.n)))
    header = ("task", "variant", "− MABCQ: mean [95% CI]", "effect vs MABCQ",
              "− BCQ: mean [95% CI]", "paired seeds")
    return [f"Paired differences, {title} (variant minus comparator, seed by seed):", ""] + \
        markdown_table(header, rows) + [
            "", f"An option helps (hurts) when the CI of its difference to MABCQ lies above "
                f"(below) 0 and the mean is at least {EFFECT_SHARE:.0%} of MABCQ's mean |final "
                "return| on that task; anything else is \"no effect shown\", not \"no effect\".",
            ""]


def _controls(ctx: Context) -> list[tuple[str, bool | None]]:
    """docs/study.md's five controls: (text, holds), holds None while there is nothing to check."""
    diagnostics = ctx.results.diagnostics or []
    controls: list[tuple[str, bool | None]] = []
    for source, name in ((ctx.results.returns or [], "returns"), (diagnostics, "diagnostics")):
        ours, theirs = (_rows_by_seed(source, CONTROL_TASK, method)
                        for method in ("mabcq-vdterm1", REFERENCE))
        shared = sorted(set(ours) & set(theirs))
        same = all(ours[seed].keys() == theirs[seed].keys()
                   and all(same_row(ours[seed][u], theirs[seed][u]) for u in ours[seed])
                   for seed in shared) if shared else None
        controls.append((f"{task_label(CONTROL_TASK)}: mabcq-vdterm1's {name} rows equal "
                         f"mabcq's exactly, every evaluation ({len(shared)} paired seeds)", same))
    for task in (CONTROL_TASK, *TERMINAL_TASKS):
        shares = [row["terminal_share"] for row in diagnostics
                  if row["task"] == task and row["method"] in (REFERENCE, *VARIANTS)
                  and math.isfinite(row.get("terminal_share", math.nan))]
        holds = (max(shares) == 0 if task == CONTROL_TASK else min(shares) > 0) if shares else None
        controls.append((f"{task_label(task)}: terminal_share "
                         f"{'is 0' if task == CONTROL_TASK else '> 0'} "
                         f"({len(shares)} evaluations)", holds))
    return controls


def _rows_by_seed(source: list[dict], task: str, method: str) -> dict[int, dict[int, dict]]:
    """seed -> updates -> the row without its method name."""
    rows: dict[int, dict[int, dict]] = {}
    for row in source:
        if row["task"] == task and row["method"] == method:
            rows.setdefault(row["seed"], {})[row["updates"]] = {
                key: value for key, value in row.items() if key != "method"}
    return rows


def _regime(ctx: Context, method: str) -> tuple[float, float]:
    """METHOD's weights against the paper's regime, over every evaluation from 10^4 updates on
    of the three study tasks (means over seeds at each point): (the smallest share of own-data
    samples with lambda_tn in [0.2, 1.4], the largest share of the batch with lambda_vd at a
    clip). NaN where a task has no such evaluation or a column was not measured."""
    by_point: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for row in ctx.results.diagnostics or []:
        if (row["method"] == method and row["task"] in STUDY_TASKS
                and row["updates"] >= REGIME_AFTER):
            by_point.setdefault((row["task"], row["updates"]), []).append(
                (row.get("lambda_tn_data_in_paper_range", math.nan),
                 row.get("lambda_vd_at_clip", math.nan)))
    if {task for task, _ in by_point} != set(STUDY_TASKS):
        return math.nan, math.nan
    means = [tuple(float(np.mean(column)) for column in zip(*values, strict=True))
             for values in by_point.values()]
    in_range, at_clip = zip(*means, strict=True)
    if not all(map(math.isfinite, in_range + at_clip)):
        return math.nan, math.nan
    return min(in_range), max(at_clip)


def _in_regime(extremes: tuple[float, float]) -> bool:
    """lambda_tn in [0.2, 1.4] for >= 95% of own-data samples and lambda_vd at a clip for under
    half the batch, at every point `_regime` read (NaN: not measured, so not shown)."""
    in_range, at_clip = extremes
    return in_range >= REGIME_TN_IN_RANGE and at_clip < REGIME_VD_AT_CLIP


def _answer(seeds: dict[tuple[str, str], int], verdict: list[str]) -> list[str]:
    """The answer's heading, the preliminary mark under the design's seeds, then VERDICT."""
    lines = ["### The answer, by the design's rules", ""]
    fewest = min(seeds.values())
    if fewest < DESIGN_SEEDS:
        lines += [f"> **Preliminary: {fewest} seed(s) in the smallest of the design's cells, the "
                  f"design asks for {DESIGN_SEEDS}.** The rules are applied to what exists; the "
                  "answer may change as seeds land.", ""]
    return lines + verdict


def _sensitivity(ctx: Context, values: dict, final: dict, student: dict,
                 controls: list[tuple[str, bool | None]], seeds: dict[tuple[str, str], int],
                 verdict: Verdict) -> list[str]:
    """The final return's comparisons and the rules again with a Student-t CI: which readings
    change, what the same rules then answer, and how far the seeds pair (the correlation over
    seeds of the two methods' final returns). Added after the design; it changes no rule."""
    rows, changed = [], []
    for key, boot in final.items():
        task, variant, other = key
        if boot.n < 2:
            continue
        t = student[key]
        before, after = (_reading(result, other) for result in (boot, t))
        difference = f"{method_label(variant)} − {method_label(other)}"
        if before != after:
            changed.append(f"{task_label(task)} {difference}: {before} → {after}")
        rows.append((task_label(task), difference,
                     number(boot.mean), f"[{number(boot.ci_low)}, {number(boot.ci_high)}]",
                     before, f"[{number(t.ci_low)}, {number(t.ci_high)}]", after,
                     number(seed_correlation(values.get((task, variant), {}),
                                             values.get((task, other), {})), 2), str(boot.n)))
    if not rows:
        return []
    theirs = _verdict(ctx, student, controls, seeds)
    same = verdict.name is not None and verdict.name == theirs.name
    answer = (f"the same answer, **{theirs.name}**." if same
              else " ".join(theirs.lines).strip())
    header = ("task", "difference", "mean", "bootstrap 95% CI", "reading", "Student-t 95% CI",
              "reading with t", "r over seeds", "paired seeds")
    return ["### Sensitivity: the same comparisons with a Student-t interval", "",
            "Added after the design (2026-12-05, with 86 of the 105 cells in); it changes no "
            "rule, and the answer above stands as the design's. The design's CI is a percentile "
            "bootstrap over seeds. Over 5 values that interval is narrower than a Student-t "
            "interval and holds the mean less often than 95% (`scripts/bootstrap_coverage.py`, "
            "normal draws: about 84% at 5 seeds, 0.62 of the t-interval's width). So each final-"
            "return comparison again with mean ± t(0.975, n−1) s/√n, and the readings it "
            "changes (against MABCQ: the design's helps / hurts, same 10% size; against BCQ: "
            "which side of 0 the CI lies on). r: the correlation over the paired seeds of the two "
            "methods' final returns; near 0 or below, pairing by seed narrows the difference "
            "little:", ""] + \
        markdown_table(header, rows) + [
        "", "Readings that change with the t-interval: "
            + ("; ".join(changed) if changed else "none") + ".", "",
        "The design's rules with the t-interval in place of the bootstrap: " + answer, ""]


def _reading(result: Paired, comparator: str) -> str:
    """Against MABCQ the design's verdict; against BCQ the side of 0 the CI lies on."""
    if comparator == REFERENCE:
        return result.verdict
    return "above 0" if result.above_zero else "below 0" if result.below_zero else "contains 0"


class Verdict(NamedTuple):
    """The answer by the design's rules: its name (None while there is no answer yet) and
    its paragraph, which opens with the name in bold."""

    name: str | None
    lines: list[str]


def _named(name: str, text: str) -> Verdict:
    """The answer NAME: its paragraph is the name in bold, then TEXT."""
    return Verdict(name, [f"**{name}**{text}", ""])


def _verdict(ctx: Context, final: dict, controls: list[tuple[str, bool | None]],
             seeds: dict[tuple[str, str], int]) -> Verdict:
    """The answer by the design's rules, from FINAL's paired comparisons."""
    failed = [text for text, ok in controls if ok is False]
    if failed:
        return _named("A defect, not an answer", ": a control fails (" + "; ".join(failed)
                      + "). The options' numbers above cannot be read until it is explained.")
    short = [f"{task_label(t)} {method_label(m)} ({n})" for (t, m), n in seeds.items() if n < 2]
    thin = [f"{task_label(t)} {method_label(v)} − {method_label(o)} ({result.n})"
            for (t, v, o), result in final.items() if result.n < 2]
    unchecked = [text for text, ok in controls if ok is None]
    if short or thin or unchecked:
        return Verdict(None, ["No answer yet: " + "; ".join(
            ([f"cells with fewer than 2 seeds: {', '.join(short)}"] if short else [])
            + ([f"comparisons with fewer than 2 paired seeds: {', '.join(thin)}"]
               if thin and not short else [])
            + ([f"controls not checked yet: {'; '.join(unchecked)}"] if unchecked else []))
            + ".", ""])
    terminal, tasks = TERMINAL_TASKS, STUDY_TASKS
    estimator = [v for v in VARIANTS
                 if all(final[(t, v, REFERENCE)].verdict == "helps"
                        and not final[(t, v, BASELINE)].below_zero for t in terminal)]
    if estimator:
        return _named("The estimator", " (answer 1): " + ", ".join(
            f"{method_label(v)} helps on Hopper and Walker2d (" + "; ".join(
                f"{task_label(t)} {_difference_text(final[(t, v, REFERENCE)])} vs MABCQ, "
                f"{_difference_text(final[(t, v, BASELINE)])} vs BCQ" for t in terminal) + ")"
            for v in estimator) + ". Its mechanism must show in the diagnostics; at the final "
            "evaluation (means over seeds), " + "; ".join(
                _mechanism(ctx, v, t) for v in estimator for t in terminal) + ".")
    helped = sorted({task_label(t) for (t, v, other), result in final.items()
                     if other == REFERENCE and t in terminal and result.verdict == "helps"})
    weighted = (REFERENCE, *VARIANTS)
    not_ahead = all(sum(not final[(t, v, BASELINE)].above_zero for t in tasks) >= 2
                    for v in weighted)
    extremes = {v: _regime(ctx, v) for v in weighted}
    regime = [v for v in weighted if _in_regime(extremes[v])]
    unmeasured = [method_label(v) for v in weighted if math.isnan(extremes[v][0])]
    if not helped and not_ahead and not regime and unmeasured:
        return Verdict(None, ["No answer yet: the regime the method answer needs cannot be "
                              f"checked for {', '.join(unmeasured)} (no diagnostics from "
                              f"{REGIME_AFTER} updates on for every study task, or a column "
                              "not measured).", ""])
    if not helped and not_ahead and regime:
        return _named(
            "Data or method", " (answers 2 or 3; this study cannot tell them apart): no option "
            "helps on Hopper or Walker2d, MABCQ and every option are not above BCQ on at least "
            "two of the three tasks (minus BCQ, final return: " + "; ".join(
                f"{method_label(v)} " + ", ".join(
                    f"{task_label(t)} {_difference_text(final[(t, v, BASELINE)])}"
                    for t in tasks) for v in weighted)
            + "), and the weights are in the regime the paper describes for " + ", ".join(
                f"{method_label(v)} (λtn in range for at least {extremes[v][0]:.1%}, λvd at a "
                f"clip for at most {extremes[v][1]:.1%})" for v in regime)
            + f" (the regime: λtn in [0.2, 1.4] for at least {REGIME_TN_IN_RANGE:.0%} of "
            "own-data samples, λvd at a clip for under half the batch, at every evaluation from "
            f"{REGIME_AFTER} updates on, seed means). The follow-up that would separate data "
            "from method: the same variants on the `low` recipe and on datasets whose behavior "
            "policies miscoordinate more (e.g. a larger share of the mixed intermediate/expert "
            "parts).")
    reasons = []
    if helped:
        reasons.append("some option helps on " + " and ".join(helped) + " but not as the "
                       "estimator rule needs (on both terminal tasks, not below BCQ)")
    if not not_ahead:
        reasons.append("MABCQ or an option is above BCQ on two or more tasks")
    if not regime and unmeasured:
        reasons.append("no weighted variant shows the paper's regime on every evaluation (it "
                       f"cannot be checked for {', '.join(unmeasured)})")
    elif not regime:
        reasons.append("no weighted variant is in the paper's regime on every evaluation")
    return _named("No answer by the design's rules", ": " + "; ".join(reasons) + ".")


def _mechanism(ctx: Context, variant: str, task: str) -> str:
    """The diagnostics the design names for an option's mechanism, the variant beside MABCQ."""
    final = rows_by_seed(ctx.results.diagnostics or [])

    def final_mean(method: str, column: str) -> float:
        return summarize([row[column] for row in final.get((task, method), {}).values()]).mean

    return f"{task_label(task)}: " + ", ".join(
        f"{label} {number(final_mean(variant, column), 3)} (MABCQ "
        f"{number(final_mean(REFERENCE, column), 3)})"
        for column, label in (("lambda_vd_terminal_mean", "λvd's terminal mean"),
                              ("weight_ess", "w ESS")))
