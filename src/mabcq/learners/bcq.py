"""BCQ with MABCQ's importance weights (paper section 3.3, Algorithm 1); one agent, pure functions.

config.use_vd / config.use_tn select the variant: MABCQ (both), w/o lambda_tn, w/o lambda_vd,
BCQ (neither). Networks per agent: G1(s, a), G2(s, a, s') (only with lambda_tn), perturbation
xi, twin critics, target copies of xi and the critics.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from mabcq import weights
from mabcq.config import LearnerConfig
from mabcq.learners import common
from mabcq.learners.base import AgentState, Batch
from mabcq.nets import Perturbation, TwinCritic


def select_candidates(candidates: jax.Array, q_values: jax.Array) -> jax.Array:
    """The policy's choice (paper's pi_i): per state, the candidate with the highest Q.

    candidates [B, n, A], q_values [B, n] -> [B, A]
    """
    best = jnp.argmax(q_values, axis=-1)
    return jnp.take_along_axis(candidates, best[:, None, None], axis=1)[:, 0]


class BCQLearner:
    """One agent's (MA)BCQ learner: networks critic, actor (xi), vae1 (G1), vae2 (G2)."""

    def __init__(self, config: LearnerConfig, method: str = "mabcq") -> None:
        self.config = config
        self.method = method
        self.critic = TwinCritic(config.hidden_sizes, 2)
        # The first critic alone (same parameter tree, heads axis sliced to 1): the policy, the
        # actor loss and E[V] need Q1 only, so the second head is not computed for them.
        self.first_critic = TwinCritic(config.hidden_sizes, 1)
        self.critic_opt = optax.adam(config.lr_critic)
        self.actor_opt = optax.adam(config.lr_actor)
        self.vae_opt = optax.adam(config.lr_vae)

    # --- construction ---------------------------------------------------------------------------

    def _actor(self, action_dim: int) -> Perturbation:
        cfg = self.config
        return Perturbation(cfg.hidden_sizes, action_dim, cfg.max_action, cfg.perturbation_scale)

    def _vae_names(self) -> tuple[str, ...]:
        return ("vae1", "vae2") if self.config.use_tn else ("vae1",)

    def init(self, key: jax.Array, state_dim: int, action_dim: int) -> AgentState:
        critic_key, actor_key, vae1_key, vae2_key = jax.random.split(key, 4)
        states, actions = jnp.zeros((1, state_dim)), jnp.zeros((1, action_dim))
        params = {
            "critic": self.critic.init(critic_key, states, actions),
            "actor": self._actor(action_dim).init(actor_key, states, actions),
            "vae1": common.init_vae(self.config, vae1_key, state_dim, action_dim),
        }
        if self.config.use_tn:
            params["vae2"] = common.init_vae(self.config, vae2_key, 2 * state_dim, action_dim)
        opt_states = {
            "critic": self.critic_opt.init(params["critic"]),
            "actor": self.actor_opt.init(params["actor"]),
        }
        for name in self._vae_names():
            opt_states[name] = self.vae_opt.init(params[name])
        targets = {"critic": params["critic"], "actor": params["actor"]}
        return AgentState(params, targets, opt_states, jnp.zeros((), jnp.int32))

    # --- generative models (Algorithm 1 line 4) ----------------------------------------------

    def _fit_vaes(
        self, agent_state: AgentState, batch: Batch, key: jax.Array
    ) -> tuple[AgentState, dict[str, jax.Array], dict[str, jax.Array]]:
        """One step on G1 (and G2); also returns the pre-step latent means {name: [B, latent]}."""
        params, opt_states = dict(agent_state.params), dict(agent_state.opt_states)
        vae = common.make_vae(self.config, batch.actions.shape[-1])
        metrics, means = {}, {}
        for name, vae_key in zip(self._vae_names(), jax.random.split(key, 2), strict=False):
            params[name], opt_states[name], loss, means[name] = common.vae_step(
                vae,
                self.vae_opt,
                params[name],
                opt_states[name],
                common.vae_conditions(batch, name),
                batch.actions,
                vae_key,
                self.config.vae_kl_weight,
            )
            metrics[f"{name}_loss"] = loss
        return agent_state._replace(params=params, opt_states=opt_states), metrics, means

    def pretrain_update(
        self, agent_state: AgentState, batch: Batch, key: jax.Array
    ) -> tuple[AgentState, dict[str, jax.Array]]:
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
        values from the same frozen encoders; precomputing drops the two encoder passes (about
        30 of MABCQ's 42 extra MFLOP per update at the paper's sizes). None when not applicable.
        """
        if not self.config.use_tn or self.config.vae_in_update:
            return None
        chunk = 4096
        rows = transitions.states.shape[0]
        padded = -(-rows // chunk) * chunk
        fields = (transitions.states, transitions.actions, transitions.next_states)

        def pad_chunks(x: jax.Array) -> jax.Array:
            x = jnp.pad(x, [(0, padded - rows)] + [(0, 0)] * (x.ndim - 1))
            return x.reshape((padded // chunk, chunk) + x.shape[1:])

        def one_chunk(chunk_fields):
            states, actions, next_states = chunk_fields
            part = Batch(states, actions, jnp.zeros(chunk), next_states, jnp.zeros(chunk))
            return self.lambda_tn(agent_state.params, part)

        table = jax.lax.map(one_chunk, tuple(pad_chunks(x) for x in fields))
        return table.reshape(-1)[:rows]

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

        lambda_vd, lambda_tn, optimism = self._weights(agent_state, batch, next_values, means)
        sample_weights = jnp.ones_like(batch.rewards)
        if lambda_vd is not None:
            sample_weights = sample_weights * lambda_vd
            metrics.update(weights.weight_stats("lambda_vd", lambda_vd))
            # Share of the batch at the clip [1 - eps, 1 + eps]: where |V(s') - E[V]| >= eps |E[V]|
            # (E[V] ~ 0 early on and on terminal transitions saturates it).
            metrics["lambda_vd_at_clip"] = jnp.mean(
                jnp.abs(lambda_vd - 1.0) >= optimism * (1.0 - 1e-6))
        if lambda_tn is not None:
            sample_weights = sample_weights * lambda_tn
            metrics.update(weights.weight_stats("lambda_tn", lambda_tn))

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
            weight_mean=jnp.mean(sample_weights),
        )
        new_state = AgentState(new_params, new_targets, new_opt, agent_state.step + 1)
        return new_state, metrics

    def _weights(
        self,
        agent_state: AgentState,
        batch: Batch,
        next_values: jax.Array,
        means: dict[str, jax.Array],
    ) -> tuple[jax.Array | None, jax.Array | None, Any]:
        """(lambda_vd, lambda_tn, eps): the weights as applied to the losses, [B] each, or None
        when off, and the optimism level they were clipped with.

        batch.variant None: config.use_vd/use_tn decide (Python flags: nothing else is traced).
        batch.variant (use_vd, use_tn, optimism) as data: both weights are computed and a switched
        off one is replaced by exactly 1, so a variant equals the learner built for it alone.
        """
        cfg = self.config
        variant = batch.variant
        use_vd = cfg.use_vd if variant is None else True
        use_tn = cfg.use_tn if variant is None else True
        optimism = cfg.optimism if variant is None else variant[2]
        lambda_vd = lambda_tn = None
        if use_vd:
            # E[V] = (Q^(s, a_i) - r) / gamma with the first target critic (one extra pass).
            target_q_data = self._q1(agent_state.target_params["critic"], batch.states,
                                     batch.actions)
            lambda_vd = weights.value_deviation(next_values, target_q_data, batch.rewards,
                                                batch.dones, cfg.gamma, optimism, cfg.vd_guard)
        if use_tn:
            if batch.lambda_tn is not None and not cfg.vae_in_update:
                lambda_tn = batch.lambda_tn  # G1/G2 frozen: precomputed per transition
            elif "vae2" in means:
                lambda_tn = weights.transition_normalization(
                    means["vae1"], means["vae2"], cfg.tn_max_log
                )
            else:
                lambda_tn = self.lambda_tn(agent_state.params, batch)
        if variant is not None:
            lambda_vd = jnp.where(variant[0] > 0, lambda_vd, 1.0)
            lambda_tn = jnp.where(variant[1] > 0, lambda_tn, 1.0)
        return lambda_vd, lambda_tn, optimism

    def _q1(self, critic_params: Any, states: jax.Array, actions: jax.Array) -> jax.Array:
        """First critic only: [..., S] x [..., A] -> [...]."""
        first = jax.tree.map(lambda leaf: leaf[:1], critic_params)
        return self.first_critic.apply(first, states, actions)[0]

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
