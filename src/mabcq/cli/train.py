"""`mabcq train`, `mabcq evaluate`, `mabcq demo`: parse, check the user's input, call, print.

Heavy imports (jax, mujoco) stay inside the handlers so `mabcq --help` is fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mabcq.cli import kinds
from mabcq.cli.video_flags import add_video_arguments
from mabcq.errors import UserError
from mabcq.learners.registry import METHODS as METHOD_NAMES

PRESET_NAMES = ("smoke", "quick", "paper")


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_train(subparsers)
    _register_evaluate(subparsers)
    _register_demo(subparsers)


def _register_train(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train a method on per-agent datasets (all agents and seeds at once)",
        description="Train MABCQ (or an ablation/baseline) offline on per-agent dataset files. "
        "Every agent learns from its own file only; all agents and seeds share one compiled "
        "step. Periodic evaluation runs the agents' policies together in the simulator.")
    parser.add_argument("task", type=kinds.task_name,
                        help="task name, e.g. hopper-3x1, halfcheetah-2x3")
    parser.add_argument("--method", default="mabcq", type=kinds.method_group,
                        help=f"one of {', '.join(METHOD_NAMES)}, mabcq-epsE (MABCQ at optimism "
                        "E), or methods of one family joined by '+' (e.g. mabcq+bcq, "
                        "macql+cql), trained together in one compiled step")
    # a plain path: load_training_data checks it first, naming the `mabcq data build` to run
    parser.add_argument("--data", required=True, type=Path,
                        help="dataset directory (one file per agent), or with --agent one file")
    parser.add_argument("--agent", type=kinds.non_negative_int, default=None,
                        help="decentralized deployment: train only this agent from its own "
                        "--data file (no simulator returns: they need every agent)")
    parser.add_argument("--seeds", default="0", type=kinds.seed_list,
                        help="comma-separated seeds, e.g. 0,1,2,3,4")
    parser.add_argument("--preset", default="quick", choices=PRESET_NAMES,
                        help="scale of the run (defaults for the flags below)")
    parser.add_argument("--updates", type=kinds.positive_int, help="Q/xi updates per agent")
    parser.add_argument("--pretrain-updates", type=kinds.non_negative_int,
                        help="generative-model (G1, G2) updates before the Q updates")
    parser.add_argument("--eval-every", type=kinds.positive_int,
                        help="updates between evaluations")
    parser.add_argument("--eval-episodes", type=kinds.positive_int,
                        help="simulator episodes per evaluation")
    parser.add_argument("--eval-max-steps", type=kinds.positive_int,
                        help="step limit of an evaluation episode")
    parser.add_argument("--checkpoint-every", type=kinds.positive_int,
                        help="updates between checkpoints (default: --eval-every)")
    parser.add_argument("--updates-per-call", type=kinds.positive_int,
                        help="updates inside one compiled call (reduced to divide the counts)")
    parser.add_argument("--batch-size", type=kinds.positive_int,
                        help="mini-batch size per agent (paper: 1024)")
    parser.add_argument("--optimism", type=kinds.probability,
                        help="eps in [0, 1]: lambda_vd is clipped to [1 - eps, 1 + eps] "
                        "(default: Table 8)")
    parser.add_argument("--hidden-sizes", type=kinds.hidden_sizes,
                        help="hidden layer widths, e.g. 64,64")
    parser.add_argument("--out", type=kinds.output_dir,
                        help="run directory (default runs/TASK-METHOD)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its last checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run_train)


def _register_evaluate(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="run independently trained policy files together in the simulator",
        description="Load one exported policy file per agent (each loads and acts without the "
        "others) and run them together in the simulator; print the returns.")
    parser.add_argument("task", type=kinds.task_name, help="task name, e.g. hopper-3x1")
    parser.add_argument("--policies", nargs="+", required=True, type=kinds.existing_file,
                        help="one policy file per agent, in agent order")
    parser.add_argument("--episodes", type=kinds.positive_int, default=5,
                        help="episodes to run")
    parser.add_argument("--seed", type=kinds.seed, default=0,
                        help="simulator and action seed")
    parser.add_argument("--max-steps", type=kinds.positive_int, default=None,
                        help="step limit per episode")
    acting = parser.add_argument_group(
        "acting (BCQ-family policies; docs/report.md, `mabcq acting`)")
    acting.add_argument("--candidates", type=kinds.positive_int, default=None, metavar="N",
                        help="actions drawn from G1 per state (default: the policy's own, 10; "
                             "1: no choice by the critic)")
    acting.add_argument("--perturbation", type=kinds.non_negative_number, default=None,
                        metavar="PHI", help="the perturbation's range, times the action bound "
                        "(default: the policy's own, 0.05; 0: no xi)")
    add_video_arguments(parser)
    parser.set_defaults(handler=run_evaluate)


def _register_demo(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="a minute-long end-to-end run: smoke data, MABCQ vs BCQ, a table",
        description="Build a smoke dataset for the task, train MABCQ and BCQ for a few hundred "
        "updates, evaluate them in the simulator and print a small table.")
    parser.add_argument("--task", default="hopper-3x1", type=kinds.task_name,
                        help="task name (default hopper-3x1)")
    # a text default: argparse checks it like a given value (an unwritable ./runs is refused)
    parser.add_argument("--out", type=kinds.output_dir, default="runs/demo",
                        help="output directory (default runs/demo)")
    parser.add_argument("--updates", type=kinds.positive_int, default=300,
                        help="updates per method")
    parser.add_argument("--seeds", default="0,1", type=kinds.seed_list,
                        help="comma-separated seeds")
    parser.set_defaults(handler=run_demo)


def load_training_data(task: Any, data: Path, agent: int | None) -> list[Any]:
    """The agents' datasets for `task` from --data (validated by the data package's loader;
    a warning when they were made with another MuJoCo than the installed one)."""
    from mabcq.api import load_datasets

    if agent is not None:
        if not 0 <= agent < task.n_agents:
            raise UserError(f"--agent {agent}: {task.name} has agents 0..{task.n_agents - 1}")
        if not data.is_file():
            raise UserError(f"--data {data}: with --agent give that agent's own dataset file")
    elif data.is_file():
        raise UserError(f"--data {data}: a file; give the dataset directory (one file per "
                        "agent), or --agent I with agent I's own file")
    elif not data.is_dir():
        raise UserError(f"--data {data}: no such dataset directory; build one with "
                        f"`mabcq data build {task.name} --preset smoke --out {data}`")
    return load_datasets(data)


def run_train(args: argparse.Namespace) -> int:
    from mabcq.api import fit
    from mabcq.envs.tasks import get_task
    from mabcq.training.config import make_config
    from mabcq.training.setup import validate_datasets
    from mabcq.util.compile_cache import enable_compilation_cache

    task = get_task(args.task)
    suffix = f"-agent{args.agent}" if args.agent is not None else ""
    run_dir = args.out or kinds.check(
        kinds.output_dir, Path("runs") / f"{task.name}-{args.method}{suffix}", "--out")
    config = make_config(
        task.name, args.method, args.seeds, args.preset,
        updates=args.updates, pretrain_updates=args.pretrain_updates,
        eval_every=args.eval_every, eval_episodes=args.eval_episodes,
        eval_max_steps=args.eval_max_steps, checkpoint_every=args.checkpoint_every,
        updates_per_call=args.updates_per_call, agent=args.agent,
        batch_size=args.batch_size, optimism=args.optimism,
        hidden_sizes=args.hidden_sizes)
    datasets = load_training_data(task, args.data, args.agent)
    validate_datasets(task, datasets, args.agent, str(args.data))
    enable_compilation_cache()
    summary = fit(config, datasets, run_dir, resume=args.resume,
                  progress=not args.no_progress).summary
    if args.agent is not None:
        print(f"{config.method}: agent {args.agent} of {task.name} trained alone from "
              f"{args.data}, seeds {list(config.seeds)}; policies in {run_dir / 'policies'}. "
              f"Run all agents together with `mabcq evaluate {task.name} --policies ...`")
        print(weights_report(run_dir / "metrics.csv"))
        return 0
    per_method = summary.get("methods") or {config.method: summary}
    for method, final in per_method.items():
        print(f"{method} on {task.name}, seeds {list(config.seeds)}: final return "
              f"{final['final_return_mean']:.1f} +- {final['final_return_std']:.1f}; "
              f"run dir {run_dir}")
    print(weights_report(run_dir / "metrics.csv"))
    return 0


def weights_report(metrics_csv: Path) -> str:
    """Lines on the importance weights and NaN over every row of a run's metrics.csv."""
    import math

    from mabcq.training.logs import read_csv_rows

    rows = read_csv_rows(metrics_csv)

    def values(column: str) -> list[float]:
        return [float(row[column]) for row in rows if row.get(column, "") != ""]

    lines = []
    checked = [value for column in ("critic_loss", "actor_loss", "q_mean", "lambda_vd_mean",
                                    "lambda_vd_max", "lambda_tn_mean", "lambda_tn_max",
                                    "return_mean")
               for value in values(column)]
    bad = sum(1 for value in checked if not math.isfinite(value))
    lines.append(f"losses, lambdas, returns over {len(rows)} rows: "
                 f"{'no NaN/inf' if not bad else f'{bad} NaN/inf values'}")
    if values("lambda_vd_mean"):
        lines.append(f"lambda_vd over batches: mean {min(values('lambda_vd_mean')):.3f}.."
                     f"{max(values('lambda_vd_mean')):.3f}, min {min(values('lambda_vd_min')):.3f},"
                     f" max {max(values('lambda_vd_max')):.3f}")
    if values("lambda_tn_mean"):
        lines.append(f"lambda_tn over batches: mean {min(values('lambda_tn_mean')):.3f}.."
                     f"{max(values('lambda_tn_mean')):.3f}, min {min(values('lambda_tn_min')):.4f},"
                     f" max {max(values('lambda_tn_max')):.2f}")
        final_update = max(int(row["update"]) for row in rows)
        last = [row for row in rows if int(row["update"]) == final_update
                and row.get("lambda_tn_data_in_paper_range", "") != ""]
        for row in last:
            lines.append(
                f"lambda_tn on {row.get('method') or 'seed'} seed {row['seed']}'s own-data "
                f"sample at update {row['update']}: "
                f"{float(row['lambda_tn_data_in_paper_range']):.1%} in [0.2, 1.4], "
                f"p05 {float(row['lambda_tn_data_p05']):.3f}, "
                f"median {float(row['lambda_tn_data_median']):.3f}, "
                f"p95 {float(row['lambda_tn_data_p95']):.3f}")
    return "\n".join(lines)


