"""`--backend ray` (issue 10 items 3-4): a smoke grid as Ray tasks on a local Ray instance of 2
CPUs, a worker killed mid-run and retried, a group that always fails reported while the others
finish, and decentralized training with each agent a Ray task of its own on its own file.

One local grid (the default backend) trained once is the reference every Ray run must equal.
"""

import hashlib
import json
import os
import signal
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import ray

from mabcq.cli import main
from mabcq.grid.cells import read_cells

GRID = ["reproduce", "--tasks", "hopper-3x1", "--methods", "mabcq,ddpg", "--seeds", "0",
        "--preset", "smoke", "--no-progress"]


@pytest.fixture(scope="module")
def ray_cluster():
    with warnings.catch_warnings():  # Ray fork-execs its processes: no JAX state is copied
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called")
        ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def local_grid(tmp_path_factory) -> Path:
    """The grid trained by the local backend in its own process, in groups as Ray trains them
    (and the smoke datasets it built)."""
    root = tmp_path_factory.mktemp("grid")
    assert main([*GRID, "--out", str(root / "local"), "--data-root", str(root / "data"),
                 "--unit", "group"]) == 0
    return root


def _kill_when_checkpointed(run_dir: Path, killed: list[int]) -> None:
    """SIGKILL the worker process training in run_dir once its first checkpoint is on disk."""
    deadline = time.time() + 300
    while time.time() < deadline:
        if (run_dir / "checkpoint.npz").is_file() and (run_dir / "worker.json").is_file():
            pid = json.loads((run_dir / "worker.json").read_text())["pid"]
            assert pid != os.getpid()  # never the driver (this process)
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.02)


def test_grid_on_ray_survives_a_killed_worker(ray_cluster, local_grid, capsys):
    out = local_grid / "ray"
    run_dir = out / "runs" / "hopper-3x1" / "mabcq_seeds0"
    killed: list[int] = []
    killer = threading.Thread(target=_kill_when_checkpointed, args=(run_dir, killed))
    killer.start()
    code = main([*GRID, "--out", str(out), "--data-root", str(local_grid / "data"),
                 "--backend", "ray"])
    killer.join()
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert len(killed) == 1
    assert "hopper-3x1 mabcq_seeds0: attempt 1 of 2 failed (" in captured.err
    worker = json.loads((run_dir / "worker.json").read_text())
    assert worker["attempt"] == 2 and worker["pid"] not in (killed[0], os.getpid())
    assert "hopper-3x1 mabcq_seeds0: 1 cell(s) done on" in captured.out
    # The retry resumed from the killed attempt's checkpoint; the grid equals the local one.
    for name in ("returns.csv", "diagnostics.csv", "behavior.csv"):
        assert (out / name).read_text() == (local_grid / "local" / name).read_text()
    assert len(read_cells(out)) == 2
    assert (run_dir / "policies" / "seed_0" / "agent_2.msgpack").is_file()


def test_a_group_that_always_fails_is_retried_once_and_reported(ray_cluster, local_grid,
                                                                   capsys):
    out = local_grid / "failing"
    # A damaged run dir (a started run whose config.json is not JSON) fails every attempt.
    damaged = out / "runs" / "hopper-3x1" / "ddpg_seeds1"
    (damaged / "policies").mkdir(parents=True)
    (damaged / "config.json").write_text("{")
    code = main([*GRID, "--methods", "ddpg", "--seeds", "0,1", "--unit", "cell", "--out",
                 str(out), "--data-root", str(local_grid / "data"), "--backend", "ray"])
    captured = capsys.readouterr()
    assert code == 1
    assert "hopper-3x1 ddpg_seeds1: attempt 1 of 2 failed (" in captured.err
    assert "config.json: not valid JSON" in captured.err
    assert "hopper-3x1 ddpg_seeds1: FAILED after 2 attempts" in captured.err
    assert "1 group(s) FAILED after 2 attempts each" in captured.out
    assert json.loads((damaged / "worker.json").read_text())["attempt"] == 2
    # The other cell finished, equal to the same cell of the local grid.
    assert [(cell["method"], cell["seed"]) for cell in read_cells(out)] == [("ddpg", 0)]
    local = [line for line in (local_grid / "local" / "returns.csv").read_text().splitlines()
             if ",ddpg," in line]
    assert (out / "returns.csv").read_text().splitlines()[1:] == local


