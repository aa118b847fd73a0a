"""What one agent's offline dataset holds in memory: B_i = {(s, a_i, r, s', done)}.

This is the contract between the dataset builders (data/), the file format (data/io.py) and the
learners. An agent sees the full global state, or (metadata obs "local") its own local
observation, whose size may differ between agents; `actions` hold only this agent's slice of
the joint action, never the others'.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Array fields of an agent's dataset, in file order, with their dtype and rank.
ARRAY_FIELDS: dict[str, tuple[type, int]] = {
    "observations": (np.float32, 2),  # [T, state_dim] global state s (or o_i, local)
    "actions": (np.float32, 2),  # [T, action_dim_i] this agent's action a_i only
    "rewards": (np.float32, 1),  # [T] shared reward r
    "next_observations": (np.float32, 2),  # [T, state_dim] s'
    "terminals": (np.bool_, 1),  # [T] true termination: no bootstrap from s'
    "timeouts": (np.bool_, 1),  # [T] episode cut by the horizon: s' still bootstraps
}


@dataclass(frozen=True)
class AgentDataset:
    """One agent's transitions plus the metadata that says where they came from.

    `parts` (optional, [T] int8) labels the recipe part each transition belongs to; the names of
    the parts are `metadata["parts"]` in index order.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)
    parts: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.observations.shape[0])

    @property
    def state_dim(self) -> int:
        return int(self.observations.shape[1])

    @property
    def action_dim(self) -> int:
        return int(self.actions.shape[1])

    def content_sha256(self) -> str:
        """sha256 of what training reads (the six arrays' dtypes, shapes and bytes, in field
        order), whatever file format carried them: two machines trained on the same data when
        these agree (a grid cell records them, provenance["data_sha256"])."""
        digest = hashlib.sha256()
        for name in ARRAY_FIELDS:
            array = np.ascontiguousarray(getattr(self, name))
            digest.update(f"{name} {array.dtype.str} {array.shape}\n".encode())
            digest.update(array.reshape(-1).view(np.uint8))  # no copy; empty arrays too
        return digest.hexdigest()
