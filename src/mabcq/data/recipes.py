"""Dataset recipes: which behavior each part of agent i's dataset comes from (paper section 4.2).

paper          20% SAC's early-training experience; 35% agent i intermediate, others expert;
               35% agent i expert, others intermediate; 10% all expert (noise on the last three)
low            early + all intermediate (the appendix's low-quality Swimmer data)
medium-replay  SAC's replay up to the intermediate ("medium") policy (D4RL style, for CQL)

Every agent's file is built from its own seeded rollouts; the early/replay parts are the same
SAC experience for every agent, each file keeping only its agent's action slice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mabcq.errors import UserError


@dataclass(frozen=True)
class Part:
    """One part of a recipe. source: "replay" (SAC experience) or "rollout" (snapshots)."""

    name: str
    fraction: float
    source: str
    self_level: str = ""  # agent i's policy level: "intermediate" | "expert"
    others_level: str = ""  # the other agents' level
    noisy: bool = False  # Gaussian noise on every agent's action
    replay_until: str = ""  # replay parts: "" (prefix of size n) or a level (up to its step)


RECIPES: dict[str, tuple[Part, ...]] = {
    "paper": (
        Part("early", 0.20, "replay"),
        Part("self-intermediate/others-expert", 0.35, "rollout", "intermediate", "expert", True),
        Part("self-expert/others-intermediate", 0.35, "rollout", "expert", "intermediate", True),
        Part("all-expert", 0.10, "rollout", "expert", "expert", True),
    ),
    "low": (
        Part("early", 0.20, "replay"),
        Part("all-intermediate", 0.80, "rollout", "intermediate", "intermediate", True),
    ),
    "medium-replay": (
        Part("replay-to-intermediate", 1.0, "replay", replay_until="intermediate"),
    ),
}


@dataclass(frozen=True)
class DataPreset:
    """Sizes per agent and the behavior preset trained when no --behavior is given."""

    size: int
    behavior_preset: str
    noise: float = 0.1
    num_envs: int = 16


DATA_PRESETS: dict[str, DataPreset] = {
    "smoke": DataPreset(size=500, behavior_preset="smoke", num_envs=4),
    "quick": DataPreset(size=50_000, behavior_preset="quick"),
    "paper": DataPreset(size=1_000_000, behavior_preset="paper"),
}


def get_recipe(name: str) -> tuple[Part, ...]:
    if name not in RECIPES:
        raise UserError(f"unknown recipe {name!r}; choose from {', '.join(RECIPES)}")
    return RECIPES[name]


def part_sizes(parts: tuple[Part, ...], size: int) -> list[int]:
    """Integer sizes summing to `size`, proportional to the fractions (largest remainder)."""
    raw = np.array([part.fraction for part in parts]) * size
    sizes = np.floor(raw).astype(int)
    order = np.argsort(-(raw - sizes), kind="stable")
    for index in order[: size - sizes.sum()]:
        sizes[index] += 1
    return [int(s) for s in sizes]


def episode_ordered_prefix(replay: dict[str, np.ndarray], count: int) -> dict[str, np.ndarray]:
    """The first `count` transitions of SAC's lockstep replay, regrouped env by env.

    The replay interleaves E envs step by step; grouping by env (stable) makes each episode
    contiguous. Each env's last transition in the prefix is cut mid-episode unless terminal:
    it is flagged as a timeout (its next state still bootstraps).
    """
    order = np.argsort(replay["env_index"][:count], kind="stable")
    prefix = {name: array[:count][order] for name, array in replay.items()}
    env_index = prefix["env_index"]
    last_of_env = np.r_[env_index[1:] != env_index[:-1], True]
    prefix["timeouts"] = prefix["timeouts"] | (last_of_env & ~prefix["terminals"])
    return prefix


def episode_boundaries(terminals: np.ndarray, timeouts: np.ndarray) -> np.ndarray:
    """[episodes + 1] start offsets of the episodes in a flat transition array."""
    ends = np.flatnonzero(terminals | timeouts) + 1
    if len(ends) == 0 or ends[-1] != len(terminals):
        ends = np.r_[ends, len(terminals)]
    return np.r_[0, ends]


def episode_returns(rewards: np.ndarray, terminals: np.ndarray, timeouts: np.ndarray
                    ) -> np.ndarray:
    """[episodes] undiscounted return of each (possibly cut) episode."""
    bounds = episode_boundaries(terminals, timeouts)
    sums = np.add.reduceat(rewards.astype(np.float64), bounds[:-1]) if len(rewards) else []
    return np.asarray(sums, dtype=np.float64)


def return_summary(returns: np.ndarray) -> dict[str, Any]:
    if len(returns) == 0:
        return {"episodes": 0}
    q = np.percentile(returns, [0, 25, 50, 75, 100])
    return {"episodes": int(len(returns)), "mean": float(returns.mean()),
            "std": float(returns.std()), "min": float(q[0]), "p25": float(q[1]),
            "median": float(q[2]), "p75": float(q[3]), "max": float(q[4])}
