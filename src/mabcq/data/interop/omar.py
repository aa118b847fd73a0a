"""OMAR's datasets: one set of .npy files per agent in one directory.

Layout (ling-pan/OMAR, utils/buffer.py, ReplayBuffer.load_batch_data; the directory is
datasets/ENV/DATA_TYPE/seed_S_data, main.py): for agent i, obs_{i}.npy [T, obs_dim_i],
acs_{i}.npy [T, A_i], rews_{i}.npy [T], next_obs_{i}.npy [T, obs_dim_i], dones_{i}.npy [T];
multi-agent MuJoCo adds states_{i}.npy and next_states_{i}.npy [T, state_dim].
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np

from mabcq.data.interop import conventions
from mabcq.data.interop.common import AgentArrays, Identity, flat_column, rows
from mabcq.errors import UserError

FIELDS = ("obs", "acs", "rews", "next_obs", "dones")
STATE_FIELDS = ("states", "next_states")


def _load(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise UserError(f"{path}: cannot read as .npy ({error})") from None


def agent_count(directory: Path) -> int:
    """Agents 0..N-1 with an obs_{i}.npy file (OMAR numbers them from 0, without gaps)."""
    count = 0
    while (directory / f"obs_{count}.npy").is_file():
        count += 1
    if count == 0:
        raise UserError(f"{directory}: no obs_0.npy: not an OMAR dataset directory (expected "
                        "obs_{i}.npy, acs_{i}.npy, rews_{i}.npy, next_obs_{i}.npy, "
                        "dones_{i}.npy per agent)")
    return count


def omar_identity(directory: Path) -> Identity | None:
    """OMAR keeps a dataset at datasets/ENV_ID/DATA_TYPE/seed_S_data (main.py): ENV_ID names
    the environment (its agent conf is fixed in main.py, so it is not recorded)."""
    match = re.fullmatch(r"([A-Za-z0-9]+)-v\d+", directory.resolve().parent.parent.name)
    if match is None:
        return None
    return Identity(match.group(1), None, f"directory {directory.resolve().parent.parent.name}")


def read_omar(directory: Path, obs: str | None
              ) -> tuple[list[AgentArrays], str, conventions.Writer, Identity | None]:
    """Every agent's arrays, the observation kind used ("state" needs states_{i}.npy;
    default: state when every agent has it, else local), OMAR's writer (its multiagent_mujoco
    copy, v1.0) and the environment its path names."""
    n_agents = agent_count(directory)
    has_states = all((directory / f"states_{i}.npy").is_file() for i in range(n_agents))
    if obs is None:
        obs = "state" if has_states else "local"
    if obs == "state" and not has_states:
        raise UserError(f"{directory}: --obs state needs states_{{i}}.npy and "
                        "next_states_{i}.npy (OMAR's multi-agent MuJoCo data); use --obs local")
    agents = []
    for agent in range(n_agents):
        names = FIELDS + (STATE_FIELDS if obs == "state" else ())
        missing = [f"{name}_{agent}.npy" for name in names
                   if not (directory / f"{name}_{agent}.npy").is_file()]
        if missing:
            raise UserError(f"{directory}: agent {agent} lacks {', '.join(missing)}")
        arrays = {name: rows(_load(directory / f"{name}_{agent}.npy"), name,
                             str(directory / f"{name}_{agent}.npy")) for name in names}
        lengths = {name: len(array) for name, array in arrays.items()}
        if len(set(lengths.values())) != 1:
            first = f"obs_{agent}.npy"
            odd = next(name for name, n in lengths.items() if n != lengths["obs"])
            raise UserError(f"{directory / f'{odd}_{agent}.npy'}: field {odd!r} has "
                            f"{lengths[odd]} rows, {first} has {lengths['obs']}")
        prefix = "states" if obs == "state" else "obs"
        next_prefix = "next_states" if obs == "state" else "next_obs"
        agents.append(AgentArrays(
            observations=arrays[prefix], actions=arrays["acs"],
            rewards=flat_column(arrays["rews"], "rews", str(directory / f"rews_{agent}.npy")),
            next_observations=arrays[next_prefix],
            terminals=flat_column(arrays["dones"], "dones",
                                  str(directory / f"dones_{agent}.npy")),
            source={"agent_key": str(agent),
                    "files": [f"{name}_{agent}.npy" for name in names]}))
    return agents, obs, conventions.MAMUJOCO_V10, omar_identity(directory)
