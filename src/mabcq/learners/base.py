"""The learner interface: what the training loop may call on one agent's learner.

A learner is a bundle of pure functions over an explicit `AgentState` pytree, so the loop can jit
them once and vmap/map them over agents and seeds. An agent's learner only ever sees that agent's
own batch (and, once in `prepare`, its own dataset): decentralization is a property of these
signatures. This module is the bottom layer: it imports no learner; learners.registry builds
them.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import jax

from mabcq.learners.config import BaseLearnerConfig


class Batch(NamedTuple):
    """A mini-batch of one agent's transitions (leaves may carry leading [seeds, agents] axes)."""

    states: jax.Array  # [B, S]
    actions: jax.Array  # [B, A] this agent's own action
    rewards: jax.Array  # [B]
    next_states: jax.Array  # [B, S]
    dones: jax.Array  # [B] float32, 1.0 = terminal (no bootstrap); timeouts are NOT dones
    # [B] lambda_tn precomputed per transition (see Learner.transition_weights), or None:
    # a learner whose G1/G2 stay fixed during the Q updates may read it instead of recomputing.
    lambda_tn: jax.Array | None = None
    # [len(weighting.VARIANT_FIELDS)] (use_vd, use_tn, optimism, the weights' options) as data,
    # or None (the learner's config decides): lets the methods of one family in a grid share
    # one compiled step (learners.batched, `variants`; weighting.variant_row).
    variant: jax.Array | None = None


class AgentState(NamedTuple):
    """One agent's learner state. Dict keys name the networks ("critic", "actor", "vae1", "vae2").

    params: online parameters; target_params: soft-updated copies (critic, actor);
    opt_states: one optax state per trained network; step: updates done so far (int32 scalar).
    """

    params: dict[str, Any]
    target_params: dict[str, Any]
    opt_states: dict[str, Any]
    step: jax.Array


class Learner(Protocol):
    """One agent's learner. Every method is pure and jit/vmap-able."""

    config: BaseLearnerConfig
    method: str

    def init(self, key: jax.Array, state_dim: int, action_dim: int) -> AgentState: ...

    def prepare(self, agent_state: AgentState, transitions: Batch, size: jax.Array) -> AgentState:
        """Once, right after init: whatever the learner takes from its agent's whole dataset
        (rows [0, size) of `transitions`, leaves [T, ...]), e.g. TD3+BC's state normalizer.
        Returns agent_state unchanged for learners that need nothing."""
        ...

    def pretrain_update(
        self, agent_state: AgentState, batch: Batch, key: jax.Array
    ) -> tuple[AgentState, dict[str, jax.Array]]:
        """Algorithm 1 line 4: fit the generative models (G1, G2) before the Q updates."""
        ...

    def update(
        self, agent_state: AgentState, batch: Batch, key: jax.Array
    ) -> tuple[AgentState, dict[str, jax.Array]]:
        """One Q/xi update (Algorithm 1 lines 6-9); metrics are scalars."""
        ...

    def act(self, agent_state: AgentState, states: jax.Array, key: jax.Array) -> jax.Array:
        """[B, S] -> [B, A]; reads only agent_state.params."""
        ...

    def transition_weights(self, agent_state: AgentState, transitions: Batch) -> jax.Array | None:
        """Per-transition weights that stay constant during the Q updates ([T]), or None.

        MABCQ with G1/G2 frozen after pretraining: lambda_tn of every (s, a_i, s') of the agent's
        own data, computed once; update() then reads it from batch.lambda_tn.
        """
        ...

    def value(self, agent_state: AgentState, states: jax.Array, key: jax.Array) -> jax.Array:
        """V_i(s) = Q_i(s, pi_i(s)) with the first critic, [B, S] -> [B]."""
        ...

    def q_value(self, agent_state: AgentState, states: jax.Array, actions: jax.Array) -> jax.Array:
        """Q_i(s, a) with the first critic, ([B, S], [B, A]) -> [B]."""
        ...


class LearnerBase:
    """What most learners do alike: nothing to take from the whole dataset, no per-transition
    weights, and V_i(s) = Q_i(s, pi_i(s)) at the policy's own action."""

    def prepare(self, agent_state: AgentState, transitions: Batch, size: jax.Array) -> AgentState:
        """Nothing to take from the whole dataset."""
        return agent_state

    def transition_weights(self, agent_state: AgentState, transitions: Batch) -> jax.Array | None:
        """No per-transition weights."""
        return None

    def value(self, agent_state: AgentState, states: jax.Array, key: jax.Array) -> jax.Array:
        """V_i(s) = Q_i(s, pi_i(s)) with the first critic at the action `act` takes, [B]."""
        return self.q_value(agent_state, states, self.act(agent_state, states, key))

    def act(self, agent_state: AgentState, states: jax.Array, key: jax.Array) -> jax.Array:
        raise NotImplementedError

    def q_value(self, agent_state: AgentState, states: jax.Array, actions: jax.Array) -> jax.Array:
        raise NotImplementedError
