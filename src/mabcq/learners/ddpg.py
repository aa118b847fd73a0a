"""Independent offline DDPG (paper section 4.2 baseline): no action constraint, no weights.

Same sizes and learning rates as MABCQ: one critic, a deterministic actor, target copies of both.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from mabcq.learners import common
from mabcq.learners.base import AgentState, Batch, LearnerBase
from mabcq.learners.config import LearnerConfig
from mabcq.nets import DeterministicActor, TwinCritic


class DDPGLearner(LearnerBase):
    """One agent's offline DDPG. Networks: critic (one head), actor."""

    def __init__(self, config: LearnerConfig, method: str = "ddpg") -> None:
        self.config = config
        self.method = method
        self.critic = TwinCritic(config.hidden_sizes, 1, config.weight_init)
        self.critic_opt = optax.adam(config.lr_critic)
        self.actor_opt = optax.adam(config.lr_actor)

    def _actor(self, action_dim: int) -> DeterministicActor:
        return DeterministicActor(self.config.hidden_sizes, action_dim, self.config.max_action,
                                  self.config.weight_init)

    def init(self, key: jax.Array, state_dim: int, action_dim: int) -> AgentState:
        critic_key, actor_key = jax.random.split(key)
        states, actions = jnp.zeros((1, state_dim)), jnp.zeros((1, action_dim))
        params = {
            "critic": self.critic.init(critic_key, states, actions),
            "actor": self._actor(action_dim).init(actor_key, states),
        }
        opt_states = {
            "critic": self.critic_opt.init(params["critic"]),
            "actor": self.actor_opt.init(params["actor"]),
        }
        return AgentState(params, dict(params), opt_states, jnp.zeros((), jnp.int32))

    def pretrain_update(
        self, agent_state: AgentState, batch: Batch, key: jax.Array
    ) -> tuple[AgentState, dict[str, jax.Array]]:
        """DDPG has no generative model to fit: the pretrain phase leaves the state unchanged."""
        return agent_state, {}

    def update(
        self, agent_state: AgentState, batch: Batch, key: jax.Array
    ) -> tuple[AgentState, dict[str, jax.Array]]:
        cfg = self.config
        params, targets = agent_state.params, agent_state.target_params
        actor = self._actor(batch.actions.shape[-1])
        next_actions = actor.apply(targets["actor"], batch.next_states)
        next_values = self.critic.apply(targets["critic"], batch.next_states, next_actions)[0]
        y = jax.lax.stop_gradient(batch.rewards + cfg.gamma * (1.0 - batch.dones) * next_values)

        critic_params, critic_opt, critic_loss, q_mean = common.td_critic_step(
            self.critic, self.critic_opt, params["critic"], agent_state.opt_states["critic"],
            batch, y,
        )

        def actor_loss_fn(actor_params: Any) -> jax.Array:
            actions = actor.apply(actor_params, batch.states)
            return -jnp.mean(self.critic.apply(critic_params, batch.states, actions)[0])

        actor_loss, grads = jax.value_and_grad(actor_loss_fn)(params["actor"])
        actor_params, actor_opt = common.optimizer_step(
            self.actor_opt, params["actor"], agent_state.opt_states["actor"], grads
        )
        new_params = {"critic": critic_params, "actor": actor_params}
        new_state = AgentState(
            new_params,
            common.soft_update(targets, new_params, cfg.tau),
            {"critic": critic_opt, "actor": actor_opt},
            agent_state.step + 1,
        )
        metrics = {
            "critic_loss": critic_loss,
            "actor_loss": actor_loss,
            "q_mean": q_mean,
            "target_mean": jnp.mean(y),
        }
        return new_state, metrics

    def act(self, agent_state: AgentState, states: jax.Array, key: jax.Array) -> jax.Array:
        action_dim = common.output_dim(agent_state.params["actor"])
        return self._actor(action_dim).apply(agent_state.params["actor"], states)

    def q_value(self, agent_state: AgentState, states: jax.Array, actions: jax.Array) -> jax.Array:
        return self.critic.apply(agent_state.params["critic"], states, actions)[0]


LEARNER, CONFIG = DDPGLearner, LearnerConfig  # for learners.registry
