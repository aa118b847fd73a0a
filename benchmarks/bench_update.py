"""Benchmark: ms per update of MABCQ and BCQ (paper sizes) for N agents and batched seeds, and
of the weights on other learners (MACQL and CQL, MA-TD3+BC and TD3+BC) beside them.

Prints one table; a ratio column (MABCQ/BCQ, MACQL/CQL, ...) comes from calls interleaved in the
same run (median of `--rounds` calls each), so load from other processes hits both alike. Each
method runs at its own learner's default sizes (BCQ: paper Table 8, batch 1024, MLP (64, 64); CQL
and TD3+BC: their papers' batch 256 and (256, 256, 256) / (256, 256) nets) unless --batch or
--hidden set them for all. With d3rlpy importable (the optional `bench` extra), it also times
d3rlpy's BCQ at BCQ's sizes (one agent).

    PYTHONPATH=src python benchmarks/bench_update.py                  # N = 1..4, and 2 x 5 seeds
    PYTHONPATH=src python benchmarks/bench_update.py --agents 2 --seeds 1 --rounds 20 --flops
    PYTHONPATH=src python benchmarks/bench_update.py --methods mabcq,bcq,macql,cql,matd3bc,td3bc
    PYTHONPATH=src python benchmarks/bench_update.py --agents 2 --seeds-rows "" --quantile-cost

--quantile-cost also times each weighted method as `<method>@no-quantiles`: the same compiled
step with the weights' per-batch 5/50/95% quantiles (two sorts of the batch per update, logged
for issue 19's diagnostics) left out, and prints their ratio: what the diagnostics cost.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from dataclasses import dataclass


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", default="1,2,3,4", help="agent counts, comma separated")
    parser.add_argument(
        "--seeds-rows",
        default="2x5",
        help="extra rows AGENTSxSEEDS with seeds batched in the same step (empty: none)",
    )
    parser.add_argument("--seeds", type=int, default=1, help="seeds for the --agents rows")
    parser.add_argument(
        "--methods",
        default="mabcq,bcq",
        help="methods to time; each ma<x> with its plain <x> gives a ratio column",
    )
    parser.add_argument("--batch", type=int, help="batch for every method (default: each own)")
    parser.add_argument("--state-dim", type=int, default=17, help="HalfCheetah: 17")
    parser.add_argument("--action-dim", type=int, default=3, help="HalfCheetah 2x3: 3 per agent")
    parser.add_argument("--hidden", help="hidden sizes for every method (default: each own)")
    parser.add_argument("--dataset-size", type=int, default=100_000, help="rows per agent")
    parser.add_argument("--updates-per-call", type=int, default=10, help="updates per jit call")
    parser.add_argument("--rounds", type=int, default=7, help="timed calls per method (median)")
    parser.add_argument(
        "--chunk", default="auto", help="(seed, agent) pairs vmapped together: auto or an int"
    )
    parser.add_argument(
        "--vae-in-update",
        action="store_true",
        help="also train G1 (and G2) in every update, as the original BCQ trains its VAE",
    )
    parser.add_argument(
        "--no-tn-table",
        action="store_true",
        help="MABCQ recomputes lambda_tn from G1/G2 in every update instead of reading the table"
        " precomputed after pretraining (make_transition_weights)",
    )
    parser.add_argument("--flops", action="store_true", help="print XLA's FLOP count per update")
    parser.add_argument("--no-d3rlpy", action="store_true", help="skip the d3rlpy row")
    parser.add_argument(
        "--quantile-cost",
        action="store_true",
        help="also time each weighted method without the diagnostics' per-batch quantiles"
        " (<method>@no-quantiles) and print the ratio",
    )
    parser.add_argument(
        "--d3rlpy-only",
        action="store_true",
        help="only time d3rlpy's BCQ and print its median ms/update (used in a child process)",
    )
    return parser.parse_args(argv)


CALIBRATION = "matmul GFLOPS"
NO_QUANTILES = "@no-quantiles"


@contextlib.contextmanager
def quantiles_left_out(enabled: bool):
    """While a learner's step is traced inside: the weights' diagnostics with zeros in place of
    the per-batch quantiles, so the compiled step has no sort (mean/min/max, ESS kept)."""
    import jax.numpy as jnp

    from mabcq import weights

    original = weights.weight_diagnostics

    def without_quantiles(name, values):
        zero = jnp.zeros((), values.dtype)
        return {**weights.weight_stats(name, values), f"{name}_p05": zero,
                f"{name}_p50": zero, f"{name}_p95": zero,
                f"{name}_ess": weights.effective_sample_size(values)}

    if enabled:
        weights.weight_diagnostics = without_quantiles
    try:
        yield
    finally:
        weights.weight_diagnostics = original
IDLE_MATMUL_GFLOPS = 338.0  # MEASURED.md: 10240x64 @ 64x64, jitted float32, idle machine


def make_calibration():
    """A probe of the machine's speed right now: GFLOPS of the target pass's matmul shape."""
    import jax

    left = jax.random.normal(jax.random.PRNGKey(0), (10240, 64))
    right = jax.random.normal(jax.random.PRNGKey(1), (64, 64))
    matmul = jax.jit(lambda x, y: x @ y)
    jax.block_until_ready(matmul(left, right))

    def probe() -> float:
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            jax.block_until_ready(matmul(left, right))
            best = min(best, time.perf_counter() - start)
        return 2 * 10240 * 64 * 64 / best / 1e9

    return probe


@dataclass
class Timed:
    label: str
    agents: int
    seeds: int
    times_ms: dict[str, list[float]]
    mflop: dict[str, float]


def build_run(args: argparse.Namespace, method: str, agents: int, seeds: int, data,
              chunk: int | None) -> tuple[list, float]:
    """One method's compiled step, warmed up: ([step, states, keys, table], MFLOP per update)."""
    import jax

    from mabcq.learners import batched
    from mabcq.learners.registry import learner_config, make_learner

    config = learner_config(method, vae_in_update=args.vae_in_update, **size_overrides(args))
    learner = make_learner(method, config)
    seed_list = list(range(seeds))
    states = batched.init_agents(learner, seed_list, agents, args.state_dim, args.action_dim)
    keys = batched.seed_agent_keys(seed_list, agents)
    step = batched.make_multi_update(learner, "train", args.updates_per_call, chunk)
    table = None if args.no_tn_table else batched.make_transition_weights(learner)(states, data)
    mflop = float("nan")
    if args.flops:  # XLA counts a loop body once: analyse one agent's single update
        one = batched.make_single_update(learner, "train", 1)
        first = jax.tree.map(lambda leaf: leaf[0, 0], states)
        own = jax.tree.map(lambda leaf: leaf[0], data.transitions)
        own_table = None if table is None else table[0, 0]
        lowered = one.lower(first, own, data.sizes[0], keys[0, 0], own_table)
        cost = lowered.compile().cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        mflop = agents * seeds * float(cost.get("flops", float("nan"))) / 1e6
    states, keys, _ = step(states, data, keys, table)  # compile + warm up
    jax.block_until_ready(states)
    return [step, states, keys, table], mflop


