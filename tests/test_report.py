"""`mabcq report`: tables from a small results fixture with known numbers, statistics on hand
cases, figures, missing and malformed input."""

from __future__ import annotations

import csv
import json
import math
import re
import struct
from pathlib import Path

import pytest

from mabcq.cli import main
from mabcq.errors import UserError
from mabcq.grid.cells import collect
from mabcq.report.build import build_report
from mabcq.report.tables import bootstrap_ci, iqm, stratified_bootstrap_iqm_ci

TASKS = ("hopper-3x1", "ant-4x2")
METHODS = ("mabcq", "bcq", "ddpg")
SEEDS = (0, 1, 2)
UPDATES = (100, 200, 300)
# Final return of each seed; evaluation k of 3 returns (k / 3) of it.
FINAL = {
    ("hopper-3x1", "mabcq"): (1200.0, 1350.0, 1500.0),
    ("hopper-3x1", "bcq"): (500.0, 600.0, 700.0),
    ("hopper-3x1", "ddpg"): (100.0, 150.0, 80.0),
    ("ant-4x2", "mabcq"): (2000.0, 2600.0, 2300.0),
    ("ant-4x2", "bcq"): (1900.0, 2500.0, 2200.0),
    ("ant-4x2", "ddpg"): (-50.0, 20.0, 10.0),
    ("hopper-3x1", "mabcq-eps0.16"): (900.0, 950.0, 1000.0),
    ("hopper-3x1", "mabcq-eps0.80"): (1100.0, 1200.0, 1300.0),
    ("swimmer-2x1", "mabcq"): (30.0, 35.0, 40.0),
    ("swimmer-2x1", "bcq"): (20.0, 25.0, 30.0),
}
EXPERT = {"hopper-3x1": 2000.0, "ant-4x2": 4000.0, "swimmer-2x1": 60.0}
HOPPER_EPS = 0.8  # paper Table 8
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def make_results(directory: Path, preset: str = "smoke") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    returns, diagnostics = [], []
    for (task, method), finals in FINAL.items():
        for seed, final in zip(SEEDS, finals, strict=True):
            for index, updates in enumerate(UPDATES, start=1):
                returns.append([task, method, seed, updates, final * index / len(UPDATES)])
                uses_tn = method.startswith("mabcq")
                diagnostics.append([
                    task, method, seed, updates, 5.0 * index + seed,
                    10.0 * seed + updates / 10 + (100 if method == "bcq" else 0),
                    1 + HOPPER_EPS if method == "mabcq" else "", 0.9 if uses_tn else "",
                    0.95 if uses_tn else "", 1.5, 100.0])
    write_csv(directory / "returns.csv", ["task", "method", "seed", "updates", "return"], returns)
    write_csv(directory / "diagnostics.csv",
              ["task", "method", "seed", "updates", "value_difference", "extrapolation_error",
               "lambda_vd_mean", "lambda_tn_mean", "lambda_tn_data_in_paper_range",
               "critic_loss", "q_mean"], diagnostics)
    write_csv(directory / "timing.csv",
              ["task", "group", "methods", "seeds", "agents", "device", "ms_per_update",
               "train_s", "eval_s", "data_s"],
              [["hopper-3x1", "main", "mabcq+bcq+ddpg", 3, 3, "cpu: test", 90.0, 12.5, 3.0,
                1.0]])
    behavior = []
    for task, expert in EXPERT.items():
        behavior += [[task, "expert", 1000, expert], [task, "intermediate", 500, expert / 2],
                     [task, "dataset", "", expert * 0.6]]
    write_csv(directory / "behavior.csv", ["task", "level", "step", "return"], behavior)
    (directory / "grid.json").write_text(json.dumps(
        {"preset": preset, "tasks": list(TASKS), "methods": list(METHODS), "seeds": list(SEEDS),
         "updates": 300, "eval_every": 100, "eval_episodes": 2, "batch_size": 64,
         "transitions_per_agent": 1000, "device": "cpu: test", "versions": {"jax": "0.x"}}))
    return directory


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    results = make_results(tmp_path_factory.mktemp("results"))
    out = tmp_path_factory.mktemp("report")
    assert main(["report", str(results), "--out", str(out)]) == 0
    return out, (out / "report.md").read_text()


