"""OG-MARL's datasets: Flashbax vaults (VAULTS/SOURCE/ENV/SCENARIO.vlt/UID, e.g.
vaults/og_marl/mamujoco/2halfcheetah.vlt/Good), read with the `flashbax` package.

Layout. A vault (instadeepai/flashbax, flashbax/vault/vault.py, Vault) stores each leaf of a
buffer's experience pytree as [B, T, ...] (B parallel streams, T time steps) in a zarr array
on a tensorstore OCDBT key-value store, with the tree's shapes and dtypes in metadata.json.
OG-MARL's experience (instadeepai/og-marl, og_marl/replay_buffers.py,
FlashbaxReplayBuffer.add, which stacks the agents on axis 2; og_marl/wrapped_environments/
wrappers.py, ExperienceRecorder, which keeps one entry per agent key instead):
  observations [B, T, N, O]   or {agent: [B, T, O]}
  actions      [B, T, N, A]   or {agent: [B, T, A]}
  rewards, terminals, truncations [B, T, N] or {agent: [B, T]}
  infos        {"state": [B, T, S], "legals": ...}
Row t holds o_t, a_t and what the step returned (r_t, terminal, truncation); the next row holds
o_{t+1}, or the next episode's first observation when row t ended one. So s' = row t + 1;
a terminal row's s' is not recorded (it gets s' = s, never bootstrapped), and a truncated row
(and the last row of a stream) has no s' and is dropped, the row before it then ends its
episode as a timeout.

Which code wrote it, and on which environment, is read from the path as OG-MARL's
download_vault.py lays it out: SOURCE/ENV/SCENARIO.vlt (`WRITERS`, `SCENARIOS`; conventions.py
says what each writer's actions mean).
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from mabcq.data.interop import conventions
from mabcq.data.interop.common import AgentArrays, Identity, natural_key, rows
from mabcq.errors import UserError

PER_AGENT_FIELDS = ("observations", "actions", "rewards", "terminals", "truncations")

# (SOURCE, ENV) of a vault's path -> the code that stepped the env: og_marl/gymnasium_mamujoco
# og_marl/wrapped_environments/gymnasium_mamujoco.py (Gymnasium-Robotics' mamujoco_v1);
# og_marl/mamujoco: wrapped_environments/mamujoco.py (multiagent_mujoco installed from
# schroederdewitt's repository, v1.1: install_environments/requirements/mamujoco210.txt);
# omar and omiga: converted from those works' data, written by their v1.0 copies.
WRITERS = {
    ("og_marl", "gymnasium_mamujoco"): conventions.GYMNASIUM_ROBOTICS,
    ("og_marl", "mamujoco"): conventions.MAMUJOCO_V11,
    ("omar", "mamujoco"): conventions.MAMUJOCO_V10,
    ("omiga", "mamujoco"): conventions.MAMUJOCO_V10,
}
# SCENARIO of the path -> (MaMuJoCo scenario, conf), as each writer's wrapper maps it
# (gymnasium_mamujoco.py get_env_config; mamujoco.py get_mamujoco_args; mamujoco_omar.py;
# mamujoco_omiga.py get_mamujoco_args).
SCENARIOS = {
    ("og_marl", "gymnasium_mamujoco"): {
        "2halfcheetah": ("HalfCheetah", "2x3"), "6halfcheetah": ("HalfCheetah", "6x1"),
        "2ant": ("Ant", "2x4"), "4ant": ("Ant", "4x2"), "3hopper": ("Hopper", "3x1"),
        "2walker": ("Walker2d", "2x3"), "2reacher": ("Reacher", "2x1"),
        "2humanoid": ("Humanoid", "9|8")},
    ("og_marl", "mamujoco"): {
        "4ant": ("Ant", "4x2"), "2ant": ("Ant", "2x4"), "2halfcheetah": ("HalfCheetah", "2x3")},
    ("omar", "mamujoco"): {"2halfcheetah": ("HalfCheetah", "2x3")},
    ("omiga", "mamujoco"): {
        "3hopper": ("Hopper", "3x1"), "2ant": ("Ant", "2x4"),
        "6halfcheetah": ("HalfCheetah", "6x1")},
}


def vault_origin(location: Path, task_known: bool
                 ) -> tuple[conventions.Writer | None, Identity | None]:
    """The writer and environment a vault's path records. For a task mabcq knows both are
    required (the actions cannot be placed otherwise); for a name of one's own, optional."""
    scenario = location.parent.name.removesuffix(".vlt")
    key = (location.parent.parent.parent.name, location.parent.parent.name)
    writer = WRITERS.get(key)
    if writer is None:
        if task_known:
            raise UserError(
                f"{location}: cannot tell which OG-MARL environment wrote this vault (its path "
                f"is not VAULTS/SOURCE/ENV/SCENARIO.vlt/UID with SOURCE/ENV one of "
                f"{', '.join('/'.join(k) for k in WRITERS)}); keep the path download_vault.py "
                "gives it, e.g. vaults/og_marl/gymnasium_mamujoco/2walker.vlt/Good")
        return None, None
    recorded = f"vault {'/'.join(key)}/{scenario}"
    env = SCENARIOS[key].get(scenario)
    if env is None:
        if task_known:
            raise UserError(f"{location}: scenario {scenario!r} is not one of {'/'.join(key)}'s "
                            f"({', '.join(SCENARIOS[key])}); keep the vault's own .vlt name")
        return writer, None
    return writer, Identity(env[0], env[1], recorded)


