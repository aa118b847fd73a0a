"""`mabcq acting RESULTS`: every finished BCQ-family cell's final evaluation re-run with parts of
its policy switched off (mabcq.training.acting), into RESULTS/acting.csv.

It reads the cell records (RESULTS/cells/) and the policies their runs kept (RESULTS/runs/<task>/
<group>/policies/, not committed: only the machine that trained a cell has them). Per cell it
writes one row per variant; the `policy` row must reproduce the cell's recorded final return
bit for bit (column `reproduces`), which shows that the re-run is the cell's own evaluation.
acting.csv is rewritten atomically after each cell, so a stopped call loses at most the cell in
flight, and a second call skips the cells already there.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mabcq.errors import UserError
from mabcq.grid.cells import group_policy_files, read_cells, trained_as
from mabcq.util import atomic

ACTING_FILE = "acting.csv"
ACTING_COLUMNS = ("task", "method", "seed", "updates", "variant", "candidates",
                  "perturbation_scale", "episodes", "return", "length", "reproduces")


@dataclass(frozen=True)
class ActingCell:
    """A finished cell whose final policy can be re-evaluated."""

    task: str
    method: str
    seed: int
    update: int  # the final evaluation's update
    recorded: str  # its recorded mean return, as the cell file writes it
    run_dir: Path
    trained_as: str  # the method whose policies the run dir keeps (cells.trained_as)


@dataclass
class ActingSummary:
    done: list[tuple[str, str, int]] = field(default_factory=list)  # re-run by this call
    kept: int = 0  # already in acting.csv
    skipped: list[str] = field(default_factory=list)  # one line per cell that cannot run
    not_reproduced: list[str] = field(default_factory=list)


def _final_row(cell: dict[str, Any]) -> dict[str, Any] | None:
    rows = [row for row in cell.get("rows", []) if row.get("return_mean", "") != ""]
    return max(rows, key=lambda row: int(row["update"])) if rows else None


def find_cells(out: Path, tasks: Sequence[str] | None = None,
               methods: Sequence[str] | None = None, runs_from: Sequence[Path] = ()
               ) -> tuple[list[ActingCell], list[str]]:
    """The finished cells of OUT (optionally only these tasks and methods) whose method is of
    the BCQ family, and one line for each such cell that cannot be re-run here. A cell's run dir
    is OUT/runs/<task>/<group>, else the first of runs_from's (results directories a cell may
    have been copied from, scripts/share_cells.py) that has it."""
    from mabcq.learners.registry import family_of

    cells, skipped = [], []
    for cell in read_cells(out):
        task, method, seed = cell["task"], cell["method"], int(cell["seed"])
        if (tasks and task not in tasks) or (methods and method not in methods):
            continue
        try:
            family = family_of(method)
        except UserError:
            continue
        if family.module != "mabcq.learners.bcq":
            continue
        final = _final_row(cell)
        run_dirs = [root / "runs" / task / str(cell.get("group", ""))
                    for root in (out, *runs_from)]
        run_dir = next((path for path in run_dirs if (path / "config.json").is_file()),
                       run_dirs[0])
        if final is None:
            skipped.append(f"{task} {method} seed {seed}: the cell has no evaluation row")
        elif not (run_dir / "config.json").is_file():
            skipped.append(f"{task} {method} seed {seed}: no run dir {run_dir} on this machine "
                           "(its policies stay where the cell trained)")
        else:
            cells.append(ActingCell(task, method, seed, int(final["update"]),
                                    str(final["return_mean"]), run_dir,
                                    trained_as(cell, method)))
    return cells, skipped


def read_acting(path: Path) -> list[dict[str, str]]:
    """acting.csv's rows as text (empty when the file is not there); a wrong header -> UserError."""
    if not path.exists():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if tuple(reader.fieldnames or ()) != ACTING_COLUMNS:
                raise UserError(f"{path}: columns {reader.fieldnames}, expected "
                                f"{','.join(ACTING_COLUMNS)}; move it away and run again")
            return list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UserError(f"{path}: not readable as CSV ({error})") from None


