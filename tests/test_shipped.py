"""Shipped behavior sets: `mabcq behavior ship`, builds from them (early experience re-created by
rollouts, byte-identical files), their hash checks, and the datasets' version provenance."""

import json
import logging
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mabcq.behavior.policies import joint_mean_policy, load_actor
from mabcq.behavior.ship import (
    default_early_until,
    early_segments,
    load_shipped,
    ship_behavior,
)
from mabcq.cli import main
from mabcq.cli.train import load_training_data
from mabcq.data.build import Behavior
from mabcq.data.io import (
    check_dataset_versions,
    dataset_from_arrays,
    load_dataset_dir,
    save_dataset_dir,
)
from mabcq.envs.tasks import get_task
from mabcq.errors import UserError
from mabcq.util.provenance import combined_sha256, library_versions, sha256_file

TASK = get_task("hopper-3x1")


@pytest.fixture(autouse=True)
def no_persistent_jax_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MABCQ_JAX_CACHE", "")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A smoke SAC run (640 env steps, warm-up 256, evaluations every 128)."""
    out = tmp_path_factory.mktemp("sac") / "behavior"
    assert main(["behavior", "train", TASK.name, "--preset", "smoke", "--out", str(out),
                 "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def shipped_root(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shipped")
    assert main(["behavior", "ship", str(trained), "--task", TASK.name,
                 "--shipped-root", str(root)]) == 0
    return root


def test_early_segments_at_paper_scale() -> None:
    evals = list(range(10_000, 400_001, 10_000))
    segments = early_segments(evals, 10_000, 200_000, 20_000)
    assert segments[0] == {"start": 0, "stop": 10_000, "policy": "uniform"}
    assert [s["snapshot_step"] for s in segments[1:]] == list(range(10_000, 200_000, 20_000))
    assert [(s["start"], s["stop"]) for s in segments[1:3]] == [(10_000, 30_000),
                                                                 (30_000, 50_000)]
    assert segments[-1]["stop"] == 200_000
    assert default_early_until({"intermediate": {"step": 150_000}}, 400_000) == 200_000
    assert default_early_until({"intermediate": {"step": 300_000}}, 400_000) == 300_000
    assert default_early_until({"intermediate": {"step": 50_000}}, 60_000) == 60_000


def test_ship_writes_only_the_needed_snapshots_with_hashes(
        trained: Path, shipped_root: Path, tmp_path: Path) -> None:
    directory = shipped_root / TASK.name
    record = json.loads((directory / "behavior.json").read_text())
    trained_record = json.loads((trained / "behavior.json").read_text())
    files = {s["file"] for s in record["snapshots"]}
    assert sorted(p.name for p in directory.iterdir()) == sorted(files | {"behavior.json"})
    assert [e["step"] for e in record["evaluations"]] == [
        e["step"] for e in trained_record["evaluations"]]
    for level in ("intermediate", "expert"):
        assert record["levels"][level]["snapshot"] in files
        assert record["levels"][level]["rule"] == trained_record["levels"][level]["rule"]
    early = record["early"]
    assert early["until_step"] == 640 and early["warmup_steps"] == 256
    segments = early["segments"]
    assert segments[0]["policy"] == "uniform" and segments[0]["stop"] == 256
    assert all(a["stop"] == b["start"] for a, b in zip(segments, segments[1:], strict=False))
    assert {s["snapshot"] for s in segments[1:]} <= files
    hashes = {s["file"]: sha256_file(directory / s["file"]) for s in record["snapshots"]}
    assert hashes == {s["file"]: s["sha256"] for s in record["snapshots"]}
    assert record["policies_sha256"] == combined_sha256(hashes)
    assert set(record["versions"]) >= {"mujoco", "gymnasium", "gymnasium-robotics", "jax",
                                       "flax", "numpy", "python"}
    # Shipping again elsewhere gives the same bytes; sparser early snapshots drop stale files.
    again = ship_behavior(trained, TASK, tmp_path)
    assert (tmp_path / TASK.name / "behavior.json").read_bytes() == (
        directory / "behavior.json").read_bytes()
    sparse = ship_behavior(trained, TASK, tmp_path, early_every=256)
    assert len(sparse["snapshots"]) <= len(again["snapshots"])
    assert {p.name for p in (tmp_path / TASK.name).glob("*.msgpack")} == {
        s["file"] for s in sparse["snapshots"]}
    with pytest.raises(UserError, match="not walker2d-2x3"):
        ship_behavior(trained, get_task("walker2d-2x3"), tmp_path)


def test_build_from_shipped_set_is_byte_identical_and_records_provenance(
        shipped_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # b: the agent files built in parallel processes
    for name, num_envs, jobs in (("a", "4", "1"), ("b", "4", "2"), ("c", "1", "1")):
        assert main(["data", "build", TASK.name, "--preset", "smoke", "--behavior", "shipped",
                     "--shipped-root", str(shipped_root), "--out", str(tmp_path / name),
                     "--num-envs", num_envs, "--jobs", jobs, "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "using the shipped behavior policies" in printed
    assert printed.count("wrote ") == TASK.n_agents  # only the --jobs 2 build reports so
    for agent in range(TASK.n_agents):
        first = (tmp_path / "a" / f"agent_{agent}.h5").read_bytes()
        assert first == (tmp_path / "b" / f"agent_{agent}.h5").read_bytes()
        assert first == (tmp_path / "c" / f"agent_{agent}.h5").read_bytes()  # other --num-envs
    datasets = load_dataset_dir(tmp_path / "a")
    shipped = load_shipped(TASK.name, shipped_root)
    for dataset in datasets:
        meta = dataset.metadata
        assert meta["behavior"]["policies_sha256"] == shipped["policies_sha256"]
        assert meta["behavior"]["shipped"] is True
        assert meta["versions"] == library_versions()
        assert "created_utc" not in meta
        early = meta["part_details"][0]
        assert early["source"] == "early-rollout" and early["env_steps"] == [0, 100]
    # The early experience is shared: same states in every agent's file, own action slices.
    early_rows = [d.parts == 0 for d in datasets]
    np.testing.assert_array_equal(datasets[0].observations[early_rows[0]],
                                  datasets[2].observations[early_rows[2]])


def test_early_rollout_follows_the_segments_whatever_the_lockstep_envs(
        shipped_root: Path) -> None:
    one = Behavior.shipped(TASK, shipped_root).early_experience(400, seed=3, num_envs=1)
    three = Behavior.shipped(TASK, shipped_root).early_experience(400, seed=3, num_envs=3)
    arrays, info = one
    assert [s["env_steps"] for s in info["segments"]] == [[0, 256], [256, 384], [384, 400]]
    assert [s["policy"] for s in info["segments"]] == ["uniform", "sampled", "sampled"]
    assert len(arrays["rewards"]) == 400 and arrays["actions"].shape == (400, 3)
    assert arrays["timeouts"][255] or arrays["terminals"][255]  # a segment ends episodes
    for key, value in arrays.items():
        np.testing.assert_array_equal(value, three[0][key])
    # Sampled, not the mean: the same snapshot's deterministic policy gives other actions.
    behavior = Behavior.shipped(TASK, shipped_root)
    snapshot = behavior.directory / behavior.record["early"]["segments"][1]["snapshot"]
    mean = joint_mean_policy(behavior.sac, load_actor(snapshot))
    assert not np.allclose(mean(arrays["observations"][256:384]), arrays["actions"][256:384])


def test_medium_replay_from_shipped_set_reaches_the_intermediate_step(
        shipped_root: Path, tmp_path: Path) -> None:
    assert main(["data", "build", TASK.name, "--recipe", "medium-replay", "--behavior",
                 "shipped", "--shipped-root", str(shipped_root), "--out", str(tmp_path),
                 "--size", "10000", "--no-progress"]) == 0
    dataset = load_dataset_dir(tmp_path)[0]
    step = load_shipped(TASK.name, shipped_root)["levels"]["intermediate"]["step"]
    assert len(dataset) == step
    assert dataset.metadata["part_details"][0]["source"] == "early-rollout"


def test_quick_preset_uses_the_shipped_set_by_default(
        shipped_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "build", TASK.name, "--preset", "quick", "--size", "60",
                 "--shipped-root", str(shipped_root), "--out", str(tmp_path / "q"),
                 "--no-progress"]) == 0
    assert "using the shipped behavior policies" in capsys.readouterr().out
    assert not (tmp_path / "q" / "behavior").exists()  # no SAC trained
    assert main(["data", "build", "swimmer-2x1", "--behavior", "shipped", "--shipped-root",
                 str(shipped_root), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "no shipped behavior policies for swimmer-2x1" in err
    assert "mabcq behavior ship DIR --task swimmer-2x1" in err
    assert main(["data", "build", TASK.name, "--behavior", "shipped", "--shipped-root",
                 str(shipped_root), "--out", str(tmp_path / "x"), "--size", "5000"]) == 2
    assert "shipped set" in capsys.readouterr().err


def test_loader_rejects_a_tampered_file(shipped_root: Path, tmp_path: Path) -> None:
    copy = tmp_path / TASK.name
    shutil.copytree(shipped_root / TASK.name, copy)
    record = load_shipped(TASK.name, tmp_path)
    victim = copy / record["snapshots"][-1]["file"]
    payload = bytearray(victim.read_bytes())
    payload[-1] ^= 1
    victim.write_bytes(bytes(payload))
    with pytest.raises(UserError, match=f"{victim}: sha256 .* differs"):
        load_shipped(TASK.name, tmp_path)
    with pytest.raises(UserError, match=str(victim)):
        Behavior.shipped(TASK, tmp_path)
    victim.unlink()
    with pytest.raises(UserError, match=f"{victim}: shipped policy file missing"):
        load_shipped(TASK.name, tmp_path)


def _tiny_datasets(versions: dict | None) -> list:
    rng = np.random.default_rng(0)
    task = get_task("swimmer-2x1")
    datasets = []
    for agent in range(task.n_agents):
        datasets.append(dataset_from_arrays(
            rng.normal(size=(4, task.state_dim)), rng.uniform(-1, 1, (4, 1)), np.ones(4),
            rng.normal(size=(4, task.state_dim)), np.zeros(4, bool), task=task.name,
            agent=agent, n_agents=task.n_agents,
            metadata=None if versions is None else {"versions": versions}))
    return datasets


def test_version_mismatch_warns_when_loading_for_training(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    other = {**library_versions(), "mujoco": "0.0.1"}
    save_dataset_dir(_tiny_datasets(other), tmp_path / "old")
    with caplog.at_level(logging.WARNING, logger="mabcq"):
        load_training_data(get_task("swimmer-2x1"), tmp_path / "old", None)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "MuJoCo 0.0.1" in warnings[0]
    assert str(tmp_path / "old") in warnings[0] and "\n" not in warnings[0]
    assert check_dataset_versions(_tiny_datasets(library_versions()), "same") == []
    assert check_dataset_versions(_tiny_datasets(None), "unrecorded") == []


def test_gitignore_lets_the_shipped_files_be_committed() -> None:
    repo = Path(__file__).resolve().parents[1]
    if shutil.which("git") is None or not (repo / ".git").exists():
        pytest.skip("not a git checkout")
    paths = ["src/mabcq/behavior/shipped/hopper-3x1/step_000010000.msgpack",
             "src/mabcq/behavior/shipped/hopper-3x1/behavior.json"]
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=repo,
                             capture_output=True, text=True)
    assert ignored.stdout == ""
    assert subprocess.run(["git", "check-ignore", "-q", "--no-index", "runs/x.msgpack"],
                          cwd=repo).returncode == 0


def test_the_package_shipped_policies_build_identical_files_twice(tmp_path: Path) -> None:
    """The committed shipped sets (not a test-made one): a smoke build from them, twice."""
    for name in ("a", "b"):
        assert main(["data", "build", "swimmer-2x1", "--recipe", "low", "--preset", "smoke",
                     "--behavior", "shipped", "--out", str(tmp_path / name),
                     "--no-progress"]) == 0
    shipped = load_shipped("swimmer-2x1")
    for agent in range(2):
        first = (tmp_path / "a" / f"agent_{agent}.h5").read_bytes()
        assert first == (tmp_path / "b" / f"agent_{agent}.h5").read_bytes()
    meta = load_dataset_dir(tmp_path / "a")[0].metadata
    assert meta["behavior"]["policies_sha256"] == shipped["policies_sha256"]
    assert shipped["env_steps"] == 400_000
