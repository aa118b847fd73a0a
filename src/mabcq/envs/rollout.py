"""Run N agents' decentralized policies together in the real simulator.

Each agent's policy sees only the global state (or, with a LocalObserver and `local_policies`,
its own local observation) and returns only its own action slice; the rollout joins the slices
into the joint action and steps the single-agent MuJoCo env. With an observer, every agent's
local observation is read from the simulator after each reset and step and recorded too. Several
envs are stepped in lockstep so each policy is called once per step on a batch of states.

Determinism: episode k is reset with a seed derived from (seed, k) and draws its action noise
(and a stochastic policy's draws, `policy_noise`) from its own generators, so the transitions do
not depend on the number of lockstep envs (for policies whose action for a state does not depend
on the rows beside it; SAC's pad every batch to one shape for this, mabcq.behavior.policies).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mabcq.envs.observations import LocalObserver
from mabcq.envs.tasks import Task, make_env

AgentPolicy = Callable[..., np.ndarray]  # observations [E, state_dim] (, noise) -> actions [E, A_i]
PolicyNoise = Callable[[np.random.Generator], np.ndarray]  # an episode's draw for one step


@dataclass
class RolloutResult:
    """Transitions of whole (or, at a transition budget, cut) episodes, concatenated in order."""

    episode_returns: np.ndarray  # [episodes] undiscounted
    episode_lengths: np.ndarray  # [episodes]
    observations: np.ndarray  # [T, state_dim] float32
    actions: np.ndarray  # [T, joint_action_dim] float32, the executed (noisy, clipped) action
    rewards: np.ndarray  # [T] float32
    next_observations: np.ndarray  # [T, state_dim] float32
    terminals: np.ndarray  # [T] bool
    timeouts: np.ndarray  # [T] bool: horizon reached or episode cut by the transition budget
    discounted_returns: np.ndarray  # [T] sum_k gamma^k r_{t+k} within the (collected) episode
    physics_states: np.ndarray | None = None  # [T, nq + 2 nv] see physics_state()
    # With a LocalObserver: every agent's local observation side by side, [T, sum O_i] float32
    # (LocalObserver.split gives agent i's [T, O_i]); None otherwise.
    local_observations: np.ndarray | None = None
    local_next_observations: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.rewards.shape[0])


def physics_state(env) -> np.ndarray:
    """[nq + 2 nv] (qpos, qvel, qacc_warmstart) of an unwrapped MuJoCo env: enough to replay a
    step bit for bit (the warm start matters for contact-rich tasks like Ant)."""
    data = env.data
    return np.concatenate([data.qpos, data.qvel, data.qacc_warmstart])


def restore_physics_state(env, state: np.ndarray) -> None:
    """Inverse of physics_state on an unwrapped MuJoCo env."""
    nq, nv = env.model.nq, env.model.nv
    env.set_state(state[:nq], state[nq : nq + nv])
    env.data.qacc_warmstart[:] = state[nq + nv :]


def episode_seed(seed: int, episode: int) -> int:
    """The reset seed of episode `episode` of a rollout seeded with `seed`."""
    return int(np.random.SeedSequence([seed, episode]).generate_state(1)[0])


class _Episode:
    """One episode's growing buffers."""

    def __init__(self, index: int, seed: int, env, record_physics: bool, observer=None):
        self.index = index
        self.rng = np.random.default_rng([seed, index, 1])
        self.policy_rng = np.random.default_rng([seed, index, 2])
        obs, _ = env.reset(seed=episode_seed(seed, index))
        self.obs = np.asarray(obs, dtype=np.float32)
        self.rows: list[tuple] = []
        self.physics: list[np.ndarray] | None = [] if record_physics else None
        self.local = None if observer is None else observer.observe_env(env)
        self.local_rows: list[tuple[np.ndarray, np.ndarray]] = []
        self.done = False


