"""Shared pieces of the training tests (no tests here): a tiny real dataset and a tiny config.

The dataset is real simulator data from random decentralized policies, stored through the data
package's own writer so the loop reads it exactly as it reads a built dataset.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TASK = "hopper-3x1"


def write_random_dataset(directory: Path, task_name: str = TASK, transitions: int = 400,
                         seed: int = 0) -> Path:
    """One file per agent of `transitions` random-policy transitions; returns `directory`."""
    from mabcq.data.io import dataset_from_arrays, save_dataset_dir
    from mabcq.envs.rollout import run_episodes
    from mabcq.envs.tasks import get_task

    task = get_task(task_name)
    def random_policy(agent: int):
        rng, dim = np.random.default_rng([seed, agent]), task.agent_action_dim(agent)
        return lambda states: rng.uniform(-1.0, 1.0, (states.shape[0], dim))

    policies = [random_policy(agent) for agent in range(task.n_agents)]
    rollout = run_episodes(task, policies, None, seed=seed, transitions=transitions)
    own_actions = task.split_action(rollout.actions)
    datasets = [
        dataset_from_arrays(rollout.observations, own_actions[agent], rollout.rewards,
                            rollout.next_observations, rollout.terminals, rollout.timeouts,
                            task=task.name, agent=agent, n_agents=task.n_agents,
                            metadata={"recipe": "random-test"})
        for agent in range(task.n_agents)
    ]
    save_dataset_dir(datasets, directory)
    return directory


def tiny_config(method: str = "mabcq", seeds: tuple[int, ...] = (0,), **overrides):
    """Tiny nets, small batches, short evaluations: the whole loop in seconds."""
    from mabcq.training.config import make_config

    values = dict(updates=100, pretrain_updates=50, eval_every=50, eval_episodes=1,
                  eval_max_steps=20, diagnostic_states=64, updates_per_call=25,
                  hidden_sizes=(16, 16), batch_size=32)
    values.update(overrides)
    return make_config(TASK, method, list(seeds), "smoke", **values)


def use_test_compilation_cache() -> None:
    """Tests compile the same small steps many times: keep them in a cache under /tmp
    ($MABCQ_JAX_CACHE if set; the data package's builder reads the same variable)."""
    import os
    import tempfile

    from mabcq.util.compile_cache import enable_compilation_cache

    default = Path(tempfile.gettempdir()) / "mabcq-test-jax-cache"
    os.environ.setdefault("MABCQ_JAX_CACHE", str(default))
    enable_compilation_cache(os.environ["MABCQ_JAX_CACHE"])


def checkpoint_leaves(run_dir: Path) -> list[np.ndarray]:
    """Every array of a run's checkpoint (learner states, optimizer states, keys), in order."""
    with np.load(run_dir / "checkpoint.npz") as archive:
        return [archive[name] for name in sorted(archive.files) if name.startswith("leaf_")]


TIME_COLUMNS = ("time_per_update_ms", "wall_time_s")


def deterministic_rows(run_dir: Path) -> list[dict[str, str]]:
    """metrics.csv rows without the wall-clock columns."""
    from mabcq.training.logs import read_csv_rows

    return [{key: value for key, value in row.items() if key not in TIME_COLUMNS}
            for row in read_csv_rows(run_dir / "metrics.csv")]
