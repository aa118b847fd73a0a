"""Build one agent dataset file per agent from a recipe and SAC behavior policies (a trained
behavior directory or a shipped set)."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mabcq import __version__
from mabcq.data.early import early_rollout, early_seed
from mabcq.data.io import agent_file_name, save_agent_dataset
from mabcq.data.recipes import (
    Part,
    episode_ordered_prefix,
    episode_returns,
    get_recipe,
    part_sizes,
    return_summary,
)
from mabcq.data.schema import AgentDataset
from mabcq.envs.observations import (
    GLOBAL,
    LocalObserver,
    ObservationSpec,
    observer_for,
    spec_from_metadata,
)
from mabcq.envs.rollout import RolloutResult, run_episodes
from mabcq.envs.tasks import Task
from mabcq.errors import UserError
from mabcq.util.provenance import library_versions

REPLAY_KEYS = ("observations", "actions", "rewards", "next_observations", "terminals",
               "timeouts", "env_index")


class Behavior:
    """The behavior policies a build draws from, with their level snapshots as agent policies.

    Either a trained `mabcq behavior train` directory (SAC's early experience is its replay) or
    a shipped set (`Behavior.shipped`: verified hashes; the early experience is re-created by
    rollouts of its early snapshots, mabcq.data.early).
    """

    def __init__(self, task: Task, directory: Path, intermediate_step: int | None = None,
                 expert_step: int | None = None, *, shipped_record: dict | None = None,
                 label: str | None = None):
        from mabcq.behavior.policies import joint_mean_policy, load_actor
        from mabcq.behavior.sac import SAC, SACConfig
        from mabcq.behavior.train import choose_levels, load_behavior
        from mabcq.util.provenance import files_sha256

        # What rebuilds this Behavior in another process (build_datasets' jobs).
        self.init_args = (task.name, directory, intermediate_step, expert_step, shipped_record,
                          label)
        self.directory = Path(directory)
        self.is_shipped = shipped_record is not None
        self.record = shipped_record if self.is_shipped else load_behavior(self.directory)
        self.label = label or str(self.directory)  # recorded in the files' metadata
        if self.record["task"] != task.name:
            raise UserError(f"{directory}: behavior trained on {self.record['task']}, "
                            f"not {task.name}")
        self.task = task
        sac_config = dict(self.record["config"]["sac"])
        sac_config["hidden_sizes"] = tuple(sac_config["hidden_sizes"])
        self.sac = SAC(task.state_dim, task.joint_action_dim, SACConfig(**sac_config))
        self.levels = self.record["levels"]
        if intermediate_step is not None or expert_step is not None:
            self.levels = choose_levels(self.record["evaluations"],
                                        self.record["config"]["intermediate_fraction"],
                                        intermediate_step, expert_step)
        self.joint_policies: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
        level_files = {}
        for level in ("intermediate", "expert"):
            path = self._snapshot_path(int(self.levels[level]["step"]), level)
            level_files[path.name] = path
            self.joint_policies[level] = joint_mean_policy(self.sac, load_actor(path))
        # A shipped set's hash covers all its files; a directory's, the level snapshots used.
        self.policies_sha256 = (self.record["policies_sha256"] if self.is_shipped
                                else files_sha256(level_files)[1])
        self._replay: dict[str, np.ndarray] | None = None
        self._early: dict[tuple[int, int], tuple[dict[str, np.ndarray], dict]] = {}

    @classmethod
    def shipped(cls, task: Task, root: Path | None = None, intermediate_step: int | None = None,
                expert_step: int | None = None) -> Behavior:
        """The shipped set of `task` (root: the package's shipped sets unless given)."""
        from mabcq.behavior.ship import load_shipped

        record = load_shipped(task.name, root)
        directory = Path(record["directory"])
        label = f"shipped:{task.name}" if root is None else f"shipped:{directory}"
        return cls(task, directory, intermediate_step, expert_step, shipped_record=record,
                   label=label)

    def _snapshot_path(self, step: int, level: str) -> Path:
        if self.is_shipped:
            files = {int(s["step"]): s["file"] for s in self.record["snapshots"]}
            if step not in files:
                raise UserError(f"{self.directory}: the shipped set holds no snapshot at step "
                                f"{step} for the {level} policy (shipped steps: "
                                f"{sorted(files)}); pass --behavior DIR of a full SAC run")
            return self.directory / files[step]
        snapshots = {int(e["step"]): e["snapshot"] for e in self.record["evaluations"]}
        path = self.directory / snapshots[step]
        if not path.exists():
            raise UserError(f"{path}: snapshot of the {level} policy is missing")
        return path

    @property
    def replay(self) -> dict[str, np.ndarray]:
        if self.is_shipped:
            raise UserError(f"{self.directory}: a shipped set has no replay")
        if self._replay is None:
            path = self.directory / "checkpoint.npz"
            try:
                with np.load(path) as data:
                    self._replay = {key: data[key] for key in REPLAY_KEYS}
            except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as error:
                raise UserError(f"{path}: cannot read SAC's replay ({error})") from None
        return self._replay

    def early_steps_available(self) -> int:
        """How many of SAC's first env steps this behavior can give (replay or re-created)."""
        if self.is_shipped:
            return int(self.record["early"]["until_step"])
        return len(self.replay["rewards"])

    def early_experience(self, count: int, seed: int, num_envs: int,
                         progress: Callable[[int], None] | None = None,
                         observer: LocalObserver | None = None
                         ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """SAC's first `count` env steps, episode by episode: the replay's prefix, or its
        re-creation by rollouts of a shipped set (the same for every agent of a build).

        observer: also every agent's local observations (local_observations,
        local_next_observations): from the simulator for a shipped set's rollouts; from the
        replay's global states for a replay, which is exact unless the task's state clips
        what MaMuJoCo does not (Walker2d's velocities beyond +-10; info says which).
        """
        if not self.is_shipped:
            arrays = episode_ordered_prefix(self.replay, count)
            info: dict[str, Any] = {"source": "replay", "replay_steps": [0, count]}
            if observer is not None:
                arrays["local_observations"] = observer.from_states(arrays["observations"])
                arrays["local_next_observations"] = observer.from_states(
                    arrays["next_observations"])
                info["local_observations"] = ("from-state" if observer.state_exact
                                              else "from-state-clipped")
            if progress:
                progress(count)
            return arrays, info
        key = (count, seed, None if observer is None else observer.k)
        if key not in self._early:
            self._early[key] = early_rollout(
                self.task, self.sac, self.directory, self.record["early"]["segments"], count,
                seed, num_envs, progress, observer)
        elif progress:
            progress(count)
        arrays, info = self._early[key]
        return dict(arrays), info  # callers replace the actions by their slice

    def agent_policies(self, agent: int, self_level: str, others_level: str):
        """Agent `agent` runs `self_level`'s snapshot, every other agent `others_level`'s."""
        from mabcq.behavior.policies import split_joint_policy

        mine = split_joint_policy(self.task, self.joint_policies[self_level])
        others = split_joint_policy(self.task, self.joint_policies[others_level])
        return [mine[i] if i == agent else others[i] for i in range(self.task.n_agents)]


def part_seed(seed: int, agent: int, part_index: int) -> int:
    """The rollout seed of one part of one agent's file (recorded in its metadata)."""
    return int(np.random.SeedSequence([seed, agent, part_index, 31]).generate_state(1)[0])


def collect_part(behavior: Behavior, part: Part, agent: int, size: int, seed: int,
                 noise: float, num_envs: int, progress: Callable[[int], None] | None = None,
                 observer: LocalObserver | None = None
                 ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Joint-action transitions [size, ...] of one part, and what to record about them (with
    an observer, also every agent's local observations, [size, sum O_i])."""
    task = behavior.task
    if part.source == "replay":
        available = behavior.early_steps_available()
        if part.replay_until:
            level = behavior.levels[part.replay_until]
            available = min(available, int(level["step"]))
        if size > available:
            where = f" before the {part.replay_until} policy" if part.replay_until else ""
            if behavior.is_shipped:
                raise UserError(
                    f"part {part.name!r} needs {size} transitions of SAC's early experience "
                    f"but the shipped set {behavior.directory} re-creates {available}{where}; "
                    "ship more of it (`mabcq behavior ship --early-until`) or lower --size")
            raise UserError(
                f"part {part.name!r} needs {size} transitions of SAC's replay but "
                f"{behavior.directory} has {available}{where}; train SAC longer or lower --size")
        return behavior.early_experience(size, seed, num_envs, progress, observer)
    policies = behavior.agent_policies(agent, part.self_level, part.others_level)
    result: RolloutResult = run_episodes(task, policies, None, seed=seed, transitions=size,
                                         action_noise=noise if part.noisy else 0.0,
                                         num_envs=num_envs, progress=progress,
                                         observer=observer)
    arrays = {"observations": result.observations, "actions": result.actions,
              "rewards": result.rewards, "next_observations": result.next_observations,
              "terminals": result.terminals, "timeouts": result.timeouts}
    if observer is not None:
        arrays["local_observations"] = result.local_observations
        arrays["local_next_observations"] = result.local_next_observations
    info = {"source": "rollout", "self_level": part.self_level,
            "others_level": part.others_level, "noise": noise if part.noisy else 0.0,
            "seed": seed, "episode_returns": return_summary(result.episode_returns)}
    return arrays, info


def _clamped(progress: Callable[[int], None] | None, budget: int):
    """A progress callback that reports at most `budget` in total (rollouts overshoot a little:
    lockstep envs run past the transition budget before it is cut)."""
    if progress is None:
        return None
    left = [budget]

    def report(count: int) -> None:
        step = min(count, left[0])
        left[0] -= step
        if step:
            progress(step)

    return report


def build_agent_dataset(behavior: Behavior, recipe: str, size: int, agent: int, seed: int,
                        noise: float, num_envs: int,
                        progress: Callable[[int], None] | None = None,
                        obs: ObservationSpec = GLOBAL) -> AgentDataset:
    """Agent `agent`'s dataset: every part collected with joint actions, then sliced (and, with
    local observations, the agent's own observation kept). The behavior policies act on the
    global state either way: they are the data's source, not the agents being trained."""
    task = behavior.task
    observer = observer_for(task.name, obs)
    parts = get_recipe(recipe)
    sizes = part_sizes(parts, size)
    if recipe == "medium-replay":
        level_step = int(behavior.levels["intermediate"]["step"])
        sizes = [min(size, level_step)]
    columns: dict[str, list[np.ndarray]] = {}
    labels, details = [], []
    for index, (part, count) in enumerate(zip(parts, sizes, strict=True)):
        if count == 0:
            details.append({"name": part.name, "size": 0})
            continue
        # SAC's early experience is shared by all agents; every rollout part is the agent's own.
        seed_of_part = early_seed(seed) if part.source == "replay" else part_seed(
            seed, agent, index)
        arrays, info = collect_part(behavior, part, agent, count, seed_of_part, noise,
                                    num_envs, _clamped(progress, count), observer)
        arrays["actions"] = task.split_action(arrays["actions"])[agent]
        if observer is not None:  # the agent's own observation replaces the global state
            arrays["observations"] = observer.split(arrays["local_observations"])[agent]
            arrays["next_observations"] = observer.split(
                arrays["local_next_observations"])[agent]
        for name in ("observations", "actions", "rewards", "next_observations", "terminals",
                     "timeouts"):
            columns.setdefault(name, []).append(np.ascontiguousarray(arrays[name]))
        labels.append(np.full(count, index, np.int8))
        details.append({"name": part.name, "size": count, **info})
    data = {name: np.concatenate(chunks) for name, chunks in columns.items()}
    start, stop = task.action_slices[agent]
    metadata = {
        "task": task.name, "agent": agent, "n_agents": task.n_agents,
        "action_slice": [start, stop], "state_dim": task.state_dim,
        "recipe": recipe, "parts": [part.name for part in parts], "part_sizes": sizes,
        "part_details": details, "size": int(sum(sizes)), "requested_size": size,
        "seed": seed, "noise": noise,
        "behavior": {"directory": behavior.label, "shipped": behavior.is_shipped,
                     "seed": behavior.record["seed"], "env_steps": behavior.record["env_steps"],
                     "levels": behavior.levels, "policies_sha256": behavior.policies_sha256,
                     "versions": behavior.record.get("versions")},
        "episode_returns": return_summary(episode_returns(
            data["rewards"], data["terminals"], data["timeouts"])),
        "package_version": __version__,
        "versions": library_versions(),
        **obs.metadata(),
    }
    if observer is not None:
        metadata["observation_dim"] = observer.dims[agent]
    return AgentDataset(**data, metadata=metadata, parts=np.concatenate(labels))


def build_datasets(task: Task, recipe: str, size: int, behavior_dir: Path | Behavior, out: Path,
                   seed: int = 0, noise: float = 0.1, num_envs: int = 16,
                   progress: bool = True, intermediate_step: int | None = None,
                   expert_step: int | None = None, jobs: int = 1,
                   obs: ObservationSpec = GLOBAL) -> list[Path]:
    """Write out/agent_{i}.h5 for every agent (each atomically).

    behavior_dir: a trained SAC directory, or a Behavior (e.g. `Behavior.shipped(task)`, whose
    levels are then already chosen: the step arguments must be None).
    jobs: agent files built at once in separate processes (same files as jobs=1: each file
    depends only on its own seeds; a shared early part is then rolled out once per process).
    """
    from tqdm.auto import tqdm

    get_recipe(recipe)
    if isinstance(behavior_dir, Behavior):
        if intermediate_step is not None or expert_step is not None:
            raise ValueError("choose the levels when making the Behavior")
        behavior = behavior_dir
    else:
        behavior = Behavior(task, behavior_dir, intermediate_step, expert_step)
    paths = [Path(out) / agent_file_name(agent) for agent in range(task.n_agents)]
    # a rerun after a kill keeps the finished agents' files
    todo = [agent for agent in range(task.n_agents)
            if not _already_built(paths[agent], recipe, size, seed, noise, behavior, obs)]
    job = (recipe, size, seed, noise, num_envs, obs)
    if jobs > 1 and len(todo) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")  # no JAX state crosses the fork
        with ProcessPoolExecutor(min(jobs, len(todo)), mp_context=context) as pool:
            for path in pool.map(_build_agent_file, [(behavior.init_args, agent, job,
                                                      str(paths[agent])) for agent in todo]):
                print(f"wrote {path}")
        return paths
    for agent in todo:
        with tqdm(total=size, desc=f"{task.name} agent {agent}", unit="tr",
                  disable=not progress) as bar:
            dataset = build_agent_dataset(behavior, recipe, size, agent, seed, noise, num_envs,
                                          progress=bar.update, obs=obs)
        save_agent_dataset(dataset, paths[agent])
    return paths


def _build_agent_file(spec: tuple) -> str:
    """One agent's file in a worker process: (Behavior.init_args, agent, (recipe, size, seed,
    noise, num_envs), path) -> path."""
    from mabcq.envs.tasks import get_task

    (task_name, *behavior_args), agent, (recipe, size, seed, noise, num_envs, obs), path = spec
    behavior = Behavior(get_task(task_name), *behavior_args[:3], shipped_record=behavior_args[3],
                        label=behavior_args[4])
    dataset = build_agent_dataset(behavior, recipe, size, agent, seed, noise, num_envs, obs=obs)
    save_agent_dataset(dataset, Path(path))
    return path


def _already_built(path: Path, recipe: str, size: int, seed: int, noise: float,
                   behavior: Behavior, obs: ObservationSpec = GLOBAL) -> bool:
    """True when `path` is a valid file built with exactly these settings and levels."""
    from mabcq.data.io import load_agent_dataset

    if not path.exists():
        return False
    try:
        meta = load_agent_dataset(path).metadata
        if spec_from_metadata(meta, str(path)) != obs:
            return False
    except UserError:
        return False
    levels = {level: value["step"] for level, value in meta["behavior"]["levels"].items()}
    return (meta.get("recipe"), meta.get("seed"), meta.get("noise"), meta.get("task"),
            meta["behavior"].get("directory"), meta["behavior"].get("policies_sha256"), levels,
            meta.get("requested_size")) == (
        recipe, seed, noise, behavior.task.name, behavior.label, behavior.policies_sha256,
        {level: value["step"] for level, value in behavior.levels.items()}, size)
