"""Run logs: one CSV row per (evaluation, seed), TensorBoard scalars, atomic JSON files.

The CSV is the record a resumed run must reproduce, so the writer can cut the file back to the
byte offset stored in a checkpoint (rows written after it are written again by the resumed run).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mabcq.errors import UserError
from mabcq.util import atomic

# metrics.csv columns, in order (docs/training.md explains each).
CSV_COLUMNS: tuple[str, ...] = (
    "update",
    "seed",
    "method",
    "return_mean",
    "return_std",
    "episode_length_mean",
    "value_difference",
    "extrapolation_error",
    "extrapolation_error_all_states",
    "extrapolation_states",
    "lambda_vd_mean",
    "lambda_vd_min",
    "lambda_vd_max",
    "lambda_vd_at_clip",
    "lambda_tn_mean",
    "lambda_tn_min",
    "lambda_tn_max",
    "lambda_tn_data_in_paper_range",
    "lambda_tn_data_p05",
    "lambda_tn_data_median",
    "lambda_tn_data_p95",
    "critic_loss",
    "actor_loss",
    "q_mean",
    "vae1_loss",
    "vae2_loss",
    "time_per_update_ms",
    "wall_time_s",
    # The weights' diagnostics (issue 19): per-batch quantiles, effective sample size and shares
    # at each clip, averaged over the evaluation window; lambda_vd pooled over the window's
    # terminal and other transitions (weights.finish_window).
    "lambda_vd_p05",
    "lambda_vd_p50",
    "lambda_vd_p95",
    "lambda_vd_ess",
    "lambda_vd_at_low",
    "lambda_vd_at_high",
    "lambda_vd_terminal_mean",
    "lambda_vd_nonterminal_mean",
    "terminal_share",
    "lambda_tn_p05",
    "lambda_tn_p50",
    "lambda_tn_p95",
    "lambda_tn_ess",
    "lambda_tn_at_low",
    "lambda_tn_at_high",
    "weight_mean",
    "weight_ess",
)


def _json_safe(value: Any) -> Any:
    """NaN/inf are not JSON: write them as null so every reader can parse the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def write_json_atomic(path: str | Path, payload: Mapping[str, Any]) -> None:
    """Atomic JSON with NaN/inf written as null."""
    atomic.write_json(path, _json_safe(payload))


def run_started(run_dir: Path) -> bool:
    """Whether RUN_DIR holds anything of a run worth keeping: a checkpoint, a metrics row, a
    summary or exported policies. A run killed or crashed before its first evaluation and
    checkpoint leaves only config.json, a header-only metrics.csv and empty TensorBoard files:
    nothing to resume, so such a folder does not block the next command (docs/training.md)."""
    if any((run_dir / name).exists() for name in ("checkpoint.npz", "summary.json", "policies")):
        return True
    metrics = run_dir / "metrics.csv"
    if not metrics.is_file():
        return False
    with open(metrics, "rb") as handle:
        return len(handle.read(1 << 16).splitlines()) > 1


def open_run_dir(run_dir: Path, config: dict[str, Any], resume: bool) -> bool:
    """Create RUN_DIR with config.json, or check an existing run's config.json against `config`
    (only with `resume`); returns True if there is a checkpoint to resume from. A folder whose
    run never got going (`run_started` is False) is started over with the new config."""
    config_path = run_dir / "config.json"
    if config_path.exists() and run_started(run_dir):
        if not resume:
            raise UserError(f"{run_dir}: already holds a run; pass --resume to continue it "
                            "or choose another --out")
        try:
            saved = json.loads(config_path.read_text())
        except json.JSONDecodeError as error:
            raise UserError(f"{config_path}: not valid JSON ({error}); delete the run dir"
                            ) from error
        current = json.loads(json.dumps(config))
        differing = sorted(key for key in set(saved) | set(current)
                           if saved.get(key) != current.get(key))
        if differing:
            details = ", ".join(f"{key}: {saved.get(key)!r} -> {current.get(key)!r}"
                                for key in differing)
            raise UserError(f"{config_path}: --resume with different settings ({details}); "
                            "use the run's original flags, or another --out for a new run")
        return (run_dir / "checkpoint.npz").exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(config_path, config)
    return False


def _format_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # round-trips exactly, so resumed rows compare equal
    return str(value)


