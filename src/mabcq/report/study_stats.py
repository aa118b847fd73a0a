"""The weights study's numbers (issue 19, docs/study.md): per-seed measures, paired differences
with their CI and verdict, and how far two methods' seeds pair. Pure numbers, no text; the
section (`sections_study`) writes them out and applies the design's rules."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mabcq.report.tables import bootstrap_ci

OPTIONS = ("vdterm1", "tnclip", "tnnorm", "relguard", "combined")
VARIANTS = tuple(f"mabcq-{option}" for option in OPTIONS)
REFERENCE, BASELINE = "mabcq", "bcq"
EFFECT_SHARE = 0.10  # an effect is at least 10% of mabcq's mean |final return|
LAST_EVALUATIONS = 3  # the robustness measure's window


@dataclass(frozen=True)
class Paired:
    """A variant minus a comparator, over the seeds both have: mean, CI and verdict."""

    mean: float
    ci_low: float
    ci_high: float
    n: int
    verdict: str  # "helps", "hurts" or "no effect shown"

    @property
    def above_zero(self) -> bool:
        return self.n >= 2 and self.ci_low > 0

    @property
    def below_zero(self) -> bool:
        return self.n >= 2 and self.ci_high < 0


def per_seed(rows: list[dict], measure: str) -> dict[tuple[str, str], dict[int, float]]:
    """(task, method) -> {seed: value}: "final" (the last evaluation's return) or "last3" (the
    mean of the last three evaluations' returns)."""
    series: dict[tuple[str, str], dict[int, list[tuple[int, float]]]] = {}
    for row in rows:
        series.setdefault((row["task"], row["method"]), {}).setdefault(row["seed"], []).append(
            (row["updates"], row["return"]))
    window = 1 if measure == "final" else LAST_EVALUATIONS
    return {key: {seed: float(np.mean([value for _, value in sorted(points)[-window:]]))
                  for seed, points in sorted(seeds.items())}
            for key, seeds in series.items()}


def paired(variant: dict[int, float], other: dict[int, float], threshold: float,
           ci: Callable[[list[float]], tuple[float, float]] = bootstrap_ci) -> Paired:
    """VARIANT - OTHER over shared seeds; helps / hurts when the CI (the design's bootstrap, or
    another CI function) excludes 0 and |mean| is at least THRESHOLD (10% of mabcq's mean
    |final return|)."""
    seeds = sorted(set(variant) & set(other))
    differences = [variant[seed] - other[seed] for seed in seeds]
    if not differences:
        return Paired(math.nan, math.nan, math.nan, 0, "no effect shown")
    mean, n = float(np.mean(differences)), len(differences)
    low, high = ci(differences) if n >= 2 else (math.nan, math.nan)
    big = abs(mean) >= threshold  # False for a NaN threshold (no mabcq cells)
    verdict = ("helps" if n >= 2 and low > 0 and big else
               "hurts" if n >= 2 and high < 0 and big else "no effect shown")
    return Paired(mean, low, high, n, verdict)


def effect_threshold(values: dict[tuple[str, str], dict[int, float]], task: str) -> float:
    """The smallest difference the design counts as an effect on TASK: 10% of mabcq's mean
    |final return| over seeds (NaN without mabcq cells)."""
    reference = list(values.get((task, REFERENCE), {}).values())
    return EFFECT_SHARE * float(np.mean(np.abs(reference))) if reference else math.nan


def comparisons(values: dict, measure: str, tasks: list[str],
                ci: Callable[[list[float]], tuple[float, float]]) -> dict:
    """(task, variant, comparator) -> Paired, for MABCQ and each option against MABCQ and BCQ."""
    thresholds = {task: effect_threshold(values["final"], task) for task in tasks}
    return {(task, variant, other): paired(
        values[measure].get((task, variant), {}), values[measure].get((task, other), {}),
        thresholds[task], ci)
        for task in tasks for variant in (REFERENCE, *VARIANTS) for other in (REFERENCE, BASELINE)
        if variant != other}


def seed_correlation(first: dict[int, float], second: dict[int, float]) -> float:
    """Pearson's r over the seeds both hold; NaN under 3 seeds or where one side is constant."""
    seeds = sorted(set(first) & set(second))
    a, b = (np.array([side[seed] for seed in seeds]) for side in (first, second))
    if len(seeds) < 3 or a.std() == 0 or b.std() == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])
