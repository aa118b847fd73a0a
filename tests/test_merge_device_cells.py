"""scripts/merge_device_cells.py (mabcq.grid.merge): a lent machine's cells join a grid here with
their code declared at the pin, never overwriting a cell, grid.json or a behavior file here."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mabcq.errors import UserError
from mabcq.grid.cells import cell_path, collect
from mabcq.grid.merge import DECLARED, merge_cells

PIN = "3e774ae899244471ee9f3684c22ea04a9d7e9d7d"
SCRIPT = Path(__file__).parents[1] / "scripts" / "merge_device_cells.py"


def cell(out: Path, method: str, seed: int, value: float, commit: str) -> Path:
    path = cell_path(out, "hopper-3x1", method, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    group = f"{method}_seeds{seed}"
    path.write_text(json.dumps({
        "task": "hopper-3x1", "method": method, "seed": seed, "recipe": "paper", "group": group,
        "rows": [{"update": "5000", "return_mean": repr(value)}],
        "timing": {"task": "hopper-3x1", "group": group, "device": "cpu"},
        "provenance": {"code": {"commit": commit, "dirty": False, "dirty_paths": []},
                       "versions": {"jax": "0.10.2"}}}))
    return path


def behavior(out: Path, dataset_return: float) -> Path:
    path = out / "cells" / "hopper-3x1" / "behavior.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([{"task": "hopper-3x1", "level": "dataset",
                                 "return": dataset_return, "step": ""}]))
    return path


@pytest.fixture
def here_and_device(tmp_path):
    here, device = tmp_path / "paper", tmp_path / "unpacked"
    here.mkdir()
    (here / "grid.json").write_text(json.dumps({"versions": {"jax": "0.10.2"}}))
    (device / "cells").mkdir(parents=True)
    (device / "grid.json").write_text(json.dumps({"versions": {"jax": "0.11.2"}}))
    cell(here, "mabcq", 0, 1.0, PIN)
    collect(here)
    cell(device, "mabcq", 0, 2.0, "23005e2" + "0" * 33)  # held here: never overwritten
    cell(device, "mabcq", 1, 3.0, "23005e2" + "0" * 33)  # what the machine's own git said
    cell(device, "bcq", 1, 4.0, "unknown")
    return here, device


def test_new_cells_join_with_their_code_declared(here_and_device):
    here, device = here_and_device
    kept = cell_path(here, "hopper-3x1", "mabcq", 0).read_bytes()
    grid = (here / "grid.json").read_bytes()
    done = merge_cells(device, here, PIN.upper())
    assert done.copied == ["hopper-3x1/bcq/seed_1", "hopper-3x1/mabcq/seed_1"]
    assert done.held == ["hopper-3x1/mabcq/seed_0"]
    assert cell_path(here, "hopper-3x1", "mabcq", 0).read_bytes() == kept
    assert (here / "grid.json").read_bytes() == grid
    code = json.loads(cell_path(here, "hopper-3x1", "mabcq", 1).read_text())["provenance"]["code"]
    assert code == {"commit": PIN, "dirty": None, "dirty_paths": [], "declared": DECLARED,
                    "recorded_commit": "23005e2" + "0" * 33}
    code = json.loads(cell_path(here, "hopper-3x1", "bcq", 1).read_text())["provenance"]["code"]
    assert code["recorded_commit"] == "unknown" and code["commit"] == PIN
    returns = (here / "returns.csv").read_text().splitlines()
    assert len(returns) == 4 and any(",bcq,1,5000,4.0" in line for line in returns)


def test_behavior_files_here_are_kept_and_a_difference_said(here_and_device):
    here, device = here_and_device
    mine = behavior(here, 5441.7)
    behavior(device, 5423.8)
    done = merge_cells(device, here, PIN)
    assert done.behavior_differs == ["hopper-3x1/behavior.json"]
    assert json.loads(mine.read_text())[0]["return"] == 5441.7
    mine.unlink()  # a task new here takes the machine's, the only one there is
    merge_cells(device, here, PIN)
    assert json.loads(mine.read_text())[0]["return"] == 5423.8
    assert "5423.8" in (here / "behavior.csv").read_text()


def test_a_dry_run_and_bad_input(here_and_device, tmp_path):
    here, device = here_and_device
    before = sorted(path.name for path in (here / "cells").rglob("*.json"))
    assert len(merge_cells(device, here, PIN, dry_run=True).copied) == 2
    assert sorted(path.name for path in (here / "cells").rglob("*.json")) == before
    with pytest.raises(UserError, match="40 hex digits"):
        merge_cells(device, here, PIN[:12])
    with pytest.raises(UserError, match="no cells"):
        merge_cells(tmp_path / "empty", here, PIN)
    broken = cell_path(device, "hopper-3x1", "ddpg", 2)
    broken.parent.mkdir(parents=True)
    broken.write_text(json.dumps({"task": "hopper-3x1", "method": "ddpg", "seed": 2}))
    with pytest.raises(UserError, match="lacks group, provenance, rows, timing"):
        merge_cells(device, here, PIN)
    assert not cell_path(here, "hopper-3x1", "bcq", 1).exists()  # all checked, none written
    broken.unlink()
    other = json.loads(cell_path(device, "hopper-3x1", "mabcq", 1).read_text())
    other["provenance"]["code"] = {"commit": "f" * 40, "dirty": None,
                                   "declared": "MABCQ_CODE_COMMIT"}
    cell_path(device, "hopper-3x1", "mabcq", 1).write_text(json.dumps(other))
    with pytest.raises(UserError, match="declares commit ffffffffffff, not 3e774ae89924"):
        merge_cells(device, here, PIN)
    assert not cell_path(here, "hopper-3x1", "bcq", 1).exists()


def test_script_exit_codes(here_and_device):
    here, device = here_and_device
    run = [sys.executable, str(SCRIPT), str(device), str(here), "--commit"]
    bad = subprocess.run([*run, "abc"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "40 hex digits" in bad.stderr
    ok = subprocess.run([*run, PIN], capture_output=True, text=True)
    assert ok.returncode == 0 and "2 cell(s) copied; 1 already in" in ok.stdout, ok.stderr
