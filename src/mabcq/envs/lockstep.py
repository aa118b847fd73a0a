"""Many episodes of many runs stepped together: one policy call per step for all of them.

An evaluation of a grid runs R runs (methods x seeds) x E episodes. The policy side is one
batched call per step (mabcq.training.evaluator.lockstep_actions); the simulator side is
R x E MuJoCo envs, stepped in this process or spread over worker processes (`workers` > 0),
which matters on a many-core GPU machine where stepping hundreds of envs in one Python thread
would dominate.

Local observations (a LocalObserver): every env also reports each agent's local observation,
read from its simulator after reset and step, and `act` gets those instead of the global states.

Determinism: env (r, k) is reset with episode_seed(env_seeds[r], k), as run_episodes would, and
its trajectory depends only on its own actions, so the result does not depend on `workers`.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mabcq.envs.observations import LocalObserver, local_observer
from mabcq.envs.rollout import RolloutResult, _assemble, episode_seed
from mabcq.envs.tasks import Task, get_task, make_env

# (states [runs, episodes, state_dim], step) -> actions [runs, agents, episodes, A_i] (or a
# list over agents of [runs, episodes, A_i]); with an observer the states are the local
# observations side by side, [runs, episodes, sum O_i].
LockstepAct = Callable[[np.ndarray, int], Any]


class _Envs:
    """A flat list of envs with reset(seeds) and step(actions, live); with an observer, the
    observations returned are [global state, local observations] side by side."""

    def __init__(self, task: Task, count: int, observer: LocalObserver | None = None) -> None:
        self.task, self.observer = task, observer
        self.envs = [make_env(task).unwrapped for _ in range(count)]
        self.width = task.state_dim + (0 if observer is None else sum(observer.dims))

    def _observed(self, env: Any, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, np.float32)
        return obs if self.observer is None else np.concatenate(
            [obs, self.observer.observe_env(env)])

    def reset(self, seeds: Sequence[int]) -> np.ndarray:
        return np.stack([self._observed(env, env.reset(seed=int(seed))[0])
                         for env, seed in zip(self.envs, seeds, strict=True)])

    def step(self, actions: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, ...]:
        """actions [n, A] float32, live [n] bool -> (next_obs [n, width], rewards [n],
        terminated [n]); envs that are not live are left alone (zeros returned)."""
        next_obs = np.zeros((len(self.envs), self.width), np.float32)
        rewards, terminated = np.zeros(len(self.envs)), np.zeros(len(self.envs), bool)
        for index in np.flatnonzero(live):
            env = self.envs[index]
            obs, reward, done, _, _ = env.step(actions[index])
            next_obs[index] = self._observed(env, obs)
            rewards[index], terminated[index] = reward, done
        return next_obs, rewards, terminated

    def close(self) -> None:
        for env in self.envs:
            env.close()


def _worker(connection: Any, task_name: str, count: int, obsk: int | None = None) -> None:
    """A worker process: its share of the envs, driven over a pipe until None or EOF."""
    observer = None if obsk is None else local_observer(task_name, obsk)
    envs = _Envs(get_task(task_name), count, observer)
    try:
        while True:
            message = connection.recv()
            if message is None:
                break
            command, payload = message
            connection.send(envs.reset(payload) if command == "reset" else envs.step(*payload))
    except (EOFError, KeyboardInterrupt):  # the parent is gone: exit quietly
        pass
    finally:
        envs.close()


class _WorkerEnvs:
    """The same interface as _Envs, with the envs split over `workers` processes (spawned, so
    they hold no JAX state; they exit when the parent closes the pipes or dies)."""

    def __init__(self, task: Task, count: int, workers: int,
                 observer: LocalObserver | None = None) -> None:
        obsk = None if observer is None else observer.k
        context = multiprocessing.get_context("spawn")
        self.shares = np.array_split(np.arange(count), min(workers, count))
        self.connections, self.processes = [], []
        for share in self.shares:
            parent, child = context.Pipe()
            process = context.Process(target=_worker, args=(child, task.name, len(share), obsk),
                                      daemon=True)
            process.start()
            child.close()
            self.connections.append(parent)
            self.processes.append(process)

    def _each(self, command: str, payloads: list[Any]) -> list[Any]:
        for connection, payload in zip(self.connections, payloads, strict=True):
            connection.send((command, payload))
        return [connection.recv() for connection in self.connections]

    def reset(self, seeds: Sequence[int]) -> np.ndarray:
        seeds = np.asarray(seeds)
        return np.concatenate(self._each("reset", [seeds[share] for share in self.shares]))

    def step(self, actions: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, ...]:
        parts = self._each("step", [(actions[share], live[share]) for share in self.shares])
        return tuple(np.concatenate(column) for column in zip(*parts, strict=True))

    def close(self) -> None:
        for connection in self.connections:
            try:
                connection.send(None)
            except (BrokenPipeError, OSError):
                pass
        for process in self.processes:
            process.join(timeout=10)


class _Episode:
    """One episode's rows, in the shape rollout._assemble expects."""

    def __init__(self, obs: np.ndarray, state_dim: int) -> None:
        self.obs, self.local = obs[:state_dim], obs[state_dim:]
        self.rows, self.done, self.physics, self.local_rows = [], False, None, []


