"""The BCQ-family variants of a grid in one compiled step (issue 8 item 2).

Each (method, seed) cell of a grid trained with `variants` must equal that method's own learner
trained alone on the agent's own data, and must not depend on the other agents' data.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mabcq.errors import UserError
from mabcq.learners import batched
from mabcq.learners.registry import learner_config, make_learner, split_methods
from mabcq.learners.synthetic import synthetic_dataset

STATE_DIM, ACTION_DIM, SEED = 5, 2, 3
FAST = batched.FAST_COMPILE
SIZES = dict(hidden_sizes=(16, 16), batch_size=32)
METHODS = ("mabcq", "mabcq-no-tn", "mabcq-no-vd", "bcq", "mabcq-eps0.32")
OWN = synthetic_dataset(0, 90, STATE_DIM, ACTION_DIM)


def flags(method):
    config = learner_config(method, **SIZES)
    return [float(config.use_vd), float(config.use_tn), float(config.optimism)]


def train_grid(datasets):
    """3 pretrain + 2x3 train updates of every (method, agent); states [methods, agents]."""
    learner = make_learner("mabcq", learner_config("mabcq", **SIZES))
    data = batched.stack_agent_data(datasets)
    seeds = [SEED] * len(METHODS)
    states = batched.init_agents(learner, seeds, len(datasets), STATE_DIM, ACTION_DIM, FAST)
    keys = batched.seed_agent_keys(seeds, len(datasets))
    variants = jnp.asarray([flags(method) for method in METHODS], jnp.float32)
    pretrain = batched.make_multi_update(learner, "pretrain", 3, None, False, FAST)
    update = batched.make_multi_update(learner, "train", 3, None, False, FAST)
    states, keys, _ = pretrain(states, data, keys)
    table = batched.make_transition_weights(learner, FAST)(states, data)
    for _ in range(2):
        states, keys, metrics = update(states, data, keys, table, variants)
    return states, metrics


def train_alone(method):
    """Agent 0 trained alone by `method`'s own learner (the decentralized deployment)."""
    learner = make_learner(method, learner_config(method, **SIZES))
    transitions = jax.tree.map(jnp.asarray, batched.dataset_transitions(OWN))
    size = jnp.int32(len(OWN))
    state = batched.init_agent(learner, SEED, 0, STATE_DIM, ACTION_DIM, FAST)
    key = batched.agent_key(SEED, 0)
    state, key, _ = batched.make_single_update(learner, "pretrain", 3, FAST)(
        state, transitions, size, key)
    table = learner.transition_weights(state, transitions)
    update = batched.make_single_update(learner, "train", 3, FAST)
    for _ in range(2):
        state, key, _ = update(state, transitions, size, key, table)
    return state


@pytest.fixture(scope="module")
def grid():
    others = [synthetic_dataset(s, 120, STATE_DIM, ACTION_DIM) for s in (1, 2)]
    return train_grid([OWN, *others])


@pytest.mark.parametrize("index", range(len(METHODS)))
def test_each_cell_equals_its_method_trained_alone(grid, index):
    states, _ = grid
    alone = train_alone(METHODS[index])
    cell = jax.tree.map(lambda leaf: leaf[index, 0], states)
    for tree in ("params", "target_params"):
        ours, theirs = getattr(cell, tree), getattr(alone, tree)
        for name in theirs:  # the grid also holds G2 for the variants without lambda_tn
            jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                         ours[name], theirs[name])


def test_variants_really_differ_and_ignore_other_agents_data(grid):
    states, metrics = grid
    critic = [jax.tree.leaves(jax.tree.map(lambda leaf, i=i: leaf[i, 0],
                                           states.params["critic"]))[0]
              for i in range(len(METHODS))]
    for i in range(1, len(METHODS)):  # no two methods trained the same critic
        assert not np.allclose(critic[0], critic[i])
    # A switched-off weight is exactly 1 in every batch (bcq: row 3; no-vd: row 2; no-tn: row 1).
    assert float(metrics["weight_mean"][3, 0]) == 1.0
    assert float(metrics["lambda_vd_max"][2, 0]) == 1.0
    assert float(metrics["lambda_tn_min"][1, 0]) == 1.0
    # eps 0.32 clips lambda_vd to [0.68, 1.32]
    assert 0.68 - 1e-6 <= float(metrics["lambda_vd_min"][4, 0])
    assert float(metrics["lambda_vd_max"][4, 0]) <= 1.32 + 1e-6
    replaced = [synthetic_dataset(s, n, STATE_DIM, ACTION_DIM) for s, n in ((7, 60), (8, 120))]
    swapped, _ = train_grid([OWN, *replaced])
    same = jax.tree.map(lambda a, b: bool(jnp.array_equal(a[:, 0], b[:, 0])), states, swapped)
    assert all(jax.tree.leaves(same))
    changed = jax.tree.map(lambda a, b: not bool(jnp.array_equal(a[:, 1], b[:, 1])),
                           states.params, swapped.params)
    assert any(jax.tree.leaves(changed))


def test_method_lists():
    assert split_methods("mabcq+bcq") == ("mabcq", "bcq")
    assert learner_config("mabcq-eps0.16", "walker2d-2x3").optimism == 0.16
    assert learner_config("mabcq-eps0.16", optimism=0.5).optimism == 0.16
    for bad in ("mabcq+ddpg", "mabcq+mabcq", "mabcq-eps1.5", "mabcq-epsx", "bcq+", "sac"):
        with pytest.raises(UserError):
            split_methods(bad)