def run_evaluate(args: argparse.Namespace) -> int:
    from mabcq.cli.video_flags import options_from_args
    from mabcq.video import require_video

    video = options_from_args(args, args.episodes)
    if video is not None:
        require_video()  # before any work: one line naming what to install
    from mabcq.util.compile_cache import enable_compilation_cache

    enable_compilation_cache()
    from mabcq.api import evaluate
    from mabcq.envs.tasks import get_task

    task = get_task(args.task)
    policies = list(args.policies)
    if args.candidates is not None or args.perturbation is not None:
        from mabcq.learners.export import load_policy

        policies = []
        for path in args.policies:
            try:
                policies.append(load_policy(path).acting(args.candidates, args.perturbation))
            except UserError as error:
                raise UserError(f"{path}: {error}") from None
        print(f"acting: {policies[0].config.n_candidates} candidate(s) from G1, perturbation "
              f"range {policies[0].config.perturbation_scale:g}")
    result = evaluate(task.name, policies, args.episodes, seed=args.seed,
                      max_steps=args.max_steps, video=video)
    returns = result.episode_returns
    print(f"{task.name}: {len(args.policies)} independently loaded policies, "
          f"{len(returns)} episodes: return {returns.mean():.1f} +- {returns.std():.1f} "
          f"(mean length {result.episode_lengths.mean():.0f})")
    for path in result.videos:
        print(f"video: {path}")
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from mabcq.util.compile_cache import enable_compilation_cache

    enable_compilation_cache()
    demo(args.task, args.out, args.updates, list(args.seeds))
    return 0


