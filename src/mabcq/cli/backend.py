"""`--backend`, `--address`, `--cpus-per-task`, `--gpus-per-task`: the flags of the commands that
train on Ray (`mabcq reproduce`, `mabcq decentralized`), and the RayOptions they stand for.
Running the jobs is mabcq.grid.ray_backend's."""

from __future__ import annotations

import argparse

from mabcq.cli import kinds
from mabcq.errors import UserError
from mabcq.grid.ray_backend import INSTALL_HINT, RayOptions, require_ray


def add_backend_flags(parser: argparse.ArgumentParser, unit: str) -> None:
    """--backend, --address, --cpus-per-task, --gpus-per-task (`unit`: what one task runs)."""
    parser.add_argument("--backend", choices=("local", "ray"), default="local",
                        help=f"local (default): in this process; ray: one Ray task per {unit} "
                        f"on a Ray cluster (needs {INSTALL_HINT})")
    parser.add_argument("--address", type=kinds.ray_address,
                        help="with --backend ray: the cluster to join (auto, or HOST:PORT of "
                        "`ray start --head`); default: the cluster `ray start` runs on this "
                        "machine, else a local Ray instance for this command")
    parser.add_argument("--cpus-per-task", type=kinds.ray_resource,
                        help="with --backend ray: CPUs each task reserves (default 1)")
    parser.add_argument("--gpus-per-task", type=kinds.ray_resource,
                        help="with --backend ray: GPUs each task reserves, fractional to share "
                        "a card (e.g. 0.25: four tasks per GPU; default 0)")


def options_from_args(args: argparse.Namespace) -> RayOptions | None:
    """RayOptions for --backend ray (Ray must be importable), None for local; Ray flags
    without --backend ray are refused."""
    given = [flag for flag, value in (("--address", args.address),
                                      ("--cpus-per-task", args.cpus_per_task),
                                      ("--gpus-per-task", args.gpus_per_task)) if value is not None]
    if args.backend != "ray":
        if given:
            raise UserError(f"{given[0]} needs --backend ray")
        return None
    require_ray()
    return RayOptions(address=args.address,
                      cpus_per_task=1.0 if args.cpus_per_task is None else args.cpus_per_task,
                      gpus_per_task=0.0 if args.gpus_per_task is None else args.gpus_per_task)
