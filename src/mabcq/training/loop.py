"""A training run, stage by stage, reading in one direction: the config (training.config) ->
the data and the learners (training.setup) -> the loop (update, evaluate, checkpoint, log;
below) -> the results (policy files: training.policies; the summary: training.logs).

The learner state lives in one pytree with leading axes [cells, agents]; agent i's slice is only
ever updated from agent i's data (mabcq.learners.batched). Evaluation slices each agent's state
out and runs the agents' policies together in the simulator, each acting on its own.

Resume equality: the training keys are part of the checkpointed state, evaluation randomness is a
function of (seed, update) only, and the diagnostic state sample is fixed by the first seed, so a
run killed and resumed writes the same parameters and the same metrics rows as a straight run.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mabcq.data.schema import AgentDataset
from mabcq.errors import UserError
from mabcq.training.config import TrainConfig
from mabcq.training.setup import RunData, RunLearners, init_run_learners, load_run_data


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
    """The run behind `train` and `mabcq.fit`. With a run_dir it writes RUN_DIR as `train`
    does; with None it writes nothing (metrics kept in memory, no checkpoints or policy
    files). Returns the final states, rows and summary; None when stopped by `stop_after`."""
    from mabcq.training.logs import MemoryLog, RunDirLog
    from mabcq.training.policies import export_policies

    data = load_run_data(config, datasets)
    learners = init_run_learners(config, data)
    if run_dir is None and resume:
        raise UserError("resume needs a run directory: pass run_dir")
    log: Any = MemoryLog() if run_dir is None else RunDirLog(Path(run_dir), config.to_json(),
                                                              resume)
    evaluator = make_evaluator(config, data, learners, env_workers)
    try:
        at = restore_progress(log, learners, config.pretrain_updates)
        finished = train_loop(config, data, learners, evaluator, log, at, stop_after, progress)
    finally:
        log.close()
        evaluator.close()
    if not finished:
        return None
    if run_dir is not None:
        export_policies(config, at.states, Path(run_dir) / "policies", data.task,
                        data.agent_ids, data.observations)
    summary = log.finish(config.to_json(), at.wall_time(), at.eval_time())
    return Trained(config, at.states, log.rows, summary, None if run_dir is None else Path(run_dir),
                   data.observations)


def make_evaluator(config: TrainConfig, data: RunData, learners: RunLearners,
                   env_workers: int | None) -> Any:
    """The evaluation of every cell: returns in the simulator (all agents together, each on
    its own policy) and the paper's diagnostics on the data (training.evaluator)."""
    from mabcq.training.evaluator import Evaluator

    return Evaluator(learners.learner, data.task, [seed for _, seed in learners.cells],
                     data.datasets, gamma=learners.learner.config.gamma,
                     episodes=config.eval_episodes, max_steps=config.eval_max_steps,
                     diagnostic_states=config.diagnostic_states,
                     min_steps_left=config.min_steps_left, with_returns=config.agent is None,
                     tn_runs=[cell.use_tn for cell in learners.cell_configs],
                     env_workers=default_env_workers() if env_workers is None else env_workers,
                     compiler_options=learners.compiler_options,
                     observations=data.observations, agent_ids=data.agent_ids)


@dataclass
class Progress:
    """Where the loop stands: the states and keys, and what a checkpoint keeps beside them
    (updates done, the open evaluation window's metrics, the generative models' last losses,
    and the clocks of the processes before a resume)."""

    states: Any
    keys: Any
    done: int = 0
    window: dict[str, list[np.ndarray]] = field(default_factory=dict)
    pretrain_last: dict[str, list[np.ndarray]] = field(default_factory=dict)
    wall_before: float = 0.0
    eval_before: float = 0.0
    started: float = field(default_factory=time.perf_counter)
    eval_seconds: float = 0.0

    def wall_time(self) -> float:
        return self.wall_before + time.perf_counter() - self.started

    def eval_time(self) -> float:
        return self.eval_before + self.eval_seconds

    def checkpoint_meta(self, csv_position: int) -> dict[str, Any]:
        return {"done": self.done, "csv_position": csv_position, "wall_time_s": self.wall_time(),
                "eval_time_s": self.eval_time(), "window": _jsonable(self.window),
                "pretrain_last": _jsonable(self.pretrain_last)}


