"""`mabcq reproduce` (issue 8 item 2): the grid end to end at the smoke preset, killed and
resumed without redoing finished cells; the grouping of cells into compiled steps."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mabcq.cli import main
from mabcq.errors import UserError
from mabcq.grid.cells import check_recipes, collect, read_cells
from mabcq.grid.groups import Grid, dataset_size, group_overrides, groups
from mabcq.grid.record import merge_records

# The in-process group path (the default on a GPU); cells in workers: test_reproduce_cells.py
ARGS = ["reproduce", "--tasks", "hopper-3x1", "--methods", "mabcq,ddpg", "--seeds", "0,1",
        "--preset", "smoke", "--no-progress", "--unit", "group"]


def test_groups_put_bcq_family_in_one_step():
    missing = {(m, s) for m in ("mabcq", "bcq", "ddpg", "mabcq-eps0.16") for s in (0, 1)}
    missing.discard(("bcq", 0))
    found = groups("hopper-3x1", ("mabcq", "bcq", "ddpg", "mabcq-eps0.16"), missing)
    assert found == [(("mabcq", "mabcq-eps0.16"), (0, 1)), (("bcq",), (1,)), (("ddpg",), (0, 1))]
    assert Grid(("hopper-3x1", "swimmer-2x1"), ("mabcq",), (0,), "smoke", eps_sweep=True
                ).task_methods("swimmer-2x1") == ("mabcq",)
    # Each weighted family is its own compiled step; ddpg stays alone.
    methods = ("macql", "cql", "matd3bc", "td3bc", "mabcq", "ddpg")
    found = groups("hopper-3x1", methods, {(m, s) for m in methods for s in (0, 1)})
    assert found == [(("macql", "cql"), (0, 1)), (("matd3bc", "td3bc"), (0, 1)),
                     (("mabcq",), (0, 1)), (("ddpg",), (0, 1))]


def test_cql_updates_per_task_and_recipes_recorded(tmp_path):
    # Figure 6's x-axes at the paper preset, unless --updates; other families keep the preset's.
    assert group_overrides("walker2d-2x3", ("macql", "cql"), "paper", {}) == {"updates": 120_000}
    assert group_overrides("hopper-3x1", ("cql",), "paper", {"updates": 7}) == {"updates": 7}
    assert group_overrides("hopper-3x1", ("cql",), "smoke", {}) == {}
    assert group_overrides("hopper-3x1", ("mabcq",), "paper", {}) == {}
    # medium-replay = all of SAC's replay up to the intermediate policy the shipped set re-creates
    assert dataset_size("hopper-3x1", "paper", "medium-replay") == 180_000
    assert dataset_size("hopper-3x1", "quick", "medium-replay") == 50_000
    assert dataset_size("hopper-3x1", "paper", "paper") is None
    cell = tmp_path / "cells" / "hopper-3x1" / "cql" / "seed_0.json"
    cell.parent.mkdir(parents=True)
    cell.write_text(json.dumps({"task": "hopper-3x1", "method": "cql", "seed": 0,
                                "recipe": "medium-replay", "group": "g", "timing": {},
                                "rows": [{"update": "10", "return_mean": "1.5"}]}))
    check_recipes(tmp_path, "hopper-3x1", "medium-replay", {("cql", 0), ("macql", 0)})
    with pytest.raises(UserError, match="trained on medium-replay data, not paper"):
        check_recipes(tmp_path, "hopper-3x1", "paper", {("cql", 0)})
    collect(tmp_path)
    assert (tmp_path / "returns.csv").read_text().splitlines() == [
        "task,method,seed,updates,return,recipe", "hopper-3x1,cql,0,10,1.5,medium-replay"]
    # A second grid in the same OUT adds its tasks, methods and per-group counts.
    first = {"tasks": ["hopper-3x1"], "methods": ["mabcq", "bcq"], "seeds": [0],
             "recipes": {"hopper-3x1/bcq": "paper"}, "updates": 50_000, "batch_size": 1024,
             "eps_sweep": False, "wall_time_s": {"train_s": 5.0},
             "transitions_per_agent": 1_000_000}
    second = {"tasks": ["hopper-3x1", "walker2d-2x3"], "methods": ["macql", "cql"],
              "seeds": [0, 1], "recipes": {"hopper-3x1/cql": "medium-replay"},
              "updates": {"hopper-3x1/cql": 100_000}, "batch_size": {"cql": 256},
              "eps_sweep": False, "wall_time_s": {"train_s": 1.0},
              "transitions_per_agent": {"hopper-3x1/cql": 180_000}}
    merged = merge_records(first, second)
    assert merged["methods"] == ["mabcq", "bcq", "macql", "cql"] and merged["seeds"] == [0, 1]
    assert merged["updates"] == {"hopper-3x1/bcq": 50_000, "hopper-3x1/cql": 100_000}
    assert merged["batch_size"] == {"bcq": 1024, "cql": 256}
    assert merged["transitions_per_agent"] == {"hopper-3x1/bcq": 1_000_000,
                                               "hopper-3x1/cql": 180_000}
    assert merged["recipes"] == {"hopper-3x1/bcq": "paper", "hopper-3x1/cql": "medium-replay"}
    assert merged["wall_time_s"] == {"train_s": 6.0}


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
    assert returns[0] == "task,method,seed,updates,return,recipe"
    assert len(returns) == 1 + 4 * 2  # 4 cells x 2 evaluations (updates 100 and 200)
    assert any(line.startswith("hopper-3x1,ddpg,1,200,") and line.endswith(",paper")
               for line in returns)
    behavior = (killed / "behavior.csv").read_text()
    assert "hopper-3x1,part:early,," in behavior and "hopper-3x1,expert," in behavior
    timing = (killed / "timing.csv").read_text().splitlines()
    assert len(timing) == 3 and "mabcq_seeds0-1" in timing[2] + timing[1]


@pytest.mark.parametrize("flags, message", [
    (["--tasks", "hopper-9x9"], "unknown task"),
    (["--methods", "mabcq,sac"], "unknown method"),
    (["--methods", "mabcq,mabcq"], "repeated"),
    (["--seeds", "0,0"], "repeated entry"),
    (["--updates", "0"], "--updates: must be an integer >= 1"),
    (["--recipe", "medium"], "invalid choice: 'medium'"),
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
