"""`mabcq acting RESULTS`: where a BCQ-family policy's return comes from (G1, the critic's
choice among G1's candidates, the perturbation xi), per finished cell, into RESULTS/acting.csv."""

from __future__ import annotations

import argparse

from mabcq.cli import kinds


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "acting", help="re-run each finished BCQ-family cell's final evaluation with parts of "
                       "its policy switched off (G1 alone, no xi, no choice by the critic)",
        description="For every finished cell of a BCQ-family method in RESULTS/cells/ whose "
                    "policies are in RESULTS/runs/ (the machine that trained it), re-run its "
                    "final evaluation (same simulator seeds, same key streams) four times: "
                    "policy (n = 10 candidates from G1, xi at Phi = 0.05: must reproduce the "
                    "recorded return), g1 (one G1 sample, no xi), argmax (the critic's choice "
                    "among n G1 samples, no xi), perturb (xi on one G1 sample). Writes "
                    "RESULTS/acting.csv (kept between calls: finished cells are skipped); "
                    "`mabcq report` shows it. Never trains.")
    parser.add_argument("results", type=kinds.existing_dir, metavar="RESULTS",
                        help="a results directory that `mabcq reproduce` wrote")
    parser.add_argument("--tasks", type=kinds.task_list, metavar="LIST",
                        help="only these tasks (comma-separated; default: every task)")
    parser.add_argument("--methods", type=kinds.method_list, metavar="LIST",
                        help="only these methods (default: every BCQ-family method)")
    parser.add_argument("--runs-from", type=kinds.existing_dir, action="append", default=[],
                        metavar="DIR", help="another results directory whose runs/ holds the "
                        "policies of cells copied into RESULTS (scripts/share_cells.py); "
                        "repeatable")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(handler=_acting)


def _acting(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from mabcq.errors import UserError
    from mabcq.grid.acting import ACTING_FILE, pending_cells, run_acting

    if not (args.results / "cells").is_dir():
        raise UserError(f"{args.results}: no cells/ directory; give a results directory that "
                        "`mabcq reproduce` wrote")
    todo, _ = pending_cells(args.results, args.tasks, args.methods, args.runs_from)
    with tqdm(total=len(todo), unit="cell", disable=args.no_progress) as bar:
        started = []

        def on_cell(cell) -> None:  # called as each cell starts: the one before it is done
            if started:
                bar.update(1)
            started.append(cell)
            bar.set_description(f"{cell.task} {cell.method} seed {cell.seed}")

        summary = run_acting(args.results, args.tasks, args.methods, on_cell, args.runs_from)
        bar.update(len(started) - bar.n)
    print(f"{args.results / ACTING_FILE}: {len(summary.done)} cell(s) re-run, "
          f"{summary.kept} already there")
    for line in summary.skipped:
        print(f"  skipped {line}")
    for line in summary.not_reproduced:
        print(f"  NOT REPRODUCED {line}")
    return 1 if summary.not_reproduced else 0
