"""`mabcq reproduce`: parse, check, run the grid, print where the results are and the time split.

Heavy imports stay inside the handler so `mabcq --help` is fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mabcq import cli_types


def register(subparsers: argparse._SubParsersAction) -> None:
    from mabcq.ray_backend import add_backend_flags
    from mabcq.reproduce import PAPER_METHODS, PAPER_TASKS, UNITS

    parser = subparsers.add_parser(
        "reproduce", help="the paper's grid: datasets, every (task, method, seed), CSVs",
        description="Build missing datasets (from the shipped behavior policies where they "
        "exist), train every (task, method, seed) cell (a task's BCQ-family methods, seeds and "
        "agents in one compiled step), evaluate in MuJoCo and write returns.csv, "
        "diagnostics.csv, timing.csv, behavior.csv and grid.json into --out. Run the same "
        "command again after a kill: finished cells are skipped, the group in flight resumes "
        "from its checkpoint. Then `mabcq report OUT --out OUT/report`.")
    parser.add_argument("--tasks", default=",".join(PAPER_TASKS), type=cli_types.task_list,
                        help="comma-separated tasks, or 'all' (the paper's four and "
                        f"swimmer-2x1, which uses the low-quality recipe); default "
                        f"{','.join(PAPER_TASKS)}")
    parser.add_argument("--methods", default=",".join(PAPER_METHODS),
                        type=cli_types.method_list,
                        help=f"comma-separated methods; default {','.join(PAPER_METHODS)} "
                        "(also mabcq-epsE for MABCQ at optimism E; CQL's family macql, "
                        "macql-no-tn, macql-no-vd, cql; TD3+BC's matd3bc, ..., td3bc)")
    parser.add_argument("--seeds", default="0,1,2,3,4", type=cli_types.seed_list,
                        help="comma-separated seeds")
    parser.add_argument("--preset", default="paper", choices=("smoke", "quick", "paper"),
                        help="scale of datasets and training (default paper: 10^6 transitions "
                        "per agent, 5x10^4 updates, batch 1024, 10 evaluation episodes)")
    parser.add_argument("--recipe", choices=("paper", "low", "medium-replay"),
                        help="train every task on this dataset recipe instead of its own "
                        "(paper; low for swimmer-2x1), e.g. medium-replay for Appendix B's CQL "
                        "runs; recorded in every cell, never mixed with cells of another recipe")
    parser.add_argument("--eps-sweep", action="store_true",
                        help="add MABCQ at eps in {0, 0.16, ..., 0.8} (Figure 5) on the paper's "
                        "four tasks")
    parser.add_argument("--out", type=cli_types.output_dir, help="results directory (default "
                        "runs/reproduce/PRESET)")
    parser.add_argument("--data-root", type=cli_types.output_dir, default="runs/data",
                        help="datasets go to DATA_ROOT/PRESET/TASK/RECIPE (default runs/data)")
    parser.add_argument("--updates", type=cli_types.positive_int,
                        help="override the preset's updates (and, at the paper preset, the "
                        "CQL family's per-task counts read off the paper's Figure 6)")
    parser.add_argument("--eval-every", type=cli_types.positive_int,
                        help="override the preset's evaluation period")
    parser.add_argument("--eval-episodes", type=cli_types.positive_int,
                        help="override the preset's episodes")
    parser.add_argument("--data-jobs", type=cli_types.positive_int,
                        help="agent dataset files built at once (default: the CPU count)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--unit", choices=UNITS, default="group",
                        help="what one compiled step (one Ray task) trains: group (default: a "
                        "task's methods of one family and their seeds together) or cell (one "
                        "(method, seed) each, to spread over many GPUs)")
    add_backend_flags(parser, "group (or cell, --unit)")
    parser.set_defaults(handler=run_reproduce)


def run_reproduce(args: argparse.Namespace) -> int:
    from mabcq.ray_backend import options_from_args

    ray_options = options_from_args(args)  # before any work: Ray installed, flags consistent
    from mabcq.compile_cache import enable_compilation_cache
    from mabcq.reproduce import Grid, reproduce

    tasks, methods, seeds = args.tasks, args.methods, args.seeds
    out = args.out or cli_types.check(cli_types.output_dir,
                                      Path("runs") / "reproduce" / args.preset, "--out")
    grid = Grid(tasks=tasks, methods=methods, seeds=tuple(seeds), preset=args.preset,
                eps_sweep=args.eps_sweep, recipe=args.recipe)
    overrides = {name: getattr(args, name) for name in ("updates", "eval_every", "eval_episodes")
                 if getattr(args, name) is not None}
    enable_compilation_cache()
    import os

    split = reproduce(grid, out, args.data_root, progress=not args.no_progress,
                      overrides=overrides, data_jobs=args.data_jobs or os.cpu_count() or 1,
                      ray_options=ray_options, unit=args.unit)
    # train/eval: the groups finished in this call, over all their attempts (a group resumed
    # from a killed call counts its earlier time too), so they may exceed this call's wall time
    print(f"{split['cells']} cells finished in {out}; this call: data {split['data_s']:.0f} s, "
          f"wall {split['wall_s']:.0f} s; its groups (every attempt): train "
          f"{split['train_s']:.0f} s, eval {split['eval_s']:.0f} s")
    if split["failed"]:
        print(f"{len(split['failed'])} group(s) FAILED after "
              f"{split['failed'][0].attempts} attempts each (their cells are missing; run the "
              "same command again to retry them):")
        for failure in split["failed"]:
            print(f"  {failure.label}: {failure.message}")
        return 1
    print(f"report: mabcq report {out} --out {out / 'report'}")
    return 0
