"""Synthetic per-agent datasets for tests and benchmarks (no simulator, no files).

They are AgentDatasets (data/schema.py), so stack_agent_data accepts them like real datasets.
The data has structure a VAE and a critic can fit: actions depend on the state, next states
on state and action, rewards on both.
"""

from __future__ import annotations

import numpy as np

from mabcq.data.schema import AgentDataset


def synthetic_dataset(
    seed: int, size: int, state_dim: int, action_dim: int, max_action: float = 1.0
) -> AgentDataset:
    """`size` transitions of a random linear system with a noisy linear-tanh behavior policy."""
    rng = np.random.default_rng(seed)
    policy = rng.normal(scale=0.5, size=(state_dim, action_dim))
    dynamics = rng.normal(scale=0.3, size=(action_dim, state_dim))
    states = rng.normal(size=(size, state_dim))
    actions = max_action * np.tanh(states @ policy + 0.3 * rng.normal(size=(size, action_dim)))
    next_states = 0.9 * states + actions @ dynamics + 0.1 * rng.normal(size=(size, state_dim))
    rewards = 1.0 + 0.1 * states[:, 0] - 0.1 * np.sum(actions**2, axis=1)
    terminals = rng.random(size) < 0.02
    timeouts = ~terminals & (rng.random(size) < 0.01)
    return AgentDataset(
        observations=states.astype(np.float32),
        actions=actions.astype(np.float32),
        rewards=rewards.astype(np.float32),
        next_observations=next_states.astype(np.float32),
        terminals=terminals,
        timeouts=timeouts,
        metadata={"source": "synthetic", "seed": seed},
    )
