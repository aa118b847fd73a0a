"""The five multi-agent MuJoCo tasks: the single-agent Gymnasium env plus MaMuJoCo's partition.

Every agent sees the single-agent env's full state vector and the shared reward (paper section
4.2; mabcq.envs.observations gives MaMuJoCo's local observations instead); only the joint action
is split among agents. The partition (which actuators each agent
drives) is read from MaMuJoCo itself (`gymnasium_robotics...obsk.get_parts_and_edges`) instead of
building a MaMuJoCo `parallel_env`: that keeps Ant's 27-dim state (no contact forces), whose
local-observation builder fails in MaMuJoCo 1.4.2, and steps the raw env at its full rate.

Within an agent's slice the dimensions are in the single-agent env's actuator order. MaMuJoCo
lists some agents' actuators in another order (Walker2d: foot, leg, thigh); `mamujoco_order`
records it, and the importers use it to put actions recorded through MaMuJoCo (OG-MARL's
gymnasium_mamujoco vaults) back in actuator order (mabcq.data.interop.conventions).
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mabcq.errors import UserError

if TYPE_CHECKING:
    import gymnasium


@dataclass(frozen=True)
class Task:
    """A decentralized task: N agents, each owning one contiguous slice of the joint action."""

    name: str
    state_dim: int
    n_agents: int
    action_slices: tuple[tuple[int, int], ...]  # agent i's [start, stop) in the joint action
    joint_action_dim: int
    action_low: float
    action_high: float
    horizon: int = 1000
    gym_id: str = ""
    env_kwargs: tuple[tuple[str, Any], ...] = ()
    mamujoco_scenario: str = ""
    mamujoco_conf: str = ""
    # MaMuJoCo's local action order: agent i's local dim k is joint dim mamujoco_order[i][k].
    mamujoco_order: tuple[tuple[int, ...], ...] = field(default=(), compare=False)

    def agent_action_dim(self, agent: int) -> int:
        start, stop = self.action_slices[agent]
        return stop - start

    def split_action(self, joint: np.ndarray) -> list[np.ndarray]:
        """[..., joint_action_dim] -> n_agents arrays [..., A_i] (views, no copy)."""
        if joint.shape[-1] != self.joint_action_dim:
            raise ValueError(
                f"{self.name}: joint action has {joint.shape[-1]} dims, "
                f"expected {self.joint_action_dim}"
            )
        return [joint[..., start:stop] for start, stop in self.action_slices]

    def join_actions(self, parts: Sequence[np.ndarray]) -> np.ndarray:
        """n_agents arrays [..., A_i] -> [..., joint_action_dim]; inverse of split_action."""
        if len(parts) != self.n_agents:
            raise ValueError(
                f"{self.name}: got {len(parts)} agent actions, expected {self.n_agents}"
            )
        first = np.asarray(parts[0])
        joint = np.empty(first.shape[:-1] + (self.joint_action_dim,), dtype=first.dtype)
        for agent, (start, stop) in enumerate(self.action_slices):
            part = np.asarray(parts[agent])
            if part.shape[-1] != stop - start:
                raise ValueError(
                    f"{self.name}: agent {agent} action has {part.shape[-1]} dims, "
                    f"expected {stop - start}"
                )
            joint[..., start:stop] = part
        return joint


@contextlib.contextmanager
def quiet_mamujoco() -> Iterator[None]:
    """Importing gymnasium_robotics prints a notice about its Adroit envs: not ours."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def mamujoco_partition(scenario: str, conf: str) -> tuple[tuple[int, ...], ...]:
    """MaMuJoCo's actuator indices per agent, in MaMuJoCo's local order."""
    with quiet_mamujoco():
        from gymnasium_robotics.envs.multiagent_mujoco.obsk import get_parts_and_edges

        parts, _, _ = get_parts_and_edges(scenario, conf)
    return tuple(tuple(int(node.act_ids) for node in part) for part in parts)


