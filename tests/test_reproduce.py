"""`mabcq reproduce` (issue 8 item 2): the grid end to end at the smoke preset, killed and
resumed without redoing finished cells; the grouping of cells into compiled steps."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mabcq.cli import main
from mabcq.reproduce import Grid, groups, read_cells

ARGS = ["reproduce", "--tasks", "hopper-3x1", "--methods", "mabcq,ddpg", "--seeds", "0,1",
        "--preset", "smoke", "--no-progress"]


def test_groups_put_bcq_family_in_one_step():
    missing = {(m, s) for m in ("mabcq", "bcq", "ddpg", "mabcq-eps0.16") for s in (0, 1)}
    missing.discard(("bcq", 0))
    found = groups("hopper-3x1", ("mabcq", "bcq", "ddpg", "mabcq-eps0.16"), missing)
    assert found == [(("mabcq", "mabcq-eps0.16"), (0, 1)), (("bcq",), (1,)), (("ddpg",), (0, 1))]
    assert Grid(("hopper-3x1", "swimmer-2x1"), ("mabcq",), (0,), "smoke", eps_sweep=True
                ).task_methods("swimmer-2x1") == ("mabcq",)


def _run(out: Path, data: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1] / "src"))
    return subprocess.Popen([sys.executable, "-m", "mabcq", *ARGS, "--out", str(out),
                             "--data-root", str(data)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_reproduce_killed_and_resumed_skips_finished_cells(tmp_path):
    data, killed, straight = tmp_path / "data", tmp_path / "killed", tmp_path / "straight"
    assert main([*ARGS, "--out", str(straight), "--data-root", str(data)]) == 0
    process = _run(killed, data)
    first_cell = killed / "cells" / "hopper-3x1" / "mabcq" / "seed_1.json"
    deadline = time.time() + 300
    while not first_cell.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert first_cell.exists(), process.communicate()[0]
    process.send_signal(signal.SIGKILL)  # while the ddpg group trains (or just before)
    process.wait()
    assert not (killed / "cells" / "hopper-3x1" / "ddpg" / "seed_1.json").exists()
    before = {path: path.stat().st_mtime_ns for path in (killed / "cells").rglob("seed_*.json")}
    rerun = _run(killed, data)
    output = rerun.communicate()[0]
    assert rerun.returncode == 0, output
    assert "hopper-3x1: 2 of 4 cells done; 1 group(s) to train" in output
    for path, mtime in before.items():  # finished cells are not trained or written again
        assert path.stat().st_mtime_ns == mtime
    for name in ("returns.csv", "diagnostics.csv"):
        assert (killed / name).read_text() == (straight / name).read_text()
    cells = read_cells(killed)
    assert {(cell["method"], cell["seed"]) for cell in cells} == {
        (m, s) for m in ("mabcq", "ddpg") for s in (0, 1)}
    returns = (killed / "returns.csv").read_text().splitlines()
    assert returns[0] == "task,method,seed,updates,return"
    assert len(returns) == 1 + 4 * 2  # 4 cells x 2 evaluations (updates 100 and 200)
    assert "hopper-3x1,ddpg,1,200," in returns[-3] or any(
        line.startswith("hopper-3x1,ddpg,1,200,") for line in returns)
    timing = (killed / "timing.csv").read_text().splitlines()
    assert len(timing) == 3 and "mabcq_seeds0-1" in timing[2] + timing[1]


@pytest.mark.parametrize("flags, message", [
    (["--tasks", "hopper-9x9"], "unknown task"),
    (["--methods", "mabcq,sac"], "unknown method"),
    (["--methods", "mabcq,mabcq"], "repeated"),
    (["--seeds", "0,0"], "repeated entry"),
    (["--updates", "0"], "--updates: must be an integer >= 1"),
])
def test_reproduce_bad_input(tmp_path, capsys, flags, message):
    code = main(["reproduce", "--preset", "smoke", "--out", str(tmp_path / "o"),
                 "--data-root", str(tmp_path / "d"), *flags])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_reproduce_refuses_a_results_dir_of_another_preset(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "grid.json").write_text('{"preset": "quick", "tasks": ["hopper-3x1"]}')
    assert main(["reproduce", "--preset", "smoke", "--tasks", "hopper-3x1", "--out", str(out),
                 "--data-root", str(tmp_path / "d")]) == 2
    assert "holds a quick grid" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
