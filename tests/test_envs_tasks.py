"""Every task creates, steps, and splits its joint action exactly like MaMuJoCo."""

import contextlib
import io
import warnings

import numpy as np
import pytest

from mabcq.envs.tasks import TASKS, get_task, make_env, quiet_mujoco_warnings
from mabcq.errors import UserError

EXPECTED = {  # name: (state_dim, n_agents, joint_action_dim), from the paper / issue
    "halfcheetah-2x3": (17, 2, 6),
    "walker2d-2x3": (17, 2, 6),
    "hopper-3x1": (11, 3, 3),
    "ant-4x2": (27, 4, 8),
    "swimmer-2x1": (8, 2, 2),
}


def _mamujoco_env(task):
    with quiet_mujoco_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        from gymnasium_robotics import mamujoco_v1

        # Default observation options: MaMuJoCo's local observations need Ant's contact forces,
        # but the action partition does not depend on them.
        return mamujoco_v1.parallel_env(task.mamujoco_scenario, task.mamujoco_conf)


def test_task_table_matches_the_paper() -> None:
    assert set(TASKS) == set(EXPECTED)
    for name, (state_dim, n_agents, joint_dim) in EXPECTED.items():
        task = TASKS[name]
        assert (task.state_dim, task.n_agents, task.joint_action_dim) == (
            state_dim, n_agents, joint_dim)
        covered = sorted(i for start, stop in task.action_slices for i in range(start, stop))
        assert covered == list(range(joint_dim))
        assert task.horizon == 1000


def test_unknown_task_lists_known_names() -> None:
    with pytest.raises(UserError, match="hopper-3x1"):
        get_task("hopper-9x9")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_env_creates_steps_with_global_state(name: str) -> None:
    task = get_task(name)
    env = make_env(task, seed=0)
    assert env.action_space.low.min() == task.action_low
    assert env.action_space.high.max() == task.action_high
    assert env.action_space.shape == (task.joint_action_dim,)
    obs, _ = env.reset(seed=3)
    assert obs.shape == (task.state_dim,)
    obs, reward, *_ = env.step(np.zeros(task.joint_action_dim))
    assert obs.shape == (task.state_dim,) and np.isfinite(reward)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_split_and_join_agree_with_mamujoco(name: str) -> None:
    task = get_task(name)
    ma_env = _mamujoco_env(task)
    rng = np.random.default_rng(0)
    joint = rng.uniform(-1, 1, task.joint_action_dim)
    ours = task.split_action(joint)
    theirs = ma_env.map_global_action_to_local_actions(joint)
    for agent, agent_name in enumerate(ma_env.possible_agents):
        # Same actuators per agent; MaMuJoCo's local order is recorded in mamujoco_order.
        start, _ = task.action_slices[agent]
        order = np.asarray(task.mamujoco_order[agent]) - start
        np.testing.assert_array_equal(ours[agent][order], theirs[agent_name])
        assert ma_env.action_space(agent_name).shape == (task.agent_action_dim(agent),)
    np.testing.assert_array_equal(task.join_actions(ours), joint)
    local = {n: rng.uniform(-1, 1, task.agent_action_dim(i))
             for i, n in enumerate(ma_env.possible_agents)}
    ours_local = [np.empty_like(local[n]) for n in ma_env.possible_agents]
    for agent, agent_name in enumerate(ma_env.possible_agents):
        start, _ = task.action_slices[agent]
        ours_local[agent][np.asarray(task.mamujoco_order[agent]) - start] = local[agent_name]
    np.testing.assert_array_equal(
        task.join_actions(ours_local), ma_env.map_local_actions_to_global_action(local))


@pytest.mark.parametrize("name", ["ant-4x2", "walker2d-2x3"])
def test_stepping_matches_mamujoco_parallel_env(name: str) -> None:
    """Same seed and actions: our env and MaMuJoCo's reach the same MuJoCo state and reward."""
    task = get_task(name)
    ma_env = _mamujoco_env(task)
    ma_env.reset(seed=5)
    env = make_env(task)
    env.reset(seed=5)
    rng = np.random.default_rng(1)
    for _ in range(5):
        joint = rng.uniform(-1, 1, task.joint_action_dim)
        _, reward, *_ = env.step(joint)
        _, ma_rewards, *_ = ma_env.step(ma_env.map_global_action_to_local_actions(joint))
        assert reward == pytest.approx(ma_rewards[ma_env.possible_agents[0]])
    ma_data = ma_env.single_agent_env.unwrapped.data
    np.testing.assert_allclose(env.unwrapped.data.qpos, ma_data.qpos)
    np.testing.assert_allclose(env.unwrapped.data.qvel, ma_data.qvel)
