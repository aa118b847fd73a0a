"""MABCQ: BCQ with the two importance weights (paper section 3.3, Algorithm 1), for one agent i.

Read top to bottom, this is Algorithm 1 for agent i on its own dataset B_i:
- networks (lines 2-3): G1 = (E1, D1), the conditional VAE of a_i given s; G2 = (E2, D2), given
  (s, s') (kept only with lambda_tn); the perturbation xi_i(s, a) in [-Phi, Phi]; twin critics
  Q_i; target copies of xi_i and Q_i;
- line 4, `pretrain_update`: fit G1 and G2 on B_i (learners/weighted.py; the loop runs it for
  the run's pretrain updates first);
- lines 6-9, `update`: on a mini-batch of B_i, the target y with n candidates, the weights
  lambda_vd (from V(s') and E[V]) and lambda_tn (from G1 and G2), the critic loss (1), the
  perturbation objective (2), the soft target update;
- the policy pi_i (`act`): n actions from G1, perturbed by xi_i, the one with the highest Q_i.

The weights' formulas are in mabcq/weights.py. Which weights apply (the method: MABCQ, w/o
lambda_tn, w/o lambda_vd, BCQ with neither), their options and a grid's variant masking are
decided in learners/weighting.py; where lambda_tn comes from (a table precomputed while G1/G2
stay fixed, this update's latent means, or G1/G2 again) in learners/weighted.py. All of that
changes which numbers the weights are, not the steps below.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from mabcq import weights
from mabcq.learners import common, weighting
from mabcq.learners.base import AgentState, Batch
from mabcq.learners.config import LearnerConfig
from mabcq.learners.weighted import WeightedLearner
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

    # --- the networks (Algorithm 1 lines 2-3) -------------------------------------------------

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
        """One update on a mini-batch of agent i's own data (line 6: the loop samples it)."""
        cfg = self.config
        vae_key, target_key, actor_key = jax.random.split(key, 3)
        # With vae_in_update (BCQ's own schedule) G1/G2 also take a step here; Algorithm 1
        # leaves them as line 4 fitted them.
        agent_state, metrics, latent_means = self.fit_vaes_in_update(agent_state, batch, vae_key)
        params = agent_state.params
        action_dim = batch.actions.shape[-1]
        actor = self._actor(action_dim)
        vae = common.make_vae(cfg, action_dim)
        target_critic = agent_state.target_params["critic"]
        settings = weighting.settings(cfg, batch.variant)

        # Target y = r + gamma (1 - done) Q^(s', pi^(s')) (eq. 1), pi^ the policy of the target
        # networks: n candidates a'_j ~ G1(s'), each perturbed by the target xi^, scored by
        # BCQ's soft clipped double Q (mix * min + (1 - mix) * max of the twin targets). Each
        # next state [B, 1, S] is broadcast against its candidates [B, n, A], never repeated.
        next_states = batch.next_states[:, None, :]
        candidates = common.sample_from_vae(
            vae, params["vae1"], batch.next_states, target_key, cfg.latent_clip, cfg.n_candidates
        )  # [B, n, A]
        candidates = actor.apply(agent_state.target_params["actor"], next_states, candidates)
        candidate_q = self.critic.apply(target_critic, next_states, candidates)  # [2, B, n]
        mixed = cfg.double_q_mix * jnp.min(candidate_q, 0) + (1.0 - cfg.double_q_mix) * jnp.max(
            candidate_q, 0
        )
        next_values = jnp.max(mixed, axis=1)  # V(s') = Q^(s', pi^(s')), [B]
        targets = batch.rewards + cfg.gamma * (1.0 - batch.dones) * next_values
        targets = jax.lax.stop_gradient(targets)

        # The weights (section 3.3), from the target networks, no gradient:
        # lambda_vd = clip(1 + (V(s') - E[V]) / |E[V]|, 1 - eps, 1 + eps), with
        # E[V] = (Q^(s, a_i) - r) / gamma from the first target critic (lambda_vd only), and
        # lambda_tn = phi(mu1) / phi(mu2), mu1 = E1(s, a_i) and mu2 = E2(s, a_i, s') the latent
        # means of G1 and G2; w = lambda_tn * lambda_vd.
        expected_values = None
        if settings.use_vd:
            expected_values = weights.expected_value(
                self.q1(target_critic, batch.states, batch.actions), batch.rewards, cfg.gamma)
        sample_weights, weight_metrics = self.sample_weights(
            settings, agent_state, batch, next_values, expected_values, latent_means)
        metrics.update(weight_metrics)

        # Line 7, critic: minimize eq. (1), E[lambda_tn lambda_vd (Q_i(s, a_i) - y)^2], summed
        # over the twins.
        def critic_loss_fn(critic_params: Any) -> tuple[jax.Array, jax.Array]:
            q = self.critic.apply(critic_params, batch.states, batch.actions)  # [2, B]
            return common.weighted_td_loss(sample_weights, q, targets), jnp.mean(q[0])

        (critic_loss, q_mean), critic_grads = jax.value_and_grad(critic_loss_fn, has_aux=True)(
            params["critic"]
        )
        critic_params, critic_opt = common.optimizer_step(
            self.critic_opt, params["critic"], agent_state.opt_states["critic"], critic_grads
        )

        # Line 8, perturbation xi: maximize eq. (2), E[lambda_tn lambda_vd Q_i(s, a~ + xi(s, a~))],
        # a~ ~ G1(s), with the critic just updated.
        sampled = common.sample_from_vae(
            vae, params["vae1"], batch.states, actor_key, cfg.latent_clip
        )

        def actor_loss_fn(actor_params: Any) -> jax.Array:
            perturbed = actor.apply(actor_params, batch.states, sampled)
            return -jnp.mean(sample_weights * self.q1(critic_params, batch.states, perturbed))

        actor_loss, actor_grads = jax.value_and_grad(actor_loss_fn)(params["actor"])
        actor_params, actor_opt = common.optimizer_step(
            self.actor_opt, params["actor"], agent_state.opt_states["actor"], actor_grads
        )

        # Line 9, targets: Q^ <- tau Q + (1 - tau) Q^, xi^ likewise.
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

    # --- the policy pi_i and its values ---------------------------------------------------

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
        q1 = self.q1(params["critic"], states[:, None, :], perturbed)
        return perturbed, q1

    def act(self, agent_state: AgentState, states: jax.Array, key: jax.Array) -> jax.Array:
        candidates, q1 = self._candidates(agent_state.params, states, key)
        return select_candidates(candidates, q1)

    def value(self, agent_state: AgentState, states: jax.Array, key: jax.Array) -> jax.Array:
        _, q1 = self._candidates(agent_state.params, states, key)
        return jnp.max(q1, axis=-1)

    def q_value(self, agent_state: AgentState, states: jax.Array, actions: jax.Array) -> jax.Array:
        return self.q1(agent_state.params["critic"], states, actions)


LEARNER, CONFIG = BCQLearner, LearnerConfig  # for learners.registry
