"""`mabcq data import omar|omiga|og-marl` on small files written in each source's own layout
(docs/data_formats.md): each agent keeps its own action only, observations are the state or the
agent's own, the metadata names the source, and bad input exits 2 with one line."""

from pathlib import Path

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mabcq.cli import main
from mabcq.data.io import load_agent_dataset, load_dataset_dir
from mabcq.data.schema import ARRAY_FIELDS

# Other agents' actions are this value everywhere, so a file that stored them would show it.
OTHER_ACTION = 0.625


def _no_other_actions(path: Path) -> None:
    with h5py.File(path) as file:
        for name in ARRAY_FIELDS:
            assert not np.isclose(np.asarray(file[name][()], np.float64), OTHER_ACTION).any(), \
                name
        assert sorted(file) == sorted(ARRAY_FIELDS)


# ---------------------------------------------------------------- OMAR


def _write_omar(directory: Path, steps: int = 40, states: bool = True) -> dict:
    """Two agents with local observations of 3 and 5 dims and an 8-dim state; an episode
    boundary (reset) after row 19 without a done flag, a done at row 29."""
    rng = np.random.default_rng(1)
    directory.mkdir(parents=True)
    state = rng.normal(size=(steps + 1, 8)).astype(np.float32)
    state[20] = rng.normal(size=8)  # the row after 19 starts a new episode
    next_state = state[1:].copy()
    next_state[19] = rng.normal(size=8)  # s' of row 19 is not row 20's s
    written = {"state": state[:steps], "next_state": next_state}
    for agent, dim in enumerate((3, 5)):
        obs = rng.normal(size=(steps + 1, dim)).astype(np.float32)
        actions = rng.uniform(-1, 1, size=(steps, 1)).astype(np.float32)
        dones = np.zeros(steps)
        dones[29] = 1
        arrays = {"obs": obs[:steps], "acs": actions, "rews": rng.normal(size=steps),
                  "next_obs": obs[1:], "dones": dones}
        if states:
            arrays |= {"states": written["state"], "next_states": next_state}
        for name, array in arrays.items():
            np.save(directory / f"{name}_{agent}.npy", array)
        written[agent] = arrays
    return written


def test_omar_local_and_state_observations(tmp_path: Path) -> None:
    written = _write_omar(tmp_path / "omar")
    local = tmp_path / "local"
    assert main(["data", "import", "omar", str(tmp_path / "omar"), "--out", str(local),
                 "--task", "my-spread", "--obs", "local"]) == 0
    datasets = load_dataset_dir(local)
    assert [d.state_dim for d in datasets] == [3, 5]  # per-file observation dims
    for agent, dataset in enumerate(datasets):
        np.testing.assert_array_equal(dataset.observations, written[agent]["obs"])
        np.testing.assert_array_equal(dataset.actions, written[agent]["acs"])
        np.testing.assert_array_equal(dataset.rewards, written[agent]["rews"].astype(np.float32))
        assert dataset.metadata["obs"] == "local" and dataset.metadata["task"] == "my-spread"
        assert dataset.metadata["source"]["format"] == "omar"
        assert dataset.metadata["source"]["agent_key"] == str(agent)
        assert np.flatnonzero(dataset.terminals).tolist() == [29]
        assert dataset.timeouts[-1] and dataset.timeouts.sum() == 1  # obs are continuous

    state = tmp_path / "state"  # default with states_{i}.npy: the state, a known task
    assert main(["data", "import", "omar", str(tmp_path / "omar"), "--out", str(state),
                 "--task", "swimmer-2x1"]) == 0
    for dataset in load_dataset_dir(state):
        np.testing.assert_array_equal(dataset.observations, written["state"])
        np.testing.assert_array_equal(dataset.next_observations, written["next_state"])
        assert dataset.metadata["obs"] == "state"
        assert dataset.metadata["action_slice"] == [dataset.metadata["agent"],
                                                    dataset.metadata["agent"] + 1]
        # the reset after row 19 ends an episode there (a timeout: s' still bootstraps)
        assert np.flatnonzero(dataset.timeouts).tolist() == [19, 39]


# ---------------------------------------------------------------- OMIGA


