"""One agent's policy as its own file: loads and acts without the other agents or their data.

Format: one msgpack file (flax.serialization) holding a format tag, the method, the learner
config, the state/action dims, user metadata (JSON) and the parameters acting needs (critic,
actor, G1, a state normalizer; never G2, targets or optimizer states). Written atomically (temp
file + os.replace).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from mabcq import atomic
from mabcq.config import BaseLearnerConfig
from mabcq.errors import UserError
from mabcq.learners.base import AgentState, Learner
from mabcq.learners.registry import config_class, make_learner

POLICY_FORMAT = "mabcq-policy/1"
# What acting (and the value diagnostics) read; "normalizer": TD3+BC's state mean and std.
ACTING_NETWORKS = ("critic", "actor", "vae1", "normalizer")


def _critic_state_dim(critic_params: Any) -> int:
    for path, leaf in jax.tree_util.tree_leaves_with_path(critic_params):
        name = jax.tree_util.keystr(path)
        if "first_in" in name and "kernel" in name:
            return int(leaf.shape[-2])
    raise ValueError("critic parameters without a first Dense layer")


def export_policy(
    path: str | Path,
    learner_method: str,
    config: BaseLearnerConfig,
    agent_state: AgentState,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Write one agent's acting parameters to `path` (atomically).

    agent_state must be ONE agent's state (no leading [seeds, agents] axes): slice it first,
    e.g. jax.tree.map(lambda x: x[seed, agent], states). metadata must be JSON-serializable.
    """
    learner = make_learner(learner_method, config)
    params = {k: v for k, v in agent_state.params.items() if k in ACTING_NETWORKS}
    state_dim, action_dim = _policy_dims(params)
    probe = learner.act(
        AgentState(params, {}, {}, jnp.zeros((), jnp.int32)),
        jnp.zeros((1, state_dim)),
        jax.random.PRNGKey(0),
    )
    if probe.shape != (1, action_dim):
        raise ValueError(
            f"agent_state is not one agent's state (a probe action has shape {probe.shape}); "
            "slice it first, e.g. jax.tree.map(lambda x: x[seed, agent], states)"
        )
    record = {
        "format": POLICY_FORMAT,
        "method": learner_method,
        "config": json.dumps(config.to_dict()),
        "state_dim": state_dim,
        "action_dim": action_dim,
        "metadata": json.dumps(metadata or {}),
        "params": jax.tree.map(np.asarray, params),
    }
    data = serialization.msgpack_serialize(record)
    atomic.write_bytes(path, data)


def _policy_dims(params: dict[str, Any]) -> tuple[int, int]:
    """(state_dim, action_dim) from the shapes: the critic's state input layer reads S, the actor
    (or G1's decoder, for Behavior) emits A."""
    from mabcq.learners.common import output_dim

    if "actor" in params:
        action_dim = output_dim(params["actor"])
    else:
        action_dim = output_dim(params["vae1"]["params"]["decoder"])
    return _critic_state_dim(params["critic"]), action_dim


@dataclass
class LoadedPolicy:
    """An exported agent policy: act(states [B, S], key) -> [B, A_i]."""

    method: str
    config: BaseLearnerConfig
    state_dim: int
    action_dim: int
    metadata: dict[str, Any]
    learner: Learner = field(repr=False)
    agent_state: AgentState = field(repr=False)

    def __post_init__(self) -> None:
        self._act = jax.jit(self.learner.act)
        self._value = jax.jit(self.learner.value)

    def act(self, states: jax.Array, key: jax.Array) -> jax.Array:
        states = jnp.asarray(states, jnp.float32)
        if states.ndim != 2 or states.shape[1] != self.state_dim:
            raise UserError(
                f"policy expects states [batch, {self.state_dim}], got shape {tuple(states.shape)}"
            )
        return self._act(self.agent_state, states, key)

    def value(self, states: jax.Array, key: jax.Array) -> jax.Array:
        return self._value(self.agent_state, jnp.asarray(states, jnp.float32), key)


def load_policy(path: str | Path) -> LoadedPolicy:
    """Read a file written by export_policy; a wrong or damaged file -> UserError."""
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise UserError(f"{path}: cannot read policy file ({error.strerror})") from error
    try:
        record = serialization.msgpack_restore(raw)
    except Exception as error:  # msgpack raises several unrelated types on damaged input
        raise UserError(f"{path}: not a policy file (msgpack decode failed: {error})") from error
    if not isinstance(record, dict) or record.get("format") != POLICY_FORMAT:
        found = record.get("format") if isinstance(record, dict) else type(record).__name__
        raise UserError(
            f"{path}: field 'format' is {found!r}, expected {POLICY_FORMAT!r}; "
            "export the policy again with this version of mabcq"
        )
    try:
        method = str(record["method"])
        config = config_class(method).from_dict(json.loads(record["config"]))
        learner = make_learner(method, config)
        params = jax.tree.map(jnp.asarray, record["params"])
        agent_state = AgentState(params, {}, {}, jnp.zeros((), jnp.int32))
        return LoadedPolicy(
            method=method,
            config=config,
            state_dim=int(record["state_dim"]),
            action_dim=int(record["action_dim"]),
            metadata=json.loads(record["metadata"]),
            learner=learner,
            agent_state=agent_state,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise UserError(f"{path}: damaged policy file ({error!r}); export it again") from error
