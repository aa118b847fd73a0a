"""Nothing is left behind: a temp file of a write killed by SIGKILL is removed by the next run
writing in its folder (never a live writer's), a run folder that never got going does not block
the next command, and MuJoCo writes no MUJOCO_LOG.TXT into the current directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_train_support import write_random_dataset

from mabcq.errors import UserError
from mabcq.training.logs import open_run_dir
from mabcq.util import atomic

SRC = Path(__file__).resolve().parents[1] / "src"


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def temp_name(target: str, pid: int, host: str | None = None) -> str:
    return f".{target}.tmp-{pid}-{host or atomic._host()}-abcd_123.tmp"


def test_a_write_removes_dead_writers_temps_and_nothing_else(tmp_path: Path) -> None:
    dead = temp_name("checkpoint.npz", dead_pid())
    live = temp_name("agent_0.h5", os.getpid())  # a write in progress in a live process
    other_host = temp_name("agent_1.h5", dead_pid(), host="another-machine")
    others = [".notes.tmp", "checkpoint.npz.tmp", ".agent_0.h5.abcd1234.tmp", "data.h5"]
    for name in [dead, live, other_host, *others]:
        (tmp_path / name).write_bytes(b"partial")
    atomic.write_json(tmp_path / "config.json", {"a": 1})
    left = sorted(path.name for path in tmp_path.iterdir())
    assert left == sorted([live, other_host, *others, "config.json"])
    assert json.loads((tmp_path / "config.json").read_text()) == {"a": 1}


def test_temp_names_identify_their_writer(tmp_path: Path) -> None:
    seen = []
    with atomic.atomic_path(tmp_path / "file.bin") as temp:
        seen.append(temp.name)
        temp.write_bytes(b"x")
        assert atomic.stale_temp_files(tmp_path) == []  # its writer (this process) is alive
    assert seen[0].startswith(f".file.bin.tmp-{os.getpid()}-")
    assert [path.name for path in tmp_path.iterdir()] == ["file.bin"]


def test_a_run_folder_that_never_got_going_does_not_block_the_next_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"batch_size": 0}))
    (run_dir / "metrics.csv").write_text("update,seed\n")  # header only: no evaluation yet
    assert open_run_dir(run_dir, {"batch_size": 64}, resume=False) is False
    assert json.loads((run_dir / "config.json").read_text()) == {"batch_size": 64}
    (run_dir / "metrics.csv").write_text("update,seed\n100,0\n")  # a row: the run is kept
    with pytest.raises(UserError, match="already holds a run"):
        open_run_dir(run_dir, {"batch_size": 32}, resume=False)
    (run_dir / "metrics.csv").write_text("update,seed\n")
    (run_dir / "checkpoint.npz").write_bytes(b"")  # a checkpoint: the run is kept
    with pytest.raises(UserError, match="different settings"):
        open_run_dir(run_dir, {"batch_size": 32}, resume=True)
    assert open_run_dir(run_dir, {"batch_size": 64}, resume=True) is True


@pytest.mark.filterwarnings("ignore:.*The reward is a NaN value")
def test_mujoco_warnings_never_write_a_log_into_the_current_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mabcq.envs.tasks import get_task, make_env

    monkeypatch.chdir(tmp_path)
    env = make_env(get_task("hopper-3x1"), seed=0)
    with pytest.warns(RuntimeWarning, match="MuJoCo: Nan, Inf or huge value"):
        for _ in range(3):
            env.step(np.full(3, np.nan))
    env.close()
    assert list(tmp_path.iterdir()) == []


# Runs `mabcq ...` and SIGKILLs itself at its second checkpoint write, after the temp file is
# complete and just before os.replace: a kill inside an atomic write.
KILL_AT_SECOND_CHECKPOINT = """
import os, signal, sys
real_replace, writes = os.replace, []
def replace(source, target, *args, **kwargs):
    if os.path.basename(target) == "checkpoint.npz":
        writes.append(target)
        if len(writes) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(source, target, *args, **kwargs)
os.replace = replace
from mabcq.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_no_temp_file_survives_a_killed_and_resumed_run(tmp_path: Path) -> None:
    data_dir = write_random_dataset(tmp_path / "data", transitions=60)
    run_dir = tmp_path / "run"
    argv = ["train", "hopper-3x1", "--method", "behavior", "--data", str(data_dir), "--out",
            str(run_dir), "--preset", "smoke", "--updates", "4", "--pretrain-updates", "2",
            "--eval-every", "2", "--updates-per-call", "2", "--eval-episodes", "1",
            "--eval-max-steps", "5", "--batch-size", "8", "--hidden-sizes", "8,8",
            "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(SRC),
           "MABCQ_JAX_CACHE": os.environ.get("MABCQ_JAX_CACHE",
                                             str(Path("/tmp") / "mabcq-test-jax-cache"))}
    killed = subprocess.run([sys.executable, "-c", KILL_AT_SECOND_CHECKPOINT, *argv],
                            env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    left = list(run_dir.glob(".checkpoint.npz.tmp-*.tmp"))
    assert len(left) == 1  # the kill left its temp file behind
    live = run_dir / temp_name("metrics.csv", os.getpid())  # a live writer's: never removed
    live.write_bytes(b"in progress")

    resumed = subprocess.run([sys.executable, "-m", "mabcq", *argv, "--resume"], env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert (run_dir / "summary.json").is_file()
    assert sorted(run_dir.rglob("*.tmp")) == [live]
    live.unlink()