def restore_progress(log: Any, learners: RunLearners, pretrain_updates: int) -> Progress:
    """A fresh start from the learners' initial states, or where the checkpoint left off."""
    restored = log.restore({"states": learners.states, "keys": learners.keys}, learners.labels,
                           pretrain_updates)
    if restored is None:
        return Progress(learners.states, learners.keys)
    tree, meta = restored
    return Progress(tree["states"], tree["keys"], int(meta["done"]),
                    window=_arrays(meta["window"]), pretrain_last=_arrays(meta["pretrain_last"]),
                    wall_before=float(meta["wall_time_s"]),
                    eval_before=float(meta.get("eval_time_s", 0.0)))


@dataclass
class UpdateClock:
    """Seconds per training update over an evaluation window, leaving out each phase's first
    call of a process (it also compiles)."""

    seconds: float = 0.0
    updates: int = 0
    compiled: set[str] = field(default_factory=set)

    def add(self, phase: str, seconds: float, updates: int) -> None:
        if phase in self.compiled:
            self.seconds, self.updates = self.seconds + seconds, self.updates + updates

    def per_update(self) -> float:
        return self.seconds / self.updates if self.updates else float("nan")

    def reset(self) -> None:
        self.seconds, self.updates = 0.0, 0


def train_loop(config: TrainConfig, data: RunData, learners: RunLearners, evaluator: Any,
               log: Any, at: Progress, stop_after: int | None, progress: bool) -> bool:
    """Algorithm 1 from where `at` stands: config.pretrain_updates updates that fit the
    generative models G1/G2 (line 4), then config.updates Q and perturbation updates with them
    fixed (lines 5-12), evaluating every eval_every and checkpointing every checkpoint_every
    training updates. Updates `at` in place; False when stopped by `stop_after`."""
    from tqdm.auto import tqdm

    from mabcq.learners.groups import split_groups

    total = config.pretrain_updates + config.updates
    lambda_tn_table = None  # per group, computed on the first train call of this process
    clock = UpdateClock()
    bar = tqdm(total=total, initial=at.done, disable=not progress, unit="upd",
               desc=f"{config.method} {config.task}", dynamic_ncols=True)
    try:
        while at.done < total:
            if stop_after is not None and at.done >= stop_after:
                return False
            phase = "pretrain" if at.done < config.pretrain_updates else "train"
            if phase == "train" and lambda_tn_table is None:  # G1/G2 are fixed from now on
                lambda_tn_table = [learners.transition_weights(group_states, group_data)
                                   for group_states, group_data in zip(
                                       split_groups(at.states), data.stacked, strict=True)]
            at.states, at.keys, metrics, seconds = _grouped_call(
                learners.update_fns[phase], data.groups, at.states, at.keys, data.stacked,
                (lambda_tn_table, learners.variants) if phase == "train" else None)
            at.done += learners.calls
            bar.update(learners.calls)
            if phase == "pretrain":  # the generative models' last losses go into every row
                at.pretrain_last = {name: [np.asarray(value)] for name, value in metrics.items()}
            else:
                for name, value in metrics.items():
                    at.window.setdefault(name, []).append(np.asarray(value))
                clock.add(phase, seconds, learners.calls)
                trained = at.done - config.pretrain_updates
                if trained % config.eval_every == 0 or at.done == total:
                    rows = evaluate(learners, evaluator, log, at, clock, trained)
                    bar.set_postfix(_postfix(rows), refresh=False)
            clock.compiled.add(phase)
            if at.done % config.checkpoint_every == 0 or at.done == total:
                log.save({"states": at.states, "keys": at.keys},
                         at.checkpoint_meta(log.position()))
    finally:
        bar.close()
    return True


def evaluate(learners: RunLearners, evaluator: Any, log: Any, at: Progress,
             clock: UpdateClock, trained: int) -> list[dict[str, Any]]:
    """One metrics row per cell after `trained` training updates: the evaluation's returns and
    diagnostics, the window's losses and weight statistics, the clocks; logged, and the window
    closed."""
    from mabcq.weights import finish_window

    wall = at.wall_time()
    per_update = clock.per_update()
    rows, seconds = timed(evaluator.rows, at.states, trained)
    at.eval_seconds += seconds
    for index, row in enumerate(rows):
        row.update(finish_window(window_summary({**at.pretrain_last, **at.window}, index)))
        row.update(time_per_update_ms=1000.0 * per_update, wall_time_s=wall)
        row["method"] = learners.cells[index][0]
        _blank_unused_weights(row, learners.cell_configs[index])
    log.log(rows, learners.labels)
    at.window = {}
    clock.reset()
    return rows


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


def _arrays(window: dict[str, list[Any]]) -> dict[str, list[np.ndarray]]:
    return {name: [np.asarray(value) for value in values] for name, values in window.items()}


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
