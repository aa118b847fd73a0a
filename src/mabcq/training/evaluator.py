"""The evaluation of a training run at one update: every run's agents together in the
simulator (one batched policy call per step for all runs and episodes), the extrapolation error
(Table 5), the value difference (Figure 3) and lambda_tn on each agent's own data.

The per-rollout and per-state diagnostics themselves live in mabcq.training.evaluation; this module
holds the jitted per-agent functions, the fixed diagnostic samples and the lockstep envs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from mabcq.data.schema import AgentDataset
from mabcq.training.evaluation import (
    _EVAL_SALT,
    ActFn,
    _chunked,
    _own_sample,
    agent_values,
    evaluation_env_seed,
    evaluation_key,
    lambda_tn_summary,
    lambda_tn_values,
    rollout_diagnostics,
    rollout_observations,
    sample_union_states,
    value_difference,
)


class Evaluator:
    """Evaluation of all runs at one update: simulator returns, extrapolation error, value
    difference. Holds the jitted per-agent functions and the fixed diagnostic state sample.

    A run is one row of the states' leading axis: a seed, or a (method, seed) cell of a grid
    trained in one step. All runs' episodes step in lockstep with one policy call per step
    (envs.rollout.run_lockstep); every agent of every run acts from its own state, and each
    episode's row draws from its own key fold_in(fold_in(fold_in(evaluation_key(seed, update),
    agent), episode), step), so a run's returns do not depend on which other runs share the call.
    """

    def __init__(self, learner: Any, task: Any, seeds: Sequence[int],
                 datasets: Sequence[AgentDataset], *, gamma: float, episodes: int,
                 max_steps: int | None, diagnostic_states: int, min_steps_left: int,
                 with_returns: bool = True, tn_runs: Sequence[bool] | None = None,
                 env_workers: int = 0,
                 compiler_options: dict[str, Any] | None = None,
                 observations: Any = None, agent_ids: Sequence[int] | None = None) -> None:
        from mabcq.envs.observations import observer_for
        from mabcq.learners.groups import group_agents

        self.task, self.seeds, self.gamma = task, tuple(seeds), gamma
        self.episodes, self.max_steps, self.min_steps_left = episodes, max_steps, min_steps_left
        self.with_returns = with_returns
        self.agent_ids = list(range(len(datasets))) if agent_ids is None else list(agent_ids)
        self.groups = group_agents(datasets, self.agent_ids)
        self.observer = None if observations is None else observer_for(task.name, observations)

        def jit(fn: Any) -> Any:
            return jax.jit(fn, compiler_options=compiler_options)

        q_value, value = jit(learner.q_value), jit(learner.value)
        self.act_all = jit(lambda states, obs, keys, step: lockstep_actions(
            learner.act, states, obs, keys, step))
        self.act_group = jit(lambda states, obs, keys, step, ids: lockstep_actions(
            learner.act, states, obs, keys, step, ids))
        self.q_value = lambda state, obs, actions: _chunked(q_value, state, obs, actions)
        self.value = value
        self.diagnostic_count = diagnostic_states
        # Global states: a fixed sample of the union of the agents' dataset states (Figure 3).
        # Local observations: each agent's file holds only its own view, so every agent's
        # view of the same states comes from the evaluation rollout (diagnostic_rows).
        self.diagnostic_states = (
            sample_union_states(datasets, diagnostic_states, self.seeds[0])
            if self.observer is None or len(datasets) == 1 else None)
        # Each agent's own transitions (a fixed sample) for the lambda_tn distribution.
        self.own_samples = [_own_sample(dataset, diagnostic_states, self.seeds[0])
                            for dataset in datasets]
        self.lambda_tn = jit(lambda state, sample: lambda_tn_values(learner, state, *sample))
        has_tn = bool(getattr(learner.config, "use_tn", False))
        self.tn_runs = tuple(tn_runs) if tn_runs is not None else (has_tn,) * len(self.seeds)
        self.env_workers, self._envs = env_workers, None

    def close(self) -> None:
        """Stop the env worker processes, if any (also safe when none were started)."""
        if self._envs is not None:
            self._envs.close()
            self._envs = None

    def rollouts(self, states: Any, update: int) -> list[Any]:
        """One RolloutResult per run: every run's episodes stepped together."""
        from mabcq.envs.lockstep import LockstepEnvs

        if self._envs is None:  # made once, reset by every evaluation
            self._envs = LockstepEnvs(self.task, len(self.seeds), self.episodes,
                                      self.env_workers, self.observer)
        keys = jax.numpy.stack([evaluation_key(seed, update) for seed in self.seeds])

        def act(observations: np.ndarray, step: int) -> Any:
            if self.observer is None and len(self.groups) == 1:
                return np.asarray(self.act_all(states, np.asarray(observations, np.float32),
                                               keys, np.int32(step)))
            return self._grouped_actions(states, observations, keys, step)

        env_seeds = [evaluation_env_seed(seed, update) for seed in self.seeds]
        return self._envs.run(act, env_seeds, gamma=self.gamma, max_steps=self.max_steps)

    def _grouped_actions(self, states: Any, observations: np.ndarray, keys: jax.Array,
                         step: int) -> list[np.ndarray]:
        """One call per group, each agent on its own observations: a list over agents of
        [runs, episodes, A_i]. observations: [runs, episodes, sum O_i] local observations (or
        [runs, episodes, S] global states shared by all agents)."""
        from mabcq.learners.groups import split_groups

        observations = np.asarray(observations, np.float32)
        per_agent = (self.observer.split(observations) if self.observer is not None
                     else [observations] * len(self.agent_ids))
        actions: list[Any] = [None] * len(self.agent_ids)
        for group, group_states in zip(self.groups, split_groups(states), strict=True):
            group_obs = np.stack([per_agent[slot] for slot in group.slots], axis=1)
            out = np.asarray(self.act_group(group_states, group_obs, keys, np.int32(step),
                                            np.asarray(group.agents, np.int32)))
            for index, slot in enumerate(group.slots):
                actions[slot] = out[:, index]
        return actions

    def diagnostic_rows(self, rollout: Any, seed: int, update: int) -> list[np.ndarray]:
        """Local observations: each agent's own view of a fixed-size seeded sample of the
        evaluation rollout's states, one [diagnostic_states, O_i] per agent."""
        rng = np.random.default_rng(np.random.SeedSequence([seed, update, _EVAL_SALT, 3]))
        rows = rng.choice(len(rollout), size=self.diagnostic_count,
                          replace=self.diagnostic_count > len(rollout))
        return [obs[rows] for obs in rollout_observations(rollout, self.observer,
                                                          len(self.agent_ids))]

    def rows(self, states: Any, update: int) -> list[dict[str, Any]]:
        """One dict per run: returns, extrapolation error, value difference.

        states: learner states with leaves [runs, agents, ...] (or a GroupedStates).
        """
        from mabcq.learners.groups import agent_slice

        n_agents = len(self.agent_ids)
        rollouts = self.rollouts(states, update) if self.with_returns else None
        rows = []
        for run, seed in enumerate(self.seeds):
            agent_states = [agent_slice(states, run, slot) for slot in range(n_agents)]
            key = evaluation_key(seed, update)
            row: dict[str, Any] = {"update": update, "seed": seed}
            if rollouts is not None:  # returns need every agent's policy in the simulator
                row.update(rollout_diagnostics(self.q_value, agent_states, rollouts[run],
                                               self.task, self.min_steps_left, self.observer))
            if n_agents > 1:
                diagnostic = (self.diagnostic_states if self.diagnostic_states is not None
                              else self.diagnostic_rows(rollouts[run], seed, update))
                values = agent_values(self.value, agent_states, diagnostic,
                                      jax.random.fold_in(key, 1_000_003))
                row["value_difference"] = value_difference(values)
            if self.tn_runs[run]:
                row.update(lambda_tn_summary(np.concatenate([
                    np.asarray(self.lambda_tn(agent_state, sample))
                    for agent_state, sample in zip(agent_states, self.own_samples, strict=True)
                ])))
            rows.append(row)
        return rows


