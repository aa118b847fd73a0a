"""`mabcq data export` and `mabcq data import`: other formats in and out (docs/data_formats.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mabcq.cli import kinds

OBS_HELP = ("observations to store: state (the global state, as mabcq's own tasks do; default "
            "when the source has one) or local (the agent's own observation)")
TASK_HELP = ("the task the data were recorded on: a mabcq task (the files are then checked "
             "against it and can be trained and evaluated) or a name of your own (valid files, "
             "`mabcq data info`/export work; training needs a task mabcq knows)")


def register(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser(
        "export", help="write a dataset directory in another format (Minari)",
        description="Write each agent file of DIR as one Minari dataset "
                    "mabcq/TASK/NAME-agentI-v0 (its own action space, episodes split at "
                    "terminals and timeouts, the file's metadata under the key 'mabcq').")
    export.add_argument("directory", type=kinds.existing_dir, help="a dataset directory")
    export.add_argument("--to", required=True, choices=("minari",), help="the format")
    export.add_argument("--out", type=kinds.output_dir,
                        help="Minari datasets root (default: $MINARI_DATASETS_PATH, else "
                             "~/.minari/datasets)")
    export.add_argument("--name", type=kinds.name_part,
                        help="dataset name in the id (default: the recipe)")
    export.set_defaults(handler=_export)

    importer = commands.add_parser(
        "import", help="read Minari, OMAR, OMIGA or OG-MARL data into per-agent files",
        description="Read another format into OUT/agent_{i}.h5, each agent keeping only its "
                    "own action, with the source recorded in the metadata.")
    formats = importer.add_subparsers(dest="source_format", metavar="FORMAT", required=True)
    minari = formats.add_parser(
        "minari", help="Minari datasets, one per agent (or one joint one)",
        description="Datasets exported by mabcq come back exactly. Others become agents "
                    "0..N-1 in the order given; one dataset whose actions are a known task's "
                    "joint action is split into that task's agents.")
    minari.add_argument("sources", nargs="+", metavar="DATASET_ID_OR_PATH",
                        type=kinds.dataset_source,
                        help="a Minari dataset id in the local root or a dataset path")
    _common(minari, task_required=False, obs=False)
    omar = formats.add_parser("omar", help="OMAR's per-agent .npy directory",
                              description="DIR holds obs_{i}.npy, acs_{i}.npy, rews_{i}.npy, "
                                          "next_obs_{i}.npy, dones_{i}.npy (and states_{i}.npy, "
                                          "next_states_{i}.npy for multi-agent MuJoCo).")
    omar.add_argument("source", type=kinds.existing_dir, help="OMAR dataset directory")
    _common(omar)
    omiga = formats.add_parser("omiga", help="OMIGA's joint HDF5 file",
                               description="An HDF5 file with s, o, a [T, agents, dim], r, d.")
    omiga.add_argument("source", type=kinds.existing_file, help="OMIGA .hdf5 file")
    _common(omiga)
    ogmarl = formats.add_parser("og-marl", help="OG-MARL's Flashbax vault",
                                description="A vault's UID directory (e.g. vaults/og_marl/"
                                            "mamujoco/2halfcheetah.vlt/Good), or the .vlt "
                                            "directory with --uid.")
    ogmarl.add_argument("source", type=kinds.existing_dir, help="vault directory")
    ogmarl.add_argument("--uid", type=kinds.name_part, help="the vault UID (e.g. Good)")
    _common(ogmarl)
    importer.set_defaults(handler=_import)


def _common(parser: argparse.ArgumentParser, *, task_required: bool = True,
            obs: bool = True) -> None:
    parser.add_argument("--out", required=True, type=kinds.output_dir,
                        help="output directory for agent_{i}.h5")
    parser.add_argument("--task", required=task_required, type=kinds.task_label,
                        help=TASK_HELP + ("" if task_required else
                                          " (default: the task recorded by mabcq)"))
    if obs:
        parser.add_argument("--obs", choices=("state", "local"), help=OBS_HELP)


def _export(args: argparse.Namespace) -> int:
    from mabcq.data.interop.minari_io import default_root, export_minari

    root = args.out or default_root()
    for ident in export_minari(args.directory, root, args.name):
        print(f"{ident}  ({Path(root) / ident})")
    return 0


def _import(args: argparse.Namespace) -> int:
    from mabcq.data.interop.common import build_agent_datasets, known_task, write_agent_files

    path = str(getattr(args, "source", ""))
    notes: list[str] = []
    if args.source_format == "minari":
        from mabcq.data.interop.minari_io import import_minari

        datasets = import_minari(list(args.sources), args.task, notes)
    else:
        task = known_task(args.task)
        if args.source_format == "omar":
            from mabcq.data.interop.omar import read_omar

            agents, obs, writer, identity = read_omar(args.source, args.obs)
        elif args.source_format == "omiga":
            from mabcq.data.interop.omiga import read_omiga

            agents, obs, writer, identity = read_omiga(args.source, args.obs, task)
        else:
            from mabcq.data.interop.ogmarl import read_ogmarl

            agents, obs, writer, identity = read_ogmarl(args.source, args.uid, args.obs,
                                                        task is not None)
        datasets = build_agent_datasets(agents, task=args.task, obs=obs,
                                        source_format=args.source_format, source_path=path,
                                        writer=writer, identity=identity, notes=notes)
    for note in notes:
        print(f"mabcq: note: {note}", file=sys.stderr)
    for written in write_agent_files(datasets, args.out):
        print(written)
    return 0
