"""The weights study's report section (docs/study.md's rules, mabcq.report.sections_study): each
answer comes out of results built to call for it, a failing control gives a defect, and the
paired differences are the per-seed differences' mean and bootstrap CI."""

import csv
from pathlib import Path

import numpy as np
import pytest

from mabcq.grid.cells import DIAGNOSTIC_COLUMNS, RETURNS_COLUMNS
from mabcq.report.build import build_report
from mabcq.report.study_stats import VARIANTS, paired, per_seed
from mabcq.report.tables import bootstrap_ci, student_t_ci

TASKS = ("hopper-3x1", "walker2d-2x3", "halfcheetah-2x3")
UPDATES = (5000, 10000, 15000)


def write(out: Path, returns_of, seeds=range(5), diagnostics_of=None) -> Path:
    """returns_of(task, method, seed, updates) -> return; diagnostics_of(...) -> dict of
    columns (default: the paper's regime, terminal transitions on Hopper and Walker only)."""
    def regime(task, method, seed, updates):
        # vdterm1 changes lambda_vd on terminal transitions only: none on HalfCheetah
        vdterm1 = method in ("mabcq-vdterm1", "mabcq-combined") and task != "halfcheetah-2x3"
        return {"lambda_tn_data_in_paper_range": 0.99, "lambda_vd_at_clip": 0.1,
                "terminal_share": 0.0 if task == "halfcheetah-2x3" else 0.01,
                "lambda_vd_terminal_mean": 1.0 if vdterm1 else 0.2,
                "weight_ess": 0.9 if vdterm1 else 0.8}

    diagnostics_of = diagnostics_of or regime
    methods = ("mabcq", *VARIANTS, "bcq")
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "returns.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, RETURNS_COLUMNS)
        writer.writeheader()
        for task in TASKS:
            for method in methods:
                for seed in seeds:
                    for updates in UPDATES:
                        writer.writerow({"task": task, "method": method, "seed": seed,
                                         "updates": updates, "recipe": "paper",
                                         "return": returns_of(task, method, seed, updates)})
    with open(out / "diagnostics.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, DIAGNOSTIC_COLUMNS)
        writer.writeheader()
        for task in TASKS:
            for method in methods[:-1]:  # bcq has no weights
                for seed in seeds:
                    for updates in UPDATES:
                        writer.writerow({"task": task, "method": method, "seed": seed,
                                         "updates": updates, "recipe": "paper",
                                         **diagnostics_of(task, method, seed, updates)})
    return out


def base(task, seed, updates):
    return 1000.0 + 37.0 * seed + updates / 1000.0


def section(out: Path) -> str:
    text = build_report(out, out / "report").report.read_text()
    return text[text.index("## The weights study"):]


def test_a_variant_that_helps_on_both_terminal_tasks_is_the_estimator(tmp_path):
    def returns_of(task, method, seed, updates):
        lift = 500.0 if method == "mabcq-vdterm1" and task != "halfcheetah-2x3" else 0.0
        noise = 0.0 if method in ("mabcq", "mabcq-vdterm1") else (-1) ** seed * 3.0
        return base(task, seed, updates) + lift + noise + (20.0 if method == "bcq" else 0.0)

    text = section(write(tmp_path, returns_of))
    assert "**The estimator** (answer 1): mabcq-vdterm1 helps on Hopper and Walker2d" in text
    assert "Preliminary" not in text and "**fails**" not in text and "not checked" not in text
    assert text.count("**holds**") == 5  # HC's rows equal twice, three terminal-share checks
    assert "Hopper 3x1: λvd's terminal mean 1.000 (MABCQ 0.200), w ESS 0.900 (MABCQ 0.800)" in text
    row = "| Hopper 3x1 | mabcq-vdterm1 | 500.0 [500.0, 500.0] | helps | 479.4 [477.0, 481.8] | 5 |"
    assert row in text  # minus BCQ: 500 - 20 - 3 (-1)^seed over seeds 0-4, mean 479.4


def test_no_option_helping_in_the_papers_regime_is_data_or_method(tmp_path):
    def returns_of(task, method, seed, updates):
        exact = method == "mabcq" or (task, method) == ("halfcheetah-2x3", "mabcq-vdterm1")
        noise = 0.0 if exact else ((seed * 7 + len(method)) % 5 - 2) * 2.0
        return base(task, seed, updates) + noise + (60.0 if method == "bcq" else 0.0)

    text = section(write(tmp_path, returns_of))
    assert "**Data or method** (answers 2 or 3" in text
    assert "no effect shown" in text and "| helps |" not in text
    assert ("The design's rules with the t-interval in place of the bootstrap: the same answer, "
            "**Data or method**.") in text


def test_student_t_ci_by_hand():
    # [1, 2, 3]: mean 2, sample std 1, t(0.975, 2) = 4.30265272975 (tables of the t distribution)
    half = 4.30265272975 / np.sqrt(3.0)
    assert student_t_ci([1.0, 2.0, 3.0]) == pytest.approx((2.0 - half, 2.0 + half), rel=1e-10)
    assert student_t_ci([5.0, 5.0]) == (5.0, 5.0)
    assert all(np.isnan(student_t_ci([1.0])))


def test_the_sensitivity_reading_redoes_the_rules_with_a_student_t_interval(tmp_path):
    """vdterm1 is +100 at four seeds and +600 at the fifth on both terminal tasks: the bootstrap's
    lower bound is 100 (a third of its resamples hold only the 100s), so it helps and the design
    answers "the estimator"; the t-interval, 200 +- 2.776 x 223.6 / sqrt(5) = [-77.6, 477.6],
    holds 0, so with it no option helps and the same rules answer "data or method"."""
    def returns_of(task, method, seed, updates):
        lift = 0.0
        if method == "mabcq-vdterm1" and task != "halfcheetah-2x3":
            lift = 600.0 if seed == 4 else 100.0
        return base(task, seed, updates) + lift + (20.0 if method == "bcq" else 0.0)

    text = section(write(tmp_path, returns_of))
    answer = text[text.index("### The answer"):text.index("### Sensitivity")]
    assert "**The estimator** (answer 1): mabcq-vdterm1 helps on Hopper and Walker2d" in answer
    sensitivity = text[text.index("### Sensitivity"):]
    # r: MABCQ's final returns rise by 37 a seed, vdterm1's too plus the lifts: r = 0.81
    row = ("| Hopper 3x1 | mabcq-vdterm1 − MABCQ | 200.0 | [100.0, 400.0] | helps | [-77.6, 477.6] "
           "| no effect shown | 0.81 | 5 |")
    assert row in sensitivity
    assert "Hopper 3x1 mabcq-vdterm1 − MABCQ: helps → no effect shown" in sensitivity
    assert "Walker 2x3 mabcq-vdterm1 − MABCQ: helps → no effect shown" in sensitivity
    assert ("in place of the bootstrap: **Data or method** (answers 2 or 3; this study cannot "
            "tell them apart)") in sensitivity


def test_the_answer_needs_the_papers_regime(tmp_path):
    def returns_of(task, method, seed, updates):
        return base(task, seed, updates) + (60.0 if method == "bcq" else 0.0)

    def clipped(task, method, seed, updates):  # lambda_vd at a clip for most of the batch
        return {"lambda_tn_data_in_paper_range": 0.99, "lambda_vd_at_clip": 0.7,
                "terminal_share": 0.0 if task == "halfcheetah-2x3" else 0.01}

    text = section(write(tmp_path, returns_of, diagnostics_of=clipped))
    assert "**No answer by the design's rules**: no weighted variant is in the paper's" in text


def test_a_failing_control_is_a_defect(tmp_path):
    def returns_of(task, method, seed, updates):  # vdterm1 differs on HalfCheetah: impossible
        odd = 1e-9 if (task, method) == ("halfcheetah-2x3", "mabcq-vdterm1") else 0.0
        return base(task, seed, updates) + odd

    text = section(write(tmp_path, returns_of))
    assert ("mabcq-vdterm1's returns rows equal mabcq's exactly, every evaluation (5 paired "
            "seeds): **fails**") in text
    assert "**A defect, not an answer**" in text and "**The estimator**" not in text


def test_fewer_seeds_than_the_design_is_preliminary(tmp_path):
    text = section(write(tmp_path, lambda task, method, seed, updates: base(task, seed, updates),
                         seeds=range(2)))
    assert ("**Preliminary: 2 seed(s) in the smallest of the design's cells, the design asks "
            "for 5.**") in text


def without(out: Path, name: str, drop) -> Path:
    """OUT with the rows of NAME (a CSV) for which drop(row) is true removed."""
    with open(out / name, newline="") as handle:
        rows = list(csv.DictReader(handle))
    with open(out / name, "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(row for row in rows if not drop(row))
    return out


def helps_everywhere(task, method, seed, updates):
    exact = method == "mabcq" or task == "halfcheetah-2x3"
    return base(task, seed, updates) + (0.0 if exact else 500.0)


@pytest.mark.parametrize("name, drop, reason", [
    ("returns.csv", lambda row: row["method"] == "bcq",
     "cells with fewer than 2 seeds: HalfCheetah 2x3 BCQ (0), Walker 2x3 BCQ (0), Hopper 3x1 BCQ "
     "(0)."),
    ("returns.csv", lambda row: row["method"] == "mabcq-combined" and row["seed"] != "0",
     "Hopper 3x1 mabcq-combined (1)"),
    ("diagnostics.csv", lambda row: row["task"] == "walker2d-2x3",
     "controls not checked yet: Walker 2x3: terminal_share > 0 (0 evaluations)"),
    ("returns.csv", lambda row: row["task"] == "halfcheetah-2x3",
     "controls not checked yet: HalfCheetah 2x3: mabcq-vdterm1's returns rows equal"),
])
def test_no_answer_until_every_cell_and_control_is_there(tmp_path, name, drop, reason):
    text = section(without(write(tmp_path, helps_everywhere), name, drop))
    assert "No answer yet: " in text and reason in text, text[text.index("### The answer"):]
    assert "**The estimator**" not in text


def test_results_without_the_study_say_so_in_one_line(tmp_path):
    out = tmp_path / "grid"
    write(out, lambda task, method, seed, updates: base(task, seed, updates))
    rows = (out / "returns.csv").read_text().splitlines()  # the main grid: no options
    (out / "returns.csv").write_text("\n".join(row for row in rows
                                               if "mabcq-" not in row) + "\n")
    text = section(out)
    assert "not in these results; `bash scripts/cpu_queue.sh HH:MM` writes them" in text
    assert "Paired differences" not in text


def test_paired_difference_is_the_mean_and_bootstrap_ci_of_per_seed_differences():
    variant = {0: 110.0, 1: 205.0, 2: 330.0, 3: 90.0}
    other = {0: 100.0, 1: 200.0, 2: 300.0, 4: 1.0}  # seed 3 and 4 are not paired
    result = paired(variant, other, threshold=5.0)
    assert result.n == 3 and result.mean == pytest.approx(15.0)
    assert (result.ci_low, result.ci_high) == bootstrap_ci([10.0, 5.0, 30.0])
    assert result.verdict == "helps"
    assert paired(variant, other, threshold=20.0).verdict == "no effect shown"  # too small
    assert paired(other, variant, threshold=5.0).verdict == "hurts"
    assert paired({0: 1.0}, {0: 0.0}, threshold=0.1).verdict == "no effect shown"  # one seed


def test_last_three_evaluations_measure():
    rows = [{"task": "t", "method": "m", "seed": 0, "updates": u, "return": r}
            for u, r in ((4, 40.0), (1, 10.0), (3, 30.0), (2, 20.0))]
    assert per_seed(rows, "final") == {("t", "m"): {0: 40.0}}
    assert per_seed(rows, "last3") == {("t", "m"): {0: float(np.mean([20.0, 30.0, 40.0]))}}


def paired_table(text: str, title: str) -> str:
    start = text.index(f"Paired differences, {title}")
    return text[start:text.index("An option helps", start)]


def test_an_effect_is_at_least_ten_percent_of_mabcqs_mean_absolute_final_return(tmp_path):
    """MABCQ's final return on Hopper is -1000 at every seed, so the threshold is 100 (10% of its
    mean |final return|): +105 helps, +95 is too small, whatever the CI. Earlier evaluations of
    MABCQ sit at -10 000, so the last-three measure would have a threshold of ~700 of its own:
    its verdicts must use the final return's."""
    lifts = {"mabcq-vdterm1": 105.0, "mabcq-tnclip": 95.0}

    def returns_of(task, method, seed, updates):
        if task != "hopper-3x1" or method == "bcq":
            return base(task, seed, updates)
        level = -1000.0 if updates == UPDATES[-1] else -10_000.0
        return level + lifts.get(method, 0.0) + (0.0 if method == "mabcq" else (-1) ** seed)

    text = section(write(tmp_path, returns_of))
    for title in ("final return", "mean of the last 3 evaluations"):
        table = paired_table(text, title)
        assert "| Hopper 3x1 | mabcq-vdterm1 | 105.2 [" in table and "] | helps |" in table
        tnclip = next(line for line in table.splitlines() if "| mabcq-tnclip |" in line
                      and "Hopper" in line)
        assert "| 95.2 [" in tnclip and "| no effect shown |" in tnclip


def test_paired_cis_are_95_percent_from_10000_resamples_of_numpy_seed_0():
    variant = {seed: 100.0 + value for seed, value in enumerate((10.0, 5.0, 30.0, -4.0, 17.0))}
    other = {seed: 100.0 for seed in range(5)}
    result = paired(variant, other, threshold=1.0)
    differences = [10.0, 5.0, 30.0, -4.0, 17.0]
    assert (result.ci_low, result.ci_high) == bootstrap_ci(differences, resamples=10_000,
                                                           confidence=0.95, seed=0)
    for other_settings in ({"confidence": 0.9}, {"seed": 1}, {"resamples": 1000}):
        assert bootstrap_ci(differences, **other_settings) != (result.ci_low, result.ci_high)


def no_option_helps(task, method, seed, updates):
    exact = method == "mabcq" or (task, method) == ("halfcheetah-2x3", "mabcq-vdterm1")
    noise = 0.0 if exact else ((seed * 7 + len(method)) % 5 - 2) * 2.0
    return base(task, seed, updates) + noise + (60.0 if method == "bcq" else 0.0)


def regime_with(in_range=0.99, at_clip=0.1, early_at_clip=0.1, only=None, at_10000=None):
    """Diagnostics in the paper's regime but for what is given: EARLY_AT_CLIP before 10^4
    updates, and IN_RANGE / AT_CLIP from 10^4 on for the methods in ONLY (all when None),
    AT_10000 at 10^4 updates exactly when given.
    On HalfCheetah mabcq-vdterm1 is mabcq (the control)."""
    def diagnostics_of(task, method, seed, updates):
        same = "mabcq" if (task, method) == ("halfcheetah-2x3", "mabcq-vdterm1") else method
        chosen = only is None or same in only
        return {"lambda_tn_data_in_paper_range": in_range if chosen else 0.5,
                "lambda_vd_at_clip": (early_at_clip if updates < 10_000 else
                                      at_10000 if at_10000 is not None and updates == 10_000
                                      else at_clip if chosen else 0.9),
                "terminal_share": 0.0 if task == "halfcheetah-2x3" else 0.01}
    return diagnostics_of


@pytest.mark.parametrize("diagnostics, answer", [
    (regime_with(early_at_clip=0.9), "**Data or method**"),  # before 10^4 does not count
    (regime_with(at_10000=0.9), "no weighted variant is in the paper's regime"),  # 10^4 does
    (regime_with(at_clip=0.49), "**Data or method**"),
    (regime_with(at_clip=0.5), "no weighted variant is in the paper's regime"),
    (regime_with(in_range=0.95), "**Data or method**"),
    (regime_with(in_range=0.94), "no weighted variant is in the paper's regime"),
    (regime_with(only=("mabcq",)), "the weights are in the regime the paper describes for MABCQ ("),
    (regime_with(only=("mabcq-tnnorm",)), "describes for mabcq-tnnorm (λtn in range for at "
                                          "least 99.0%, λvd at a clip for at most 10.0%)"),
])
def test_the_regime_condition_reads_every_evaluation_from_10000_updates_on(
        tmp_path, diagnostics, answer):
    text = section(write(tmp_path, no_option_helps, diagnostics_of=diagnostics))
    assert answer in text, text[text.index("### The answer"):]


def test_the_regime_needs_all_three_tasks(tmp_path):
    out = write(tmp_path, no_option_helps, diagnostics_of=regime_with())
    out = without(out, "diagnostics.csv", lambda row: row["task"] == "halfcheetah-2x3"
                  and row["updates"] != "5000")  # the control keeps its terminal_share rows
    text = section(out)
    assert "No answer yet: the regime the method answer needs cannot be checked for MABCQ" in text


def test_the_data_or_method_answer_gives_the_numbers_it_rests_on(tmp_path):
    text = section(write(tmp_path, no_option_helps))
    answer = text[text.index("**Data or method**"):]
    assert "(minus BCQ, final return: MABCQ Hopper 3x1 -60.0 [-62.4, -57.6]" in answer
    assert "MABCQ (λtn in range for at least 99.0%, λvd at a clip for at most 10.0%)" in answer


@pytest.mark.parametrize("lifted, answer", [
    ({"hopper-3x1"}, "**No answer by the design's rules**: some option helps on Hopper 3x1 but"),
    ({"hopper-3x1", "walker2d-2x3"}, "**The estimator** (answer 1): mabcq-tnclip helps"),
])
def test_the_estimator_needs_both_terminal_tasks(tmp_path, lifted, answer):
    def returns_of(task, method, seed, updates):
        lift = 500.0 if method == "mabcq-tnclip" and task in lifted else 0.0
        return no_option_helps(task, method, seed, updates) + lift

    text = section(write(tmp_path, returns_of))
    assert answer in text, text[text.index("### The answer"):]


def test_the_estimator_must_not_be_below_bcq(tmp_path):
    def returns_of(task, method, seed, updates):  # helps vs MABCQ, yet 1000 below BCQ on Hopper
        lift = 500.0 if method == "mabcq-tnclip" and task != "halfcheetah-2x3" else 0.0
        bcq = 1500.0 if task == "hopper-3x1" else 0.0
        exact = method in ("mabcq", "mabcq-tnclip") or (
            (task, method) == ("halfcheetah-2x3", "mabcq-vdterm1"))
        return base(task, seed, updates) + lift + (bcq if method == "bcq" else 0.0) + (
            0.0 if exact else (-1) ** seed)

    text = section(write(tmp_path, returns_of))
    assert "**The estimator**" not in text
    assert "some option helps on Hopper 3x1 and Walker 2x3 but not as the estimator" in text


@pytest.mark.parametrize("ahead_on, method_answer", [(1, True), (2, False)])
def test_the_method_answer_needs_not_above_bcq_on_two_of_three_tasks(
        tmp_path, ahead_on, method_answer):
    ahead = TASKS[-ahead_on:]  # HalfCheetah first, then Walker

    def returns_of(task, method, seed, updates):
        bcq = -60.0 if task in ahead else 60.0
        return no_option_helps(task, method, seed, updates) - 60.0 * (method == "bcq") + (
            bcq if method == "bcq" else 0.0)

    text = section(write(tmp_path, returns_of))
    assert ("**Data or method**" in text) == method_answer, text[text.index("### The answer"):]
    assert ("MABCQ or an option is above BCQ on two or more tasks" in text) != method_answer


@pytest.mark.parametrize("seeds, answered", [(range(1), False), (range(2), True)])
def test_the_answer_comes_at_two_seeds(tmp_path, seeds, answered):
    text = section(write(tmp_path, no_option_helps, seeds=seeds))
    assert ("**Data or method**" in text) == answered
    assert ("No answer yet: cells with fewer than 2 seeds" in text) != answered


def test_comparisons_need_two_paired_seeds_not_two_seeds_per_cell(tmp_path):
    out = write(tmp_path, no_option_helps, seeds=range(4))
    out = without(out, "returns.csv", lambda row: row["task"] == "walker2d-2x3" and (
        (row["method"] == "mabcq-relguard" and row["seed"] in "01")
        or (row["method"] == "mabcq" and row["seed"] in "23")))
    text = section(out)
    assert ("No answer yet: comparisons with fewer than 2 paired seeds: Walker 2x3 "
            "mabcq-relguard − MABCQ (0)") in text


@pytest.mark.parametrize("broken, control", [
    (lambda task, method, seed, updates: {"weight_ess": 0.5}
     if (task, method) == ("halfcheetah-2x3", "mabcq-vdterm1") else {},
     "mabcq-vdterm1's diagnostics rows equal mabcq's exactly, every evaluation (5 paired "
     "seeds): **fails**"),
    (lambda task, method, seed, updates: {"terminal_share": 0.001}
     if (task, method, seed) == ("halfcheetah-2x3", "mabcq-combined", 3) else {},
     "HalfCheetah 2x3: terminal_share is 0 (90 evaluations): **fails**"),
    (lambda task, method, seed, updates: {"terminal_share": 0.0}
     if (task, method, updates) == ("walker2d-2x3", "mabcq", 15000) else {},
     "Walker 2x3: terminal_share > 0 (90 evaluations): **fails**"),
])
def test_each_failing_control_is_a_defect(tmp_path, broken, control):
    regime = regime_with()

    def diagnostics_of(task, method, seed, updates):
        return {**regime(task, method, seed, updates), **broken(task, method, seed, updates)}

    text = section(write(tmp_path, no_option_helps, diagnostics_of=diagnostics_of))
    assert control in text and "**A defect, not an answer**" in text


def test_an_unreadable_regime_is_named_as_such_beside_another_failed_rule(tmp_path):
    def above_bcq(task, method, seed, updates):  # every weighted method above BCQ everywhere
        return base(task, seed, updates) - (60.0 if method == "bcq" else 0.0)

    out = write(tmp_path, above_bcq, diagnostics_of=regime_with())
    out = without(out, "diagnostics.csv", lambda row: row["task"] == "halfcheetah-2x3"
                  and row["updates"] != "5000")
    text = section(out)
    answer = text[text.index("### The answer"):]
    assert "MABCQ or an option is above BCQ on two or more tasks" in answer
    assert "shows the paper's regime on every evaluation (it cannot be checked for MABCQ" in answer
    assert "is in the paper's regime" not in answer