def _write_omiga(path: Path, steps: int = 12) -> dict:
    """s [T, 2, 8], o [T, 2, 4], a [T, 2, 1] (agent 1's actions all OTHER_ACTION), r [T, 1],
    d [T, 1] with a done row at 6: rows 6 and 11 (the last) are no transitions; 5 is terminal."""
    rng = np.random.default_rng(2)
    state = np.repeat(rng.normal(size=(steps, 1, 8)), 2, axis=1)
    local = rng.normal(size=(steps, 2, 4))
    actions = np.concatenate([rng.uniform(-1, 1, size=(steps, 1, 1)),
                              np.full((steps, 1, 1), OTHER_ACTION)], axis=1)
    done = np.zeros((steps, 1))
    done[6] = 1
    arrays = {"s": state, "o": local, "a": actions, "r": rng.normal(size=(steps, 1)), "d": done}
    with h5py.File(path, "w") as file:
        for key, value in arrays.items():
            file.create_dataset(key, data=value)
    return arrays


def test_omiga_reads_like_omiga_and_keeps_own_action(tmp_path: Path) -> None:
    arrays = _write_omiga(tmp_path / "Swimmer-2x1-expert.hdf5")
    out = tmp_path / "out"
    assert main(["data", "import", "omiga", str(tmp_path / "Swimmer-2x1-expert.hdf5"),
                 "--out", str(out), "--task", "swimmer-2x1"]) == 0
    kept = [0, 1, 2, 3, 4, 5, 7, 8, 9, 10]
    agent0 = load_agent_dataset(out / "agent_0.h5")
    np.testing.assert_array_equal(agent0.observations, arrays["s"][kept, 0].astype(np.float32))
    np.testing.assert_array_equal(agent0.next_observations,
                                  arrays["s"][np.add(kept, 1), 0].astype(np.float32))
    np.testing.assert_array_equal(agent0.actions, arrays["a"][kept, 0].astype(np.float32))
    assert np.flatnonzero(agent0.terminals).tolist() == [5]
    assert np.flatnonzero(agent0.timeouts).tolist() == [9]
    assert agent0.metadata["source"] | {"path": None} == {
        "format": "omiga", "path": None, "agent_key": "0", "rows": 12,
        "writer": "multiagent_mujoco-1.0", "source_action_actuators": [0],
        "source_action_columns": [0]}
    _no_other_actions(out / "agent_0.h5")

    local = tmp_path / "local"
    assert main(["data", "import", "omiga", str(tmp_path / "Swimmer-2x1-expert.hdf5"),
                 "--out", str(local), "--task", "omiga-swimmer", "--obs", "local"]) == 0
    agent1 = load_agent_dataset(local / "agent_1.h5")
    np.testing.assert_array_equal(agent1.observations, arrays["o"][kept, 1].astype(np.float32))
    assert agent1.metadata["obs"] == "local"


# ---------------------------------------------------------------- OG-MARL (Flashbax vaults)


def _write_vault(root: Path, experience: dict, uid: str = "Good") -> Path:
    """Write `experience` (leaves [1, T, ...]) as OG-MARL does: a Flashbax trajectory buffer's
    state saved to a Vault at root/og_marl/test/scenario.vlt/UID."""
    import flashbax as fbx
    from flashbax.vault import Vault

    steps = jax.tree_util.tree_leaves(experience)[0].shape[1]
    buffer = fbx.make_trajectory_buffer(add_batch_size=1, sample_batch_size=1,
                                        sample_sequence_length=1, period=1,
                                        min_length_time_axis=1,
                                        max_length_time_axis=steps + 4)
    state = buffer.init(jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf[0, 0]), experience))
    state = buffer.add(state, jax.tree_util.tree_map(jnp.asarray, experience))
    vault = Vault(vault_name="og_marl/test/scenario.vlt", experience_structure=state.experience,
                  rel_dir=str(root), vault_uid=uid)
    vault.write(state)
    return root / "og_marl/test/scenario.vlt" / uid


def _stacked_experience(steps: int = 10) -> dict:
    """Two agents stacked on axis 2 (replay_buffers.py): row 3 terminal, row 6 truncated."""
    rng = np.random.default_rng(3)
    terminals = np.zeros((1, steps, 2), bool)
    terminals[0, 3] = True
    truncations = np.zeros((1, steps, 2), bool)
    truncations[0, 6] = True
    actions = np.concatenate([rng.uniform(-1, 1, (1, steps, 1, 2)),
                              np.full((1, steps, 1, 2), OTHER_ACTION)], axis=2)
    return {"observations": rng.normal(size=(1, steps, 2, 4)).astype(np.float32),
            "actions": actions.astype(np.float32),
            "rewards": rng.normal(size=(1, steps, 2)).astype(np.float32),
            "terminals": terminals, "truncations": truncations,
            "infos": {"state": rng.normal(size=(1, steps, 6)).astype(np.float32)}}


