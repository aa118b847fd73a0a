"""The paper's Tables 2-4 for any one-step game: per agent and action, the (modified) transition
over payoffs and the expected return, then the joint action the agents learn and its payoff.

build_game_report computes everything at full precision into a JSON-ready dict; render_text
rounds only for display.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mabcq.errors import UserError
from mabcq.tabular.datasets import estimate_view, exact_views, sample_datasets
from mabcq.tabular.game import (
    OneStepGame,
    TabularMDP,
    game_to_mdp,
    joint_actions,
    optimal_values,
    reachable_states,
    staged_game,
)
from mabcq.tabular.qiteration import (
    AgentSolution,
    joint_outcome,
    q_iteration,
    theorem1_condition,
    value_gap,
)
from mabcq.tabular.transitions import PAPER_OPTIONS, AgentView, WeightOptions

# Views are dense [S, A_i, S] arrays; this keeps one under ~100 MB for a few actions.
MAX_STATES = 2000

METHOD_TITLES: dict[str, str] = {
    "dataset": "dataset, no weights: plain independent Q-learning (BCQ) (paper Table 2)",
    "vd": "lambda_vd only (paper Table 3)",
    "tn": "lambda_tn only",
    "tn_vd": "lambda_tn + lambda_vd: MABCQ (paper Table 4)",
}


def _agent_views(
    game: OneStepGame, samples: int | None, seed: int, stages: int
) -> tuple[TabularMDP, tuple[np.ndarray, ...], tuple[AgentView, ...]]:
    distinct = len(np.unique(game.payoff))
    num_states = sum(distinct**stage for stage in range(stages + 1))
    if num_states > MAX_STATES:
        raise UserError(
            f"--stages {stages} with {distinct} distinct payoffs makes {num_states} states; the "
            f"dense tabular engine takes at most {MAX_STATES}: use fewer stages"
        )
    mdp, behavior = game_to_mdp(game) if stages == 1 else staged_game(game, stages)
    if samples is None:
        return mdp, behavior, exact_views(mdp, behavior)
    datasets = sample_datasets(mdp, behavior, samples, seed)
    views = tuple(
        estimate_view(data, mdp.num_states, count)
        for data, count in zip(datasets, mdp.action_counts, strict=True)
    )
    return mdp, behavior, views


def _check_data(views: tuple[AgentView, ...], samples: int | None, seed: int) -> None:
    """Every action of every agent needs data at the start state to be reported."""
    for agent, view in enumerate(views, start=1):
        for action in np.flatnonzero(~view.support[0]):
            if samples is None:
                raise UserError(
                    f"agent {agent} action a{action + 1} has behavior probability 0, so its "
                    "dataset holds no (s, a_i) pair for it; give it a positive probability"
                )
            raise UserError(
                f"agent {agent} action a{action + 1} has no data in the sampled dataset "
                f"({samples} joint plays, seed {seed}); use more --samples or drop --samples "
                "for exact expectations"
            )


def _next_state_order(mdp: TabularMDP, agent: int, action: int) -> list[int]:
    """Next states of (start, a_i) in order of first appearance over the others' actions."""
    order: list[int] = []
    for joint in joint_actions(mdp.action_counts):
        if joint[agent] == action:
            state = int(mdp.next_state[(0, *joint)])
            if state not in order:
                order.append(state)
    return order


def _method_report(
    game: OneStepGame,
    mdp: TabularMDP,
    views: tuple[AgentView, ...],
    solutions: tuple[AgentSolution, ...],
    gamma: float,
    decision_states: np.ndarray,
) -> dict[str, Any]:
    agents = []
    for agent, (view, solution) in enumerate(zip(views, solutions, strict=True)):
        actions = []
        for action in range(view.num_actions):
            order = _next_state_order(mdp, agent, action)
            observed = [s for s in order if view.transition[0, action, s] > 0]
            probabilities = solution.modified.probabilities[0, action]
            actions.append(
                {
                    "next": {mdp.label(s): float(probabilities[s]) for s in observed},
                    "expected": float(solution.q[0, action]),
                }
            )
        agents.append(actions)
    outcome = joint_outcome(mdp, solutions, gamma, optimal_value=float("nan"))
    joint = outcome.joint_action
    return {
        "agents": agents,
        "joint_action": list(joint),
        "payoff": float(game.payoff[joint]),
        "return": outcome.value,
        "path": [mdp.label(state) for state in outcome.visited],
        "values": [float(solution.values[0]) for solution in solutions],
        "value_gap": float(value_gap(solutions, decision_states).max()),
        "iterations": [solution.iterations for solution in solutions],
        "residual": [solution.residual for solution in solutions],
        "converged": [solution.converged for solution in solutions],
    }


