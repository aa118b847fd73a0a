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


@dataclass(frozen=True)
class Identity:
    """The environment a source says it was recorded on (MaMuJoCo's scenario and conf; conf
    None where the source does not record it), and the words it says it with."""

    scenario: str
    conf: str | None
    recorded: str


def check_identity(identity: Identity | None, task: Any, where: str) -> None:
    if identity is None or task is None:
        return
    if identity.scenario != task.mamujoco_scenario or identity.conf not in (
            None, task.mamujoco_conf):
        conf = f" {identity.conf}" if identity.conf else ""
        raise UserError(f"{where}: recorded on {identity.scenario}{conf} ({identity.recorded}), "
                        f"not on {task.name} ({task.mamujoco_scenario} {task.mamujoco_conf}); "
                        "pass the --task the data were recorded on")


def for_task(agents: list[AgentArrays], task: Any, obs: str, writer: Any, where: str,
             notes: list[str]) -> list[AgentArrays]:
    """A known task's agents from a source's: each mabcq agent gets the source agent that
    drives its slice, its action in the single-agent actuator order (conventions.map_agents),
    and the task's state (contact forces dropped, with a note); anything that could not be
    trained or evaluated is refused here."""
    from mabcq.data.interop import conventions

    if obs != "state":
        raise UserError(f"{where}: --obs {obs} with {task.name}: the simulator cannot make this "
                        "source's local observations, so the files could be neither trained "
                        "nor evaluated; import the source's global state (--obs state, where it "
                        "has one) or use a task name of your own")
    if writer is not None:
        orders = conventions.source_orders(writer, task, where)
        if len(orders) != len(agents):
            raise UserError(f"{where}: holds {len(agents)} agent(s) but {writer.name} splits "
                            f"{task.name} among {len(orders)}")
        for k, (arrays, order) in enumerate(zip(agents, orders, strict=True)):
            rows(arrays.actions, "actions", f"{where} (source agent {k})", rank=2)
            if np.shape(arrays.actions)[-1] != len(order):
                raise UserError(f"{where}: source agent {k} has {np.shape(arrays.actions)[-1]} "
                                f"action dims, {writer.name} gives it {len(order)} on "
                                f"{task.name}")
        agents = [AgentArrays(
            observations=agents[k].observations, actions=np.asarray(agents[k].actions)[:, cols],
            rewards=agents[k].rewards, next_observations=agents[k].next_observations,
            terminals=agents[k].terminals, timeouts=agents[k].timeouts,
            source={**agents[k].source, "writer": writer.name,
                    "source_action_actuators": list(orders[k]), "source_action_columns": cols})
            for k, cols in conventions.map_agents(orders, task, where)]
    adapted = []
    for arrays in agents:
        observations, note = conventions.task_state(
            rows(arrays.observations, "observations", where, rank=2), task, where)
        next_observations, _ = conventions.task_state(
            rows(arrays.next_observations, "next_observations", where, rank=2), task, where)
        if note and note not in notes:
            notes.append(note)
        source = dict(arrays.source)
        if note:
            source["state_dropped"] = f"contact forces: dims {task.state_dim}.." \
                f"{np.shape(arrays.observations)[-1] - 1} of the source's state"
        adapted.append(AgentArrays(observations, arrays.actions, arrays.rewards,
                                   next_observations, arrays.terminals, arrays.timeouts, source))
    return adapted


def build_agent_datasets(agents: list[AgentArrays], *, task: str, obs: str, source_format: str,
                         source_path: str, writer: Any = None,
                         identity: Identity | None = None,
                         notes: list[str] | None = None) -> list[AgentDataset]:
    """Validated AgentDatasets, agent i = agents[i], with where-from metadata. For a task
    mabcq knows, the source's environment (`identity`) must be the task's, and the agents
    are mapped by the convention of the code that wrote them (`writer`, see for_task); notes
    on what was changed go into `notes`."""
    task_spec = known_task(task)
    check_identity(identity, task_spec, source_path)
    if task_spec is not None:
        check_agent_count(task, len(agents), source_path)
        agents = for_task(agents, task_spec, obs, writer, source_path,
                          notes if notes is not None else [])
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
        if identity is not None:
            metadata["source"]["recorded_on"] = identity.recorded
        if writer is not None and task_spec is None:
            metadata["source"]["writer"] = writer.name
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
