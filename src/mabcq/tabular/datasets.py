"""Per-agent datasets B_i drawn from the behavior policies, and the infinite-data limit.

Each joint play (one step of an episode) is logged once per agent: agent i keeps only
(s, a_i, r, s', done), never the others' actions. The exact variant gives each agent the
transition it would estimate from infinitely many such plays:
P_Bi(s'|s, a_i) = sum over a_-i of prod_{j != i} pi_j(a_j|s) [next(s, a) = s'].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mabcq.tabular.game import TabularMDP, joint_actions, reachable_states
from mabcq.tabular.transitions import AgentView


@dataclass(frozen=True)
class TabularDataset:
    """One agent's dataset B_i, one row per logged step, all arrays [T].

    states, actions (this agent's own), next_states: int; rewards: float, R(s');
    dones: bool, s' is terminal (a step cut by the horizon has done = False).
    """

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_states: np.ndarray
    dones: np.ndarray

    def __len__(self) -> int:
        return int(self.states.shape[0])


def _draw(probabilities: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Inverse-CDF draws: probabilities [B, A] rows, uniforms [B] -> int [B]."""
    cdf = np.cumsum(probabilities, axis=1)
    cdf[:, -1] = 1.0  # rows sum to 1 up to rounding; never draw past the last action
    return (uniforms[:, None] >= cdf).sum(axis=1).clip(max=probabilities.shape[1] - 1)


def sample_datasets(
    mdp: TabularMDP, behavior: tuple[np.ndarray, ...], episodes: int, seed: int
) -> tuple[TabularDataset, ...]:
    """Run `episodes` episodes of the behavior policies from the start state (every draw from
    `seed`) and split each step's log into one dataset per agent.

    behavior: one float [S, A_i] array per agent. For a one-step game an episode is one joint play.
    """
    rng = np.random.default_rng(seed)
    state = np.full(episodes, mdp.start, dtype=np.int64)
    active = ~mdp.terminal[state]
    logs: list[list[np.ndarray]] = [[] for _ in range(5)]
    per_agent_actions: list[list[np.ndarray]] = [[] for _ in range(mdp.num_agents)]
    for _ in range(mdp.horizon):
        if not active.any():
            break
        current = state[active]
        joint = [_draw(policy[current], rng.random(current.shape[0])) for policy in behavior]
        nxt = mdp.next_state[(current, *joint)]
        logs[0].append(current)
        logs[2].append(mdp.reward[nxt])
        logs[3].append(nxt)
        logs[4].append(mdp.terminal[nxt])
        for agent, actions in enumerate(joint):
            per_agent_actions[agent].append(actions)
        state[active] = nxt
        active = active & ~mdp.terminal[state]
    columns = [np.concatenate(column) if column else np.zeros(0) for column in logs]
    states, _, rewards, next_states, dones = columns
    return tuple(
        TabularDataset(
            states.astype(np.int64),
            np.concatenate(actions).astype(np.int64) if actions else np.zeros(0, np.int64),
            rewards.astype(np.float64),
            next_states.astype(np.int64),
            dones.astype(bool),
        )
        for actions in per_agent_actions
    )


def estimate_view(dataset: TabularDataset, num_states: int, num_actions: int) -> AgentView:
    """P_Bi(s'|s, a_i) = num(s, a_i, s') / sum_x num(s, a_i, x) from this agent's data alone."""
    counts = np.zeros((num_states, num_actions, num_states))
    np.add.at(counts, (dataset.states, dataset.actions, dataset.next_states), 1.0)
    totals = counts.sum(axis=-1, keepdims=True)
    transition = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    reward = np.zeros(num_states)
    reward_sum = np.zeros(num_states)
    arrivals = np.zeros(num_states)
    np.add.at(reward_sum, dataset.next_states, dataset.rewards)
    np.add.at(arrivals, dataset.next_states, 1.0)
    np.divide(reward_sum, arrivals, out=reward, where=arrivals > 0)
    terminal = np.zeros(num_states, dtype=bool)
    terminal[dataset.next_states[dataset.dones]] = True
    return AgentView(transition, totals[..., 0] > 0, reward, terminal)


def exact_views(mdp: TabularMDP, behavior: tuple[np.ndarray, ...]) -> tuple[AgentView, ...]:
    """Each agent's view in the limit of infinite data: the exact expectation over the other
    agents' behavior, on the states the behavior reaches and the actions it takes there."""
    reached = reachable_states(mdp, behavior) & ~mdp.terminal
    views = []
    for agent, own_policy in enumerate(behavior):
        transition = np.zeros((mdp.num_states, mdp.action_counts[agent], mdp.num_states))
        for state in np.flatnonzero(reached):
            for joint in joint_actions(mdp.action_counts):
                others = np.prod([behavior[j][state, a] for j, a in enumerate(joint) if j != agent])
                nxt = mdp.next_state[(state, *joint)]
                transition[state, joint[agent], nxt] += others
        support = reached[:, None] & (own_policy > 0)
        transition = np.where(support[..., None], transition, 0.0)
        # Others' probabilities sum to 1 up to the input's tolerance; renormalize exactly.
        totals = transition.sum(axis=-1, keepdims=True)
        transition = np.divide(transition, totals, out=np.zeros_like(transition), where=totals > 0)
        views.append(AgentView(transition, support, mdp.reward.astype(np.float64), mdp.terminal))
    return tuple(views)
