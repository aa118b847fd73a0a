"""The methods of one learner family in a grid's one compiled step (issue 8 item 2, issue 9).

Each (method, seed) cell of a grid trained with `variants` by the family's full learner (mabcq,
macql, matd3bc) must equal that method's own learner trained alone on the agent's own data, and
must not depend on the other agents' data: for CQL's and TD3+BC's families these are also the
decentralization tests of every method (tests/test_decentralized.py has MABCQ's).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from alone import train_agent_alone

from mabcq.errors import UserError
from mabcq.learners import batched
from mabcq.learners.registry import family_of, learner_config, make_learner, split_methods
from mabcq.learners.synthetic import synthetic_dataset
from mabcq.learners.weighting import variant_row

STATE_DIM, ACTION_DIM, SEED = 5, 2, 3
FAST = batched.FAST_COMPILE
SIZES = dict(hidden_sizes=(16, 16), batch_size=32)
SMALL = {"bcq": {}, "cql": dict(vae_hidden_sizes=(16, 16), bc_warmup_steps=3),
         "td3bc": dict(vae_hidden_sizes=(16, 16))}
FAMILIES = {
    "bcq": ("mabcq", "mabcq-no-tn", "mabcq-no-vd", "bcq", "mabcq-eps0.32", "mabcq-tnclip",
            "mabcq-combined"),
    "cql": ("macql", "macql-no-tn", "macql-no-vd", "cql"),
    "td3bc": ("matd3bc", "matd3bc-no-tn", "matd3bc-no-vd", "td3bc"),
}
# (method, agent) pairs vmapped together: None = the CPU default (lax.map of one pair, 12 > 2),
# 12 = all in one vmap (the GPU default), so both paths run for the new learners.
AGENTS_PER_CHUNK = {"bcq": None, "cql": 12, "td3bc": None}
OWN = synthetic_dataset(0, 90, STATE_DIM, ACTION_DIM)


def config_of(method):
    return learner_config(method, **SIZES, **SMALL[family_of(method).name])


def flags(method):
    return variant_row(config_of(method))


@functools.cache
def grid_steps(methods):
    """The family's full learner and its compiled steps, shared by a family's grid runs."""
    family = family_of(methods[0])
    learner = make_learner(family.full, config_of(family.full))
    chunk = AGENTS_PER_CHUNK[family.name]
    return (learner, batched.make_prepare(learner, FAST),
            batched.make_multi_update(learner, "pretrain", 3, chunk, False, FAST),
            batched.make_multi_update(learner, "train", 3, chunk, False, FAST),
            batched.make_transition_weights(learner, FAST))


def train_grid(methods, datasets):
    """3 pretrain + 2x3 train updates of every (method, agent); states [methods, agents]."""
    learner, prepare, pretrain, update, transition_weights = grid_steps(methods)
    data = batched.stack_agent_data(datasets)
    seeds = [SEED] * len(methods)
    states = batched.init_agents(learner, seeds, len(datasets), STATE_DIM, ACTION_DIM, FAST)
    states = prepare(states, data)
    keys = batched.seed_agent_keys(seeds, len(datasets))
    variants = jnp.asarray([flags(method) for method in methods], jnp.float32)
    states, keys, _ = pretrain(states, data, keys)
    table = transition_weights(states, data)
    for _ in range(2):
        states, keys, metrics = update(states, data, keys, table, variants)
    return states, metrics


def train_alone(method):
    """Agent 0 trained alone by `method`'s own learner (the decentralized deployment)."""
    return train_agent_alone(make_learner(method, config_of(method)), SEED, OWN, STATE_DIM,
                             ACTION_DIM)


@pytest.fixture(scope="module", params=list(FAMILIES))
def grid(request):
    others = [synthetic_dataset(s, 120, STATE_DIM, ACTION_DIM) for s in (1, 2)]
    methods = FAMILIES[request.param]
    return methods, train_grid(methods, [OWN, *others])


