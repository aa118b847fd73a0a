"""Collection and SAC training throughput, against the raw MuJoCo step rate of the same run.

    PYTHONPATH=src python benchmarks/bench_collection.py [--task halfcheetah-2x3]

Prints (one process, one run, so the ratios are comparable even on a shared machine):
  raw env steps/s       the unwrapped single-agent MuJoCo env, random actions (the reference)
  gymnasium.make        the same env through Gymnasium's wrappers
  MaMuJoCo parallel_env the multi-agent wrapper (why rollouts step the raw env instead)
  collection            run_episodes with N agents' policies split from a paper-size SAC actor,
                        transitions/s, for a few numbers of lockstep envs; then the same while
                        recording every agent's local observation (--obsk K, data build
                        --obs local), best of --rounds interleaved runs, and local/global
  SAC training          env steps/s of the behavior trainer at the paper preset's settings
                        (compilation excluded), and the implied wall time of 10^6 steps
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
import warnings
from pathlib import Path

import numpy as np


def raw_rates(task, steps: int, rounds: int = 3) -> dict[str, float]:
    """Best of `rounds` interleaved rounds per stepping path (the machine is shared)."""
    from mabcq.envs.tasks import make_env, quiet_mujoco_warnings

    actions = np.random.default_rng(0).uniform(-1, 1, (steps, task.joint_action_dim))
    actions = actions.astype(np.float32)
    with quiet_mujoco_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        from gymnasium_robotics import mamujoco_v1

        parallel = mamujoco_v1.parallel_env(task.mamujoco_scenario, task.mamujoco_conf)
    parallel.reset(seed=0)
    local = [parallel.map_global_action_to_local_actions(a) for a in actions]
    raw = make_env(task, seed=0).unwrapped
    wrapped = make_env(task, seed=0)

    def step_raw() -> None:
        for action in actions:
            if raw.step(action)[2]:
                raw.reset()

    def step_wrapped() -> None:
        for action in actions:
            _, _, terminated, truncated, _ = wrapped.step(action)
            if terminated or truncated:
                wrapped.reset()

    def step_parallel() -> None:
        for action in local:
            parallel.step(action)
            if not parallel.agents:
                parallel.reset()

    paths = {"raw env": step_raw, "gymnasium.make": step_wrapped,
             "MaMuJoCo parallel_env": step_parallel}
    rates = dict.fromkeys(paths, 0.0)
    for _ in range(rounds):
        for name, run in paths.items():
            start = time.perf_counter()
            run()
            rates[name] = max(rates[name], steps / (time.perf_counter() - start))
    return rates


def collection_rate(task, transitions: int, num_envs: int, observer=None) -> float:
    import jax

    from mabcq.behavior.policies import joint_mean_policy, split_joint_policy
    from mabcq.behavior.sac import SAC, SACConfig
    from mabcq.envs.rollout import run_episodes

    sac = SAC(task.state_dim, task.joint_action_dim, SACConfig())
    params = jax.jit(sac.init)(jax.random.PRNGKey(0)).actor_params
    policies = split_joint_policy(task, joint_mean_policy(sac, params))
    run_episodes(task, policies, None, seed=0, transitions=200, num_envs=num_envs)  # compile
    start = time.perf_counter()
    run_episodes(task, policies, None, seed=1, transitions=transitions, num_envs=num_envs,
                 action_noise=0.1, observer=observer)
    return transitions / (time.perf_counter() - start)


def sac_rate(task, env_steps: int) -> tuple[float, float]:
    """Env steps/s and updates/s of the behavior trainer (paper preset), after compiling."""
    import tempfile
    from dataclasses import replace

    from mabcq.behavior.train import BEHAVIOR_PRESETS, _Trainer

    config = replace(BEHAVIOR_PRESETS["paper"], total_steps=env_steps + 2048, start_steps=1024)
    with tempfile.TemporaryDirectory() as out:
        trainer = _Trainer(task, config, Path(out), seed=0)
        trainer.fresh()
        while trainer.size < config.start_steps:
            trainer.step_envs(trainer.act())
        trainer.update()  # compile
        trainer.act()
        updates = 0
        start = time.perf_counter()
        first = trainer.size
        while trainer.size < first + env_steps:
            trainer.step_envs(trainer.act())
            if trainer.lockstep % config.update_every == 0:
                trainer.update()
                updates += trainer.n_updates
        elapsed = time.perf_counter() - start
    return (trainer.size - first) / elapsed, updates / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="halfcheetah-2x3")
    parser.add_argument("--raw-steps", type=int, default=10_000)
    parser.add_argument("--transitions", type=int, default=40_000)
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--sac-steps", type=int, default=4_096, help="0: skip SAC training")
    parser.add_argument("--obsk", type=int, default=1, help="local observations' K")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved global/local collection runs (best of)")
    args = parser.parse_args()

    from mabcq.envs.tasks import get_task

    task = get_task(args.task)
    rates = raw_rates(task, args.raw_steps)
    reference = rates["raw env"]
    print(f"task {task.name} ({task.n_agents} agents); ratios are to the raw env rate")
    print(f"{'what':<66} {'per second':>12} {'ratio':>7}")
    for name, rate in rates.items():
        print(f"{name + ' (steps)':<66} {rate:>12.0f} {rate / reference:>7.2f}")
    from mabcq.envs.observations import local_observer

    observer = local_observer(task.name, args.obsk)
    for num_envs in args.num_envs:
        best = {"global": 0.0, "local": 0.0}
        for _ in range(args.rounds):
            for mode, recorder in (("global", None), ("local", observer)):
                best[mode] = max(best[mode], collection_rate(task, args.transitions, num_envs,
                                                             recorder))
        for mode, rate in best.items():
            label = f"collection, SAC (256,256) policies, E={num_envs}, {mode} obs"
            print(f"{label + ' (transitions)':<66} {rate:>12.0f} {rate / reference:>7.2f}")
        print(f"{f'  local / global collection rate, E={num_envs}, K={args.obsk}':<66} "
              f"{best['local'] / best['global']:>12.3f}")
    if args.sac_steps <= 0:
        return
    steps_rate, updates_rate = sac_rate(task, args.sac_steps)
    print(f"{'SAC training, paper preset (env steps)':<66} {steps_rate:>12.0f} "
          f"{steps_rate / reference:>7.2f}")
    print(f"{'SAC training, paper preset (updates)':<66} {updates_rate:>12.0f}")
    from mabcq.behavior.train import BEHAVIOR_PRESETS

    paper_steps = BEHAVIOR_PRESETS["paper"].total_steps
    print(f"SAC paper preset ({paper_steps} env steps): about "
          f"{paper_steps / steps_rate / 60:.0f} min at this rate; 10^6 steps: "
          f"{1e6 / steps_rate / 3600:.1f} h (plus evaluations)")


if __name__ == "__main__":
    main()
