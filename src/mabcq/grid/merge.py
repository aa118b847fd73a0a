"""Bring the cells a lent GPU machine finished into a results directory here, without letting
that machine's view of things replace ours.

`scripts/device_grid.sh` leaves its OUT (grid.json, the CSVs, behavior*.json, cells/) as an
archive. Unpacking it over results/paper would replace grid.json (the machine's library
versions), behavior*.json (the returns of the machine's own rebuild of the datasets) and the
CSVs. Only the new cells belong to the grid: this copies the cells OUT lacks, never overwrites
one (a task's behavior file only where OUT has none), and rebuilds the CSVs from OUT's cells
(cells.collect).

The machine's copy of the tree has no git history of ours (one there named a commit that did not
run), so a cell's commit is declared: `provenance.code` gets the pin (commit, `dirty` None,
`declared`), and what the machine recorded, if other, is kept as `recorded_commit`. A cell that
itself declares another commit (code that reads MABCQ_CODE_COMMIT) is refused: it ran other code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mabcq.errors import UserError
from mabcq.grid.cells import collect
from mabcq.util import atomic
from mabcq.util.jsonfile import read_json_object

REQUIRED = {"task", "method", "seed", "group", "rows", "timing", "provenance"}
DECLARED = "the pinned tree was copied to a lent machine (scripts/device_grid.sh)"


@dataclass
class Merged:
    """What merge_cells did: cells copied, cells OUT already held (left as they are), and
    behavior files whose returns differ from OUT's (the machine's datasets are other bytes)."""

    copied: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    behavior_differs: list[str] = field(default_factory=list)


def declared_code(code: dict[str, Any], commit: str) -> dict[str, Any]:
    """`provenance.code` of a cell made from a copy of the tree at COMMIT (40 hex digits)."""
    recorded = str(code.get("commit") or "unknown")
    return {"commit": commit, "dirty": None, "dirty_paths": [], "declared": DECLARED,
            **({"recorded_commit": recorded} if recorded.lower() != commit else {})}


def merge_cells(source: Path, out: Path, commit: str, dry_run: bool = False) -> Merged:
    """Copy SOURCE's cells that OUT lacks into OUT with their code declared at COMMIT, then
    rebuild OUT's CSVs. Every cell is read and checked before any is written."""
    commit = commit.strip().lower()
    if len(commit) != 40 or any(c not in "0123456789abcdef" for c in commit):
        raise UserError(f"--commit {commit!r}: give the pinned commit in full (40 hex digits)")
    if not (out / "grid.json").is_file():
        raise UserError(f"{out / 'grid.json'}: not found; merge into a grid made here")
    found = sorted((source / "cells").glob("*/*/seed_*.json"))
    if not found:
        raise UserError(f"{source / 'cells'}: no cells (unpack the machine's results.tgz there)")
    done, copies = Merged(), []
    for path in found:
        name = str(path.relative_to(source / "cells").with_suffix(""))
        mine = out / "cells" / path.relative_to(source / "cells")
        if mine.is_file():
            done.held.append(name)
            continue
        cell = read_json_object(path, "cell record")
        if not REQUIRED <= cell.keys():
            raise UserError(f"{path}: not a finished cell (it lacks "
                            f"{', '.join(sorted(REQUIRED - cell.keys()))})")
        provenance = cell["provenance"]
        code = provenance.get("code") or {}
        if code.get("declared") and str(code.get("commit", "")).lower() != commit:
            raise UserError(f"{path}: declares commit {str(code.get('commit'))[:12]}, not "
                            f"{commit[:12]}: it ran other code than the pin")
        copies.append((mine, {**cell, "provenance": {
            **provenance, "code": declared_code(code, commit)}}))
        done.copied.append(name)
    behaviors = []  # a task's dataset returns: OUT's where it has them, else the machine's
    for path in sorted((source / "cells").glob("*/behavior*.json")):
        mine = out / "cells" / path.relative_to(source / "cells")
        data, value = _json(path)
        if not mine.is_file():
            behaviors.append((mine, data))
        elif value != _json(mine)[1]:
            done.behavior_differs.append(str(path.relative_to(source / "cells")))
    if (copies or behaviors) and not dry_run:
        from mabcq.training.logs import write_json_atomic

        for mine, cell in copies:
            write_json_atomic(mine, cell)
        for mine, data in behaviors:
            atomic.write_bytes(mine, data)
        collect(out)
    return done


def _json(path: Path) -> tuple[bytes, Any]:
    """PATH's bytes and their JSON value, read once; UserError naming PATH if unreadable."""
    try:
        data = path.read_bytes()
        return data, json.loads(data)
    except (OSError, ValueError) as error:
        raise UserError(f"{path}: not readable JSON ({error})") from None
