"""SAC: sampling, learning on a fixed batch, level choice, and exact resume after a kill."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

from mabcq.behavior.policies import joint_mean_policy, load_actor, split_joint_policy
from mabcq.behavior.sac import SAC, Batch, SACConfig
from mabcq.behavior.train import BehaviorConfig, _jitted, choose_levels, train_behavior
from mabcq.envs.tasks import get_task
from mabcq.errors import UserError

TINY_SAC = SACConfig(hidden_sizes=(16, 16), batch_size=32)
TINY = BehaviorConfig(total_steps=192, num_envs=2, start_steps=64, update_every=8,
                      updates_per_transition=0.25, eval_every=64, eval_episodes=1,
                      eval_max_steps=20, checkpoint_every=96, sac=TINY_SAC)


HOPPER_SAC = SAC(11, 3, TINY_SAC)  # the shapes train_behavior uses below: compiled once


def test_sampled_actions_are_bounded_with_finite_log_probs() -> None:
    _, sample, init = _jitted(HOPPER_SAC)
    state = init(jax.random.PRNGKey(0))
    states = np.random.default_rng(1).normal(size=(2, 11)).astype(np.float32) * 10
    actions, log_prob = sample(state.actor_params, states, jax.random.PRNGKey(2))
    assert actions.shape == (2, 3) and log_prob.shape == (2,)
    assert jnp.all(jnp.abs(actions) <= 1) and jnp.all(jnp.isfinite(log_prob))


def test_updates_fit_the_critic_on_a_fixed_batch() -> None:
    update, _, init = _jitted(HOPPER_SAC)
    state = init(jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)
    one = Batch(*(jnp.asarray(x, jnp.float32) for x in (
        rng.normal(size=(32, 11)), rng.uniform(-1, 1, (32, 3)), rng.normal(size=32),
        rng.normal(size=(32, 11)), np.ones(32))))  # terminal: target = reward
    batches = jax.tree_util.tree_map(lambda x: jnp.stack([x] * 4), one)  # TINY's 4 updates
    state, first = update(state, batches, jax.random.PRNGKey(1))
    for i in range(100):
        state, last = update(state, batches, jax.random.PRNGKey(2 + i))
    assert int(state.steps) == 404
    assert float(last["critic_loss"]) < 0.5 * float(first["critic_loss"])


def test_choose_levels_records_the_rule() -> None:
    evals = [{"step": s, "return_mean": r, "snapshot": f"s{s}"}
             for s, r in [(10, 0.0), (20, 40.0), (30, 55.0), (40, 100.0), (50, 90.0)]]
    levels = choose_levels(evals, 0.5)
    assert levels["expert"]["step"] == 40 and levels["intermediate"]["step"] == 30
    assert "50.0" in levels["intermediate"]["rule"]
    fixed = choose_levels(evals, 0.5, intermediate_step=30, expert_step=50)
    assert (fixed["intermediate"]["step"], fixed["expert"]["step"]) == (30, 50)
    with pytest.raises(UserError, match="no snapshot at step 35"):
        choose_levels(evals, 0.5, intermediate_step=35)


def test_resume_after_kill_reproduces_the_uninterrupted_run(tmp_path: Path) -> None:
    task = get_task("hopper-3x1")
    whole = train_behavior(task, TINY, tmp_path / "whole", seed=3, progress=False)
    with pytest.raises(KeyboardInterrupt):
        train_behavior(task, TINY, tmp_path / "killed", seed=3, progress=False,
                       stop_at_step=96)
    assert not (tmp_path / "killed" / "behavior.json").exists()
    resumed = train_behavior(task, TINY, tmp_path / "killed", seed=3, progress=False)
    assert resumed["evaluations"] == [
        {**e, "snapshot": e["snapshot"]} for e in whole["evaluations"]]
    assert resumed["train_episode_returns"] == whole["train_episode_returns"]
    a = load_actor(tmp_path / "whole" / whole["levels"]["expert"]["snapshot"])
    b = load_actor(tmp_path / "killed" / resumed["levels"]["expert"]["snapshot"])
    jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)
    record = json.loads((tmp_path / "whole" / "behavior.json").read_text())
    assert record["env_steps"] == 192 and len(record["evaluations"]) == 3
    assert {"intermediate", "expert"} <= set(record["levels"])


def test_joint_policy_splits_into_agent_slices() -> None:
    task = get_task("ant-4x2")
    sac = SAC(task.state_dim, task.joint_action_dim, TINY_SAC)
    params = serialization.msgpack_restore(serialization.msgpack_serialize(
        jax.tree_util.tree_map(np.asarray, sac.init(jax.random.PRNGKey(0)).actor_params)))
    joint = joint_mean_policy(sac, params)
    states = np.random.default_rng(0).normal(size=(3, task.state_dim)).astype(np.float32)
    agents = split_joint_policy(task, joint)
    np.testing.assert_allclose(task.join_actions([p(states) for p in agents]), joint(states))
    assert joint(states[:1]).shape == (1, 8)


def test_resuming_with_other_settings_is_a_user_error(tmp_path: Path) -> None:
    from dataclasses import replace

    task = get_task("hopper-3x1")
    with pytest.raises(KeyboardInterrupt):
        train_behavior(task, TINY, tmp_path, seed=3, progress=False, stop_at_step=96)
    with pytest.raises(UserError, match="other settings .*num_envs"):
        train_behavior(task, replace(TINY, num_envs=3), tmp_path, seed=3, progress=False)
    (tmp_path / "checkpoint.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(UserError, match="unreadable checkpoint"):
        train_behavior(task, TINY, tmp_path, seed=3, progress=False)