def _write_acting(path: Path, rows: list[dict[str, Any]]) -> None:
    from mabcq.training.acting import VARIANTS

    order = {name: index for index, name in enumerate(VARIANTS)}
    rows = sorted(rows, key=lambda row: (row["task"], row["method"], int(row["seed"]),
                                         int(row["updates"]), order.get(row["variant"], 9)))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(ACTING_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic.write_bytes(path, buffer.getvalue().encode())


def _cell_policies(cell: ActingCell) -> tuple[Any, list[Any], dict[str, Any]] | str:
    """(task, one Policy per agent, the run's config) or why the cell cannot be re-run."""
    from mabcq.envs.tasks import get_task
    from mabcq.training.acting import is_bcq_policy
    from mabcq.training.evaluation import load_policies

    task = get_task(cell.task)
    files = group_policy_files(cell.run_dir, cell.trained_as, cell.seed, task.n_agents)
    if files is None:
        return f"no policy files for seed {cell.seed} under {cell.run_dir / 'policies'}"
    policies = load_policies(task, files)
    if not all(is_bcq_policy(policy) for policy in policies):
        return "its policy files are not BCQ-family policies"
    if any((policy.metadata or {}).get("obs", "global") not in ("global", "state")
           for policy in policies):
        return "trained on local observations (the re-run acts on global states only)"
    if len({(policy.state_dim, policy.action_dim) for policy in policies}) > 1:
        return "its agents differ in shape (the re-run stacks them into one call)"
    config = json.loads((cell.run_dir / "config.json").read_text())
    return task, policies, config


def pending_cells(out: Path, tasks: Sequence[str] | None = None,
                  methods: Sequence[str] | None = None, runs_from: Sequence[Path] = ()
                  ) -> tuple[list[ActingCell], ActingSummary]:
    """The cells of find_cells that OUT/acting.csv does not hold yet, and a summary that counts
    the ones it holds and names the ones that cannot run."""
    have = {(row["task"], row["method"], int(row["seed"]), int(row["updates"]))
            for row in read_acting(out / ACTING_FILE)}
    cells, skipped = find_cells(out, tasks, methods, runs_from)
    todo = [cell for cell in cells if (cell.task, cell.method, cell.seed, cell.update) not in have]
    return todo, ActingSummary(kept=len(cells) - len(todo), skipped=skipped)


def run_acting(out: Path, tasks: Sequence[str] | None = None,
               methods: Sequence[str] | None = None,
               on_cell: Callable[[ActingCell], None] | None = None,
               runs_from: Sequence[Path] = ()) -> ActingSummary:
    """Re-run every finished BCQ-family cell of OUT not yet in OUT/acting.csv (training.acting);
    on_cell(cell) is called before each one (a progress bar); runs_from: as in find_cells."""
    from mabcq.training.acting import evaluate_variants

    path = out / ACTING_FILE
    rows = read_acting(path)
    cells, summary = pending_cells(out, tasks, methods, runs_from)
    for cell in cells:
        if on_cell is not None:
            on_cell(cell)
        loaded = _cell_policies(cell)
        if isinstance(loaded, str):
            summary.skipped.append(f"{cell.task} {cell.method} seed {cell.seed}: {loaded}")
            continue
        task, policies, config = loaded
        results = evaluate_variants(task, policies, cell.seed, cell.update,
                                    int(config["eval_episodes"]),
                                    max_steps=config.get("eval_max_steps"),
                                    gamma=float(policies[0].config.gamma),
                                    fast_compile=bool(config.get("fast_compile", False)))
        for result in results:
            reproduces = ""
            if result.variant == "policy":
                same = repr(result.mean_return) == cell.recorded
                reproduces = "yes" if same else "no"
                if not same:
                    summary.not_reproduced.append(
                        f"{cell.task} {cell.method} seed {cell.seed}: {result.mean_return!r} "
                        f"against the recorded {cell.recorded}")
            rows.append({"task": cell.task, "method": cell.method, "seed": cell.seed,
                         "updates": cell.update, "variant": result.variant,
                         "candidates": result.candidates,
                         "perturbation_scale": repr(result.perturbation_scale),
                         "episodes": result.episodes, "return": repr(result.mean_return),
                         "length": repr(result.mean_length), "reproduces": reproduces})
        _write_acting(path, rows)
        summary.done.append((cell.task, cell.method, cell.seed))
    return summary
