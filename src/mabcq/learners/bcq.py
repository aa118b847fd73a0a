"""BCQ with MABCQ's importance weights (paper section 3.3, Algorithm 1); one agent, pure functions.

config.use_vd / config.use_tn select the variant: MABCQ (both), w/o lambda_tn, w/o lambda_vd,
BCQ (neither). Networks per agent: G1(s, a), G2(s, a, s') (only with lambda_tn), perturbation
xi, twin critics, target copies of xi and the critics.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from mabcq.learners import common
from mabcq.learners.base import AgentState, Batch
from mabcq.learners.config import LearnerConfig
from mabcq.learners.weighting import WeightedLearner, first_head
from mabcq.nets import Perturbation


def select_candidates(candidates: jax.Array, q_values: jax.Array) -> jax.Array:
    """The policy's choice (paper's pi_i): per state, the candidate with the highest Q.

    candidates [B, n, A], q_values [B, n] -> [B, A]
    """
    best = jnp.argmax(q_values, axis=-1)
    return jnp.take_along_axis(candidates, best[:, None, None], axis=1)[:, 0]


class BCQLearner(WeightedLearner):
    """One agent's (MA)BCQ learner: networks critic, actor (xi), vae1 (G1), vae2 (G2)."""

    config: LearnerConfig

    def __init__(self, config: LearnerConfig, method: str = "mabcq") -> None:
        super().__init__(config, method)

    # --- construction ---------------------------------------------------------------------------

    def _actor(self, action_dim: int) -> Perturbation:
        cfg = self.config
        return Perturbation(cfg.hidden_sizes, action_dim, cfg.max_action, cfg.perturbation_scale,
                            cfg.weight_init)

    def _vae_names(self) -> tuple[str, ...]:
        """G1 always (the policy samples from it), G2 with lambda_tn."""
        return ("vae1", "vae2") if self.config.use_tn else ("vae1",)

    def init(self, key: jax.Array, state_dim: int, action_dim: int) -> AgentState:
        params, opt_states = self._init_networks(key, state_dim, action_dim,
                                                 actor_sees_action=True)
        targets = {"critic": params["critic"], "actor": params["actor"]}
        return AgentState(params, targets, opt_states, jnp.zeros((), jnp.int32))

    # --- the update (Algorithm 1 lines 6-9) -------------------------------------------------

    def update(
        self, agent_state: AgentState, batch: Batch, key: jax.Array
    ) -> tuple[AgentState, dict[str, jax.Array]]:
        cfg = self.config
        vae_key, target_key, actor_key = jax.random.split(key, 3)
        metrics: dict[str, jax.Array] = {}
        means: dict[str, jax.Array] = {}
        if cfg.vae_in_update:
            agent_state, metrics, means = self._fit_vaes(agent_state, batch, vae_key)
        params = agent_state.params
        action_dim = batch.actions.shape[-1]
        actor = self._actor(action_dim)
        vae = common.make_vae(cfg, action_dim)
        n = cfg.n_candidates

        # Target pass over n candidates per next state (the bulk of the FLOPs): each next state
        # [B, 1, S] is broadcast against its candidates [B, n, A], never repeated.
        next_states = batch.next_states[:, None, :]
        candidates = common.sample_from_vae(
            vae, params["vae1"], batch.next_states, target_key, cfg.latent_clip, n
        )  # [B, n, A]
        candidates = actor.apply(agent_state.target_params["actor"], next_states, candidates)
        target_critic = agent_state.target_params["critic"]
        candidate_q = self.critic.apply(target_critic, next_states, candidates)  # [2, B, n]
        mixed = cfg.double_q_mix * jnp.min(candidate_q, 0) + (1.0 - cfg.double_q_mix) * jnp.max(
            candidate_q, 0
        )
        next_values = jnp.max(mixed, axis=1)  # V(s') = Q^(s', pi^(s')), [B]
        targets = batch.rewards + cfg.gamma * (1.0 - batch.dones) * next_values
        targets = jax.lax.stop_gradient(targets)

        # E[V] = (Q^(s, a_i) - r) / gamma with the first target critic (one extra pass).
        sample_weights, weight_metrics = self._sample_weights(
            agent_state, batch, next_values,
            lambda: self._q1(target_critic, batch.states, batch.actions), means)
        metrics.update(weight_metrics)

        # Critic: paper eq. (1), per-sample weighted squared TD error, summed over the twins.
        def critic_loss_fn(critic_params: Any) -> tuple[jax.Array, jax.Array]:
            q = self.critic.apply(critic_params, batch.states, batch.actions)  # [2, B]
            loss = jnp.mean(sample_weights * jnp.sum((q - targets) ** 2, axis=0))
            return loss, jnp.mean(q[0])

        (critic_loss, q_mean), critic_grads = jax.value_and_grad(critic_loss_fn, has_aux=True)(
            params["critic"]
        )
        critic_params, critic_opt = common.optimizer_step(
            self.critic_opt, params["critic"], agent_state.opt_states["critic"], critic_grads
        )

        # Perturbation xi: paper eq. (2), maximize weighted Q1(s, a~ + xi(s, a~)), a~ ~ G1(s).
        sampled = common.sample_from_vae(
            vae, params["vae1"], batch.states, actor_key, cfg.latent_clip
        )

        def actor_loss_fn(actor_params: Any) -> jax.Array:
            perturbed = actor.apply(actor_params, batch.states, sampled)
            q1 = self._q1(critic_params, batch.states, perturbed)
            return -jnp.mean(sample_weights * q1)

        actor_loss, actor_grads = jax.value_and_grad(actor_loss_fn)(params["actor"])
        actor_params, actor_opt = common.optimizer_step(
            self.actor_opt, params["actor"], agent_state.opt_states["actor"], actor_grads
        )

        new_params = {**params, "critic": critic_params, "actor": actor_params}
        new_targets = common.soft_update(
            agent_state.target_params, {"critic": critic_params, "actor": actor_params}, cfg.tau
        )
        new_opt = {**agent_state.opt_states, "critic": critic_opt, "actor": actor_opt}
        metrics.update(
            critic_loss=critic_loss,
            actor_loss=actor_loss,
            q_mean=q_mean,
            target_mean=jnp.mean(targets),
        )
        new_state = AgentState(new_params, new_targets, new_opt, agent_state.step + 1)
        return new_state, metrics

    def _q1(self, critic_params: Any, states: jax.Array, actions: jax.Array) -> jax.Array:
        """First critic only: [..., S] x [..., A] -> [...]."""
        return first_head(self.first_critic, critic_params, states, actions)

    # --- acting ------------------------------------------------------------------------------

    def _candidates(
        self, params: dict[str, Any], states: jax.Array, key: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """n perturbed candidates per state and their Q1: ([B, n, A], [B, n])."""
        action_dim = common.output_dim(params["actor"])
        vae = common.make_vae(self.config, action_dim)
        sampled = common.sample_from_vae(
            vae, params["vae1"], states, key, self.config.latent_clip, self.config.n_candidates
        )
        perturbed = self._actor(action_dim).apply(params["actor"], states[:, None, :], sampled)
        q1 = self._q1(params["critic"], states[:, None, :], perturbed)
        return perturbed, q1

    def act(self, agent_state: AgentState, states: jax.Array, key: jax.Array) -> jax.Array:
        candidates, q1 = self._candidates(agent_state.params, states, key)
        return select_candidates(candidates, q1)

    def value(self, agent_state: AgentState, states: jax.Array, key: jax.Array) -> jax.Array:
        _, q1 = self._candidates(agent_state.params, states, key)
        return jnp.max(q1, axis=-1)

    def q_value(self, agent_state: AgentState, states: jax.Array, actions: jax.Array) -> jax.Array:
        return self._q1(agent_state.params["critic"], states, actions)


LEARNER, CONFIG = BCQLearner, LearnerConfig  # for learners.registry
