"""Agent dataset files: one HDF5 file per agent, written atomically, loaded with validation.

Format (FORMAT_NAME, FORMAT_VERSION; docs/datasets.md, "File format"):
  datasets  observations [T, S] f32 (S: the global state, or with metadata obs "local" the
            agent's own observation size O_i), actions [T, A_i] f32 (agent i's slice only),
            rewards [T] f32, next_observations [T, S] f32, terminals [T] bool, timeouts [T] bool,
            parts [T] int8 (optional: index into metadata["parts"])
  attrs     format, format_version, task, agent, n_agents, metadata_json (the whole metadata
            dict as JSON: action_slice, recipe, parts, part_sizes, behavior returns, seeds,
            package and library versions, the behavior policies' sha256, ...)
Every validation problem raises UserError naming the file (or "arrays") and the fix.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from mabcq import __version__
from mabcq.data.schema import ARRAY_FIELDS, AgentDataset
from mabcq.errors import UserError
from mabcq.util.atomic import atomic_path

FORMAT_NAME = "mabcq-agent-dataset"
FORMAT_VERSION = 1
FILE_SUFFIX = ".h5"
REQUIRED_METADATA = ("task", "agent", "n_agents")


def agent_file_name(agent: int) -> str:
    return f"agent_{agent}{FILE_SUFFIX}"


# ---------------------------------------------------------------- validation


def validate_agent_dataset(dataset: AgentDataset, source: str) -> AgentDataset:
    """Check shapes, dtypes, finiteness and metadata; return the dataset or raise UserError."""
    arrays = {name: getattr(dataset, name) for name in ARRAY_FIELDS}
    length = None
    for name, (dtype, rank) in ARRAY_FIELDS.items():
        array = arrays[name]
        if not isinstance(array, np.ndarray):
            raise UserError(f"{source}: field {name!r} is not an array")
        if array.dtype != dtype:
            raise UserError(f"{source}: field {name!r} has dtype {array.dtype}, expected "
                            f"{np.dtype(dtype).name}")
        if array.ndim != rank:
            raise UserError(f"{source}: field {name!r} has shape {array.shape}, expected rank "
                            f"{rank} ({'[T, dim]' if rank == 2 else '[T]'})")
        if length is None:
            length = array.shape[0]
        elif array.shape[0] != length:
            raise UserError(f"{source}: field {name!r} has {array.shape[0]} rows, "
                            f"observations have {length}")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            bad = int(np.count_nonzero(~np.isfinite(array)))
            raise UserError(f"{source}: field {name!r} has {bad} NaN/inf values; "
                            "drop or repair those transitions")
    if length == 0:
        raise UserError(f"{source}: the dataset is empty (0 transitions)")
    if dataset.next_observations.shape[1] != dataset.observations.shape[1]:
        raise UserError(f"{source}: next_observations have {dataset.next_observations.shape[1]} "
                        f"dims, observations {dataset.observations.shape[1]}")
    _validate_metadata(dataset, source)
    _validate_parts(dataset, source)
    return dataset


def _validate_metadata(dataset: AgentDataset, source: str) -> None:
    metadata = dataset.metadata
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        raise UserError(f"{source}: metadata lacks {', '.join(missing)} (give task=, agent=, "
                        "n_agents=)")
    agent, n_agents = metadata["agent"], metadata["n_agents"]
    if not (isinstance(agent, int) and isinstance(n_agents, int) and 0 <= agent < n_agents):
        raise UserError(f"{source}: metadata agent={agent!r}, n_agents={n_agents!r}: need "
                        "integers with 0 <= agent < n_agents")
    from mabcq.envs.tasks import TASKS  # lazy: reading a file needs no simulator

    task = TASKS.get(metadata["task"])
    if task is None:
        return  # a user's own task: nothing more to compare against
    if n_agents != task.n_agents:
        raise UserError(f"{source}: n_agents={n_agents} but task {task.name} has "
                        f"{task.n_agents} agents")
    from mabcq.envs.observations import spec_from_metadata

    # Local observations: each file its own size (ours, or an importer's other layout).
    if not spec_from_metadata(metadata, source).is_local and (
            dataset.state_dim != task.state_dim):
        raise UserError(f"{source}: observations have {dataset.state_dim} dims, task "
                        f"{task.name} has state_dim {task.state_dim}")
    if dataset.action_dim != task.agent_action_dim(agent):
        raise UserError(f"{source}: actions have {dataset.action_dim} dims, agent {agent} of "
                        f"{task.name} owns {task.agent_action_dim(agent)} (its slice only)")
    low, high = task.action_low - 1e-6, task.action_high + 1e-6
    if dataset.actions.min() < low or dataset.actions.max() > high:
        raise UserError(f"{source}: actions leave [{task.action_low}, {task.action_high}]")


def _validate_parts(dataset: AgentDataset, source: str) -> None:
    if dataset.parts is None:
        return
    parts = dataset.parts
    if parts.dtype != np.int8 or parts.shape != (len(dataset),):
        raise UserError(f"{source}: field 'parts' has dtype {parts.dtype} shape {parts.shape}, "
                        f"expected int8 [{len(dataset)}]")
    names = dataset.metadata.get("parts")
    if not isinstance(names, list) or not names:
        raise UserError(f"{source}: 'parts' present but metadata['parts'] (names) missing")
    if parts.min() < 0 or parts.max() >= len(names):
        raise UserError(f"{source}: 'parts' indices outside 0..{len(names) - 1}")


def check_dataset_versions(datasets: list[AgentDataset], source: str) -> list[str]:
    """Warn (one line on stderr, logger "mabcq") when datasets were made with another MuJoCo
    than the installed one: the simulator may then not reproduce their transitions. Returns
    the warnings; files without recorded versions (user arrays, older files) pass silently."""
    from mabcq.util.provenance import library_versions

    installed = library_versions()["mujoco"]
    recorded = sorted({str(versions["mujoco"]) for versions in
                       (dataset.metadata.get("versions") for dataset in datasets)
                       if isinstance(versions, dict) and versions.get("mujoco")})
    messages = [f"mabcq: warning: {source}: dataset made with MuJoCo {version}, installed is "
                f"{installed}; evaluation in this simulator may not match the data's dynamics "
                "exactly (rebuild the dataset to be sure)"
                for version in recorded if version != installed]
    for message in messages:
        logging.getLogger("mabcq").warning(message)
    return messages


# ---------------------------------------------------------------- user arrays


def dataset_from_arrays(
    observations: Any,
    actions: Any,
    rewards: Any,
    next_observations: Any,
    terminals: Any,
    timeouts: Any | None = None,
    *,
    task: str,
    agent: int,
    n_agents: int,
    metadata: dict[str, Any] | None = None,
    parts: Any | None = None,
    source: str = "arrays",
) -> AgentDataset:
    """A validated AgentDataset from a user's arrays (cast to the schema's dtypes)."""
    def cast(value: Any, name: str) -> np.ndarray:
        dtype = ARRAY_FIELDS[name][0]
        array = np.asarray(value)
        if dtype is np.bool_ and array.dtype.kind not in "bui":
            raise UserError(f"{source}: field {name!r} has dtype {array.dtype}, expected bool")
        if dtype is np.float32 and array.dtype.kind not in "fiu":
            raise UserError(f"{source}: field {name!r} has dtype {array.dtype}, expected float")
        return np.ascontiguousarray(array.astype(dtype))

    terminals_array = cast(terminals, "terminals")
    full_metadata = {"source": source, **(metadata or {}),
                     "task": task, "agent": int(agent), "n_agents": int(n_agents)}
    dataset = AgentDataset(
        observations=cast(observations, "observations"),
        actions=cast(actions, "actions"),
        rewards=cast(rewards, "rewards"),
        next_observations=cast(next_observations, "next_observations"),
        terminals=terminals_array,
        timeouts=(np.zeros_like(terminals_array) if timeouts is None
                  else cast(timeouts, "timeouts")),
        metadata=full_metadata,
        parts=None if parts is None else np.asarray(parts).astype(np.int8),
    )
    return validate_agent_dataset(dataset, source)


def load_npz(path: str | os.PathLike, *, task: str, agent: int, n_agents: int) -> AgentDataset:
    """A user's .npz with arrays named like AgentDataset's fields (timeouts optional)."""
    source = str(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise UserError(f"{source}: cannot read as .npz ({error})") from None
    missing = [n for n in ARRAY_FIELDS if n not in arrays and n != "timeouts"]
    if missing:
        raise UserError(f"{source}: missing arrays {', '.join(missing)}")
    return dataset_from_arrays(
        *(arrays[n] for n in ("observations", "actions", "rewards", "next_observations",
                              "terminals")),
        arrays.get("timeouts"), task=task, agent=agent, n_agents=n_agents,
        parts=arrays.get("parts"), source=source)


# ---------------------------------------------------------------- HDF5 files


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_agent_dataset(dataset: AgentDataset, path: str | os.PathLike) -> Path:
    """Validate and write `dataset` to `path` atomically (temp file + os.replace).

    Reproducible: no timestamps (track_times=False), attributes in a fixed order, metadata as
    key-sorted JSON, so the same dataset gives the same bytes.
    """
    import h5py

    path = Path(path)
    validate_agent_dataset(dataset, str(path))
    metadata = _jsonable({**dataset.metadata, "format_version": FORMAT_VERSION,
                          "package_version": dataset.metadata.get("package_version",
                                                                  __version__)})
    with atomic_path(path) as temp_path, h5py.File(temp_path, "w") as file:
        file.attrs["format"] = FORMAT_NAME
        file.attrs["format_version"] = FORMAT_VERSION
        file.attrs["task"] = str(metadata["task"])
        file.attrs["agent"] = int(metadata["agent"])
        file.attrs["n_agents"] = int(metadata["n_agents"])
        file.attrs["metadata_json"] = json.dumps(metadata, sort_keys=True)
        for name in ARRAY_FIELDS:
            file.create_dataset(name, data=getattr(dataset, name), track_times=False)
        if dataset.parts is not None:
            file.create_dataset("parts", data=dataset.parts, track_times=False)
    return path


def load_agent_dataset(path: str | os.PathLike) -> AgentDataset:
    """Read and validate one agent's file; UserError naming the file on any problem."""
    import h5py

    source = str(path)
    if not os.path.isfile(path):
        raise UserError(f"{source}: no such file")
    try:
        with h5py.File(path, "r") as file:
            if file.attrs.get("format") != FORMAT_NAME:
                raise UserError(f"{source}: not a {FORMAT_NAME} file (attribute 'format' is "
                                f"{file.attrs.get('format')!r})")
            version = int(file.attrs.get("format_version", -1))
            if version > FORMAT_VERSION:
                raise UserError(f"{source}: format version {version} is newer than this "
                                f"package reads ({FORMAT_VERSION}); upgrade mabcq")
            missing = [name for name in ARRAY_FIELDS if name not in file]
            if missing:
                raise UserError(f"{source}: missing dataset(s) {', '.join(missing)}; "
                                "rebuild the file")
            if "metadata_json" not in file.attrs:
                raise UserError(f"{source}: missing attribute 'metadata_json'; rebuild the file")
            metadata = json.loads(file.attrs["metadata_json"])
            arrays = {name: file[name][()] for name in ARRAY_FIELDS}
            parts = file["parts"][()] if "parts" in file else None
    except UserError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError) as error:
        raise UserError(f"{source}: cannot read HDF5 file, it is truncated or corrupt "
                        f"({type(error).__name__}: {error}); rebuild it") from None
    dataset = AgentDataset(**arrays, metadata=metadata, parts=parts)
    return validate_agent_dataset(dataset, source)


