"""`mabcq reproduce`: parse, check, run the grid, print where the results are and the time split.

Heavy imports stay inside the handler so `mabcq --help` is fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mabcq.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    from mabcq.reproduce import PAPER_METHODS, PAPER_TASKS

    parser = subparsers.add_parser(
        "reproduce", help="the paper's grid: datasets, every (task, method, seed), CSVs",
        description="Build missing datasets (from the shipped behavior policies where they "
        "exist), train every (task, method, seed) cell (a task's BCQ-family methods, seeds and "
        "agents in one compiled step), evaluate in MuJoCo and write returns.csv, "
        "diagnostics.csv, timing.csv, behavior.csv and grid.json into --out. Run the same "
        "command again after a kill: finished cells are skipped, the group in flight resumes "
        "from its checkpoint. Then `mabcq report OUT --out OUT/report`.")
    parser.add_argument("--tasks", default=",".join(PAPER_TASKS),
                        help="comma-separated tasks, or 'all' (the paper's four and "
                        f"swimmer-2x1, which uses the low-quality recipe); default "
                        f"{','.join(PAPER_TASKS)}")
    parser.add_argument("--methods", default=",".join(PAPER_METHODS),
                        help=f"comma-separated methods; default {','.join(PAPER_METHODS)} "
                        "(also mabcq-epsE for MABCQ at optimism E; CQL's family macql, "
                        "macql-no-tn, macql-no-vd, cql; TD3+BC's matd3bc, ..., td3bc)")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds")
    parser.add_argument("--preset", default="paper", choices=("smoke", "quick", "paper"),
                        help="scale of datasets and training (default paper: 10^6 transitions "
                        "per agent, 5x10^4 updates, batch 1024, 10 evaluation episodes)")
    parser.add_argument("--recipe",
                        help="train every task on this dataset recipe instead of its own "
                        "(paper; low for swimmer-2x1), e.g. medium-replay for Appendix B's CQL "
                        "runs; recorded in every cell, never mixed with cells of another recipe")
    parser.add_argument("--eps-sweep", action="store_true",
                        help="add MABCQ at eps in {0, 0.16, ..., 0.8} (Figure 5) on the paper's "
                        "four tasks")
    parser.add_argument("--out", type=Path, help="results directory (default "
                        "runs/reproduce/PRESET)")
    parser.add_argument("--data-root", type=Path, default=Path("runs/data"),
                        help="datasets go to DATA_ROOT/PRESET/TASK/RECIPE (default runs/data)")
    parser.add_argument("--updates", type=int,
                        help="override the preset's updates (and, at the paper preset, the "
                        "CQL family's per-task counts read off the paper's Figure 6)")
    parser.add_argument("--eval-every", type=int, help="override the preset's evaluation period")
    parser.add_argument("--eval-episodes", type=int, help="override the preset's episodes")
    parser.add_argument("--data-jobs", type=int,
                        help="agent dataset files built at once (default: the CPU count)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(handler=run_reproduce)


def parse_list(flag: str, text: str) -> tuple[str, ...]:
    items = tuple(item.strip() for item in text.split(","))
    if not items or not all(items):
        raise UserError(f"{flag} {text!r}: give comma-separated names without empty entries")
    if len(set(items)) != len(items):
        raise UserError(f"{flag} {text!r}: a name is repeated")
    return items


def run_reproduce(args: argparse.Namespace) -> int:
    from mabcq.compile_cache import enable_compilation_cache
    from mabcq.envs.tasks import get_task
    from mabcq.learners.registry import parse_method
    from mabcq.reproduce import PAPER_TASKS, Grid, reproduce
    from mabcq.train_commands import parse_seeds

    tasks = (*PAPER_TASKS, "swimmer-2x1") if args.tasks == "all" else parse_list(
        "--tasks", args.tasks)
    for task in tasks:
        get_task(task)
    methods = parse_list("--methods", args.methods)
    for method in methods:
        parse_method(method)
    if args.recipe is not None:
        from mabcq.data.recipes import get_recipe

        get_recipe(args.recipe)
    seeds = parse_seeds(args.seeds)
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise UserError(f"--seeds {args.seeds!r}: give distinct non-negative integers")
    for flag in ("updates", "eval_every", "eval_episodes", "data_jobs"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise UserError(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    grid = Grid(tasks=tasks, methods=methods, seeds=tuple(seeds), preset=args.preset,
                eps_sweep=args.eps_sweep, recipe=args.recipe)
    out = args.out or Path("runs") / "reproduce" / args.preset
    overrides = {name: getattr(args, name) for name in ("updates", "eval_every", "eval_episodes")
                 if getattr(args, name) is not None}
    enable_compilation_cache()
    import os

    split = reproduce(grid, out, args.data_root, progress=not args.no_progress,
                      overrides=overrides, data_jobs=args.data_jobs or os.cpu_count() or 1)
    print(f"{split['cells']} cells finished in {out}; this call: data {split['data_s']:.0f} s, "
          f"train {split['train_s']:.0f} s, eval {split['eval_s']:.0f} s, wall "
          f"{split['wall_s']:.0f} s")
    print(f"report: mabcq report {out} --out {out / 'report'}")
    return 0
