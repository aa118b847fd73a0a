"""SAC snapshots as decentralized agent policies.

The deterministic SAC policy tanh(mean(s)) is a function of the global state only, so agent i
can run it alone and keep its own slice: the joint policy splits exactly into N agent policies.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mabcq.behavior.sac import SAC
from mabcq.envs.rollout import AgentPolicy
from mabcq.envs.tasks import Task


@functools.lru_cache(maxsize=16)
def _jitted_mean_action(sac: SAC):
    import jax

    return jax.jit(sac.mean_action)


def joint_mean_policy(sac: SAC, actor_params) -> Callable[[np.ndarray], np.ndarray]:
    """[E, state_dim] -> [E, joint_action_dim] deterministic actions (jitted).

    Batches are padded to a power of two so the few batch sizes a rollout sees compile once.
    """
    apply = _jitted_mean_action(sac)

    def policy(states: np.ndarray) -> np.ndarray:
        rows = states.shape[0]
        padded = 1 << max(rows - 1, 0).bit_length()
        if padded != rows:
            states = np.concatenate([states, np.zeros((padded - rows,) + states.shape[1:],
                                                      states.dtype)])
        return np.asarray(apply(actor_params, states))[:rows]

    return policy


def split_joint_policy(task: Task, joint_policy: Callable[[np.ndarray], np.ndarray]
                       ) -> list[AgentPolicy]:
    """N agent policies, agent i returning its slice of joint_policy(states).

    The joint output for the batch last seen is cached (by identity of the states array, which
    run_episodes hands to every agent), so the network runs once per step, not N times.
    """
    cache: dict[str, object] = {"states": None, "actions": None}

    def joint(states: np.ndarray) -> np.ndarray:
        if cache["states"] is not states:
            cache["actions"] = joint_policy(states)
            cache["states"] = states
        return cache["actions"]  # type: ignore[return-value]

    def agent_policy(start: int, stop: int) -> AgentPolicy:
        return lambda states: joint(states)[:, start:stop]

    return [agent_policy(start, stop) for start, stop in task.action_slices]


def save_actor(path: str | os.PathLike, actor_params) -> None:
    """Atomically write actor parameters (flax msgpack)."""
    from flax import serialization

    from mabcq import atomic

    atomic.write_bytes(Path(path), serialization.msgpack_serialize(_to_numpy(actor_params)))


def load_actor(path: str | os.PathLike):
    from flax import serialization

    return serialization.msgpack_restore(Path(path).read_bytes())


def _to_numpy(tree):
    import jax

    return jax.tree_util.tree_map(np.asarray, tree)