def run_episodes(
    task: Task,
    policies: Sequence[AgentPolicy],
    episodes: int | None,
    seed: int,
    gamma: float = 0.99,
    max_steps: int | None = None,
    action_noise: float | Sequence[float] = 0.0,
    num_envs: int = 8,
    transitions: int | None = None,
    record_physics: bool = False,
    progress: Callable[[int], None] | None = None,
    policy_noise: PolicyNoise | None = None,
    observer: LocalObserver | None = None,
    local_policies: bool = False,
) -> RolloutResult:
    """Roll out `policies` (one per agent) for `episodes` episodes, or up to `transitions` steps.

    max_steps: per-episode step limit (default task.horizon); reaching it sets `timeouts`.
    action_noise: std of Gaussian noise added to each agent's action (a scalar or one per agent)
        before clipping to the action bounds; the stored action is the executed one.
    transitions: instead of whole episodes, collect exactly this many transitions (the first
        `transitions` of episodes 0, 1, 2, ... concatenated; the last one is cut: timeout=True).
    progress: called with the number of env steps taken at each lockstep step.
    policy_noise: for stochastic policies: each step, every running episode draws
        policy_noise(its own generator) and the policies are called as policy(states, noise)
        with noise [E, ...] stacked in the states' row order.
    observer: record every agent's local observation (RolloutResult.local_observations).
    local_policies: call agent i's policy on its own local observations [E, O_i] (needs
        `observer`) instead of the global states.
    """
    if len(policies) != task.n_agents:
        raise ValueError(f"{task.name} has {task.n_agents} agents, got {len(policies)} policies")
    if (episodes is None) == (transitions is None):
        raise ValueError("give exactly one of episodes or transitions")
    if local_policies and observer is None:
        raise ValueError("local_policies needs an observer")
    limit = task.horizon if max_steps is None else int(max_steps)
    noise = np.broadcast_to(np.asarray(action_noise, dtype=np.float64), (task.n_agents,))
    joint_noise = np.concatenate(
        [np.full(task.agent_action_dim(i), noise[i]) for i in range(task.n_agents)]
    )
    envs = [make_env(task).unwrapped for _ in range(num_envs)]
    finished: dict[int, _Episode] = {}
    running: dict[int, _Episode] = {}  # env slot -> episode
    live_by_index: dict[int, _Episode] = {}
    counts = {"next_episode": 0, "finished_rows": 0, "prefix_index": 0, "prefix_rows": 0}

    def collected_prefix() -> int:
        """Transitions of episodes 0, 1, ... usable as a prefix (stops inside a running one)."""
        live = live_by_index.get(counts["prefix_index"])
        return counts["prefix_rows"] + (len(live.rows) if live is not None else 0)

    def want_new_episode() -> bool:
        if episodes is not None:
            return counts["next_episode"] < episodes
        started = counts["finished_rows"] + sum(len(e.rows) for e in running.values())
        return started < transitions

    def finish(slot: int, episode: _Episode) -> None:
        episode.done = True
        finished[episode.index] = episode
        del running[slot], live_by_index[episode.index]
        counts["finished_rows"] += len(episode.rows)
        while counts["prefix_index"] in finished:
            counts["prefix_rows"] += len(finished[counts["prefix_index"]].rows)
            counts["prefix_index"] += 1

    while True:
        for slot in range(num_envs):
            if slot not in running and want_new_episode():
                episode = _Episode(counts["next_episode"], seed, envs[slot], record_physics,
                                   observer)
                running[slot] = live_by_index[episode.index] = episode
                counts["next_episode"] += 1
        if not running or (transitions is not None and collected_prefix() >= transitions):
            break
        slots = sorted(running)
        states = np.stack([running[slot].obs for slot in slots])
        extra = () if policy_noise is None else (
            np.stack([policy_noise(running[slot].policy_rng) for slot in slots]),)
        inputs = ([states] * task.n_agents if not local_policies else observer.split(
            np.stack([running[slot].local for slot in slots])))
        agent_actions = [np.asarray(policy(observations, *extra), dtype=np.float32)
                         for policy, observations in zip(policies, inputs, strict=True)]
        joint = task.join_actions(agent_actions)
        for row, slot in enumerate(slots):
            episode = running[slot]
            action = joint[row].astype(np.float64)
            if joint_noise.any():
                action = action + episode.rng.normal(size=action.shape) * joint_noise
            # The stored action is float32: execute exactly that value so data re-simulates.
            action = np.clip(action, task.action_low, task.action_high).astype(np.float32)
            env = envs[slot]
            if episode.physics is not None:
                episode.physics.append(physics_state(env))
            next_obs, reward, terminated, _, _ = env.step(action)
            next_obs = np.asarray(next_obs, dtype=np.float32)
            timeout = not terminated and len(episode.rows) + 1 >= limit
            episode.rows.append((episode.obs, action, reward, next_obs, terminated, timeout))
            episode.obs = next_obs
            if observer is not None:
                next_local = observer.observe_env(env)
                episode.local_rows.append((episode.local, next_local))
                episode.local = next_local
            if terminated or timeout:
                finish(slot, episode)
        if progress is not None:
            progress(len(slots))
    return _assemble(
        [finished.get(i) or live_by_index[i] for i in range(counts["next_episode"])],
        gamma,
        transitions,
        record_physics,
        observer is not None,
    )


