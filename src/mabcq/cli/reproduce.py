"""`mabcq reproduce`: parse, check, run the grid, print where the results are and the time split.

Heavy imports stay inside the handler so `mabcq --help` is fast.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

from mabcq.cli import kinds
from mabcq.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    from mabcq.cli.backend import add_backend_flags
    from mabcq.grid.groups import UNITS
    from mabcq.paper import PAPER_METHODS, PAPER_TASKS

    parser = subparsers.add_parser(
        "reproduce", help="the paper's grid: datasets, every (task, method, seed), CSVs",
        description="Build missing datasets (from the shipped behavior policies where they "
        "exist), train every (task, method, seed) cell (a task's BCQ-family methods, seeds and "
        "agents in one compiled step), evaluate in MuJoCo and write returns.csv, "
        "diagnostics.csv, timing.csv, behavior.csv and grid.json into --out. Run the same "
        "command again after a kill: finished cells are skipped, the group in flight resumes "
        "from its checkpoint. Then `mabcq report OUT --out OUT/report`.")
    parser.add_argument("--tasks", default=",".join(PAPER_TASKS), type=kinds.task_list,
                        help="comma-separated tasks, or 'all' (the paper's four and "
                        f"swimmer-2x1, which uses the low-quality recipe); default "
                        f"{','.join(PAPER_TASKS)}")
    parser.add_argument("--methods", default=",".join(PAPER_METHODS),
                        type=kinds.method_list,
                        help=f"comma-separated methods; default {','.join(PAPER_METHODS)} "
                        "(also mabcq-epsE for MABCQ at optimism E; CQL's family macql, "
                        "macql-no-tn, macql-no-vd, cql; TD3+BC's matd3bc, ..., td3bc)")
    parser.add_argument("--seeds", default="0,1,2,3,4", type=kinds.seed_list,
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
    parser.add_argument("--out", type=kinds.output_dir, help="results directory (default "
                        "runs/reproduce/PRESET)")
    parser.add_argument("--data-root", type=kinds.output_dir, default="runs/data",
                        help="datasets go to DATA_ROOT/PRESET/TASK/RECIPE (default runs/data)")
    parser.add_argument("--updates", type=kinds.positive_int,
                        help="override the preset's updates (and, at the paper preset, the "
                        "CQL family's per-task counts read off the paper's Figure 6)")
    parser.add_argument("--eval-every", type=kinds.positive_int,
                        help="override the preset's evaluation period")
    parser.add_argument("--eval-episodes", type=kinds.positive_int,
                        help="override the preset's episodes")
    parser.add_argument("--data-jobs", type=kinds.positive_int,
                        help="agent dataset files built at once (default: the CPU count)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--unit", choices=("auto", *UNITS), default="auto",
                        help="what one compiled step (one worker process, one Ray task) "
                        "trains: cell (one (task, method, seed) in a worker process of its "
                        "own, the default on a CPU with the local backend) or group (a task's "
                        "methods of one family and their seeds together, the default on a GPU "
                        "and with Ray)")
    parser.add_argument("--plan", action="store_true",
                        help="with --unit cell: print the cells left in their order, each "
                        "with its estimate, the totals and (with a deadline) what fits, then "
                        "stop; nothing is trained, built or written")
    parser.add_argument("--allow-commits", type=kinds.commit_list, default=(),
                        metavar="COMMITS",
                        help="comma-separated commits (7+ hex digits) whose finished cells may "
                        "stay in --out beside this code's; without it a grid holding cells of "
                        "other code is refused (one grid, one commit: give it once a smoke grid "
                        "of both commits is bitwise equal, docs/reproduce.md)")
    parser.add_argument("--workers", type=kinds.positive_int,
                        help="with --unit cell: cells at once, each a single-threaded process "
                        "pinned to its own core (default: one per core this command may use; "
                        "the numbers do not depend on it)")
    parser.add_argument("--stop-after", type=duration, metavar="DURATION",
                        help="with --unit cell: start no cell that its estimate says cannot "
                        "finish within DURATION (2h30m, 45m, 600s), then exit with code "
                        f"{EXIT_DEADLINE} if cells are left")
    parser.add_argument("--until", type=clock, metavar="HH:MM",
                        help="the same with a local time of day as the deadline (the next "
                        "HH:MM); with --stop-after the earlier one counts")
    add_backend_flags(parser, "group (or cell, --unit)")
    parser.set_defaults(handler=run_reproduce)


# Exit code of a call that stopped at its deadline with cells left: commit, run it again.
EXIT_DEADLINE = 3


def duration(text: str) -> float:
    """--stop-after's kind: a duration in seconds."""
    from mabcq.grid.plan import parse_duration

    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def clock(text: str) -> dt.time:
    """--until's kind: a local time of day."""
    from mabcq.grid.plan import parse_clock

    try:
        return parse_clock(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def resolve_unit(args: argparse.Namespace) -> str:
    """--unit auto: cell on a CPU with the local backend, else group; --workers, --stop-after
    and --until need cells here (refused otherwise, before any work)."""
    unit = args.unit
    if unit == "auto" and args.backend == "local":
        import jax

        unit = "cell" if jax.default_backend() == "cpu" else "group"
    elif unit == "auto":
        unit = "group"
    given = [flag for flag, value in (("--plan", args.plan or None),
                                      ("--workers", args.workers),
                                      ("--stop-after", args.stop_after),
                                      ("--until", args.until)) if value is not None]
    if given and (unit != "cell" or args.backend != "local"):
        raise UserError(f"{given[0]} needs --unit cell with the local backend (the default on a "
                        f"CPU); this call trains {unit}s"
                        f"{' as Ray tasks' if args.backend == 'ray' else ''}")
    return unit


def deadline_of(args: argparse.Namespace, now: float) -> float | None:
    """The earlier of now + --stop-after and the next --until, as epoch seconds."""
    from mabcq.grid.plan import next_occurrence

    deadlines = []
    if args.stop_after is not None:
        deadlines.append(now + args.stop_after)
    if args.until is not None:
        deadlines.append(next_occurrence(args.until, dt.datetime.fromtimestamp(now)).timestamp())
    return min(deadlines) if deadlines else None


def run_reproduce(args: argparse.Namespace) -> int:
    from mabcq.cli.backend import options_from_args

    deadline = deadline_of(args, time.time())
    ray_options = options_from_args(args)  # before any work: Ray installed, flags consistent
    unit = resolve_unit(args)
    from mabcq.grid.groups import Grid
    from mabcq.grid.reproduce import reproduce
    from mabcq.util.compile_cache import enable_compilation_cache

    tasks, methods, seeds = args.tasks, args.methods, args.seeds
    out = args.out or kinds.check(kinds.output_dir,
                                      Path("runs") / "reproduce" / args.preset, "--out")
    grid = Grid(tasks=tasks, methods=methods, seeds=tuple(seeds), preset=args.preset,
                eps_sweep=args.eps_sweep, recipe=args.recipe)
    overrides = {name: getattr(args, name) for name in ("updates", "eval_every", "eval_episodes")
                 if getattr(args, name) is not None}
    import os

    from mabcq.grid.pool import default_workers

    data_jobs = args.data_jobs or os.cpu_count() or 1
    workers = args.workers or default_workers()
    if args.plan:
        from mabcq.grid.reproduce import print_plan

        print_plan(grid, out, args.data_root, overrides, data_jobs=data_jobs, workers=workers,
                   deadline=deadline, allowed_commits=args.allow_commits)
        return 0
    enable_compilation_cache()
    split = reproduce(grid, out, args.data_root, progress=not args.no_progress,
                      overrides=overrides, data_jobs=data_jobs, ray_options=ray_options,
                      unit=unit, workers=workers, deadline=deadline,
                      allowed_commits=args.allow_commits)
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
    if split["left"]:
        print(f"stopped at the deadline: {len(split['left'])} cell(s) left, the CSVs hold the "
              f"{split['cells']} finished; commit, then run the same command again (exit "
              f"{EXIT_DEADLINE})")
        return EXIT_DEADLINE
    print(f"report: mabcq report {out} --out {out / 'report'}")
    return 0
