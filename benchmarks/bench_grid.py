"""Benchmark: a task's BCQ-family grid in ONE compiled step vs one step per method.

The four methods (MABCQ, w/o lambda_tn, w/o lambda_vd, BCQ) x seeds x agents, paper sizes
(batch 1024, MLP (64, 64), n = 10), timed in interleaved rounds in the same run: the grid step
(`variants` as data, training.config.run_learner's path) against the sum of the four methods'
own steps.

    PYTHONPATH=src python benchmarks/bench_grid.py --agents 2 --seeds 5
"""

from __future__ import annotations

import argparse
import statistics
import time

METHODS = ("mabcq", "mabcq-no-tn", "mabcq-no-vd", "bcq")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--state-dim", type=int, default=17)
    parser.add_argument("--action-dim", type=int, default=3)
    parser.add_argument("--updates-per-call", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import jax
    import jax.numpy as jnp

    from mabcq.learners import batched
    from mabcq.learners.registry import learner_config, make_learner
    from mabcq.learners.synthetic import synthetic_dataset

    data = batched.stack_agent_data([synthetic_dataset(i, 100_000, args.state_dim,
                                                       args.action_dim)
                                     for i in range(args.agents)])
    seeds = list(range(args.seeds))

    def setup(method: str, run_seeds: list[int], variants=None):
        learner = make_learner(method, learner_config(method, batch_size=args.batch))
        states = batched.init_agents(learner, run_seeds, args.agents, args.state_dim,
                                     args.action_dim)
        keys = batched.seed_agent_keys(run_seeds, args.agents)
        step = batched.make_multi_update(learner, "train", args.updates_per_call)
        table = batched.make_transition_weights(learner)(states, data)
        state = [states, keys]

        def run() -> float:
            start = time.perf_counter()
            state[0], state[1], metrics = step(state[0], data, state[1], table, variants)
            jax.block_until_ready((state[0], metrics))
            return 1e3 * (time.perf_counter() - start) / args.updates_per_call

        run()  # compile
        return run

    flags = [[float(c.use_vd), float(c.use_tn), float(c.optimism)]
             for c in (learner_config(m) for m in METHODS) for _ in seeds]
    grid = setup("mabcq", seeds * len(METHODS), jnp.asarray(flags, jnp.float32))
    alone = {method: setup(method, seeds) for method in METHODS}
    grid_ms, sum_ms = [], []
    for _ in range(args.rounds):
        grid_ms.append(grid())
        sum_ms.append(sum(run() for run in alone.values()))
    pairs = len(METHODS) * args.seeds * args.agents
    g, s = statistics.median(grid_ms), statistics.median(sum_ms)
    print(f"# {len(METHODS)} methods x {args.seeds} seeds x {args.agents} agents = {pairs} "
          f"pairs, batch {args.batch}, jax {jax.__version__} on {jax.devices()[0].platform}, "
          f"median of {args.rounds} interleaved rounds")
    print("| one grid step ms/update | four method steps ms/update (sum) | grid / sum | "
          "grid ms per agent-update |")
    print("|---|---|---|---|")
    ratios = statistics.median(a / b for a, b in zip(grid_ms, sum_ms, strict=True))
    print(f"| {g:.2f} | {s:.2f} | {ratios:.3f} | {g / pairs:.3f} |")


if __name__ == "__main__":
    main()
