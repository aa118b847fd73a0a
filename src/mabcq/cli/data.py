"""`mabcq data build` and `mabcq data info` (`export` and `import`: data/interop/commands.py)."""

from __future__ import annotations

import argparse
import json

from mabcq.cli import kinds


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data", help="build and inspect per-agent offline datasets",
        description="Build the paper's per-agent datasets from SAC behavior policies, or "
                    "inspect dataset files.")
    commands = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    build = commands.add_parser(
        "build", help="build one HDF5 file per agent for a task and recipe",
        description="Build OUT/agent_{i}.h5 for every agent. Without --behavior, the quick "
                    "and paper presets use the task's shipped behavior policies when the "
                    "package has them; otherwise (and always for smoke) SAC is trained first "
                    "(at the preset's scale) into OUT/behavior, resumably.")
    build.add_argument("task", type=kinds.task_name,
                       help="task name, e.g. hopper-3x1 (see `mabcq behavior tasks`)")
    build.add_argument("--recipe", default="paper", choices=("paper", "low", "medium-replay"),
                       help="dataset recipe (default: paper)")
    build.add_argument("--preset", default="smoke", choices=("smoke", "quick", "paper"),
                       help="sizes and SAC scale: smoke (seconds), quick, paper (10^6 per "
                            "agent); default smoke")
    build.add_argument("--out", required=True, type=kinds.output_dir,
                       help="output directory")
    build.add_argument("--behavior", metavar="shipped|DIR", type=kinds.behavior_source,
                       help="`shipped`: the package's shipped behavior policies of the task; "
                            "DIR: a trained `mabcq behavior train` directory (write ./shipped "
                            "for a directory of that name)")
    build.add_argument("--shipped-root", type=kinds.existing_dir,
                       help="look for shipped sets (TASK/behavior.json) here instead of in the "
                            "package")
    build.add_argument("--size", type=kinds.positive_int,
                       help="transitions per agent (overrides the preset)")
    build.add_argument("--noise", type=kinds.non_negative_number,
                       help="std of the Gaussian action noise of rollout parts (default 0.1)")
    build.add_argument("--seed", type=kinds.seed, default=0,
                       help="seed of SAC and the rollouts")
    build.add_argument("--num-envs", type=kinds.env_count,
                       help="lockstep envs per rollout")
    build.add_argument("--jobs", type=kinds.positive_int, default=1,
                       help="agent files built at once, one process each (same files as 1; "
                       "default 1)")
    build.add_argument("--obs", default="global", choices=("global", "local"),
                       help="what each agent's file holds as its observation: the global state "
                            "(default, the paper's setting) or its MaMuJoCo local observation "
                            "(docs/observations.md)")
    build.add_argument("--obsk", type=kinds.non_negative_int,
                       help="with --obs local: observe joints up to K hops away in MaMuJoCo's "
                            "joint graph (MaMuJoCo's agent_obsk; default 1)")
    build.add_argument("--intermediate-step", type=kinds.non_negative_int,
                       help="use the SAC snapshot at this step as the intermediate policy")
    build.add_argument("--expert-step", type=kinds.non_negative_int,
                       help="use the SAC snapshot at this step as the expert policy")
    build.add_argument("--no-progress", action="store_true", help="hide progress bars")
    build.set_defaults(handler=_build)

    info = commands.add_parser(
        "info", help="size, parts, returns and per-dimension stats of dataset files",
        description="Summarize an agent file or a directory of agent files (validated).")
    info.add_argument("path", type=kinds.existing_path,
                      help="an agent_*.h5 file or a dataset directory")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.add_argument("--no-dims", action="store_true", help="omit per-dimension stats")
    info.set_defaults(handler=_info)

    from mabcq.cli.interop import register as register_interop

    register_interop(commands)


def _build(args: argparse.Namespace) -> int:
    from mabcq.data.io import agent_file_name
    from mabcq.data.recipes import DATA_PRESETS
    from mabcq.data.sources import build_dataset_files
    from mabcq.envs.observations import observation_spec
    from mabcq.envs.tasks import get_task
    from mabcq.util.compile_cache import enable_compilation_cache

    task = get_task(args.task)
    obs = observation_spec(args.obs, args.obsk)
    preset = DATA_PRESETS[args.preset]
    size = args.size if args.size is not None else preset.size
    for agent in range(task.n_agents):  # where the files go: not a directory
        kinds.check(kinds.output_file, args.out / agent_file_name(agent), "--out")
    enable_compilation_cache()
    # The same call as mabcq.build_datasets (which loads the files it writes).
    paths = build_dataset_files(task, args.recipe, args.preset, args.out,
                                behavior=args.behavior, shipped_root=args.shipped_root,
                                size=size, noise=args.noise, seed=args.seed,
                                num_envs=args.num_envs, jobs=args.jobs,
                                intermediate_step=args.intermediate_step,
                                expert_step=args.expert_step, progress=not args.no_progress,
                                obs=obs)
    for path in paths:
        print(path)
    return 0


def _info(args: argparse.Namespace) -> int:
    from mabcq.data.info import format_summary, summarize_path

    summaries = summarize_path(args.path)
    if args.json:
        print(json.dumps(summaries, indent=2))
    else:
        print("\n\n".join(format_summary(s, dims=not args.no_dims) for s in summaries))
    return 0
