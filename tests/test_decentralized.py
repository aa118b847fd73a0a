"""Decentralization (issue 4 item 3): agent i's learner reads only agent i's data.

After K batched updates, agent i's parameters are BITWISE unchanged when the other agents'
datasets are replaced, and equal (float tolerance) to training agent i alone from its own data.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from alone import train_agent_alone

from mabcq.learners import batched
from mabcq.learners.registry import learner_config, make_learner
from mabcq.learners.synthetic import synthetic_dataset

STATE_DIM, ACTION_DIM, SEEDS = 5, 2, (3, 4)


FAST = batched.FAST_COMPILE
LEARNER = make_learner(
    "mabcq", learner_config("mabcq", hidden_sizes=(16, 16), batch_size=32, vae_in_update=True)
)
OWN = synthetic_dataset(0, 90, STATE_DIM, ACTION_DIM)


def train(datasets, agents_per_chunk):
    """3 pretrain + 2x3 train updates of every (seed, agent); returns states [seeds, agents]."""
    data = batched.stack_agent_data(datasets)
    states = batched.init_agents(LEARNER, SEEDS, len(datasets), STATE_DIM, ACTION_DIM, FAST)
    keys = batched.seed_agent_keys(SEEDS, len(datasets))
    pretrain = batched.make_multi_update(LEARNER, "pretrain", 3, agents_per_chunk, False, FAST)
    update = batched.make_multi_update(LEARNER, "train", 3, agents_per_chunk, False, FAST)
    states, keys, _ = pretrain(states, data, keys)
    for _ in range(2):
        states, keys, _ = update(states, data, keys)
    return states


@pytest.fixture(scope="module")
def alone():
    """Agent 0 of each seed trained alone from its own dataset (the single-agent path)."""
    transitions = jax.tree.map(jnp.asarray, batched.dataset_transitions(OWN))
    size = jnp.int32(len(OWN))
    pretrain = batched.make_single_update(LEARNER, "pretrain", 3, FAST)
    update = batched.make_single_update(LEARNER, "train", 3, FAST)
    states = []
    for seed in SEEDS:
        state = batched.init_agent(LEARNER, seed, 0, STATE_DIM, ACTION_DIM, FAST)
        key = batched.agent_key(seed, 0)
        state, key, _ = pretrain(state, transitions, size, key)
        for _ in range(2):
            state, key, _ = update(state, transitions, size, key)
        states.append(state)
    return states


def agent_slice(states, agent):
    return jax.tree.map(lambda leaf: leaf[:, agent], states)


# agents_per_chunk 6 = all 2 seeds x 3 agents vmapped at once; 1 = one after another (lax.map).
@pytest.mark.parametrize("agents_per_chunk", [6, 1])
def test_agent_params_ignore_other_agents_data(alone, agents_per_chunk):
    others = [synthetic_dataset(s, 120, STATE_DIM, ACTION_DIM) for s in (1, 2)]
    replaced = [synthetic_dataset(s, n, STATE_DIM, ACTION_DIM) for s, n in ((7, 60), (8, 120))]
    baseline = train([OWN, *others], agents_per_chunk)
    swapped = train([OWN, *replaced], agents_per_chunk)
    same = jax.tree.map(
        lambda a, b: bool(jnp.array_equal(a, b)), agent_slice(baseline, 0), agent_slice(swapped, 0)
    )
    assert all(jax.tree.leaves(same))
    # The other agents did change: the comparison above is not vacuous.
    changed = jax.tree.map(
        lambda a, b: not bool(jnp.array_equal(a, b)),
        agent_slice(baseline, 1).params,
        agent_slice(swapped, 1).params,
    )
    assert any(jax.tree.leaves(changed))
    # ... and agent 0 equals training it alone from its own dataset (single-agent path).
    for seed_index, state in enumerate(alone):
        batched_state = jax.tree.map(lambda leaf, i=seed_index: leaf[i, 0], baseline)
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
            batched_state,
            state,
        )


# The default training path (issue 19 item 6): G1/G2 frozen after pretraining, lambda_tn read
# from the precomputed table, no variants, TD3+BC's state normalizer from the agent's own file.
DEFAULT_SIZES = dict(hidden_sizes=(16, 16), vae_hidden_sizes=(16, 16), batch_size=32)


@functools.cache
def default_steps(method):
    """The learner and its jitted batched steps (compiled once for both data sets)."""
    learner = make_learner(method, learner_config(method, **DEFAULT_SIZES))
    return (learner, batched.make_prepare(learner, FAST),
            batched.make_multi_update(learner, "pretrain", 3, None, False, FAST),
            batched.make_transition_weights(learner, FAST),
            batched.make_multi_update(learner, "train", 3, None, False, FAST))


def train_default(method, datasets):
    """prepare, 3 pretrain updates, the lambda_tn table, 2x3 train updates: the loop's path."""
    learner, prepare, pretrain, transition_weights, update = default_steps(method)
    data = batched.stack_agent_data(datasets)
    states = batched.init_agents(learner, SEEDS[:1], len(datasets), STATE_DIM, ACTION_DIM, FAST)
    states = prepare(states, data)
    keys = batched.seed_agent_keys(SEEDS[:1], len(datasets))
    states, keys, _ = pretrain(states, data, keys)
    table = transition_weights(states, data)
    for _ in range(2):
        states, keys, _ = update(states, data, keys, table)
    return states


def train_default_alone(learner):
    """Agent 0 from its own file: the single-agent path a decentralized deployment runs."""
    return train_agent_alone(learner, SEEDS[0], OWN, STATE_DIM, ACTION_DIM)


@pytest.mark.parametrize("method", ["mabcq", "matd3bc"])
def test_default_path_agent_is_its_own_data_only(method):
    """Other agents' data cannot change agent 0 (bitwise); agent 0 trained alone from its own
    file equals its slice (1e-5: XLA compiles the single-agent and batched programs apart; for
    mabcq they agreed bitwise here, for matd3bc to 4e-7)."""
    others = [synthetic_dataset(s, 120, STATE_DIM, ACTION_DIM) for s in (1, 2)]
    replaced = [synthetic_dataset(s, n, STATE_DIM, ACTION_DIM) for s, n in ((7, 60), (8, 120))]
    baseline = train_default(method, [OWN, *others])
    swapped = train_default(method, [OWN, *replaced])
    same = jax.tree.map(lambda a, b: bool(jnp.array_equal(a[:, 0], b[:, 0])), baseline, swapped)
    assert all(jax.tree.leaves(same))
    changed = jax.tree.map(lambda a, b: not bool(jnp.array_equal(a[:, 1], b[:, 1])),
                           baseline.params, swapped.params)
    assert any(jax.tree.leaves(changed))
    if method == "matd3bc":  # the normalizer is agent 0's own data's, not the others'
        np.testing.assert_allclose(baseline.params["normalizer"]["mean"][0, 0],
                                   OWN.observations.mean(axis=0), rtol=1e-5, atol=1e-6)
    alone = train_default_alone(default_steps(method)[0])
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a[0, 0], b, rtol=1e-5, atol=1e-6),
                 baseline, alone)
