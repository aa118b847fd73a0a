"""Read a results directory (the files `mabcq reproduce` writes) into typed rows, validated.

Every file is optional: a missing file loads as None and the report says so. A file that is
there but malformed (a missing column, a non-numeric cell, two different rows for one key) is a
`UserError` naming the file, the line and the column. Columns beyond the expected ones are
ignored, so a writer may add columns without breaking the report.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mabcq.errors import UserError
from mabcq.grid.cells import WEIGHT_DIAGNOSTICS, read_cells, recipe_of
from mabcq.util.jsonfile import read_json_object

Row = dict[str, Any]

# Column kinds: "str" (non-empty text), "opt_str" (text; empty -> None), "int", "positive" (an
# int > 0), "float" (finite), "opt_float" (empty or "nan": not applicable -> NaN), "opt_int"
# (empty -> None), "count" (a positive integer, or a list of items joined by '+' or ',' whose
# length is taken).
SCHEMAS: dict[str, dict[str, str]] = {
    "returns.csv": {"task": "str", "method": "str", "seed": "int", "updates": "int",
                    "return": "float"},
    "diagnostics.csv": {"task": "str", "method": "str", "seed": "int", "updates": "int",
                        "value_difference": "opt_float", "extrapolation_error": "opt_float",
                        "lambda_vd_mean": "opt_float", "lambda_tn_mean": "opt_float",
                        "lambda_tn_data_in_paper_range": "opt_float",
                        "critic_loss": "opt_float", "q_mean": "opt_float"},
    "timing.csv": {"task": "str", "group": "str", "methods": "str", "seeds": "count",
                   "agents": "positive", "device": "str", "ms_per_update": "opt_float",
                   "train_s": "opt_float", "eval_s": "opt_float", "data_s": "opt_float"},
    "behavior.csv": {"task": "str", "level": "str", "step": "opt_int", "return": "float"},
    "acting.csv": {"task": "str", "method": "str", "seed": "int", "updates": "int",
                   "variant": "str", "episodes": "positive", "return": "float",
                   "length": "float", "reproduces": "opt_str"},
}

# Columns read when present (newer writers); absent ones read as not applicable (NaN, or None
# for text). A returns/diagnostics row's `recipe` is the dataset recipe its cell trained on.
OPTIONAL: dict[str, dict[str, str]] = {
    "returns.csv": {"recipe": "opt_str"},
    "diagnostics.csv": {"lambda_vd_at_clip": "opt_float", "recipe": "opt_str",
                        **{name: "opt_float" for name in WEIGHT_DIAGNOSTICS}},
    "timing.csv": {"estimate_s": "opt_float", "actual_s": "opt_float"},
}

# The columns that identify one row; two rows with one key must agree (a resumed writer may
# repeat a row, never change it).
KEYS: dict[str, tuple[str, ...]] = {
    "returns.csv": ("task", "method", "seed", "updates"),
    "diagnostics.csv": ("task", "method", "seed", "updates"),
    "timing.csv": ("task", "group"),
    "behavior.csv": ("task", "level", "step"),
    "acting.csv": ("task", "method", "seed", "updates", "variant"),
}

GRID_FILE = "grid.json"


@dataclass(frozen=True)
class Results:
    """A results directory's contents; a file that is not there is None."""

    directory: Path
    returns: list[Row] | None
    diagnostics: list[Row] | None
    timing: list[Row] | None
    behavior: list[Row] | None
    grid: dict[str, Any] | None
    acting: list[Row] | None = None  # `mabcq acting` (the policy taken apart), when run
    data: list[Row] | None = None  # per cell file: the data hash and device it trained with


