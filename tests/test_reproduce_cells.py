"""A CPU grid as (task, method, seed) cells (issue 18): the order and estimates of the plan,
`--stop-after` stopping with exit code 3 and a rerun finishing without redoing a cell,
`--workers 2` giving the same cells bitwise as one worker, and each cell's provenance."""

import contextlib
import csv
import datetime as dt
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mabcq.cli import main
from mabcq.data.io import load_dataset_dir
from mabcq.grid import pool as reproduce_pool
from mabcq.grid.cells import cell_numbers, differing_cells, read_cells
from mabcq.grid.plan import (
    Cell,
    CellCost,
    Estimate,
    estimate_build,
    estimate_cell,
    fits,
    next_occurrence,
    order_cells,
    parse_duration,
)
from mabcq.util.provenance import combined_sha256

GRID = ["reproduce", "--tasks", "hopper-3x1", "--methods", "ddpg", "--seeds", "0,1",
        "--preset", "smoke", "--updates", "50", "--eval-every", "50", "--no-progress"]


def test_order_seed_zero_first_then_tasks_with_data_together():
    methods = {"a": ("m1", "m2"), "b": ("m1", "m2")}
    cells = [Cell(task, method, seed) for task in ("a", "b") for method in ("m1", "m2")
             for seed in (0, 1, 2)]
    order = order_cells(cells, ("a", "b"), methods, first=0, ready={"b"})
    labels = [(cell.task, cell.method, cell.seed) for cell in order]
    assert labels[:4] == [("b", "m1", 0), ("b", "m2", 0), ("a", "m1", 0), ("a", "m2", 0)]
    assert labels[4:8] == [("b", "m1", 1), ("b", "m2", 1), ("b", "m1", 2), ("b", "m2", 2)]
    assert labels[8:] == [("a", "m1", 1), ("a", "m2", 1), ("a", "m1", 2), ("a", "m2", 2)]


def test_estimates_from_measured_cells_else_defaults():
    cell, cost = Cell("t", "mabcq", 3), CellCost("bcq", 2, 1000, 2, 200)
    default = estimate_cell(cell, cost, [], "paper", 1, cpu=True)
    assert default.source.startswith("default") and default.seconds == pytest.approx(
        40.0 + 1000 * 2 * 10.8 / 1000 + 2 * 3.0)
    assert estimate_cell(cell, cost, [], "paper", 1, cpu=False).seconds is None
    row = {"task": "t", "methods": "mabcq", "family": "bcq", "workers": 1, "updates": 500,
           "agents": 2, "evaluations": 1, "train_s": 50.0, "eval_s": 4.0, "actual_s": 64.0}
    measured = estimate_cell(cell, cost, [row], "paper", 1, cpu=True)
    assert measured.seconds == pytest.approx(10.0 + 1000 * 0.1 + 2 * 4.0)
    assert measured.source.startswith("measured: 1 finished cell(s) of t mabcq")
    other_task = estimate_cell(Cell("u", "bcq", 0), CellCost("bcq", 4, 1000, 2), [row],
                               "paper", 1, cpu=True)
    assert other_task.seconds == pytest.approx(10.0 + 1000 * 4 * 0.05 + 2 * 4.0)
    half_done = estimate_cell(cell, cost, [row], "paper", 1, cpu=True, done_fraction=0.5)
    assert half_done.seconds == pytest.approx(10.0 + 0.5 * (100 + 8.0))
    in_process = {**row, "workers": 0}  # a group trained in the driver: not a worker's cost
    assert estimate_cell(cell, cost, [in_process], "paper", 1, cpu=True).source.startswith(
        "default")
    assert estimate_build("t", 3, 10**6, 2, []) == pytest.approx(3 * 10**6 / 3600)
    assert estimate_build("t", 3, 10**6, 2, [{"task": "t", "data_s": 840.0}]) == 840.0