def save_dataset_dir(datasets: list[AgentDataset], directory: str | os.PathLike) -> list[Path]:
    """Write agent_0.h5 ... agent_{N-1}.h5 into `directory` (each file atomically)."""
    directory = Path(directory)
    return [save_agent_dataset(ds, directory / agent_file_name(int(ds.metadata["agent"])))
            for ds in datasets]


def load_dataset_dir(directory: str | os.PathLike) -> list[AgentDataset]:
    """All agents' files of one dataset, sorted by agent index, checked as a set."""
    return [dataset for _, dataset in load_dataset_dir_with_paths(directory)]


def load_dataset_dir_with_paths(directory: str | os.PathLike
                                ) -> list[tuple[Path, AgentDataset]]:
    """Like load_dataset_dir, with each dataset's file path."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"{directory}: not a directory")
    paths = sorted(directory.glob(f"*{FILE_SUFFIX}"))
    if not paths:
        raise UserError(f"{directory}: no *{FILE_SUFFIX} agent files (build them with "
                        "`mabcq data build`)")
    loaded = [(path, load_agent_dataset(path)) for path in paths]
    first_path, first = loaded[0]
    task, n_agents = first.metadata["task"], first.metadata["n_agents"]
    for path, dataset in loaded:
        if dataset.metadata["task"] != task:
            raise UserError(f"{path}: task {dataset.metadata['task']!r} differs from "
                            f"{first_path.name}'s {task!r}; one dataset per directory")
        if dataset.metadata["n_agents"] != n_agents:
            raise UserError(f"{path}: n_agents {dataset.metadata['n_agents']} differs from "
                            f"{first_path.name}'s {n_agents}")
    from mabcq.envs.observations import same_spec, spec_from_metadata

    same_spec([spec_from_metadata(dataset.metadata, str(path)) for path, dataset in loaded],
              [str(path) for path, _ in loaded])
    indices = sorted(dataset.metadata["agent"] for _, dataset in loaded)
    if indices != list(range(n_agents)):
        raise UserError(f"{directory}: agent files cover agents {indices}, expected "
                        f"0..{n_agents - 1} (one file per agent)")
    return sorted(loaded, key=lambda item: item[1].metadata["agent"])
