"""A training run's stages before its loop, each built from what the one before hands on:
config (training.config) -> the data (RunData) -> the learners (RunLearners). The loop
(training.loop) takes both and hands its final states on to the results.

Decentralization lives here: agent i's initial state and key stream come from (seed, i) alone,
and agent i's slice of the stacked data is agent i's file alone (mabcq.learners.batched).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mabcq.data.io import validate_agent_dataset
from mabcq.data.schema import AgentDataset
from mabcq.errors import UserError
from mabcq.training.config import (
    TrainConfig,
    call_size,
    cell_labels,
    cell_learner_config,
    run_cells,
    run_learner,
)


def validate_datasets(task: Any, datasets: Sequence[AgentDataset], agent: int | None,
                      source: str) -> None:
    """Check the datasets fit `task`: agent count, recorded task and agent, then every field
    (data.io.validate_agent_dataset), so in-memory datasets get the checks files get."""
    expected_agents = 1 if agent is not None else task.n_agents
    if len(datasets) != expected_agents:
        raise UserError(f"{source}: holds {len(datasets)} agent file(s) but {task.name} has "
                        f"{task.n_agents} agents; pass the dataset directory built for {task.name}")
    agent_ids = [agent] if agent is not None else list(range(task.n_agents))
    for agent_id, dataset in zip(agent_ids, datasets, strict=True):
        recorded = dataset.metadata.get("task")
        if recorded is not None and recorded != task.name:
            raise UserError(f"{source}: agent {agent_id}'s data was built for task {recorded!r}, "
                            f"not {task.name!r}; train {recorded} or pass data for {task.name}")
        recorded_agent = dataset.metadata.get("agent")
        if agent is not None and recorded_agent is not None and int(recorded_agent) != agent:
            raise UserError(f"{source}: this file holds agent {recorded_agent}'s data, not agent "
                            f"{agent}'s; pass --agent {recorded_agent} or agent {agent}'s file")
        # Shapes, dtypes, NaN/inf and the dims of the recorded task: the file format's checks.
        validate_agent_dataset(dataset, f"{source}: agent {agent_id}")


@dataclass
class RunData:
    """The agents' data as the loop reads it. Agents whose data have equal shapes form one
    group and share one batched step (all of them with global states; local observations may
    differ in size between agents)."""

    task: Any  # envs.tasks.Task
    datasets: Sequence[AgentDataset]  # as given, one per trained agent
    agent_ids: list[int]  # the trained agents: all of the task's, or config.agent alone
    observations: Any  # envs.observations.ObservationSpec: global states or local observations
    groups: list[Any]  # learners.groups.AgentGroup
    stacked: list[Any]  # per group, its agents' data stacked (learners.batched.AgentData)


def load_run_data(config: TrainConfig, datasets: Sequence[AgentDataset]) -> RunData:
    """Stage 2: check the datasets against the task, read what the agents observe, group and
    stack them."""
    from mabcq.envs.observations import same_spec, spec_from_metadata
    from mabcq.envs.tasks import get_task
    from mabcq.learners.batched import stack_agent_data
    from mabcq.learners.groups import group_agents

    task = get_task(config.task)
    validate_datasets(task, datasets, config.agent, "training data")
    # What the agents observe is the data's: global states, or each agent's local observation.
    observations = same_spec([spec_from_metadata(dataset.metadata, f"training data: agent {i}")
                              for i, dataset in enumerate(datasets)],
                             [f"training data: agent {i}" for i in range(len(datasets))])
    agent_ids = [config.agent] if config.agent is not None else list(range(task.n_agents))
    groups = group_agents(datasets, agent_ids)
    stacked = [stack_agent_data([datasets[slot] for slot in group.slots]) for group in groups]
    return RunData(task, datasets, agent_ids, observations, groups, stacked)


@dataclass
class RunLearners:
    """The run's learner and its compiled steps, and the initial states and keys (leaves
    [cells, agents, ...]; cells = run_cells(config), methods outer, seeds inner)."""

    learner: Any  # one method's learner, or a weighted family's full learner (a grid step)
    variants: Any  # None, or per cell the weights it applies (config.run_learner)
    cells: list[tuple[str, int]]  # (method, seed) per cell
    cell_configs: list[Any]  # per cell, the LearnerConfig of its method trained alone
    labels: list[str]  # per cell: seed_<s>, or <method>/seed_<s> in a grid
    states: Any
    keys: Any
    calls: int  # updates per compiled call (config.call_size)
    update_fns: dict[str, Any]  # phase ("pretrain", "train") -> compiled multi-update
    transition_weights: Any  # (group states, group data) -> MABCQ's lambda_tn table, or None
    compiler_options: dict[str, Any] | None


def init_run_learners(config: TrainConfig, data: RunData) -> RunLearners:
    """Stage 3: the learner, every (cell, agent)'s initial state and key, and the compiled
    steps of Algorithm 1's two phases: fitting the generative models (pretrain) and the
    Q/perturbation updates with G1/G2 fixed (train)."""
    from mabcq.learners.batched import (
        FAST_COMPILE,
        init_agents,
        make_multi_update,
        make_prepare,
        make_transition_weights,
        seed_agent_keys,
    )
    from mabcq.learners.groups import join_groups

    cells = run_cells(config)
    learner, variants = run_learner(config)
    run_seeds = [seed for _, seed in cells]
    n_all_agents = data.task.n_agents
    # Agent i's initial state and key stream come from (seed, i) alone, so agent i trained by
    # itself (--agent i) starts exactly where its slice of the all-agents run starts.
    options = FAST_COMPILE if config.fast_compile else None
    prepare = make_prepare(learner, options)
    group_states = [prepare(init_agents(learner, run_seeds, n_all_agents, group.state_dim,
                                        [data.task.agent_action_dim(agent)
                                         for agent in group.agents],
                                        options, agent_ids=group.agents), group_data)
                    for group, group_data in zip(data.groups, data.stacked, strict=True)]
    keys = join_groups([seed_agent_keys(run_seeds, n_all_agents, group.agents)
                        for group in data.groups], data.groups)
    calls = call_size(config)
    return RunLearners(
        learner=learner, variants=variants, cells=cells,
        cell_configs=[cell_learner_config(config, method) for method, _ in cells],
        labels=cell_labels(config), states=join_groups(group_states, data.groups), keys=keys,
        calls=calls,
        update_fns={phase: make_multi_update(learner, phase, calls, compiler_options=options)
                    for phase in ("pretrain", "train")},
        # MABCQ with G1/G2 frozen after pretraining: lambda_tn of every transition, computed
        # once (same numbers as computing it in each update); None for the other methods.
        transition_weights=make_transition_weights(learner, compiler_options=options),
        compiler_options=options)