def row_of(text: str, *cells: str) -> str:
    prefix = "| " + " | ".join(cells) + " |"
    matches = [line for line in text.splitlines() if line.startswith(prefix)]
    assert len(matches) == 1, f"expected one row starting {prefix!r}, got {matches}"
    return matches[0]


def section(text: str, heading: str) -> str:
    """The lines from `## heading...` to the next `## ` heading."""
    start = text.index("\n## " + heading)
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else len(text)]


def hand_mean_std(values: tuple[float, ...]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((value - mean) ** 2 for value in values) / len(values))


def test_table6_cell_is_the_mean_and_std_over_seeds_of_the_final_evaluation(report) -> None:
    text = section(report[1], "Table 6")
    mean, std = hand_mean_std(FINAL[("hopper-3x1", "mabcq")])  # 1350, 122.47
    row = row_of(text, "Hopper 3x1", "MABCQ")
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[2] == f"{mean:.1f} ± {std:.1f}"
    low, high = bootstrap_ci(FINAL[("hopper-3x1", "mabcq")])
    assert cells[3] == f"[{low:.1f}, {high:.1f}]"
    assert cells[4] == "3" and cells[5] == "300"
    assert cells[6] == "1383 ± 443"  # the paper's Table 6 beside ours
    assert "2000.0" in row_of(text, "Hopper 3x1", "data: expert policy")
    assert "1200.0" in row_of(text, "Hopper 3x1", "data: dataset episodes")


def test_mabcq_versus_bcq_verdict_is_computed(report) -> None:
    _, text = report
    hopper = next(line for line in text.splitlines() if line.startswith("- Hopper 3x1: MABCQ"))
    ant = next(line for line in text.splitlines() if line.startswith("- Ant 4x2: MABCQ"))
    assert "MABCQ − BCQ = 750.0" in hopper and ": yes" in hopper
    assert "MABCQ − BCQ = 100.0" in ant and ": no" in ant
    assert "Paper, same rule: 454 vs larger std 637: no" in ant  # 3027 - 2573 < BCQ's 637


def test_aggregate_is_the_iqm_of_expert_normalized_scores(report) -> None:
    text = section(report[1], "Table 6")
    scores = [value / EXPERT[task] for task in TASKS for value in FINAL[(task, "mabcq")]]
    middle = sorted(scores)[1:-1]  # 6 scores: int(0.25 * 6) = 1 cut each side
    expected = sum(middle) / len(middle)
    assert f"| {expected:.3f} |" in row_of(text, "MABCQ", f"{expected:.3f}")


def test_diagnostic_tables(report) -> None:
    _, text = report
    # BCQ's extrapolation error at updates 300: 10 * seed + 30 + 100 -> 130, 140, 150
    mean, std = hand_mean_std((130.0, 140.0, 150.0))
    assert f"{mean:.1f} ± {std:.1f}" in row_of(section(text, "Table 5"), "Ant 4x2", "BCQ")
    timing = row_of(text, "Hopper 3x1", "main")
    assert "| 90.00 | 10.00 | 3.333 |" in timing and "cpu: test" in timing
    assert "MABCQ 16 / BCQ 9" in timing
    assert "at 1+ε" in row_of(text, "Hopper 3x1", "final (300)")
    assert "outside" in row_of(text, "Ant 4x2", "final (300)")  # 1.8 > 1 + 0.64
    assert "Warning: a reduced run (preset `smoke`)" in text


def test_figures_are_valid_pngs(report) -> None:
    out, text = report
    for name in ("fig2_learning_curves.png", "fig3_value_difference.png", "fig4_swimmer.png",
                 "fig5_eps_sweep.png"):
        payload = (out / name).read_bytes()
        assert payload.startswith(PNG_SIGNATURE), name
        width, height = struct.unpack(">II", payload[16:24])
        assert width > 300 and height > 300 and len(payload) > 20_000, name
        assert f"]({name})" in text


def test_report_is_deterministic(tmp_path: Path, report) -> None:
    _, text = report
    results = make_results(tmp_path / "results")
    again = build_report(results, tmp_path / "again").report.read_text()
    assert again == text