def build_game_report(
    game: OneStepGame,
    methods: list[str],
    gamma: float = 0.99,
    eps: float | None = None,
    samples: int | None = None,
    seed: int = 0,
    tol: float = 1e-10,
    max_iterations: int = 10_000,
    stages: int = 1,
    options: WeightOptions = PAPER_OPTIONS,
) -> dict[str, Any]:
    """Tables 2-4 (and lambda_tn alone) as one JSON-ready dict, full precision.

    options: the estimator's options (transitions.WeightOptions); any that differ from the
    paper's reading are listed under game.options.

    samples: None for exact expectations (infinite data), else that many episodes from seed
    (an episode of a one-step game is one joint play).
    stages: play the game that many times in a row (a multi-step MDP, game.staged_game); the
    tables are then those of the first stage, with expected returns over all stages.
    Keys: game, theorem1, warnings, then one key per method (docs/matrix.md, "JSON output").
    """
    mdp, behavior, views = _agent_views(game, samples, seed, stages)
    decision_states = np.flatnonzero(reachable_states(mdp, behavior) & ~mdp.terminal)
    _check_data(views, samples, seed)
    check = theorem1_condition(mdp, gamma)
    warnings = [check.warning()] if check.warning() else []
    report: dict[str, Any] = {
        "game": {
            "payoff": game.payoff.tolist(),
            "behavior": [p.tolist() for p in game.behavior],
            "agents": game.num_agents,
            "actions": list(game.action_counts),
            "data": "exact" if samples is None else "sampled",
            "samples": samples,
            "seed": None if samples is None else seed,
            "gamma": gamma,
            "eps": eps,
            "stages": stages,
            "optimal_payoff": float(game.payoff.max()),
            "optimal_return": float(optimal_values(mdp, gamma)[0]),
            **({"options": options.changed()} if options.changed() else {}),
        },
        "theorem1": {
            "gamma": check.gamma,
            "r_min": check.r_min,
            "r_max": check.r_max,
            "bound": check.bound,
            "rewards_positive": check.rewards_positive,
            "holds": check.holds,
            "bootstraps": check.bootstraps,
        },
    }
    for method in methods:
        solutions = tuple(
            q_iteration(view, method, gamma, eps, tol=tol, max_iterations=max_iterations,
                        options=options)
            for view in views
        )
        report[method] = _method_report(game, mdp, views, solutions, gamma, decision_states)
        for agent, solution in enumerate(solutions, start=1):
            if solution.modified.degenerate[0].any():
                warnings.append(
                    f"{method}: agent {agent}: |E[y]| ~ 0 for some action, so value deviation "
                    "is undefined there and was left out (lambda_vd = 1)"
                )
            if (solution.modified.probabilities[0] < 0).any():
                warnings.append(
                    f"{method}: agent {agent}: the modified transition has negative entries "
                    "(value deviation on non-positive values), so its numbers are not "
                    "probabilities; shift the payoffs above 0 or clip with --eps <= 1"
                )
            if not solution.converged:
                warnings.append(
                    f"{method}: agent {agent}: Q-iteration stopped after {solution.iterations} "
                    f"sweeps with residual {solution.residual:.3g} (not converged)"
                )
    report["warnings"] = warnings
    return report


