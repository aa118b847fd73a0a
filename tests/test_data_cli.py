"""`mabcq behavior train`, `mabcq data build` and `mabcq data info` end to end, and their errors."""

from pathlib import Path

import pytest

from mabcq.cli import main


@pytest.fixture(autouse=True)
def no_persistent_jax_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MABCQ_JAX_CACHE", "")


@pytest.mark.parametrize("argv", [["behavior", "train", "--help"], ["data", "build", "--help"],
                                  ["data", "info", "--help"], ["behavior", "--help"]])
def test_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0 and "usage" in capsys.readouterr().out


def test_train_build_and_info(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    behavior = tmp_path / "behavior"
    assert main(["behavior", "train", "swimmer-2x1", "--out", str(behavior), "--total-steps",
                 "320", "--num-envs", "2", "--eval-every", "160", "--no-progress"]) == 0
    assert "expert: step" in capsys.readouterr().out
    out = tmp_path / "data"
    assert main(["data", "build", "swimmer-2x1", "--behavior", str(behavior), "--out", str(out),
                 "--size", "120", "--num-envs", "2", "--no-progress"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["agent_0.h5", "agent_1.h5"]
    capsys.readouterr()
    assert main(["data", "info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "part early" in text and "agent 1/2" in text and "actions per dim" in text
    assert main(["data", "build", "swimmer-2x1", "--behavior", str(behavior), "--out",
                 str(out), "--intermediate-step", "999", "--no-progress"]) == 2
    assert "no snapshot at step 999" in capsys.readouterr().err


def test_user_errors_exit_2_with_one_line(tmp_path: Path, capsys) -> None:
    assert main(["data", "build", "cheetah", "--out", str(tmp_path)]) == 2
    assert "unknown task 'cheetah'" in capsys.readouterr().err
    assert main(["data", "info", str(tmp_path / "missing.h5")]) == 2
    bad = tmp_path / "agent_0.h5"
    bad.write_bytes(b"not hdf5 at all")
    assert main(["data", "info", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "Traceback" not in err
    assert main(["behavior", "train", "hopper-3x1", "--out", str(tmp_path / "b"),
                 "--total-steps", "0"]) == 2
