"""One agent's policy as its own file: loads and acts without the other agents or their data.

Format: one msgpack file (flax.serialization) holding a format tag, the method, the learner
config, the state/action dims, user metadata (JSON) and the parameters acting needs (critic,
actor, G1, a state normalizer; never G2, targets or optimizer states). Written atomically (temp
file + os.replace).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from mabcq.errors import UserError
from mabcq.learners.base import AgentState, Learner
from mabcq.learners.config import BaseLearnerConfig
from mabcq.learners.registry import config_class, make_learner
from mabcq.util import atomic

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
    Policy.from_agent_state(learner_method, config, agent_state, metadata).save(path)


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
class Policy:
    """One agent's policy, alone: `act(states [B, S]) -> actions [B, A_i]` on the global state.

    Holds only what acting needs (critic, actor, G1, a normalizer: never G2, targets or optimizer
    states), so it loads and acts without the other agents, their data or their files.
    Make one with `Policy.load(path)` (a file written by `save`, `mabcq train` or
    `FitResult.export`) or take it from a training result (`FitResult.policy(agent)`).

    Randomness: `act(states, key)` is a pure function of its key. Without a key the policy
    draws from its own stream fold_in(PRNGKey(seed), call_index) (`seed` is set at load and
    kept per object; no global state), so the same calls on a fresh policy repeat exactly.
    """

    method: str
    config: BaseLearnerConfig
    state_dim: int
    action_dim: int
    metadata: dict[str, Any]
    learner: Learner = field(repr=False)
    agent_state: AgentState = field(repr=False)
    seed: int = 0
    _calls: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._act = jax.jit(self.learner.act)
        self._value = jax.jit(self.learner.value)
        self._q_value = jax.jit(self.learner.q_value)

    @classmethod
    def load(cls, path: str | Path, seed: int = 0) -> Policy:
        """Read a policy file; a missing, wrong or damaged file raises UserError naming it."""
        return load_policy(path, seed)

    @classmethod
    def from_agent_state(cls, method: str, config: BaseLearnerConfig, agent_state: AgentState,
                         metadata: dict[str, Any] | None = None, seed: int = 0) -> Policy:
        """The acting part of ONE agent's learner state (no leading [seeds, agents] axes)."""
        learner = make_learner(method, config)
        params = {k: v for k, v in agent_state.params.items() if k in ACTING_NETWORKS}
        state_dim, action_dim = _policy_dims(params)
        acting_state = AgentState(params, {}, {}, jnp.zeros((), jnp.int32))
        probe = learner.act(acting_state, jnp.zeros((1, state_dim)), jax.random.PRNGKey(0))
        if probe.shape != (1, action_dim):
            raise ValueError(
                f"agent_state is not one agent's state (a probe action has shape {probe.shape}); "
                "slice it first, e.g. jax.tree.map(lambda x: x[seed, agent], states)"
            )
        return cls(method=method, config=config, state_dim=state_dim, action_dim=action_dim,
                   metadata=dict(metadata or {}), learner=learner, agent_state=acting_state,
                   seed=seed)

    def acting(self, candidates: int | None = None,
               perturbation_scale: float | None = None) -> Policy:
        """This policy with BCQ's way of acting changed, parameters shared (nothing retrains):
        `candidates` actions drawn from G1 per state (n; 1: no choice by the critic) and the
        perturbation's range `perturbation_scale` (Phi, times max_action; 0: no xi). None keeps
        the policy's own. For taking a BCQ-family policy apart (`mabcq acting`, `mabcq evaluate
        --candidates/--perturbation`); a policy of another family has neither: UserError."""
        from mabcq.learners.bcq import BCQLearner

        if not isinstance(self.learner, BCQLearner):
            raise UserError(f"a {self.method} policy draws no candidates from G1 and has no "
                            "perturbation; --candidates and --perturbation apply to BCQ-family "
                            "policies (mabcq, bcq, ...)")
        changes: dict[str, Any] = {}
        if candidates is not None:
            if int(candidates) < 1:
                raise UserError(f"candidates must be at least 1, got {candidates}")
            changes["n_candidates"] = int(candidates)
        if perturbation_scale is not None:
            if not 0.0 <= float(perturbation_scale) < float("inf"):
                raise UserError(f"perturbation_scale must be a finite number >= 0, got "
                                f"{perturbation_scale}")
            changes["perturbation_scale"] = float(perturbation_scale)
        return Policy.from_agent_state(self.method, dataclasses.replace(self.config, **changes),
                                       self.agent_state, self.metadata, self.seed)

    @property
    def agent(self) -> int | None:
        """The agent index this policy was trained as (from its metadata), if recorded."""
        agent = self.metadata.get("agent")
        return None if agent is None else int(agent)

    @property
    def task(self) -> str | None:
        """The task name this policy was trained on (from its metadata), if recorded."""
        return self.metadata.get("task")

    def save(self, path: str | Path) -> Path:
        """Write this policy to `path` (one msgpack file, atomically); returns the path."""
        record = {
            "format": POLICY_FORMAT,
            "method": self.method,
            "config": json.dumps(self.config.to_dict()),
            "state_dim": self.state_dim,
            "action_dim": self.action_dim,
            "metadata": json.dumps(self.metadata),
            "params": jax.tree.map(np.asarray, self.agent_state.params),
        }
        atomic.write_bytes(path, serialization.msgpack_serialize(record))
        return Path(path)

    def _states(self, states: Any) -> jax.Array:
        states = jnp.asarray(states, jnp.float32)
        if states.ndim != 2 or states.shape[1] != self.state_dim:
            raise UserError(
                f"policy expects states [batch, {self.state_dim}] (or one state "
                f"[{self.state_dim}]), got shape {tuple(states.shape)}"
            )
        return states

    def _key(self, key: jax.Array | None) -> jax.Array:
        if key is not None:
            return key
        key = jax.random.fold_in(jax.random.PRNGKey(self.seed), self._calls)
        self._calls += 1
        return key

    def act(self, states: Any, key: jax.Array | None = None) -> np.ndarray:
        """Actions of this agent: states [B, S] -> [B, A_i] float32 in [-max_action, max_action]
        (one state [S] -> [A_i]). key: a PRNG key, or None for the policy's own key stream."""
        states = jnp.asarray(states, jnp.float32)
        single = states.ndim == 1
        states = self._states(states[None] if single else states)
        actions = np.asarray(self._act(self.agent_state, states, self._key(key)))
        return actions[0] if single else actions

    def value(self, states: Any, key: jax.Array | None = None) -> np.ndarray:
        """V_i(s) = Q_i(s, pi_i(s)) with the first critic: states [B, S] -> [B]."""
        states = self._states(states)
        return np.asarray(self._value(self.agent_state, states, self._key(key)))

    def q_value(self, states: Any, actions: Any) -> np.ndarray:
        """Q_i(s, a_i) with the first critic: ([B, S], [B, A_i]) -> [B]."""
        states = self._states(states)
        return np.asarray(self._q_value(self.agent_state, states,
                                        jnp.asarray(actions, jnp.float32)))


# The name this class had before it became public (kept for existing imports).
LoadedPolicy = Policy


def load_policy(path: str | Path, seed: int = 0) -> Policy:
    """Read a file written by Policy.save / export_policy; a wrong or damaged file -> UserError."""
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
        return Policy(
            method=method,
            config=config,
            state_dim=int(record["state_dim"]),
            action_dim=int(record["action_dim"]),
            metadata=json.loads(record["metadata"]),
            learner=learner,
            agent_state=agent_state,
            seed=seed,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise UserError(f"{path}: damaged policy file ({error!r}); export it again") from error
