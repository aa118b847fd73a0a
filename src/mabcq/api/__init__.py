"""The Python API (docs/api.md): data -> fit -> curves -> evaluate -> export -> one agent alone.

Every name here is a thin layer over the same functions the command line calls (`mabcq data
build`, `mabcq train`, `mabcq evaluate`), so a notebook and the CLI give the same numbers. No
global state: nothing here changes JAX's configuration, and randomness comes from explicit
seeds and keys. Heavy modules (JAX, MuJoCo) are imported inside the functions.

Shapes: S = the task's state_dim, A_i = agent i's action slice, B = a batch of states,
E = evaluation episodes, T = transitions.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mabcq.data.schema import AgentDataset
from mabcq.errors import UserError

if TYPE_CHECKING:

    from mabcq.envs.rollout import RolloutResult
    from mabcq.learners.export import Policy
    from mabcq.training.config import TrainConfig
    from mabcq.video import VideoOptions

PathLike = str | os.PathLike


# ---------------------------------------------------------------- data


def load_datasets(path: PathLike) -> list[AgentDataset]:
    """Load and validate per-agent dataset files.

    path: a dataset directory (agent_0.h5 ... agent_{N-1}.h5, as `mabcq data build` or
        `build_datasets(..., out=DIR)` writes it): every agent's dataset, in agent order; or
        one agent's .h5 file: a list holding that agent's dataset alone.
    Each AgentDataset holds numpy arrays observations [T, S], actions [T, A_i] (that agent's
    own slice only), rewards [T], next_observations [T, S], terminals [T], timeouts [T], and its
    metadata (task, agent, recipe, ...). A bad file raises UserError naming it; a dataset made
    with another MuJoCo than the installed one logs a warning (logger "mabcq").
    """
    from mabcq.data.io import check_dataset_versions, load_agent_dataset, load_dataset_dir

    datasets = ([load_agent_dataset(path)] if Path(path).is_file()
                else list(load_dataset_dir(path)))
    check_dataset_versions(datasets, str(path))
    return datasets


def save_datasets(datasets: Sequence[AgentDataset], directory: PathLike) -> list[Path]:
    """Write directory/agent_{i}.h5 for each dataset (i from its metadata), each atomically
    and validated; returns the paths. `load_datasets(directory)` reads them back."""
    from mabcq.data.io import save_dataset_dir

    return save_dataset_dir(list(datasets), directory)


def build_datasets(task: str, recipe: str = "paper", preset: str = "smoke",
                   out: PathLike | None = None, *, behavior: PathLike | None = None,
                   size: int | None = None, noise: float | None = None, seed: int = 0,
                   num_envs: int | None = None, jobs: int = 1,
                   progress: bool = True, obs: str = "global",
                   obsk: int | None = None) -> list[AgentDataset]:
    """Build the paper's per-agent datasets for `task` (what `mabcq data build` does).

    recipe: "paper" (default), "low" or "medium-replay" (docs/datasets.md, "Build a dataset").
    preset: "smoke" (500 transitions per agent, seconds), "quick" (50 000) or "paper" (10^6).
    out: a directory to write agent_{i}.h5 into (and SAC's behavior/ when SAC is trained; a
        rerun keeps finished files). None: build in a temporary directory that is deleted once
        the datasets are loaded into memory (SAC's snapshots and replay are files by design).
    behavior: "shipped" (the package's shipped SAC policies of the task), a trained
        `mabcq behavior train` directory, or None (the shipped set at quick/paper when the
        package has one, otherwise SAC trained first at the preset's scale).
    size, noise, num_envs: the preset's unless given; seed: SAC's and the rollouts' seed;
    jobs: agent files built at once in separate processes (the same files).
    obs: "global" (every agent's observation is the full state) or "local" (each agent's
        MaMuJoCo local observation, joints up to `obsk` hops away, default 1;
        docs/observations.md).
    Returns one AgentDataset per agent, in agent order (see `load_datasets`).
    """
    from mabcq.data.sources import build_dataset_files
    from mabcq.envs.observations import observation_spec
    from mabcq.envs.tasks import get_task

    task_spec = get_task(task)
    options = dict(behavior=behavior, size=size, noise=noise, seed=seed, num_envs=num_envs,
                   jobs=jobs, progress=progress, obs=observation_spec(obs, obsk))
    if out is not None:
        build_dataset_files(task_spec, recipe, preset, Path(out), **options)
        return load_datasets(out)
    with tempfile.TemporaryDirectory(prefix="mabcq-data-") as directory:
        build_dataset_files(task_spec, recipe, preset, Path(directory), **options)
        return load_datasets(directory)


# ---------------------------------------------------------------- training


def make_config(task: str, method: str | Sequence[str] = "mabcq", *, preset: str = "quick",
                seeds: int | Sequence[int] = (0,), **overrides: Any) -> TrainConfig:
    """A training config (a frozen dataclass, like CORL's): the preset's scale, the paper's
    Table 8 learner defaults, then `overrides`.

    task: e.g. "hopper-3x1" (docs/datasets.md, "Tasks").
    method: "mabcq", "mabcq-no-tn", "mabcq-no-vd", "bcq", "ddpg", "behavior", "mabcq-epsE"
        (MABCQ at optimism E); or a list of BCQ-family methods (e.g. ["mabcq", "bcq"]) that
        train together in ONE compiled step, each cell equal to its method trained alone.
    preset: "smoke" (seconds), "quick" (minutes on a CPU) or "paper" (docs/training.md).
    seeds: one seed or several, trained side by side.
    overrides: training options (updates, pretrain_updates, eval_every, eval_episodes,
        eval_max_steps, diagnostic_states, updates_per_call, checkpoint_every, agent,
        fast_compile) and learner options (any LearnerConfig field: batch_size, optimism,
        hidden_sizes, gamma, lr_critic, ...). None keeps the preset's value; an unknown name
        raises UserError listing the known ones.
    """
    from mabcq.envs.tasks import get_task
    from mabcq.training.config import make_config as make_train_config

    methods = method if isinstance(method, str) else "+".join(method)
    seed_list = [int(seeds)] if isinstance(seeds, int | np.integer) else [int(s) for s in seeds]
    return make_train_config(get_task(task).name, methods, seed_list, preset, **overrides)


def fit(config: TrainConfig, datasets: Sequence[AgentDataset] | PathLike,
        run_dir: PathLike | None = None, *, seeds: int | Sequence[int] | None = None,
        methods: str | Sequence[str] | None = None, resume: bool = False,
        progress: bool = True, env_workers: int | None = None) -> FitResult:
    """Train `config`'s method(s) on per-agent datasets, every agent and seed in one compiled
    step, evaluating the agents' decentralized policies together in the simulator every
    `config.eval_every` updates (what `mabcq train` does).

    config: from `make_config`. datasets: one AgentDataset per agent, in agent order (agent
        i learns from datasets[i] only), or a directory/file for `load_datasets`; with
        config.agent set, that agent's dataset alone.
    run_dir: None (default): nothing is written; metrics, states and policies stay in memory
        (no checkpoints, so no resume). A directory: exactly `mabcq train --out DIR`'s files
        (config.json, metrics.csv, tensorboard/, checkpoint.npz, policies/, summary.json).
    seeds, methods: replace config.seeds / config.method (methods: a list of BCQ-family
        methods trains them together in one step).
    resume: continue the run in run_dir from its checkpoint (bitwise the uninterrupted run).
    progress: a tqdm.auto bar (a widget in Jupyter). env_workers: processes stepping the
        evaluation envs (None: by core count); the numbers do not depend on it.

    Returns a FitResult: `.metrics` (one dict per evaluation and (method, seed) cell, the
    columns of metrics.csv), `.table(method, seed)` (column -> numpy array), `.final(method)`,
    `.policy(agent, method, seed)` (a Policy), `.states` (leaves [cells, agents, ...]; a
    GroupedStates when agents' local observations differ in size, see `.agent_state`).
    """
    from mabcq.learners.registry import split_methods
    from mabcq.training.config import check_counts
    from mabcq.training.loop import run_training

    if seeds is not None:
        seed_list = [int(seeds)] if isinstance(seeds, int | np.integer) else list(seeds)
        config = dataclasses.replace(config, seeds=tuple(int(s) for s in seed_list))
        if not config.seeds:
            raise UserError("seeds: give at least one seed")
    if methods is not None:
        config = dataclasses.replace(
            config, method=methods if isinstance(methods, str) else "+".join(methods))
        split_methods(config.method)
    check_counts(config)
    if isinstance(datasets, str | os.PathLike):
        datasets = load_datasets(datasets)
    trained = run_training(config, list(datasets), run_dir, resume=resume, progress=progress,
                           env_workers=env_workers)
    assert trained is not None  # only a test hook (stop_after) stops early
    return FitResult(trained.config, trained.states, trained.rows, trained.summary,
                     trained.run_dir, trained.observations)


@dataclass
class FitResult:
    """A finished training run, in memory.

    config: the TrainConfig it ran with. states: every (cell, agent) learner state (params,
    target params, optimizer states), leaves [cells, agents, ...] with cells = `self.cells`.
    metrics: one dict per (evaluation, cell), the columns of metrics.csv (docs/training.md);
    a column a row does not report is absent from it. summary: summary.json's dict.
    run_dir: where its files are, or None (nothing was written).
    """

    config: TrainConfig
    states: Any = field(repr=False)
    metrics: list[dict[str, Any]] = field(repr=False)
    summary: dict[str, Any] = field(repr=False)
    run_dir: Path | None = None
    observations: Any = field(default=None, repr=False)  # the data's ObservationSpec

    @property
    def cells(self) -> list[tuple[str, int]]:
        """The (method, seed) pairs in the order of the states' leading axis."""
        from mabcq.training.config import run_cells

        return run_cells(self.config)

    @property
    def methods(self) -> tuple[str, ...]:
        from mabcq.learners.registry import split_methods

        return split_methods(self.config.method)

    @property
    def seeds(self) -> tuple[int, ...]:
        return self.config.seeds

    @property
    def agents(self) -> list[int]:
        """The agents trained: all of the task's, or config.agent alone."""
        from mabcq.envs.tasks import get_task

        if self.config.agent is not None:
            return [self.config.agent]
        return list(range(get_task(self.config.task).n_agents))

    def _method(self, method: str | None) -> str:
        if method is None:
            if len(self.methods) > 1:
                raise UserError(f"this run trained {list(self.methods)}: name one (method=...)")
            return self.methods[0]
        if method not in self.methods:
            raise UserError(f"method {method!r} was not trained here; trained: "
                            f"{list(self.methods)}")
        return method

    def _cell(self, method: str | None, seed: int | None) -> int:
        method = self._method(method)
        seed = self.seeds[0] if seed is None else int(seed)
        if seed not in self.seeds:
            raise UserError(f"seed {seed} was not trained here; seeds: {list(self.seeds)}")
        return self.cells.index((method, seed))

    def table(self, method: str | None = None, seed: int | None = None) -> dict[str, np.ndarray]:
        """The metrics as columns: name -> array [rows], rows in evaluation order (update, then
        cell), filtered to `method` and/or `seed` when given. "update" and "seed" are int64,
        "method" strings, the rest float64 with NaN where a row does not report the column.
        E.g. `t = result.table("mabcq", seed=0); plt.plot(t["update"], t["return_mean"])`.
        """
        from mabcq.training.logs import CSV_COLUMNS

        if method is not None:
            self._method(method)
        rows = [row for row in self.metrics
                if (method is None or row.get("method") == method)
                and (seed is None or row.get("seed") == seed)]
        columns: dict[str, np.ndarray] = {}
        for column in CSV_COLUMNS:
            if not any(column in row for row in rows):
                continue
            if column == "method":
                columns[column] = np.array([row.get(column, "") for row in rows])
            elif column in ("update", "seed"):
                columns[column] = np.array([row[column] for row in rows], np.int64)
            else:
                columns[column] = np.array([row.get(column, np.nan) for row in rows],
                                           np.float64)
        return columns

    def final(self, method: str | None = None) -> dict[str, Any]:
        """The last evaluation of `method` over seeds: final_return_mean/std/per_seed,
        final_value_difference_mean, final_extrapolation_error_mean, lambda ranges, ..."""
        method = self._method(method)
        if "methods" in self.summary:
            return dict(self.summary["methods"][method])
        return {key: value for key, value in self.summary.items()
                if key.startswith(("final_", "lambda_"))}

    def agent_state(self, agent: int, method: str | None = None, seed: int | None = None) -> Any:
        """One agent's full learner state (AgentState: params incl. G2, targets, optimizer)."""
        from mabcq.learners.groups import agent_slice

        return agent_slice(self.states, self._cell(method, seed), self._slot(agent))

    def _slot(self, agent: int) -> int:
        if agent not in self.agents:
            raise UserError(f"agent {agent} was not trained here; agents: {self.agents}")
        return self.agents.index(agent)

    def policy(self, agent: int, method: str | None = None, seed: int | None = None) -> Policy:
        """Agent `agent`'s Policy of the (method, seed) cell (default: the only method, the
        first seed): what RUN_DIR/policies/.../agent_<i>.msgpack holds, in memory."""
        from mabcq.envs.tasks import get_task
        from mabcq.training.policies import cell_policy

        return cell_policy(self.config, self.states, get_task(self.config.task),
                           self._cell(method, seed), self._slot(agent), agent,
                           self.observations)

    def policies(self, method: str | None = None, seed: int | None = None) -> list[Policy]:
        """Every trained agent's Policy of one cell, in agent order (for `evaluate`)."""
        return [self.policy(agent, method, seed) for agent in self.agents]

    def export(self, directory: PathLike) -> list[Path]:
        """Write every cell's policy files as a run dir's policies/ holds them:
        DIR/seed_<s>/agent_<i>.msgpack (one method) or DIR/<method>/seed_<s>/agent_<i>.msgpack;
        returns the paths. Each file loads alone with `Policy.load`."""
        from mabcq.envs.tasks import get_task
        from mabcq.training.policies import export_policies

        return export_policies(self.config, self.states, Path(directory),
                               get_task(self.config.task), self.agents, self.observations)

    def __repr__(self) -> str:
        finals = []
        for method in self.methods:
            final = self.final(method)
            finals.append(f"{method}: return {final['final_return_mean']:.1f} +- "
                          f"{final['final_return_std']:.1f}")
        return (f"FitResult({self.config.task}, seeds {list(self.seeds)}, "
                f"{self.summary['updates']} updates; {'; '.join(finals)})")


# ---------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Evaluation:
    """Episodes of the agents' policies run together in the simulator.

    episode_returns [E] (undiscounted), episode_lengths [E]; rollout: every transition
    (observations [T, S], joint actions [T, sum A_i], rewards, terminals, timeouts,
    discounted_returns [T]), episodes concatenated in order.
    """

    task: str
    episode_returns: np.ndarray
    episode_lengths: np.ndarray
    rollout: RolloutResult = field(repr=False)
    n_agents: int = 0
    obsk: int | None = None  # local observations' K; None: global states
    videos: tuple[Path, ...] = ()  # with evaluate(video=...): the MP4s (and GIF) written

    @property
    def return_mean(self) -> float:
        return float(np.mean(self.episode_returns))

    @property
    def return_std(self) -> float:
        return float(np.std(self.episode_returns))

    def agent_observations(self) -> list[np.ndarray]:
        """What each agent saw at every transition, one array per agent: [T, S] global states
        (the same array for all), or with local observations agent i's own [T, O_i]."""
        if self.rollout.local_observations is None:
            return [self.rollout.observations] * self.n_agents
        from mabcq.envs.observations import local_observer

        return local_observer(self.task, self.obsk).split(self.rollout.local_observations)


def evaluate(task: str, policies: Sequence[Policy | PathLike], episodes: int = 10, *,
             seed: int = 0, max_steps: int | None = None,
             video: PathLike | VideoOptions | None = None) -> Evaluation:
    """Run one policy per agent together in the simulator (what `mabcq evaluate` does).

    policies: in agent order, each a Policy (e.g. `FitResult.policies()`) or a policy file
        loaded on its own; each acts only on the global state (or, trained on local
        observations, its own local observation) with its own key stream and returns only
        its own action slice. Checked against the task and agent order.
    episodes: E episodes (up to 8 envs in lockstep); seed: the simulator's and the actions'
        seed; max_steps: a step limit per episode (default: the task's horizon, 1000).
    video: a directory, or `mabcq.VideoOptions(out, episodes=..., width=..., fps=...,
        camera=...)`: also film the first episode(s) as the agents acted (DIR/episode_<k>.mp4,
        each agent's body parts in its own color, and a small DIR/episode_0.gif); the paths
        are `Evaluation.videos`. Needs the `video` extra and an offscreen OpenGL, checked
        before anything runs (docs/videos.md).
    """
    from mabcq.envs.tasks import get_task
    from mabcq.training.evaluation import evaluate_policy_files, policies_observation_spec

    task_spec = get_task(task)
    if video is not None:
        from mabcq.video import checked_video_options

        options = checked_video_options(video, episodes)
    else:
        options = None
    loaded, rollout = evaluate_policy_files(task_spec, policies, episodes, seed, max_steps,
                                            record_physics=options is not None)
    videos = ()
    if options is not None:
        from mabcq.video import record_videos

        videos = tuple(record_videos(task_spec, rollout, options))
    return Evaluation(task_spec.name, np.asarray(rollout.episode_returns),
                      np.asarray(rollout.episode_lengths), rollout, task_spec.n_agents,
                      policies_observation_spec(loaded).k, videos)
