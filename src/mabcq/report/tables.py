"""Pure statistics and table text: per-cell summaries over seeds, the bootstrap CI, the IQM.

Reporting follows METHOD.md's last section: mean +- std over seeds, a 95% percentile bootstrap
CI over seeds per cell (seeded, so the same data give the same interval), and for aggregates
over tasks the interquartile mean with a stratified bootstrap CI, as `rliable` computes them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95

# Names in the paper's order; anything else follows, sorted.
TASK_ORDER = ("halfcheetah-2x3", "walker2d-2x3", "hopper-3x1", "ant-4x2", "swimmer-2x1")
TASK_LABELS = {"halfcheetah-2x3": "HalfCheetah 2x3", "walker2d-2x3": "Walker 2x3",
               "hopper-3x1": "Hopper 3x1", "ant-4x2": "Ant 4x2", "swimmer-2x1": "Swimmer 2x1"}
MAIN_METHODS = ("mabcq", "mabcq-no-tn", "mabcq-no-vd", "bcq", "ddpg", "behavior",
                "macql", "macql-no-tn", "macql-no-vd", "cql",
                "matd3bc", "matd3bc-no-tn", "matd3bc-no-vd", "td3bc")
METHOD_LABELS = {"mabcq": "MABCQ", "mabcq-no-tn": "MABCQ w/o λtn", "mabcq-no-vd": "MABCQ w/o λvd",
                 "bcq": "BCQ", "ddpg": "DDPG", "behavior": "Behavior",
                 "macql": "MACQL", "macql-no-tn": "MACQL w/o λtn", "macql-no-vd": "MACQL w/o λvd",
                 "cql": "CQL", "matd3bc": "MA-TD3+BC", "matd3bc-no-tn": "MA-TD3+BC w/o λtn",
                 "matd3bc-no-vd": "MA-TD3+BC w/o λvd", "td3bc": "TD3+BC"}
# Base learners whose runs have sections of their own (Appendix B's Figure 6, the TD3+BC table);
# everything else (the BCQ family, DDPG, Behavior, unknown names) is the paper's main grid.
OWN_SECTION_FAMILIES = ("cql", "td3bc")
EPS_PREFIX = "mabcq-eps"


@dataclass(frozen=True)
class CellStats:
    """One cell over seeds: mean, std (population, ddof=0), 95% bootstrap CI, count."""

    mean: float
    std: float
    ci_low: float
    ci_high: float
    n: int


def bootstrap_ci(values: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES,
                 confidence: float = CONFIDENCE, seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean: resample the values with replacement `resamples`
    times from a fixed numpy seed; the (1-c)/2 and (1+c)/2 quantiles of the resampled means."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(low), float(high)


def student_t_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Student-t CI of the mean: mean +- t_{(1+c)/2, n-1} s / sqrt(n), s the sample std
    (ddof=1). A reading beside the percentile bootstrap, which over a handful of values is
    narrower and covers less often than it says (scripts/bootstrap_coverage.py)."""
    data = np.asarray(values, dtype=np.float64)
    if data.size < 2:
        return math.nan, math.nan
    mean = float(data.mean())
    half = float(stats.t.ppf((1.0 + confidence) / 2.0, data.size - 1)
                 * data.std(ddof=1) / math.sqrt(data.size))
    return mean - half, mean + half


def iqm(values: Iterable[float]) -> float:
    """Interquartile mean: drop the lowest and highest 25% (int(0.25 n) each side), average the
    rest; scipy.stats.trim_mean(values, 0.25), which is what rliable calls."""
    return float(_iqm_rows(np.asarray(list(values), dtype=np.float64)[None, :])[0])


def _iqm_rows(scores: np.ndarray) -> np.ndarray:
    """IQM of each row of [rows, n]."""
    n = scores.shape[1]
    if n == 0:
        return np.full(scores.shape[0], math.nan)
    cut = int(0.25 * n)
    return np.sort(scores, axis=1)[:, cut:n - cut].mean(axis=1)


def stratified_bootstrap_iqm_ci(
    scores_per_task: Sequence[Sequence[float]], resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE, seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """rliable's stratified bootstrap: resample seeds within each task, pool the tasks, take the
    IQM; the percentile interval of those IQMs."""
    tasks = [np.asarray(scores, dtype=np.float64) for scores in scores_per_task if len(scores)]
    if not tasks:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    pooled = np.concatenate(
        [scores[rng.integers(0, scores.size, size=(resamples, scores.size))] for scores in tasks],
        axis=1)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(_iqm_rows(pooled), [tail, 100.0 - tail])
    return float(low), float(high)


def summarize(values: Sequence[float]) -> CellStats:
    """Mean, population std, bootstrap CI and count of the finite values."""
    data = np.asarray([value for value in values if math.isfinite(value)], dtype=np.float64)
    if data.size == 0:
        return CellStats(math.nan, math.nan, math.nan, math.nan, 0)
    low, high = bootstrap_ci(data)
    return CellStats(float(data.mean()), float(data.std()), low, high, int(data.size))


def number(value: float | None, digits: int = 1) -> str:
    """A fixed-precision number; NaN or None -> '—' (nothing to report)."""
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.{digits}f}"


