"""SAC snapshots as decentralized agent policies.

The deterministic SAC policy tanh(mean(s)) is a function of the global state only, so agent i
can run it alone and keep its own slice: the joint policy splits exactly into N agent policies.
The stochastic policy (and the uniform warm-up), which re-create SAC's own early experience, take
each episode's random draws as a second argument (run_episodes' `policy_noise`).
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


@functools.lru_cache(maxsize=16)
def _jitted_action_from_noise(sac: SAC):
    import jax

    return jax.jit(sac.action_from_noise)


MIN_ROWS = 16  # batches are padded to at least this many rows (see _padded)


def _padded(apply: Callable, actor_params, *rows: np.ndarray) -> np.ndarray:
    """apply(actor_params, *rows)[:E] with the E rows padded to a power of two, at least
    MIN_ROWS: the few batch sizes a rollout sees compile once, and with up to MIN_ROWS lockstep
    envs every call has one shape, so a state's action (its float rounding included) does not
    depend on how many envs run beside it."""
    count = rows[0].shape[0]
    padded = max(MIN_ROWS, 1 << max(count - 1, 0).bit_length())
    if padded != count:
        rows = tuple(np.concatenate([r, np.zeros((padded - count,) + r.shape[1:], r.dtype)])
                     for r in rows)
    return np.asarray(apply(actor_params, *rows))[:count]


def joint_mean_policy(sac: SAC, actor_params) -> Callable[[np.ndarray], np.ndarray]:
    """[E, state_dim] -> [E, joint_action_dim] deterministic actions tanh(mean) (jitted)."""
    apply = _jitted_mean_action(sac)
    return lambda states: _padded(apply, actor_params, states)


def joint_sampled_policy(sac: SAC, actor_params
                         ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """(states [E, state_dim], normals [E, joint_action_dim]) -> sampled actions
    tanh(mean + std * normals): SAC's stochastic policy, the one it collected experience with.
    Draw the normals with `standard_normal_draw` in run_episodes(policy_noise=...)."""
    apply = _jitted_action_from_noise(sac)
    return lambda states, normals: _padded(apply, actor_params, states,
                                           normals.astype(np.float32))


def joint_uniform_policy() -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """(states, uniforms [E, joint_action_dim]) -> the uniforms: SAC's random warm-up actions.
    Draw the uniforms with `uniform_draw` in run_episodes(policy_noise=...)."""
    return lambda states, uniforms: uniforms


def standard_normal_draw(dim: int) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: rng.standard_normal(dim)


def uniform_draw(dim: int) -> Callable[[np.random.Generator], np.ndarray]:
    """U(-1, 1) per dimension, as SAC's warm-up draws (float64, then stored as float32)."""
    return lambda rng: rng.uniform(-1.0, 1.0, dim)


def split_joint_policy(task: Task, joint_policy: Callable[..., np.ndarray]
                       ) -> list[AgentPolicy]:
    """N agent policies, agent i returning its slice of joint_policy(states, *noise).

    The joint output for the batch last seen is cached (by identity of the states array, which
    run_episodes hands to every agent with the same noise), so the network runs once per step,
    not N times.
    """
    cache: dict[str, object] = {"states": None, "actions": None}

    def joint(states: np.ndarray, *noise: np.ndarray) -> np.ndarray:
        if cache["states"] is not states:
            cache["actions"] = joint_policy(states, *noise)
            cache["states"] = states
        return cache["actions"]  # type: ignore[return-value]

    def agent_policy(start: int, stop: int) -> AgentPolicy:
        return lambda states, *noise: joint(states, *noise)[:, start:stop]

    return [agent_policy(start, stop) for start, stop in task.action_slices]


def save_actor(path: str | os.PathLike, actor_params) -> None:
    """Atomically write actor parameters (flax msgpack)."""
    from flax import serialization

    from mabcq.util import atomic

    atomic.write_bytes(Path(path), serialization.msgpack_serialize(_to_numpy(actor_params)))


def load_actor(path: str | os.PathLike):
    from flax import serialization

    return serialization.msgpack_restore(Path(path).read_bytes())


def _to_numpy(tree):
    import jax

    return jax.tree_util.tree_map(np.asarray, tree)
