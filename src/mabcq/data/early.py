"""SAC's early experience re-created by rollouts of a shipped set ("early-rollout" source).

A shipped set has no replay, only SAC's early actor snapshots. Its behavior.json cuts SAC's
first `until_step` env steps into segments (mabcq.behavior.ship.early_segments): the uniform
warm-up [0, start_steps), then [t_k, t_{k+1}) for each early snapshot t_k. Re-creating the
first n transitions rolls out, in order, each segment's policy for that segment's number of
transitions (uniform actions, then the snapshot's *sampled* policy), until n are collected.

How this differs from the replay itself (docs/datasets.md, "Shipped behavior policies"): SAC
acted with a policy that changed every update, here each segment uses the snapshot at its start;
SAC's lockstep envs ran episodes across snapshot boundaries, here every segment starts fresh
episodes (its last one is cut, as a timeout) with its own seeds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mabcq.data.recipes import return_summary
from mabcq.envs.rollout import run_episodes
from mabcq.envs.tasks import Task

ARRAY_KEYS = ("observations", "actions", "rewards", "next_observations", "terminals",
              "timeouts")
LOCAL_KEYS = ("local_observations", "local_next_observations")


def early_seed(seed: int) -> int:
    """The early part's seed: the build's seed only, so every agent's file holds the same early
    experience (as with the replay), each keeping its own action slice."""
    return int(np.random.SeedSequence([seed, 41]).generate_state(1)[0])


def segment_seed(seed: int, segment: int) -> int:
    return int(np.random.SeedSequence([seed, segment, 43]).generate_state(1)[0])


def early_rollout(task: Task, sac, directory: Path, segments: list[dict[str, Any]], count: int,
                  seed: int, num_envs: int, progress: Callable[[int], None] | None = None,
                  observer: Any = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Joint-action transitions [count, ...] re-creating SAC's first `count` env steps.

    segments: the shipped set's early segments, in order, covering at least `count` steps;
    sac: the mabcq.behavior.sac.SAC of the snapshots in `directory`; observer: a LocalObserver
    to record every agent's local observations too (keys local_observations and
    local_next_observations, [count, sum O_i]).
    """
    from mabcq.behavior.policies import (
        joint_sampled_policy,
        joint_uniform_policy,
        load_actor,
        split_joint_policy,
        standard_normal_draw,
        uniform_draw,
    )

    keys = ARRAY_KEYS + (LOCAL_KEYS if observer is not None else ())
    columns: dict[str, list[np.ndarray]] = {key: [] for key in keys}
    done, details = 0, []
    for index, segment in enumerate(segments):
        take = min(int(segment["stop"]) - int(segment["start"]), count - done)
        if take <= 0:
            break
        if segment["policy"] == "uniform":
            joint, draw = joint_uniform_policy(), uniform_draw(task.joint_action_dim)
        else:
            joint = joint_sampled_policy(sac, load_actor(directory / segment["snapshot"]))
            draw = standard_normal_draw(task.joint_action_dim)
        rollout_seed = segment_seed(seed, index)
        result = run_episodes(task, split_joint_policy(task, joint), None, seed=rollout_seed,
                              transitions=take, num_envs=num_envs, progress=progress,
                              policy_noise=draw, observer=observer)
        for key in keys:
            columns[key].append(getattr(result, key))
        details.append({"env_steps": [int(segment["start"]), int(segment["start"]) + take],
                        "policy": segment["policy"],
                        "snapshot_step": segment.get("snapshot_step"), "seed": rollout_seed,
                        "episode_returns": return_summary(result.episode_returns)})
        done += take
    arrays = {key: np.concatenate(chunks) for key, chunks in columns.items()}
    info = {"source": "early-rollout", "env_steps": [0, done], "seed": seed,
            "segments": details}
    return arrays, info
