"""Multi-step finite MDPs: Proposition 1 (equal normalized transitions at the learned actions
give every agent the same V*), Theorem 1's condition, and Q-iteration to convergence."""

from __future__ import annotations

import numpy as np
import pytest

from mabcq.tabular.datasets import estimate_view, exact_views, sample_datasets
from mabcq.tabular.game import (
    TabularMDP,
    optimal_values,
    paper_game,
    reachable_states,
    staged_game,
)
from mabcq.tabular.qiteration import (
    joint_outcome,
    next_state_values,
    q_iteration,
    same_transitions_at_learned_actions,
    theorem1_condition,
    value_gap,
)
from mabcq.tabular.transitions import modify

GAMMA = 0.9


def solve(views, method: str, gamma: float = GAMMA):
    """Each agent alone on its own view: the decentralized learners."""
    return tuple(q_iteration(view, method, gamma) for view in views)


@pytest.fixture(scope="module")
def two_stage():
    mdp, behavior = staged_game(paper_game(), stages=2)
    decision_states = np.flatnonzero(reachable_states(mdp, behavior) & ~mdp.terminal)
    return mdp, behavior, decision_states


def test_staged_game_structure(two_stage) -> None:
    mdp, _, decision_states = two_stage
    assert mdp.num_states == 1 + 3 + 9  # start, 3 payoffs, 3 x 3 payoff pairs
    assert decision_states.tolist() == [0, 1, 2, 3]
    assert mdp.label(int(mdp.next_state[0, 1, 0])) == "6"
    assert mdp.label(int(mdp.next_state[mdp.next_state[0, 0, 1], 1, 0])) == "5>6"
    assert optimal_values(mdp, GAMMA)[0] == pytest.approx(6 + GAMMA * 6)


@pytest.mark.parametrize("method", ["tn", "tn_vd"])
def test_proposition1_normalized_transitions_give_equal_values(two_stage, method: str) -> None:
    mdp, behavior, decision_states = two_stage
    views = exact_views(mdp, behavior)
    solutions = solve(views, method)
    for state in decision_states:  # the premise holds at every decision state ...
        assert same_transitions_at_learned_actions(views, solutions, state, normalized=True)
    np.testing.assert_allclose(value_gap(solutions, decision_states), 0.0, atol=1e-12)  # ... so
    outcome = joint_outcome(mdp, solutions, GAMMA, optimal_values(mdp, GAMMA)[0])
    assert outcome.joint_action == (1, 0)
    assert outcome.value == pytest.approx(outcome.optimal_value)


@pytest.mark.parametrize("method", ["dataset", "vd"])
def test_control_without_tn_the_values_differ(two_stage, method: str) -> None:
    mdp, behavior, decision_states = two_stage
    views = exact_views(mdp, behavior)
    solutions = solve(views, method)
    assert not same_transitions_at_learned_actions(views, solutions, 0, normalized=False)
    assert value_gap(solutions, [0])[0] > 0.1
    outcome = joint_outcome(mdp, solutions, GAMMA, optimal_values(mdp, GAMMA)[0])
    assert outcome.value < outcome.optimal_value - 1.0


def test_proposition1_with_sampled_datasets(two_stage) -> None:
    mdp, behavior, decision_states = two_stage
    datasets = sample_datasets(mdp, behavior, episodes=3000, seed=0)
    views = tuple(
        estimate_view(data, mdp.num_states, count)
        for data, count in zip(datasets, mdp.action_counts, strict=True)
    )
    normalized = solve(views, "tn_vd")
    for state in decision_states:
        assert same_transitions_at_learned_actions(views, normalized, state, normalized=True)
    np.testing.assert_allclose(value_gap(normalized, decision_states), 0.0, atol=1e-12)
    plain = solve(views, "dataset")
    assert value_gap(plain, [0])[0] > 0.1


def test_proposition1_premise_can_fail_and_then_values_may_differ() -> None:
    """Agents whose learned actions see different next-state sets get no guarantee."""
    payoff = np.array([[4.0, 2.0], [3.0, 3.0]])
    game = paper_game().__class__(payoff, (np.array([0.5, 0.5]), np.array([0.5, 0.5])))
    mdp, behavior = staged_game(game, stages=1)
    views = exact_views(mdp, behavior)
    solutions = solve(views, "tn")
    # agent 1 learns a1 -> {4, 2}; agent 2 learns a1 -> {4, 3}
    assert not same_transitions_at_learned_actions(views, solutions, 0, normalized=True)
    assert value_gap(solutions, [0])[0] == pytest.approx(0.5)


