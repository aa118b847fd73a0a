"""Agent dataset files: round trip, atomic writes, and validation errors that name the file."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from mabcq.data import io
from mabcq.data.io import (
    dataset_from_arrays,
    load_agent_dataset,
    load_dataset_dir,
    load_npz,
    save_agent_dataset,
    save_dataset_dir,
)
from mabcq.errors import UserError


def _dataset(agent: int, length: int = 50, seed: int = 0, n_agents: int = 3):
    """A small hopper-3x1 agent dataset (state 11, one action dim per agent)."""
    rng = np.random.default_rng(seed + agent)
    return dataset_from_arrays(
        rng.normal(size=(length, 11)), rng.uniform(-1, 1, (length, 1)), rng.normal(size=length),
        rng.normal(size=(length, 11)), rng.random(length) < 0.05, rng.random(length) < 0.02,
        task="hopper-3x1", agent=agent, n_agents=n_agents,
        metadata={"recipe": "test", "parts": ["a", "b"], "part_sizes": [20, length - 20]},
        parts=np.r_[np.zeros(20), np.ones(length - 20)],
    )


def test_round_trip_keeps_arrays_and_metadata(tmp_path: Path) -> None:
    original = _dataset(1)
    path = save_agent_dataset(original, tmp_path / "a.h5")
    loaded = load_agent_dataset(path)
    for name in io.ARRAY_FIELDS:
        np.testing.assert_array_equal(getattr(loaded, name), getattr(original, name))
        assert getattr(loaded, name).dtype == getattr(original, name).dtype
    np.testing.assert_array_equal(loaded.parts, original.parts)
    assert loaded.metadata["agent"] == 1 and loaded.metadata["recipe"] == "test"
    assert loaded.metadata["format_version"] == io.FORMAT_VERSION
    assert "package_version" in loaded.metadata


def test_content_hash_follows_the_arrays_not_the_file_or_metadata(tmp_path: Path) -> None:
    import dataclasses

    original = _dataset(1)
    loaded = load_agent_dataset(save_agent_dataset(original, tmp_path / "a.h5"))
    assert loaded.content_sha256() == original.content_sha256()
    assert dataclasses.replace(original, metadata={}).content_sha256() == (
        original.content_sha256())
    rewards = original.rewards.copy()
    rewards[7] = np.nextafter(rewards[7], np.float32(np.inf))  # one ulp
    assert dataclasses.replace(original, rewards=rewards).content_sha256() != (
        original.content_sha256())
    terminals = original.terminals.copy()
    terminals[3] = not terminals[3]
    assert dataclasses.replace(original, terminals=terminals).content_sha256() != (
        original.content_sha256())
    assert _dataset(2).content_sha256() != original.content_sha256()
    empty = dataclasses.replace(original, observations=original.observations[:0])
    assert len(empty.content_sha256()) == 64  # an empty array hashes too


def test_directory_is_sorted_and_checked_as_a_set(tmp_path: Path) -> None:
    save_dataset_dir([_dataset(2), _dataset(0), _dataset(1)], tmp_path)
    assert [d.metadata["agent"] for d in load_dataset_dir(tmp_path)] == [0, 1, 2]
    (tmp_path / "agent_1.h5").unlink()
    with pytest.raises(UserError, match=r"agents \[0, 2\]"):
        load_dataset_dir(tmp_path)


def test_failed_write_leaves_old_file_and_no_temp(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "agent_0.h5"
    save_agent_dataset(_dataset(0, seed=1), path)
    before = path.read_bytes()
    calls = {"n": 0}
    real = h5py.Group.create_dataset

    def crash_midway(self, name, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated kill mid-write")
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        save_agent_dataset(_dataset(0, seed=2), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent_0.h5"]
    calls["n"] = 0
    with pytest.raises(KeyboardInterrupt):
        save_agent_dataset(_dataset(0, seed=2), tmp_path / "new.h5")
    assert not (tmp_path / "new.h5").exists()


def test_leftover_temp_file_of_a_killed_write_is_ignored(tmp_path: Path) -> None:
    save_dataset_dir([_dataset(i) for i in range(3)], tmp_path)
    (tmp_path / ".agent_0.h5.abc.tmp").write_bytes(b"half a file")
    assert len(load_dataset_dir(tmp_path)) == 3


def _corrupt(path: Path, edit) -> None:
    with h5py.File(path, "r+") as file:
        edit(file)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.__delitem__("rewards"), "missing dataset.*rewards"),
        (lambda f: (f.__delitem__("actions"),
                    f.create_dataset("actions", data=np.zeros((50, 3), np.float32))),
         "actions have 3 dims"),
        (lambda f: (f.__delitem__("observations"),
                    f.create_dataset("observations", data=np.zeros((49, 11), np.float32))),
         "rows"),
        (lambda f: f["next_observations"].__setitem__((4, 2), np.nan), "NaN/inf"),
        (lambda f: f["rewards"].__setitem__(7, np.inf), "NaN/inf"),
        (lambda f: f.attrs.__delitem__("metadata_json"), "metadata_json"),
        (lambda f: (f.__delitem__("terminals"),
                    f.create_dataset("terminals", data=np.zeros(50, np.float32))), "dtype"),
    ],
)
def test_corrupted_files_raise_user_errors_naming_the_file(tmp_path: Path, edit, message) -> None:
    path = save_agent_dataset(_dataset(0), tmp_path / "agent_0.h5")
    _corrupt(path, edit)
    with pytest.raises(UserError, match=message) as error:
        load_agent_dataset(path)
    assert str(path) in str(error.value)


def test_truncated_file_raises_user_error(tmp_path: Path) -> None:
    path = save_agent_dataset(_dataset(0, length=400), tmp_path / "agent_0.h5")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="truncated or corrupt") as error:
        load_agent_dataset(path)
    assert str(path) in str(error.value)


def test_user_arrays_go_through_the_same_validation(tmp_path: Path) -> None:
    good = _dataset(0)
    with pytest.raises(UserError, match="agent 0 of hopper-3x1 owns 1"):
        dataset_from_arrays(good.observations, np.zeros((50, 3)), good.rewards,
                            good.next_observations, good.terminals, task="hopper-3x1",
                            agent=0, n_agents=3)
    with pytest.raises(UserError, match="n_agents=2"):
        dataset_from_arrays(good.observations, good.actions, good.rewards,
                            good.next_observations, good.terminals, task="hopper-3x1",
                            agent=0, n_agents=2)
    path = tmp_path / "mine.npz"
    np.savez(path, observations=good.observations.astype(np.float64), actions=good.actions,
             rewards=good.rewards, next_observations=good.next_observations,
             terminals=good.terminals)
    loaded = load_npz(path, task="hopper-3x1", agent=0, n_agents=3)
    assert loaded.observations.dtype == np.float32 and not loaded.timeouts.any()
    np.savez(path, observations=good.observations, rewards=good.rewards)
    with pytest.raises(UserError, match="missing arrays actions"):
        load_npz(path, task="hopper-3x1", agent=0, n_agents=3)
