"""Importers on files written the way each peer's own code writes them (issue 20).

Each test knows the joint action in the single-agent env's actuator order and writes every
agent's action the way the peer's code would have split it (Gymnasium-Robotics' MaMuJoCo
itself; multiagent_mujoco v1.1's parts table, OG-MARL's `mamujoco`; v1.0's concatenation in
agent order, OMAR and OMIGA); the imported file of mabcq agent i must then hold exactly the
joint action's slice of agent i. Observations, rewards and terminals are checked by value too.
Layouts and the peers' files that define them: docs/data_formats.md.
"""

import warnings
from pathlib import Path

import gymnasium as gym
import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mabcq.cli import main
from mabcq.data.io import load_dataset_dir
from mabcq.envs.tasks import TASKS, quiet_mamujoco

TASK_NAMES = ("halfcheetah-2x3", "walker2d-2x3", "hopper-3x1", "ant-4x2")
# The peers' names of these tasks (OG-MARL's vault scenarios, the old envs' ids).
OGMARL_SCENARIO = {"halfcheetah-2x3": "2halfcheetah", "walker2d-2x3": "2walker",
                   "hopper-3x1": "3hopper", "ant-4x2": "4ant"}
V2_ID = {"halfcheetah-2x3": "HalfCheetah-v2", "walker2d-2x3": "Walker2d-v2",
         "hopper-3x1": "Hopper-v2", "ant-4x2": "Ant-v2"}
# multiagent_mujoco's obsk.py, typed from its parts: the actuator each agent's dims drive.
V11_ACTUATORS = {"halfcheetah-2x3": [[2, 1, 0], [5, 4, 3]], "walker2d-2x3": [[2, 1, 0], [5, 4, 3]],
                 "hopper-3x1": [[0], [1], [2]], "ant-4x2": [[2, 3], [4, 5], [6, 7], [0, 1]]}
ANT_V2_STATE = 111  # qpos[2:] 13, qvel 14, clipped contact forces 14 x 6


def _one_line_error(capsys: pytest.CaptureFixture, argv: list[str], expected: str) -> None:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mabcq: error: ") and expected in err, err
    assert "Traceback" not in err


def _check_files(out: Path, task_name: str, joint: np.ndarray, states: np.ndarray,
                 rewards: np.ndarray, terminals: np.ndarray, *, exact: bool = True) -> None:
    """Every agent's file: the joint action's slice, the task's state, shared reward and
    terminal flags, row for row."""
    task = TASKS[task_name]
    datasets = load_dataset_dir(out)
    assert len(datasets) == task.n_agents
    for agent, dataset in enumerate(datasets):
        start, stop = task.action_slices[agent]
        np.testing.assert_array_equal(dataset.actions, joint[:, start:stop].astype(np.float32))
        compare = np.testing.assert_array_equal if exact else (
            lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5))
        compare(dataset.observations, states[:, :task.state_dim].astype(np.float32))
        np.testing.assert_array_equal(dataset.rewards, rewards.astype(np.float32))
        np.testing.assert_array_equal(dataset.terminals, terminals.astype(bool))
        assert dataset.metadata["action_slice"] == [start, stop]
        assert dataset.metadata["obs"] == "state"


# ---------------------------------------------------------------- OG-MARL, gymnasium_mamujoco


