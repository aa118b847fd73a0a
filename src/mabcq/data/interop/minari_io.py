"""Minari datasets (Farama's offline-RL standard) from and to per-agent files.

Export: each agent's file becomes one Minari dataset, `mabcq/TASK/NAME-agentI-v0`, written with
`minari.create_dataset_from_buffers` (HDF5 storage): observation space Box(-inf, inf, (S,)) as
stored, action space Box(low, high, (A_i,)) of the agent's own slice (the task's bounds; for a
task mabcq does not know, the data's per-dimension range), one episode per run of rows that
ends at a terminal or timeout (or where s' is not the next row's s, so nothing is lost),
terminals -> terminations, timeouts -> truncations, `parts` -> infos["parts"] (index 0 the
reset info, as Minari's collector records it), and the file's whole metadata under the
dataset metadata key "mabcq". Import reads such a dataset back exactly, and any other Minari
dataset with flat Box observations and actions.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from mabcq.data.interop.common import (
    AgentArrays,
    Identity,
    build_agent_datasets,
    check_identity,
    continuity_breaks,
    known_task,
)
from mabcq.data.io import FORMAT_NAME, load_dataset_dir_with_paths, validate_agent_dataset
from mabcq.data.schema import AgentDataset
from mabcq.errors import UserError

METADATA_KEY = "mabcq"
NAMESPACE = "mabcq"


def _minari() -> Any:
    try:
        import minari
    except ImportError:
        raise UserError("Minari datasets need the minari package: pip install "
                        "'mabcq[minari]'") from None
    return minari


def default_root() -> Path:
    """Minari's local dataset root: $MINARI_DATASETS_PATH, else ~/.minari/datasets (the rule of
    minari.storage.get_dataset_path, without creating it)."""
    root = os.environ.get("MINARI_DATASETS_PATH")
    return Path(root) if root else Path.home() / ".minari" / "datasets"


def dataset_id(task: str, name: str, agent: int) -> str:
    """Minari's id syntax allows [-_A-Za-z0-9] in each part."""
    safe_task = re.sub(r"[^-\w]", "_", task)
    return f"{NAMESPACE}/{safe_task}/{name}-agent{agent}-v0"


# ---------------------------------------------------------------- export


def episode_bounds(dataset: AgentDataset) -> np.ndarray:
    """[episodes + 1] row offsets: an episode ends at a terminal or timeout row, or where the
    next row's s is not this row's s' (Minari stores s' only as the next observation)."""
    ends = (dataset.terminals | dataset.timeouts
            | continuity_breaks(dataset.observations, dataset.next_observations))
    return np.r_[0, np.flatnonzero(ends) + 1]


def _action_space(dataset: AgentDataset) -> Any:
    import gymnasium as gym

    task = known_task(str(dataset.metadata["task"]))
    if task is not None:
        low = np.full(dataset.action_dim, task.action_low, np.float32)
        high = np.full(dataset.action_dim, task.action_high, np.float32)
    else:
        low, high = dataset.actions.min(axis=0), dataset.actions.max(axis=0)
    return gym.spaces.Box(low, high, (dataset.action_dim,), np.float32)


def episode_buffers(dataset: AgentDataset) -> list[Any]:
    from minari.data_collector import EpisodeBuffer

    bounds = episode_bounds(dataset)
    buffers = []
    for episode, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        infos = None
        if dataset.parts is not None:
            infos = {"parts": np.r_[dataset.parts[start:start + 1], dataset.parts[start:stop]]}
        buffers.append(EpisodeBuffer(
            id=episode,
            observations=np.concatenate([dataset.observations[start:stop],
                                         dataset.next_observations[stop - 1:stop]]),
            actions=dataset.actions[start:stop], rewards=dataset.rewards[start:stop],
            terminations=dataset.terminals[start:stop],
            truncations=dataset.timeouts[start:stop], infos=infos))
    return buffers


@contextmanager
def _datasets_root(root: Path) -> Iterator[None]:
    """Point Minari at `root` for the calls inside (it reads the variable at each call)."""
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous


def _write_one(dataset: AgentDataset, ident: str) -> None:
    import gymnasium as gym

    minari = _minari()
    meta = dataset.metadata
    source = meta.get("source")
    made_by = meta.get("recipe") or (source.get("format") if isinstance(source, dict) else None)
    description = (f"mabcq per-agent dataset ({FORMAT_NAME}): task {meta['task']}, agent "
                   f"{meta['agent']} of {meta['n_agents']}; actions are this agent's own slice "
                   f"{meta.get('action_slice')}; observations: {meta.get('obs', 'state')}")
    with warnings.catch_warnings():  # Minari warns about every optional field left empty
        warnings.simplefilter("ignore")
        written = minari.create_dataset_from_buffers(
            ident, episode_buffers(dataset),
            observation_space=gym.spaces.Box(-np.inf, np.inf, (dataset.state_dim,), np.float32),
            action_space=_action_space(dataset), algorithm_name=f"mabcq {made_by}",
            description=description, data_format="hdf5")
    written.storage.update_metadata({METADATA_KEY: meta})


