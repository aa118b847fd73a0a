"""run_episodes: decentralized policies joined, seeded, re-simulatable, budgeted."""

import numpy as np
import pytest

from mabcq.envs.rollout import (
    discounted_return_to_go,
    episode_seed,
    restore_physics_state,
    run_episodes,
)
from mabcq.envs.tasks import get_task, make_env


def _policies(task, seen: list | None = None):
    """Deterministic per-row policies: agent i's action is a fixed function of the state."""

    def make(agent: int):
        dim = task.agent_action_dim(agent)
        weights = 0.1 * np.random.default_rng(agent).normal(size=(task.state_dim, dim))

        def policy(states: np.ndarray) -> np.ndarray:
            assert states.shape[1] == task.state_dim
            if seen is not None:
                seen.append((agent, states.shape))
            return np.tanh(states @ weights)

        return policy

    return [make(i) for i in range(task.n_agents)]


def test_each_agent_sees_states_and_owns_its_slice() -> None:
    task = get_task("ant-4x2")
    seen: list = []
    result = run_episodes(task, _policies(task, seen), episodes=2, seed=0, max_steps=10,
                          num_envs=2)
    assert {agent for agent, _ in seen} == set(range(task.n_agents))
    expected = task.join_actions([p(result.observations) for p in _policies(task)])
    np.testing.assert_allclose(result.actions, np.clip(expected, -1, 1), atol=1e-6)
    assert result.observations.shape == (20, 27) and result.actions.shape == (20, 8)
    assert result.timeouts.sum() == 2 and list(result.episode_lengths) == [10, 10]


def test_same_seed_same_data_for_any_number_of_envs() -> None:
    task = get_task("hopper-3x1")
    a = run_episodes(task, _policies(task), episodes=3, seed=7, max_steps=50, num_envs=1,
                     action_noise=0.2)
    b = run_episodes(task, _policies(task), episodes=3, seed=7, max_steps=50, num_envs=3,
                     action_noise=0.2)
    c = run_episodes(task, _policies(task), episodes=3, seed=8, max_steps=50, num_envs=3,
                     action_noise=0.2)
    np.testing.assert_array_equal(a.observations, b.observations)
    np.testing.assert_array_equal(a.actions, b.actions)
    assert not np.array_equal(a.observations, c.observations)


def test_transition_budget_is_exact_and_episodes_are_flagged() -> None:
    task = get_task("walker2d-2x3")
    result = run_episodes(task, _policies(task), None, seed=1, transitions=123, num_envs=4)
    assert len(result) == 123 == result.episode_lengths.sum()
    ends = result.terminals | result.timeouts
    assert ends[-1] and ends.sum() == len(result.episode_lengths)
    # next state of a non-final step is the next row's state
    inner = ~ends[:-1]
    np.testing.assert_array_equal(result.next_observations[:-1][inner],
                                  result.observations[1:][inner])


def test_return_to_go_and_episode_returns() -> None:
    rewards = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(discounted_return_to_go(rewards, 0.5), [2.75, 3.5, 3.0])
    task = get_task("swimmer-2x1")
    result = run_episodes(task, _policies(task), episodes=2, seed=0, max_steps=30, gamma=0.9)
    first = result.rewards[:30].astype(np.float64)
    assert result.episode_returns[0] == pytest.approx(first.sum())
    assert result.discounted_returns[0] == pytest.approx(
        sum(0.9**k * r for k, r in enumerate(first)), rel=1e-5)


@pytest.mark.parametrize("name", ["halfcheetah-2x3", "hopper-3x1"])
def test_rewards_and_next_states_match_resimulation(name: str) -> None:
    task = get_task(name)
    result = run_episodes(task, _policies(task), episodes=1, seed=2, max_steps=40,
                          action_noise=0.1, record_physics=True)
    env = make_env(task, seed=0).unwrapped
    assert len(result) > 3
    for t in (0, len(result) // 2, len(result) - 1):
        restore_physics_state(env, result.physics_states[t])
        np.testing.assert_allclose(env._get_obs(), result.observations[t], rtol=1e-5, atol=1e-5)
        next_obs, reward, *_ = env.step(result.actions[t].astype(np.float64))
        assert reward == pytest.approx(float(result.rewards[t]), rel=1e-5, abs=1e-5)
        np.testing.assert_allclose(next_obs, result.next_observations[t], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["ant-4x2", "walker2d-2x3", "swimmer-2x1"])
def test_replaying_the_seeded_episode_reproduces_it(name: str) -> None:
    """Reset with the episode's seed and replay the logged actions: identical transitions.

    (Ant's reward reads the torso position MuJoCo computed one substep earlier, so restoring
    qpos/qvel alone reproduces its next state but its reward only to ~1e-2: replay instead.)
    """
    task = get_task(name)
    result = run_episodes(task, _policies(task), episodes=2, seed=4, max_steps=25,
                          action_noise=0.1, num_envs=2)
    env = make_env(task).unwrapped
    start = result.episode_lengths[0]  # replay the second episode
    obs, _ = env.reset(seed=episode_seed(4, 1))
    np.testing.assert_array_equal(obs.astype(np.float32), result.observations[start])
    for t in range(start, len(result)):
        obs, reward, terminated, *_ = env.step(result.actions[t])
        np.testing.assert_array_equal(obs.astype(np.float32), result.next_observations[t])
        assert np.float32(reward) == result.rewards[t]
        assert terminated == result.terminals[t]