def _record_mamujoco(task_name: str, steps: int, seed: int = 0) -> dict:
    """Step Gymnasium-Robotics' MaMuJoCo (what OG-MARL's gymnasium_mamujoco.py wraps) with
    known joint actions, keeping what OG-MARL's FlashbaxReplayBuffer.add stores per step:
    o_t (zero-padded to the largest agent's size, as wrappers.py PadObsandActs does), a_t,
    r_t, terminal, truncation (agents stacked on axis 0) and infos state at t."""
    task = TASKS[task_name]
    with quiet_mamujoco(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from gymnasium_robotics import mamujoco_v1

        env = mamujoco_v1.parallel_env(task.mamujoco_scenario, task.mamujoco_conf,
                                       agent_obsk=1)
    rng = np.random.default_rng(seed)
    observations, _ = env.reset(seed=seed)
    state = env.state()
    rows: dict[str, list] = {name: [] for name in ("observations", "actions", "rewards",
                                                   "terminals", "truncations", "state",
                                                   "joint")}
    for _ in range(steps):
        joint = rng.uniform(-1, 1, task.joint_action_dim).astype(np.float32)
        actions = env.map_global_action_to_local_actions(joint)
        next_observations, rewards, terminals, truncations, _ = env.step(actions)
        width = max(len(value) for value in observations.values())
        observations = {agent: np.pad(value, (0, width - len(value)))
                        for agent, value in observations.items()}
        for name, value in (("observations", observations), ("actions", actions),
                            ("rewards", rewards), ("terminals", terminals),
                            ("truncations", truncations)):
            rows[name].append(np.stack([np.asarray(value[agent], np.float32 if name in (
                "observations", "actions", "rewards") else bool) for agent in env.agents]))
        rows["state"].append(state.astype(np.float32))
        rows["joint"].append(joint)
        if any(terminals.values()):
            next_observations, _ = env.reset()
        observations, state = next_observations, env.state()
    env.close()
    return {name: np.stack(value) for name, value in rows.items()}


def _write_vault(root: Path, source_env: str, scenario: str, recorded: dict,
                 uid: str = "Good") -> Path:
    """A Flashbax trajectory buffer (add_batch_size 1, one step added at a time, as
    FlashbaxReplayBuffer does) written to a Vault at root/og_marl/ENV/SCENARIO.vlt/UID."""
    import flashbax as fbx
    from flashbax.vault import Vault

    experience = {name: recorded[name] for name in ("observations", "actions", "rewards",
                                                    "terminals", "truncations")}
    experience["infos"] = {"state": recorded["state"]}
    steps = len(recorded["rewards"])
    buffer = fbx.make_trajectory_buffer(add_batch_size=1, sample_batch_size=1,
                                        sample_sequence_length=1, period=1,
                                        min_length_time_axis=1,
                                        max_length_time_axis=steps + 8)
    state = buffer.init(jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf[0]), experience))
    add = jax.jit(buffer.add)
    for step in range(steps):
        state = add(state, jax.tree_util.tree_map(
            lambda leaf, t=step: jnp.asarray(leaf[t])[None, None], experience))
    name = f"og_marl/{source_env}/{scenario}.vlt"
    Vault(vault_name=name, experience_structure=state.experience, rel_dir=str(root),
          vault_uid=uid).write(state)
    return root / name / uid


@pytest.mark.parametrize("task_name", TASK_NAMES)
def test_ogmarl_gymnasium_mamujoco_vault(task_name: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    recorded = _record_mamujoco(task_name, steps=14)
    location = _write_vault(tmp_path / "vaults", "gymnasium_mamujoco",
                            OGMARL_SCENARIO[task_name], recorded)
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["data", "import", "og-marl", str(location), "--out", str(out),
                 "--task", task_name]) == 0
    err = capsys.readouterr().err
    kept = slice(0, -1)  # the stream's last row has no s' (the others are all transitions)
    _check_files(out, task_name, recorded["joint"][kept], recorded["state"][kept],
                 recorded["rewards"][kept, 0], recorded["terminals"][kept, 0])
    task = TASKS[task_name]
    for agent, dataset in enumerate(load_dataset_dir(out)):
        source = dataset.metadata["source"]
        assert source["writer"] == "gymnasium-robotics-mamujoco"
        assert source["source_action_actuators"] == list(task.mamujoco_order[agent])
        assert source["recorded_on"] == f"vault og_marl/gymnasium_mamujoco/" \
                                        f"{OGMARL_SCENARIO[task_name]}"
    if task_name == "ant-4x2":  # Gymnasium-Robotics' Ant-v5 state has 78 contact forces
        assert recorded["state"].shape[-1] == 105
        assert err.count("mabcq: note: ") == 1 and "dropped the 78 contact-force dims" in err
    else:
        assert err == ""
    if task_name == "walker2d-2x3":  # the case of issue 20: MaMuJoCo's local order differs
        assert not np.array_equal(recorded["actions"][:, 0], recorded["joint"][:, 0:3])


