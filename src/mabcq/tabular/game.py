"""Finite cooperative problems solved exactly: a deterministic multi-step MDP, and the one-step
game (a payoff tensor) written as such an MDP.

The paper (section 3.1) assumes a deterministic environment with the shared reward on states,
r = R(s); a transition s -> s' pays R(s'). A one-step game is the MDP with one start state whose
next states are terminal and carry the payoff; two joint actions with the same payoff reach the
same next state, as in the paper's Tables 2-4 (agent 1's a1 leads to payoff 1 via (a1, a1), and
(a2, a2) also pays 1).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TabularMDP:
    """A deterministic finite MDP shared by N agents.

    next_state: int [S, A_1, ..., A_N], the state reached by each joint action (rows of terminal
        states are never used).
    reward: float [S], R(s') paid on arriving in s'.
    terminal: bool [S]; episodes end on arrival.
    start: the state every episode starts from.
    horizon: most steps of one episode (a cap for rollouts through cycles).
    state_labels: one name per state, for tables.
    """

    next_state: np.ndarray
    reward: np.ndarray
    terminal: np.ndarray
    start: int = 0
    horizon: int = 100
    state_labels: tuple[str, ...] = ()

    @property
    def num_states(self) -> int:
        return int(self.reward.shape[0])

    @property
    def action_counts(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.next_state.shape[1:])

    @property
    def num_agents(self) -> int:
        return len(self.action_counts)

    def label(self, state: int) -> str:
        return self.state_labels[state] if self.state_labels else f"s{state}"


@dataclass(frozen=True)
class OneStepGame:
    """A cooperative one-step game: payoff [A_1, ..., A_N] and a behavior policy per agent."""

    payoff: np.ndarray
    behavior: tuple[np.ndarray, ...]

    @property
    def action_counts(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.payoff.shape)

    @property
    def num_agents(self) -> int:
        return self.payoff.ndim


def paper_game() -> OneStepGame:
    """The matrix game of the paper's Table 1 with its behavior policies [0.8, 0.2], [0.4, 0.6]."""
    payoff = np.array([[1.0, 5.0], [6.0, 1.0]])
    return OneStepGame(payoff, (np.array([0.8, 0.2]), np.array([0.4, 0.6])))


def format_payoff(value: float) -> str:
    """The key of a payoff-valued next state: "5" for integers, repr otherwise ("0.5")."""
    value = float(value)
    if value.is_integer():
        return str(int(value))
    return repr(value)


def game_to_mdp(game: OneStepGame) -> tuple[TabularMDP, tuple[np.ndarray, ...]]:
    """The one-step game as an MDP: state 0 is the start, then one terminal state per distinct
    payoff value (ordered by first appearance in row-major joint-action order).

    Returns the MDP and the behavior policies as [S, A_i] arrays (uniform on terminal rows,
    which are never used).
    """
    distinct: dict[float, int] = {}
    for value in game.payoff.ravel():
        distinct.setdefault(float(value), len(distinct) + 1)
    num_states = len(distinct) + 1
    next_state = np.zeros((num_states, *game.action_counts), dtype=np.int64)
    next_state[0] = np.vectorize(lambda v: distinct[float(v)])(game.payoff)
    reward = np.zeros(num_states)
    terminal = np.ones(num_states, dtype=bool)
    terminal[0] = False
    for value, state in distinct.items():
        reward[state] = value
    labels = ("start", *(format_payoff(value) for value in distinct))
    mdp = TabularMDP(next_state, reward, terminal, start=0, horizon=1, state_labels=labels)
    behavior = []
    for probs in game.behavior:
        table = np.full((num_states, probs.shape[0]), 1.0 / probs.shape[0])
        table[0] = probs
        behavior.append(table)
    return mdp, tuple(behavior)


def joint_actions(action_counts: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Every joint action in row-major order (agent 1's action varies slowest)."""
    return list(itertools.product(*(range(n) for n in action_counts)))


def reachable_states(mdp: TabularMDP, behavior: tuple[np.ndarray, ...]) -> np.ndarray:
    """bool [S]: states visited with positive probability from the start under the behavior."""
    reached = np.zeros(mdp.num_states, dtype=bool)
    reached[mdp.start] = True
    frontier = [mdp.start]
    while frontier:
        state = frontier.pop()
        if mdp.terminal[state]:
            continue
        for joint in joint_actions(mdp.action_counts):
            if all(behavior[i][state, a] > 0 for i, a in enumerate(joint)):
                nxt = int(mdp.next_state[(state, *joint)])
                if not reached[nxt]:
                    reached[nxt] = True
                    frontier.append(nxt)
    return reached


def rollout_return(
    mdp: TabularMDP, policy: list[np.ndarray], gamma: float
) -> tuple[float, list[int]]:
    """Discounted return sum_t gamma^t R(s_{t+1}) of a deterministic joint policy from the start.

    policy: one int array [S] per agent (its action in each state). Returns the return and the
    visited states (start first); stops at a terminal state or after mdp.horizon steps.
    """
    state, total, discount, visited = mdp.start, 0.0, 1.0, [mdp.start]
    for _ in range(mdp.horizon):
        if mdp.terminal[state]:
            break
        joint = tuple(int(actions[state]) for actions in policy)
        state = int(mdp.next_state[(state, *joint)])
        total += discount * float(mdp.reward[state])
        discount *= gamma
        visited.append(state)
    return total, visited


def optimal_values(mdp: TabularMDP, gamma: float, tol: float = 1e-12) -> np.ndarray:
    """float [S]: the centralized optimum V*(s) = max_joint R(s') + gamma V*(s') (0 at terminals),
    the yardstick for what decentralized learners reach. Value iteration; for gamma = 1 it needs
    every episode to end within the horizon, which caps the sweeps."""
    values = np.zeros(mdp.num_states)
    flat_next = mdp.next_state.reshape(mdp.num_states, -1)
    for _ in range(max(mdp.horizon, 1) * 10 + 1000):
        backup = mdp.reward[flat_next] + gamma * np.where(
            mdp.terminal[flat_next], 0.0, values[flat_next]
        )
        new_values = np.where(mdp.terminal, 0.0, backup.max(axis=1))
        if np.max(np.abs(new_values - values)) <= tol:
            return new_values
        values = new_values
    return values


def staged_game(
    game: OneStepGame, stages: int, reward_offset: float = 0.0
) -> tuple[TabularMDP, tuple[np.ndarray, ...]]:
    """The one-step game played `stages` times in a row, as a multi-step MDP.

    A state is the sequence of payoffs so far (labels like "5>1"; the start is "start"), so
    equal payoffs at a stage merge as in game_to_mdp. Arriving in a state pays its last payoff
    plus reward_offset; states after the last stage are terminal. The behavior policies are the
    game's at every state. Returns the MDP and behavior as [S, A_i] arrays.
    """
    distinct: dict[float, None] = dict.fromkeys(float(v) for v in game.payoff.ravel())
    labels: list[str] = ["start"]
    rewards: list[float] = [0.0]
    layers: list[list[int]] = [[0]]
    transitions: dict[int, np.ndarray] = {}
    for stage in range(stages):
        layer: list[int] = []
        for parent in layers[-1]:
            child_of: dict[float, int] = {}
            for value in distinct:
                prefix = "" if parent == 0 else labels[parent] + ">"
                child_of[value] = len(labels)
                labels.append(prefix + format_payoff(value))
                rewards.append(value + reward_offset)
                layer.append(child_of[value])
            transitions[parent] = np.vectorize(lambda v, table=child_of: table[float(v)])(
                game.payoff
            )
        layers.append(layer)
        del stage
    num_states = len(labels)
    next_state = np.zeros((num_states, *game.action_counts), dtype=np.int64)
    terminal = np.ones(num_states, dtype=bool)
    for parent, table in transitions.items():
        next_state[parent] = table
        terminal[parent] = False
    mdp = TabularMDP(next_state, np.array(rewards), terminal, 0, max(stages, 1), tuple(labels))
    behavior = tuple(np.tile(probs, (num_states, 1)) for probs in game.behavior)
    return mdp, behavior
