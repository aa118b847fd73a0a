"""`mabcq train` / `mabcq evaluate` / `mabcq demo`: help, and bad input -> exit 2 with one clear
line naming the problem (never a traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_train_support import write_random_dataset

from mabcq.cli import main


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_dataset(tmp_path_factory.mktemp("data"), transitions=60)


@pytest.mark.parametrize("command", ["train", "evaluate", "demo"])
def test_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: mabcq " + command in capsys.readouterr().out


def _error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last_line = err.strip().splitlines()[-1]  # earlier lines: third-party import warnings
    assert last_line.startswith("mabcq: error: ")
    return last_line


def test_missing_data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _error(["train", "hopper-3x1", "--data", str(tmp_path / "nope"), "--out",
                  str(tmp_path / "run")], capsys)
    assert "nope" in err and "mabcq data build" in err


def test_data_of_another_task(tmp_path: Path, data_dir: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    err = _error(["train", "halfcheetah-2x3", "--data", str(data_dir), "--out",
                  str(tmp_path / "run")], capsys)
    assert "halfcheetah-2x3" in err and str(data_dir) in err
    assert not (tmp_path / "run").exists()  # nothing written for refused input


def test_unknown_method_task_seeds_preset(tmp_path: Path, data_dir: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--data", str(data_dir), "--out", str(tmp_path / "run")]
    assert "sac" in _error(["train", "hopper-3x1", "--method", "sac", *base], capsys)
    assert "hopper-9x9" in _error(["train", "hopper-9x9", *base], capsys)
    assert "--seeds" in _error(["train", "hopper-3x1", "--seeds", "a,b", *base], capsys)
    assert "--updates" in _error(["train", "hopper-3x1", "--updates", "0", *base], capsys)


def test_agent_mode_needs_one_file_and_a_valid_index(tmp_path: Path, data_dir: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = ["--out", str(tmp_path / "run")]
    err = _error(["train", "hopper-3x1", "--agent", "0", "--data", str(data_dir), *out], capsys)
    assert "own dataset file" in err
    err = _error(["train", "hopper-3x1", "--agent", "3", "--data",
                  str(data_dir / "agent_0.h5"), *out], capsys)
    assert "agents 0..2" in err
    err = _error(["train", "hopper-3x1", "--agent", "1", "--data",
                  str(data_dir / "agent_0.h5"), *out], capsys)
    assert "agent 0's data" in err


def test_evaluate_needs_one_policy_file_per_agent(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.msgpack").write_bytes(b"")
    err = _error(["evaluate", "hopper-3x1", "--policies", str(tmp_path / "a.msgpack")], capsys)
    assert "3 agents" in err
    missing = [str(tmp_path / f"agent_{i}.msgpack") for i in range(3)]
    assert "agent_0.msgpack: no such file" in _error(
        ["evaluate", "hopper-3x1", "--policies", *missing], capsys)


def test_weights_report_counts_nan_and_summarizes_lambdas(tmp_path: Path) -> None:
    from mabcq.cli.train import weights_report
    from mabcq.training.logs import CsvLog

    log = CsvLog(tmp_path / "metrics.csv")
    row = {"update": 100, "seed": 0, "critic_loss": 1.0, "actor_loss": -2.0, "q_mean": 3.0,
           "return_mean": 10.0, "lambda_vd_mean": 1.1, "lambda_vd_min": 0.2,
           "lambda_vd_max": 1.8, "lambda_tn_mean": 0.9, "lambda_tn_min": 0.1,
           "lambda_tn_max": 4.0, "lambda_tn_data_in_paper_range": 0.75,
           "lambda_tn_data_p05": 0.3, "lambda_tn_data_median": 0.95, "lambda_tn_data_p95": 1.6}
    log.append([row])
    report = weights_report(tmp_path / "metrics.csv")
    assert "no NaN/inf" in report and "75.0% in [0.2, 1.4]" in report
    log.append([{**row, "update": 200, "critic_loss": float("nan")}])
    assert "1 NaN/inf values" in weights_report(tmp_path / "metrics.csv")