def test_ogmarl_vault_identity_and_local_refused(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    recorded = _record_mamujoco("walker2d-2x3", steps=4)
    walker = _write_vault(tmp_path / "vaults", "gymnasium_mamujoco", "2walker", recorded)
    elsewhere = tmp_path / "copy" / "Good"
    elsewhere.parent.mkdir()
    walker.rename(elsewhere)
    walker = _write_vault(tmp_path / "vaults", "gymnasium_mamujoco", "2walker", recorded)
    out = tmp_path / "never"
    base = ["data", "import", "og-marl"]
    _one_line_error(capsys, [*base, str(walker), "--out", str(out), "--task", "halfcheetah-2x3"],
                    "recorded on Walker2d 2x3 (vault og_marl/gymnasium_mamujoco/2walker), not "
                    "on halfcheetah-2x3")
    _one_line_error(capsys, [*base, str(walker), "--out", str(out), "--task", "walker2d-2x3",
                             "--obs", "local"], "--obs state, where it has one")
    _one_line_error(capsys, [*base, str(elsewhere), "--out", str(out), "--task", "walker2d-2x3"],
                    "cannot tell which OG-MARL environment wrote this vault")
    assert not out.exists()
    # a name of one's own: kept as the source holds it (MaMuJoCo's local order), recorded so
    assert main([*base, str(elsewhere), "--out", str(out), "--task", "my-walker"]) == 0
    agent0 = load_dataset_dir(out)[0]
    np.testing.assert_array_equal(agent0.actions, recorded["actions"][:-1, 0])


# ---------------------------------------------------------------- OG-MARL, mamujoco (v1.1)


def _fake_v2_states(task_name: str, steps: int, rng: np.random.Generator) -> np.ndarray:
    """[steps + 1, D] states in the old envs' layout (Ant-v2: the task's 27 plus 84 contact
    forces); values are arbitrary, the layout is what is tested."""
    dim = ANT_V2_STATE if task_name == "ant-4x2" else TASKS[task_name].state_dim
    return rng.normal(size=(steps + 1, dim)).astype(np.float32)


@pytest.mark.parametrize("task_name", ["halfcheetah-2x3", "ant-4x2"])
def test_ogmarl_mamujoco_v11_vault(task_name: str, tmp_path: Path,
                                   capsys: pytest.CaptureFixture) -> None:
    """OG-MARL's `mamujoco` source (2halfcheetah, 4ant): multiagent_mujoco v1.1 puts agent k's
    dim d on actuator parts[k][d]; HalfCheetah's parts list the foot first."""
    rng = np.random.default_rng(5)
    steps, task = 10, TASKS[task_name]
    joint = rng.uniform(-1, 1, (steps, task.joint_action_dim)).astype(np.float32)
    states = _fake_v2_states(task_name, steps - 1, rng)
    terminals = np.zeros((steps, task.n_agents), bool)
    terminals[4] = True
    recorded = {
        "observations": rng.normal(size=(steps, task.n_agents, 5)).astype(np.float32),
        "actions": np.stack([joint[:, order] for order in V11_ACTUATORS[task_name]], axis=1),
        "rewards": np.repeat(rng.normal(size=(steps, 1)), task.n_agents, 1).astype(np.float32),
        "terminals": terminals, "truncations": np.zeros((steps, task.n_agents), bool),
        "state": states}
    location = _write_vault(tmp_path / "vaults", "mamujoco", OGMARL_SCENARIO[task_name],
                            recorded)
    out = tmp_path / "out"
    assert main(["data", "import", "og-marl", str(location), "--out", str(out),
                 "--task", task_name]) == 0
    next_rows = [1, 2, 3, 4, 4, 6, 7, 8, 9]  # row 4 terminal: s' = s; row 9 (last) dropped
    _check_files(out, task_name, joint[:-1], states[:-1], recorded["rewards"][:-1, 0],
                 terminals[:-1, 0])
    for dataset in load_dataset_dir(out):
        np.testing.assert_array_equal(dataset.next_observations,
                                      states[next_rows, :task.state_dim])
        assert dataset.metadata["source"]["writer"] == "multiagent_mujoco-1.1"
    assert ("dropped the 84 contact-force dims" in capsys.readouterr().err) == \
        (task_name == "ant-4x2")


# ---------------------------------------------------------------- OMAR (v1.0)


def _v10_actions(task_name: str, joint: np.ndarray) -> list[np.ndarray]:
    """multiagent_mujoco v1.0 (OMAR's and OMIGA's copies) concatenates the agents' vectors in
    agent order: agent k's vector is the joint action's k-th block of its size."""
    sizes = [len(order) for order in V11_ACTUATORS[task_name]]
    bounds = np.cumsum([0, *sizes])
    return [joint[:, bounds[k]:bounds[k + 1]] for k in range(len(sizes))]


def _write_omar(directory: Path, task_name: str, steps: int = 20) -> dict:
    """OMAR's per-agent files (utils/buffer.py load_batch_data) in
    datasets/ENV/DATA_TYPE/seed_S_data, ENV the old env's id, states in the v2 layout."""
    rng = np.random.default_rng(7)
    task = TASKS[task_name]
    directory.mkdir(parents=True)
    joint = rng.uniform(-1, 1, (steps, task.joint_action_dim)).astype(np.float32)
    states = _fake_v2_states(task_name, steps, rng)
    rewards = rng.normal(size=steps).astype(np.float32)
    dones = np.zeros(steps)
    dones[11] = 1
    for k, actions in enumerate(_v10_actions(task_name, joint)):
        arrays = {"obs": rng.normal(size=(steps, 4)), "acs": actions, "rews": rewards,
                  "next_obs": rng.normal(size=(steps, 4)), "dones": dones,
                  "states": states[:-1], "next_states": states[1:]}
        for name, array in arrays.items():
            np.save(directory / f"{name}_{k}.npy", array)
    return {"joint": joint, "states": states, "rewards": rewards, "dones": dones}


@pytest.mark.parametrize("task_name", TASK_NAMES)
def test_omar_files(task_name: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    directory = tmp_path / "datasets" / V2_ID[task_name] / "expert" / "seed_0_data"
    written = _write_omar(directory, task_name)
    out = tmp_path / "out"
    assert main(["data", "import", "omar", str(directory), "--out", str(out),
                 "--task", task_name]) == 0
    _check_files(out, task_name, written["joint"], written["states"][:-1], written["rewards"],
                 written["dones"])
    datasets = load_dataset_dir(out)
    for dataset in datasets:
        task = TASKS[task_name]
        np.testing.assert_array_equal(dataset.next_observations,
                                      written["states"][1:, :task.state_dim])
        assert dataset.metadata["source"]["writer"] == "multiagent_mujoco-1.0"
        assert dataset.metadata["source"]["recorded_on"] == f"directory {V2_ID[task_name]}"
    if task_name == "ant-4x2":  # v1.0's agent 0 drives the fourth leg: mabcq's agent 3
        assert [d.metadata["source"]["agent_key"] for d in datasets] == ["1", "2", "3", "0"]
    other = "hopper-3x1" if task_name != "hopper-3x1" else "walker2d-2x3"
    scenario = TASKS[task_name].mamujoco_scenario
    _one_line_error(capsys, ["data", "import", "omar", str(directory), "--out",
                             str(tmp_path / "never"), "--task", other],
                    f"recorded on {scenario} (directory {V2_ID[task_name]}), not on {other}")
    _one_line_error(capsys, ["data", "import", "omar", str(directory), "--out",
                             str(tmp_path / "never"), "--task", task_name, "--obs", "local"],
                    f"--obs local with {task_name}")


# ---------------------------------------------------------------- OMIGA (v1.0)


def _omiga_vectors(states: np.ndarray, n_agents: int) -> np.ndarray:
    """OMIGA's get_state/get_obs (envs/ma_mujoco/multiagent_mujoco/mujoco_multi.py): agent
    i's vector [state, one-hot(i)], z-scored by its own mean and std."""
    vectors = []
    for agent in range(n_agents):
        one_hot = np.zeros((len(states), n_agents))
        one_hot[:, agent] = 1
        vector = np.concatenate([states, one_hot], axis=1)
        mean, std = vector.mean(axis=1, keepdims=True), vector.std(axis=1, keepdims=True)
        vectors.append((vector - mean) / std)
    return np.stack(vectors, axis=1)


def _write_omiga(path: Path, task_name: str, steps: int = 16) -> dict:
    rng = np.random.default_rng(9)
    task = TASKS[task_name]
    states = rng.normal(size=(steps, ANT_V2_STATE if task_name == "ant-4x2" else
                              task.state_dim)) * 3
    joint = rng.uniform(-1, 1, (steps, task.joint_action_dim))
    done = np.zeros((steps, 1))
    done[7] = 1
    arrays = {"s": _omiga_vectors(states, task.n_agents),
              "o": _omiga_vectors(states, task.n_agents),
              "a": np.stack(_v10_actions(task_name, joint), axis=1),
              "r": rng.normal(size=(steps, 1)), "d": done}
    with h5py.File(path, "w") as file:
        for key, value in arrays.items():
            file.create_dataset(key, data=value.astype(np.float32))
    return {"states": states, "joint": joint.astype(np.float32), "r": arrays["r"][:, 0],
            "d": done[:, 0]}


@pytest.mark.parametrize("task_name", TASK_NAMES)
def test_omiga_files(task_name: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    task = TASKS[task_name]
    path = tmp_path / f"{V2_ID[task_name]}-{task.mamujoco_conf}-expert.hdf5"
    written = _write_omiga(path, task_name)
    out = tmp_path / "out"
    assert main(["data", "import", "omiga", str(path), "--out", str(out),
                 "--task", task_name]) == 0
    kept = [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14]  # OMIGA's own rule (loader)
    _check_files(out, task_name, written["joint"][kept], written["states"][kept],
                 written["r"][kept].astype(np.float32), written["d"][np.add(kept, 1)],
                 exact=False)
    layout = load_dataset_dir(out)[0].metadata["source"]["state_layout"]
    assert layout["agent_id"] == "one-hot, stripped" and "z-scored" in layout["normalization"]
    assert layout["agents_max_gap"] < 1e-4
    other = "ant-4x2" if task_name != "ant-4x2" else "hopper-3x1"
    _one_line_error(capsys, ["data", "import", "omiga", str(path), "--out",
                             str(tmp_path / "never"), "--task", other],
                    f"(file name {path.name}), not on {other}")


def test_omiga_scaling_that_cannot_be_undone_is_refused(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    """z-scored with the dataset's column statistics, which the file does not hold."""
    path = tmp_path / "Hopper-v2-3x1-expert.hdf5"
    _write_omiga(path, "hopper-3x1")
    with h5py.File(path, "a") as file:
        raw = np.concatenate([np.random.default_rng(0).normal(size=(16, 3, 11)),
                              np.broadcast_to(np.eye(3), (16, 3, 3))], axis=2)
        scaled = (raw - raw.mean(axis=(0, 1))) / (raw.std(axis=(0, 1)) + 1e-3)
        file["s"][...] = scaled
    _one_line_error(capsys, ["data", "import", "omiga", str(path), "--out",
                             str(tmp_path / "never"), "--task", "hopper-3x1"],
                    "the scaling cannot be undone")


# ---------------------------------------------------------------- Minari (DataCollector)


def _collect_minari(env_id: str, ident: str, steps: int = 25, **kwargs) -> dict:
    """A Minari dataset recorded by Minari's DataCollector around the Gymnasium env (what
    Minari's own docs do), episodes cut at 10 steps."""
    import minari

    env = minari.DataCollector(gym.make(env_id, max_episode_steps=10, **kwargs))
    rng = np.random.default_rng(11)
    observation, _ = env.reset(seed=3)
    rows: dict[str, list] = {"obs": [], "act": [], "rew": [], "term": []}
    for _ in range(steps):
        action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        next_observation, reward, terminated, truncated, _ = env.step(action)
        for name, value in zip(rows, (observation, action, reward, terminated), strict=True):
            rows[name].append(value)
        observation = env.reset()[0] if terminated or truncated else next_observation
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env.create_dataset(ident)
    env.close()
    return {name: np.asarray(value) for name, value in rows.items()}


@pytest.mark.parametrize("task_name", TASK_NAMES)
def test_minari_datacollector(task_name: str, tmp_path: Path, capsys: pytest.CaptureFixture,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    task = TASKS[task_name]
    ident = f"peer/{task.mamujoco_scenario.lower()}/random-v0"
    rows = _collect_minari(task.gym_id, ident)  # Ant-v5's default: contact forces included
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["data", "import", "minari", ident, "--out", str(out),
                 "--task", task_name]) == 0
    err = capsys.readouterr().err
    _check_files(out, task_name, rows["act"], rows["obs"], rows["rew"], rows["term"],
                 exact=True)
    for dataset in load_dataset_dir(out):
        assert dataset.metadata["source"]["recorded_on"] == f"env_spec {task.gym_id}"
    assert ("dropped the 78 contact-force dims" in err) == (task_name == "ant-4x2")
    other = "halfcheetah-2x3" if task_name != "halfcheetah-2x3" else "walker2d-2x3"
    _one_line_error(capsys, ["data", "import", "minari", ident, "--out",
                             str(tmp_path / "never"), "--task", other],
                    f"(env_spec {task.gym_id}), not on {other}")


def test_ogmarl_experience_recorder_stale_state_refused(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    """OG-MARL's ExperienceRecorder (wrappers.py): a flat buffer of one dict entry per agent
    key, whose infos stay the reset's (it packs self._infos, step stores self._info)."""
    import flashbax as fbx
    from flashbax.vault import Vault

    rng = np.random.default_rng(13)
    keys = [f"agent_{i}" for i in range(3)]
    reset_state = rng.normal(size=11).astype(np.float32)
    buffer = fbx.make_flat_buffer(max_length=20, min_length=1, sample_batch_size=1)
    add = jax.jit(buffer.add)
    state = None
    for _ in range(6):
        timestep = {"observations": {key: rng.normal(size=9).astype(np.float32) for key in keys},
                    "actions": {key: rng.uniform(-1, 1, 1).astype(np.float32) for key in keys},
                    "rewards": {key: np.float32(1.0) for key in keys},
                    "terminals": {key: np.array(False) for key in keys},
                    "truncations": {key: np.array(False) for key in keys},
                    "infos": {"state": reset_state}}  # the reset's, at every step
        timestep = jax.tree_util.tree_map(jnp.asarray, timestep)
        state = buffer.init(timestep) if state is None else state
        state = add(state, timestep)
    name = "og_marl/gymnasium_mamujoco/3hopper.vlt"
    Vault(vault_name=name, experience_structure=state.experience,
          rel_dir=str(tmp_path / "vaults"), vault_uid="recorded").write(state)
    _one_line_error(capsys, ["data", "import", "og-marl", str(tmp_path / "vaults" / name),
                             "--out", str(tmp_path / "never"), "--task", "hopper-3x1"],
                    "infos.state never changes within an episode")


def test_known_task_bad_shapes_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    directory = tmp_path / "datasets" / "Hopper-v2" / "expert" / "seed_0_data"
    _write_omar(directory, "hopper-3x1")
    np.save(directory / "acs_1.npy", np.zeros(20))  # [T], not [T, 1]
    base = ["data", "import", "omar", str(directory), "--out", str(tmp_path / "never")]
    _one_line_error(capsys, [*base, "--task", "hopper-3x1"], "expected rank 2")
    np.save(directory / "acs_1.npy", np.zeros((20, 2)))
    _one_line_error(capsys, [*base, "--task", "hopper-3x1"],
                    "source agent 1 has 2 action dims, multiagent_mujoco-1.0 gives it 1")
    np.save(directory / "acs_1.npy", np.zeros((20, 1)))
    np.save(directory / "states_2.npy", np.zeros((20, 12)))
    _one_line_error(capsys, [*base, "--task", "hopper-3x1"],
                    "states have 12 dims, hopper-3x1's state has 11")
    assert not (tmp_path / "never").exists()
