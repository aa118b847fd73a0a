"""TD3+BC (Fujimoto & Gu 2021, "A Minimalist Approach to Offline RL") with MABCQ's weights.

Methods: `td3bc` (no weights), `matd3bc` (lambda_tn * lambda_vd), `matd3bc-no-tn`,
`matd3bc-no-vd`. One agent, pure functions; networks: twin critics, a deterministic tanh actor,
target copies of both, a state normalizer, and G1/G2 (only with lambda_tn).

TD3+BC, as its reference code does it (sfujim/TD3_BC, TD3_BC.py and main.py):
- states (and next states) normalized by the mean and std of the agent's own dataset, std + 1e-3;
- target y = r + gamma (1 - done) min_k Q^k(s', a'), a' = clip(pi^(s') + clip(N(0, 0.2), +-0.5));
- critic: sum over the twins of (Q_k(s, a) - y)^2;
- every 2nd update: actor loss -lambda Q1(s, pi(s)) + (pi(s) - a)^2 (mean over action dims),
  lambda = alpha / mean|Q1(s, pi(s))| (no gradient), alpha = 2.5; then the soft target updates.

Where MABCQ's weights go (w = lambda_tn * lambda_vd per sample, stop-gradient):
- the TD loss: mean(w * sum_k (Q_k - y)^2): the Bellman backup over s' that the weights reshape
  (paper eq. 1). V(s') = min_k Q^k(s', a'), the value inside y; E[V] = (Q^1(s, a_i) - r) / gamma
  from the first target critic, as for MABCQ.
- the actor: mean(w * (-lambda Q1 + BC)): paper eq. 2 weights the actor's objective per sample;
  the BC term is part of that sample's objective, so the weight scales the sample's whole loss
  (which samples the actor learns from), not the balance between Q and BC. lambda's mean|Q| is
  a scale normalizer over the batch and stays unweighted.
- lambda_tn from G1/G2 fitted on the agent's own raw (unnormalized) data before the updates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from mabcq import weights
from mabcq.learners import common, weighting
from mabcq.learners.base import AgentState, Batch
from mabcq.learners.config import BaseLearnerConfig
from mabcq.learners.weighted import WeightedLearner
from mabcq.nets import DeterministicActor


@dataclass(frozen=True)
class TD3BCConfig(BaseLearnerConfig):
    """TD3+BC's hyperparameters. Defaults: its paper and reference code (sfujim/TD3_BC main.py
    and TD3_BC.py): (256, 256) ReLU nets, Adam 3e-4 for both, batch 256, tau 0.005, gamma 0.99,
    policy noise 0.2, noise clip 0.5, actor every 2 updates, alpha 2.5, state normalization."""

    hidden_sizes: tuple[int, ...] = (256, 256)
    lr_critic: float = 3e-4
    lr_actor: float = 3e-4
    batch_size: int = 256
    vae_hidden_sizes: tuple[int, ...] | None = (64, 64)  # G1/G2 as MABCQ's (Table 8)
    policy_noise: float = 0.2  # target policy smoothing noise std, times max_action
    noise_clip: float = 0.5  # times max_action
    policy_freq: int = 2  # actor and target updates every this many critic updates
    bc_alpha: float = 2.5  # alpha in lambda = alpha / mean|Q|
    normalize_states: bool = True
    normalize_eps: float = 1e-3  # added to the std


class TD3BCLearner(WeightedLearner):
    """One agent's (MA-)TD3+BC: networks critic, actor, normalizer, vae1/vae2 (lambda_tn only)."""

    config: TD3BCConfig

    def __init__(self, config: TD3BCConfig, method: str = "td3bc") -> None:
        super().__init__(config, method)

    def _actor(self, action_dim: int) -> DeterministicActor:
        return DeterministicActor(self.config.hidden_sizes, action_dim, self.config.max_action,
                                  self.config.weight_init)

    def init(self, key: jax.Array, state_dim: int, action_dim: int) -> AgentState:
        params, opt_states = self._init_networks(key, state_dim, action_dim)
        params["normalizer"] = {"mean": jnp.zeros(state_dim), "std": jnp.ones(state_dim)}
        targets = {"critic": params["critic"], "actor": params["actor"]}
        return AgentState(params, targets, opt_states, jnp.zeros((), jnp.int32))

    def prepare(self, agent_state: AgentState, transitions: Batch, size: jax.Array) -> AgentState:
        """The state normalizer from the agent's own dataset: mean and std (ddof 0) + eps over
        its states, rows [0, size) of [T, S] (TD3+BC's ReplayBuffer.normalize_states)."""
        if not self.config.normalize_states:
            return agent_state
        rows = (jnp.arange(transitions.states.shape[0]) < size)[:, None]
        count = size.astype(jnp.float32)
        mean = jnp.sum(jnp.where(rows, transitions.states, 0.0), axis=0) / count
        variance = jnp.sum(jnp.where(rows, (transitions.states - mean) ** 2, 0.0), axis=0) / count
        normalizer = {"mean": mean, "std": jnp.sqrt(variance) + self.config.normalize_eps}
        return agent_state._replace(params={**agent_state.params, "normalizer": normalizer})

    @staticmethod
    def _normalized(params: dict[str, Any], states: jax.Array) -> jax.Array:
        return (states - params["normalizer"]["mean"]) / params["normalizer"]["std"]

    def update(
        self, agent_state: AgentState, batch: Batch, key: jax.Array
    ) -> tuple[AgentState, dict[str, jax.Array]]:
        cfg = self.config
        vae_key, noise_key = jax.random.split(key)
        agent_state, metrics, latent_means = self.fit_vaes_in_update(agent_state, batch, vae_key)
        params, targets = agent_state.params, agent_state.target_params
        actor = self._actor(batch.actions.shape[-1])
        states = self._normalized(params, batch.states)
        next_states = self._normalized(params, batch.next_states)

        noise = jnp.clip(cfg.policy_noise * cfg.max_action
                         * jax.random.normal(noise_key, batch.actions.shape),
                         -cfg.noise_clip * cfg.max_action, cfg.noise_clip * cfg.max_action)
        next_actions = jnp.clip(actor.apply(targets["actor"], next_states) + noise,
                                -cfg.max_action, cfg.max_action)
        next_values = jnp.min(self.critic.apply(targets["critic"], next_states, next_actions), 0)
        y = jax.lax.stop_gradient(batch.rewards + cfg.gamma * (1.0 - batch.dones) * next_values)
        settings = weighting.settings(cfg, batch.variant)
        expected_values = None
        if settings.use_vd:  # E[V] = (Q^1(s, a_i) - r) / gamma, from the first target critic
            expected_values = weights.expected_value(
                self.q1(targets["critic"], states, batch.actions), batch.rewards, cfg.gamma)
        sample_weights, weight_metrics = self.sample_weights(
            settings, agent_state, batch, next_values, expected_values, latent_means)
        metrics.update(weight_metrics)

        def critic_loss_fn(critic_params: Any) -> tuple[jax.Array, jax.Array]:
            q = self.critic.apply(critic_params, states, batch.actions)  # [2, B]
            return common.weighted_td_loss(sample_weights, q, y), jnp.mean(q[0])

        (critic_loss, q_mean), grads = jax.value_and_grad(critic_loss_fn, has_aux=True)(
            params["critic"])
        critic_params, critic_opt = common.optimizer_step(
            self.critic_opt, params["critic"], agent_state.opt_states["critic"], grads)

        def actor_loss_fn(actor_params: Any) -> tuple[jax.Array, jax.Array]:
            policy_actions = actor.apply(actor_params, states)
            q1 = self.q1(critic_params, states, policy_actions)
            scale = jax.lax.stop_gradient(cfg.bc_alpha / jnp.mean(jnp.abs(q1)))
            behavior_cloning = jnp.mean((policy_actions - batch.actions) ** 2, axis=-1)
            per_sample = -scale * q1 + behavior_cloning
            return jnp.mean(sample_weights * per_sample), jnp.mean(behavior_cloning)

        (actor_loss, bc_loss), grads = jax.value_and_grad(actor_loss_fn, has_aux=True)(
            params["actor"])
        stepped_actor, stepped_opt = common.optimizer_step(
            self.actor_opt, params["actor"], agent_state.opt_states["actor"], grads)
        # Delayed policy updates: the actor and both targets move on every policy_freq-th update
        # (TD3_BC.py counts total_it from 1 and updates when total_it % policy_freq == 0).
        delayed = (agent_state.step + 1) % cfg.policy_freq == 0

        def when_delayed(new: Any, old: Any) -> Any:
            return jax.tree.map(lambda a, b: jnp.where(delayed, a, b), new, old)

        actor_params = when_delayed(stepped_actor, params["actor"])
        actor_opt = when_delayed(stepped_opt, agent_state.opt_states["actor"])
        new_targets = when_delayed(
            common.soft_update(targets, {"critic": critic_params, "actor": actor_params}, cfg.tau),
            targets)
        new_state = AgentState(
            {**params, "critic": critic_params, "actor": actor_params}, new_targets,
            {**agent_state.opt_states, "critic": critic_opt, "actor": actor_opt},
            agent_state.step + 1)
        metrics.update(critic_loss=critic_loss, actor_loss=actor_loss, q_mean=q_mean,
                       target_mean=jnp.mean(y), bc_loss=bc_loss)
        return new_state, metrics

    def act(self, agent_state: AgentState, states: jax.Array, key: jax.Array) -> jax.Array:
        params = agent_state.params
        action_dim = common.output_dim(params["actor"])
        return self._actor(action_dim).apply(params["actor"], self._normalized(params, states))

    def q_value(self, agent_state: AgentState, states: jax.Array, actions: jax.Array) -> jax.Array:
        params = agent_state.params
        return self.q1(params["critic"], self._normalized(params, states), actions)


def run_length_rule(updates: int, learner_overrides: dict[str, Any]) -> tuple[int, dict]:
    """(updates, learner overrides) when the run's length was not given: as many sampled
    transitions as MABCQ at the same preset, updates x MABCQ's batch / TD3+BC's batch (paper
    preset: 5 x 10^4 x 1024 / 256 = 2 x 10^5 updates at TD3+BC's own batch 256; its paper runs
    10^6). docs/learners.md, "Fair baselines"."""
    from mabcq.learners.registry import learner_config

    mabcq_batch = learner_config("mabcq", **learner_overrides).batch_size
    own_batch = learner_config("td3bc", **learner_overrides).batch_size
    return -(-updates * mabcq_batch // own_batch), {}


LEARNER, CONFIG = TD3BCLearner, TD3BCConfig  # for learners.registry