def load_results(directory: Path) -> Results:
    """Load every known file of `directory` (missing ones as None); malformed -> UserError."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"{directory}: not a directory (give the results directory that "
                        f"`mabcq reproduce` wrote)")
    return Results(
        directory=directory,
        returns=read_table(directory / "returns.csv"),
        diagnostics=read_table(directory / "diagnostics.csv"),
        timing=read_table(directory / "timing.csv"),
        behavior=read_table(directory / "behavior.csv"),
        grid=read_grid(directory / GRID_FILE),
        acting=read_table(directory / "acting.csv"),
        data=read_cell_data(directory),
    )


def read_cell_data(directory: Path) -> list[Row] | None:
    """Per finished cell (grid.cells.read_cells): task, method, recipe, the hash of the data it
    trained on (`provenance.data_sha256`, None in cells made before cells recorded it) and its
    device; None when there is no cells/ directory."""
    if not (directory / "cells").is_dir():
        return None
    rows = []
    for cell in read_cells(directory):
        provenance = cell.get("provenance") if isinstance(cell.get("provenance"), dict) else {}
        rows.append({"task": cell["task"], "method": cell["method"],
                     "recipe": cell.get("recipe") or recipe_of(cell["task"]),
                     "data_sha256": provenance.get("data_sha256"),
                     "device": str(provenance.get("device") or "unknown")})
    return rows


def read_grid(path: Path) -> dict[str, Any] | None:
    """grid.json as a dict, or None when it is not there."""
    return read_json_object(path, "grid record") if path.exists() else None


def read_table(path: Path) -> list[Row] | None:
    """One of the SCHEMAS files as typed rows, or None when it is not there."""
    if not path.exists():
        return None
    schema = SCHEMAS[path.name]
    try:
        with open(path, newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise UserError(f"{path}: empty file (no header row); expected columns "
                                f"{','.join(schema)}")
            header = [name.strip() for name in header]
            missing = [name for name in schema if name not in header]
            if missing:
                raise UserError(f"{path}: missing column(s) {', '.join(missing)}; expected "
                                f"columns {','.join(schema)}")
            optional = OPTIONAL.get(path.name, {})
            schema = {**schema, **{name: kind for name, kind in optional.items()
                                   if name in header}}
            index = {name: header.index(name) for name in schema}
            rows = []
            for cells in reader:
                if not any(cell.strip() for cell in cells):
                    continue  # a blank line
                row = _parse_row(path, reader.line_num, cells, schema, index)
                absent = {name: None if kind == "opt_str" else float("nan")
                          for name, kind in optional.items()}
                rows.append(absent | row)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UserError(f"{path}: not readable as CSV ({error})") from None
    return _dedupe(path, rows, KEYS[path.name])


def _parse_row(path: Path, line: int, cells: list[str], schema: dict[str, str],
               index: dict[str, int]) -> Row:
    row: Row = {}
    for name, kind in schema.items():
        text = cells[index[name]].strip() if index[name] < len(cells) else ""
        try:
            row[name] = _PARSERS[kind](text)
        except ValueError as error:
            raise UserError(f"{path}, line {line}: column '{name}' {error}: {text!r}") from None
    return row


def _parse_str(text: str) -> str:
    if not text:
        raise ValueError("is empty")
    return text


def _parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError("is not an integer") from None


def _parse_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("is not a number") from None
    if not math.isfinite(value):
        raise ValueError("is not a finite number")
    return value


def _parse_opt_float(text: str) -> float:
    if not text:
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise ValueError("is not a number (leave it empty when not applicable)") from None


def _parse_opt_str(text: str) -> str | None:
    return text or None


def _parse_positive(text: str) -> int:
    value = _parse_int(text)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _parse_opt_int(text: str) -> int | None:
    return _parse_int(text) if text else None


def _parse_count(text: str) -> int:
    """`seeds` in timing.csv: a count ("5"), or the seeds themselves ("0+1+2", "0,1,2")."""
    for separator in ("+", ","):
        if separator in text:
            items = [item for item in text.split(separator) if item.strip()]
            if not items:
                raise ValueError("is an empty list")
            return len(items)
    count = _parse_int(text)
    if count <= 0:
        raise ValueError("must be a positive count")
    return count


_PARSERS: dict[str, Callable[[str], Any]] = {
    "str": _parse_str, "int": _parse_int, "float": _parse_float, "opt_float": _parse_opt_float,
    "opt_int": _parse_opt_int, "count": _parse_count, "positive": _parse_positive,
    "opt_str": _parse_opt_str,
}


def same_row(first: Row, second: Row) -> bool:
    """The same columns with the same values (NaN equal to NaN: a not-applicable cell)."""
    def equal(a: Any, b: Any) -> bool:
        both_nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
        return both_nan or a == b
    return first.keys() == second.keys() and all(equal(first[name], second[name])
                                                  for name in first)


def _dedupe(path: Path, rows: list[Row], key: tuple[str, ...]) -> list[Row]:
    """Drop exact repeats; two different rows for one key -> UserError (which one is real?)."""
    seen: dict[tuple[Any, ...], Row] = {}
    kept = []
    for row in rows:
        row_key = tuple(row[name] for name in key)
        if row_key in seen:
            if not same_row(seen[row_key], row):
                described = ", ".join(f"{name}={row[name]}" for name in key)
                raise UserError(f"{path}: two different rows for {described}; keep one")
            continue
        seen[row_key] = row
        kept.append(row)
    return kept