def _params(path: Path) -> list[np.ndarray]:
    import jax

    from mabcq.learners.export import load_policy

    return jax.tree.leaves(load_policy(path).agent_state.params)


def test_decentralized_agents_as_separate_ray_tasks(ray_cluster, local_grid, capsys):
    out, data = local_grid / "decentralized", local_grid / "data" / "smoke" / "hopper-3x1" / "paper"
    code = main(["decentralized", "hopper-3x1", "--data", str(data), "--method", "mabcq",
                 "--seeds", "0", "--preset", "smoke", "--eval-episodes", "2", "--out", str(out),
                 "--no-progress", "--backend", "ray"])
    assert code == 0, capsys.readouterr().err
    workers = [json.loads((out / f"agent_{i}" / "worker.json").read_text()) for i in range(3)]
    assert len({worker["pid"] for worker in workers} | {os.getpid()}) == 4  # 3 own processes
    joint = local_grid / "local" / "runs" / "hopper-3x1" / "mabcq_seeds0" / "policies" / "seed_0"
    for agent, worker in enumerate(workers):
        own_file = data / f"agent_{agent}.h5"
        # agent i's task received agent i's file and nothing else
        assert worker["inputs"] == {own_file.name: hashlib.sha256(own_file.read_bytes())
                                    .hexdigest()}
        assert json.loads((out / f"agent_{agent}" / "config.json").read_text())["agent"] == agent
        policy = out / f"agent_{agent}" / "policies" / "seed_0" / f"agent_{agent}.msgpack"
        # equal to the same agent in the batched grid run, to test_train_loop's tolerance
        for alone, batched in zip(_params(policy), _params(joint / f"agent_{agent}.msgpack"),
                                  strict=True):
            np.testing.assert_allclose(alone, batched, rtol=1e-4, atol=1e-5)
    record = json.loads((out / "evaluation.json").read_text())
    assert [run["seed"] for run in record["runs"]] == [0]
    assert len(record["runs"][0]["episode_returns"]) == 2
    assert np.isfinite(record["runs"][0]["episode_returns"]).all()
    # A second call finds every agent trained and only evaluates them together again.
    assert main(["decentralized", "hopper-3x1", "--data", str(data), "--method", "mabcq",
                 "--seeds", "0", "--preset", "smoke", "--eval-episodes", "2", "--out", str(out),
                 "--no-progress", "--backend", "ray"]) == 0
    assert "3 of 3 agents trained; training 0" in capsys.readouterr().out
    assert json.loads((out / "evaluation.json").read_text()) == record


@pytest.mark.parametrize("flags, message", [
    (["--backend", "ray"], "needs Ray, which is not installed here: pip install 'mabcq[ray]'"),
    (["--address", "auto"], "--address needs --backend ray"),
    (["--backend", "ray", "--address", "head"], "must be auto or HOST:PORT"),
    (["--backend", "ray", "--gpus-per-task", "1.5"], "a fraction below 1 or a whole number"),
])
def test_ray_flags_refused_before_any_work(tmp_path, capsys, monkeypatch, flags, message):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    for command in (GRID, ["decentralized", "hopper-3x1", "--data", str(tmp_path)]):
        code = main([*command, *flags, "--out", str(tmp_path / "o")])
        assert code == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "o").exists()


def test_a_task_no_node_can_run_is_refused(ray_cluster, tmp_path, capsys):
    code = main([*GRID, "--out", str(tmp_path / "o"), "--data-root", str(tmp_path / "d"),
                 "--backend", "ray", "--gpus-per-task", "0.25"])
    assert code == 2
    assert ("--gpus-per-task 0.25: no node of the Ray cluster has that many GPUs (the largest "
            "has 0)") in capsys.readouterr().err
    assert not (tmp_path / "d").exists() and not (tmp_path / "o").exists()


def test_an_address_nothing_answers_on_is_refused_at_once(capsys, monkeypatch):
    import socket

    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # not the fixture's instance
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.perf_counter()
    code = main([*GRID, "--out", "unused", "--backend", "ray", "--address", f"127.0.0.1:{port}"])
    assert code == 2 and time.perf_counter() - started < 10
    assert f"--address 127.0.0.1:{port}: nothing answers there" in capsys.readouterr().err
    assert not Path("unused").exists()