def _slices_from_partition(
    name: str, partition: tuple[tuple[int, ...], ...]
) -> tuple[tuple[int, int], ...]:
    slices = []
    for agent, indices in enumerate(partition):
        start, stop = min(indices), max(indices) + 1
        if sorted(indices) != list(range(start, stop)):
            raise RuntimeError(f"{name}: MaMuJoCo gives agent {agent} non-contiguous {indices}")
        slices.append((start, stop))
    return tuple(slices)


def _make_task(
    name: str, gym_id: str, state_dim: int, scenario: str, conf: str, **env_kwargs: Any
) -> Task:
    partition = mamujoco_partition(scenario, conf)
    slices = _slices_from_partition(name, partition)
    return Task(
        name=name,
        state_dim=state_dim,
        n_agents=len(partition),
        action_slices=slices,
        joint_action_dim=sum(stop - start for start, stop in slices),
        action_low=-1.0,
        action_high=1.0,
        horizon=1000,
        gym_id=gym_id,
        env_kwargs=tuple(sorted(env_kwargs.items())),
        mamujoco_scenario=scenario,
        mamujoco_conf=conf,
        mamujoco_order=partition,
    )


TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        _make_task("halfcheetah-2x3", "HalfCheetah-v5", 17, "HalfCheetah", "2x3"),
        _make_task("walker2d-2x3", "Walker2d-v5", 17, "Walker2d", "2x3"),
        _make_task("hopper-3x1", "Hopper-v5", 11, "Hopper", "3x1"),
        _make_task(
            "ant-4x2", "Ant-v5", 27, "Ant", "4x2", include_cfrc_ext_in_observation=False
        ),
        _make_task("swimmer-2x1", "Swimmer-v5", 8, "Swimmer", "2x1"),
    )
}


def get_task(name: str) -> Task:
    """The task called `name`; a UserError listing the known names otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        raise UserError(
            f"unknown task {name!r}; known tasks: {', '.join(TASKS)}"
        ) from None


# MuJoCo ends a warning with the simulation time; without it, Python's warning filter shows
# each distinct warning once per place instead of once per step.
_MUJOCO_TIME = re.compile(r"\s*Time = \S+\s*$")


def _mujoco_warning(message: str) -> None:
    if "settotalmass" not in message:
        text = _MUJOCO_TIME.sub("", message.strip())
        warnings.warn(f"MuJoCo: {text}", RuntimeWarning, stacklevel=2)


def route_mujoco_warnings() -> None:
    """Send MuJoCo's warnings to Python's `warnings` (stderr) for the rest of this process.

    MuJoCo's default handler appends every warning (a NaN action, an unstable simulation) to
    MUJOCO_LOG.TXT in the current directory, the user's, not the run's. With a handler of our
    own installed MuJoCo writes no log file at all. Every process that makes envs calls this
    (make_env does), spawned env and dataset workers included.
    """
    import mujoco

    if mujoco.get_mju_user_warning() is not _mujoco_warning:
        mujoco.set_mju_user_warning(_mujoco_warning)


@contextlib.contextmanager
def quiet_mujoco_warnings():
    """While building envs: HalfCheetah's XML uses a deprecated attribute whose MuJoCo warning
    is dropped (route_mujoco_warnings), and Gymnasium's deprecation chatter is hidden."""
    route_mujoco_warnings()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def make_env(task: Task, seed: int | None = None) -> gymnasium.Env:
    """The single-agent Gymnasium env of `task` (global-state observations, TimeLimit horizon).

    `seed` seeds the first reset's RNG (call `env.reset(seed=seed)` yourself to start).
    """
    import gymnasium

    with quiet_mujoco_warnings():
        env = gymnasium.make(task.gym_id, max_episode_steps=task.horizon, **dict(task.env_kwargs))
    if env.observation_space.shape != (task.state_dim,):
        raise RuntimeError(
            f"{task.name}: env state has shape {env.observation_space.shape}, "
            f"expected ({task.state_dim},)"
        )
    if seed is not None:
        env.action_space.seed(seed)
        env.reset(seed=seed)
    return env