class CsvLog:
    """Append-only CSV with a fixed header; `position()` is the byte offset after the last row."""

    def __init__(self, path: str | Path, columns: Sequence[str] = CSV_COLUMNS) -> None:
        self.path = Path(path)
        self.columns = tuple(columns)
        if not self.path.exists() or self.path.stat().st_size == 0:
            self.start_over()

    def written_columns(self) -> tuple[str, ...]:
        """The columns named by the file's header line (an older mabcq may have written fewer)."""
        with open(self.path, encoding="utf-8", newline="") as handle:
            return tuple(next(csv.reader(handle), ()))

    def start_over(self) -> None:
        """Only this version's header, no rows: a fresh run in a folder a run never got going in
        (run_started) may hold another version's header."""
        header = io.StringIO()
        csv.writer(header, lineterminator="\n").writerow(self.columns)
        atomic.write_bytes(self.path, header.getvalue().encode())

    def position(self) -> int:
        return self.path.stat().st_size

    def truncate(self, position: int) -> None:
        """Cut the file back to `position` (a value `position()` returned earlier)."""
        with open(self.path, "r+b") as handle:
            handle.truncate(position)

    def append(self, rows: Sequence[Mapping[str, Any]]) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for row in rows:
            writer.writerow([_format_cell(row.get(column)) for column in self.columns])
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(buffer.getvalue())
            handle.flush()
            os.fsync(handle.fileno())


def read_csv_rows(path: str | Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


class TensorBoardLog:
    """TensorBoard scalars under `run_dir/tensorboard/<label>` (label: "seed_<s>", or
    "<method>/seed_<s>" in a grid); on resume, events at or after the checkpoint's step are
    purged so curves are not drawn twice."""

    def __init__(self, log_dir: str | Path, labels: Sequence[str], purge_step: int | None) -> None:
        from tensorboardX import SummaryWriter

        self.writers = {
            label: SummaryWriter(str(Path(log_dir) / label), purge_step=purge_step)
            for label in labels
        }

    def log_row(self, row: Mapping[str, Any], label: str) -> None:
        writer = self.writers[label]
        step = int(row["update"])
        for column, value in row.items():
            if column in ("update", "seed", "method") or not isinstance(value, int | float):
                continue
            if isinstance(value, float) and not math.isfinite(value):
                continue
            writer.add_scalar(f"train/{column}", float(value), step)

    def flush(self) -> None:
        for writer in self.writers.values():
            writer.flush()

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


def write_summary(run_dir: Path, config: Mapping[str, Any], csv_path: Path,
                  wall_time: float, eval_time: float | None = None) -> dict[str, Any]:
    """summary.json from metrics.csv (see `summarize`), written atomically; returns it."""
    summary = summarize(config, read_csv_rows(csv_path), wall_time, eval_time,
                        policies=str(run_dir / "policies"))
    write_json_atomic(run_dir / "summary.json", summary)
    return summary


def summarize(config: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], wall_time: float,
              eval_time: float | None = None, policies: str | None = None) -> dict[str, Any]:
    """The last evaluation of every seed and the mean/std of returns over seeds.

    config: the run's config.json dict (task, method, seeds, agent); rows: metrics rows (CSV
    strings or numbers). A grid run ("a+b" methods) has one such summary per method under
    "methods".
    """
    final_update = max(int(row["update"]) for row in rows)
    final = [row for row in rows if int(row["update"]) == final_update]
    methods = config["method"].split("+")
    summary: dict[str, Any] = {
        "task": config["task"], "method": config["method"], "seeds": list(config["seeds"]),
        "agent": config["agent"], "updates": final_update, "wall_time_s": wall_time,
        "eval_time_s": eval_time, "policies": policies,
    }
    if len(methods) == 1:
        summary.update(_final_summary(final))
    else:
        summary["methods"] = {method: _final_summary([row for row in final
                                                      if row.get("method") == method])
                              for method in methods}
    return summary