def test_each_cell_equals_its_method_trained_alone(grid):
    methods, (states, _) = grid
    for index, method in enumerate(methods):
        alone = train_alone(method)
        cell = jax.tree.map(lambda leaf, i=index: leaf[i, 0], states)
        for tree in ("params", "target_params"):
            ours, theirs = getattr(cell, tree), getattr(alone, tree)
            for name in theirs:  # the grid also holds G1/G2 for the variants without lambda_tn
                jax.tree.map(lambda a, b, m=method: np.testing.assert_allclose(
                    a, b, rtol=1e-5, atol=1e-6, err_msg=m), ours[name], theirs[name])


def test_variants_really_differ_and_ignore_other_agents_data(grid):
    methods, (states, metrics) = grid
    critic = [np.concatenate([np.ravel(leaf) for leaf in jax.tree.leaves(jax.tree.map(
        lambda leaf, i=i: leaf[i, 0], states.params["critic"]))]) for i in range(len(methods))]
    for i in range(1, len(methods)):  # no two methods trained the same critic
        # exactly, not allclose: PyTorch's init starts every parameter away from 0, so a few
        # updates' differences sit inside allclose's relative tolerance
        if np.abs(critic[0] - critic[i]).max() > 0:
            continue
        # the one option that can be a no-op: a clip of lambda_tn where no sample reaches it
        # (here, at a latent of 2 x the action size, lambda_tn stays inside [0.2, 1.4])
        assert methods[i].endswith("-tnclip"), methods[i]
        assert float(metrics["lambda_tn_at_low"][i, 0]) == 0.0
        assert float(metrics["lambda_tn_at_high"][i, 0]) == 0.0
    # A switched-off weight is exactly 1 in every batch (row 3: neither; 2: no-vd; 1: no-tn).
    assert float(metrics["weight_mean"][3, 0]) == 1.0
    assert float(metrics["lambda_vd_max"][2, 0]) == 1.0
    assert float(metrics["lambda_tn_min"][1, 0]) == 1.0
    if len(methods) > 4:  # eps 0.32 clips lambda_vd to [0.68, 1.32]
        assert 0.68 - 1e-6 <= float(metrics["lambda_vd_min"][4, 0])
        assert float(metrics["lambda_vd_max"][4, 0]) <= 1.32 + 1e-6
        # The options as data: tnclip keeps lambda_tn in [0.2, 1.4]; combined's lambda_tn
        # averages 1 in every batch and its lambda_vd is 1 on every terminal sample (its mass
        # over terminals is their share, exactly).
        assert 0.2 <= float(metrics["lambda_tn_min"][5, 0])
        assert float(metrics["lambda_tn_max"][5, 0]) <= 1.4
        assert float(metrics["lambda_tn_mean"][6, 0]) == pytest.approx(1.0, abs=1e-6)
        assert float(metrics["terminal_share"][6, 0]) > 0
        assert float(metrics["lambda_vd_terminal_mass"][6, 0]) == float(
            metrics["terminal_share"][6, 0])
    replaced = [synthetic_dataset(s, n, STATE_DIM, ACTION_DIM) for s, n in ((7, 60), (8, 120))]
    swapped, _ = train_grid(methods, [OWN, *replaced])
    same = jax.tree.map(lambda a, b: bool(jnp.array_equal(a[:, 0], b[:, 0])), states, swapped)
    assert all(jax.tree.leaves(same))
    changed = jax.tree.map(lambda a, b: not bool(jnp.array_equal(a[:, 1], b[:, 1])),
                           states.params, swapped.params)
    assert any(jax.tree.leaves(changed))


def test_method_lists():
    assert split_methods("mabcq+bcq") == ("mabcq", "bcq")
    assert split_methods("macql+cql+macql-eps0.16") == ("macql", "cql", "macql-eps0.16")
    assert learner_config("mabcq-eps0.16", "walker2d-2x3").optimism == 0.16
    assert learner_config("mabcq-eps0.16", optimism=0.5).optimism == 0.16
    assert family_of("matd3bc-no-vd").full == "matd3bc"
    for bad in ("mabcq+ddpg", "mabcq+mabcq", "mabcq-eps1.5", "mabcq-epsx", "bcq+", "sac",
                "macql+mabcq", "ddpg+behavior", "bcq-eps0.3", "ddpg-eps0.3"):
        with pytest.raises(UserError):
            split_methods(bad)
