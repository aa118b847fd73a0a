"""What each agent observes: the global state (the paper's setting) or a local observation.

A local observation is MaMuJoCo's (`agent_obsk` = K): the agent's own joints' positions and
velocities, the positions of the joints up to K hops away in MaMuJoCo's joint graph, and the
task's global items (the torso's position and velocity), in MaMuJoCo's order, with its clips.
It is built from MaMuJoCo's own description (`obsk.get_parts_and_edges`,
`obsk.get_joints_at_kdist` and the default categories of `MultiAgentMujocoEnv`), compiled once
into one gather over the simulator's [qpos, qvel] and a clip, so a step costs one small
numpy gather instead of MaMuJoCo's per-item Python loop.

Ant: MaMuJoCo's default Ant categories include contact forces (`cfrc_ext`); the tasks here use
Ant without contact forces (27-dim state), where MaMuJoCo's own local-observation builder fails
(gymnasium-robotics 1.4.2), so Ant's local observation uses MaMuJoCo's categories with
`cfrc_ext` left out: exactly what MaMuJoCo gives for Ant with
`local_categories=[["qpos", "qvel"]] + [["qpos"]] * K` (tests check it).
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mabcq.envs.tasks import quiet_mamujoco
from mabcq.errors import UserError

OBS_MODES = ("global", "local")
DEFAULT_OBSK = 1  # MaMuJoCo's default agent_obsk
# Categories read from MuJoCo bodies (contact forces, inertia): not part of any local
# observation here (Ant without contact forces is the only task whose default has one).
_BODY_CATEGORIES = ("cfrc_ext", "cinert", "cvel", "qfrc_actuator")
_PROBE_SCALE = 64.0  # marker values (i + 1) / 64 stay inside every clip range (|x| < 1)
_PROBE_LARGE = 1e6


@dataclass(frozen=True)
class ObservationSpec:
    """How agents observe: mode "global" (every agent the full state) or "local" (MaMuJoCo's
    local observation at depth k; None: not recorded, e.g. another tool's files)."""

    mode: str = "global"
    k: int | None = None

    @property
    def is_local(self) -> bool:
        return self.mode == "local"

    def metadata(self) -> dict[str, Any]:
        """What dataset and policy files record (nothing in global mode: older files and
        global files stay byte-identical)."""
        return {"obs": "local", "obsk": self.k} if self.is_local else {}


GLOBAL = ObservationSpec()


def observation_spec(mode: str = "global", k: int | None = None) -> ObservationSpec:
    """A checked ObservationSpec; local without k takes MaMuJoCo's default K = 1."""
    if mode not in OBS_MODES:
        raise UserError(f"unknown observation mode {mode!r}; choose one of "
                        f"{', '.join(OBS_MODES)}")
    if mode == "global":
        if k is not None:
            raise UserError("--obsk applies to --obs local only")
        return GLOBAL
    k = DEFAULT_OBSK if k is None else int(k)
    if k < 0:
        raise UserError(f"--obsk must be >= 0, got {k}")
    return ObservationSpec("local", k)


def spec_from_metadata(metadata: dict[str, Any], source: str) -> ObservationSpec:
    """The ObservationSpec a dataset or policy file records (no "obs" key: global; "state",
    which the data importers (mabcq.data.interop) write for a source's global state, too)."""
    mode = metadata.get("obs", "global")
    mode = "global" if mode == "state" else mode
    k = metadata.get("obsk")
    if mode not in OBS_MODES or (mode == "local" and k is not None and not (
            isinstance(k, int) and not isinstance(k, bool) and k >= 0)):
        raise UserError(f"{source}: metadata obs={mode!r}, obsk={k!r}: need obs 'global', or "
                        "'local' with an integer obsk >= 0 (or none recorded)")
    return GLOBAL if mode == "global" else ObservationSpec("local", k)


def same_spec(specs: Sequence[ObservationSpec], sources: Sequence[str]) -> ObservationSpec:
    """The one spec all files share; UserError naming the first file that differs."""
    first = specs[0]
    for spec, source in zip(specs, sources, strict=True):
        if spec != first:
            raise UserError(f"{source}: observations {_describe(spec)} differ from "
                            f"{sources[0]}'s {_describe(first)}; use files of one kind")
    return first


def _describe(spec: ObservationSpec) -> str:
    return f"local (obsk {spec.k})" if spec.is_local else "global"


@dataclass(frozen=True)
class LocalObserver:
    """Every agent's local observation as one gather over [qpos, qvel] plus a clip.

    sources [sum O_i] indices into concat(qpos, qvel); low/high the clip per item (+-inf where
    MaMuJoCo does not clip); dims (O_0, ..., O_{N-1}). state_sources: the same items as indices
    into the task's global state vector; state_exact: whether that projection equals the
    simulator's value for every state (False where Gymnasium clips the state and MaMuJoCo not).
    """

    task_name: str
    k: int
    dims: tuple[int, ...]
    sources: np.ndarray
    low: np.ndarray
    high: np.ndarray
    state_sources: np.ndarray
    state_exact: bool

    @property
    def offsets(self) -> np.ndarray:
        return np.cumsum([0, *self.dims])

    def observe64(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        """[sum O_i] float64, every agent's observation side by side (MaMuJoCo's values)."""
        raw = np.concatenate([qpos, qvel])[self.sources]
        return np.clip(raw, self.low, self.high)

    def observe_env(self, env: Any) -> np.ndarray:
        """[sum O_i] float32 from an unwrapped MuJoCo env's current simulator state."""
        return self.observe64(env.data.qpos, env.data.qvel).astype(np.float32)

    def from_states(self, states: np.ndarray) -> np.ndarray:
        """[..., S] global states -> [..., sum O_i]: the projection (exact iff state_exact)."""
        return np.clip(states[..., self.state_sources], self.low, self.high).astype(states.dtype)

    def split(self, flat: np.ndarray) -> list[np.ndarray]:
        """[..., sum O_i] -> one array [..., O_i] per agent."""
        offsets = self.offsets
        return [flat[..., offsets[i]:offsets[i + 1]] for i in range(len(self.dims))]


def local_categories(scenario: str, k: int) -> list[list[str]]:
    """MaMuJoCo's default categories per depth for `scenario`, contact forces left out."""
    with quiet_mamujoco():
        from gymnasium_robotics.envs.multiagent_mujoco.mujoco_multi import MultiAgentMujocoEnv

        defaults = MultiAgentMujocoEnv._generate_local_categories(
            types.SimpleNamespace(agent_obsk=k), scenario)
    return [[c for c in depth if c not in _BODY_CATEGORIES] for depth in defaults]


GLOBAL_CATEGORIES = ("qpos", "qvel")  # MaMuJoCo's default global_categories


def _probe(fn: Callable[[Any], np.ndarray], nq: int, nv: int) -> list[tuple[int, float, float]]:
    """Compile one MaMuJoCo `extra_obs` function of the simulator data into (source, low, high)
    items: `source` indexes concat(qpos, qvel). MaMuJoCo's extra items are copies of qpos/qvel
    entries, possibly clipped; marker values find the entries, huge values the clips."""
    def run(qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        try:
            return np.atleast_1d(np.asarray(fn(types.SimpleNamespace(qpos=qpos, qvel=qvel)),
                                            np.float64))
        except AttributeError as error:  # reads more than qpos/qvel (a body category)
            raise NotImplementedError(f"MaMuJoCo item reads {error}") from None

    markers = run(np.arange(1, nq + 1) / _PROBE_SCALE, -np.arange(1, nv + 1) / _PROBE_SCALE)
    highs = run(np.full(nq, _PROBE_LARGE), np.full(nv, _PROBE_LARGE))
    lows = run(np.full(nq, -_PROBE_LARGE), np.full(nv, -_PROBE_LARGE))
    items = []
    for marker, high, low in zip(markers, highs, lows, strict=True):
        index = int(round(abs(marker) * _PROBE_SCALE)) - 1
        source = index if marker > 0 else nq + index
        items.append((source, -np.inf if low <= -_PROBE_LARGE else float(low),
                      np.inf if high >= _PROBE_LARGE else float(high)))
    return items


def _node_items(node: Any, category: str, nq: int, nv: int) -> list[tuple[int, float, float]]:
    """The items MaMuJoCo's build_obs adds for one node and category, in its order."""
    if category in node.extra_obs:
        return _probe(node.extra_obs[category], nq, nv)
    if category == "qpos":
        return [(int(node.qpos_ids) % nq, -np.inf, np.inf)]
    if category == "qvel":
        return [(nq + int(node.qvel_ids) % nv, -np.inf, np.inf)]
    raise NotImplementedError(f"category {category!r} (read from bodies) is not supported")


def compile_items(scenario: str, conf: str, k: int, nq: int, nv: int
                  ) -> list[list[tuple[int, float, float]]]:
    """Per agent, MaMuJoCo's local observation as (source, low, high) items in build_obs order:
    the local items depth by depth (nodes sorted by label), then the global nodes' items."""
    with quiet_mamujoco():
        from gymnasium_robotics.envs.multiagent_mujoco.obsk import (
            get_joints_at_kdist,
            get_parts_and_edges,
        )

        parts, edges, global_nodes = get_parts_and_edges(scenario, conf)
    categories = local_categories(scenario, k)
    agents = []
    for part in parts:
        k_dict = get_joints_at_kdist(part, edges, k=k)
        items: list[tuple[int, float, float]] = []
        for depth in sorted(k_dict):
            for node in k_dict[depth]:
                for category in categories[depth]:
                    items.extend(_node_items(node, category, nq, nv))
        for category in GLOBAL_CATEGORIES:
            for node in global_nodes:
                items.extend(_node_items(node, category, nq, nv))
        agents.append(items)
    return agents


@functools.cache
def local_observer(task_name: str, k: int) -> LocalObserver:
    """The LocalObserver of a task at depth k (made once per process)."""
    from mabcq.envs.tasks import get_task, make_env

    task = get_task(task_name)
    env = make_env(task).unwrapped
    nq, nv = int(env.model.nq), int(env.model.nv)
    agents = compile_items(task.mamujoco_scenario, task.mamujoco_conf, k, nq, nv)
    flat = [item for items in agents for item in items]
    sources = np.array([source for source, _, _ in flat], np.int64)
    low = np.array([lo for _, lo, _ in flat], np.float64)
    high = np.array([hi for _, _, hi in flat], np.float64)
    state_index, state_low, state_high = _state_layout(env, nq, nv)
    if (state_index[sources] < 0).any():
        raise RuntimeError(f"{task_name}: a local item is not in the global state")
    exact = bool(np.all((state_low[sources] <= low) & (state_high[sources] >= high)))
    env.close()
    return LocalObserver(task_name, k, tuple(len(items) for items in agents), sources, low,
                         high, state_index[sources], exact)


def _state_layout(env: Any, nq: int, nv: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each [qpos, qvel] entry sits in the env's global state (-1: not in it), and the
    clip Gymnasium applies there: found by setting marker and huge states and reading _get_obs."""
    skipped = int(env.observation_structure["skipped_qpos"])
    index = np.concatenate([np.arange(nq) - skipped, np.arange(nv) + nq - skipped])
    index[:skipped] = -1
    saved = (env.data.qpos.copy(), env.data.qvel.copy())
    bounds = []
    for value in (_PROBE_LARGE, -_PROBE_LARGE):
        env.data.qpos[:], env.data.qvel[:] = value, value  # read back as is: no mj_forward
        state = np.asarray(env._get_obs(), np.float64)
        bounds.append(np.where(index >= 0, state[np.maximum(index, 0)], value))
    env.data.qpos[:], env.data.qvel[:] = saved
    high = np.where(bounds[0] >= _PROBE_LARGE, np.inf, bounds[0])
    low = np.where(bounds[1] <= -_PROBE_LARGE, -np.inf, bounds[1])
    return index, low, high


def observer_for(task_name: str, spec: ObservationSpec) -> LocalObserver | None:
    """The task's LocalObserver in local mode, None in global mode. Local observations with no
    recorded K (another tool's files) cannot be produced by the simulator: UserError."""
    if not spec.is_local:
        return None
    if spec.k is None:
        raise UserError(f"{task_name}: these local observations record no obsk, so the "
                        "simulator cannot produce them for evaluation; record MaMuJoCo's "
                        "agent_obsk as metadata obsk")
    return local_observer(task_name, int(spec.k))


def observation_dims(task: Any, spec: ObservationSpec) -> tuple[int, ...]:
    """Each agent's observation size under `spec`."""
    if not spec.is_local:
        return (task.state_dim,) * task.n_agents
    return observer_for(task.name, spec).dims

