"""`mabcq behavior train`, `mabcq behavior ship` and `mabcq behavior tasks`."""

from __future__ import annotations

import argparse

from mabcq.cli import kinds


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "behavior", help="SAC behavior policies of the multi-agent MuJoCo tasks",
        description="Train the SAC behavior policies the dataset recipes draw from.")
    commands = parser.add_subparsers(dest="behavior_command", metavar="SUBCOMMAND",
                                     required=True)
    train = commands.add_parser(
        "train", help="train SAC on a task's joint action (resumes from OUT/checkpoint.npz)",
        description="Train SAC with lockstep envs, periodic evaluation and snapshots. Run the "
                    "same command again after a kill to resume from the last checkpoint.")
    train.add_argument("task", type=kinds.task_name,
                       help="task name, e.g. halfcheetah-2x3 (`mabcq behavior tasks`)")
    train.add_argument("--preset", default="smoke", choices=("smoke", "quick", "paper"),
                       help="SAC scale: smoke (seconds), quick (~60k steps), paper (10^6 "
                            "steps); default smoke")
    train.add_argument("--out", required=True, type=kinds.output_dir,
                       help="output directory")
    train.add_argument("--seed", type=kinds.seed, default=0, help="seed (default 0)")
    train.add_argument("--total-steps", type=kinds.positive_int,
                       help="env steps (overrides the preset)")
    train.add_argument("--num-envs", type=kinds.env_count,
                       help="lockstep envs (overrides the preset)")
    train.add_argument("--eval-every", type=kinds.positive_int,
                       help="env steps between evaluations")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    train.set_defaults(handler=_train)

    ship = commands.add_parser(
        "ship", help="copy the snapshots the dataset recipes need into the package's shipped set",
        description="Write the shipped behavior set of a task (src/mabcq/behavior/shipped/TASK/: "
                    "the intermediate and expert snapshots, the early snapshots that re-create "
                    "SAC's early experience by rollouts, and behavior.json with hashes and "
                    "versions) from a `mabcq behavior train` directory.")
    ship.add_argument("behavior_dir", type=kinds.existing_dir, metavar="BEHAVIOR_DIR",
                      help="a `mabcq behavior train` output directory")
    ship.add_argument("--task", required=True, type=kinds.task_name,
                      help="the task SAC was trained on")
    ship.add_argument("--shipped-root", type=kinds.output_dir,
                      help="write TASK/ under this directory instead of the package's")
    ship.add_argument("--early-until", type=kinds.positive_int,
                      help="env steps of SAC's early experience to make re-creatable (default: "
                           "the paper preset's early part or the intermediate step, whichever "
                           "is later, capped at SAC's env steps)")
    ship.add_argument("--early-every", type=kinds.positive_int,
                      help="env steps between early snapshots (default: a tenth of "
                           "--early-until in whole evaluation periods: 20 000 at paper scale)")
    ship.set_defaults(handler=_ship)

    tasks = commands.add_parser("tasks", help="list the tasks and their action partitions")
    tasks.set_defaults(handler=_tasks)


def _train(args: argparse.Namespace) -> int:
    from mabcq.behavior.train import preset_config, train_behavior
    from mabcq.envs.tasks import get_task
    from mabcq.util.compile_cache import enable_compilation_cache

    task = get_task(args.task)
    config = preset_config(args.preset, total_steps=args.total_steps, num_envs=args.num_envs,
                           eval_every=args.eval_every)
    enable_compilation_cache()
    record = train_behavior(task, config, args.out, seed=args.seed,
                            progress=not args.no_progress)
    levels = record["levels"]
    print(f"{task.name}: {record['env_steps']} env steps, {record['updates']} updates, "
          f"{record['env_steps_per_second']:.0f} env steps/s")
    for level in ("intermediate", "expert"):
        print(f"  {level}: step {levels[level]['step']}, eval return "
              f"{levels[level]['return_mean']:.1f} ({levels[level]['rule']})")
    print(args.out / "behavior.json")
    return 0


def _ship(args: argparse.Namespace) -> int:
    from mabcq.behavior.ship import ship_behavior, shipped_dir
    from mabcq.envs.tasks import get_task

    task = get_task(args.task)
    record = ship_behavior(args.behavior_dir, task, args.shipped_root,
                           early_every=args.early_every, early_until=args.early_until)
    out = shipped_dir(task.name, args.shipped_root)
    for snapshot in record["snapshots"]:
        roles = ", ".join(text.split(":")[0] for text in snapshot["stands_for"])
        print(f"  {snapshot['file']}  {snapshot['bytes'] / 1024:.0f} KiB  {roles}  (eval "
              f"return {snapshot['eval_return']:.1f})")
    early = record["early"]
    print(f"{task.name}: {len(record['snapshots'])} snapshots, "
          f"{record['bytes'] / 2**20:.2f} MiB; early experience re-creatable up to env step "
          f"{early['until_step']} ({len(early['segments'])} segments); policies_sha256 "
          f"{record['policies_sha256']}")
    print(out / "behavior.json")
    return 0


def _tasks(args: argparse.Namespace) -> int:
    from mabcq.envs.tasks import TASKS

    for task in TASKS.values():
        print(f"{task.name:<16} state {task.state_dim:>2}  agents {task.n_agents}  "
              f"slices {list(task.action_slices)}  ({task.gym_id})")
    return 0