def test_bootstrap_ci_contains_the_mean_and_is_seeded() -> None:
    values = [1.0, 4.0, 2.5, 8.0, 3.0]
    low, high = bootstrap_ci(values)
    assert low < sum(values) / len(values) < high
    assert bootstrap_ci(values) == (low, high)
    assert bootstrap_ci([7.0, 7.0, 7.0]) == (7.0, 7.0)
    narrow = bootstrap_ci([value / 10 for value in values])
    assert narrow[1] - narrow[0] < high - low
    # 25 distinct values: the resampled means are nearly continuous, so only a fixed seed
    # gives the same interval twice
    many = [math.sqrt(k) * 3.7 % 11 for k in range(1, 26)]
    assert bootstrap_ci(many) == bootstrap_ci(many) != bootstrap_ci(many, seed=1)


def test_iqm_on_hand_cases() -> None:
    assert iqm([1, 2, 3, 4, 5, 6, 7, 8]) == pytest.approx(4.5)
    assert iqm([-100, 1, 2, 3, 4, 5, 6, 1000]) == pytest.approx(3.5)  # outliers cut
    assert iqm([1, 10, 2, 3]) == pytest.approx(2.5)
    assert iqm([5.0]) == 5.0
    low, high = stratified_bootstrap_iqm_ci([[0.2, 0.4, 0.3], [0.9, 1.0, 0.8]])
    assert low <= iqm([0.2, 0.4, 0.3, 0.9, 1.0, 0.8]) <= high


def test_missing_files_are_named_in_the_report(tmp_path: Path) -> None:
    results = make_results(tmp_path / "results")
    for name in ("diagnostics.csv", "timing.csv", "behavior.csv", "grid.json"):
        (results / name).unlink()
    result = build_report(results, tmp_path / "out")
    text = result.report.read_text()
    for name in ("diagnostics.csv", "timing.csv", "behavior.csv", "grid.json"):
        assert f"`{name}` is missing" in text
    assert "mabcq reproduce" in text
    assert row_of(section(text, "Table 6"), "Hopper 3x1", "MABCQ")  # Table 6 is still there
    assert not (tmp_path / "out" / "fig3_value_difference.png").exists()

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["report", str(empty), "--out", str(tmp_path / "out_empty")]) == 0
    assert "`returns.csv` is missing" in (tmp_path / "out_empty" / "report.md").read_text()


def test_one_seed_and_header_only_files_are_reported_not_crashed(tmp_path: Path) -> None:
    results = make_results(tmp_path / "results")
    write_csv(results / "returns.csv", ["task", "method", "seed", "updates", "return"],
              [["hopper-3x1", "mabcq", 0, 100, 12.0], ["hopper-3x1", "bcq", 0, 100, 10.0],
               ["swimmer-2x1", "mabcq-eps0.16", 0, 100, 5.0]])
    write_csv(results / "diagnostics.csv", ["task", "method", "seed", "updates",
              "value_difference", "extrapolation_error", "lambda_vd_mean", "lambda_tn_mean",
              "lambda_tn_data_in_paper_range", "critic_loss", "q_mean"], [])
    text = build_report(results, tmp_path / "out").report.read_text()
    row = row_of(section(text, "Table 6"), "Hopper 3x1", "MABCQ")
    assert "| 12.0 ± 0.0 | — (1 seed) | 1 |" in row
    assert "cannot tell (fewer than 2 seeds" in text
    assert "`diagnostics.csv` has no rows for" in text
    assert "⚠ incomplete: grid.json plans 300" in row


