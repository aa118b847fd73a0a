"""Soft actor-critic (Haarnoja et al., 2018) on a task's joint action: the behavior policies.

Pure functions over an explicit train state: `update(state, batch, key) -> (state, metrics)`,
jitted once (several updates per call through `lax.scan`), and `act` / `mean_action` for
rollouts. Networks are mabcq.nets.MLP like every learner of the project.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from mabcq.nets import MLP

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


@dataclass(frozen=True)
class SACConfig:
    """SAC hyperparameters. The paper trained its behavior policies with OpenAI Spinning Up's
    SAC, so these are Spinning Up's defaults (hidden (256, 256), lr 1e-3, batch 100, polyak
    0.995), except that the temperature is tuned automatically (Haarnoja et al., 2018b) instead
    of fixed at 0.2: one setting for five tasks."""

    hidden_sizes: tuple[int, ...] = (256, 256)
    gamma: float = 0.99
    tau: float = 0.005
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    alpha_lr: float = 1e-3
    init_alpha: float = 1.0
    batch_size: int = 100


class Actor(nn.Module):
    """Tanh-squashed Gaussian policy: [..., state_dim] -> mean, log_std [..., action_dim]."""

    hidden_sizes: tuple[int, ...]
    action_dim: int

    @nn.compact
    def __call__(self, states: jax.Array) -> tuple[jax.Array, jax.Array]:
        out = MLP(self.hidden_sizes, 2 * self.action_dim)(states)
        mean, log_std = jnp.split(out, 2, axis=-1)
        return mean, jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)


class TwinCritic(nn.Module):
    """Two Q networks: ([..., state_dim], [..., action_dim]) -> [2, ...]."""

    hidden_sizes: tuple[int, ...]

    @nn.compact
    def __call__(self, states: jax.Array, actions: jax.Array) -> jax.Array:
        inputs = jnp.concatenate([states, actions], axis=-1)
        q1 = MLP(self.hidden_sizes, 1)(inputs)[..., 0]
        q2 = MLP(self.hidden_sizes, 1)(inputs)[..., 0]
        return jnp.stack([q1, q2])


class SACState(NamedTuple):
    """Everything SAC learns: a pytree (checkpointed with flax.serialization)."""

    actor_params: Any
    critic_params: Any
    target_critic_params: Any
    log_alpha: jax.Array
    actor_opt: Any
    critic_opt: Any
    alpha_opt: Any
    steps: jax.Array


class Batch(NamedTuple):
    """[batch, ...] transitions; `dones` are true terminations only (timeouts bootstrap)."""

    observations: jax.Array
    actions: jax.Array
    rewards: jax.Array
    next_observations: jax.Array
    dones: jax.Array


@dataclass(frozen=True)
class SAC:
    """The SAC functions for one (state_dim, action_dim, config); hashable for jit."""

    state_dim: int
    action_dim: int
    config: SACConfig

    @property
    def actor(self) -> Actor:
        return Actor(self.config.hidden_sizes, self.action_dim)

    @property
    def critic(self) -> TwinCritic:
        return TwinCritic(self.config.hidden_sizes)

    def _optimizers(self):
        c = self.config
        return optax.adam(c.actor_lr), optax.adam(c.critic_lr), optax.adam(c.alpha_lr)

    def init(self, key: jax.Array) -> SACState:
        actor_key, critic_key = jax.random.split(key)
        states = jnp.zeros((1, self.state_dim))
        actions = jnp.zeros((1, self.action_dim))
        actor_params = self.actor.init(actor_key, states)
        critic_params = self.critic.init(critic_key, states, actions)
        log_alpha = jnp.asarray(np.log(self.config.init_alpha), dtype=jnp.float32)
        actor_tx, critic_tx, alpha_tx = self._optimizers()
        return SACState(actor_params, critic_params, critic_params, log_alpha,
                        actor_tx.init(actor_params), critic_tx.init(critic_params),
                        alpha_tx.init(log_alpha), jnp.zeros((), jnp.int32))

    def sample(self, actor_params, states: jax.Array, key: jax.Array):
        """Reparameterized tanh-Gaussian draw: actions [..., A] in [-1, 1], log-probs [...]."""
        mean, log_std = self.actor.apply(actor_params, states)
        std = jnp.exp(log_std)
        pre_tanh = mean + std * jax.random.normal(key, mean.shape)
        actions = jnp.tanh(pre_tanh)
        log_prob = (-0.5 * ((pre_tanh - mean) / std) ** 2 - log_std
                    - 0.5 * jnp.log(2 * jnp.pi)).sum(-1)
        log_prob -= (2 * (jnp.log(2.0) - pre_tanh - jax.nn.softplus(-2 * pre_tanh))).sum(-1)
        return actions, log_prob

    def action_from_noise(self, actor_params, states: jax.Array, normals: jax.Array
                          ) -> jax.Array:
        """The draw of `sample` with its standard normals given: tanh(mean + std * normals),
        [..., state_dim], [..., action_dim] -> [..., action_dim]. Rollouts of the stochastic
        policy pass each episode's own normals, so the draws do not depend on the batching."""
        mean, log_std = self.actor.apply(actor_params, states)
        return jnp.tanh(mean + jnp.exp(log_std) * normals)

    def mean_action(self, actor_params, states: jax.Array) -> jax.Array:
        """Deterministic policy tanh(mean): [..., state_dim] -> [..., action_dim]."""
        mean, _ = self.actor.apply(actor_params, states)
        return jnp.tanh(mean)

    def _update_one(self, state: SACState, batch: Batch, key: jax.Array):
        c = self.config
        critic_key, actor_key = jax.random.split(key)
        actor_tx, critic_tx, alpha_tx = self._optimizers()
        alpha = jnp.exp(state.log_alpha)

        next_actions, next_log_prob = self.sample(
            state.actor_params, batch.next_observations, critic_key)
        next_q = self.critic.apply(state.target_critic_params, batch.next_observations,
                                   next_actions).min(0)
        target = batch.rewards + c.gamma * (1.0 - batch.dones) * (next_q - alpha * next_log_prob)
        target = jax.lax.stop_gradient(target)

        def critic_loss(params):
            q = self.critic.apply(params, batch.observations, batch.actions)
            return ((q - target) ** 2).mean(), q.mean()

        (critic_value, q_mean), critic_grads = jax.value_and_grad(critic_loss, has_aux=True)(
            state.critic_params)
        updates, critic_opt = critic_tx.update(critic_grads, state.critic_opt)
        critic_params = optax.apply_updates(state.critic_params, updates)

        def actor_loss(params):
            actions, log_prob = self.sample(params, batch.observations, actor_key)
            q = self.critic.apply(critic_params, batch.observations, actions).min(0)
            return (alpha * log_prob - q).mean(), log_prob.mean()

        (actor_value, log_prob_mean), actor_grads = jax.value_and_grad(
            actor_loss, has_aux=True)(state.actor_params)
        updates, actor_opt = actor_tx.update(actor_grads, state.actor_opt)
        actor_params = optax.apply_updates(state.actor_params, updates)

        target_entropy = -float(self.action_dim)

        def alpha_loss(log_alpha):
            return -(log_alpha * jax.lax.stop_gradient(log_prob_mean + target_entropy))

        alpha_grad = jax.grad(alpha_loss)(state.log_alpha)
        updates, alpha_opt = alpha_tx.update(alpha_grad, state.alpha_opt)
        log_alpha = optax.apply_updates(state.log_alpha, updates)

        target_critic_params = optax.incremental_update(
            critic_params, state.target_critic_params, c.tau)
        new_state = SACState(actor_params, critic_params, target_critic_params, log_alpha,
                             actor_opt, critic_opt, alpha_opt, state.steps + 1)
        metrics = {"critic_loss": critic_value, "actor_loss": actor_value, "q": q_mean,
                   "alpha": alpha, "entropy": -log_prob_mean}
        return new_state, metrics

    def update_many(self, state: SACState, batches: Batch, key: jax.Array):
        """Apply len(batches) updates in sequence: batches hold [updates, batch, ...]."""
        keys = jax.random.split(key, batches.rewards.shape[0])

        def body(carry, inputs):
            batch, step_key = inputs
            return self._update_one(carry, batch, step_key)

        state, metrics = jax.lax.scan(body, state, (batches, keys))
        return state, jax.tree_util.tree_map(lambda m: m.mean(), metrics)