def _payoff_lines(report: dict[str, Any], decimals: int) -> list[str]:
    game = report["game"]
    payoff = np.array(game["payoff"])
    behavior = game["behavior"]

    def cell(value: float) -> str:
        return f"{value:g}"

    if payoff.ndim == 2:
        columns = [f"a{k + 1} ({p:g})" for k, p in enumerate(behavior[1])]
        rows = [f"a{k + 1} ({p:g})" for k, p in enumerate(behavior[0])]
        width = max(len(text) for text in columns + rows + [cell(v) for v in payoff.ravel()])
        lines = ["Payoff (rows: agent 1, columns: agent 2; behavior probabilities in brackets):"]
        lines.append(" " * (width + 4) + "  ".join(c.rjust(width) for c in columns))
        for row_name, row in zip(rows, payoff, strict=True):
            lines.append(
                "  " + row_name.ljust(width + 2) + "  ".join(cell(v).rjust(width) for v in row)
            )
        return lines
    lines = ["Payoff per joint action:"]
    for joint in joint_actions(tuple(payoff.shape)):
        names = ", ".join(f"a{a + 1}" for a in joint)
        lines.append(f"  ({names}) = {cell(payoff[joint])}")
    for agent, probs in enumerate(behavior, start=1):
        lines.append(f"  behavior of agent {agent}: " + ", ".join(f"{p:g}" for p in probs))
    return lines


def render_text(report: dict[str, Any], methods: list[str], decimals: int = 2) -> str:
    """Human-readable tables; numbers rounded to `decimals` (display only)."""
    game = report["game"]
    data = (
        "exact expectations (infinite data)"
        if game["data"] == "exact"
        else f"sampled dataset of {game['samples']} joint plays (seed {game['seed']})"
    )
    clip = "no clip" if game["eps"] is None else f"lambda_vd clipped to 1 +- {game['eps']:g}"
    shape = " x ".join(str(n) for n in game["actions"])
    stages = (
        "" if game["stages"] == 1 else f"; played {game['stages']} times, gamma {game['gamma']:g}"
    )
    options = "".join(f"; {name} {value}" for name, value in game.get("options", {}).items())
    lines = [f"Game: {game['agents']} agents, actions {shape}; {data}; {clip}{stages}{options}"]
    lines += _payoff_lines(report, decimals)
    for method in methods:
        result = report[method]
        lines += ["", METHOD_TITLES[method]]
        rows = []
        for agent, actions in enumerate(result["agents"], start=1):
            for action, entry in enumerate(actions, start=1):
                transition = "  ".join(
                    f"p({key}|a{action})={prob:.{decimals}f}" for key, prob in entry["next"].items()
                )
                name = f"{agent}" if action == 1 else ""
                rows.append((name, f"a{action}", transition, f"{entry['expected']:.{decimals}f}"))
        width = max(len("transition"), *(len(row[2]) for row in rows))
        lines.append(f"  {'agent':<6} {'action':<7} {'transition':<{width}}  expected return")
        for name, action_name, transition, expected in rows:
            lines.append(f"  {name:<6} {action_name:<7} {transition:<{width}}  {expected}")
        joint = ", ".join(f"a{a + 1}" for a in result["joint_action"])
        optimal = result["payoff"] >= game["optimal_payoff"]
        values = ", ".join(
            f"V{agent} = {value:.{decimals}f}" for agent, value in enumerate(result["values"], 1)
        )
        lines.append(
            f"  learned joint action ({joint}): payoff {result['payoff']:g}"
            + (" (optimal)" if optimal else f" (optimal {game['optimal_payoff']:g})")
            + f"; values {values}"
        )
        sweeps = ", ".join(str(n) for n in result["iterations"])
        residual = max(result["residual"])
        lines.append(f"  Q-iteration sweeps per agent: {sweeps}; largest residual {residual:.1e}")
        if game["stages"] > 1:
            path = " -> ".join(result["path"])
            reached = result["return"] >= game["optimal_return"] - 1e-9
            lines.append(
                f"  greedy path {path}: return {result['return']:.{decimals}f}"
                + (" (optimal)" if reached else f" (optimal {game['optimal_return']:.{decimals}f})")
                + f"; largest value gap between agents {result['value_gap']:.{decimals}f}"
            )
    check = report["theorem1"]
    if check["rewards_positive"]:
        bound = f"r_min / (2 r_max - r_min) = {check['bound']:.4g}"
        verdict = "holds" if check["holds"] else "does not hold"
        lines += ["", f"Theorem 1: gamma = {check['gamma']:g} vs {bound}: {verdict}"]
        if not check["bootstraps"]:
            lines.append("  not needed here: every next state is terminal, so gamma never enters")
            lines.append("  the backup and the first sweep is already the fixed point")
    return "\n".join(lines)
