"""Decentralized deployment (`mabcq decentralized`): every agent trained as its own process from
its own dataset file alone, then the agents' policy files run together in the simulator.

Agent I's run is exactly `mabcq train TASK --agent I --data DIR/agent_I.h5 --out OUT/agent_I`
(its parameters equal agent I's slice of a joint run to float tolerance,
tests/test_train_loop.py), and the evaluation is `mabcq evaluate TASK --policies
OUT/agent_0/policies/seed_S/agent_0.msgpack ...` for each seed S. With the Ray backend each
agent is one Ray task, on whichever node has room: the driver reads agent I's file and ships its
bytes to agent I's task only (through Ray's object store, no shared filesystem needed); the task
loads and checks that one file, trains, and sends back its run's small files, which the driver
writes into OUT/agent_I. A finished agent (OUT/agent_I/summary.json with the same settings) is
not trained again, so a killed run resumes.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mabcq.data.io import agent_file_name
from mabcq.errors import UserError


def agent_files(task: Any, data: Path) -> list[Path]:
    """DATA/agent_<i>.h5 for every agent of `task` (checked to exist, not read)."""
    files = [data / agent_file_name(agent) for agent in range(task.n_agents)]
    for path in files:
        if not path.is_file():
            raise UserError(f"--data {data}: no {path.name} ({task.name} has {task.n_agents} "
                            f"agents); build the files with `mabcq data build {task.name} "
                            f"--out {data}`")
    return files


def train_decentralized(config: Any, data: Path, out: Path, *, episodes: int,
                        ray_options: Any = None, progress: bool = True) -> dict[str, Any]:
    """Train each agent of config.task alone (config.agent is set per agent), then evaluate the
    policies together per (method, seed); writes OUT/agent_<i>/ and OUT/evaluation.json and
    returns the evaluation record. ray_options None: one agent after another in this process."""
    import dataclasses

    from mabcq.envs.tasks import get_task

    task = get_task(config.task)
    files = agent_files(task, data)
    configs = [dataclasses.replace(config, agent=agent) for agent in range(task.n_agents)]
    todo = [agent for agent in range(task.n_agents)
            if not _finished(configs[agent], out / f"agent_{agent}")]
    print(f"{task.name}: {task.n_agents - len(todo)} of {task.n_agents} agents trained; "
          f"training {len(todo)}, each alone from its own file")
    if ray_options is None:
        for agent in todo:
            train_agent(configs[agent], str(files[agent]), out / f"agent_{agent}", progress)
    else:
        _train_on_ray(configs, files, out, todo, ray_options)
    return evaluate_together(config, task, out, episodes)


def _finished(config: Any, run_dir: Path) -> bool:
    if not (run_dir / "summary.json").is_file():
        return False
    try:
        saved = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError) as error:
        raise UserError(f"{run_dir}: a finished run without a readable config.json ({error}); "
                        "delete that folder to train the agent again") from None
    if saved != json.loads(json.dumps(config.to_json())):
        raise UserError(f"{run_dir}: holds agent {config.agent}'s run with other settings; use "
                        "the same flags, or another --out")
    return True


def train_agent(config: Any, source: str | bytes, run_dir: Path, progress: bool) -> dict[str, Any]:
    """Train agent config.agent from its own file (a path, or the file's bytes shipped to a Ray
    task) into RUN_DIR, resuming a checkpoint found there; returns the summary."""
    from mabcq.data.io import load_agent_dataset
    from mabcq.training.loop import train

    if isinstance(source, bytes):
        with tempfile.TemporaryDirectory(prefix="mabcq-agent-") as folder:
            copy = Path(folder) / agent_file_name(config.agent)
            copy.write_bytes(source)
            try:
                dataset = load_agent_dataset(copy)
            except UserError as error:
                raise UserError(str(error).replace(str(copy), f"agent {config.agent}'s file")
                                ) from None
    else:
        dataset = load_agent_dataset(source)
    summary = train(config, [dataset], run_dir, resume=(run_dir / "config.json").exists(),
                    progress=progress)
    assert summary is not None
    return summary


def train_agent_task(config: Any, source: bytes, run_dir: str, *, attempt: int) -> dict[str, Any]:
    """In a Ray worker: train one agent from the bytes of its own file; return its run's small
    files and where it ran."""
    import hashlib

    from mabcq.grid.ray_backend import pack_run_files, worker_record, worker_setup

    received = {agent_file_name(config.agent): hashlib.sha256(source).hexdigest()}
    path = worker_setup(run_dir, attempt, inputs=received)
    summary = train_agent(config, source, path, progress=False)
    return {"summary": summary, "files": pack_run_files(path), "worker": worker_record(attempt)}


def _train_on_ray(configs: Sequence[Any], files: Sequence[Path], out: Path, todo: Sequence[int],
                  options: Any) -> None:
    from mabcq.grid.ray_backend import Job, ray_session, run_jobs, unpack_run_files

    agents = {f"agent {agent}": agent for agent in todo}

    def finished(job: Job, result: dict[str, Any]) -> None:
        agent = agents[job.label]
        unpack_run_files(out / f"agent_{agent}", result["files"])
        worker = result["worker"]
        print(f"agent {agent} trained on {worker['host']} (pid {worker['pid']}, attempt "
              f"{worker['attempt']})", flush=True)

    with ray_session(options) as ray:
        # each agent's own file, and nothing else, goes to its task; a process of its own
        jobs = [Job(f"agent {agent}", train_agent_task,
                    (configs[agent], ray.put(files[agent].read_bytes()),
                     str((out / f"agent_{agent}").absolute())), fresh_process=True)
                for agent in todo]
        failures = run_jobs(ray, jobs, options, finished)
    if failures:
        raise UserError(f"{failures[0].label} failed after {failures[0].attempts} attempts "
                        f"({failures[0].message}); the other agents' runs are kept in {out}: "
                        "run the same command again")


def evaluate_together(config: Any, task: Any, out: Path, episodes: int) -> dict[str, Any]:
    """Each (method, seed)'s N policy files, loaded one by one, run together (`mabcq evaluate`
    with --seed S); OUT/evaluation.json holds the returns."""
    import numpy as np

    from mabcq.training.config import cell_labels, run_cells
    from mabcq.training.evaluation import evaluate_policy_files
    from mabcq.training.logs import write_json_atomic

    runs = []
    for (method, seed), label in zip(run_cells(config), cell_labels(config), strict=True):
        policies = [out / f"agent_{agent}" / "policies" / label / f"agent_{agent}.msgpack"
                    for agent in range(task.n_agents)]
        _, rollout = evaluate_policy_files(task, policies, episodes, seed,
                                           config.eval_max_steps)
        returns = np.asarray(rollout.episode_returns)
        return_mean, return_std = float(np.mean(returns)), float(np.std(returns))
        runs.append({"method": method, "seed": seed, "return_mean": return_mean,
                     "return_std": return_std,
                     "episode_returns": [float(value) for value in returns],
                     "policies": [str(path) for path in policies]})
        print(f"{method} seed {seed}: {task.name}, {task.n_agents} agents trained apart, "
              f"{episodes} episodes together: return {return_mean:.1f} +- {return_std:.1f}",
              flush=True)
    record = {"task": task.name, "method": config.method, "episodes": episodes,
              "max_steps": config.eval_max_steps, "runs": runs}
    write_json_atomic(out / "evaluation.json", record)
    return record