class LockstepEnvs:
    """R x E envs for repeated lockstep evaluations (made once, reset per evaluation)."""

    def __init__(self, task: Task, runs: int, episodes: int, workers: int = 0,
                 observer: LocalObserver | None = None) -> None:
        if runs < 1 or episodes < 1:
            raise ValueError(f"need runs >= 1 and episodes >= 1, got {runs}, {episodes}")
        self.task, self.runs, self.episodes = task, runs, episodes
        self.observer = observer
        count = runs * episodes
        self.envs = (_WorkerEnvs(task, count, workers, observer) if workers > 0
                     else _Envs(task, count, observer))

    def run(self, act: LockstepAct, env_seeds: Sequence[int], gamma: float = 0.99,
            max_steps: int | None = None) -> list[RolloutResult]:
        """Every episode of every run until all end; one RolloutResult per run.

        Run r's episode k starts from episode_seed(env_seeds[r], k). `act` gets every env's
        current state (an ended episode keeps its last one; its action is not used), or with
        an observer every env's local observations, and the step index, and returns each
        agent's own action slice, which the env joins.
        """
        task, runs, episodes = self.task, self.runs, self.episodes
        if len(env_seeds) != runs:
            raise ValueError(f"need {runs} env seeds, got {len(env_seeds)}")
        limit = task.horizon if max_steps is None else int(max_steps)
        seeds = [episode_seed(seed, k) for seed in env_seeds for k in range(episodes)]
        table = [_Episode(obs, task.state_dim) for obs in self.envs.reset(seeds)]
        local = self.observer is not None
        step = 0
        while step < limit and not all(episode.done for episode in table):
            states = np.stack([episode.local if local else episode.obs
                               for episode in table]).reshape(runs, episodes, -1)
            agent_actions = act(states, step)  # [R, N, E, A], or N arrays [R, E, A_i]
            joint = np.concatenate([task.join_actions(
                [np.asarray(actions[r], np.float32) for actions in agent_actions]
                if isinstance(agent_actions, list | tuple)
                else list(np.asarray(agent_actions, np.float32)[r]))
                for r in range(runs)])  # [R * E, A_joint]
            joint = np.clip(joint, task.action_low, task.action_high).astype(np.float32)
            live = np.array([not episode.done for episode in table])
            next_obs, rewards, terminated = self.envs.step(joint, live)
            for index in np.flatnonzero(live):
                episode = table[index]
                timeout = not terminated[index] and len(episode.rows) + 1 >= limit
                next_state = next_obs[index, :task.state_dim]
                episode.rows.append((episode.obs, joint[index], float(rewards[index]),
                                     next_state, bool(terminated[index]), timeout))
                episode.obs = next_state
                if local:
                    next_local = next_obs[index, task.state_dim:]
                    episode.local_rows.append((episode.local, next_local))
                    episode.local = next_local
                episode.done = bool(terminated[index] or timeout)
            step += 1
        return [_assemble(table[r * episodes:(r + 1) * episodes], gamma, None, False, local)
                for r in range(runs)]

    def close(self) -> None:
        self.envs.close()
