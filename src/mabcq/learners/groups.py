"""Agents grouped by the shapes of their data: one batched step per group.

The batched step (mabcq.learners.batched) maps one agent's update over (seed, agent) pairs,
which needs every agent's arrays to have one shape. With global states all agents of a task
share it; with local observations (mabcq.envs.observations) their sizes may differ (Hopper
3x1's middle agent sees one joint more). Agents with equal (observation, action) sizes form a
group, each group is one batched step, and each agent keeps its own key stream (seed, agent),
so an agent's parameters are the same whichever group it trains in, or alone.

One group (every task with global states): the states are the batched step's pytree itself,
leaves [cells, agents, ...], exactly as before groups existed. Several: a GroupedStates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np


@dataclass(frozen=True)
class AgentGroup:
    """Agents sharing one batched step: their positions among the trained agents (`slots`),
    their task indices (`agents`) and their common observation and action sizes."""

    slots: tuple[int, ...]
    agents: tuple[int, ...]
    state_dim: int
    action_dim: int


def group_agents(datasets: Sequence[Any], agent_ids: Sequence[int]) -> tuple[AgentGroup, ...]:
    """Groups of the agents whose datasets have equal observation and action sizes, in order of
    each group's first agent (all agents in one group when the sizes agree)."""
    members: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for slot, (agent, dataset) in enumerate(zip(agent_ids, datasets, strict=True)):
        shape = (int(dataset.observations.shape[1]), int(dataset.actions.shape[1]))
        members.setdefault(shape, []).append((slot, int(agent)))
    return tuple(AgentGroup(tuple(s for s, _ in group), tuple(a for _, a in group), *shape)
                 for shape, group in members.items())


@jax.tree_util.register_pytree_node_class
class GroupedStates:
    """Per-group pytrees (leaves [cells, agents in the group, ...]) and each group's slots.

    A pytree: checkpoints save and restore it like any other; the slots are static.
    """

    def __init__(self, trees: Sequence[Any], slots: Sequence[tuple[int, ...]]) -> None:
        self.trees, self.slots = tuple(trees), tuple(tuple(s) for s in slots)

    def tree_flatten(self) -> tuple[tuple[Any, ...], tuple[tuple[int, ...], ...]]:
        return self.trees, self.slots

    @classmethod
    def tree_unflatten(cls, slots: Any, trees: Any) -> GroupedStates:
        return cls(trees, slots)

    def __repr__(self) -> str:
        return f"GroupedStates(slots={self.slots})"


def join_groups(trees: Sequence[Any], groups: Sequence[AgentGroup]) -> Any:
    """The states of a run from its groups' pytrees: the pytree itself for one group."""
    if len(groups) == 1:
        return trees[0]
    return GroupedStates(trees, [group.slots for group in groups])


def split_groups(states: Any) -> list[Any]:
    """Inverse of join_groups: one pytree per group."""
    return list(states.trees) if isinstance(states, GroupedStates) else [states]


def agent_slice(states: Any, cell: int, slot: int) -> Any:
    """One (cell, agent) learner state; slot: the agent's position among the trained agents."""
    if isinstance(states, GroupedStates):
        for slots, tree in zip(states.slots, states.trees, strict=True):
            if slot in slots:
                index = slots.index(slot)
                return jax.tree_util.tree_map(lambda leaf, i=index: leaf[cell, i], tree)
        raise IndexError(f"no agent in slot {slot}")
    return jax.tree_util.tree_map(lambda leaf: leaf[cell, slot], states)


def merge_metrics(groups: Sequence[AgentGroup], metrics: Sequence[dict[str, Any]]
                  ) -> dict[str, Any]:
    """Per-group metrics {name: [cells, agents_g]} -> {name: [cells, agents]} in slot order
    (one group: its dict unchanged)."""
    if len(groups) == 1:
        return metrics[0]
    order = np.argsort(np.concatenate([group.slots for group in groups]))
    return {name: np.concatenate([np.asarray(m[name]) for m in metrics], axis=1)[:, order]
            for name in metrics[0]}

