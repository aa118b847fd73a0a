"""What every learner with MABCQ's weights shares: G1/G2 and lambda_tn, and the per-sample weights.

A base learner (BCQ, CQL, TD3+BC) inherits `WeightedLearner` and supplies, in its update, the
values it already has: V(s') from its own target estimate (inside its TD target) and a thunk for
Q^(s, a_i) from its first target critic (E[V] = (Q^(s, a_i) - r) / gamma). `_sample_weights`
returns w = lambda_vd * lambda_tn [B] (stop-gradient, 1 where a weight is off), which the
learner multiplies into its per-sample TD loss (paper eq. 1) and its actor objective (eq. 2).

lambda_tn = phi(mu1) / phi(mu2) from G1(s, a_i) and G2(s, a_i, s'), conditional VAEs fitted on
the agent's own data before the Q updates (Algorithm 1 line 4), as for MABCQ. A learner that
does not act through G1 keeps G1/G2 only when it uses lambda_tn.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from mabcq import weights
from mabcq.learners import common
from mabcq.learners.base import AgentState, Batch
from mabcq.learners.config import BaseLearnerConfig
from mabcq.nets import TwinCritic

TABLE_CHUNK = 4096  # rows per pass when lambda_tn is precomputed for a whole dataset


class WeightedLearner:
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

    def prepare(self, agent_state: AgentState, transitions: Batch, size: jax.Array) -> AgentState:
        """Nothing to take from the whole dataset (TD3+BC overrides this)."""
        return agent_state

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

    def _sample_weights(
        self,
        agent_state: AgentState,
        batch: Batch,
        next_values: jax.Array,
        target_q_data: Callable[[], jax.Array],
        means: dict[str, jax.Array],
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """(w = lambda_vd * lambda_tn [B], their metrics), stop-gradient.

        next_values: V(s') [B] from the learner's own target estimate (unmasked; dones are
        handled in weights.value_deviation). target_q_data: () -> Q^(s, a_i) [B] from the first
        target critic, called only when lambda_vd is on. means: latent means from a G1/G2 step
        in this update (vae_in_update), else {}.

        batch.variant None: the config decides (Python values: an option left at the paper's
        default traces no operation, so the default path computes what it always did).
        batch.variant [len(VARIANT_FIELDS)] as data: both weights and every option are computed
        from it and a switched-off weight is replaced by exactly 1, so a variant equals the
        learner built for it alone.
        """
        cfg, variant = self.config, batch.variant
        if variant is None:
            use_vd, use_tn, optimism = cfg.use_vd, cfg.use_tn, cfg.optimism
            terminal_one: Any = cfg.vd_terminal == "one"
            tn_clip: Any = cfg.tn_clip
            self_normalize: Any = cfg.tn_self_normalize
            relative_guard: Any = cfg.vd_guard_rel
        else:
            if variant.shape[-1] != len(VARIANT_FIELDS):
                raise ValueError(f"Batch.variant holds {variant.shape[-1]} values, expected "
                                 f"{len(VARIANT_FIELDS)}: {VARIANT_FIELDS} (variant_row)")
            use_vd = use_tn = True
            optimism, terminal_one, tn_clip = variant[2], variant[3], (variant[4], variant[5])
            self_normalize, relative_guard = variant[6], variant[7]
        sample_weights = jnp.ones_like(batch.rewards)
        metrics: dict[str, jax.Array] = {}
        if use_vd:
            lambda_vd = weights.value_deviation(
                next_values, target_q_data(), batch.rewards, batch.dones, cfg.gamma, optimism,
                cfg.vd_guard, terminal_one=terminal_one, relative_guard=relative_guard)
            if variant is not None:
                lambda_vd = jnp.where(variant[0] > 0, lambda_vd, 1.0)
            sample_weights = sample_weights * lambda_vd
            metrics.update(weights.weight_diagnostics("lambda_vd", lambda_vd))
            metrics.update(weights.clip_shares("lambda_vd", lambda_vd, 1.0 - optimism,
                                               1.0 + optimism))
            # Share of the batch at the clip [1 - eps, 1 + eps]: where |V(s') - E[V]| >= eps
            # |E[V]| (E[V] ~ 0 early on and on terminal transitions saturates it).
            metrics["lambda_vd_at_clip"] = jnp.mean(
                jnp.abs(lambda_vd - 1.0) >= optimism * (1.0 - 1e-6))
            metrics.update(weights.terminal_split(lambda_vd, batch.dones))
        if use_tn:
            if batch.lambda_tn is not None and not cfg.vae_in_update:
                lambda_tn = batch.lambda_tn  # G1/G2 frozen: precomputed per transition
            elif "vae2" in means:
                lambda_tn = weights.transition_normalization(means["vae1"], means["vae2"],
                                                             cfg.tn_max_log)
            else:
                lambda_tn = self.lambda_tn(agent_state.params, batch)
            clipped = weights.shape_transition_weights(lambda_tn, tn_clip)
            lambda_tn = weights.shape_transition_weights(clipped, None, self_normalize)
            if variant is not None:
                lambda_tn = jnp.where(variant[1] > 0, lambda_tn, 1.0)
            sample_weights = sample_weights * lambda_tn
            metrics.update(weights.weight_diagnostics("lambda_tn", lambda_tn))
            # At the clip: the shares before self-normalization, at the clip's bounds or, with
            # no clip, at the safety clamp e^(+-tn_max_log).
            low, high = (tn_clip if tn_clip is not None else
                         (math.exp(-cfg.tn_max_log), math.exp(cfg.tn_max_log)))
            metrics.update(weights.clip_shares("lambda_tn", clipped, low, high))
        metrics["weight_mean"] = jnp.mean(sample_weights)
        metrics["weight_ess"] = weights.effective_sample_size(sample_weights)
        return sample_weights, metrics


# Batch.variant's entries, in order: which weights, eps, and the options (variant_row).
VARIANT_FIELDS = ("use_vd", "use_tn", "optimism", "vd_terminal_one", "tn_clip_low",
                  "tn_clip_high", "tn_self_normalize", "vd_guard_rel")


def variant_row(config: BaseLearnerConfig) -> list[float]:
    """A config's weights and options as one row of a grid's variants (Batch.variant): what
    `_sample_weights` reads as data so every method of a family trains in one compiled step.
    No tn_clip is the range (0, inf), which leaves lambda_tn bitwise as it is."""
    low, high = config.tn_clip if config.tn_clip is not None else (0.0, math.inf)
    return [float(config.use_vd), float(config.use_tn), float(config.optimism),
            float(config.vd_terminal == "one"), float(low), float(high),
            float(config.tn_self_normalize), float(config.vd_guard_rel)]


def first_head(critic: Any, critic_params: Any, states: jax.Array, actions: jax.Array
               ) -> jax.Array:
    """Q1 of a TwinCritic's parameters with a one-head module `critic`: [..., S] x [..., A] ->
    [...]; the second head is not computed."""
    first = jax.tree.map(lambda leaf: leaf[:1], critic_params)
    return critic.apply(first, states, actions)[0]
