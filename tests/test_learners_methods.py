"""Every method trains without NaN, and one agent's exported policy loads and acts alone."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mabcq.errors import UserError
from mabcq.learners import batched
from mabcq.learners.export import export_policy, load_policy
from mabcq.learners.registry import learner_config, make_learner
from mabcq.learners.synthetic import synthetic_dataset
from mabcq.paper import TASK_OPTIMISM

# The BCQ family and the baselines; CQL's and TD3+BC's families: tests/test_learners_offline.py.
METHODS = ("mabcq", "mabcq-no-tn", "mabcq-no-vd", "bcq", "ddpg", "behavior")


def test_learner_config_presets_and_errors():
    assert learner_config("mabcq", "walker2d-2x3").optimism == TASK_OPTIMISM["walker2d-2x3"]
    assert learner_config("bcq").use_vd is False and learner_config("bcq").use_tn is False
    assert learner_config("mabcq-no-tn").use_tn is False
    with pytest.raises(UserError, match="unknown method"):
        learner_config("sac")
    with pytest.raises(UserError, match="unknown option"):
        learner_config("bcq", batchsize=3)
    with pytest.raises(UserError, match="unknown method"):
        make_learner("td3", learner_config("bcq"))
    # The method name decides the weights, whatever the config says.
    assert make_learner("bcq", learner_config("mabcq")).config.use_vd is False
    # Each learner has its own paper's defaults; another learner's config is refused.
    assert learner_config("cql").batch_size == 256 and learner_config("cql").cql_alpha == 5.0
    assert learner_config("td3bc").bc_alpha == 2.5 and learner_config("mabcq").batch_size == 1024
    assert learner_config("macql", "walker2d-2x3").optimism == TASK_OPTIMISM["walker2d-2x3"]
    with pytest.raises(UserError, match="needs a CQLConfig"):
        make_learner("cql", learner_config("bcq"))


@pytest.mark.parametrize("method", METHODS)
def test_method_trains_without_nan_and_exported_policy_acts_alone(method, tmp_path):
    # mabcq also covers the BCQ-style path that keeps training G1/G2 inside the update.
    config = learner_config(
        method, hidden_sizes=(16, 16), batch_size=32, vae_in_update=method == "mabcq"
    )
    learner = make_learner(method, config)
    dataset = synthetic_dataset(1, 200, 6, 2)
    transitions = jax.tree.map(jnp.asarray, batched.dataset_transitions(dataset))
    size = jnp.int32(len(dataset))
    fast = batched.FAST_COMPILE
    state = batched.init_agent(learner, 0, 1, 6, 2, fast)
    key = batched.agent_key(0, 1)
    state, key, pre_metrics = batched.make_single_update(learner, "pretrain", 20, fast)(
        state, transitions, size, key
    )
    state, key, metrics = batched.make_single_update(learner, "train", 40, fast)(
        state, transitions, size, key
    )
    for name, value in {**pre_metrics, **metrics}.items():
        assert value.shape == (), name
        assert bool(jnp.isfinite(value)), name
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(state))
    assert int(state.step) == 40
    assert "critic_loss" in metrics
    if config.use_vd:
        assert float(metrics["lambda_vd_min"]) >= 1 - config.optimism - 1e-6
        assert float(metrics["lambda_vd_max"]) <= 1 + config.optimism + 1e-6
    if config.use_tn:
        assert float(metrics["lambda_tn_min"]) > 0

    path = tmp_path / "agent1.msgpack"
    export_policy(path, method, config, state, {"agent": 1})
    policy = load_policy(path)
    assert (policy.method, policy.state_dim, policy.action_dim) == (method, 6, 2)
    assert policy.config == config and policy.metadata == {"agent": 1}
    observations = jnp.asarray(dataset.observations[:8])
    key = jax.random.PRNGKey(7)
    actions = policy.act(observations, key)
    direct = jax.jit(learner.act, compiler_options=fast)(state, observations, key)
    np.testing.assert_allclose(actions, direct, atol=1e-5)
    assert float(jnp.max(jnp.abs(actions))) <= config.max_action
    with pytest.raises(UserError, match="expects states"):
        policy.act(jnp.zeros((3, 5)), key)


def test_load_policy_rejects_bad_files(tmp_path):
    missing = tmp_path / "missing.msgpack"
    with pytest.raises(UserError, match="cannot read"):
        load_policy(missing)
    junk = tmp_path / "junk.msgpack"
    junk.write_bytes(b"\x93not a policy")
    with pytest.raises(UserError, match=str(junk.name)):
        load_policy(junk)


def test_config_round_trips_through_dict():
    config = dataclasses.replace(learner_config("mabcq", "ant-4x2"), hidden_sizes=(8, 4))
    assert type(config).from_dict(config.to_dict()) == config


def test_precomputed_lambda_tn_table_gives_the_same_update():
    fast = batched.FAST_COMPILE
    learner = make_learner("mabcq", learner_config("mabcq", hidden_sizes=(16, 16), batch_size=32))
    data = batched.stack_agent_data([synthetic_dataset(s, 300 + 50 * s, 5, 2) for s in range(2)])
    states = batched.init_agents(learner, [0], 2, 5, 2, fast)
    keys = batched.seed_agent_keys([0], 2)
    pretrain = batched.make_multi_update(learner, "pretrain", 100, compiler_options=fast)
    states, keys, _ = pretrain(states, data, keys)
    table = batched.make_transition_weights(learner, fast)(states, data)
    assert table.shape == (1, 2, 350)
    # Row r of agent i's table is lambda_tn of agent i's own transition r.
    own = jax.tree.map(
        lambda leaf: jnp.asarray(leaf[:7]),
        batched.dataset_transitions(synthetic_dataset(1, 350, 5, 2)),
    )
    direct = learner.lambda_tn(jax.tree.map(lambda x: x[0, 1], states).params, own)
    np.testing.assert_allclose(table[0, 1, :7], direct, rtol=1e-5)

    update = batched.make_multi_update(learner, "train", 3, compiler_options=fast)
    with_table, _, metrics_table = update(states, data, keys, table)
    without, _, metrics = update(states, data, keys)
    for name in metrics:
        np.testing.assert_allclose(metrics_table[name], metrics[name], rtol=1e-4, err_msg=name)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5),
        with_table.params,
        without.params,
    )
    # Methods without lambda_tn (or with G1/G2 trained in the update) have no table.
    assert (
        batched.make_transition_weights(make_learner("bcq", learner.config))(states, data) is None
    )