def mean_std(stats: CellStats, digits: int = 1) -> str:
    if stats.n == 0:
        return "—"
    return f"{number(stats.mean, digits)} ± {number(stats.std, digits)}"


def interval(stats: CellStats, digits: int = 1) -> str:
    """The CI as text; with one seed there is no interval to give."""
    if stats.n < 2:
        return "— (1 seed)" if stats.n == 1 else "—"
    return f"[{number(stats.ci_low, digits)}, {number(stats.ci_high, digits)}]"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Lines of a GitHub markdown table ('|' and line breaks inside cells escaped)."""
    def cell(value: object) -> str:
        return " ".join(str(value).split("\n")).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(name) for name in header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(cell(value) for value in row) + " |" for row in rows)
    return lines


def order_tasks(tasks: Iterable[str]) -> list[str]:
    present = set(tasks)
    known = [task for task in TASK_ORDER if task in present]
    return known + sorted(present - set(TASK_ORDER))


def eps_of(method: str) -> float | None:
    """0.16 for 'mabcq-eps0.16'; None for any other method."""
    if not method.startswith(EPS_PREFIX):
        return None
    try:
        return float(method[len(EPS_PREFIX):])
    except ValueError:
        return None


def order_methods(methods: Iterable[str]) -> list[str]:
    """The six main methods in the paper's order, the eps sweep by eps, then the rest."""
    present = set(methods)
    main = [method for method in MAIN_METHODS if method in present]
    sweep = sorted((method for method in present if eps_of(method) is not None),
                   key=lambda method: (eps_of(method), method))
    return main + sweep + sorted(present - set(main) - set(sweep))


def family_name(method: str) -> str | None:
    """The learner family of a known method name ("cql" for macql-no-tn), None for others."""
    from mabcq.errors import UserError
    from mabcq.learners.registry import family_of

    try:
        return family_of(method).name
    except UserError:
        return None


def in_main_grid(method: str) -> bool:
    """Reported in the paper's main tables (Table 6, Figures 2/3, Table 5)?"""
    return family_name(method) not in OWN_SECTION_FAMILIES


def task_label(task: str) -> str:
    return TASK_LABELS.get(task, task)


def method_label(method: str) -> str:
    eps = eps_of(method)
    if eps is not None:
        return f"MABCQ ε={eps:.2f}"
    return METHOD_LABELS.get(method, method)


# ---- grouping rows (dicts from mabcq.report.load) by task, method and seed ----

@dataclass(frozen=True)
class Curve:
    """One (task, method) over evaluations: [points] arrays, statistics over seeds per point."""

    updates: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    n: np.ndarray


def rows_by_seed(rows: Iterable[dict], pick: str = "last") -> dict[tuple[str, str], dict]:
    """(task, method) -> {seed: row}: each seed's evaluation with the largest `updates` ("last",
    the final evaluation) or the smallest ("first"). Seeds are never dropped."""
    chosen: dict[tuple[str, str], dict[int, dict]] = {}
    for row in rows:
        cell = chosen.setdefault((row["task"], row["method"]), {})
        held = cell.get(row["seed"])
        later = held is None or row["updates"] > held["updates"]
        earlier = held is None or row["updates"] < held["updates"]
        if (pick == "last" and later) or (pick == "first" and earlier):
            cell[row["seed"]] = row
    return {key: dict(sorted(cell.items())) for key, cell in sorted(chosen.items())}


def curves(rows: Iterable[dict], column: str) -> dict[tuple[str, str], Curve]:
    """(task, method) -> mean and std over seeds of `column` at each `updates` (finite only)."""
    grouped: dict[tuple[str, str], dict[int, list[float]]] = {}
    for row in rows:
        value = row[column]
        if not math.isfinite(value):
            continue
        points = grouped.setdefault((row["task"], row["method"]), {})
        points.setdefault(row["updates"], []).append(value)
    result = {}
    for key, points in sorted(grouped.items()):
        updates = sorted(points)
        values = [np.asarray(points[update]) for update in updates]
        result[key] = Curve(np.asarray(updates), np.asarray([v.mean() for v in values]),
                            np.asarray([v.std() for v in values]),
                            np.asarray([v.size for v in values]))
    return result
