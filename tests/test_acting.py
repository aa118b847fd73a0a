"""`mabcq acting`: a finished cell's final evaluation re-run with parts of the BCQ policy switched
off. The `policy` re-run must reproduce the recorded return bit for bit (or be flagged), the
variants must change n and Phi only, finished cells are not re-run, and the report shows it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mabcq.cli import main
from mabcq.errors import UserError
from mabcq.grid.acting import ACTING_COLUMNS, find_cells, read_acting, run_acting
from mabcq.training.acting import VARIANTS, variant_config

TASK = "hopper-3x1"


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MABCQ and BCQ trained as one group (policies/<method>/seed_0/) at the smoke preset."""
    root = tmp_path_factory.mktemp("acting")
    data = root / "data"
    assert main(["data", "build", TASK, "--preset", "smoke", "--behavior", "shipped",
                 "--jobs", "1", "--no-progress",
                 "--out", str(data / "smoke" / TASK / "paper")]) == 0
    out = root / "out"
    assert main(["reproduce", "--tasks", TASK, "--methods", "mabcq,bcq", "--seeds", "0",
                 "--preset", "smoke", "--updates", "50", "--eval-every", "50", "--unit",
                 "group", "--no-progress", "--out", str(out), "--data-root", str(data)]) == 0
    return out


@pytest.fixture(scope="module")
def acted(grid: Path, tmp_path_factory: pytest.TempPathFactory):
    """The grid after `mabcq acting`, plus a DDPG cell record that must be left alone."""
    bcq_cell = json.loads((grid / "cells" / TASK / "bcq" / "seed_0.json").read_text())
    ddpg = grid / "cells" / TASK / "ddpg" / "seed_0.json"
    ddpg.parent.mkdir(parents=True)
    ddpg.write_text(json.dumps({**bcq_cell, "method": "ddpg", "group": "ddpg_seeds0"}))
    code = main(["acting", str(grid), "--no-progress"])
    return grid, code, read_acting(grid / "acting.csv")


def test_variants_change_candidates_and_perturbation_only():
    from mabcq.learners.config import LearnerConfig

    config = LearnerConfig(n_candidates=7, perturbation_scale=0.3, gamma=0.9)
    settings = {name: (variant_config(config, name).n_candidates,
                       variant_config(config, name).perturbation_scale) for name in VARIANTS}
    assert settings == {"policy": (7, 0.3), "g1": (1, 0.0), "argmax": (7, 0.0),
                        "perturb": (1, 0.3)}
    assert variant_config(config, "g1").gamma == 0.9


def test_policy_rerun_reproduces_the_recorded_return_bitwise(acted):
    grid, code, rows = acted
    assert code == 0
    recorded = {}
    for line in (grid / "returns.csv").read_text().splitlines()[1:]:
        task, method, seed, updates, value = line.split(",")[:5]
        recorded[(method, int(seed), int(updates))] = value
    policy = [row for row in rows if row["variant"] == "policy"]
    assert sorted(row["method"] for row in policy) == ["bcq", "mabcq"]  # not ddpg
    for row in policy:
        assert row["reproduces"] == "yes"
        assert row["return"] == recorded[(row["method"], 0, int(row["updates"]))]
    assert {row["variant"] for row in rows} == set(VARIANTS) and len(rows) == 8
    assert list(rows[0]) == list(ACTING_COLUMNS)


def test_g1_alone_is_shared_and_the_choice_and_xi_matter(acted):
    _, _, rows = acted
    value = {(row["method"], row["variant"]): row["return"] for row in rows}
    # G1 is fitted before the critic and the weights: one sample of it acts the same for both.
    assert value[("mabcq", "g1")] == value[("bcq", "g1")]
    # The variants act differently (the re-run really switched something off).
    assert len({value[("bcq", name)] for name in VARIANTS}) > 1


def test_finished_cells_are_not_rerun_and_a_tampered_record_is_flagged(acted, capsys):
    grid, _, rows = acted
    before = (grid / "acting.csv").read_bytes()
    assert main(["acting", str(grid), "--no-progress"]) == 0
    assert "0 cell(s) re-run, 2 already there" in capsys.readouterr().out
    assert (grid / "acting.csv").read_bytes() == before
    # A copy whose BCQ record says another return: its re-run no longer matches.
    copy = grid.parent / "tampered"
    shutil.copytree(grid, copy)
    (copy / "acting.csv").unlink()
    path = copy / "cells" / TASK / "bcq" / "seed_0.json"
    cell = json.loads(path.read_text())
    cell["rows"][-1]["return_mean"] = "12345.0"
    path.write_text(json.dumps(cell))
    assert main(["acting", str(copy), "--methods", "bcq", "--no-progress"]) == 1
    assert "NOT REPRODUCED hopper-3x1 bcq seed 0" in capsys.readouterr().out
    assert {row["reproduces"] for row in read_acting(copy / "acting.csv")} == {"no", ""}