def _assemble(
    ordered: list[_Episode], gamma: float, transitions: int | None, record_physics: bool,
    record_local: bool = False,
) -> RolloutResult:
    """Concatenate episodes in index order, cut to `transitions`, and add returns-to-go."""
    columns: list[list] = [[] for _ in range(6)]
    physics: list[np.ndarray] = []
    local: list[tuple[np.ndarray, np.ndarray]] = []
    returns, lengths, to_go = [], [], []
    remaining = transitions
    for episode in ordered:
        rows = episode.rows
        if remaining is not None:
            if remaining <= 0:
                break
            if rows and (len(rows) > remaining or not episode.done):
                rows = rows[:remaining]
                last = rows[-1]
                rows[-1] = last[:5] + (not last[4],)  # cut episode: timeout unless terminal
            remaining -= len(rows)
        if not rows:
            continue
        for column, values in zip(columns, zip(*rows, strict=True), strict=True):
            column.extend(values)
        if record_physics:
            physics.extend(episode.physics[: len(rows)])
        if record_local:
            local.extend(episode.local_rows[: len(rows)])
        rewards = np.array([row[2] for row in rows], dtype=np.float64)
        returns.append(rewards.sum())
        lengths.append(len(rows))
        to_go.append(discounted_return_to_go(rewards, gamma))
    obs, actions, rewards, next_obs, terminals, timeouts = columns
    return RolloutResult(
        episode_returns=np.asarray(returns, dtype=np.float64),
        episode_lengths=np.asarray(lengths, dtype=np.int64),
        observations=np.asarray(obs, dtype=np.float32),
        actions=np.asarray(actions, dtype=np.float32),
        rewards=np.asarray(rewards, dtype=np.float32),
        next_observations=np.asarray(next_obs, dtype=np.float32),
        terminals=np.asarray(terminals, dtype=bool),
        timeouts=np.asarray(timeouts, dtype=bool),
        discounted_returns=np.concatenate(to_go) if to_go else np.zeros(0),
        physics_states=np.asarray(physics, dtype=np.float64) if record_physics else None,
        local_observations=_local_column(local, 0) if record_local else None,
        local_next_observations=_local_column(local, 1) if record_local else None,
    )


def _local_column(local: list[tuple[np.ndarray, np.ndarray]], column: int) -> np.ndarray:
    """[T, sum O_i] float32 from (local, next_local) rows ([0, 0] when there are none)."""
    if not local:
        return np.zeros((0, 0), np.float32)
    return np.stack([row[column] for row in local]).astype(np.float32)


def discounted_return_to_go(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """[T] rewards of one episode -> [T] sum_k gamma^k r_{t+k}."""
    out = np.empty(len(rewards), dtype=np.float64)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + gamma * running
        out[t] = running
    return out

