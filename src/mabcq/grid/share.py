"""One finished cell serves every grid that asks for it: copy the cells two results
directories have in common (same task, method, seed, recipe, settings and code commit) from one
to the other, so that a study reusing the main grid's methods (docs/study.md) trains none of
them twice. A cell trains its (task, method, seed) alone in its own process, so the same cell
asked by two grids is the same computation; where both already hold it, its numbers must be
equal bitwise (cells.cell_numbers), and a difference is reported, never overwritten. A cell of
another kind (trained in a group, as a GPU trains, or with other library versions) is no such
computation: it stays in its own grid, neither copied nor compared (`other_kind`).

Within one grid, a method name may build the very learner of another on a task: the ε sweep's
cell at the task's own ε (Table 8; `mabcq-eps0.80` on HalfCheetah is MABCQ). A cell's keys come
from its seed and agents, not its method's name, so such a cell is its full method's cell
bitwise (tests/test_reproduce_cells.py trains both); `alias_cells` copies it instead of training
it again (20 of the sweep's 120 cells)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mabcq.errors import UserError
from mabcq.grid.cells import cell_numbers, cell_path, collect, made_at, trained_as
from mabcq.grid.groups import Grid, group_name
from mabcq.learners.registry import family_of, learner_config, parse_method
from mabcq.util.jsonfile import read_json_object

# grid.json's entries that decide a cell's numbers besides its task, method and seed: one value
# for the grid, or one per task and family ("task/family" keys; batch_size: "family" keys).
# `overrides` is compared as given, so an explicit flag equal to its default is refused: a safe
# refusal, where comparing only resolved values could miss a learner setting grid.json does not
# list. The datasets themselves are not compared: a recipe's files are rebuilt bitwise from the
# shipped policies (docs/datasets.md), and both grids read them from one --data-root here.
SETTINGS = ("preset", "eval_every", "eval_episodes", "overrides")
GROUP_SETTINGS = ("recipes", "updates", "transitions_per_agent", "batch_size")


@dataclass
class Shared:
    """What share_cells did: cells copied, cells both held with equal numbers, cells both
    held with different numbers (a reproducibility failure to look into), and cells of another
    kind (other_kind: a GPU's group, other versions) neither copied nor compared."""

    copied: list[str] = field(default_factory=list)
    equal: list[str] = field(default_factory=list)
    differing: list[str] = field(default_factory=list)
    apart: list[str] = field(default_factory=list)  # "name: why" (other_kind), left alone


def _grid(out: Path) -> dict[str, Any]:
    path = out / "grid.json"
    if not path.is_file():
        raise UserError(f"{path}: not found (run `mabcq reproduce --out {out}` once, with "
                        "--stop-after 1s to train nothing, so that the grid's request is recorded)")
    return read_json_object(path, "grid record")


def _setting(grid: dict[str, Any], name: str, task: str, method: str) -> Any:
    """grid.json's NAME for one cell: the grid's single value, or its task's and family's."""
    value = grid.get(name)
    if not isinstance(value, dict) or name == "overrides":
        return value
    family = family_of(method).name
    return value.get(family if name == "batch_size" else f"{task}/{family}")


def other_kind(cell: dict[str, Any], versions: Any, method: str, seed: int) -> str | None:
    """Why CELL is not the computation a cell of this grid is, though the same (task, method,
    seed) and settings: trained in a group with other cells (one compiled step, equal only to
    float tolerance; a GPU's `--unit group`), or with other library versions than VERSIONS (a
    lent machine's). Such a cell is its own grid's, never copied for another's nor compared
    bitwise with one; None when it is the same kind."""
    if cell.get("group") != group_name((trained_as(cell, method),), (seed,)):
        return f"trained in group {cell.get('group')!r} with other cells, not alone"
    provenance = cell.get("provenance") or {}
    if provenance.get("versions") != versions:
        return f"trained with other library versions ({provenance.get('versions')})"
    return None


def _shareable(held: Path, source: Path, dest: Path, grids: tuple[dict, dict], task: str,
               method: str, seed: int, commits: tuple[str, ...]
               ) -> tuple[dict[str, Any], str | None]:
    """SOURCE's cell at HELD, once it is known to be the cell DEST asks for, and why it is of
    another kind (other_kind; None when it is not); else UserError."""
    if _setting(grids[1], "recipes", task, method) is None:
        raise UserError(f"{dest / 'grid.json'}: no settings recorded for {task}'s "
                        f"{family_of(method).name} methods, so {method}'s cell cannot be checked")
    differ = [(key, *(_setting(grid, key, task, method) for grid in grids))
              for key in (*SETTINGS, *GROUP_SETTINGS)
              if len({json.dumps(_setting(grid, key, task, method)) for grid in grids}) > 1]
    if differ:
        raise UserError(f"{held}: {source} and {dest} ask this cell with different settings ("
                        + ", ".join(f"{key} {a!r} vs {b!r}" for key, a, b in differ)
                        + "): not the same cell")
    cell = read_json_object(held, "cell record")
    recipe = _setting(grids[1], "recipes", task, method)
    if cell.get("recipe") != recipe:
        raise UserError(f"{held}: trained on {cell.get('recipe')} data, {dest} asks {recipe}")
    every, updates = (_setting(grids[1], key, task, method) for key in ("eval_every", "updates"))
    evaluated = [int(row["update"]) for row in cell.get("rows", [])]
    if evaluated != list(range(every, updates + 1, every)):
        raise UserError(f"{held}: evaluated at updates {evaluated[:3]}...{evaluated[-1:]}, not "
                        f"every {every} up to {updates} as {dest} asks")
    apart = other_kind(cell, grids[1].get("versions"), method, seed)
    if apart:
        return cell, apart  # never copied (share_cells), so its code is not checked either
    code = (cell.get("provenance") or {}).get("code") or {}
    if code.get("dirty") is not False:
        raise UserError(f"{held}: trained from a checkout with local changes (or records no "
                        f"code); it cannot stand for {dest}'s cell")
    if not made_at(str(code.get("commit", "")), commits):
        raise UserError(f"{held}: trained at {str(code.get('commit'))[:12]}, not "
                        f"{' or '.join(commits)}; it cannot stand for {dest}'s cell")
    return cell, None


def share_cells(source: Path, dest: Path, commits: tuple[str, ...],
                methods: tuple[str, ...] = (), dry_run: bool = False) -> Shared:
    """Copy into DEST every cell of SOURCE that DEST lacks among DEST's grid.json tasks and seeds
    and its methods (or METHODS, when given: also ones DEST does not train itself, as a study
    shows the grid's ablations), provided both grids ask that cell with the same settings
    (SETTINGS, GROUP_SETTINGS), the cell holds DEST's recipe, and it was trained at one of
    COMMITS (the grid's pins: its current one and any earlier one whose smoke grid was bitwise
    equal to it, docs/reproduce.md) from a clean checkout. A copy records
    `provenance.copied_from`; DEST's CSVs are rebuilt after a copy. Cells both hold are
    compared (cell_numbers), never overwritten; a cell of another kind on either side
    (other_kind) is listed in `apart`, neither copied nor compared."""
    def wanted(grid: dict[str, Any]) -> Iterator[tuple[str, str, str, int]]:
        for task in grid["tasks"]:
            for method in methods or grid["methods"]:
                for seed in grid["seeds"]:
                    yield task, method, method, seed

    return _copy_cells(source, dest, commits, wanted, dry_run)


def alias_cells(source: Path, dest: Path, commits: tuple[str, ...],
                dry_run: bool = False) -> Shared:
    """Copy into DEST, under each name DEST's grid.json asks that builds a full method's learner
    on its task (same_learner: the ε sweep's cell at the task's own ε), SOURCE's cell of that
    full method, with share_cells' checks (SOURCE may be DEST: the same grid). The copy is
    the cell under the new name (renamed_cell); cells DEST holds are compared, never
    overwritten; a cell of another kind (the lent GPU's group cells) is left apart, so that
    cell is trained, or copied from another SOURCE."""
    def wanted(grid: dict[str, Any]) -> Iterator[tuple[str, str, str, int]]:
        request = Grid(tuple(grid["tasks"]), tuple(grid["methods"]), tuple(grid["seeds"]),
                       str(grid.get("preset")), bool(grid.get("eps_sweep")))
        for task in request.tasks:
            for method in request.task_methods(task):
                full = same_learner(task, method)
                for seed in request.seeds if full else ():
                    yield task, method, full, seed

    return _copy_cells(source, dest, commits, wanted, dry_run)


def same_learner(task: str, method: str) -> str | None:
    """The full method whose learner METHOD builds on TASK, when METHOD is an ε name of it
    ("mabcq-eps0.80" on halfcheetah-2x3, whose own ε is 0.80 -> "mabcq"); else None."""
    name, eps = parse_method(method)
    if eps is None or name != family_of(method).full:
        return None
    return name if learner_config(method, task) == learner_config(name, task) else None


def renamed_cell(cell: dict[str, Any], method: str, held: Path) -> dict[str, Any]:
    """CELL (the file HELD) as METHOD's: the name in the cell and its rows. Its group and
    timing stay the run that trained it (so timing.csv counts that run once); the provenance
    names that run's method (`trained_as`: `mabcq acting` re-runs its policies) and the file
    it was copied from (`aliased_from`), and keeps any `copied_from` it had."""
    return {**cell, "method": method,
            "rows": [{**row, "method": method} for row in cell.get("rows", [])],
            "provenance": {**(cell.get("provenance") or {}), "aliased_from": str(held),
                           "trained_as": cell.get("method")}}


def _copy_cells(source: Path, dest: Path, commits: tuple[str, ...],
                wanted: Callable[[dict[str, Any]], Iterable[tuple[str, str, str, int]]],
                dry_run: bool) -> Shared:
    """The copies WANTED(DEST's grid.json) names, each (task, DEST's method, SOURCE's method,
    seed): checked (_shareable), compared where DEST holds the cell, else copied; every cell
    checked before any is written, DEST's CSVs rebuilt after a copy."""
    from mabcq.training.logs import write_json_atomic

    if not commits or any(len(commit) < 7 for commit in commits):
        raise UserError(f"--commit {','.join(commits)!r}: give at least 7 hex digits of each "
                        "pinned commit")
    grids = _grid(source), _grid(dest)
    elsewhere = source.resolve() != dest.resolve()  # a copy from another grid says so
    done, copies = Shared(), []
    for task, method, held_method, seed in wanted(grids[1]):
        held = cell_path(source, task, held_method, seed)
        mine = cell_path(dest, task, method, seed)
        if not held.is_file():
            continue
        cell, apart = _shareable(held, source, dest, grids, task, held_method, seed, commits)
        name = f"{task}/{method}/seed_{seed}"
        if apart and method != held_method:
            apart = f"{held_method}'s cell {apart}"
        theirs = read_json_object(mine, "cell record") if mine.is_file() else None
        versions = (cell.get("provenance") or {}).get("versions")
        apart = apart or (theirs is not None and other_kind(theirs, versions, method, seed))
        copy = cell if method == held_method else renamed_cell(cell, method, held)
        if apart:
            done.apart.append(f"{name}: {apart}")
        elif theirs is not None:
            same = cell_numbers(theirs) == cell_numbers(copy)
            (done.equal if same else done.differing).append(name)
        if apart or theirs is not None:
            continue
        done.copied.append(name)
        if elsewhere:
            copy = {**copy, "provenance": {**copy["provenance"], "copied_from": str(source)}}
        copies.append((mine, copy))
    if copies and not dry_run:
        for mine, cell in copies:
            write_json_atomic(mine, cell)
        collect(dest)
    return done