def test_cells_without_their_runs_are_named(acted, tmp_path):
    grid, _, _ = acted
    bare = tmp_path / "bare"
    shutil.copytree(grid / "cells", bare / "cells")
    cells, skipped = find_cells(bare)
    assert cells == [] and len(skipped) == 2
    assert all("no run dir" in line for line in skipped)
    summary = run_acting(bare)
    assert summary.done == [] and not (bare / "acting.csv").exists()
    # Cells copied from another grid find their policies in its runs/ (--runs-from).
    cells, skipped = find_cells(bare, runs_from=[grid])
    assert len(cells) == 2 and skipped == []
    assert all(cell.run_dir.is_relative_to(grid) for cell in cells)


def test_a_foreign_acting_file_is_one_clear_error(tmp_path):
    (tmp_path / "acting.csv").write_text("task,method\nx,y\n")
    with pytest.raises(UserError, match="acting.csv: columns"):
        read_acting(tmp_path / "acting.csv")


def test_report_shows_the_table_and_the_reproduction_check(acted, tmp_path):
    # (This smoke grid's timing.csv has no ms_per_update: one call per group, none timed.)
    grid, _, rows = acted
    out = tmp_path / "report"
    assert main(["report", str(grid), "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "## The BCQ policy taken apart" in text
    assert "All 2 `policy` re-runs reproduce their cell's recorded final return" in text
    value = {(row["method"], row["variant"]): float(row["return"]) for row in rows}
    section = text.split("## The BCQ policy taken apart")[1].split("\n## ")[0]
    line = next(line for line in section.splitlines() if line.startswith("| Hopper 3x1 | BCQ |"))
    cells = [cell.strip() for cell in line.strip("|").split("|")]
    assert cells[3] == f"{value[('bcq', 'policy')]:.1f} ± 0.0"
    assert cells[8] == f"{value[('bcq', 'policy')] - value[('bcq', 'argmax')]:.1f} ± 0.0"


def _policy_files(grid: Path, method: str) -> list[str]:
    base = grid / "runs" / TASK / "mabcq+bcq_seeds0" / "policies" / method / "seed_0"
    return [str(base / f"agent_{agent}.msgpack") for agent in range(3)]


def test_policy_acting_changes_n_and_phi_only_and_phi_zero_keeps_g1s_samples(grid):
    import jax

    from mabcq.learners import common
    from mabcq.learners.export import load_policy

    policy = load_policy(_policy_files(grid, "bcq")[0])
    plain = policy.acting(candidates=3, perturbation_scale=0.0)
    assert (plain.config.n_candidates, plain.config.perturbation_scale) == (3, 0.0)
    assert plain.config.gamma == policy.config.gamma and policy.config.n_candidates == 10
    kept = policy.acting()
    assert (kept.config.n_candidates, kept.config.perturbation_scale) == (10, 0.05)
    states = jax.random.normal(jax.random.PRNGKey(0), (16, policy.state_dim))
    key = jax.random.PRNGKey(1)
    params = plain.agent_state.params
    candidates, _ = plain.learner._candidates(params, states, key)
    sampled = common.sample_from_vae(common.make_vae(plain.config, plain.action_dim),
                                     params["vae1"], states, key, plain.config.latent_clip, 3)
    assert bool((candidates == sampled).all())  # Phi = 0: xi moves no action
    moved, _ = policy.acting(candidates=3).learner._candidates(params, states, key)
    assert not bool((moved == sampled).all())  # the policy's own Phi does
    for bad in ({"candidates": 0}, {"perturbation_scale": -0.1},
                {"perturbation_scale": float("nan")}):
        with pytest.raises(UserError):
            policy.acting(**bad)


def test_evaluate_with_candidates_and_perturbation(grid, tmp_path, capsys):
    import jax

    from mabcq.learners.export import Policy
    from mabcq.learners.registry import learner_config, make_learner

    files = _policy_files(grid, "bcq")
    assert main(["evaluate", TASK, "--policies", *files, "--episodes", "1",
                 "--candidates", "1", "--perturbation", "0"]) == 0
    assert "acting: 1 candidate(s) from G1, perturbation range 0" in capsys.readouterr().out
    config = learner_config("ddpg", hidden_sizes=(8, 8))
    ddpg = make_learner("ddpg", config)
    state = ddpg.init(jax.random.PRNGKey(0), 11, 1)
    path = tmp_path / "ddpg.msgpack"
    Policy.from_agent_state("ddpg", config, state).save(path)
    assert main(["evaluate", TASK, "--policies", *[str(path)] * 3, "--candidates", "2"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"mabcq: error: {path}: a ddpg policy draws no candidates")
    assert len(error.splitlines()) == 1
