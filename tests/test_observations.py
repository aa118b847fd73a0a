"""Local observations (issue 11 part 3): ours equal MaMuJoCo's own, from the same simulator.

MaMuJoCo's parallel_env builds each agent's observation (agent_obsk = K) from its simulator
data; ours is compiled from MaMuJoCo's description into a gather over [qpos, qvel]. From the
same simulator state (random positions, velocities large enough to hit the clips) the vectors
must be equal, for every task and K in 0..2. Ant: MaMuJoCo's own builder fails for Ant without
contact forces with its default categories, so it is compared with those categories minus
cfrc_ext (the ones that exist without contact forces), which MaMuJoCo does build.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest

from mabcq.envs.observations import local_observer, observation_dims, observation_spec
from mabcq.envs.rollout import episode_seed, run_episodes
from mabcq.envs.tasks import TASKS, get_task
from mabcq.errors import UserError


def mamujoco_env(task, k: int):
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()), \
            contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        from gymnasium_robotics.envs.multiagent_mujoco import mujoco_multi

        extra = dict(task.env_kwargs)
        if task.mamujoco_scenario == "Ant":
            extra["local_categories"] = [["qpos", "qvel"]] + [["qpos"]] * k
        return mujoco_multi.parallel_env(task.mamujoco_scenario, task.mamujoco_conf,
                                         agent_obsk=k, **extra)


@pytest.mark.parametrize("k", [0, 1, 2])
@pytest.mark.parametrize("name", sorted(TASKS))
def test_local_observation_equals_mamujoco(name: str, k: int) -> None:
    task = get_task(name)
    observer = local_observer(name, k)
    theirs_env = mamujoco_env(task, k)
    theirs_env.reset(seed=k)
    sim = theirs_env.single_agent_env.unwrapped
    assert observer.dims == tuple(theirs_env.observation_space(agent).shape[0]
                                  for agent in theirs_env.possible_agents)
    rng = np.random.default_rng([k, len(name)])
    clipped = 0
    for _ in range(12):
        sim.set_state(sim.init_qpos + rng.normal(size=sim.model.nq),
                      rng.normal(scale=15.0, size=sim.model.nv))
        clipped += int(np.abs(sim.data.qvel).max() > 10)
        theirs = theirs_env._get_obs()
        ours = observer.split(observer.observe64(sim.data.qpos, sim.data.qvel))
        for agent, own in zip(theirs_env.possible_agents, ours, strict=True):
            np.testing.assert_array_equal(own, theirs[agent])
        np.testing.assert_array_equal(observer.observe_env(sim),
                                      np.concatenate(list(theirs.values())).astype(np.float32))
    assert clipped  # velocities beyond Hopper's +-10 clip were compared
    theirs_env.close()


def test_rollout_records_what_mamujoco_steps_to() -> None:
    """run_episodes' recorded local observations = MaMuJoCo stepped with the same seed and
    actions (here a fixed open-loop action per agent)."""
    task = get_task("hopper-3x1")
    observer = local_observer(task.name, 1)
    actions = [np.full(task.agent_action_dim(i), 0.3 * (i - 1)) for i in range(task.n_agents)]
    policies = [lambda states, a=a: np.tile(a, (states.shape[0], 1)) for a in actions]
    ours = run_episodes(task, policies, 1, seed=5, max_steps=30, observer=observer)
    theirs_env = mamujoco_env(task, 1)
    observations, _ = theirs_env.reset(seed=episode_seed(5, 0))
    rows = []
    for _ in range(len(ours)):
        before = np.concatenate(list(observations.values()))
        action = {agent: actions[i].astype(np.float32)
                  for i, agent in enumerate(theirs_env.possible_agents)}
        observations, *_ = theirs_env.step(action)
        rows.append((before, np.concatenate(list(observations.values()))))
    np.testing.assert_array_equal(ours.local_observations,
                                  np.stack([r[0] for r in rows]).astype(np.float32))
    np.testing.assert_array_equal(ours.local_next_observations,
                                  np.stack([r[1] for r in rows]).astype(np.float32))
    assert ours.local_observations.shape == (len(ours), sum(observer.dims))


def test_ant_without_contact_forces_shapes() -> None:
    """Ant (27-dim state, no cfrc_ext): each leg agent sees its hip and ankle (qpos, qvel), the
    other hips' qpos at K=1 and the torso's qpos[2:7], qvel[:6]."""
    for k, dim in ((0, 15), (1, 18), (2, 21)):
        assert local_observer("ant-4x2", k).dims == (dim,) * 4
    observer = local_observer("ant-4x2", 1)
    assert observer.state_exact
    nq = 15
    own_hips = {int(s) for s in observer.split(observer.sources)[0][:4]}
    assert own_hips == {7, 8, nq + 6, nq + 7}  # hip1, ankle1 and their velocities
    for sources in observer.split(observer.sources):
        np.testing.assert_array_equal(sources[-11:], [*range(2, 7), *range(nq, nq + 6)])
    state = np.random.default_rng(0).normal(size=(4, 27)).astype(np.float32)
    local = observer.split(observer.from_states(state))
    assert [part.shape for part in local] == [(4, 18)] * 4 and all(
        np.isfinite(part).all() for part in local)


def test_walker_state_clips_what_mamujoco_does_not() -> None:
    """Walker2d-v5's state clips velocities at +-10, MaMuJoCo's local view does not: the
    projection of a state is marked inexact there and exact for the other tasks."""
    assert not local_observer("walker2d-2x3", 1).state_exact
    assert all(local_observer(name, 1).state_exact for name in TASKS if name != "walker2d-2x3")


def test_specs_and_dims() -> None:
    assert observation_dims(get_task("hopper-3x1"), observation_spec("local")) == (8, 9, 8)
    assert observation_dims(get_task("hopper-3x1"), observation_spec()) == (11, 11, 11)
    assert observation_spec("local").k == 1
    with pytest.raises(UserError, match="obsk"):
        observation_spec("global", 2)
    with pytest.raises(UserError, match="observation mode"):
        observation_spec("partial")


def test_loader_takes_each_local_files_own_size(tmp_path) -> None:
    """Local files (ours or an importer's) keep their own sizes; one directory, one kind."""
    from mabcq.data.io import dataset_from_arrays, load_dataset_dir, save_dataset_dir

    rng = np.random.default_rng(0)

    def dataset(agent: int, dim: int, metadata: dict):
        obs = rng.normal(size=(10, dim))
        return dataset_from_arrays(obs, rng.uniform(-1, 1, (10, 1)), np.zeros(10), obs,
                                   np.zeros(10, bool), task="hopper-3x1", agent=agent,
                                   n_agents=3, metadata=metadata)

    local = {"obs": "local", "obsk": 1}
    save_dataset_dir([dataset(i, dim, local) for i, dim in enumerate((4, 7, 5))], tmp_path / "a")
    assert [d.state_dim for d in load_dataset_dir(tmp_path / "a")] == [4, 7, 5]
    save_dataset_dir([dataset(0, 4, local), dataset(1, 11, {}), dataset(2, 5, local)],
                     tmp_path / "b")
    with pytest.raises(UserError, match="agent_1.h5: observations global differ"):
        load_dataset_dir(tmp_path / "b")
    save_dataset_dir([dataset(i, dim, {"obs": "local"}) for i, dim in enumerate((4, 7, 5))],
                     tmp_path / "c")  # an importer's files: K not recorded
    assert [d.state_dim for d in load_dataset_dir(tmp_path / "c")] == [4, 7, 5]
    assert dataset(0, 11, {"obs": "state"}).state_dim == 11  # the importers' word for global
    with pytest.raises(UserError, match="obsk"):
        dataset(0, 4, {"obs": "local", "obsk": -1})
    with pytest.raises(UserError, match="state_dim 11"):
        dataset(0, 4, {})  # global files are still checked against the task