def shifted_two_stage(offset: float):
    return staged_game(paper_game(), stages=2, reward_offset=offset)


def test_theorem1_condition_holds_and_fails() -> None:
    mdp, _ = shifted_two_stage(49.0)  # rewards in [50, 55]: bound 50 / 60
    holds = theorem1_condition(mdp, gamma=0.8)
    assert holds.r_min == 50.0 and holds.r_max == 55.0
    assert holds.bound == pytest.approx(50 / 60)
    assert holds.holds and holds.bootstraps and holds.warning() is None
    fails = theorem1_condition(mdp, gamma=0.9)
    assert not fails.holds
    assert "Theorem 1 condition fails" in fails.warning()
    unshifted, _ = shifted_two_stage(0.0)
    assert not theorem1_condition(unshifted, gamma=0.5).holds  # 1 / 11 < 0.5


def test_theorem1_needs_positive_rewards_and_one_step_never_bootstraps() -> None:
    mdp, _ = shifted_two_stage(-1.0)  # rewards in [0, 5]
    check = theorem1_condition(mdp, gamma=0.01)
    assert not check.rewards_positive and not check.holds
    assert "positive rewards" in check.warning()
    one_step, _ = staged_game(paper_game(), stages=1)
    check = theorem1_condition(one_step, gamma=0.99)
    assert not check.holds and not check.bootstraps and check.warning() is None


def test_failing_condition_is_a_warning_the_solver_still_runs() -> None:
    mdp, behavior = shifted_two_stage(0.0)
    assert theorem1_condition(mdp, 0.99).warning() is not None
    solutions = solve(exact_views(mdp, behavior), "tn_vd", gamma=0.99)
    assert all(solution.converged for solution in solutions)


def cyclic_mdp(stay_reward: float = 1.0) -> tuple[TabularMDP, tuple[np.ndarray, ...]]:
    """Two agents, states {0, 1} that loop, and a terminal exit 2. Coordinating on (a2, a2)
    moves 0 -> 1 (reward 1.2); anything else stays in 0 (reward stay_reward); at 1, agreeing
    exits (reward 1.1), disagreeing returns to 0 (reward 1.0)."""
    next_state = np.zeros((3, 2, 2), dtype=np.int64)
    next_state[0, 1, 1] = 1
    next_state[1] = [[2, 0], [0, 2]]
    reward = np.array([stay_reward, 1.2, 1.1])
    terminal = np.array([False, False, True])
    mdp = TabularMDP(next_state, reward, terminal, start=0, horizon=200)
    behavior = (np.tile([0.6, 0.4], (3, 1)), np.tile([0.3, 0.7], (3, 1)))
    return mdp, behavior


@pytest.mark.parametrize("method", ["dataset", "vd", "tn", "tn_vd"])
def test_q_iteration_converges_to_a_unique_fixed_point_on_a_cycle(method: str) -> None:
    mdp, behavior = cyclic_mdp()
    gamma = 0.5
    check = theorem1_condition(mdp, gamma)
    assert check.holds and check.bootstraps  # rewards in [1, 1.2]: bound 1 / 1.4
    for view in exact_views(mdp, behavior):
        from_zero = q_iteration(view, method, gamma, tol=1e-12)
        from_high = q_iteration(view, method, gamma, tol=1e-12, q_init=50.0)
        assert from_zero.converged and from_high.converged
        assert from_zero.iterations > 10  # a real fixed point, not one sweep
        np.testing.assert_allclose(from_zero.q, from_high.q, atol=1e-9)
        # it is a fixed point of the (non-stationary) operator: T Q = Q
        next_values = next_state_values(view, from_zero.values, gamma)
        modified = modify(view, next_values, method)
        again = np.where(view.support, modified.probabilities @ next_values, 0.0)
        np.testing.assert_allclose(again, from_zero.q, atol=1e-10)


def test_max_iterations_reports_not_converged() -> None:
    mdp, behavior = cyclic_mdp()
    solution = q_iteration(exact_views(mdp, behavior)[0], "tn_vd", 0.5, max_iterations=3)
    assert solution.iterations == 3 and not solution.converged and solution.residual > 1e-10
