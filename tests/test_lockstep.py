"""Lockstep evaluation: every run's episodes in one loop, the same with or without env workers,
and each run's result independent of which other runs share the loop."""

import numpy as np

from mabcq.envs.lockstep import LockstepEnvs
from mabcq.envs.tasks import get_task

TASK = get_task("hopper-3x1")


def act(states, step):
    """A deterministic per-row policy: [R, E, S] -> [R, N, E, 1], depends on its row only."""
    base = np.tanh(states[..., :1] * 0.7 + 0.01 * step)
    return np.stack([base * (0.5 + 0.2 * agent) for agent in range(TASK.n_agents)], axis=1)


def rollout(env_seeds, workers, episodes=3, max_steps=40):
    envs = LockstepEnvs(TASK, len(env_seeds), episodes, workers)
    try:
        return envs.run(act, env_seeds, max_steps=max_steps)
    finally:
        envs.close()


def test_workers_give_the_same_rollouts_and_runs_are_independent():
    local = rollout([5, 6], workers=0)
    spread = rollout([5, 6], workers=2)
    alone = rollout([6], workers=0)
    for a, b in zip(local, spread, strict=True):
        np.testing.assert_array_equal(a.observations, b.observations)
        np.testing.assert_array_equal(a.rewards, b.rewards)
        np.testing.assert_array_equal(a.episode_lengths, b.episode_lengths)
    np.testing.assert_array_equal(local[1].observations, alone[0].observations)
    assert not np.array_equal(local[0].rewards[:10], local[1].rewards[:10])
    assert local[0].episode_lengths.max() <= 40 and len(local[0].episode_lengths) == 3
    # the reused envs give the same numbers on a second evaluation
    envs = LockstepEnvs(TASK, 1, 3, 0)
    first = envs.run(act, [6], max_steps=40)[0]
    again = envs.run(act, [6], max_steps=40)[0]
    np.testing.assert_array_equal(first.observations, again.observations)
    np.testing.assert_array_equal(first.observations, alone[0].observations)
