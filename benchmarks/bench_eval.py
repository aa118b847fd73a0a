"""Benchmark: the lockstep evaluation of a grid (every run's episodes, one policy call per step).

Times one Evaluator.rollouts call with R runs (methods x seeds) x E episodes of a task, paper-size
BCQ-family agents (untrained: the cost does not depend on the weights, only episode lengths do,
so fixed-length episodes are forced with --max-steps), and splits it into the policy calls and
the simulator steps, measured in the same run.

    PYTHONPATH=src python benchmarks/bench_eval.py --task halfcheetah-2x3 --runs 20 --episodes 10
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="halfcheetah-2x3")
    parser.add_argument("--runs", type=int, default=20, help="methods x seeds (paper: 4 x 5)")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per run (paper: 10)")
    parser.add_argument("--max-steps", type=int, default=100, help="steps per episode")
    args = parser.parse_args()

    import jax
    import numpy as np

    from mabcq.envs.tasks import get_task
    from mabcq.learners.batched import init_agents
    from mabcq.learners.registry import learner_config, make_learner
    from mabcq.learners.synthetic import synthetic_dataset
    from mabcq.training.evaluator import Evaluator

    task = get_task(args.task)
    learner = make_learner("mabcq", learner_config("mabcq", task.name))
    seeds = list(range(args.runs))
    dims = [task.agent_action_dim(i) for i in range(task.n_agents)]
    states = init_agents(learner, seeds, task.n_agents, task.state_dim, dims)
    data = [synthetic_dataset(i, 64, task.state_dim, dims[i]) for i in range(task.n_agents)]
    evaluator = Evaluator(learner, task, seeds, data, gamma=0.99, episodes=args.episodes,
                          max_steps=args.max_steps, diagnostic_states=16, min_steps_left=1)
    timed = {"act_s": 0.0, "calls": 0}
    act_all = evaluator.act_all

    def counting(*call_args):
        start = time.perf_counter()
        out = jax.block_until_ready(act_all(*call_args))
        timed["act_s"] += time.perf_counter() - start
        timed["calls"] += 1
        return out

    evaluator.act_all = counting
    evaluator.rollouts(states, 0)  # compile
    timed.update(act_s=0.0, calls=0)
    start = time.perf_counter()
    rollouts = evaluator.rollouts(states, 1)
    total = time.perf_counter() - start
    steps = int(sum(np.sum(r.episode_lengths) for r in rollouts))
    print(f"{task.name}: {args.runs} runs x {args.episodes} episodes, {timed['calls']} lockstep "
          f"steps, {steps} env steps on {jax.devices()[0].platform}")
    print(f"  total {total:.2f} s; policy calls {timed['act_s']:.2f} s "
          f"({1000 * timed['act_s'] / max(timed['calls'], 1):.2f} ms per call for "
          f"{args.runs * task.n_agents * args.episodes} agent rows); simulator and bookkeeping "
          f"{total - timed['act_s']:.2f} s ({steps / max(total - timed['act_s'], 1e-9):.0f} "
          f"env steps/s); policy share {timed['act_s'] / total:.2f}")


if __name__ == "__main__":
    main()