def _final_summary(final: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """Returns and diagnostics of one method's final rows (one per seed)."""
    import numpy as np

    def column(name: str) -> list[float]:
        return [float(row[name]) if row.get(name) not in (None, "") else float("nan")
                for row in final]

    def mean(name: str) -> float:
        return float(np.mean(column(name)))

    returns = column("return_mean")
    return {
        "final_return_per_seed": returns,
        "final_return_mean": float(np.mean(returns)), "final_return_std": float(np.std(returns)),
        "final_value_difference_mean": mean("value_difference"),
        "final_extrapolation_error_mean": mean("extrapolation_error"),
        "final_extrapolation_error_all_mean": mean("extrapolation_error_all_states"),
        "lambda_tn_range": [float(np.min(column("lambda_tn_min"))),
                            float(np.max(column("lambda_tn_max")))],
        "lambda_vd_range": [float(np.min(column("lambda_vd_min"))),
                            float(np.max(column("lambda_vd_max")))],
        "final_lambda_vd_mean": mean("lambda_vd_mean"),
        "final_lambda_tn_data_median": mean("lambda_tn_data_median"),
        "final_lambda_tn_data_in_paper_range": mean("lambda_tn_data_in_paper_range"),
    }


# Columns that are integers (the rest are floats, "method" a string).
_INT_COLUMNS = ("update", "seed", "extrapolation_states")


def parse_row(row: Mapping[str, str]) -> dict[str, Any]:
    """A metrics.csv row as numbers, as the loop made it: empty cells left out, ints as int,
    floats exactly (the CSV writes repr)."""
    parsed: dict[str, Any] = {}
    for column, text in row.items():
        if text in (None, ""):
            continue
        parsed[column] = (text if column == "method" else
                          int(text) if column in _INT_COLUMNS else float(text))
    return parsed


def _record(row: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a loop row that metrics.csv keeps (its columns, in order)."""
    return {column: row[column] for column in CSV_COLUMNS if row.get(column) is not None}


class MemoryLog:
    """Where a run without a directory logs: metric rows in memory, nothing on disk (no
    checkpoints, so no resume). Same interface as RunDirLog."""

    run_dir = None

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def restore(self, template: Any, labels: Sequence[str], pretrain_updates: int) -> None:
        return None

    def log(self, rows: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> None:
        self.rows.extend(_record(row) for row in rows)

    def position(self) -> int:
        return len(self.rows)

    def save(self, tree: Any, meta: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass

    def finish(self, config: Mapping[str, Any], wall_time: float,
               eval_time: float) -> dict[str, Any]:
        return summarize(config, self.rows, wall_time, eval_time)


class RunDirLog:
    """What a run writes into RUN_DIR: config.json, metrics.csv, TensorBoard events,
    checkpoint.npz and summary.json (docs/training.md, "Run directory"). Keeps the rows in
    memory too (on resume, the rows before the checkpoint are read back from metrics.csv)."""

    def __init__(self, run_dir: str | Path, config: dict[str, Any], resume: bool) -> None:
        self.run_dir = Path(run_dir)
        self.resuming = open_run_dir(self.run_dir, config, resume)
        self.rows: list[dict[str, Any]] = []
        self.csv: CsvLog | None = None
        self.tensorboard: TensorBoardLog | None = None

    def restore(self, template: Any, labels: Sequence[str],
                pretrain_updates: int) -> tuple[Any, dict[str, Any]] | None:
        """Open the logs; with a checkpoint to resume from, (tree like template, metadata),
        the CSV cut back to the checkpoint and later TensorBoard events purged."""
        from mabcq.training.checkpoint import load_checkpoint

        self.csv = CsvLog(self.run_dir / "metrics.csv")
        restored, purge_step = None, None
        if self.resuming:
            self._check_columns()
            restored = load_checkpoint(self.run_dir / "checkpoint.npz", template)
            self.csv.truncate(int(restored[1]["csv_position"]))
            self.rows = [parse_row(row) for row in read_csv_rows(self.csv.path)]
            purge_step = max(int(restored[1]["done"]) - pretrain_updates, 0) + 1
        else:
            self.csv.start_over()
        self.tensorboard = TensorBoardLog(self.run_dir / "tensorboard", labels, purge_step)
        return restored

    def _check_columns(self) -> None:
        """Rows appended under another version's header would not read back: refuse to resume."""
        assert self.csv is not None
        written = self.csv.written_columns()
        if written != self.csv.columns:
            missing = [column for column in self.csv.columns if column not in written]
            raise UserError(
                f"{self.csv.path}: written by another version of mabcq ({len(written)} columns, "
                f"this one writes {len(self.csv.columns)}; e.g. {', '.join(missing[:3]) or 'order'}"
                "); resume with the version that started the run, or train into a new run dir")

    def log(self, rows: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> None:
        assert self.csv is not None and self.tensorboard is not None
        self.csv.append(rows)
        for label, row in zip(labels, rows, strict=True):
            self.tensorboard.log_row(row, label)
        self.tensorboard.flush()
        self.rows.extend(_record(row) for row in rows)

    def position(self) -> int:
        assert self.csv is not None
        return self.csv.position()

    def save(self, tree: Any, meta: dict[str, Any]) -> None:
        from mabcq.training.checkpoint import save_checkpoint

        save_checkpoint(self.run_dir / "checkpoint.npz", tree, meta)

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()

    def finish(self, config: Mapping[str, Any], wall_time: float,
               eval_time: float) -> dict[str, Any]:
        assert self.csv is not None
        return write_summary(self.run_dir, config, self.csv.path, wall_time, eval_time)
