"""Add the cells a lent GPU machine finished (scripts/device_grid.sh's results.tgz, unpacked
into a folder of its own) to a results directory here (mabcq.grid.merge).

    PYTHONPATH=src python scripts/merge_device_cells.py UNPACKED OUT --commit PIN [--dry-run]

Copies the cells OUT lacks with their code declared at PIN (the machine's copy of the tree
has no git history of ours), never overwrites a cell, keeps OUT's grid.json and behavior files
(says which of the machine's differ: its datasets were rebuilt there) and rebuilds OUT's CSVs.
Exit 0: done; 2: bad input (one line).
"""

import argparse
import sys
from pathlib import Path

from mabcq.errors import UserError
from mabcq.grid.merge import merge_cells


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="merge_device_cells.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="folder where results.tgz was unpacked")
    parser.add_argument("out", type=Path, help="results directory here, e.g. results/paper")
    parser.add_argument("--commit", required=True, help="the pinned commit, 40 hex digits")
    parser.add_argument("--dry-run", action="store_true", help="say what would be copied")
    args = parser.parse_args(argv)
    try:
        done = merge_cells(args.source, args.out, args.commit, args.dry_run)
    except UserError as error:
        print(f"merge_device_cells: error: {error}", file=sys.stderr)
        return 2
    for name in done.copied:
        print(f"{'would copy' if args.dry_run else 'copied'}: {name}")
    for name in done.behavior_differs:
        print(f"kept {args.out}'s {name}: the machine's differs (its datasets are other bytes)")
    print(f"{len(done.copied)} cell(s) {'to copy' if args.dry_run else 'copied'}; "
          f"{len(done.held)} already in {args.out}, left as they are")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