def vault_location(path: Path, uid: str | None) -> Path:
    """The UID directory of a vault: PATH itself (it holds metadata.json), PATH/UID, or the
    one UID directory under PATH."""
    if uid is not None:
        path = path / uid
    if (path / "metadata.json").is_file():
        return path
    candidates = sorted(child for child in path.iterdir()
                        if (child / "metadata.json").is_file()) if path.is_dir() else []
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        raise UserError(f"{path}: holds vaults {', '.join(c.name for c in candidates)}; pick "
                        "one with --uid")
    raise UserError(f"{path}: not a Flashbax vault (no metadata.json); give the vault's UID "
                    "directory, e.g. vaults/og_marl/mamujoco/2halfcheetah.vlt/Good")


def read_experience(location: Path) -> dict[str, Any]:
    """The vault's whole experience as numpy arrays (Vault.read: every written time step)."""
    try:
        from flashbax.vault import Vault
    except ImportError:
        raise UserError("reading OG-MARL vaults needs the flashbax package: pip install "
                        "'mabcq[og-marl]'") from None
    import jax

    try:
        json.loads((location / "metadata.json").read_text())
        with contextlib.redirect_stdout(io.StringIO()):  # Vault prints where it loads from
            vault = Vault(vault_name=location.parent.name, rel_dir=str(location.parent.parent),
                          vault_uid=location.name)
            experience = vault.read().experience
    except Exception as error:  # noqa: BLE001 - tensorstore/orbax raise many kinds
        raise UserError(f"{location}: cannot read the vault ({type(error).__name__}: "
                        f"{' '.join(str(error).split())[:200]})") from None
    return jax.tree_util.tree_map(np.asarray, experience)


def _per_agent(experience: dict[str, Any], name: str, source: str
               ) -> tuple[list[str], list[np.ndarray]]:
    """(agent keys, [B, T, ...] per agent) of one field, from either layout."""
    if name not in experience:
        raise UserError(f"{source}: the vault has no {name!r} (keys: "
                        f"{', '.join(sorted(experience))}); not an OG-MARL vault")
    value = experience[name]
    if isinstance(value, dict):
        keys = sorted(value, key=natural_key)
        return keys, [rows(value[key], f"{name}.{key}", source) for key in keys]
    array = rows(value, name, source)
    if array.ndim < 3:
        raise UserError(f"{source}: field {name!r} has shape {array.shape}, expected "
                        "[B, T, agents, ...]")
    return [str(i) for i in range(array.shape[2])], [array[:, :, i] for i in
                                                     range(array.shape[2])]


