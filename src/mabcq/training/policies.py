"""A training run's results as files (its last stage): one policy file per (cell, agent), each
runnable without the other agents' files (learners.export.Policy)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mabcq.training.config import TrainConfig, cell_labels, cell_learner_config, run_cells


def export_policies(config: TrainConfig, states: Any, out_dir: Path, task: Any,
                    agent_ids: Sequence[int], observations: Any = None) -> list[Path]:
    """One policy file per (cell, agent): policies/seed_<s>/agent_<i>.msgpack (one method) or
    policies/<method>/seed_<s>/agent_<i>.msgpack (a grid), each loadable and runnable without
    the other agents' files, and exported as its method's own learner."""
    paths = []
    for index, label in enumerate(cell_labels(config)):
        for slot, agent in enumerate(agent_ids):
            path = out_dir / label / f"agent_{agent}.msgpack"
            path.parent.mkdir(parents=True, exist_ok=True)
            paths.append(cell_policy(config, states, task, index, slot, agent,
                                     observations).save(path))
    return paths


def cell_policy(config: TrainConfig, states: Any, task: Any, cell_index: int, slot: int,
                agent: int, observations: Any = None) -> Any:
    """The Policy of one agent of one (method, seed) cell: states[cell_index, slot] (slot: the
    agent's position among the trained agents), acting as its method's own learner.
    observations: the run's ObservationSpec (local ones are recorded in the policy)."""
    from mabcq.learners.export import Policy
    from mabcq.learners.groups import agent_slice

    method, seed = run_cells(config)[cell_index]
    agent_state = agent_slice(states, cell_index, slot)
    metadata = {"task": task.name, "agent": agent, "n_agents": task.n_agents,
                "action_slice": list(task.action_slices[agent]), "seed": seed,
                "updates": config.updates, "method": method,
                **(observations.metadata() if observations is not None else {})}
    return Policy.from_agent_state(method, cell_learner_config(config, method), agent_state,
                                   metadata)