def time_row(
    args: argparse.Namespace, agents: int, seeds: int, methods: list[str], extra=None
) -> Timed:
    """Times `methods` (and `extra` {name: fn() -> ms per update}) in interleaved rounds."""
    import jax

    from mabcq.learners import batched
    from mabcq.learners.synthetic import synthetic_dataset

    chunk = None if args.chunk == "auto" else int(args.chunk)
    datasets = [
        synthetic_dataset(i, args.dataset_size, args.state_dim, args.action_dim)
        for i in range(agents)
    ]
    data = batched.stack_agent_data(datasets)
    runs = {}
    mflop = {}
    for method in methods:
        base = method.removesuffix(NO_QUANTILES)
        with quantiles_left_out(base != method):
            runs[method], mflop[method] = build_run(args, base, agents, seeds, data, chunk)
    times: dict[str, list[float]] = {method: [] for method in methods}
    times[CALIBRATION] = []
    calibrate = make_calibration()
    extra = extra or {}
    for name in extra:
        times[name] = []
    for _ in range(args.rounds):  # interleaved: each round times every method once
        times[CALIBRATION].append(calibrate())
        for method in methods:
            step, states, keys, table = runs[method]
            start = time.perf_counter()
            states, keys, metrics = step(states, data, keys, table)
            jax.block_until_ready((states, metrics))
            times[method].append(1e3 * (time.perf_counter() - start) / args.updates_per_call)
            runs[method][1:3] = [states, keys]
    # Other frameworks run right after, in a child process without JAX: in this process torch
    # and XLA's thread pools fought (d3rlpy measured 20-50x slower).
    for name, runner in extra.items():
        measured = runner()
        if measured is None:
            del times[name]
        else:
            times[name] = measured
    return Timed(f"{agents} x {seeds}", agents, seeds, times, mflop)