def test_missing_column_is_a_user_error_naming_file_and_column(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = make_results(tmp_path / "results")
    write_csv(results / "returns.csv", ["task", "method", "seed", "updates"],
              [["hopper-3x1", "mabcq", 0, 100]])
    assert main(["report", str(results), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("mabcq: error: ") and "\n" not in error
    assert "returns.csv" in error and "missing column(s) return" in error


def test_non_numeric_return_is_a_user_error_naming_file_line_and_column(tmp_path: Path) -> None:
    results = make_results(tmp_path / "results")
    write_csv(results / "returns.csv", ["task", "method", "seed", "updates", "return"],
              [["hopper-3x1", "mabcq", 0, 100, 12.0], ["hopper-3x1", "mabcq", 0, 200, "abc"]])
    with pytest.raises(UserError, match=r"returns\.csv, line 3: column 'return' is not a number"):
        build_report(results, tmp_path / "out")


def test_zero_agents_in_timing_is_a_user_error(tmp_path: Path) -> None:
    results = make_results(tmp_path / "results")
    write_csv(results / "timing.csv", ["task", "group", "methods", "seeds", "agents", "device",
                                       "ms_per_update", "train_s", "eval_s", "data_s"],
              [["hopper-3x1", "main", "mabcq", "0+1", 0, "cpu", 5.0, "", "", ""]])
    with pytest.raises(UserError, match=r"timing\.csv, line 2: column 'agents' must be a pos"):
        build_report(results, tmp_path / "out")


def test_conflicting_duplicate_rows_are_a_user_error(tmp_path: Path) -> None:
    results = make_results(tmp_path / "results")
    write_csv(results / "behavior.csv", ["task", "level", "step", "return"],
              [["hopper-3x1", "expert", 1000, 10.0], ["hopper-3x1", "expert", 1000, 11.0]])
    with pytest.raises(UserError, match=r"behavior\.csv: two different rows"):
        build_report(results, tmp_path / "out")


def test_paper_preset_has_no_reduced_run_warning(tmp_path: Path) -> None:
    results = make_results(tmp_path / "results", preset="paper")
    (results / "diagnostics.csv").unlink()
    text = build_report(results, tmp_path / "out").report.read_text()
    assert "reduced run" not in text and "| preset | paper |" in text


def test_report_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--help"])
    assert exit_info.value.code == 0
    assert "--out" in capsys.readouterr().out


def test_lambda_vd_share_at_clip_is_read_when_present(tmp_path: Path) -> None:
    results = make_results(tmp_path / "results")
    lines = (results / "diagnostics.csv").read_text().splitlines()
    lines = [lines[0] + ",lambda_vd_at_clip"] + [line + ",0.25" for line in lines[1:]]
    (results / "diagnostics.csv").write_text("\n".join(lines) + "\n")
    assert main(["report", str(results), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "report.md").read_text()
    assert "| 0.250 |" in row_of(text, "Hopper 3x1", "final (300)")


def test_figure6_and_td3bc_sections_hold_their_families_only(tmp_path: Path) -> None:
    results = make_results(tmp_path / "results")
    finals = {("hopper-3x1", "macql", "medium-replay"): (900.0, 1000.0, 1100.0),
              ("hopper-3x1", "cql", "medium-replay"): (500.0, 550.0, 600.0),
              ("ant-4x2", "matd3bc", "paper"): (2100.0, 2200.0, 2300.0),
              ("ant-4x2", "td3bc", "paper"): (2000.0, 2250.0, 2400.0)}
    rows = [[task, method, seed, updates, final * index / len(UPDATES), "paper"]
            for (task, method), values in FINAL.items()
            for seed, final in zip(SEEDS, values, strict=True)
            for index, updates in enumerate(UPDATES, start=1)]
    rows += [[task, method, seed, 300, final, recipe]
             for (task, method, recipe), values in finals.items()
             for seed, final in zip(SEEDS, values, strict=True)]
    write_csv(results / "returns.csv", ["task", "method", "seed", "updates", "return", "recipe"],
              rows)
    with open(results / "behavior.csv", "a", newline="") as handle:
        csv.writer(handle).writerow(["hopper-3x1", "dataset-medium-replay", "", 700.0])
    result = build_report(results, tmp_path / "out")
    text = result.report.read_text()
    figure6 = section(text, "Figure 6")
    mean, std = hand_mean_std(finals[("hopper-3x1", "macql", "medium-replay")])
    assert f"| medium-replay | {mean:.1f} ± {std:.1f} |" in row_of(figure6, "Hopper 3x1", "MACQL")
    assert "700.0" in row_of(figure6, "Hopper 3x1", "data: dataset episodes")
    assert "MACQL − CQL = 450.0, larger std 81.6: yes" in figure6
    assert "Warning" not in figure6  # all medium-replay, as the paper's
    td3bc = section(text, "TD3+BC vs MA-TD3+BC")
    assert "MA-TD3+BC − TD3+BC = -16.7" in td3bc and ": no" in td3bc
    assert "| paper |" in row_of(td3bc, "Ant 4x2", "TD3+BC")
    table6 = section(text, "Table 6")
    assert "CQL" not in table6 and "TD3+BC" not in table6 and "medium-replay" not in table6
    for name in ("fig6_cql.png", "fig_td3bc.png"):
        assert (tmp_path / "out" / name).read_bytes().startswith(PNG_SIGNATURE)
    # Without those rows each section says what is missing and which command writes them.
    text = build_report(make_results(tmp_path / "plain"), tmp_path / "out").report.read_text()
    assert "--methods macql,cql --recipe medium-replay" in section(text, "Figure 6")
    assert not (tmp_path / "out" / "fig6_cql.png").exists()


def test_grid_completeness_names_missing_cells_and_seed_counts(tmp_path: Path, report) -> None:
    text = report[1]
    assert "All 18 planned cells are finished." in section(text, "Grid completeness")
    assert row_of(text, "Hopper 3x1", "MABCQ", "3", "0, 1, 2", "—", "cpu: test")
    # grid.json's device is the last call's (it may have trained nothing): said so
    assert "| device of the last call (each cell's: Grid completeness) | cpu: test |" in text
    results = make_results(tmp_path / "results")
    grid = json.loads((results / "grid.json").read_text())
    grid.update(seeds=[0, 1, 2, 3, 4], eps_sweep=True)
    (results / "grid.json").write_text(json.dumps(grid))
    out = build_report(results, tmp_path / "out")
    text = out.report.read_text()
    completeness = section(text, "Grid completeness")
    # 2 tasks x (3 methods + 6 eps) x 5 seeds planned; 18 + 2 x 3 (hopper eps 0.16, 0.80) done
    assert "Incomplete grid: 24 of 90 planned cells finished, 66 missing." in completeness
    assert row_of(completeness, "Ant 4x2", "DDPG", "3", "0, 1, 2", "3, 4", "—")
    assert row_of(completeness, "Ant 4x2", "MABCQ ε=0.16", "0", "—", "0, 1, 2, 3, 4")
    assert "66 of 90 planned cells missing (see Grid completeness)" in "\n".join(out.missing)


def test_weight_diagnostics_table_shows_every_weighted_method(tmp_path: Path) -> None:
    """The weights' diagnostics (issue 19) of mabcq and an option method at the final
    evaluation; results without the columns get one line saying so."""
    results = make_results(tmp_path / "results")
    assert main(["report", str(results), "--out", str(tmp_path / "old")]) == 0
    assert "weights' diagnostics: not reported" in (tmp_path / "old" / "report.md").read_text()
    lines = (results / "diagnostics.csv").read_text().splitlines()
    header = lines[0] + ",lambda_vd_terminal_mean,lambda_tn_p95,weight_ess"
    body = [line + (",1.000,8.5,0.375" if ",mabcq," in line else ",,,") for line in lines[1:]]
    body += [line.replace(",mabcq,", ",mabcq-vdterm1,") for line in body if ",mabcq," in line]
    (results / "diagnostics.csv").write_text("\n".join([header, *body]) + "\n")
    assert main(["report", str(results), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "report.md").read_text()
    section = text[text.index("## The weights' diagnostics"):]
    for method in ("MABCQ", "mabcq-vdterm1"):
        row = next(line for line in section.splitlines() if f"| {method} |" in line)
        assert "| 1.000 |" in row and "| 8.50 |" in row and "| 0.375 |" in row
    assert "| BCQ |" not in section


@pytest.mark.parametrize("content, problem", [("[1, 2]", "expected a grid record, got JSON list"),
                                              ('{"preset": ', "not a readable grid record")])
def test_a_bad_grid_json_is_one_line_naming_it(tmp_path: Path, content: str, problem: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    results = make_results(tmp_path / "results")
    (results / "grid.json").write_text(content)
    assert main(["report", str(results), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("mabcq: error: ") and "\n" not in error
    assert str(results / "grid.json") in error and problem in error
    assert not (tmp_path / "out").exists()


def test_a_truncated_cell_file_is_named_when_the_csvs_are_rebuilt(tmp_path: Path) -> None:
    cell = tmp_path / "cells" / "hopper-3x1" / "mabcq" / "seed_0.json"
    cell.parent.mkdir(parents=True)
    cell.write_text('{"task": "hopper-3x1", "rows": [')
    with pytest.raises(UserError, match=re.escape(f"{cell}: not a readable cell record")):
        collect(tmp_path)
    assert not (tmp_path / "returns.csv").exists()


def test_estimates_are_compared_with_what_the_cells_took(tmp_path: Path) -> None:
    results = make_results(tmp_path / "results")
    header = ["task", "group", "methods", "seeds", "agents", "device", "ms_per_update",
              "train_s", "eval_s", "data_s", "workers", "estimate_s", "actual_s"]
    cells = [("mabcq", 100.0, 150.0), ("bcq", 100.0, 50.0), ("mabcq-no-tn", 200.0, 220.0),
             ("ddpg", 10.0, 5.0), ("behavior", "", 30.0)]  # no estimate: not compared
    write_csv(results / "timing.csv", header,
              [["hopper-3x1", f"{method}_seeds0", method, 1, 3, "cpu", 5.0, 1.0, 1.0, 0.0, 1,
                estimate, actual] for method, estimate, actual in cells])
    text = build_report(results, tmp_path / "out").report.read_text()
    assert "| bcq | 3 | 1.10 | 0.50-1.50 |" in text  # 1.5, 0.5, 1.1: the median of the family
    estimates = text[text.index("The command's estimates"):]
    estimates = estimates[:estimates.index("\n\n", estimates.index("| family |"))]
    assert "| ddpg | 1 | 0.50 | 0.50-0.50 |" in estimates and "| behavior |" not in estimates


def test_same_data_counts_the_dataset_hashes_of_each_tasks_cells(tmp_path: Path) -> None:
    results = make_results(tmp_path / "results")

    def cell(task: str, method: str, seed: int, digest: str | None, device: str) -> None:
        path = results / "cells" / task / method / f"seed_{seed}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        provenance = {"device": device, **({"data_sha256": digest} if digest else {})}
        path.write_text(json.dumps({"task": task, "method": method, "seed": seed,
                                    "recipe": "paper", "provenance": provenance}))

    no_cells = build_report(results, tmp_path / "none").report.read_text()
    assert "### Same data" not in no_cells
    cell("hopper-3x1", "mabcq", 0, None, "cpu: amd")  # made before cells recorded a hash
    cell("hopper-3x1", "mabcq", 1, "a" * 64, "cpu: intel")
    cell("hopper-3x1", "bcq", 1, "a" * 64, "cpu: amd")
    cell("ant-4x2", "mabcq", 0, "b" * 64, "cpu: amd")
    cell("ant-4x2", "bcq", 0, "c" * 64, "gpu")
    cell("ant-4x2", "bcq", 1, "c" * 64, "gpu")
    text = build_report(results, tmp_path / "out").report.read_text()
    same = text[text.index("### Same data"):]
    assert row_of(same, "Hopper 3x1", "paper", "2 of 3", "one dataset",
                  "`aaaaaaaaaaaa`: 2 (cpu: amd, cpu: intel)")
    assert row_of(same, "Ant 4x2", "paper", "3 of 3", "**2 datasets**",
                  "`cccccccccccc`: 2 (gpu); `bbbbbbbbbbbb`: 1 (cpu: amd)")
    assert "Cells of one task trained on different data" in same
    (results / "cells" / "ant-4x2" / "bcq" / "seed_1.json").write_text("{")
    with pytest.raises(UserError, match="seed_1.json: not a readable cell record"):
        build_report(results, tmp_path / "bad")


def test_devices_of_a_copied_cell_come_from_its_file() -> None:
    """A cell copied under an ε name (grid.share.alias_cells) keeps the timing row of the run
    that trained it (methods "mabcq"): its device is read from its cell file."""
    from types import SimpleNamespace

    from mabcq.report.completeness import devices

    timing = [{"task": "hopper-3x1", "methods": "mabcq", "device": "cpu: A"},
              {"task": "hopper-3x1", "methods": "mabcq-eps0.16", "device": "cpu: B"}]
    data = [{"task": "hopper-3x1", "method": "mabcq-eps0.80", "device": "cpu: A"},
            {"task": "hopper-3x1", "method": "mabcq-eps0.16", "device": "cpu: B"}]
    ctx = SimpleNamespace(results=SimpleNamespace(timing=timing, data=data))
    assert devices(ctx, "hopper-3x1", "mabcq-eps0.80") == "cpu: A"
    assert devices(ctx, "hopper-3x1", "mabcq-eps0.16") == "cpu: B"
    assert devices(ctx, "walker2d-2x3", "mabcq") == "—"