def test_estimates_prefer_cells_measured_on_this_machine_kind():
    cell, cost = Cell("t", "mabcq", 3), CellCost("bcq", 2, 1000, 2, 200)
    base = {"task": "t", "methods": "mabcq", "family": "bcq", "workers": 1, "updates": 500,
            "agents": 2, "evaluations": 1, "eval_s": 4.0}
    amd = {**base, "device": "cpu: AMD EPYC (2 cores), one thread", "train_s": 50.0,
           "actual_s": 64.0}
    intel = {**base, "device": "cpu: Intel Xeon (2 cores), one thread", "train_s": 25.0,
             "actual_s": 39.0}
    here = estimate_cell(cell, cost, [amd, intel], "paper", 1, cpu=True,
                         device="cpu: Intel Xeon (2 cores)")
    assert here.seconds == pytest.approx(10.0 + 1000 * 0.05 + 2 * 4.0)
    assert here.source == "measured: 1 finished cell(s) of t mabcq"
    # this kind's family (another task, per agent) before another kind's own cells
    kin = {**intel, "task": "u", "methods": "bcq", "agents": 4}
    family = estimate_cell(cell, cost, [amd, kin], "paper", 1, cpu=True,
                           device="cpu: Intel Xeon (2 cores)")
    assert family.seconds == pytest.approx(10.0 + 1000 * 2 * 0.0125 + 2 * 4.0)
    assert family.source == "measured: 1 finished bcq-family cell(s), per agent"
    elsewhere = estimate_cell(cell, cost, [amd], "paper", 1, cpu=True,
                              device="cpu: Intel Xeon (2 cores)")
    assert elsewhere.seconds == pytest.approx(10.0 + 1000 * 0.1 + 2 * 4.0)
    assert elsewhere.source.endswith("of t mabcq on another machine kind")
    # this kind's cells win over the worker count, and a longer name is another kind
    two_workers = {**intel, "workers": 2}
    longer = {**amd, "device": "cpu: Intel Xeon (2 cores) v2, one thread"}
    kind_first = estimate_cell(cell, cost, [amd, longer, two_workers], "paper", 1, cpu=True,
                               device="cpu: Intel Xeon (2 cores)")
    assert kind_first.seconds == here.seconds and kind_first.source == here.source


def test_another_kinds_own_cells_rescaled_by_the_kinds_measured_ratio():
    """Once both kinds ran some (task, method), another kind's cells of the cell's own (task,
    method) are rescaled by the median ratio and beat this kind's family (other tasks)."""
    cell, cost = Cell("ant", "mabcq", 1), CellCost("bcq", 4, 1000, 2, 200)
    amd_name, intel_name = "cpu: AMD EPYC (2 cores)", "cpu: Intel Xeon (2 cores)"

    def row(task, method, name, train_s, agents=2):
        return {"task": task, "methods": method, "family": "bcq", "workers": 2,
                "updates": 1000, "agents": agents, "evaluations": 2, "eval_s": 10.0,
                "train_s": train_s, "actual_s": train_s + 10.0 + 30.0,
                "device": f"{name}, one thread"}

    ant_amd = row("ant", "mabcq", amd_name, 60.0, agents=4)
    both = [row("hop", "mabcq", amd_name, 30.0), row("hop", "mabcq", intel_name, 18.0),
            row("hop", "bcq", amd_name, 20.0), row("hop", "bcq", intel_name, 14.0),
            row("wal", "bcq", amd_name, 40.0), row("wal", "bcq", intel_name, 20.0)]
    scaled = estimate_cell(cell, cost, [ant_amd, *both], "paper", 2, cpu=True,
                           device=intel_name)
    # ratios 0.6, 0.7, 0.5: median 0.6; train 60 s x 0.6, evaluations 2 x 5 s x 0.6
    assert scaled.seconds == pytest.approx(30.0 + 1000 * 0.06 * 0.6 + 2 * 5.0 * 0.6)
    assert scaled.source == ("measured: 1 finished cell(s) of ant mabcq on another machine "
                             "kind, x0.60 (this kind's time over that one's, the median of 3 "
                             "task-method pair(s) both ran)")
    # nothing both kinds ran: no ratio, this kind's family first, as before
    alone = estimate_cell(cell, cost, [ant_amd, both[1]], "paper", 2, cpu=True,
                          device=intel_name)
    assert alone.source == "measured: 1 finished bcq-family cell(s), per agent"
    assert alone.seconds == pytest.approx(30.0 + 1000 * 4 * 0.009 + 2 * 5.0)
    # this kind's own cells of the (task, method) still come first
    ant_intel = row("ant", "mabcq", intel_name, 33.0, agents=4)
    own = estimate_cell(cell, cost, [ant_amd, ant_intel, *both], "paper", 2, cpu=True,
                        device=intel_name)
    assert own.source == "measured: 1 finished cell(s) of ant mabcq"
    assert own.seconds == pytest.approx(30.0 + 1000 * 0.033 + 2 * 5.0)


