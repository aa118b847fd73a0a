"""OMIGA's datasets: one HDF5 file of joint arrays, agents on the second axis.

Layout (ZhengYinan-AIR/OMIGA, datasets/offline_dataset.py, ReplayBuffer.load; the file is
DATA_DIR/SCENARIO-AGENT_CONF-DATA_TYPE.hdf5, e.g. Ant-v2-2x4-expert.hdf5, run_mujoco.py and
README): datasets s [T, N, D], o [T, N, D], a [T, N, A], r [T] or [T, 1], d [T, 1]. There is
no next-state array: read as OMIGA's own loader reads it, row t is a transition when d[t] is 0
and t < T - 1, with s' = row t + 1 and terminal = d[t + 1].

What s and o hold is fixed by OMIGA's env (envs/ma_mujoco/multiagent_mujoco/mujoco_multi.py,
get_state and get_obs, both the same): agent i's vector is [state, one-hot(i)] (D = S + N),
z-scored by that vector's own mean and std. The id columns give both back (the hot one is
(1 - mean) / std, the others -mean / std), so the state is restored exactly up to rounding
(`strip_agent_id`); files holding the bare state (D = S) or an unscaled one-hot are read too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from mabcq.data.interop import conventions
from mabcq.data.interop.common import AgentArrays, Identity, flat_column, rows
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


def omiga_identity(path: Path) -> Identity | None:
    """The environment OMIGA's file name records: SCENARIO-AGENT_CONF-DATA_TYPE.hdf5."""
    match = re.fullmatch(r"([A-Za-z0-9]+)-v\d+-(\d+x\d+)-.+", path.stem)
    return None if match is None else Identity(match.group(1), match.group(2),
                                               f"file name {path.name}")


def strip_agent_id(vectors: np.ndarray, where: str, state_dims: set[int] | None
                   ) -> tuple[np.ndarray, dict[str, Any] | None]:
    """[T, N, D] OMIGA vectors -> [T, N, D - N] states and what was undone, when the last N
    columns are the agents' one-hot ids, plain or z-scored with the vector (module doc).
    `state_dims`: the state sizes a known task accepts; a vector of one of them plus N that is
    neither layout is refused (its scaling cannot be undone), others are kept as they are."""
    steps, n_agents, dim = vectors.shape
    if n_agents < 2 or dim <= n_agents:
        return vectors, None
    ids = vectors[:, :, dim - n_agents:]
    eye = np.eye(n_agents, dtype=bool)
    if np.array_equal(ids, np.broadcast_to(eye, ids.shape).astype(ids.dtype)):
        return vectors[..., :dim - n_agents], {"agent_id": "one-hot, stripped"}
    hot = ids[:, eye]  # [T, N]: agent i's own id column
    cold = ids[:, ~eye].reshape(steps, n_agents, n_agents - 1)
    refusal = (f"{where}: {dim} dims = a state of {dim - n_agents} + {n_agents} id columns "
               "that are neither a one-hot id nor OMIGA's per-row z-scored one{}: the scaling "
               "cannot be undone; mabcq needs the raw state (write s unnormalized, or with the "
               "mean and std of every row)")
    if np.all(cold == cold[..., :1]) and np.all(hot > cold[..., 0]):
        std = 1.0 / (hot.astype(np.float64) - cold[..., 0])
        mean = -cold[..., 0] * std
        states = vectors[..., :dim - n_agents] * std[..., None] + mean[..., None]
        gap = float(np.max(np.abs(states - states[:, :1])))
        if not np.allclose(states, states[:, :1], rtol=1e-4, atol=1e-4):
            raise UserError(refusal.format(f" (undone as one, the agents' states differ by up "
                                           f"to {gap:.3g})"))
        return states, {"agent_id": "one-hot, stripped",
                        "normalization": "each row z-scored by its own mean and std "
                                         "(OMIGA mujoco_multi.py get_state); undone with the "
                                         "mean and std the id columns give",
                        "agents_max_gap": gap}
    if state_dims is not None and dim - n_agents in state_dims:
        raise UserError(refusal.format(""))
    return vectors, None


def read_omiga(path: Path, obs: str | None, task: Any = None
               ) -> tuple[list[AgentArrays], str, conventions.Writer, Identity | None]:
    """Every agent's arrays (agent i = index i of the agent axis), the observation kind
    (default state; the id is stripped and the scaling undone, strip_agent_id), OMIGA's writer
    (its multiagent_mujoco copy, v1.0) and the environment its file name records. `task`: a
    known task whose state sizes decide what a vector that is not OMIGA's layout may be."""
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
    undone = None
    if obs == "state":
        state_dims = None if task is None else {
            task.state_dim, *([task.state_dim + n for n in conventions.ANT_CONTACT_DIMS.values()]
                              if task.mamujoco_scenario == "Ant" else [])}
        observations, undone = strip_agent_id(observations, f"{source}: field 's'", state_dims)
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
            source={"agent_key": str(agent), "rows": int(steps),
                    **({"state_layout": undone} if undone else {})}))
    return agents, obs, conventions.MAMUJOCO_V10, omiga_identity(path)
