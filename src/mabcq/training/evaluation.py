"""Evaluation: returns of the agents' decentralized policies run together in the simulator, and
the paper's two diagnostics (value difference, Figure 3; extrapolation error, Table 5).

Every agent acts from its own learner state and its own key on the global state, or with local
observations (mabcq.envs.observations) on its own observation read from the simulator each
step; the rollout (mabcq.envs.rollout.run_episodes) joins the agents' action slices. All
randomness is derived from (seed, update step), so an evaluation after a resume draws exactly
what it drew before the kill.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from mabcq.data.schema import AgentDataset

# Salt that separates evaluation randomness from training randomness drawn from the same seed.
_EVAL_SALT = 0x5EED_E7A1 & 0x7FFFFFFF
# States whose episode was cut (not terminated) need this many steps left for their Monte-Carlo
# return to stand in for the true value: gamma^300 = 0.049 at gamma = 0.99.
DEFAULT_MIN_STEPS_LEFT = 300


def value_difference(values: np.ndarray) -> float:
    """Mean over states of max_i V_i(s) - min_i V_i(s) (paper Figure 3).

    values: [agents, states] with V_i(s) = Q_i(s, pi_i(s)).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] == 0:
        raise ValueError(f"values must be [agents, states] with states > 0, got {values.shape}")
    return float(np.mean(values.max(axis=0) - values.min(axis=0)))


