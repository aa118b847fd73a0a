"""Build one agent dataset file per agent from a recipe and a trained SAC behavior directory."""

from __future__ import annotations

import datetime
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mabcq import __version__
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
from mabcq.envs.rollout import RolloutResult, run_episodes
from mabcq.envs.tasks import Task
from mabcq.errors import UserError

REPLAY_KEYS = ("observations", "actions", "rewards", "next_observations", "terminals",
               "timeouts", "env_index")


class Behavior:
    """A trained behavior directory: replay, level snapshots, and their agent policies."""

    def __init__(self, task: Task, directory: Path, intermediate_step: int | None = None,
                 expert_step: int | None = None):
        from mabcq.behavior.policies import joint_mean_policy, load_actor
        from mabcq.behavior.sac import SAC, SACConfig
        from mabcq.behavior.train import choose_levels, load_behavior

        self.directory = Path(directory)
        self.record = load_behavior(self.directory)
        if self.record["task"] != task.name:
            raise UserError(f"{directory}: behavior trained on {self.record['task']}, "
                            f"not {task.name}")
        self.task = task
        sac_config = dict(self.record["config"]["sac"])
        sac_config["hidden_sizes"] = tuple(sac_config["hidden_sizes"])
        sac = SAC(task.state_dim, task.joint_action_dim, SACConfig(**sac_config))
        self.levels = self.record["levels"]
        if intermediate_step is not None or expert_step is not None:
            self.levels = choose_levels(self.record["evaluations"],
                                        self.record["config"]["intermediate_fraction"],
                                        intermediate_step, expert_step)
        self.joint_policies: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
        for level in ("intermediate", "expert"):
            path = self.directory / self.levels[level]["snapshot"]
            if not path.exists():
                raise UserError(f"{path}: snapshot of the {level} policy is missing")
            self.joint_policies[level] = joint_mean_policy(sac, load_actor(path))
        self._replay: dict[str, np.ndarray] | None = None

    @property
    def replay(self) -> dict[str, np.ndarray]:
        if self._replay is None:
            path = self.directory / "checkpoint.npz"
            try:
                with np.load(path) as data:
                    self._replay = {key: data[key] for key in REPLAY_KEYS}
            except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as error:
                raise UserError(f"{path}: cannot read SAC's replay ({error})") from None
        return self._replay

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
                 noise: float, num_envs: int, progress: Callable[[int], None] | None = None
                 ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Joint-action transitions [size, ...] of one part, and what to record about them."""
    task = behavior.task
    if part.source == "replay":
        replay = behavior.replay
        available = len(replay["rewards"])
        if part.replay_until:
            level = behavior.levels[part.replay_until]
            available = min(available, int(level["step"]))
        if size > available:
            where = f" before the {part.replay_until} policy" if part.replay_until else ""
            raise UserError(
                f"part {part.name!r} needs {size} transitions of SAC's replay but "
                f"{behavior.directory} has {available}{where}; train SAC longer or lower --size")
        arrays = episode_ordered_prefix(replay, size)
        if progress:
            progress(size)
        info = {"source": "replay", "replay_steps": [0, size]}
        return arrays, info
    policies = behavior.agent_policies(agent, part.self_level, part.others_level)
    result: RolloutResult = run_episodes(task, policies, None, seed=seed, transitions=size,
                                         action_noise=noise if part.noisy else 0.0,
                                         num_envs=num_envs, progress=progress)
    arrays = {"observations": result.observations, "actions": result.actions,
              "rewards": result.rewards, "next_observations": result.next_observations,
              "terminals": result.terminals, "timeouts": result.timeouts}
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
                        progress: Callable[[int], None] | None = None) -> AgentDataset:
    """Agent `agent`'s dataset: every part collected with joint actions, then sliced."""
    task = behavior.task
    parts = get_recipe(recipe)
    sizes = part_sizes(parts, size)
    if recipe == "medium-replay":
        level_step = int(behavior.levels["intermediate"]["step"])
        sizes = [min(size, level_step, len(behavior.replay["rewards"]))]
    columns: dict[str, list[np.ndarray]] = {}
    labels, details = [], []
    for index, (part, count) in enumerate(zip(parts, sizes, strict=True)):
        if count == 0:
            details.append({"name": part.name, "size": 0})
            continue
        arrays, info = collect_part(behavior, part, agent, count,
                                    part_seed(seed, agent, index), noise, num_envs,
                                    _clamped(progress, count))
        arrays["actions"] = task.split_action(arrays["actions"])[agent]
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
        "behavior": {"directory": str(behavior.directory), "seed": behavior.record["seed"],
                     "env_steps": behavior.record["env_steps"], "levels": behavior.levels},
        "episode_returns": return_summary(episode_returns(
            data["rewards"], data["terminals"], data["timeouts"])),
        "package_version": __version__,
        "created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    return AgentDataset(**data, metadata=metadata, parts=np.concatenate(labels))


def build_datasets(task: Task, recipe: str, size: int, behavior_dir: Path, out: Path,
                   seed: int = 0, noise: float = 0.1, num_envs: int = 16,
                   progress: bool = True, intermediate_step: int | None = None,
                   expert_step: int | None = None) -> list[Path]:
    """Write out/agent_{i}.h5 for every agent (each atomically)."""
    from tqdm import tqdm

    get_recipe(recipe)
    behavior = Behavior(task, behavior_dir, intermediate_step, expert_step)
    paths = []
    for agent in range(task.n_agents):
        path = Path(out) / agent_file_name(agent)
        if _already_built(path, recipe, size, seed, noise, behavior):
            paths.append(path)  # a rerun after a kill keeps the finished agents' files
            continue
        with tqdm(total=size, desc=f"{task.name} agent {agent}", unit="tr",
                  disable=not progress) as bar:
            dataset = build_agent_dataset(behavior, recipe, size, agent, seed, noise, num_envs,
                                          progress=bar.update)
        paths.append(save_agent_dataset(dataset, path))
    return paths


def _already_built(path: Path, recipe: str, size: int, seed: int, noise: float,
                   behavior: Behavior) -> bool:
    """True when `path` is a valid file built with exactly these settings and levels."""
    from mabcq.data.io import load_agent_dataset

    if not path.exists():
        return False
    try:
        meta = load_agent_dataset(path).metadata
    except UserError:
        return False
    levels = {level: value["step"] for level, value in meta["behavior"]["levels"].items()}
    return (meta.get("recipe"), meta.get("seed"), meta.get("noise"), meta.get("task"),
            meta["behavior"].get("directory"), levels, meta.get("requested_size")) == (
        recipe, seed, noise, behavior.task.name, str(behavior.directory),
        {level: value["step"] for level, value in behavior.levels.items()}, size)
