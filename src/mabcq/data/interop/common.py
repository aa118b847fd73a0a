"""What every importer shares: arrays read from a source -> validated per-agent files.

An importer reads its source into one `AgentArrays` per agent (agent i's own action only) and
hands them to `build_agent_datasets`, which attaches the task and provenance metadata and runs
the file format's validation; `write_agent_files` writes them only after all of them passed,
so a bad source leaves nothing behind.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mabcq.data.io import agent_file_name, dataset_from_arrays, save_dataset_dir
from mabcq.data.schema import AgentDataset
from mabcq.errors import UserError

# Where an agent's observations come from: the source's global state (what the paper's agents
# see, and what mabcq's own tasks store) or the agent's own local observation.
OBS_KINDS = ("state", "local")


@dataclass
class AgentArrays:
    """One agent's transitions as a source holds them, before casting and validation.

    observations/next_observations [T, obs_dim], actions [T, A_i] (this agent's own),
    rewards [T], terminals [T], timeouts [T] or None (then derived by `episode_timeouts`).
    `source` says where they came from (format, path, the agent's key in the source, ...).
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray | None = None
    source: dict[str, Any] = field(default_factory=dict)


def natural_key(name: str) -> list[Any]:
    """Sort key that puts agent_2 before agent_10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def known_task(name: str) -> Any | None:
    """mabcq's Task of that name, or None for a user's own task name."""
    from mabcq.envs.tasks import TASKS

    return TASKS.get(name)


def check_agent_count(task_name: str, n_agents: int, source: str) -> None:
    task = known_task(task_name)
    if task is not None and task.n_agents != n_agents:
        raise UserError(f"{source}: holds {n_agents} agent(s) but task {task.name} has "
                        f"{task.n_agents}; pass the --task this data was recorded on")


def rows(array: Any, name: str, source: str, *, rank: int | None = None) -> np.ndarray:
    """`array` as a numpy array, refusing object/string dtypes and (optionally) a wrong rank."""
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise UserError(f"{source}: field {name!r} has dtype {array.dtype}, expected numbers")
    if rank is not None and array.ndim != rank:
        raise UserError(f"{source}: field {name!r} has shape {array.shape}, expected rank {rank}")
    return array


def flat_column(array: np.ndarray, name: str, source: str) -> np.ndarray:
    """[T] or [T, 1] -> [T] (rewards and done flags are often stored as a column)."""
    if array.ndim == 2 and array.shape[1] == 1:
        return array[:, 0]
    if array.ndim != 1:
        raise UserError(f"{source}: field {name!r} has shape {array.shape}, expected [T] or "
                        "[T, 1]")
    return array


def continuity_breaks(observations: np.ndarray, next_observations: np.ndarray) -> np.ndarray:
    """[T] bool: rows after which the data do not go on from s' (the next row's s is another
    state: the source reset there), and the last row, which ends the data."""
    breaks = np.ones(len(observations), dtype=bool)
    if len(observations) > 1:
        breaks[:-1] = np.any(next_observations[:-1] != observations[1:], axis=1)
    return breaks


def episode_timeouts(observations: np.ndarray, next_observations: np.ndarray,
                     terminals: np.ndarray) -> np.ndarray:
    """[T] bool: rows that end an episode cut short: a continuity break (continuity_breaks)
    that is not terminal (s' still bootstraps)."""
    return continuity_breaks(observations, next_observations) & ~terminals.astype(bool)


def build_agent_datasets(agents: list[AgentArrays], *, task: str, obs: str, source_format: str,
                         source_path: str) -> list[AgentDataset]:
    """Validated AgentDatasets, agent i = agents[i], with where-from metadata."""
    check_agent_count(task, len(agents), source_path)
    task_spec = known_task(task)
    datasets = []
    for index, arrays in enumerate(agents):
        where = f"{source_path} (agent {index})"
        terminals = rows(arrays.terminals, "terminals", where).astype(bool)
        observations = rows(arrays.observations, "observations", where)
        next_observations = rows(arrays.next_observations, "next_observations", where)
        timeouts = arrays.timeouts
        if timeouts is None and observations.ndim == 2 and next_observations.shape == \
                observations.shape and len(terminals) == len(observations):
            timeouts = episode_timeouts(observations, next_observations, terminals)
        metadata: dict[str, Any] = {
            "source": {"format": source_format, "path": source_path, **arrays.source},
            "obs": obs,
        }
        if task_spec is not None:
            metadata["action_slice"] = list(task_spec.action_slices[index])
        datasets.append(dataset_from_arrays(
            observations, rows(arrays.actions, "actions", where),
            rows(arrays.rewards, "rewards", where), next_observations, terminals, timeouts,
            task=task, agent=index, n_agents=len(agents), metadata=metadata, source=where))
    return datasets


def write_agent_files(datasets: list[AgentDataset], out: Path) -> list[Path]:
    """Write OUT/agent_{i}.h5 (each atomically). Refuses an OUT that holds other .h5 files, so
    the directory stays one dataset that `load_dataset_dir` accepts."""
    names = {agent_file_name(int(dataset.metadata["agent"])) for dataset in datasets}
    if out.is_dir():
        others = sorted(path.name for path in out.glob("*.h5") if path.name not in names)
        if others:
            raise UserError(f"{out}: already holds other dataset files ({', '.join(others)}); "
                            "import into an empty directory")
    for name in names:
        if (out / name).is_dir():
            raise UserError(f"{out / name}: is a directory where a file must go")
    if out.exists() and not os.access(out, os.W_OK):
        raise UserError(f"{out}: directory not writable (permission denied)")
    return save_dataset_dir(datasets, out)
