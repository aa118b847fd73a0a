"""Decentralized Q-iteration: each agent iterates its own Bellman operator on its own view.

T Q_i(s, a_i) = sum_s' P~(s'|s, a_i) (R(s') + gamma max_a' Q_i(s', a')), with P~ from
transitions.modify. Value deviation depends on the current Q_i, so P~ is recomputed at every
sweep: the non-stationary operator of Theorem 1. The max runs over the actions the agent's data
holds at s' (batch-constrained, as in BCQ); states without data are worth 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mabcq.tabular.game import TabularMDP, rollout_return
from mabcq.tabular.transitions import (
    PAPER_OPTIONS,
    AgentView,
    ModifiedTransition,
    WeightOptions,
    modify,
)


@dataclass(frozen=True)
class AgentSolution:
    """One agent's fixed point.

    q: float [S, A_i] (0 where unsupported); values: float [S], V_i(s) = max over supported a_i;
    greedy: int [S], argmax over supported actions (lowest index on ties; 0 without data);
    modified: the P~ and weights of the last sweep, so q = P~ . y(previous sweep).
    """

    q: np.ndarray
    values: np.ndarray
    greedy: np.ndarray
    modified: ModifiedTransition
    iterations: int
    residual: float
    converged: bool


@dataclass(frozen=True)
class Theorem1Check:
    """Theorem 1: with rewards in [r_min, r_max], r_min > 0, the operator with the modified
    transition contracts when gamma < r_min / (2 r_max - r_min).

    bootstraps: some transition reaches a non-terminal state; if none does (a one-step game),
    gamma never enters the backup and the operator converges in one sweep whatever gamma is.
    """

    gamma: float
    r_min: float
    r_max: float
    bound: float | None
    rewards_positive: bool
    holds: bool
    bootstraps: bool

    def warning(self) -> str | None:
        """A one-line warning when the theorem does not cover this problem, else None."""
        if not self.rewards_positive:
            return (
                f"Theorem 1 needs positive rewards but they span [{self.r_min:g}, "
                f"{self.r_max:g}]: value deviation may give negative weights; shift the rewards "
                "up (a positive affine transform keeps the optimal policy)"
            )
        if self.bootstraps and not self.holds:
            return (
                f"Theorem 1 condition fails: gamma = {self.gamma:g} is not below "
                f"r_min / (2 r_max - r_min) = {self.bound:.4g} for rewards in "
                f"[{self.r_min:g}, {self.r_max:g}]; convergence is not guaranteed"
            )
        return None


def theorem1_condition(mdp: TabularMDP, gamma: float) -> Theorem1Check:
    """Check Theorem 1 on the rewards that transitions can pay (R of every possible s')."""
    flat_next = mdp.next_state[~mdp.terminal].reshape(-1)
    arrivals = np.unique(flat_next)
    rewards = mdp.reward[arrivals] if arrivals.size else np.zeros(1)
    r_min, r_max = float(rewards.min()), float(rewards.max())
    positive = r_min > 0
    bound = r_min / (2.0 * r_max - r_min) if positive else None
    holds = positive and gamma < bound
    bootstraps = bool((~mdp.terminal[arrivals]).any()) if arrivals.size else False
    return Theorem1Check(gamma, r_min, r_max, bound, positive, bool(holds), bootstraps)


def _state_values(view: AgentView, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """V_i [S] (max over supported actions, 0 without data) and the greedy actions [S]."""
    masked = np.where(view.support, q, -np.inf)
    greedy = np.argmax(masked, axis=1)
    values = np.where(view.support.any(axis=1), masked.max(axis=1, initial=-np.inf), 0.0)
    return values, np.where(view.support.any(axis=1), greedy, 0)


def next_state_values(view: AgentView, values: np.ndarray, gamma: float) -> np.ndarray:
    """y(s') = R(s') + gamma V_i(s'), V_i(s') = 0 at terminals, float [S]."""
    return view.reward + gamma * np.where(view.terminal, 0.0, values)


def q_iteration(
    view: AgentView,
    method: str,
    gamma: float,
    eps: float | None = None,
    tol: float = 1e-10,
    max_iterations: int = 10_000,
    q_init: float = 0.0,
    options: WeightOptions = PAPER_OPTIONS,
) -> AgentSolution:
    """Iterate Q_i <- T Q_i on one agent's own view until the sup-norm change is <= tol.
    options: the estimator's options (transitions.WeightOptions; default: the paper's)."""
    q = np.where(view.support, q_init, 0.0)
    residual, iterations = np.inf, 0
    modified = modify(view, next_state_values(view, _state_values(view, q)[0], gamma), method, eps,
                      options)
    while iterations < max_iterations:
        values, _ = _state_values(view, q)
        next_values = next_state_values(view, values, gamma)
        modified = modify(view, next_values, method, eps, options)
        new_q = np.where(view.support, modified.probabilities @ next_values, 0.0)
        residual = float(np.max(np.abs(new_q - q), initial=0.0))
        q, iterations = new_q, iterations + 1
        if residual <= tol:
            break
    values, greedy = _state_values(view, q)
    return AgentSolution(q, values, greedy, modified, iterations, residual, residual <= tol)


@dataclass(frozen=True)
class JointOutcome:
    """What the decentralized greedy policies do together in the true MDP."""

    joint_action: tuple[int, ...]  # at the start state
    value: float  # discounted return from the start
    visited: list[int]
    optimal_value: float


def joint_outcome(
    mdp: TabularMDP, solutions: tuple[AgentSolution, ...], gamma: float, optimal_value: float
) -> JointOutcome:
    """Execute every agent's greedy policy at once in the true MDP (decentralized execution)."""
    policy = [solution.greedy for solution in solutions]
    value, visited = rollout_return(mdp, policy, gamma)
    joint = tuple(int(solution.greedy[mdp.start]) for solution in solutions)
    return JointOutcome(joint, value, visited, optimal_value)


def value_gap(solutions: tuple[AgentSolution, ...], states: list[int] | np.ndarray) -> np.ndarray:
    """max_i V_i(s) - min_i V_i(s) at each given state, float [len(states)] (Figure 3's measure)."""
    values = np.stack([solution.values[np.asarray(states)] for solution in solutions])
    return values.max(axis=0) - values.min(axis=0)


def same_transitions_at_learned_actions(
    views: tuple[AgentView, ...],
    solutions: tuple[AgentSolution, ...],
    state: int,
    normalized: bool,
    atol: float = 1e-12,
) -> bool:
    """Proposition 1's premise at `state`: every agent's (normalized, if asked) transition at its
    learned action is the same distribution over next states."""
    rows = []
    for view, solution in zip(views, solutions, strict=True):
        row = view.transition[state, solution.greedy[state]]
        if normalized:
            observed = row > 0
            row = np.where(observed, 1.0 / max(int(observed.sum()), 1), 0.0)
        rows.append(row)
    return all(np.allclose(rows[0], row, atol=atol, rtol=0.0) for row in rows[1:])
