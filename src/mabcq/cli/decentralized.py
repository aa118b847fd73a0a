"""`mabcq decentralized`: parse, check, train every agent apart, evaluate them together, print.

Heavy imports stay inside the handler so `mabcq --help` is fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mabcq.cli import kinds

PRESET_NAMES = ("smoke", "quick", "paper")


def register(subparsers: argparse._SubParsersAction) -> None:
    from mabcq.cli.backend import add_backend_flags

    parser = subparsers.add_parser(
        "decentralized", help="train each agent as its own process (a Ray task with --backend "
        "ray) from its own file, then run the policies together",
        description="Decentralized deployment: agent I is trained alone from DATA/agent_I.h5 "
        "exactly as `mabcq train TASK --agent I` would (into OUT/agent_I), each agent its own "
        "process; with --backend ray each agent is a Ray task that receives only its own "
        "file. Then every seed's policy files run together in the simulator (`mabcq evaluate`),"
        " returns in OUT/evaluation.json. Run it again after a kill: finished agents are kept.")
    parser.add_argument("task", type=kinds.task_name, help="task name, e.g. hopper-3x1")
    parser.add_argument("--data", required=True, type=kinds.existing_dir,
                        help="dataset directory (agent_0.h5, agent_1.h5, ...)")
    parser.add_argument("--method", default="mabcq", type=kinds.method_group,
                        help="a method (default mabcq), or one family's methods joined by '+'")
    parser.add_argument("--seeds", default="0", type=kinds.seed_list,
                        help="comma-separated seeds")
    parser.add_argument("--preset", default="quick", choices=PRESET_NAMES,
                        help="scale of each agent's run (as `mabcq train`)")
    parser.add_argument("--updates", type=kinds.positive_int, help="Q/xi updates per agent")
    parser.add_argument("--eval-every", type=kinds.positive_int,
                        help="updates between each agent's own diagnostics")
    parser.add_argument("--eval-episodes", type=kinds.positive_int, default=5,
                        help="episodes of the joint evaluation per seed (default 5)")
    parser.add_argument("--out", type=kinds.output_dir,
                        help="output directory (default runs/TASK-METHOD-decentralized)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_backend_flags(parser, "agent")
    parser.set_defaults(handler=run_decentralized)


def run_decentralized(args: argparse.Namespace) -> int:
    from mabcq.cli.backend import options_from_args

    ray_options = options_from_args(args)  # before any work: Ray installed, flags consistent
    from mabcq.envs.tasks import get_task
    from mabcq.grid.decentralized import agent_files, train_decentralized
    from mabcq.training.config import make_config
    from mabcq.util.compile_cache import enable_compilation_cache

    task = get_task(args.task)
    agent_files(task, args.data)
    out = args.out or kinds.check(
        kinds.output_dir, Path("runs") / f"{task.name}-{args.method}-decentralized", "--out")
    config = make_config(task.name, args.method, args.seeds, args.preset, updates=args.updates,
                         eval_every=args.eval_every)
    enable_compilation_cache()
    record = train_decentralized(config, args.data, out, episodes=args.eval_episodes,
                                 ray_options=ray_options, progress=not args.no_progress)
    print(f"{len(record['runs'])} run(s) of {task.n_agents} agents trained apart; per-agent "
          f"runs in {out}/agent_<i>, joint returns in {out / 'evaluation.json'}")
    return 0
