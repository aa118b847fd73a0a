"""The training loop: every agent and every seed in one compiled step, periodic evaluation in the
simulator, the paper's diagnostics, CSV/TensorBoard logs, kill-proof checkpoints and resume.

The learner state lives in one pytree with leading axes [seeds, agents]; agent i's slice is only
ever updated from agent i's data (mabcq.learners.batched). Evaluation slices each agent's state
out and runs the agents' policies together in the simulator, each acting on its own.

Resume equality: the training keys are part of the checkpointed state, evaluation randomness is a
function of (seed, update) only, and the diagnostic state sample is fixed by the first seed, so a
run killed and resumed writes the same parameters and the same metrics rows as a straight run.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

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


def window_summary(window: dict[str, list[np.ndarray]], seed_index: int) -> dict[str, float]:
    """Losses and lambda stats of one seed over an evaluation window.

    window: metric name -> list of [seeds, agents] arrays (one per compiled call, each already
    averaged over that call's updates). Means average over calls and agents; *_min/*_max take
    the extremes over calls and agents.
    """
    summary: dict[str, float] = {}
    for name, values in window.items():
        # float64 so a window restored from a checkpoint's JSON sums exactly like the original
        stacked = np.stack([np.asarray(value, np.float64)[seed_index] for value in values])
        if name.endswith("_min"):
            summary[name] = float(stacked.min())
        elif name.endswith("_max"):
            summary[name] = float(stacked.max())
        else:
            summary[name] = float(stacked.mean())
    return summary


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


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    """Call fn, wait for its result, return (result, seconds)."""
    import jax

    start = time.perf_counter()
    result = jax.block_until_ready(fn(*args))
    return result, time.perf_counter() - start


@dataclass
class Trained:
    """What a finished run holds in memory: the learner states (leaves [cells, agents, ...],
    cells = run_cells(config)), every metrics row (one per evaluation and cell, the columns of
    metrics.csv) and the summary (summary.json's dict)."""

    config: TrainConfig
    states: Any
    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    run_dir: Path | None
    observations: Any = None  # the data's ObservationSpec


def train(config: TrainConfig, datasets: Sequence[AgentDataset], run_dir: str | Path, *,
          resume: bool = False, stop_after: int | None = None,
          progress: bool = True, env_workers: int | None = None) -> dict[str, Any] | None:
    """Train `config.method` on `datasets` (one per agent, or agent config.agent's alone), all
    seeds at once; write RUN_DIR (config.json, metrics.csv, tensorboard/, checkpoint.npz,
    policies/, summary.json). Returns the summary, or None when stopped early by `stop_after`
    (total updates, pretraining included: a stand-in for a kill in tests).
    env_workers: processes that step the evaluation's envs (None: default_env_workers()); the
    numbers do not depend on it.
    """
    trained = run_training(config, datasets, run_dir, resume=resume, stop_after=stop_after,
                           progress=progress, env_workers=env_workers)
    return None if trained is None else trained.summary


def run_training(config: TrainConfig, datasets: Sequence[AgentDataset],
                 run_dir: str | Path | None = None, *, resume: bool = False,
                 stop_after: int | None = None, progress: bool = True,
                 env_workers: int | None = None) -> Trained | None:
    """The loop behind `train` and `mabcq.fit`. With a run_dir it writes RUN_DIR as `train`
    does; with None it writes nothing (metrics kept in memory, no checkpoints or policy
    files). Returns the final states, rows and summary; None when stopped by `stop_after`."""
    from tqdm.auto import tqdm

    from mabcq.envs.observations import same_spec, spec_from_metadata
    from mabcq.envs.tasks import get_task
    from mabcq.learners.batched import (
        FAST_COMPILE,
        init_agents,
        make_multi_update,
        make_prepare,
        make_transition_weights,
        seed_agent_keys,
        stack_agent_data,
    )
    from mabcq.learners.groups import group_agents, join_groups, split_groups
    from mabcq.training.evaluator import Evaluator
    from mabcq.training.logs import MemoryLog, RunDirLog
    from mabcq.weights import finish_window

    task = get_task(config.task)
    validate_datasets(task, datasets, config.agent, "training data")
    # What the agents observe is the data's: global states, or each agent's local observation.
    observations = same_spec([spec_from_metadata(dataset.metadata, f"training data: agent {i}")
                              for i, dataset in enumerate(datasets)],
                             [f"training data: agent {i}" for i in range(len(datasets))])
    cells = run_cells(config)
    learner, variants = run_learner(config)
    run_seeds = [seed for _, seed in cells]
    if run_dir is None:
        if resume:
            raise UserError("resume needs a run directory: pass run_dir")
        log: Any = MemoryLog()
    else:
        log = RunDirLog(Path(run_dir), config.to_json(), resume)
    n_all_agents = task.n_agents
    agent_ids = [config.agent] if config.agent is not None else list(range(n_all_agents))
    # Agents whose data have equal shapes share one batched step (all of them with global
    # states; local observations may differ in size between agents).
    groups = group_agents(datasets, agent_ids)
    data = [stack_agent_data([datasets[slot] for slot in group.slots]) for group in groups]
    # Agent i's initial state and key stream come from (seed, i) alone, so agent i trained by
    # itself (--agent i) starts exactly where its slice of the all-agents run starts.
    options = FAST_COMPILE if config.fast_compile else None
    prepare = make_prepare(learner, options)
    group_states = [prepare(init_agents(learner, run_seeds, n_all_agents, group.state_dim,
                                        [task.agent_action_dim(agent) for agent in group.agents],
                                        options, agent_ids=group.agents), group_data)
                    for group, group_data in zip(groups, data, strict=True)]  # e.g. TD3+BC's
    states = join_groups(group_states, groups)
    keys = join_groups([seed_agent_keys(run_seeds, n_all_agents, group.agents)
                        for group in groups], groups)
    calls = call_size(config)
    total = config.pretrain_updates + config.updates
    update_fns = {phase: make_multi_update(learner, phase, calls, compiler_options=options)
                  for phase in ("pretrain", "train")}
    # MABCQ with G1/G2 frozen after pretraining: lambda_tn of every transition, computed once
    # (same numbers as computing it in each update); None for the other methods.
    transition_weights = make_transition_weights(learner, compiler_options=options)
    lambda_tn_table, table_ready = None, False
    cell_configs = [cell_learner_config(config, method) for method, _ in cells]
    evaluator = Evaluator(learner, task, run_seeds, datasets, gamma=learner.config.gamma,
                          episodes=config.eval_episodes, max_steps=config.eval_max_steps,
                          diagnostic_states=config.diagnostic_states,
                          min_steps_left=config.min_steps_left,
                          with_returns=config.agent is None,
                          tn_runs=[cell.use_tn for cell in cell_configs],
                          env_workers=default_env_workers() if env_workers is None else env_workers,
                          compiler_options=options, observations=observations,
                          agent_ids=agent_ids)
    done, window, pretrain_last, wall_before, eval_before = 0, {}, {}, 0.0, 0.0
    labels = cell_labels(config)
    restored = log.restore({"states": states, "keys": keys}, labels, config.pretrain_updates)
    if restored is not None:
        tree, meta = restored
        states, keys, done = tree["states"], tree["keys"], int(meta["done"])
        window = {name: [np.asarray(value) for value in values]
                  for name, values in meta["window"].items()}
        pretrain_last = {name: [np.asarray(value) for value in values]
                         for name, values in meta["pretrain_last"].items()}
        wall_before = float(meta["wall_time_s"])
        eval_before = float(meta.get("eval_time_s", 0.0))
    started, timed_seconds, timed_updates, compiled = time.perf_counter(), 0.0, 0, set()
    eval_seconds = 0.0
    bar = tqdm(total=total, initial=done, disable=not progress, unit="upd",
               desc=f"{config.method} {config.task}", dynamic_ncols=True)
    last_rows: list[dict[str, Any]] = []
    try:
        while done < total:
            if stop_after is not None and done >= stop_after:
                return None
            phase = "pretrain" if done < config.pretrain_updates else "train"
            if phase == "train" and not table_ready:  # first train call of this process
                lambda_tn_table = [transition_weights(group_states, group_data) for
                                   group_states, group_data in zip(split_groups(states), data,
                                                                   strict=True)]
                table_ready = True
            states, keys, metrics, seconds = _grouped_call(
                update_fns[phase], groups, states, keys, data,
                (lambda_tn_table, variants) if phase == "train" else None)
            done += calls
            bar.update(calls)
            if phase == "pretrain":  # the generative models' last losses go into every row
                pretrain_last = {name: [np.asarray(value)] for name, value in metrics.items()}
            else:
                for name, value in metrics.items():
                    window.setdefault(name, []).append(np.asarray(value))
                if phase in compiled:  # the first call of a process also compiles
                    timed_seconds, timed_updates = timed_seconds + seconds, timed_updates + calls
                trained = done - config.pretrain_updates
                if trained % config.eval_every == 0 or done == total:
                    wall = wall_before + time.perf_counter() - started
                    per_update = timed_seconds / timed_updates if timed_updates else float("nan")
                    last_rows, seconds = timed(evaluator.rows, states, trained)
                    eval_seconds += seconds
                    for index, row in enumerate(last_rows):
                        row.update(finish_window(window_summary({**pretrain_last, **window},
                                                                index)))
                        row.update(time_per_update_ms=1000.0 * per_update, wall_time_s=wall)
                        row["method"] = cells[index][0]
                        _blank_unused_weights(row, cell_configs[index])
                    log.log(last_rows, labels)
                    window, timed_seconds, timed_updates = {}, 0.0, 0
                    bar.set_postfix(_postfix(last_rows), refresh=False)
            compiled.add(phase)
            if done % config.checkpoint_every == 0 or done == total:
                meta = {"done": done, "csv_position": log.position(),
                        "wall_time_s": wall_before + time.perf_counter() - started,
                        "eval_time_s": eval_before + eval_seconds,
                        "window": _jsonable(window), "pretrain_last": _jsonable(pretrain_last)}
                log.save({"states": states, "keys": keys}, meta)
    finally:
        bar.close()
        log.close()
        evaluator.close()
    if run_dir is not None:
        export_policies(config, states, Path(run_dir) / "policies", task, agent_ids,
                        observations)
    summary = log.finish(config.to_json(), wall_before + time.perf_counter() - started,
                         eval_before + eval_seconds)
    return Trained(config, states, log.rows, summary, None if run_dir is None else Path(run_dir),
                   observations)


def _grouped_call(update: Any, groups: Sequence[Any], states: Any, keys: Any,
                  data: Sequence[Any], extra: tuple[Any, Any] | None
                  ) -> tuple[Any, Any, dict[str, Any], float]:
    """One compiled call per group: (states, keys, metrics [cells, agents], seconds).
    extra: the train phase's (per-group lambda_tn tables, variants); None when pretraining."""
    from mabcq.learners.groups import join_groups, merge_metrics, split_groups

    new_states, new_keys, metrics, seconds = [], [], [], 0.0
    for index, (group_states, group_keys) in enumerate(zip(
            split_groups(states), split_groups(keys), strict=True)):
        args = (group_states, data[index], group_keys)
        if extra is not None:
            table, variants = extra
            args += (table[index], variants)
        (group_states, group_keys, group_metrics), spent = timed(update, *args)
        new_states.append(group_states)
        new_keys.append(group_keys)
        metrics.append(group_metrics)
        seconds += spent
    return (join_groups(new_states, groups), join_groups(new_keys, groups),
            merge_metrics(groups, metrics), seconds)


def _jsonable(window: dict[str, list[np.ndarray]]) -> dict[str, list[Any]]:
    return {name: [np.asarray(value).tolist() for value in values]
            for name, values in window.items()}


def _postfix(rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Progress-bar fields: mean latest return over seeds, median lambda_tn on own data."""
    postfix = {}
    returns = [row["return_mean"] for row in rows if "return_mean" in row]
    if returns:
        postfix["return"] = f"{np.mean(returns):.1f}"
    lambdas = [row["lambda_tn_data_median"] for row in rows if "lambda_tn_data_median" in row]
    if lambdas:
        postfix["lambda_tn_median"] = f"{np.mean(lambdas):.2f}"
    return postfix


def default_env_workers() -> int:
    """Evaluation env processes: none on a small machine (the step loop would only compete with
    the update for cores), up to 15 on a many-core GPU machine, where stepping hundreds of envs
    in one thread would dominate the grid's wall time (../shared/MEASURED.md)."""
    import os

    cores = os.cpu_count() or 1
    return 0 if cores <= 4 else min(cores - 1, 15)


def _blank_unused_weights(row: dict[str, Any], cell_config: Any) -> None:
    """A method that does not apply a weight logs no statistics of it (in a grid step its
    switched-off weight is a constant 1)."""
    for name, used in (("lambda_vd", cell_config.use_vd), ("lambda_tn", cell_config.use_tn)):
        if not used:
            for column in [column for column in row if column.startswith(f"{name}_")]:
                del row[column]


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
