"""What every learner with MABCQ's weights shares: its networks (twin critics, an actor, G1/G2),
fitting G1 and G2 (Algorithm 1 line 4), and lambda_tn from them.

A base learner (BCQ, CQL, TD3+BC) inherits `WeightedLearner` and computes, in its update, V(s')
from its own target estimate and E[V] from its first target critic; mabcq.learners.weighting
turns those into the per-sample weights that multiply its TD loss (paper eq. 1) and its actor
objective (eq. 2), with the formulas of mabcq.weights.

lambda_tn = phi(mu1) / phi(mu2) from G1(s, a_i) and G2(s, a_i, s'), conditional VAEs fitted on
the agent's own data before the Q updates (Algorithm 1 line 4), as for MABCQ. A learner that
does not act through G1 keeps G1/G2 only when it uses lambda_tn.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from mabcq import weights
from mabcq.learners import common
from mabcq.learners.base import AgentState, Batch, LearnerBase
from mabcq.learners.config import BaseLearnerConfig
from mabcq.learners.weighting import ShapedWeight, WeightSettings
from mabcq.nets import TwinCritic

TABLE_CHUNK = 4096  # rows per pass when lambda_tn is precomputed for a whole dataset


class WeightedLearner(LearnerBase):
    """Base of one agent's learner with MABCQ's weights: twin critics (and the first head alone:
    the policy, the actor loss and E[V] need Q1 only), Adam for critic, actor and G1/G2."""

    def __init__(self, config: BaseLearnerConfig, method: str) -> None:
        self.config = config
        self.method = method
        self.critic = TwinCritic(config.hidden_sizes, 2, config.weight_init)
        self.first_critic = TwinCritic(config.hidden_sizes, 1, config.weight_init)
        self.critic_opt = optax.adam(config.lr_critic)
        self.actor_opt = optax.adam(config.lr_actor)
        self.vae_opt = optax.adam(config.lr_vae)

    def _vae_names(self) -> tuple[str, ...]:
        """The generative models this learner keeps: G1 and G2 for lambda_tn, else none."""
        return ("vae1", "vae2") if self.config.use_tn else ()

    def _init_networks(self, key: jax.Array, state_dim: int, action_dim: int, *,
                       actor_sees_action: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
        """(params, optimizer states) of the networks every base learner has: the twin critic,
        its actor (`self._actor(action_dim)`, called on (s) or, for BCQ's perturbation model,
        (s, a)) and the kept G1/G2, from key split as [critic, actor, G1, G2]. A learner adds
        its own extras (TD3+BC's normalizer, CQL's temperatures) to both dicts."""
        critic_key, actor_key, vae1_key, vae2_key = jax.random.split(key, 4)
        states, actions = jnp.zeros((1, state_dim)), jnp.zeros((1, action_dim))
        vae_params, vae_opt_states = self._init_vaes(jnp.stack([vae1_key, vae2_key]), state_dim,
                                                     action_dim)
        actor_inputs = (states, actions) if actor_sees_action else (states,)
        params = {"critic": self.critic.init(critic_key, states, actions),
                  "actor": self._actor(action_dim).init(actor_key, *actor_inputs), **vae_params}
        opt_states = {"critic": self.critic_opt.init(params["critic"]),
                      "actor": self.actor_opt.init(params["actor"]), **vae_opt_states}
        return params, opt_states

    def _actor(self, action_dim: int) -> Any:
        raise NotImplementedError

    def _init_vaes(self, keys: jax.Array, state_dim: int, action_dim: int
                   ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(params, optimizer states) of the kept models; keys [2]: G1's and G2's init keys, used
        or not, so the other networks' keys do not depend on which models are kept."""
        conditions = {"vae1": state_dim, "vae2": 2 * state_dim}  # G1 sees s, G2 (s, s')
        params, opt_states = {}, {}
        for name, key in zip(("vae1", "vae2"), keys, strict=True):
            if name in self._vae_names():
                params[name] = common.init_vae(self.config, key, conditions[name], action_dim)
                opt_states[name] = self.vae_opt.init(params[name])
        return params, opt_states

    def _fit_vaes(
        self, agent_state: AgentState, batch: Batch, key: jax.Array
    ) -> tuple[AgentState, dict[str, jax.Array], dict[str, jax.Array]]:
        """One step on every kept model; also returns the pre-step latent means {name: [B, L]}."""
        params, opt_states = dict(agent_state.params), dict(agent_state.opt_states)
        vae = common.make_vae(self.config, batch.actions.shape[-1])
        metrics, means = {}, {}
        for name, vae_key in zip(self._vae_names(), jax.random.split(key, 2), strict=False):
            params[name], opt_states[name], loss, means[name] = common.vae_step(
                vae, self.vae_opt, params[name], opt_states[name],
                common.vae_conditions(batch, name), batch.actions, vae_key,
                self.config.vae_kl_weight,
            )
            metrics[f"{name}_loss"] = loss
        return agent_state._replace(params=params, opt_states=opt_states), metrics, means

    def pretrain_update(
        self, agent_state: AgentState, batch: Batch, key: jax.Array
    ) -> tuple[AgentState, dict[str, jax.Array]]:
        """Algorithm 1 line 4: fit G1 and G2 (a no-op for a learner that keeps none)."""
        agent_state, metrics, _ = self._fit_vaes(agent_state, batch, key)
        return agent_state, metrics

    def lambda_tn(self, params: dict[str, Any], batch: Batch) -> jax.Array:
        """lambda_tn = phi(mu1) / phi(mu2) from G1(s, a_i) and G2(s, a_i, s'), [B] (also the
        evaluation's lambda_tn diagnostic)."""
        vae = common.make_vae(self.config, batch.actions.shape[-1])
        mu1 = common.latent_means(vae, params["vae1"], batch.states, batch.actions)
        conditions = common.vae_conditions(batch, "vae2")
        mu2 = common.latent_means(vae, params["vae2"], conditions, batch.actions)
        return weights.transition_normalization(mu1, mu2, self.config.tn_max_log)

    def transition_weights(self, agent_state: AgentState, transitions: Batch) -> jax.Array | None:
        """lambda_tn of every transition [T], when G1/G2 stay fixed during the Q updates.

        Exact, not an approximation: with vae_in_update False the update would compute the same
        values from the same frozen encoders; precomputing drops the two encoder passes per
        update. None when not applicable.
        """
        if not self.config.use_tn or self.config.vae_in_update:
            return None
        rows = transitions.states.shape[0]
        padded = -(-rows // TABLE_CHUNK) * TABLE_CHUNK
        fields = (transitions.states, transitions.actions, transitions.next_states)

        def pad_chunks(x: jax.Array) -> jax.Array:
            x = jnp.pad(x, [(0, padded - rows)] + [(0, 0)] * (x.ndim - 1))
            return x.reshape((padded // TABLE_CHUNK, TABLE_CHUNK) + x.shape[1:])

        def one_chunk(chunk_fields):
            states, actions, next_states = chunk_fields
            zeros = jnp.zeros(TABLE_CHUNK)
            return self.lambda_tn(agent_state.params, Batch(states, actions, zeros, next_states,
                                                            zeros))

        table = jax.lax.map(one_chunk, tuple(pad_chunks(x) for x in fields))
        return table.reshape(-1)[:rows]

    def fit_vaes_in_update(
        self, agent_state: AgentState, batch: Batch, key: jax.Array
    ) -> tuple[AgentState, dict[str, jax.Array], dict[str, jax.Array]]:
        """BCQ's own schedule (config.vae_in_update): G1 (and G2) take one step in every update,
        which also gives this batch's latent means {name: [B, L]} for lambda_tn. Off (the
        default, Algorithm 1): nothing, ({}, {})."""
        if not self.config.vae_in_update:
            return agent_state, {}, {}
        return self._fit_vaes(agent_state, batch, key)

    def sample_weights(self, settings: WeightSettings, agent_state: AgentState, batch: Batch,
                       next_values: jax.Array, expected_values: jax.Array | None,
                       latent_means: dict[str, jax.Array]
                       ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """(w = lambda_vd * lambda_tn [B], the weights' diagnostics), stop-gradient: lambda_vd
        from V(s') [B] and E[V] [B] (None when lambda_vd is off), lambda_tn from G1 and G2."""
        lambda_vd = None
        if expected_values is not None:
            lambda_vd = settings.value_deviation(next_values, expected_values, batch.dones)
        lambda_tn = self.transition_weight(settings, agent_state, batch, latent_means)
        return settings.sample_weights(lambda_vd, lambda_tn, batch.dones)

    def transition_weight(self, settings: WeightSettings, agent_state: AgentState, batch: Batch,
                          latent_means: dict[str, jax.Array]) -> ShapedWeight | None:
        """lambda_tn of the batch [B] as the update uses it (None when off): from where it is
        already known (the dataset's precomputed table while G1/G2 stay fixed, or this update's
        latent means), else computed from G1 and G2; then the options and the variant's mask
        (weighting.WeightSettings.transition_normalization)."""
        if not settings.use_tn:
            return None
        if batch.lambda_tn is not None and not self.config.vae_in_update:
            lambda_tn = batch.lambda_tn  # G1/G2 frozen: precomputed per transition
        elif "vae2" in latent_means:
            lambda_tn = weights.transition_normalization(latent_means["vae1"],
                                                         latent_means["vae2"],
                                                         self.config.tn_max_log)
        else:
            lambda_tn = self.lambda_tn(agent_state.params, batch)
        return settings.transition_normalization(lambda_tn)

    def q1(self, critic_params: Any, states: jax.Array, actions: jax.Array) -> jax.Array:
        """First critic only (the policy, the actor loss and E[V] need Q1): [..., S] x [..., A]
        -> [...]."""
        return common.first_head(self.first_critic, critic_params, states, actions)