def extrapolation_error(q_values: np.ndarray, returns: np.ndarray, mask: np.ndarray) -> float:
    """Mean over the masked states of |(1/N) sum_i Q_i(s, a_i) - R| (paper Table 5).

    q_values: [agents, T] each agent's Q of its own action; returns: [T] Monte-Carlo return-to-go;
    mask: [T] bool, the states whose return is trusted. NaN when no state is masked in.
    """
    q_values = np.asarray(q_values, dtype=np.float64)
    returns = np.asarray(returns, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return float("nan")
    errors = np.abs(q_values.mean(axis=0) - returns)
    return float(errors[mask].mean())


def steps_left(episode_lengths: np.ndarray) -> np.ndarray:
    """[T] steps from each state to the end of its episode (1 at the last transition); episodes
    concatenated in order as in RolloutResult."""
    lengths = np.asarray(episode_lengths, dtype=np.int64)
    return np.concatenate([np.arange(length, 0, -1) for length in lengths]) if len(lengths) else (
        np.zeros(0, dtype=np.int64)
    )


def trusted_return_mask(
    episode_lengths: np.ndarray, terminals: np.ndarray, min_steps_left: int
) -> np.ndarray:
    """[T] bool: states whose discounted return-to-go is (nearly) the true value.

    An episode that ended in a true terminal state has exact returns for every state. An episode
    cut by the horizon or max_steps lacks the tail, so its states count only with at least
    `min_steps_left` steps left (the missing part then weighs gamma^min_steps_left or less).
    """
    lengths = np.asarray(episode_lengths, dtype=np.int64)
    terminals = np.asarray(terminals, dtype=bool)
    ends = np.cumsum(lengths) - 1
    terminated = np.repeat(terminals[ends] if len(ends) else np.zeros(0, bool), lengths)
    return terminated | (steps_left(lengths) >= min_steps_left)


def sample_union_states(
    datasets: Sequence[AgentDataset], sample_size: int, seed: int
) -> np.ndarray:
    """A fixed, seeded uniform sample (without replacement when possible) of the union of all
    agents' dataset states, [sample_size, state_dim] (paper Figure 3's evaluation set)."""
    sizes = [len(dataset) for dataset in datasets]
    total = int(sum(sizes))
    rng = np.random.default_rng(np.random.SeedSequence([seed, _EVAL_SALT, 1]))
    picks = rng.choice(total, size=sample_size, replace=sample_size > total)
    offsets = np.cumsum([0, *sizes])
    owner = np.searchsorted(offsets, picks, side="right") - 1
    rows = [datasets[agent].observations[pick - offsets[agent]] for pick, agent in zip(
        picks, owner, strict=True)]
    return np.stack(rows).astype(np.float32)


def evaluation_key(seed: int, update: int) -> jax.Array:
    """The PRNG key of the evaluation at `update` for training seed `seed`."""
    base = jax.random.PRNGKey(_EVAL_SALT)
    return jax.random.fold_in(jax.random.fold_in(base, seed), update)


def evaluation_env_seed(seed: int, update: int) -> int:
    """The simulator seed of the evaluation at `update` for training seed `seed`."""
    return int(np.random.SeedSequence([seed, update, _EVAL_SALT]).generate_state(1)[0] >> 1)


ActFn = Callable[[Any, jax.Array, jax.Array], jax.Array]


def make_agent_policies(
    act_fn: ActFn, agent_states: Sequence[Any], key: jax.Array
) -> list[Callable[[np.ndarray], np.ndarray]]:
    """One decentralized policy per agent for run_episodes: agent i calls act_fn on ITS OWN state
    with ITS OWN key stream fold_in(fold_in(key, i), call_index); it sees only the global state.

    act_fn: (agent_state, states [E, S], key) -> actions [E, A_i], typically jit(learner.act).
    """
    return [
        _AgentPolicy(act_fn, agent_state, jax.random.fold_in(key, agent))
        for agent, agent_state in enumerate(agent_states)
    ]


class _AgentPolicy:
    """One agent's policy: its own state, its own key stream, a call counter for fresh keys."""

    def __init__(self, act_fn: ActFn, agent_state: Any, key: jax.Array) -> None:
        self.act_fn, self.agent_state, self.key, self.calls = act_fn, agent_state, key, 0

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        step_key = jax.random.fold_in(self.key, self.calls)
        self.calls += 1
        actions = self.act_fn(self.agent_state, np.asarray(observations, np.float32), step_key)
        return np.asarray(actions, dtype=np.float64)


def rollout_diagnostics(
    q_fn: Callable[[Any, jax.Array, jax.Array], jax.Array],
    agent_states: Sequence[Any],
    rollout: Any,
    task: Any,
    min_steps_left: int = DEFAULT_MIN_STEPS_LEFT,
    observer: Any = None,
) -> dict[str, float]:
    """Returns and extrapolation error of one evaluation rollout (a RolloutResult).

    q_fn: (agent_state, states [T, S], actions [T, A_i]) -> [T], typically jit(learner.q_value).
    observer: with local observations, agent i's Q reads its own [T, O_i] of the rollout.
    """
    returns = np.asarray(rollout.episode_returns, dtype=np.float64)
    own_actions = task.split_action(np.asarray(rollout.actions, dtype=np.float32))
    observations = rollout_observations(rollout, observer, len(agent_states))
    q_values = np.stack([
        np.asarray(q_fn(agent_state, agent_obs, np.asarray(actions, dtype=np.float32)))
        for agent_state, agent_obs, actions in zip(agent_states, observations, own_actions,
                                                   strict=True)
    ])
    trusted = trusted_return_mask(rollout.episode_lengths, rollout.terminals, min_steps_left)
    everything = np.ones_like(trusted)
    return {
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "episode_length_mean": float(np.mean(rollout.episode_lengths)),
        "extrapolation_error": extrapolation_error(q_values, rollout.discounted_returns, trusted),
        "extrapolation_error_all_states": extrapolation_error(
            q_values, rollout.discounted_returns, everything
        ),
        "extrapolation_states": int(trusted.sum()),
    }


def rollout_observations(rollout: Any, observer: Any, n_agents: int) -> list[np.ndarray]:
    """Each agent's observations of a rollout's states: [T, S] global states (the same array
    for every agent), or with an observer agent i's own [T, O_i]."""
    if observer is None:
        return [np.asarray(rollout.observations, dtype=np.float32)] * n_agents
    return [np.asarray(part, np.float32) for part in observer.split(rollout.local_observations)]


def agent_values(
    value_fn: Callable[[Any, jax.Array, jax.Array], jax.Array],
    agent_states: Sequence[Any],
    states: np.ndarray | Sequence[np.ndarray],
    key: jax.Array,
) -> np.ndarray:
    """[agents, B] V_i(s) = Q_i(s, pi_i(s)), each agent from its own state and key.

    states: [B, S] shared by all agents, or one [B, O_i] per agent (each agent's own
    observation of the same B states)."""
    per_agent = states if isinstance(states, list | tuple) else [states] * len(agent_states)
    return np.stack([
        np.asarray(value_fn(agent_state, agent_obs, jax.random.fold_in(key, agent)))
        for agent, (agent_state, agent_obs) in enumerate(zip(agent_states, per_agent,
                                                             strict=True))
    ])


def evaluate_policy_files(task: Any, policies: Sequence[Any], episodes: int, seed: int,
                          max_steps: int | None = None,
                          record_physics: bool = False) -> tuple[list[Any], Any]:
    """(the loaded policies, a RolloutResult): one policy per agent, each a Policy or a policy
    file loaded on its own, checked against the task and agent order, run together in the
    simulator with the policies' own discount (`mabcq evaluate`, mabcq.evaluate).
    record_physics: keep the simulator states, for videos."""
    check_policy_count(task, len(policies))  # the checks in the order the CLI has always made them
    check_episodes(episodes)
    loaded = load_policies(task, list(policies))
    return loaded, run_policies(task, loaded, episodes, seed, max_steps,
                                gamma=loaded[0].config.gamma, record_physics=record_physics)


def check_episodes(episodes: int) -> None:
    from mabcq.errors import UserError

    if episodes < 1:
        raise UserError(f"--episodes must be >= 1, got {episodes}")


def check_policy_count(task: Any, count: int) -> None:
    from mabcq.errors import UserError

    if count != task.n_agents:
        raise UserError(f"--policies: {task.name} has {task.n_agents} agents, got {count} "
                        "files; give one policy file per agent in agent order")


def load_policies(task: Any, policies: Sequence[Any]) -> list[Any]:
    """One Policy per agent of `task`, in agent order: each item a Policy or a policy file
    (loaded on its own). Checked: one per agent, recorded task and agent, that each acts."""
    from pathlib import Path

    from mabcq.errors import UserError
    from mabcq.learners.export import Policy, load_policy

    check_policy_count(task, len(policies))
    missing = [str(item) for item in policies
               if not isinstance(item, Policy) and not Path(item).is_file()]
    if missing:
        raise UserError(f"{missing[0]}: no such policy file (look under RUN_DIR/policies/)")
    loaded = []
    for agent, item in enumerate(policies):
        source = f"policy {agent}" if isinstance(item, Policy) else str(item)
        policy = item if isinstance(item, Policy) else load_policy(item)
        metadata = getattr(policy, "metadata", {}) or {}
        if metadata.get("task") not in (None, task.name):
            raise UserError(f"{source}: policy trained for task {metadata['task']!r}, "
                            f"not {task.name!r}")
        if metadata.get("agent") not in (None, agent):
            raise UserError(f"{source}: holds agent {metadata['agent']}'s policy but is given "
                            f"in position {agent}; list the files in agent order")
        _check_policy_input(task, policy, agent, source)
        try:  # a file from another version's networks fails only when it first acts
            policy.act(np.zeros((1, policy.state_dim), np.float32), jax.random.PRNGKey(0))
        except Exception as error:  # flax/jax raise many types for mismatched parameters
            raise UserError(f"{source}: this policy file does not fit this version's networks "
                            f"({type(error).__name__}); re-export it by training again") from error
        loaded.append(policy)
    policies_observation_spec(loaded)  # one kind of observation for all agents
    return loaded


def policies_observation_spec(policies: Sequence[Any]) -> Any:
    """The ObservationSpec the policies were trained with (recorded in their metadata; none
    recorded: global states); UserError when they differ."""
    from mabcq.envs.observations import same_spec, spec_from_metadata

    sources = [f"policy {agent}" for agent in range(len(policies))]
    return same_spec([spec_from_metadata(getattr(policy, "metadata", {}) or {}, source)
                      for policy, source in zip(policies, sources, strict=True)], sources)


def _check_policy_input(task: Any, policy: Any, agent: int, source: str) -> None:
    """The policy's input size is what the simulator will feed it."""
    from mabcq.envs.observations import observation_dims, spec_from_metadata
    from mabcq.errors import UserError

    spec = spec_from_metadata(getattr(policy, "metadata", {}) or {}, source)
    expected = observation_dims(task, spec)[agent]
    if policy.state_dim != expected:
        kind = f"local observation (obsk {spec.k})" if spec.is_local else "state"
        raise UserError(f"{source}: policy reads {policy.state_dim} inputs, agent {agent}'s "
                        f"{kind} of {task.name} has {expected}")


def run_policies(task: Any, policies: Sequence[Any], episodes: int, seed: int,
                 max_steps: int | None = None, gamma: float = 0.99,
                 record_physics: bool = False) -> Any:
    """Run one Policy per agent together for `episodes` episodes (a RolloutResult): agent i's
    policy acts on the global state (or its own local observation, when the policies were
    trained on local ones) with its own key stream fold_in(evaluation_key(seed, 0), i) and
    returns only its own action slice. record_physics: keep the simulator states (for videos,
    mabcq.video); the transitions are the same either way."""
    from mabcq.envs.observations import observer_for
    from mabcq.envs.rollout import run_episodes

    check_episodes(episodes)
    observer = observer_for(task.name, policies_observation_spec(policies))
    envs = min(8, episodes)

    def act(policy: Any, states: np.ndarray, key: jax.Array) -> np.ndarray:
        return _padded(lambda p, obs, k: p.act(obs, k), policy, (states,), key, envs)

    agent_policies = make_agent_policies(act, policies, evaluation_key(seed, 0))
    return run_episodes(task, agent_policies, episodes, seed=evaluation_env_seed(seed, 0),
                        gamma=gamma, max_steps=max_steps, num_envs=envs, observer=observer,
                        local_policies=observer is not None, record_physics=record_physics)


def _pad_rows(arrays: tuple[np.ndarray, ...], size: int) -> tuple[np.ndarray, ...]:
    """Arrays [rows, ...] grown to `size` rows by repeating the last row (rows <= size)."""
    rows = arrays[0].shape[0]
    if rows == size:
        return arrays
    return tuple(np.concatenate([a, np.repeat(a[-1:], size - rows, axis=0)]) for a in arrays)


def _padded(fn: Any, state: Any, arrays: tuple[np.ndarray, ...], key: Any, size: int) -> Any:
    """fn(state, *arrays padded to `size` rows, key)[:rows]: one compiled shape for any E."""
    rows = arrays[0].shape[0]
    return np.asarray(fn(state, *_pad_rows(arrays, max(size, rows)), key))[:rows]


def _chunked(fn: Any, state: Any, states: np.ndarray, actions: np.ndarray,
             chunk: int = 1024) -> np.ndarray:
    """fn(state, states, actions) over fixed-size chunks (the last one padded): [T] values."""
    out = []
    for start in range(0, states.shape[0], chunk):
        part = (states[start:start + chunk], actions[start:start + chunk])
        rows = part[0].shape[0]
        out.append(np.asarray(fn(state, *_pad_rows(part, chunk)))[:rows])
    return np.concatenate(out) if out else np.zeros(0, np.float32)


# The range the paper reports for lambda_tn (section 3.3).
LAMBDA_TN_PAPER_RANGE = (0.2, 1.4)


def lambda_tn_values(learner: Any, agent_state: Any, states: jax.Array, actions: jax.Array,
                     next_states: jax.Array) -> jax.Array:
    """[B] lambda_tn = phi(mu1) / phi(mu2) of one agent on its own transitions (s, a_i, s'):
    the learner's own computation (BCQLearner.lambda_tn), as in its update."""
    from mabcq.learners.base import Batch

    zeros = jax.numpy.zeros(states.shape[0])
    return learner.lambda_tn(agent_state.params, Batch(states, actions, zeros, next_states, zeros))


def lambda_tn_summary(values: np.ndarray) -> dict[str, float]:
    """Share of samples in the paper's [0.2, 1.4] and the 5/50/95% quantiles."""
    values = np.asarray(values, dtype=np.float64)
    low, high = LAMBDA_TN_PAPER_RANGE
    quantiles = np.quantile(values, [0.05, 0.5, 0.95])
    return {"lambda_tn_data_in_paper_range": float(np.mean((values >= low) & (values <= high))),
            "lambda_tn_data_p05": float(quantiles[0]),
            "lambda_tn_data_median": float(quantiles[1]),
            "lambda_tn_data_p95": float(quantiles[2])}


def _own_sample(dataset: AgentDataset, size: int, seed: int) -> tuple[np.ndarray, ...]:
    """A fixed seeded sample of one agent's own (s, a_i, s'): three arrays [size, ...]."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, _EVAL_SALT, 2]))
    rows = rng.choice(len(dataset), size=size, replace=size > len(dataset))
    return (dataset.observations[rows], dataset.actions[rows], dataset.next_observations[rows])
