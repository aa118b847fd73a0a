"""Smoke: every method trains a few hundred updates on a smoke dataset built by the data
package and is evaluated for one episode in the simulator, through the real loop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_train_support import TASK, deterministic_rows, tiny_config, use_test_compilation_cache

from mabcq.cli import main
from mabcq.data.io import load_dataset_dir
from mabcq.training.loop import train

use_test_compilation_cache()

# Every BCQ-family method and baseline, and TD3+BC with both weights (its state normalizer goes
# through the real loop and into the exported policies); the learners' own tests cover the rest.
SMOKE_METHODS = ("mabcq", "mabcq-no-tn", "mabcq-no-vd", "bcq", "ddpg", "behavior", "matd3bc")


@pytest.fixture(scope="module")
def smoke_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("smoke-data")
    assert main(["data", "build", TASK, "--preset", "smoke", "--out", str(out),
                 "--no-progress"]) == 0
    return out


@pytest.mark.parametrize("method", SMOKE_METHODS)
def test_every_method_trains_and_evaluates(method: str, smoke_data: Path, tmp_path: Path) -> None:
    config = tiny_config(method, seeds=(0, 1), updates=200, pretrain_updates=100,
                         eval_every=200)
    summary = train(config, load_dataset_dir(smoke_data), tmp_path / method, progress=False)
    assert summary is not None and summary["updates"] == 200
    rows = deterministic_rows(tmp_path / method)
    assert [row["seed"] for row in rows] == ["0", "1"]
    has_weights = {"mabcq": ("vd", "tn"), "mabcq-no-tn": ("vd",), "mabcq-no-vd": ("tn",),
                   "matd3bc": ("vd", "tn")}
    for row in rows:
        for column in ("return_mean", "episode_length_mean", "value_difference", "critic_loss"):
            assert np.isfinite(float(row[column])), (method, column)
        assert 1 <= float(row["episode_length_mean"]) <= 20  # one short evaluation episode
        for weight in ("vd", "tn"):
            reported = row[f"lambda_{weight}_mean"] != ""
            assert reported == (weight in has_weights.get(method, ())), (method, weight)
    assert json.loads((tmp_path / method / "summary.json").read_text())["method"] == method


def test_train_cli_grid_of_methods_in_one_step(smoke_data: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """`mabcq train --method mabcq+bcq`: one run dir, rows and policies per method; a cell's
    policy files run together with `mabcq evaluate` like any others."""
    out = tmp_path / "grid"
    assert main(["train", TASK, "--method", "mabcq+bcq", "--data", str(smoke_data),
                 "--preset", "smoke", "--seeds", "0,1", "--updates", "100", "--eval-every",
                 "100", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "mabcq on hopper-3x1" in printed and "bcq on hopper-3x1" in printed
    rows = deterministic_rows(out)
    assert [(row["method"], row["seed"]) for row in rows] == [
        ("mabcq", "0"), ("mabcq", "1"), ("bcq", "0"), ("bcq", "1")]
    assert rows[0]["lambda_vd_mean"] != "" and rows[2]["lambda_vd_mean"] == ""
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["methods"]) == {"mabcq", "bcq"}
    files = [str(out / "policies" / "bcq" / "seed_1" / f"agent_{i}.msgpack") for i in range(3)]
    assert main(["evaluate", TASK, "--policies", *files, "--episodes", "1",
                 "--max-steps", "20"]) == 0