def test_deadline_flags_parse():
    assert parse_duration("2h30m") == 9000 and parse_duration("45m") == 2700
    assert parse_duration("600s") == parse_duration("600") == 600
    for bad in ("", "0s", "2x", "1h-5m", "m"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    now = dt.datetime(2026, 12, 3, 14, 0)
    assert next_occurrence(dt.time(15, 30), now) == dt.datetime(2026, 12, 3, 15, 30)
    assert next_occurrence(dt.time(9, 0), now) == dt.datetime(2026, 12, 4, 9, 0)
    assert fits(0.0, 10.0, 10.0) and not fits(0.0, 10.5, 10.0) and fits(0.0, None, 1.0)


@pytest.mark.parametrize("flags, message", [
    (["--stop-after", "2x"], "--stop-after: must be a duration like 2h30m"),
    (["--until", "25:00"], "--until: must be a local time HH:MM"),
    (["--workers", "0"], "--workers: must be an integer >= 1"),
    (["--unit", "group", "--workers", "2"], "--workers needs --unit cell"),
    (["--unit", "group", "--stop-after", "1h"], "--stop-after needs --unit cell"),
    (["--unit", "group", "--plan"], "--plan needs --unit cell"),
])
def test_bad_cell_flags(tmp_path, capsys, flags, message):
    code = main(["reproduce", "--preset", "smoke", "--tasks", "hopper-3x1",
                 "--out", str(tmp_path / "o"), "--data-root", str(tmp_path / "d"), *flags])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not (tmp_path / "d").exists()


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """Smoke datasets of hopper-3x1 from the shipped policies (no SAC: seconds)."""
    root = tmp_path_factory.mktemp("data")
    assert main(["data", "build", "hopper-3x1", "--preset", "smoke", "--behavior", "shipped",
                 "--jobs", "1", "--no-progress",
                 "--out", str(root / "smoke" / "hopper-3x1" / "paper")]) == 0
    return root


@pytest.fixture(scope="module")
def one_worker(data_root, tmp_path_factory):
    """The grid with one worker, stopped at a deadline after its first cell, then run again:
    (OUT, the first call's exit code, the first cell's mtime after it, the second call's exit
    code and output)."""
    out = tmp_path_factory.mktemp("one") / "out"
    real = reproduce_pool.estimate_cell

    def first_fits(cell, *args, **kwargs):  # seed 0 is short, seed 1 can never fit
        return Estimate(1.0 if cell.seed == 0 else 1e9, "test")

    reproduce_pool.estimate_cell = first_fits
    try:
        stopped = main([*GRID, "--out", str(out), "--data-root", str(data_root),
                        "--stop-after", "1h", "--workers", "1"])
    finally:
        reproduce_pool.estimate_cell = real
    first = out / "cells" / "hopper-3x1" / "ddpg" / "seed_0.json"
    after_stop = {"cells": [cell["seed"] for cell in read_cells(out)],
                  "returns": (out / "returns.csv").read_text().splitlines(),
                  "mtime": first.stat().st_mtime_ns}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        rerun = main([*GRID, "--out", str(out), "--data-root", str(data_root), "--workers", "1"])
    return out, stopped, after_stop, rerun, printed.getvalue()


def test_stop_after_exits_3_and_rerun_finishes_without_redoing(one_worker):
    out, stopped, after_stop, rerun, printed = one_worker
    assert stopped == 3
    assert after_stop["cells"] == [0] and len(after_stop["returns"]) == 2  # header + seed 0
    assert rerun == 0, printed
    assert "1 cells done, 1 to run" in printed and "start hopper-3x1 ddpg seed 1" in printed
    assert "start hopper-3x1 ddpg seed 0" not in printed
    clock = r"^\d\d:\d\d:\d\d "  # each cell's line says when: a long queue's log is read later
    assert re.search(clock + "start hopper-3x1 ddpg seed 1 on core", printed, re.M), printed
    assert re.search(clock + r"done  hopper-3x1 ddpg seed 1 in ", printed, re.M), printed
    first = out / "cells" / "hopper-3x1" / "ddpg" / "seed_0.json"
    assert first.stat().st_mtime_ns == after_stop["mtime"]
    assert [cell["seed"] for cell in read_cells(out)] == [0, 1]
    header, *rows = (out / "timing.csv").read_text().splitlines()
    assert header.endswith("workers,updates,evaluations,estimate_s,actual_s")
    assert len(rows) == 2 and all(",1,150,1," in row for row in rows)  # 100 pretrain + 50


def test_cells_record_code_library_versions_flags_and_data(one_worker, data_root):
    out = one_worker[0]
    datasets = load_dataset_dir(data_root / "smoke" / "hopper-3x1" / "paper")
    data_hash = combined_sha256({f"agent_{index}": data.content_sha256()
                                 for index, data in enumerate(datasets)})
    commit = subprocess.run(["git", "-C", str(Path(__file__).parents[1]), "rev-parse", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    for cell in read_cells(out):
        provenance = cell["provenance"]
        assert provenance["code"]["commit"] == commit
        assert isinstance(provenance["code"]["dirty"], bool)
        assert {"jax", "flax", "optax", "mujoco", "numpy", "python"} <= set(
            provenance["versions"])
        assert provenance["device"].endswith("one thread") and len(provenance["cores"]) == 1
        assert "--xla_cpu_multi_thread_eigen=false" in provenance["xla_flags"]  # the worker's
        assert provenance["data_sha256"] == data_hash


def test_two_workers_give_the_same_cells_bitwise(one_worker, data_root, tmp_path):
    out = one_worker[0]
    two = tmp_path / "two"
    assert main([*GRID, "--workers", "2", "--out", str(two), "--data-root", str(data_root)]) == 0
    ones, twos = read_cells(out), read_cells(two)
    assert len(ones) == len(twos) == 2
    for first, second in zip(ones, twos, strict=True):
        assert json.dumps(cell_numbers(first)) == json.dumps(cell_numbers(second))
        assert second["timing"]["workers"] == 2
    for name in ("returns.csv", "diagnostics.csv"):
        assert (two / name).read_bytes() == (out / name).read_bytes()
    assert differing_cells(out, two) == []
    changed = two / "cells" / "hopper-3x1" / "ddpg" / "seed_1.json"  # the check can fail
    cell = json.loads(changed.read_text())
    cell["rows"][-1]["return_mean"] = str(float(cell["rows"][-1]["return_mean"]) + 1e-9)
    changed.write_text(json.dumps(cell))
    assert differing_cells(out, two) == ["cells/hopper-3x1/ddpg/seed_1.json"]


def test_shared_cells_are_finished_cells_to_the_grid_that_receives_them(one_worker, data_root,
                                                                         tmp_path):
    """scripts/share_cells.py: a grid handed another grid's cells trains none of them again."""
    from mabcq.grid.share import share_cells

    out = one_worker[0]
    source = tmp_path / "source"  # OUT's cells, recorded as from a clean checkout (which a
    shutil.copytree(out / "cells", source / "cells")  # working tree under test may not be)
    for path in (source / "cells").glob("*/*/seed_*.json"):
        cell = json.loads(path.read_text())
        cell["provenance"]["code"]["dirty"] = False
        path.write_text(json.dumps(cell))
    commit = cell["provenance"]["code"]["commit"]
    other = tmp_path / "other"
    other.mkdir()
    for tree in (source, other):
        (tree / "grid.json").write_bytes((out / "grid.json").read_bytes())
    assert len(share_cells(source, other, (commit,)).copied) == 2
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main([*GRID, "--out", str(other), "--data-root", str(data_root)]) == 0
    assert "2 cells done, 0 to run" in printed.getvalue() and "start " not in printed.getvalue()
    assert differing_cells(out, other) == []


def test_plan_prints_what_is_left_and_writes_nothing(one_worker, data_root, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(one_worker[0], out, ignore=shutil.ignore_patterns("runs"))
    (out / "cells" / "hopper-3x1" / "ddpg" / "seed_1.json").unlink()
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    empty_data = tmp_path / "no-data"
    assert main([*GRID, "--out", str(out), "--data-root", str(empty_data), "--plan",
                 "--stop-after", "1h", "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert "1 cells done, 1 to run with 1 worker(s)" in printed
    assert "hopper-3x1 ddpg seed 1" in printed and "+ dataset build ~" in printed
    assert "measured: 1 finished cell(s) of hopper-3x1 ddpg" in printed
    assert "about 1 of 1 cells fit" in printed
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == before
    assert not empty_data.exists()  # no dataset built


def test_a_grid_holding_cells_of_other_code_is_refused_unless_allowed(one_worker, data_root,
                                                                      tmp_path, capsys):
    """One grid, one commit: a call from other code adds nothing to it, with one line naming the
    commit to run from, until --allow-commits names that commit."""
    out = tmp_path / "out"
    shutil.copytree(one_worker[0], out, ignore=shutil.ignore_patterns("runs"))
    moved = out / "cells" / "hopper-3x1" / "ddpg" / "seed_1.json"
    cell = json.loads(moved.read_text())
    cell["provenance"]["code"]["commit"] = "0123456789abcdef0123456789abcdef01234567"
    moved.write_text(json.dumps(cell))
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    assert main([*GRID, "--out", str(out), "--data-root", str(data_root)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("mabcq: error: ") and "\n" not in error
    assert "1 finished cell(s) were trained at other code (0123456789ab: 1" in error
    assert "--allow-commits 0123456789ab" in error and str(moved) in error
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == before
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main([*GRID, "--out", str(out), "--data-root", str(data_root),
                     "--allow-commits", "0123456"]) == 0
    assert "2 cells done, 0 to run" in printed.getvalue()


def test_check_code_reads_every_cell_and_skips_outside_git(tmp_path):
    from mabcq.errors import UserError
    from mabcq.grid.cells import check_code

    cell = tmp_path / "cells" / "t" / "m" / "seed_0.json"
    cell.parent.mkdir(parents=True)
    cell.write_text(json.dumps({"rows": []}))  # made before cells recorded their code
    with pytest.raises(UserError, match="other code \\(unknown: 1"):
        check_code(tmp_path, "f" * 40)
    check_code(tmp_path, "unknown")  # an installed wheel: nothing to compare
    cell.write_text(json.dumps({"provenance": {"code": {"commit": "f" * 40}}}))
    check_code(tmp_path, "f" * 40)
    check_code(tmp_path, "e" * 40, allowed=("fffffff",))
    with pytest.raises(UserError, match="--allow-commits ffffffffffff"):
        check_code(tmp_path, "e" * 40, allowed=("eeeeeee",))


def test_a_worker_dies_with_its_driver(tmp_path):
    """A SIGKILLed driver leaves no worker writing on: the next call resumes its cell."""
    pid_file, worker_script = tmp_path / "worker.pid", tmp_path / "worker.py"
    worker_script.write_text(
        "import os, sys, time\n"
        "from mabcq.grid.worker import die_with_parent\n"
        "die_with_parent(int(sys.argv[1]))\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(60)\n")
    driver = ("import os, subprocess, sys, time\n"
              f"subprocess.Popen([sys.executable, {str(worker_script)!r}, str(os.getpid())])\n"
              "time.sleep(60)\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    parent = subprocess.Popen([sys.executable, "-c", driver], env=env)
    deadline = time.time() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.time() < deadline and parent.poll() is None
        time.sleep(0.05)
    worker = int(pid_file.read_text())
    parent.kill()
    parent.wait()
    while time.time() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(worker, signal.SIGKILL)
    pytest.fail("the worker outlived its driver")


def test_a_cell_far_past_the_deadline_is_stopped_and_left_to_resume(tmp_path, monkeypatch):
    from mabcq.grid.groups import Grid
    from mabcq.grid.ray_backend import Failure

    split = {"data_s": 0.0, "train_s": 0.0, "eval_s": 0.0}
    grid = reproduce_pool.CellGrid(Grid(("hopper-3x1",), ("ddpg",), (0,), "smoke"), tmp_path,
                                   tmp_path, {}, split, False, 1, 1, time.time() - 1.0)
    monkeypatch.setattr(reproduce_pool, "overrun_allowance", lambda seconds: 0.0)
    log_path = tmp_path / "worker.log"
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    job = reproduce_pool.Running(Cell("hopper-3x1", "ddpg", 0), 0, process,
                                 open(log_path, "ab"), log_path, Estimate(1.0, "test"),
                                 time.time())
    grid._enforce_deadline([job])
    assert process.wait(timeout=30) != 0
    outcome = reproduce_pool.Outcome()
    grid._reap(job, outcome, Failure)
    assert outcome.left == [job.cell] and outcome.failed == [] and outcome.finished == 0


def test_code_version_outside_git_is_the_declared_commit_or_unknown(tmp_path, monkeypatch):
    from mabcq.util.provenance import code_version

    here = code_version()  # this checkout: git's own answer, whatever is declared
    monkeypatch.setenv("MABCQ_CODE_COMMIT", "A" * 40)
    assert code_version()["commit"] == here["commit"] != "a" * 40
    assert code_version(tmp_path) == {"commit": "a" * 40, "dirty": None, "dirty_paths": [],
                                      "declared": "MABCQ_CODE_COMMIT"}
    monkeypatch.delenv("MABCQ_CODE_COMMIT")
    assert code_version(tmp_path) == {"commit": "unknown", "dirty": None, "dirty_paths": []}


def test_device_grid_needs_the_pinned_tree(tmp_path):
    script = Path(__file__).resolve().parents[1] / "scripts" / "device_grid.sh"
    for commit, message in ((None, "no .pin/COMMIT (run scripts/device_pin.sh here"),
                            ("3e774ae", ".pin/COMMIT must hold a full 40-digit commit")):
        if commit:
            (tmp_path / ".pin").mkdir(exist_ok=True)
            (tmp_path / ".pin" / "COMMIT").write_text(commit + "\n")
        result = subprocess.run(["bash", str(script), "hopper-3x1"], cwd=tmp_path, text=True,
                                capture_output=True, timeout=60)
        assert result.returncode == 2 and message in result.stderr
        assert sorted(path.name for path in tmp_path.rglob("*")) == (
            [".pin", "COMMIT"] if commit else [])  # nothing installed, run or written


def test_device_pin_copies_the_pinned_code(tmp_path):
    """scripts/device_pin.sh in a small git repository: .pin holds the pinned commit's code and
    COMMIT, not the shipped policies (the machine copies those from the tree), and refuses when
    the tree's policies are not the pin's."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "device_pin.sh"
    (tmp_path / "scripts").mkdir()
    shutil.copy(script, tmp_path / "scripts")
    shipped = tmp_path / "src" / "mabcq" / "behavior" / "shipped"
    shipped.mkdir(parents=True)
    (shipped / "policy.msgpack").write_bytes(b"weights")
    (tmp_path / "src" / "mabcq" / "code.py").write_text("PINNED = True\n")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")

    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                              cwd=tmp_path, capture_output=True, text=True, check=True).stdout

    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "pin")
    pin = git("rev-parse", "HEAD").strip()
    (tmp_path / "src" / "mabcq" / "code.py").write_text("PINNED = False\n")  # main moved on
    result = subprocess.run(["bash", "scripts/device_pin.sh", pin[:9]], cwd=tmp_path, text=True,
                            capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / ".pin" / "COMMIT").read_text().strip() == pin
    assert (tmp_path / ".pin" / "src" / "mabcq" / "code.py").read_text() == "PINNED = True\n"
    assert not (tmp_path / ".pin" / "src" / "mabcq" / "behavior" / "shipped").exists()
    assert "/.pin/" in (tmp_path / ".git" / "info" / "exclude").read_text().split()
    assert git("status", "--porcelain", "--", ".pin") == ""
    (shipped / "policy.msgpack").write_bytes(b"other weights")
    refused = subprocess.run(["bash", "scripts/device_pin.sh", pin], cwd=tmp_path, text=True,
                             capture_output=True, timeout=60)
    assert refused.returncode == 2 and "differs from" in refused.stderr


def test_default_workers_is_one_per_usable_core(tmp_path, capsys):
    from mabcq.grid.pool import default_workers

    cores = len(os.sched_getaffinity(0))
    assert default_workers() == cores
    assert main(["reproduce", "--preset", "smoke", "--tasks", "hopper-3x1", "--seeds", "0",
                 "--out", str(tmp_path / "o"), "--data-root", str(tmp_path / "d"),
                 "--plan"]) == 0
    assert f"to run with {cores} worker(s)" in capsys.readouterr().out


def test_own_cells_at_another_worker_count_beat_a_lone_workers_family():
    """A lone worker (`--workers 1`) after a grid run with two: the cell's own (task, method),
    measured with two workers, beats one lone cell of another task per agent (a task's cost per
    agent differs more than a lone worker's from one of two)."""
    cell, cost = Cell("t", "bcq", 4), CellCost("bcq", 2, 1000, 2, 200)
    name = "cpu: Intel Xeon (2 cores)"
    base = {"family": "bcq", "updates": 1000, "evaluations": 2, "eval_s": 10.0,
            "device": f"{name}, one thread"}
    lone_other = {**base, "task": "u", "methods": "mabcq", "workers": 1, "agents": 3,
                  "train_s": 30.0, "actual_s": 70.0}
    own_two = {**base, "task": "t", "methods": "bcq", "workers": 2, "agents": 2,
               "train_s": 50.0, "actual_s": 90.0}
    estimate = estimate_cell(cell, cost, [lone_other, own_two], "paper", 1, cpu=True,
                             device=name)
    assert estimate.source == "measured: 1 finished cell(s) of t bcq"
    assert estimate.seconds == pytest.approx(30.0 + 1000 * 0.05 + 2 * 5.0)
    # with a lone cell of its own as well, that one (same worker count) wins
    own_lone = {**own_two, "workers": 1, "train_s": 40.0, "actual_s": 80.0}
    lone = estimate_cell(cell, cost, [lone_other, own_two, own_lone], "paper", 1, cpu=True,
                         device=name)
    assert lone.seconds == pytest.approx(30.0 + 1000 * 0.04 + 2 * 5.0)


def test_the_eps_name_at_the_tasks_own_eps_trains_the_full_methods_cell(data_root, tmp_path):
    """What mabcq.grid.share.alias_cells rests on: mabcq-eps0.80 on hopper-3x1 (Table 8's eps
    there), trained as a cell of its own, equals mabcq's cell bitwise but for the name; the copy
    alias_cells makes of mabcq's cell is that cell, and the grid then trains nothing more. At
    another eps (0.32) the same comparison finds other numbers: at this scale it can fail."""
    from mabcq.grid.share import alias_cells, renamed_cell

    grid = ["reproduce", "--tasks", "hopper-3x1", "--methods", "mabcq,mabcq-eps0.80,mabcq-eps0.32",
            "--seeds", "0", "--preset", "smoke", "--updates", "50", "--eval-every", "50",
            "--no-progress", "--data-root", str(data_root)]
    trained = tmp_path / "trained"
    assert main([*grid, "--out", str(trained), "--workers", "2"]) == 0
    cells = {cell["method"]: cell for cell in read_cells(trained)}
    for method, same in (("mabcq-eps0.80", True), ("mabcq-eps0.32", False)):
        mabcq = renamed_cell(cells["mabcq"], method, Path("mabcq"))
        assert (cell_numbers(mabcq) == cell_numbers(cells[method])) is same, method
    copied = tmp_path / "copied"
    shutil.copytree(trained, copied)
    (copied / "cells" / "hopper-3x1" / "mabcq-eps0.80" / "seed_0.json").unlink()
    shutil.rmtree(copied / "runs" / "hopper-3x1" / "mabcq-eps0.80_seeds0")
    held = copied / "cells" / "hopper-3x1" / "mabcq" / "seed_0.json"
    cell = json.loads(held.read_text())  # as from a clean checkout (the tree under test may not
    cell["provenance"]["code"]["dirty"] = False  # be)
    held.write_text(json.dumps(cell))
    done = alias_cells(copied, copied, (cell["provenance"]["code"]["commit"],))
    assert done.copied == ["hopper-3x1/mabcq-eps0.80/seed_0"]
    assert differing_cells(trained, copied) == []
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main([*grid, "--out", str(copied), "--workers", "1"]) == 0
    assert "3 cells done, 0 to run" in printed.getvalue() and "start " not in printed.getvalue()
    assert main(["acting", str(copied), "--methods", "mabcq,mabcq-eps0.80", "--no-progress"]) == 0
    with open(copied / "acting.csv", newline="") as handle:  # from mabcq's run dir (trained_as)
        acted = {(row["method"], row["variant"]): row for row in csv.DictReader(handle)}
    assert acted["mabcq-eps0.80", "policy"]["reproduces"] == "yes"
    assert [acted["mabcq-eps0.80", v]["return"] for v in ("policy", "g1", "argmax", "perturb")] \
        == [acted["mabcq", v]["return"] for v in ("policy", "g1", "argmax", "perturb")]
