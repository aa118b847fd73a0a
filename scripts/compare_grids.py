"""Do two results directories of `mabcq reproduce` hold the same numbers, bitwise?

    PYTHONPATH=src python scripts/compare_grids.py OUT_A OUT_B

Compares every cell file (cells/<task>/<method>/seed_<s>.json) without its clocks and
provenance (grid.cells.cell_numbers). Exit 0: the same cells, the same numbers; 1: the
differing or unmatched cells are listed; 2: a directory without cells/. Use it before moving
a pinned grid to a new commit (docs/reproduce.md, "A pinned checkout").
"""

import sys
from pathlib import Path

from mabcq.grid.cells import differing_cells


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: compare_grids.py OUT_A OUT_B", file=sys.stderr)
        return 2
    first, second = (Path(arg) for arg in argv)
    for out in (first, second):
        if not (out / "cells").is_dir():
            print(f"compare_grids: error: {out}: no cells/ directory (not a reproduce OUT)",
                  file=sys.stderr)
            return 2
    differing = differing_cells(first, second)
    for name in differing:
        print(f"differs: {name}")
    count = len(list((first / "cells").glob("*/*/seed_*.json")))
    print(f"{count - len(differing)} of {count} cells equal" if differing
          else f"all {count} cells equal, bitwise")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