def _stream_transitions(terminals: np.ndarray, truncations: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Rows kept of one [T] stream and their s' row index (a terminal row: itself)."""
    steps = len(terminals)
    later = np.arange(steps) < steps - 1
    keep = terminals | (~truncations & later)
    kept = np.flatnonzero(keep)
    next_rows = np.where(terminals[kept], kept, kept + 1)
    return kept, next_rows


def read_ogmarl(path: Path, uid: str | None, obs: str | None, task_known: bool = False
                ) -> tuple[list[AgentArrays], str, conventions.Writer | None, Identity | None]:
    """Every agent's arrays (as the vault holds them), the observation kind (default: state
    when infos.state exists), and the writer and environment its path records."""
    location = vault_location(path, uid)
    source = str(location)
    writer, identity = vault_origin(location, task_known)
    experience = read_experience(location)
    fields = {name: _per_agent(experience, name, source) for name in PER_AGENT_FIELDS}
    keys = fields["observations"][0]
    for name, (field_keys, _) in fields.items():
        if field_keys != keys:
            raise UserError(f"{source}: field {name!r} has agents {field_keys}, observations "
                            f"have {keys}")
    state = experience.get("infos", {}).get("state") if isinstance(
        experience.get("infos"), dict) else None
    obs = obs or ("state" if state is not None else "local")
    if obs == "state" and state is None:
        raise UserError(f"{source}: --obs state needs infos.state in the vault; use --obs local")
    agents = []
    for index, key in enumerate(keys):
        per_field = {name: fields[name][1][index] for name in PER_AGENT_FIELDS}
        observations = rows(state, "infos.state", source) if obs == "state" else \
            per_field["observations"]
        streams, steps = observations.shape[:2]
        for name, array in per_field.items():
            if array.shape[:2] != (streams, steps):
                raise UserError(f"{source}: field {name!r} of agent {key} has shape "
                                f"{array.shape}, observations {observations.shape}: need the "
                                "same [B, T]")
        parts: dict[str, list[np.ndarray]] = {"obs": [], "next": [], "act": [], "rew": [],
                                               "term": [], "moved": []}
        for stream in range(streams):
            terminals = _flags(per_field["terminals"][stream])
            kept, next_rows = _stream_transitions(terminals,
                                                  _flags(per_field["truncations"][stream]))
            parts["obs"].append(observations[stream][kept])
            parts["next"].append(observations[stream][next_rows])
            parts["act"].append(per_field["actions"][stream][kept])
            parts["rew"].append(_flags(per_field["rewards"][stream], bool_=False)[kept])
            parts["term"].append(terminals[kept])
            local = per_field["observations"][stream].reshape(steps, -1)
            parts["moved"].append(np.any(local[next_rows] != local[kept], axis=1))
        if obs == "state" and index == 0:
            _check_state_moves(np.concatenate(parts["obs"]), np.concatenate(parts["next"]),
                               np.concatenate(parts["moved"]), source)
        agents.append(AgentArrays(
            observations=np.concatenate(parts["obs"]), actions=np.concatenate(parts["act"]),
            rewards=np.concatenate(parts["rew"]), next_observations=np.concatenate(parts["next"]),
            terminals=np.concatenate(parts["term"]),
            source={"agent_key": key, "vault_name": location.parent.name,
                    "vault_uid": location.name, "streams": int(streams), "rows": int(steps)}))
    return agents, obs, writer, identity


def _check_state_moves(states: np.ndarray, next_states: np.ndarray, moved: np.ndarray,
                       source: str) -> None:
    """Refuse an infos.state that never changes from a row to the next while the agents'
    observations do: OG-MARL's ExperienceRecorder (wrappers.py) packs `self._infos`, which only
    reset() sets (step() stores `self._info`), so its vaults repeat each episode's first state."""
    if moved.any() and np.all(states[moved] == next_states[moved]):
        raise UserError(f"{source}: infos.state never changes within an episode while the "
                        "observations do (OG-MARL's ExperienceRecorder records the reset's "
                        "state at every step): not a state to learn from; use --obs local with "
                        "a task name of your own")


def _flags(array: np.ndarray, bool_: bool = True) -> np.ndarray:
    """[T] or [T, 1] per-step value of one agent."""
    flat = array.reshape(len(array), -1)[:, 0] if array.ndim > 1 else array
    return flat.astype(bool) if bool_ else flat
