"""One agent trained alone from its own file, as a decentralized deployment runs it.

Shared by the tests that hold a batched grid's slice against this single-agent path
(test_decentralized.py, test_variants.py): prepare, 3 pretrain updates, then 2 x 3 train
updates with the transition weights computed once after pretraining.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mabcq.learners import batched

FAST = batched.FAST_COMPILE


def train_agent_alone(learner, seed: int, data, state_dim: int, action_dim: int):
    """Agent 0's state after the few updates above, from `data` alone."""
    transitions = jax.tree.map(jnp.asarray, batched.dataset_transitions(data))
    size = jnp.int32(len(data))
    state = batched.init_agent(learner, seed, 0, state_dim, action_dim, FAST)
    state = jax.jit(learner.prepare, compiler_options=FAST)(state, transitions, size)
    key = batched.agent_key(seed, 0)
    state, key, _ = batched.make_single_update(learner, "pretrain", 3, FAST)(
        state, transitions, size, key)
    table = learner.transition_weights(state, transitions)
    update = batched.make_single_update(learner, "train", 3, FAST)
    for _ in range(2):
        state, key, _ = update(state, transitions, size, key, table)
    return state
