"""`mabcq data export --to minari` and `mabcq data import minari`: a lossless round trip, a
smoke dataset that Minari's own API loads, and a joint single-agent dataset split per agent."""

import json
import warnings
from pathlib import Path

import gymnasium as gym
import h5py
import minari
import numpy as np
import pytest
from minari.data_collector import EpisodeBuffer

from mabcq.cli import main
from mabcq.data.io import load_agent_dataset, load_dataset_dir
from mabcq.data.schema import ARRAY_FIELDS


@pytest.fixture(autouse=True)
def local_minari_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Minari reads and writes only under this test's directory; nothing is downloaded."""
    root = tmp_path / "minari-root"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    monkeypatch.setenv("MABCQ_JAX_CACHE", "")
    return root


@pytest.fixture(scope="module")
def smoke_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("smoke") / "hopper"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MABCQ_JAX_CACHE", "")  # no persistent compilation cache from tests
        assert main(["data", "build", "hopper-3x1", "--preset", "smoke", "--out", str(out),
                     "--no-progress"]) == 0
    return out


def test_smoke_export_loads_in_minari_and_round_trips(smoke_dir: Path, tmp_path: Path,
                                                      local_minari_root: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    assert main(["data", "export", str(smoke_dir), "--to", "minari"]) == 0
    ids = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert ids == [f"mabcq/hopper-3x1/paper-agent{i}-v0" for i in range(3)]
    originals = load_dataset_dir(smoke_dir)
    for ident, original in zip(ids, originals, strict=True):
        dataset = minari.load_dataset(ident)  # Minari's own API, from the local root
        assert dataset.action_space == gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        assert dataset.observation_space.shape == (11,)
        assert dataset.total_steps == len(original) == 500
        ends = int((original.terminals | original.timeouts).sum())
        assert dataset.total_episodes >= ends
        episode = next(dataset.iterate_episodes())
        steps = len(episode.rewards)
        np.testing.assert_array_equal(episode.observations[:-1], original.observations[:steps])
        np.testing.assert_array_equal(episode.observations[1:],
                                      original.next_observations[:steps])
        assert dataset.storage.metadata["mabcq"] == original.metadata
    assert sorted(minari.list_local_datasets()) == ids

    out = tmp_path / "back"
    assert main(["data", "import", "minari", *ids, "--out", str(out)]) == 0
    for agent, original in enumerate(originals):
        back = load_agent_dataset(out / f"agent_{agent}.h5")
        for name in (*ARRAY_FIELDS, "parts"):
            np.testing.assert_array_equal(getattr(back, name), getattr(original, name))
            assert getattr(back, name).dtype == getattr(original, name).dtype
        assert back.metadata == original.metadata
        # the same arrays and metadata give the same bytes (files are reproducible)
        assert (out / f"agent_{agent}.h5").read_bytes() == \
            (smoke_dir / f"agent_{agent}.h5").read_bytes()

    # exporting again over the same ids is refused, before anything is written
    capsys.readouterr()
    assert main(["data", "export", str(smoke_dir), "--to", "minari"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists already" in err


def _joint_minari_dataset(ident: str, steps: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """A single-agent Minari dataset of swimmer-2x1's joint action (8-dim state, 2 actions):
    two episodes, the first terminal, the second truncated."""
    rng = np.random.default_rng(0)
    observations = rng.normal(size=(steps + 2, 8)).astype(np.float32)
    actions = rng.uniform(-1, 1, size=(steps, 2)).astype(np.float32)
    rewards = rng.normal(size=steps).astype(np.float32)
    half = steps // 2
    buffers = [
        EpisodeBuffer(id=0, observations=observations[:half + 1], actions=actions[:half],
                      rewards=rewards[:half], terminations=np.r_[np.zeros(half - 1), 1] > 0,
                      truncations=np.zeros(half, bool)),
        EpisodeBuffer(id=1, observations=observations[half + 1:], actions=actions[half:],
                      rewards=rewards[half:], terminations=np.zeros(steps - half, bool),
                      truncations=np.r_[np.zeros(steps - half - 1), 1] > 0),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        minari.create_dataset_from_buffers(
            ident, buffers, observation_space=gym.spaces.Box(-np.inf, np.inf, (8,), np.float32),
            action_space=gym.spaces.Box(-1, 1, (2,), np.float32), data_format="hdf5")
    return observations, actions


def test_import_foreign_joint_dataset_splits_actions(tmp_path: Path) -> None:
    observations, actions = _joint_minari_dataset("joint/swimmer/random-v0")
    out = tmp_path / "agents"
    assert main(["data", "import", "minari", "joint/swimmer/random-v0", "--out", str(out),
                 "--task", "swimmer-2x1"]) == 0
    datasets = load_dataset_dir(out)
    for agent, dataset in enumerate(datasets):
        # agent i's file holds its own action column only
        assert dataset.actions.shape == (30, 1)
        np.testing.assert_array_equal(dataset.actions[:, 0], actions[:, agent])
        np.testing.assert_array_equal(dataset.observations[:15], observations[:15])
        np.testing.assert_array_equal(dataset.next_observations[15:], observations[17:])
        assert dataset.terminals[14] and dataset.timeouts[29]
        assert int(dataset.terminals.sum() + dataset.timeouts.sum()) == 2
        source = dataset.metadata["source"]
        assert source["format"] == "minari" and source["dataset_id"] == "joint/swimmer/random-v0"
        assert source["joint_action_slice"] == [agent, agent + 1]
        with h5py.File(out / f"agent_{agent}.h5") as file:
            other = actions[:, 1 - agent]
            for name in ARRAY_FIELDS:
                values = np.asarray(file[name][()], np.float32).ravel()
                assert not np.isin(other, values).any(), name
            assert str(other[0]) not in json.dumps(json.loads(file.attrs["metadata_json"]))


def test_minari_bad_sources_exit_2_one_line(tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    _joint_minari_dataset("joint/swimmer/random-v0")
    out = tmp_path / "never"
    cases = [
        (["no/such/dataset-v0", "--task", "swimmer-2x1"], "no/such/dataset-v0"),
        (["joint/swimmer/random-v0"], "give --task"),
        (["joint/swimmer/random-v0", "--task", "hopper-3x1"], "joint action of 3 dims"),
        (["joint/swimmer/random-v0", "joint/swimmer/random-v0", "--task", "hopper-3x1"],
         "holds 2 agent(s) but task hopper-3x1 has 3"),
    ]
    for argv, expected in cases:
        capsys.readouterr()
        assert main(["data", "import", "minari", *argv, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err and "Traceback" not in err, err
        assert not out.exists()