def lockstep_actions(act: ActFn, states: Any, observations: jax.Array, keys: jax.Array,
                     step: jax.Array, agent_ids: jax.Array | None = None) -> jax.Array:
    """Every agent of every run acting on every episode's state, in one traced call.

    act: one agent's (agent_state, states [B, S], key) -> [B, A]; states: leaves [runs, agents,
    ...]; observations [runs, episodes, S] shared by the agents, or with agent_ids [runs,
    agents, episodes, O] each agent its own; keys [runs, 2] (the run's evaluation key); step:
    the env step; agent_ids: the task indices of the agents on the states' agent axis (default
    0..agents-1), which name their key streams. Returns [runs, agents, episodes, A]. Agent i of
    run r reads only states[r, i], its observations and its own key stream; each episode row
    is acted on alone with its own key.
    """
    import jax.numpy as jnp

    def one_agent(agent_state: Any, run_observations: jax.Array, agent_key: jax.Array):
        episodes = jnp.arange(run_observations.shape[0])
        row_keys = jax.vmap(lambda e: jax.random.fold_in(jax.random.fold_in(agent_key, e),
                                                         step))(episodes)
        return jax.vmap(lambda obs, key: act(agent_state, obs[None], key)[0])(
            run_observations, row_keys)

    def one_run(run_states: Any, run_observations: jax.Array, run_key: jax.Array):
        n_agents = jax.tree_util.tree_leaves(run_states)[0].shape[0]
        ids = jnp.arange(n_agents) if agent_ids is None else agent_ids
        agent_keys = jax.vmap(lambda i: jax.random.fold_in(run_key, i))(ids)
        return jax.vmap(one_agent, in_axes=(0, None if agent_ids is None else 0, 0))(
            run_states, run_observations, agent_keys)

    return jax.vmap(one_run)(states, observations, keys)
