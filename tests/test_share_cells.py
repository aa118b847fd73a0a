"""scripts/share_cells.py (mabcq.grid.share): a cell finished by one grid stands for the same cell
of another only when the settings, recipe and code are the same; copies keep the numbers and
say where they came from; cells both hold are compared, never overwritten."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mabcq.errors import UserError
from mabcq.grid.cells import cell_numbers, cell_path, read_cells
from mabcq.grid.share import alias_cells, same_learner, share_cells

PIN = "3e774ae899244471ee9f3684c22ea04a9d7e9d7d"
VERSIONS = {"jax": "0.10.2", "mabcq": "0.1.0"}
SCRIPT = Path(__file__).parents[1] / "scripts" / "share_cells.py"


def grid(out: Path, tasks, methods, seeds=(0, 1), **changes) -> Path:
    record = {"preset": "paper", "tasks": list(tasks), "methods": list(methods),
              "seeds": list(seeds), "eval_every": 5000, "eval_episodes": 10, "overrides": {},
              "recipes": {f"{task}/bcq": "paper" for task in tasks},
              "updates": 50000, "transitions_per_agent": 1000000, "batch_size": 1024,
              "versions": VERSIONS, **changes}
    out.mkdir(parents=True, exist_ok=True)
    (out / "grid.json").write_text(json.dumps(record))
    return out


def cell(out: Path, task: str, method: str, seed: int, value: float = 1.5, commit: str = PIN,
         dirty: bool = False, recipe: str = "paper", group: str | None = None,
         every: int = 5000, versions: dict = VERSIONS) -> Path:
    path = cell_path(out, task, method, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"update": str(update), "seed": str(seed), "method": method,
             "return_mean": repr(value + seed / 3 + update), "time_per_update_ms": "41.2"}
            for update in range(every, 50001, every)]
    path.write_text(json.dumps({
        "task": task, "method": method, "seed": seed, "recipe": recipe, "rows": rows,
        "group": group or f"{method}_seeds{seed}", "timing": {"task": task, "actual_s": 1.0},
        "provenance": {"code": {"commit": commit, "dirty": dirty, "dirty_paths": []},
                       "versions": versions}}))
    return path


@pytest.fixture
def paper_and_study(tmp_path):
    paper = grid(tmp_path / "paper", ["hopper-3x1", "ant-4x2"], ["mabcq", "bcq", "ddpg"])
    study = grid(tmp_path / "study", ["hopper-3x1"], ["mabcq", "mabcq-vdterm1", "bcq"])
    for task in ("hopper-3x1", "ant-4x2"):
        for method in ("mabcq", "bcq", "ddpg"):
            cell(paper, task, method, 0)
    return paper, study


def test_copies_only_the_cells_dest_asks_for_with_their_numbers(paper_and_study):
    paper, study = paper_and_study
    done = share_cells(paper, study, (PIN[:7],))
    assert sorted(done.copied) == ["hopper-3x1/bcq/seed_0", "hopper-3x1/mabcq/seed_0"]
    assert done.equal == done.differing == []
    copied = read_cells(study)
    assert [(c["task"], c["method"]) for c in copied] == [("hopper-3x1", "bcq"),
                                                          ("hopper-3x1", "mabcq")]
    for ours in copied:
        theirs = json.loads(cell_path(paper, ours["task"], ours["method"], 0).read_text())
        assert cell_numbers(ours) == cell_numbers(theirs)
        assert ours["provenance"]["copied_from"] == str(paper)
        assert ours["provenance"]["code"]["commit"] == PIN
    assert len((study / "returns.csv").read_text().splitlines()) == 21  # rebuilt: 1 + 2 x 10
    again = share_cells(paper, study, (PIN,))  # the second call copies nothing, compares both
    assert again.copied == [] and sorted(again.equal) == sorted(done.copied)


def test_the_other_way_and_a_method_filter(paper_and_study):
    paper, study = paper_and_study
    cell(study, "hopper-3x1", "mabcq", 1)
    cell(study, "hopper-3x1", "mabcq-vdterm1", 1)
    done = share_cells(study, paper, (PIN,))
    assert done.copied == ["hopper-3x1/mabcq/seed_1"]  # paper does not ask for vdterm1
    assert not cell_path(paper, "hopper-3x1", "mabcq-vdterm1", 1).exists()
    cell(paper, "hopper-3x1", "mabcq-no-tn", 0)  # named: copied although study does not ask it
    named = share_cells(paper, study, (PIN,), methods=("mabcq-no-tn",))
    assert named.copied == ["hopper-3x1/mabcq-no-tn/seed_0"]  # only DEST's tasks and seeds
    with pytest.raises(UserError, match="no settings recorded for hopper-3x1's ddpg methods"):
        share_cells(paper, study, (PIN,), methods=("ddpg",))  # study records none of DDPG's


def test_a_dry_run_writes_nothing(paper_and_study):
    paper, study = paper_and_study
    assert len(share_cells(paper, study, (PIN,), dry_run=True).copied) == 2
    assert read_cells(study) == [] and not (study / "returns.csv").exists()


def test_a_cell_both_hold_is_compared_never_overwritten(paper_and_study):
    paper, study = paper_and_study
    mine = cell(study, "hopper-3x1", "mabcq", 0, value=1.5 + 1e-12)
    before = mine.read_bytes()
    done = share_cells(paper, study, (PIN,))
    assert done.differing == ["hopper-3x1/mabcq/seed_0"]
    assert done.copied == ["hopper-3x1/bcq/seed_0"]
    assert mine.read_bytes() == before


@pytest.mark.parametrize("change, message", [
    ({"updates": 10000}, "updates 50000 vs 10000"),
    ({"overrides": {"eps": 0.5}}, "overrides"),
    ({"batch_size": {"bcq": 256}}, "batch_size 1024 vs 256"),
    ({"recipes": {"hopper-3x1/bcq": "low"}}, "recipes 'paper' vs 'low'"),
])
def test_other_settings_are_not_the_same_cell(tmp_path, change, message):
    paper = grid(tmp_path / "paper", ["hopper-3x1"], ["mabcq"])
    study = grid(tmp_path / "study", ["hopper-3x1"], ["mabcq"], **change)
    cell(paper, "hopper-3x1", "mabcq", 0)
    with pytest.raises(UserError, match=message):
        share_cells(paper, study, (PIN,))
    assert read_cells(study) == []


@pytest.mark.parametrize("kind, message", [
    ({"commit": "0" * 40}, "trained at 000000000000, not 3e774ae"),
    ({"dirty": True}, "local changes"),
    ({"recipe": "low"}, "trained on low data, .* asks paper"),
    ({"every": 10000}, "evaluated at updates \\[10000, 20000, 30000\\]...\\[50000\\], not every "
                       "5000 up to 50000"),
])
def test_a_cell_of_other_code_or_data_is_refused(tmp_path, kind, message):
    paper = grid(tmp_path / "paper", ["hopper-3x1"], ["mabcq"])
    study = grid(tmp_path / "study", ["hopper-3x1"], ["mabcq"])
    cell(paper, "hopper-3x1", "mabcq", 0, **kind)
    with pytest.raises(UserError, match=message):
        share_cells(paper, study, (PIN[:7],))
    assert read_cells(study) == []


GPU = {"group": "mabcq+bcq_seeds0-1", "versions": {"jax": "0.11.2", "mabcq": "not installed"},
       "dirty": None}  # a lent machine's cell: trained in a group, other versions, declared code


@pytest.mark.parametrize("kind, why", [
    ({"group": "mabcq+bcq_seeds0-1"}, "trained in group 'mabcq+bcq_seeds0-1' with other cells"),
    ({"versions": {"jax": "0.4.30", "mabcq": "0.1.0"}}, "trained with other library versions"),
    (GPU, "trained in group"),
])
def test_a_cell_of_another_kind_is_neither_copied_nor_compared(tmp_path, kind, why):
    paper = grid(tmp_path / "paper", ["hopper-3x1"], ["mabcq"])
    study = grid(tmp_path / "study", ["hopper-3x1"], ["mabcq"])
    cell(paper, "hopper-3x1", "mabcq", 0, **kind)
    cell(paper, "hopper-3x1", "mabcq", 1)
    done = share_cells(paper, study, (PIN[:7],))
    assert done.copied == ["hopper-3x1/mabcq/seed_1"] and done.differing == []
    assert len(done.apart) == 1 and done.apart[0].startswith("hopper-3x1/mabcq/seed_0: " + why)
    assert [row["seed"] for row in read_cells(study)] == [1]
    # the other way: DEST holds the other kind, SOURCE the cell trained alone; never compared
    mine = cell(study, "hopper-3x1", "mabcq", 0, value=7.0)
    back = share_cells(study, paper, (PIN,))
    assert back.differing == [] and back.equal == ["hopper-3x1/mabcq/seed_1"]
    assert back.apart[0].startswith("hopper-3x1/mabcq/seed_0: ") and mine.is_file()
    assert json.loads(cell_path(paper, "hopper-3x1", "mabcq", 0).read_text())["group"] == \
        kind.get("group", "mabcq_seeds0")


def test_a_cell_of_another_kind_with_other_settings_is_still_refused(tmp_path):
    paper = grid(tmp_path / "paper", ["hopper-3x1"], ["mabcq"])
    study = grid(tmp_path / "study", ["hopper-3x1"], ["mabcq"])
    cell(paper, "hopper-3x1", "mabcq", 0, recipe="low", **GPU)
    with pytest.raises(UserError, match="trained on low data"):
        share_cells(paper, study, (PIN,))
    cell(paper, "hopper-3x1", "mabcq", 0, every=10000, **GPU)
    with pytest.raises(UserError, match="not every 5000 up to 50000"):
        share_cells(paper, study, (PIN,))


NEW_PIN = "c" * 40  # a later pin whose smoke grid was bitwise equal to PIN's


def test_cells_of_every_named_pin_are_copied_and_no_other(tmp_path):
    paper = grid(tmp_path / "paper", ["hopper-3x1"], ["mabcq"], seeds=(0, 1, 2))
    study = grid(tmp_path / "study", ["hopper-3x1"], ["mabcq"], seeds=(0, 1, 2))
    cell(paper, "hopper-3x1", "mabcq", 0)
    cell(paper, "hopper-3x1", "mabcq", 1, commit=NEW_PIN)
    with pytest.raises(UserError, match=f"trained at cccccccccccc, not {PIN[:7]}; it"):
        share_cells(paper, study, (PIN[:7],))
    done = share_cells(paper, study, (NEW_PIN[:9], PIN[:7]))
    assert done.copied == ["hopper-3x1/mabcq/seed_0", "hopper-3x1/mabcq/seed_1"]
    cell(paper, "hopper-3x1", "mabcq", 2, commit="d" * 40)
    with pytest.raises(UserError, match=f"not {NEW_PIN[:9]} or {PIN[:7]}; it"):
        share_cells(paper, study, (NEW_PIN[:9], PIN[:7]))
    with pytest.raises(UserError, match="at least 7 hex digits of each"):
        share_cells(paper, study, (PIN, "3e77"))


def run_script(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)],
                          capture_output=True, text=True)


def test_script_exit_codes(paper_and_study, tmp_path):
    paper, study = paper_and_study
    missing = run_script(paper, tmp_path / "nowhere", "--commit", PIN)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "nowhere/grid.json: not found" in missing.stderr
    ok = run_script(paper, study, "--commit", PIN)
    assert ok.returncode == 0 and "copied 2 cell(s)" in ok.stdout, ok.stderr
    cell(study, "hopper-3x1", "mabcq", 1, value=9.0)
    cell(paper, "hopper-3x1", "mabcq", 1, value=8.0)
    differ = run_script(paper, study, "--commit", f"{NEW_PIN},{PIN[:7].upper()}")
    assert differ.returncode == 1 and "differs: hopper-3x1/mabcq/seed_1" in differ.stdout
    bad = run_script(paper, study, "--commit", f"{PIN},xyz")
    assert bad.returncode == 2 and "must be a commit of 7 to 40 hex digits" in bad.stderr


def test_a_refused_cell_stops_every_copy(paper_and_study):
    paper, study = paper_and_study
    cell(paper, "hopper-3x1", "mabcq", 1, dirty=True)  # checked after seed 0's good cells
    with pytest.raises(UserError, match="local changes"):
        share_cells(paper, study, (PIN,))
    assert read_cells(study) == [] and not (study / "returns.csv").exists()


def sweep(tmp_path, methods=("mabcq", "bcq"), **changes) -> Path:
    """A grid asking the eps sweep on Hopper (Table 8's eps 0.80) and Walker (0.48), with the
    full method's cells of seeds 0 and 1 and BCQ's seed 0."""
    out = grid(tmp_path / "paper", ["hopper-3x1", "walker2d-2x3"], list(methods),
               **{"eps_sweep": True, **changes})
    for task in ("hopper-3x1", "walker2d-2x3"):
        cell(out, task, "mabcq", 0)
        cell(out, task, "mabcq", 1, value=2.5)
        cell(out, task, "bcq", 0)
    return out


def test_same_learner_is_an_eps_name_at_the_tasks_own_eps_only():
    assert same_learner("hopper-3x1", "mabcq-eps0.80") == "mabcq"
    assert same_learner("walker2d-2x3", "mabcq-eps0.48") == "mabcq"
    assert same_learner("walker2d-2x3", "mabcq-eps0.80") is None  # Walker's own eps is 0.48
    assert same_learner("hopper-3x1", "macql-eps0.80") == "macql"
    for method in ("mabcq", "bcq", "mabcq-no-vd", "mabcq-vdterm1", "ddpg"):
        assert same_learner("hopper-3x1", method) is None


def test_alias_copies_the_full_methods_cell_under_the_eps_name(tmp_path):
    out = sweep(tmp_path)
    done = alias_cells(out, out, (PIN[:7],))
    assert done.copied == ["hopper-3x1/mabcq-eps0.80/seed_0", "hopper-3x1/mabcq-eps0.80/seed_1",
                           "walker2d-2x3/mabcq-eps0.48/seed_0",
                           "walker2d-2x3/mabcq-eps0.48/seed_1"]
    assert done.equal == done.differing == done.apart == []
    held = cell_path(out, "walker2d-2x3", "mabcq", 1)
    alias = json.loads(cell_path(out, "walker2d-2x3", "mabcq-eps0.48", 1).read_text())
    theirs = json.loads(held.read_text())
    assert alias["method"] == "mabcq-eps0.48"
    assert {row["method"] for row in alias["rows"]} == {"mabcq-eps0.48"}
    assert [row["return_mean"] for row in alias["rows"]] == \
        [row["return_mean"] for row in theirs["rows"]]
    assert alias["group"] == "mabcq_seeds1" and alias["timing"] == theirs["timing"]
    assert alias["provenance"]["aliased_from"] == str(held)
    assert alias["provenance"]["trained_as"] == "mabcq"  # whose policies `mabcq acting` re-runs
    assert "copied_from" not in alias["provenance"]  # trained in this grid
    assert alias["provenance"]["code"] == theirs["provenance"]["code"]
    assert not cell_path(out, "hopper-3x1", "mabcq-eps0.48", 0).exists()  # not Hopper's eps
    returns = (out / "returns.csv").read_text()
    assert returns.count(",mabcq-eps0.80,") == returns.count(",mabcq-eps0.48,") == 20
    timing = (out / "timing.csv").read_text().splitlines()
    assert len(timing) == 1 + 6  # each run once: 2 tasks x (mabcq seeds 0, 1 and bcq seed 0)
    again = alias_cells(out, out, (PIN,))  # a copy is of this grid's kind: compared, equal
    assert again.copied == again.apart == [] and again.equal == done.copied
    changed = cell(out, "hopper-3x1", "mabcq-eps0.80", 1, value=2.5 + 1e-12)  # the check can fail
    before = changed.read_bytes()
    assert alias_cells(out, out, (PIN,)).differing == ["hopper-3x1/mabcq-eps0.80/seed_1"]
    assert changed.read_bytes() == before  # never overwritten


def test_alias_copies_what_grid_json_asks_and_nothing_without_a_dry_run(tmp_path):
    dry = sweep(tmp_path / "a")
    before = read_cells(dry)
    assert len(alias_cells(dry, dry, (PIN,), dry_run=True).copied) == 4
    assert read_cells(dry) == before and not (dry / "returns.csv").exists()
    plain = sweep(tmp_path / "b", eps_sweep=False)
    assert alias_cells(plain, plain, (PIN,)).copied == []
    named = sweep(tmp_path / "c", methods=("mabcq", "mabcq-eps0.80", "mabcq-eps0.32"),
                  eps_sweep=False)
    assert alias_cells(named, named, (PIN,)).copied == ["hopper-3x1/mabcq-eps0.80/seed_0",
                                                        "hopper-3x1/mabcq-eps0.80/seed_1"]


def test_alias_from_another_grid_where_this_ones_cell_is_another_kind(tmp_path):
    """The lent GPU's group cell of MABCQ stays apart; the study's cell trained alone serves,
    with share_cells' checks, and says where it came from."""
    out = grid(tmp_path / "paper", ["hopper-3x1"], ["mabcq"], eps_sweep=True)
    cell(out, "hopper-3x1", "mabcq", 0, **GPU)
    cell(out, "hopper-3x1", "mabcq", 1, value=4.0)
    cell(out, "hopper-3x1", "mabcq-eps0.80", 1, value=4.0, group="mabcq-eps0.80+bcq_seeds1")
    done = alias_cells(out, out, (PIN,))
    assert done.copied == done.differing == []  # seed 1's eps cell is of another kind too
    assert done.apart == [
        "hopper-3x1/mabcq-eps0.80/seed_0: mabcq's cell trained in group 'mabcq+bcq_seeds0-1' "
        "with other cells, not alone",
        "hopper-3x1/mabcq-eps0.80/seed_1: trained in group 'mabcq-eps0.80+bcq_seeds1' with "
        "other cells, not alone"]
    study = grid(tmp_path / "study", ["hopper-3x1"], ["mabcq", "bcq"])
    cell(study, "hopper-3x1", "mabcq", 0, value=3.0)
    ours = alias_cells(study, out, (PIN,))
    assert ours.copied == ["hopper-3x1/mabcq-eps0.80/seed_0"]
    copy = json.loads(cell_path(out, "hopper-3x1", "mabcq-eps0.80", 0).read_text())
    assert copy["provenance"]["copied_from"] == str(study)
    assert copy["provenance"]["aliased_from"] == str(cell_path(study, "hopper-3x1", "mabcq", 0))
    shared = cell(tmp_path / "chain", "hopper-3x1", "mabcq", 0)  # a copy keeps its origin
    chained = json.loads(shared.read_text())
    chained["provenance"]["copied_from"] = "results/study"
    shared.write_text(json.dumps(chained))
    chain = grid(tmp_path / "chain", ["hopper-3x1"], ["mabcq"], seeds=(0,), eps_sweep=True)
    assert alias_cells(chain, chain, (PIN,)).copied == ["hopper-3x1/mabcq-eps0.80/seed_0"]
    kept = json.loads(cell_path(chain, "hopper-3x1", "mabcq-eps0.80", 0).read_text())
    assert kept["provenance"]["copied_from"] == "results/study"
    other = grid(tmp_path / "other", ["hopper-3x1"], ["mabcq"], updates=10000)
    cell(other, "hopper-3x1", "mabcq", 1)
    with pytest.raises(UserError, match="updates 10000 vs 50000"):
        alias_cells(other, out, (PIN,))


def test_alias_refuses_other_code(tmp_path):
    for kind, message in (({"dirty": True}, "local changes"),
                          ({"commit": "0" * 40}, "trained at 000000000000, not 3e774ae")):
        out = grid(tmp_path / str(kind), ["hopper-3x1"], ["mabcq"], eps_sweep=True)
        cell(out, "hopper-3x1", "mabcq", 0, **kind)
        with pytest.raises(UserError, match=message):
            alias_cells(out, out, (PIN[:7],))
        assert read_cells(out) == [json.loads(cell_path(out, "hopper-3x1", "mabcq", 0)
                                              .read_text())]


def test_script_same_learner(tmp_path):
    out = sweep(tmp_path)
    named = run_script(out, out, "--same-learner", "--methods", "mabcq", "--commit", PIN)
    assert named.returncode == 2 and named.stderr.count("\n") == 1
    assert "give no --methods" in named.stderr
    ok = run_script(out, out, "--same-learner", "--commit", PIN)
    assert ok.returncode == 0 and "copied 4 cell(s)" in ok.stdout, ok.stderr