def export_minari(directory: Path, root: Path | None = None, name: str | None = None
                  ) -> list[str]:
    """Write one Minari dataset per agent file of `directory` under `root` (default: Minari's
    own root); returns the dataset ids. All are written into a temp root first and moved in
    only when every one succeeded; an id that exists already is refused before any work."""
    _minari()  # missing package: say so before anything is created
    loaded = [dataset for _, dataset in load_dataset_dir_with_paths(directory)]
    root = root or default_root()
    name = name or str(loaded[0].metadata.get("recipe") or "data")
    idents = [dataset_id(str(d.metadata["task"]), name, int(d.metadata["agent"])) for d in loaded]
    for ident in idents:
        if (root / ident).exists():
            raise UserError(f"{root / ident}: Minari dataset {ident} exists already; delete it "
                            "or choose another --name")
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".mabcq-export-", dir=root))
    try:
        with _datasets_root(staging):
            for dataset, ident in zip(loaded, idents, strict=True):
                _write_one(dataset, ident)
        for ident in idents:
            (root / ident).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / ident, root / ident)
        for namespace_file in staging.rglob("namespace_metadata.json"):
            target = root / namespace_file.relative_to(staging)
            if not target.exists():
                os.replace(namespace_file, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return idents


# ---------------------------------------------------------------- import


def resolve_source(text: str) -> Path:
    """A Minari dataset's data directory from a path (the dataset or its data/ directory) or an
    id in the local root. Never downloads."""
    path = Path(text)
    for candidate in (path / "data", path):
        if (candidate / "metadata.json").is_file():
            return candidate
    if path.exists():
        raise UserError(f"{text}: not a Minari dataset (no data/metadata.json)")
    local = default_root() / text / "data"
    if (local / "metadata.json").is_file():
        return local
    raise UserError(f"{text}: no such Minari dataset path, nor id under {default_root()} "
                    "($MINARI_DATASETS_PATH); nothing is downloaded, use `minari download` "
                    "first")


def _flat_box(space: Any, what: str, source: str) -> None:
    import gymnasium as gym

    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise UserError(f"{source}: {what} space is {space}; only flat Box spaces can become "
                        "per-agent files")


def read_minari(data_path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """All episodes of one dataset concatenated as transitions, plus the dataset metadata."""
    minari = _minari()
    source = str(data_path)
    try:
        dataset = minari.MinariDataset(data_path)
        metadata = dataset.storage.metadata
        _flat_box(dataset.observation_space, "observation", source)
        _flat_box(dataset.action_space, "action", source)
        columns: dict[str, list[np.ndarray]] = {name: [] for name in (
            "observations", "actions", "rewards", "next_observations", "terminals",
            "timeouts", "parts")}
        for episode in dataset.iterate_episodes():
            columns["observations"].append(np.asarray(episode.observations)[:-1])
            columns["next_observations"].append(np.asarray(episode.observations)[1:])
            columns["actions"].append(np.asarray(episode.actions))
            columns["rewards"].append(np.asarray(episode.rewards))
            columns["terminals"].append(np.asarray(episode.terminations))
            columns["timeouts"].append(np.asarray(episode.truncations))
            if isinstance(episode.infos, dict) and "parts" in episode.infos:
                columns["parts"].append(np.asarray(episode.infos["parts"])[1:])
    except UserError:
        raise
    except Exception as error:  # noqa: BLE001 - Minari and h5py raise many kinds
        raise UserError(f"{source}: cannot read the Minari dataset ({type(error).__name__}: "
                        f"{' '.join(str(error).split())[:200]})") from None
    if not columns["rewards"]:
        raise UserError(f"{source}: the Minari dataset has no episodes")
    arrays = {name: np.concatenate(values) for name, values in columns.items() if values}
    return arrays, metadata


def _restore(arrays: dict[str, np.ndarray], metadata: dict[str, Any], source: str
             ) -> AgentDataset:
    """A dataset exported by mabcq, exactly as it was."""
    dataset = AgentDataset(
        observations=arrays["observations"].astype(np.float32),
        actions=arrays["actions"].astype(np.float32),
        rewards=arrays["rewards"].astype(np.float32),
        next_observations=arrays["next_observations"].astype(np.float32),
        terminals=arrays["terminals"].astype(bool), timeouts=arrays["timeouts"].astype(bool),
        metadata=metadata[METADATA_KEY],
        parts=arrays["parts"].astype(np.int8) if "parts" in arrays else None)
    return validate_agent_dataset(dataset, source)


def import_minari(sources: list[str], task: str | None, notes: list[str] | None = None
                  ) -> list[AgentDataset]:
    """Datasets exported by mabcq come back as they were (agent and task from their metadata);
    other datasets become agents 0..N-1 in the order given, or, one dataset whose actions are
    the joint action of a known task, that task's agents (each its own slice). A dataset that
    names its env (Minari's env_spec) must name the task's; `notes` gets what was changed
    (Ant's contact forces dropped)."""
    read = [(resolve_source(text), text) for text in sources]
    loaded = [(path, *read_minari(path)) for path, _ in read]
    ours = [METADATA_KEY in metadata for _, _, metadata in loaded]
    if any(ours) and not all(ours):
        raise UserError("minari: mix of datasets exported by mabcq and others; import them "
                        "separately")
    if all(ours):
        datasets = [_restore(arrays, metadata, str(path)) for path, arrays, metadata in loaded]
        for dataset, (path, _, _) in zip(datasets, loaded, strict=True):
            if task is not None and dataset.metadata["task"] != task:
                raise UserError(f"{path}: recorded task {dataset.metadata['task']!r}, not "
                                f"--task {task!r}")
        agents = [d.metadata["agent"] for d in datasets]
        if len(set(agents)) != len(agents):
            raise UserError(f"minari: two datasets hold agent {agents[0]}; give each agent once")
        return datasets
    if task is None:
        raise UserError(f"{sources[0]}: not exported by mabcq; give --task (a mabcq task, or a "
                        "name of your own)")
    task_spec = known_task(task)
    agents = []
    for path, arrays, metadata in loaded:
        identity = env_identity(metadata, str(path))
        check_identity(identity, task_spec, str(path))
        agents.append(_foreign_agent(arrays, metadata, str(path), identity))
    if len(agents) == 1 and task_spec is not None and task_spec.n_agents > 1:
        agents = _split_joint(agents[0], task_spec, str(loaded[0][0]))
    return build_agent_datasets(agents, task=task, obs=_foreign_obs(agents, task_spec),
                                source_format="minari",
                                source_path=", ".join(str(path) for path, _, _ in loaded),
                                notes=notes)


def env_identity(metadata: dict[str, Any], source: str) -> Identity | None:
    """The env a dataset records (Minari's `env_spec`, the Gymnasium EnvSpec as JSON, which
    DataCollector and create_dataset_from_buffers(env=...) store); None when it has none."""
    text = metadata.get("env_spec")
    if not text:
        return None
    try:
        ident = str(json.loads(text)["id"])
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{source}: metadata env_spec is not an EnvSpec's JSON") from None
    name = ident.rsplit("/", 1)[-1].split("-v")[0]
    return Identity(name, None, f"env_spec {ident}")


def _foreign_obs(agents: list[AgentArrays], task: Any) -> str:
    """A foreign dataset's observations are the global state when every agent's have one size;
    otherwise each agent's own ("local"). For a task mabcq knows they must be its state
    (common.for_task checks the size)."""
    dims = {np.shape(agent.observations)[-1] for agent in agents}
    return "state" if task is not None or len(dims) == 1 else "local"


def _foreign_agent(arrays: dict[str, np.ndarray], metadata: dict[str, Any], source: str,
                   identity: Identity | None = None) -> AgentArrays:
    return AgentArrays(
        observations=arrays["observations"], actions=arrays["actions"],
        rewards=arrays["rewards"], next_observations=arrays["next_observations"],
        terminals=arrays["terminals"], timeouts=arrays["timeouts"],
        source={"dataset_id": metadata.get("dataset_id"), "data_path": source,
                "minari_version": metadata.get("minari_version"),
                **({"recorded_on": identity.recorded} if identity else {})})


def _split_joint(joint: AgentArrays, task: Any, source: str) -> list[AgentArrays]:
    """A single-agent dataset's joint action (actuator order) cut into the task's slices."""
    if joint.actions.shape[1] != task.joint_action_dim:
        raise UserError(f"{source}: one dataset with {joint.actions.shape[1]} action dims; "
                        f"{task.name} has {task.n_agents} agents and a joint action of "
                        f"{task.joint_action_dim} dims: give one dataset per agent, or the "
                        "joint one")
    return [AgentArrays(observations=joint.observations, actions=part,
                        rewards=joint.rewards, next_observations=joint.next_observations,
                        terminals=joint.terminals, timeouts=joint.timeouts,
                        source={**joint.source, "writer": "single-agent",
                                "joint_action_slice": list(task.action_slices[agent])})
            for agent, part in enumerate(task.split_action(joint.actions))]