def size_overrides(args: argparse.Namespace) -> dict:
    """--batch / --hidden as learner_config overrides (none given: each learner's defaults)."""
    overrides = {}
    if args.batch is not None:
        overrides["batch_size"] = args.batch
    if args.hidden is not None:
        overrides["hidden_sizes"] = tuple(int(width) for width in args.hidden.split(","))
    return overrides


def ratio_pairs(methods: list[str]) -> list[tuple[str, str]]:
    """(ma<x>, <x>) pairs among `methods`: the weights' cost over their base learner."""
    from mabcq.learners.registry import family_of

    pairs = []
    for method in methods:
        if method.endswith(NO_QUANTILES):
            pairs.append((method.removesuffix(NO_QUANTILES), method))
            continue
        family = family_of(method)
        if method == family.full and family.weighted and family.name in methods:
            pairs.append((method, family.name))
    return pairs


def sizes_text(methods: list[str], args: argparse.Namespace) -> str:
    from mabcq.learners.registry import learner_config

    parts = []
    for method in methods:
        if method.endswith(NO_QUANTILES):
            continue
        config = learner_config(method, **size_overrides(args))
        parts.append(f"{method} batch {config.batch_size} hidden {config.hidden_sizes}")
    return "; ".join(parts)


def make_d3rlpy_runner(args: argparse.Namespace):
    """A callable timing `updates_per_call` updates of d3rlpy's BCQ (one agent, same sizes),
    returning ms per update; None if d3rlpy is not importable (optional `bench` extra)."""
    try:
        import d3rlpy
        import numpy as np
    except ImportError:
        return None
    from mabcq.learners.registry import learner_config

    bcq = learner_config("bcq", **size_overrides(args))
    hidden, batch_size = list(bcq.hidden_sizes), bcq.batch_size
    rng = np.random.default_rng(0)
    size = min(args.dataset_size, 100_000)
    observations = rng.normal(size=(size, args.state_dim)).astype(np.float32)
    actions = np.tanh(rng.normal(size=(size, args.action_dim))).astype(np.float32)
    terminals = np.zeros(size, np.float32)
    terminals[999::1000] = 1.0
    dataset = d3rlpy.dataset.MDPDataset(
        observations, actions, rng.normal(size=size).astype(np.float32), terminals
    )
    encoder = d3rlpy.models.encoders.VectorEncoderFactory(hidden)
    algo = d3rlpy.algos.BCQConfig(
        actor_encoder_factory=encoder,
        critic_encoder_factory=encoder,
        imitator_encoder_factory=encoder,
        batch_size=batch_size,
        n_action_samples=10,
        action_flexibility=0.05,
    ).create(device="cpu:0")
    algo.build_with_dataset(dataset)

    def run() -> float:
        batches = [
            dataset.sample_transition_batch(batch_size) for _ in range(args.updates_per_call)
        ]
        start = time.perf_counter()
        for batch in batches:  # sampling excluded, as ours samples inside the compiled step
            algo.update(batch)
        return 1e3 * (time.perf_counter() - start) / args.updates_per_call

    run()  # warm up
    return run


