"""CQL and TD3+BC with MABCQ's weights (issue 9): the update lowers the loss, a zero weight gives
its samples no gradient, TD3+BC's normalizer comes from the agent's own data, and an exported
policy loads and acts alone."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mabcq.learners import batched
from mabcq.learners.export import export_policy, load_policy
from mabcq.learners.registry import learner_config, make_learner
from mabcq.learners.synthetic import synthetic_dataset

FAST = batched.FAST_COMPILE
SMALL = dict(hidden_sizes=(16, 16), vae_hidden_sizes=(16, 16), batch_size=32)
STATE_DIM, ACTION_DIM = 6, 2


def tiny(method, **overrides):
    config = learner_config(method, **{**SMALL, **overrides})
    return config, make_learner(method, config)


def own_data(size=300):
    dataset = synthetic_dataset(1, size, STATE_DIM, ACTION_DIM)
    return dataset, jax.tree.map(jnp.asarray, batched.dataset_transitions(dataset))


# The Lagrange variant's critic loss adds alpha' (gap - threshold) with alpha' growing (a
# min-max objective, not monotone): there the TD loss and the conservative gap must fall.
@pytest.mark.parametrize("method, overrides, falling", [
    ("macql", dict(bc_warmup_steps=25, vae_in_update=True), ("critic_loss",)),
    ("cql", dict(cql_lagrange=True, bc_warmup_steps=0), ("td_loss", "cql_loss")),
    ("matd3bc", {}, ("critic_loss",)), ("td3bc", {}, ("critic_loss",))])
def test_update_lowers_the_loss_and_the_policy_acts_alone(method, overrides, falling, tmp_path):
    config, learner = tiny(method, **overrides)
    dataset, transitions = own_data()
    size = jnp.int32(len(dataset))
    state = batched.init_agent(learner, 0, 1, STATE_DIM, ACTION_DIM, FAST)
    state = jax.jit(learner.prepare, compiler_options=FAST)(state, transitions, size)
    key = batched.agent_key(0, 1)
    state, key, _ = batched.make_single_update(learner, "pretrain", 20, FAST)(
        state, transitions, size, key)
    table = learner.transition_weights(state, transitions)
    update = batched.make_single_update(learner, "train", 25, FAST)
    losses = []
    for _ in range(6):
        state, key, metrics = update(state, transitions, size, key, table)
        losses.append([float(metrics[name]) for name in falling])
        assert all(bool(jnp.isfinite(value)) for value in metrics.values()), metrics
    assert all(last < first for first, last in zip(losses[0], losses[-1], strict=True)), losses
    if config.use_vd:
        assert 1 - config.optimism - 1e-6 <= float(metrics["lambda_vd_min"])
        assert float(metrics["lambda_vd_max"]) <= 1 + config.optimism + 1e-6
    if getattr(config, "cql_lagrange", False):
        assert float(metrics["lagrange_alpha"]) != 1.0  # alpha' is trained

    path = tmp_path / "agent1.msgpack"
    export_policy(path, method, config, state, {"agent": 1})
    policy = load_policy(path)
    assert (policy.method, policy.state_dim, policy.action_dim) == (method, STATE_DIM, ACTION_DIM)
    assert policy.config == config
    observations = jnp.asarray(dataset.observations[:8])
    act_key = jax.random.PRNGKey(7)
    direct = jax.jit(learner.act, compiler_options=FAST)(state, observations, act_key)
    np.testing.assert_allclose(policy.act(observations, act_key), direct, atol=1e-5)
    assert float(jnp.max(jnp.abs(direct))) <= config.max_action


# What each learner's zero-weighted samples may differ in without changing the update: their
# rewards always; TD3+BC's and BCQ's actions and next states too, as those enter only the weighted
# TD loss and (TD3+BC) the weighted BC term. CQL's regularizer reads them, unweighted by design.
CHANGED_FIELDS = {"macql-no-vd": ("rewards",), "matd3bc-no-vd": ("rewards", "actions",
                                                                  "next_states"),
                  "mabcq-no-vd": ("rewards", "actions", "next_states")}


@pytest.mark.parametrize("method", list(CHANGED_FIELDS))
def test_zero_weight_gives_its_samples_no_gradient(method):
    # CQL without its BC warm start, so that its actor reads the critic in the second update.
    _, learner = tiny(method, **({"bc_warmup_steps": 0} if "cql" in method else {}))
    _, transitions = own_data(64)
    batch = jax.tree.map(lambda leaf: leaf[:32], transitions)
    state = batched.init_agent(learner, 0, 0, STATE_DIM, ACTION_DIM, FAST)
    half = jnp.arange(32) >= 16
    noise = jax.random.normal(jax.random.PRNGKey(5), (32, STATE_DIM))

    def changed(batch):
        fields = {"rewards": batch.rewards + 10.0 * half,
                  "actions": jnp.where(half[:, None], -batch.actions, batch.actions),
                  "next_states": batch.next_states + noise * half[:, None]}
        return batch._replace(**{name: fields[name] for name in CHANGED_FIELDS[method]})

    def updates(batch, weights):
        batch = batch._replace(lambda_tn=weights)  # "-no-vd": the weight is lambda_tn alone
        step_state, _ = learner.update(state, batch, jax.random.PRNGKey(1))
        return learner.update(step_state, batch, jax.random.PRNGKey(2))[0]  # TD3+BC: actor too

    two_updates = jax.jit(updates, compiler_options=FAST)

    half_zero = jnp.where(half, 0.0, 1.0)
    base = two_updates(batch, half_zero)
    same = two_updates(changed(batch), half_zero)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
                 base.params, same.params)
    # With weight 1 those changes do move the critic (and the actor): the check is not vacuous.
    ones = jnp.ones(32)
    moved = jax.tree.map(lambda a, b: not np.array_equal(a, b),
                         two_updates(batch, ones).params, two_updates(changed(batch), ones).params)
    assert any(jax.tree.leaves(moved["critic"])) and any(jax.tree.leaves(moved["actor"]))


def test_td3bc_normalizer_is_its_own_datas_mean_and_std():
    _, learner = tiny("td3bc")
    dataset, transitions = own_data(200)
    padded = jax.tree.map(lambda leaf: jnp.concatenate([leaf, 50.0 + leaf[:40]]), transitions)
    state = batched.init_agent(learner, 0, 0, STATE_DIM, ACTION_DIM, FAST)
    prepared = jax.jit(learner.prepare)(state, padded, jnp.int32(200))  # rows past 200: padding
    normalizer = prepared.params["normalizer"]
    np.testing.assert_allclose(normalizer["mean"], dataset.observations.mean(0), rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(normalizer["std"], dataset.observations.std(0) + 1e-3, rtol=1e-4)
    plain = tiny("td3bc", normalize_states=False)[1]
    assert jax.jit(plain.prepare)(state, padded, jnp.int32(200)).params["normalizer"][
        "std"].tolist() == [1.0] * STATE_DIM


def test_baselines_scale_to_the_run_length():
    """CQL's BC warm start is 4% of the run (the authors' 40 000 of 10^6) unless given;
    TD3+BC without a given length sees as many transitions as MABCQ (updates x 1024 / 256 at
    the paper preset), with as many evaluations; MABCQ's runs are unchanged."""
    from mabcq.training.config import make_config

    cql = make_config("halfcheetah-2x3", "macql+cql", (0,), "paper", updates=50_000)
    assert cql.updates == 50_000 and cql.learner_overrides["bc_warmup_steps"] == 2_000
    kept = make_config("hopper-3x1", "cql", (0,), "paper", bc_warmup_steps=40_000)
    assert kept.learner_overrides["bc_warmup_steps"] == 40_000
    td3bc = make_config("hopper-3x1", "matd3bc+td3bc", (0,), "paper")
    mabcq = make_config("hopper-3x1", "mabcq", (0,), "paper")
    assert td3bc.updates * 256 == mabcq.updates * 1024
    assert td3bc.updates // td3bc.eval_every == mabcq.updates // mabcq.eval_every
    assert make_config("hopper-3x1", "td3bc", (0,), "paper", updates=5_000).updates == 5_000
    assert "bc_warmup_steps" not in mabcq.learner_overrides
