"""How each peer's code lays out actions and states, and what importing into a mabcq task does
with them (docs/data_formats.md, "Conventions of the code that wrote the data").

A source's agent k stores its action as a vector whose dimension d drives one actuator of the
single-agent env, `orders[k][d]`. Which actuator depends on the code that stepped the env:

- Gymnasium-Robotics' MaMuJoCo (`gymnasium_robotics/envs/multiagent_mujoco/mujoco_multi.py`,
  `map_local_actions_to_global_action`): local dim d -> `act_ids` of the d-th node of the
  agent's part (`obsk.get_parts_and_edges`); `Task.mamujoco_order` reads that table.
- multiagent_mujoco v1.1 (schroederdewitt/multiagent_mujoco, `mujoco_multi.py`, `step`): the
  same rule on its own parts table (`obsk.py`), which lists HalfCheetah's joints foot first.
- multiagent_mujoco v1.0 (the copies in ling-pan/OMAR and ZhengYinan-AIR/OMIGA, `step`):
  the agents' vectors concatenated in agent order, whatever the parts say; with Ant 4x2 the
  first agent's vector drives the fourth leg.
- a single-agent env (Minari): the joint action, already in actuator order.

`map_agents` turns those orders into mabcq's agents: mabcq agent j keeps the source agent
whose actuators are j's slice, its dimensions put in actuator order. Nothing is guessed: a
source agent that drives no whole slice is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mabcq.errors import UserError

# multiagent_mujoco's (v1.0 and v1.1) parts of mabcq's tasks: each agent's nodes' act_ids, in
# the order obsk.get_parts_and_edges lists them (the same in the OMAR, OMIGA and OG-MARL copies).
OLD_PARTS: dict[tuple[str, str], tuple[tuple[int, ...], ...]] = {
    ("HalfCheetah", "2x3"): ((2, 1, 0), (5, 4, 3)),
    ("Walker2d", "2x3"): ((2, 1, 0), (5, 4, 3)),
    ("Hopper", "3x1"): ((0,), (1,), (2,)),
    ("Ant", "4x2"): ((2, 3), (4, 5), (6, 7), (0, 1)),
    ("Swimmer", "2x1"): ((0,), (1,)),
}

# Dimensions of the single-agent state after the first 27 (Ant's qpos[2:], qvel): the contact
# forces, 14 bodies x 6 clipped in Ant-v2 (mujoco-py), 13 x 6 in Ant-v5 by default.
ANT_CONTACT_DIMS = {"v2": 84, "v5": 78}


@dataclass(frozen=True)
class Writer:
    """The code that wrote a source's actions and states."""

    name: str
    defined_in: str  # the peer's file that fixes the action layout


GYMNASIUM_ROBOTICS = Writer(
    "gymnasium-robotics-mamujoco",
    "Farama-Foundation/Gymnasium-Robotics gymnasium_robotics/envs/multiagent_mujoco/"
    "mujoco_multi.py (map_local_actions_to_global_action) and obsk.py")
MAMUJOCO_V11 = Writer(
    "multiagent_mujoco-1.1",
    "schroederdewitt/multiagent_mujoco multiagent_mujoco/mujoco_multi.py (step) and obsk.py")
MAMUJOCO_V10 = Writer(
    "multiagent_mujoco-1.0",
    "ling-pan/OMAR multiagent_mujoco/src/multiagent_mujoco/mujoco_multi.py and "
    "ZhengYinan-AIR/OMIGA envs/ma_mujoco/multiagent_mujoco/mujoco_multi.py (step)")
SINGLE_AGENT = Writer("single-agent", "the single-agent Gymnasium env's action space")


def source_orders(writer: Writer, task: Any, where: str) -> tuple[tuple[int, ...], ...]:
    """Per source agent, the actuator driven by each of its action dimensions."""
    if writer is SINGLE_AGENT:
        return (tuple(range(task.joint_action_dim)),)
    if writer is GYMNASIUM_ROBOTICS:
        return tuple(task.mamujoco_order)
    parts = OLD_PARTS.get((task.mamujoco_scenario, task.mamujoco_conf))
    if parts is None:
        raise UserError(f"{where}: no record of multiagent_mujoco's partition of "
                        f"{task.mamujoco_scenario} {task.mamujoco_conf}; import with a task "
                        "name of your own")
    if writer is MAMUJOCO_V11:
        return parts
    starts = np.cumsum([0] + [len(part) for part in parts])
    return tuple(tuple(range(start, start + len(part)))
                 for start, part in zip(starts, parts, strict=False))


def map_agents(orders: tuple[tuple[int, ...], ...], task: Any, where: str
               ) -> list[tuple[int, list[int]]]:
    """For each mabcq agent j: (source agent k, columns of k's action in j's slice order)."""
    mapping = []
    for agent, (start, stop) in enumerate(task.action_slices):
        wanted = list(range(start, stop))
        owners = [k for k, order in enumerate(orders) if sorted(order) == wanted]
        if len(owners) != 1:
            raise UserError(f"{where}: no source agent drives exactly actuators {wanted} "
                            f"({task.name} agent {agent}); source agents drive "
                            f"{[list(order) for order in orders]}")
        source = owners[0]
        mapping.append((source, [orders[source].index(joint) for joint in wanted]))
    return mapping


def task_state(array: np.ndarray, task: Any, where: str
               ) -> tuple[np.ndarray, str | None]:
    """The source's single-agent state as the task's state, and a note when something was
    dropped. Ant's state with contact forces loses them (they follow the task's 27 dims);
    any other size is refused."""
    dim = array.shape[-1]
    if dim == task.state_dim:
        return array, None
    extra = dim - task.state_dim
    if task.mamujoco_scenario == "Ant" and extra in ANT_CONTACT_DIMS.values():
        version = next(v for v, n in ANT_CONTACT_DIMS.items() if n == extra)
        note = (f"{where}: Ant-{version} state with contact forces ({dim} dims): dropped the "
                f"{extra} contact-force dims, kept the first {task.state_dim} ({task.name}'s "
                "state, include_cfrc_ext_in_observation=False)")
        return array[..., :task.state_dim], note
    ant = ", or with contact forces 105 (v5) or 111 (v2)" if task.mamujoco_scenario == "Ant" \
        else ""
    raise UserError(f"{where}: states have {dim} dims, {task.name}'s state has "
                    f"{task.state_dim} ({task.gym_id}{ant}); pass the --task the data were "
                    "recorded on, or a name of your own")