def d3rlpy_in_child(argv: list[str] | None) -> list[float] | None:
    """Per-round ms/update of d3rlpy's BCQ, timed in a child process (no JAX loaded there)."""
    import os
    import subprocess

    command = [sys.executable, __file__, *(sys.argv[1:] if argv is None else argv)]
    # torch's OpenMP threads spin-wait by default; on cores shared with other jobs that made
    # single updates take 0.3-1 s instead of ~20-30 ms. PASSIVE (unless set) keeps it sane.
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    done = subprocess.run(
        command + ["--d3rlpy-only"], capture_output=True, text=True, env=env, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("d3rlpy-ms ")]
    if done.returncode != 0 or not lines:
        print(f"# d3rlpy child failed: {done.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    return [float(value) for value in lines[-1].split()[1:]]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.d3rlpy_only:
        runner = make_d3rlpy_runner(args)
        if runner is None:
            return 1
        print("d3rlpy-ms " + " ".join(f"{runner():.3f}" for _ in range(args.rounds)))
        return 0
    import jax

    methods = args.methods.split(",")
    if args.quantile_cost:
        from mabcq.learners.registry import family_of

        methods += [f"{method}{NO_QUANTILES}" for method in list(methods)
                    if family_of(method).weighted and method == family_of(method).full]
    shapes = [(int(n), args.seeds) for n in args.agents.split(",") if n]
    for row in filter(None, args.seeds_rows.split(",")):
        agents, seeds = row.lower().split("x")
        shapes.append((int(agents), int(seeds)))
    print(
        f"# update timing: state {args.state_dim}, action {args.action_dim} per agent;"
        f" {sizes_text(methods, args)}; {args.updates_per_call} updates"
        f" per jit call, median of {args.rounds} interleaved calls; G1/G2 trained in update:"
        f" {args.vae_in_update}; lambda_tn table: {not args.no_tn_table};"
        f" jax {jax.__version__} on {jax.devices()[0].platform}",
        flush=True,
    )
    d3rlpy_importable = False
    if not args.no_d3rlpy:
        import importlib.util

        d3rlpy_importable = importlib.util.find_spec("d3rlpy") is not None
    rows = []
    for agents, seeds in shapes:
        print(f"# timing {agents} agents x {seeds} seeds ...", file=sys.stderr, flush=True)
        extra = None
        if d3rlpy_importable and agents * seeds == 1:
            extra = {"d3rlpy": lambda: d3rlpy_in_child(argv)}
        rows.append(time_row(args, agents, seeds, methods, extra))
    head = ["agents x seeds"]
    for method in methods:
        head += [f"{method} ms/update", f"{method} ms/agent-update"]
    ratios = ratio_pairs(methods)
    head += [f"{full}/{plain}" for full, plain in ratios]
    head += [CALIBRATION]
    if args.flops:
        head += [f"{m} MFLOP/update" for m in methods] + [f"{m} GFLOPS" for m in methods]
    print(
        f"# '{CALIBRATION}': one jitted 10240x64 @ 64x64 matmul call (best of 3) timed in the"
        " same rounds: how fast this machine is right now (MEASURED.md reports"
        f" {IDLE_MATMUL_GFLOPS:.0f} for that shape; a single call here peaks near 190)"
    )
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        medians = {m: statistics.median(row.times_ms[m]) for m in methods}
        pairs = row.agents * row.seeds
        cells = [row.label]
        for method in methods:
            cells += [f"{medians[method]:.2f}", f"{medians[method] / pairs:.2f}"]
        for full, plain in ratios:
            # Ratio of per-round times (same round = same machine load), then the median.
            pairs_ms = zip(row.times_ms[full], row.times_ms[plain], strict=True)
            cells.append(f"{statistics.median([a / b for a, b in pairs_ms]):.3f}")
        gflops_now = statistics.median(row.times_ms[CALIBRATION])
        cells += [f"{gflops_now:.0f}"]
        if args.flops:
            cells += [f"{row.mflop[m]:.0f}" for m in methods]
            cells += [f"{row.mflop[m] / medians[m]:.0f}" for m in methods]
        print("| " + " | ".join(cells) + " |", flush=True)
    if args.no_d3rlpy:
        return 0
    if not d3rlpy_importable:
        print("# d3rlpy not importable (optional `bench` extra): d3rlpy BCQ row skipped")
        return 0
    single = [row for row in rows if "d3rlpy" in row.times_ms]
    if not single:
        print("# d3rlpy is timed in the 1 agent x 1 seed row only: add 1 to --agents")
        return 0
    row = single[0]
    d3rlpy_ms = statistics.median(row.times_ms["d3rlpy"])
    cells = [f"d3rlpy {d3rlpy_ms:.2f} ms/update"]
    for method in methods:
        ratio = statistics.median(row.times_ms[method]) / d3rlpy_ms
        cells.append(f"ours {method} / d3rlpy BCQ = {ratio:.3f}")
    print(
        "| d3rlpy 2.8.1 BCQ, 1 agent, timed right after (child process) | "
        + " | ".join(cells)
        + " |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