DEMO_METHODS = ("mabcq", "bcq")


def demo(task_name: str, out: Path, updates: int, seeds: list[int]) -> list[dict[str, Any]]:
    """Smoke data -> MABCQ and BCQ -> evaluation -> a printed table (the README's first run)."""
    import shutil

    from mabcq.api import fit
    from mabcq.envs.tasks import get_task
    from mabcq.training.config import make_config
    from mabcq.video import video_unavailable

    task = get_task(task_name)
    no_video = video_unavailable()  # known before training; said at the end
    data_dir = out / "data"
    if not data_dir.is_dir():
        print(f"[1/3] building a smoke dataset for {task.name} in {data_dir}")
        build_smoke_data(task.name, data_dir)
    else:
        print(f"[1/3] reusing the smoke dataset in {data_dir}")
    datasets = load_training_data(task, data_dir, None)
    summaries, results = [], []
    for step, method in enumerate(DEMO_METHODS, start=2):
        run_dir = out / method
        if (run_dir / "config.json").exists():
            shutil.rmtree(run_dir)  # the demo's own earlier output
        print(f"[{step}/3] training {method} ({updates} updates, seeds {seeds}) in {run_dir}")
        config = make_config(task.name, method, seeds, "smoke", updates=updates,
                             eval_every=updates, eval_episodes=4, eval_max_steps=200)
        results.append(fit(config, datasets, run_dir))
        summaries.append(results[-1].summary)
    print(format_table(summaries))
    demo_clip(task.name, results[0], out / "video", seeds[0], no_video)
    return summaries


