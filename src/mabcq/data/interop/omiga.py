"""OMIGA's datasets: one HDF5 file of joint arrays, agents on the second axis.

Layout (ZhengYinan-AIR/OMIGA, datasets/offline_dataset.py, ReplayBuffer.load; the file is
DATA_DIR/SCENARIO-AGENT_CONF-DATA_TYPE.hdf5, e.g. Ant-v2-2x4-expert.hdf5, README): datasets
s [T, N, state_dim] (the global state, repeated per agent), o [T, N, obs_dim] (local
observations), a [T, N, A], r [T] or [T, 1], d [T, 1]. There is no next-state array: read as
OMIGA's own loader reads it, row t is a transition when d[t] is 0 and t < T - 1, with
s' = row t + 1 and terminal = d[t + 1].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mabcq.data.interop.common import AgentArrays, flat_column, rows
from mabcq.errors import UserError

KEYS = ("s", "o", "a", "r", "d")


def _read_file(path: Path) -> dict[str, np.ndarray]:
    import h5py

    try:
        with h5py.File(path, "r") as file:
            missing = [key for key in KEYS if key not in file]
            if missing:
                raise UserError(f"{path}: missing dataset(s) {', '.join(missing)} (OMIGA files "
                                "hold s, o, a, r, d)")
            return {key: file[key][()] for key in KEYS}
    except UserError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError) as error:
        raise UserError(f"{path}: cannot read as HDF5 ({type(error).__name__}: {error})") from None


def read_omiga(path: Path, obs: str | None) -> tuple[list[AgentArrays], str]:
    """Every agent's arrays (agent i = index i of the agent axis) and the observation kind
    (default state)."""
    obs = obs or "state"
    source = str(path)
    data = _read_file(path)
    joint = {key: rows(data[key], key, source, rank=3) for key in ("s", "o", "a")}
    steps, n_agents = joint["s"].shape[:2]
    for key, array in joint.items():
        if array.shape[:2] != (steps, n_agents):
            raise UserError(f"{source}: field {key!r} has shape {array.shape}, 's' has "
                            f"{joint['s'].shape}: need [T, agents, dim] alike")
    rewards = rows(data["r"], "r", source)
    done = rows(data["d"], "d", source)
    if len(rewards) != steps or len(done) != steps:
        odd = "r" if len(rewards) != steps else "d"
        raise UserError(f"{source}: field {odd!r} has {len(data[odd])} rows, 's' has {steps}")
    if steps < 2:
        raise UserError(f"{source}: {steps} rows: no transition (s' is the next row)")
    done = (done[:, 0] if done.ndim == 2 else flat_column(done, "d", source)).astype(bool)
    rows_kept = np.flatnonzero(~done & (np.arange(steps) < steps - 1))
    if len(rows_kept) == 0:
        raise UserError(f"{source}: every row is done: no transition")
    observations = joint["s" if obs == "state" else "o"]
    agents = []
    for agent in range(n_agents):
        if rewards.ndim == 2 and rewards.shape[1] == n_agents and n_agents > 1:
            agent_rewards = rewards[:, agent]
        else:
            agent_rewards = flat_column(rewards, "r", source)
        agents.append(AgentArrays(
            observations=observations[rows_kept, agent],
            actions=joint["a"][rows_kept, agent],
            rewards=agent_rewards[rows_kept],
            next_observations=observations[rows_kept + 1, agent],
            terminals=done[rows_kept + 1],
            source={"agent_key": str(agent), "rows": int(steps)}))
    return agents, obs
