"""The tabular engine's parts: weighted transitions, per-agent views, and an N = 3 game."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mabcq.tabular.datasets import estimate_view, exact_views, sample_datasets
from mabcq.tabular.game import OneStepGame, game_to_mdp, paper_game
from mabcq.tabular.qiteration import q_iteration
from mabcq.tabular.tables import build_game_report
from mabcq.tabular.transitions import METHODS, AgentView, canonical_method, modify


def one_state_view(probabilities: list[float], rewards: list[float]) -> AgentView:
    """One start state, one action, terminal next states 1..K with the given rewards."""
    num_states = len(probabilities) + 1
    transition = np.zeros((num_states, 1, num_states))
    transition[0, 0, 1:] = probabilities
    support = np.zeros((num_states, 1), dtype=bool)
    support[0, 0] = sum(probabilities) > 0
    terminal = np.ones(num_states, dtype=bool)
    terminal[0] = False
    return AgentView(transition, support, np.array([0.0, *rewards]), terminal)


def test_tn_makes_the_view_uniform_over_observed_next_states() -> None:
    view = one_state_view([0.7, 0.0, 0.2, 0.1], [1.0, 2.0, 3.0, 4.0])
    result = modify(view, view.reward, "tn")
    np.testing.assert_allclose(result.probabilities[0, 0], [0, 1 / 3, 0, 1 / 3, 1 / 3])
    # lambda_tn = 1 / (P z_tn) on the observed next states
    np.testing.assert_allclose(result.lambda_tn[0, 0, [1, 3, 4]], [1 / 2.1, 1 / 0.6, 1 / 0.3])


def test_vd_follows_the_formula_and_is_proportional_to_value_when_e_positive() -> None:
    view = one_state_view([0.5, 0.3, 0.2], [1.0, 2.0, 7.0])
    values = view.reward
    expected = 0.5 * 1 + 0.3 * 2 + 0.2 * 7
    result = modify(view, values, "vd")
    np.testing.assert_allclose(result.lambda_vd[0, 0, 1:], 1 + (values[1:] - expected) / expected)
    proportional = np.array([0.5 * 1, 0.3 * 2, 0.2 * 7]) / expected
    np.testing.assert_allclose(result.probabilities[0, 0, 1:], proportional)


def test_vd_with_a_negative_expectation_uses_its_absolute_value() -> None:
    view = one_state_view([0.5, 0.5], [-1.0, -3.0])
    result = modify(view, view.reward, "vd")
    # E = -2, |E| = 2: lambda = 1 + (y - E) / 2 -> [1.5, 0.5]: the better next state gains.
    np.testing.assert_allclose(result.lambda_vd[0, 0, 1:], [1.5, 0.5])
    np.testing.assert_allclose(result.probabilities[0, 0, 1:], [0.75, 0.25])


def test_clip_bounds_lambda_vd_and_eps_zero_leaves_the_dataset() -> None:
    view = one_state_view([0.5, 0.3, 0.2], [1.0, 2.0, 9.0])
    clipped = modify(view, view.reward, "vd", eps=0.5)
    observed = clipped.lambda_vd[0, 0, 1:]
    assert observed.min() >= 0.5 and observed.max() <= 1.5
    assert observed.max() == pytest.approx(1.5) and observed.min() == pytest.approx(0.5)
    assert clipped.probabilities[0, 0].sum() == pytest.approx(1.0)
    plain = modify(view, view.reward, "dataset")
    none_clip = modify(view, view.reward, "vd", eps=0.0)
    np.testing.assert_allclose(none_clip.probabilities, plain.probabilities)


def test_zero_expected_value_is_flagged_not_nan() -> None:
    view = one_state_view([0.5, 0.5], [-1.0, 1.0])
    result = modify(view, view.reward, "vd")
    assert result.degenerate[0, 0]
    assert np.isfinite(result.probabilities).all()
    np.testing.assert_allclose(result.probabilities[0, 0, 1:], [0.5, 0.5])
    solution = q_iteration(view, "tn_vd", gamma=0.9)
    assert solution.modified.degenerate[0, 0] and np.isfinite(solution.q).all()


def test_method_names_and_aliases() -> None:
    assert [canonical_method(m) for m in METHODS] == list(METHODS)
    assert canonical_method("none") == "dataset"
    assert canonical_method("TN+VD") == "tn_vd"
    assert canonical_method("cql") is None
    with pytest.raises(ValueError, match="unknown method"):
        modify(one_state_view([1.0], [1.0]), np.zeros(2), "cql")


def test_estimated_view_uses_only_the_agents_own_columns() -> None:
    mdp, behavior = game_to_mdp(paper_game())
    datasets = sample_datasets(mdp, behavior, 2000, seed=0)
    view = estimate_view(datasets[0], mdp.num_states, 2)
    counts = np.zeros((2, mdp.num_states))
    np.add.at(counts, (datasets[0].actions, datasets[0].next_states), 1.0)
    np.testing.assert_allclose(view.transition[0], counts / counts.sum(axis=1, keepdims=True))
    # Agent 1's own actions are drawn at its behavior's rate; rewards are the payoffs reached.
    assert abs(np.mean(datasets[0].actions == 0) - 0.8) < 0.03
    np.testing.assert_allclose(datasets[0].rewards, mdp.reward[datasets[0].next_states])
    assert datasets[0].dones.all() and len(datasets[0]) == 2000
    # Both agents log the same plays, each with only its own action.
    np.testing.assert_array_equal(datasets[0].next_states, datasets[1].next_states)


def test_exact_view_has_no_data_for_a_zero_probability_action() -> None:
    game = OneStepGame(paper_game().payoff, (np.array([1.0, 0.0]), np.array([0.4, 0.6])))
    mdp, behavior = game_to_mdp(game)
    views = exact_views(mdp, behavior)
    assert views[0].support[0].tolist() == [True, False]
    # Agent 2 never sees agent 1's a2, so payoff 6 is absent from its view.
    np.testing.assert_allclose(views[1].transition[0, 0, mdp.state_labels.index("6")], 0.0)


THREE_AGENT_BEHAVIOR = (np.array([0.8, 0.2]), np.array([0.7, 0.3]), np.array([0.9, 0.1]))


def three_agent_game() -> OneStepGame:
    """Everyone on a1 pays 5, everyone on a2 pays 10 (optimal), one deviator pays 1, else 2."""
    payoff = np.full((2, 2, 2), 2.0)
    payoff[0, 0, 0], payoff[1, 1, 1] = 5.0, 10.0
    payoff[1, 0, 0] = payoff[0, 1, 0] = payoff[0, 0, 1] = 1.0
    return OneStepGame(payoff, THREE_AGENT_BEHAVIOR)


def test_three_agent_dataset_table_matches_a_brute_force_expectation() -> None:
    game = three_agent_game()
    report = build_game_report(game, ["dataset", "tn"])
    for agent in range(3):
        for action in range(2):
            expected, reached = 0.0, set()
            for joint in itertools.product(range(2), repeat=3):
                if joint[agent] != action:
                    continue
                others = [THREE_AGENT_BEHAVIOR[j][a] for j, a in enumerate(joint) if j != agent]
                weight = np.prod(others)
                expected += weight * game.payoff[joint]
                reached.add(f"{game.payoff[joint]:g}")
            entry = report["dataset"]["agents"][agent][action]
            assert entry["expected"] == pytest.approx(expected, abs=1e-12)
            assert set(entry["next"]) == reached
            mean = np.mean([float(k) for k in reached])
            assert report["tn"]["agents"][agent][action]["expected"] == pytest.approx(mean)


def test_three_agent_game_mabcq_finds_the_hidden_optimum() -> None:
    report = build_game_report(three_agent_game(), list(METHODS))
    assert report["dataset"]["joint_action"] == [0, 0, 0]
    assert report["dataset"]["payoff"] == 5.0
    assert report["vd"]["joint_action"] == [0, 0, 0]
    assert report["tn_vd"]["joint_action"] == [1, 1, 1]
    assert report["tn_vd"]["payoff"] == report["game"]["optimal_payoff"] == 10.0
    values = report["tn_vd"]["values"]
    assert max(values) - min(values) < 1e-12
    assert values[0] == pytest.approx(105 / 13)  # P~ proportional to payoff over {1, 2, 10}
    assert max(report["dataset"]["values"]) - min(report["dataset"]["values"]) > 0.1


def test_three_agent_sampled_dataset_is_close_to_exact() -> None:
    exact = build_game_report(three_agent_game(), ["tn_vd", "dataset"])
    sampled = build_game_report(three_agent_game(), ["tn_vd", "dataset"], samples=50_000, seed=1)
    for method in ("tn_vd", "dataset"):
        for agent in range(3):
            for action in range(2):
                gap = abs(
                    sampled[method]["agents"][agent][action]["expected"]
                    - exact[method]["agents"][agent][action]["expected"]
                )
                assert gap < 0.15
    assert sampled["tn_vd"]["joint_action"] == [1, 1, 1]