def demo_clip(task_name: str, result: Any, out: Path, seed: int, no_video: str | None) -> None:
    """The demo's last line: the path of a short clip of MABCQ's agents (or why there is none)."""
    from mabcq.video import film_policies

    method = DEMO_METHODS[0]
    if no_video is not None:
        print(f"no video of the trained agents: {no_video}")
        return
    paths = film_policies(task_name, result.policies(method, seed), out, method,
                          title=f"{task_name}  {method} seed {seed}")
    gif = [path for path in paths if path.suffix == ".gif"]
    print(f"video of {method}'s agents (seed {seed}) acting together: {paths[0]}"
          + (f" (GIF: {gif[0]})" if gif else ""))


def build_smoke_data(task_name: str, data_dir: Path) -> None:
    """`mabcq data build TASK --preset smoke --out DATA_DIR` (the data package's own command)."""
    from mabcq.cli import main

    if main(["data", "build", task_name, "--preset", "smoke", "--out", str(data_dir)]) != 0:
        raise UserError(f"building the smoke dataset in {data_dir} failed (see above)")


def format_table(summaries: list[dict[str, Any]]) -> str:
    """A markdown table of final returns and diagnostics, one row per method."""
    def number(value: float, digits: int) -> str:
        return "-" if value != value else f"{value:.{digits}f}"  # NaN: not reported

    lines = ["| method | return (mean +- std over seeds) | value difference | extrapolation "
             "error (all states) | lambda_vd mean | lambda_tn median | lambda_tn in [0.2, 1.4] |",
             "|---|---|---|---|---|---|---|"]
    for summary in summaries:
        lines.append(
            f"| {summary['method']} | {summary['final_return_mean']:.1f} +- "
            f"{summary['final_return_std']:.1f} | "
            f"{number(summary['final_value_difference_mean'], 3)} | "
            f"{number(summary['final_extrapolation_error_all_mean'], 2)} | "
            f"{number(summary['final_lambda_vd_mean'], 3)} | "
            f"{number(summary['final_lambda_tn_data_median'], 3)} | "
            f"{number(summary['final_lambda_tn_data_in_paper_range'], 2)} |")
    return "\n".join(lines)
