"""Copy the cells one results directory of `mabcq reproduce` has finished into another that asks
for them, so that no cell is trained twice (the study reuses the main grid's mabcq and bcq
cells, and the grid the study's: docs/study.md, "Execution").

    PYTHONPATH=src python scripts/share_cells.py SOURCE DEST --commit SHA[,SHA..]
        [--methods M,..] [--dry-run]
    PYTHONPATH=src python scripts/share_cells.py SOURCE DEST --same-learner --commit SHA[,SHA..]

Copies every cell of SOURCE that DEST lacks, of DEST's grid.json tasks and seeds and its methods
(or --methods), when both grids ask it with the same settings, it holds DEST's recipe and it
was trained at one of the SHAs (the pinned commit, and earlier pins whose smoke grid was bitwise
equal to it) from a clean checkout (mabcq.grid.share). Cells both
hold are compared bitwise, never overwritten. A cell of another kind on either side (trained in
a group, as a lent GPU trains, or with other library versions) is listed, neither copied nor
compared.
With --same-learner, SOURCE's cells of a full method (mabcq) go to the names DEST's grid.json
asks that build the same learner on that task, the eps sweep's cell at the task's own eps
(mabcq.grid.share.alias_cells; SOURCE may be DEST); a copy records the cell file it came from
(`aliased_from`) and the method it trained as (`trained_as`).
Exit 0: done; 1: some cell both hold has different numbers (listed); 2: bad input (one line).
"""

import argparse
import sys
from pathlib import Path

from mabcq.cli import kinds
from mabcq.errors import UserError
from mabcq.grid.share import alias_cells, share_cells


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="share_cells.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="results directory holding finished cells")
    parser.add_argument("dest", type=Path, help="results directory to copy them into")
    parser.add_argument("--commit", required=True, type=kinds.commit_list,
                        help="the pinned commit both grids run from (7+ hex digits), then any "
                             "earlier pins the grids hold cells of, comma-separated")
    parser.add_argument("--methods", default="",
                        help="comma-separated methods to copy, also ones DEST's grid does not "
                             "train itself (default: the methods of DEST's grid.json)")
    parser.add_argument("--same-learner", action="store_true",
                        help="copy each full method's cell to the eps name that builds its "
                             "learner on the task (the eps sweep at the task's own eps); "
                             "SOURCE may be DEST")
    parser.add_argument("--dry-run", action="store_true", help="say what would be copied")
    args = parser.parse_args(argv)
    try:
        if args.same_learner:
            if args.methods:
                raise UserError("--same-learner copies to the names DEST's grid.json asks: "
                                "give no --methods")
            done = alias_cells(args.source, args.dest, args.commit, args.dry_run)
        else:
            done = share_cells(args.source, args.dest, args.commit,
                               tuple(m for m in args.methods.split(",") if m), args.dry_run)
    except UserError as error:
        print(f"share_cells: error: {error}", file=sys.stderr)
        return 2
    for name in done.differing:
        print(f"differs: {name}")
    for line in done.apart:
        print(f"apart (neither copied nor compared): {line}")
    verb = "would copy" if args.dry_run else "copied"
    print(f"{verb} {len(done.copied)} cell(s) from {args.source} to {args.dest}; "
          f"{len(done.equal)} held by both, equal bitwise; {len(done.differing)} differ; "
          f"{len(done.apart)} of another kind")
    return 1 if done.differing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
