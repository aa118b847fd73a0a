"""The training loop: run-dir files, resume equals an uninterrupted run, and agent i trained
alone from its own file equals its slice of the all-agents run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_train_support import (
    checkpoint_leaves,
    deterministic_rows,
    tiny_config,
    use_test_compilation_cache,
    write_random_dataset,
)

from mabcq.data.io import load_agent_dataset, load_dataset_dir
from mabcq.errors import UserError
from mabcq.training.config import call_size
from mabcq.training.loop import train, window_summary

use_test_compilation_cache()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "straight"
    summary = train(tiny_config(seeds=(0, 1)), load_dataset_dir(data_dir), run_dir,
                    progress=False)
    assert summary is not None
    return run_dir


def test_run_dir_holds_config_metrics_tensorboard_policies_summary(straight_run: Path) -> None:
    config = json.loads((straight_run / "config.json").read_text())
    assert config["method"] == "mabcq" and config["seeds"] == [0, 1]
    rows = deterministic_rows(straight_run)
    assert [(row["update"], row["seed"]) for row in rows] == [
        ("50", "0"), ("50", "1"), ("100", "0"), ("100", "1")]
    for row in rows:
        for column in ("return_mean", "value_difference", "lambda_vd_mean", "lambda_tn_max",
                       "critic_loss", "extrapolation_error_all_states", "vae2_loss",
                       "lambda_tn_data_in_paper_range"):
            assert np.isfinite(float(row[column])), column
        low, high = float(row["lambda_vd_min"]), float(row["lambda_vd_max"])
        assert 0.2 - 1e-6 <= low <= high <= 1.8 + 1e-6  # hopper's eps = 0.8
    for seed in (0, 1):
        assert list((straight_run / "tensorboard" / f"seed_{seed}").glob("events.out.tfevents.*"))
        for agent in range(3):
            assert (straight_run / "policies" / f"seed_{seed}" / f"agent_{agent}.msgpack").is_file()
    summary = json.loads((straight_run / "summary.json").read_text())
    assert summary["updates"] == 100 and len(summary["final_return_per_seed"]) == 2


def test_killed_and_resumed_run_equals_straight_run(tmp_path: Path, data_dir: Path,
                                                    straight_run: Path) -> None:
    datasets = load_dataset_dir(data_dir)
    run_dir = tmp_path / "resumed"
    # stop after pretraining (50) and the first 50 updates: the last checkpoint is at 100 in all
    assert train(tiny_config(seeds=(0, 1)), datasets, run_dir, stop_after=100,
                 progress=False) is None
    assert len(deterministic_rows(run_dir)) == 2
    with pytest.raises(UserError, match="--resume"):
        train(tiny_config(seeds=(0, 1)), datasets, run_dir, progress=False)
    train(tiny_config(seeds=(0, 1)), datasets, run_dir, resume=True, progress=False)
    for resumed, straight in zip(checkpoint_leaves(run_dir), checkpoint_leaves(straight_run),
                                 strict=True):
        np.testing.assert_array_equal(resumed, straight)
    assert deterministic_rows(run_dir) == deterministic_rows(straight_run)


def test_resume_inside_an_evaluation_window_restores_the_partial_metrics(
        tmp_path: Path, data_dir: Path) -> None:
    datasets = load_dataset_dir(data_dir)
    config = tiny_config(seeds=(0, 1), checkpoint_every=25)  # two checkpoints per window
    train(config, datasets, tmp_path / "straight", progress=False)
    # killed at 75 = pretraining (50) + 25 updates: half of the first window is in the checkpoint
    assert train(config, datasets, tmp_path / "resumed", stop_after=75, progress=False) is None
    assert deterministic_rows(tmp_path / "resumed") == []
    train(config, datasets, tmp_path / "resumed", resume=True, progress=False)
    assert deterministic_rows(tmp_path / "resumed") == deterministic_rows(tmp_path / "straight")
    for resumed, straight in zip(checkpoint_leaves(tmp_path / "resumed"),
                                 checkpoint_leaves(tmp_path / "straight"), strict=True):
        np.testing.assert_array_equal(resumed, straight)


def test_resume_with_other_settings_is_refused(tmp_path: Path, data_dir: Path) -> None:
    datasets = load_dataset_dir(data_dir)
    run_dir = tmp_path / "run"
    # seeds (0, 1): the same shapes as the other runs here, so the compiled step is reused
    train(tiny_config(seeds=(0, 1)), datasets, run_dir, stop_after=50, progress=False)
    with pytest.raises(UserError, match="batch_size|learner_overrides"):
        train(tiny_config(seeds=(0, 1), batch_size=16), datasets, run_dir, resume=True,
              progress=False)


def test_agent_trained_alone_equals_its_slice_of_the_joint_run(tmp_path: Path, data_dir: Path,
                                                               straight_run: Path) -> None:
    import jax

    from mabcq.learners.export import load_policy

    agent = 1
    own_file = load_agent_dataset(data_dir / "agent_1.h5")
    run_dir = tmp_path / "alone"
    train(tiny_config(seeds=(0, 1), agent=agent), [own_file], run_dir, progress=False)
    alone, joint = checkpoint_leaves(run_dir), checkpoint_leaves(straight_run)
    assert len(alone) == len(joint)
    # Different programs (vmap over 2 pairs vs lax.map over 6) after 150 Adam steps: equal to
    # float tolerance, not bitwise.
    for leaf_alone, leaf_joint in zip(alone, joint, strict=True):
        np.testing.assert_allclose(leaf_alone[:, 0], leaf_joint[:, agent], rtol=1e-4, atol=1e-5)
    rows = deterministic_rows(run_dir)
    assert all(row["return_mean"] == "" for row in rows)  # no simulator without the others
    policy = load_policy(run_dir / "policies" / "seed_0" / "agent_1.msgpack")
    actions = policy.act(np.zeros((4, 11), np.float32), jax.random.PRNGKey(0))
    assert np.asarray(actions).shape == (4, 1)


def test_call_size_divides_every_stop() -> None:
    config = tiny_config(updates=300, eval_every=150, pretrain_updates=40, updates_per_call=50)
    assert call_size(config) == 10
    assert call_size(tiny_config(updates=200, eval_every=100, pretrain_updates=100)) == 25


def test_window_summary_means_and_extremes() -> None:
    window = {"critic_loss": [np.array([[1.0, 3.0]]), np.array([[5.0, 7.0]])],
              "lambda_tn_min": [np.array([[0.5, 0.3]]), np.array([[0.4, 0.9]])],
              "lambda_tn_max": [np.array([[1.5, 1.3]]), np.array([[2.4, 0.9]])]}
    assert window_summary(window, 0) == {"critic_loss": 4.0, "lambda_tn_min": 0.3,
                                         "lambda_tn_max": 2.4}


def test_exported_policies_run_together_from_their_files(straight_run: Path, capsys) -> None:
    from mabcq.cli import main

    files = [str(straight_run / "policies" / "seed_1" / f"agent_{agent}.msgpack")
             for agent in range(3)]
    assert main(["evaluate", "hopper-3x1", "--policies", *files, "--episodes", "2",
                 "--max-steps", "10"]) == 0
    assert "3 independently loaded policies, 2 episodes" in capsys.readouterr().out