def test_ogmarl_vault_rows_and_own_actions(tmp_path: Path, capsys) -> None:
    experience = _stacked_experience()
    location = _write_vault(tmp_path / "vaults", experience)
    out = tmp_path / "out"
    assert main(["data", "import", "og-marl", str(location.parent), "--uid", "Good",
                 "--out", str(out), "--task", "og-test"]) == 0
    # kept: 0-3 (3 terminal, s' = s), 4, 5 (timeout: row 6 truncated, dropped), 7, 8 (9: last)
    kept, next_rows = [0, 1, 2, 3, 4, 5, 7, 8], [1, 2, 3, 3, 5, 6, 8, 9]
    state = experience["infos"]["state"][0]
    for agent in range(2):
        dataset = load_agent_dataset(out / f"agent_{agent}.h5")
        np.testing.assert_array_equal(dataset.observations, state[kept])
        np.testing.assert_array_equal(dataset.next_observations, state[next_rows])
        np.testing.assert_array_equal(dataset.rewards, experience["rewards"][0, kept, agent])
        assert np.flatnonzero(dataset.terminals).tolist() == [3]
        assert np.flatnonzero(dataset.timeouts).tolist() == [5, 7]
        assert dataset.metadata["source"]["vault_uid"] == "Good"
        assert dataset.metadata["source"]["agent_key"] == str(agent)
        assert dataset.metadata["obs"] == "state"
    agent0 = load_agent_dataset(out / "agent_0.h5")
    np.testing.assert_array_equal(agent0.actions, experience["actions"][0, kept, 0])
    _no_other_actions(out / "agent_0.h5")

    local = tmp_path / "local"
    assert main(["data", "import", "og-marl", str(location), "--out", str(local),
                 "--task", "og-test", "--obs", "local"]) == 0
    agent1 = load_agent_dataset(local / "agent_1.h5")
    np.testing.assert_array_equal(agent1.observations, experience["observations"][0, kept, 1])
    assert agent1.metadata["obs"] == "local"


def test_ogmarl_per_agent_keys(tmp_path: Path) -> None:
    """ExperienceRecorder's layout (wrappers.py): one entry per agent key, no state."""
    stacked = _stacked_experience()
    keys = ["agent_0", "agent_1"]
    experience = {name: {key: stacked[name][:, :, index] for index, key in enumerate(keys)}
                  for name in ("observations", "actions", "rewards", "terminals",
                               "truncations")}
    location = _write_vault(tmp_path / "vaults", experience, uid="recorded")
    out = tmp_path / "out"
    assert main(["data", "import", "og-marl", str(location), "--out", str(out),
                 "--task", "og-test"]) == 0
    agent1 = load_agent_dataset(out / "agent_1.h5")
    assert agent1.metadata["source"]["agent_key"] == "agent_1"
    assert agent1.metadata["obs"] == "local"  # no infos.state: local is the default
    np.testing.assert_array_equal(agent1.observations[:3], stacked["observations"][0, :3, 1])


# ---------------------------------------------------------------- bad input


def test_bad_sources_exit_2_one_line_nothing_written(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    _write_omar(tmp_path / "omar", states=False)
    (tmp_path / "omar" / "dones_1.npy").unlink()
    omiga = tmp_path / "bad.hdf5"
    arrays = _write_omiga(omiga)
    with h5py.File(omiga, "a") as file:
        del file["a"]
        file.create_dataset("a", data=arrays["a"][:-1])
    nan_omiga = tmp_path / "nan.hdf5"
    _write_omiga(nan_omiga)
    with h5py.File(nan_omiga, "a") as file:
        file["o"][2, 0, 1] = np.nan
    (tmp_path / "not-a-vault").mkdir()
    out = tmp_path / "out"
    cases = [
        (["omar", str(tmp_path / "omar"), "--task", "t"], "dones_1.npy"),
        (["omar", str(tmp_path / "omar"), "--task", "t", "--obs", "state"], "states_"),
        (["omiga", str(omiga), "--task", "t"], "field 'a' has shape (11, 2, 1)"),
        (["omiga", str(nan_omiga), "--task", "t", "--obs", "local"],
         "field 'observations' has 1 NaN/inf"),
        (["omiga", str(nan_omiga), "--task", "hopper-3x1"], "task hopper-3x1 has 3"),
        (["og-marl", str(tmp_path / "not-a-vault"), "--task", "t"], "not a Flashbax vault"),
        (["omiga", str(omiga), "--task", "bad name"], "name of your own"),
    ]
    for argv, expected in cases:
        capsys.readouterr()
        assert main(["data", "import", *argv, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err and "Traceback" not in err, err
        assert err.startswith("mabcq: error: ")
        assert not out.exists()
