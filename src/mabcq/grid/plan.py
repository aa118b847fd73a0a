"""Which cell of a CPU grid runs next, how long each will take, and whether it fits before a
deadline (`mabcq reproduce --unit cell`, docs/reproduce.md "On a CPU"). Pure: no JAX, no files;
the caller hands in the finished cells' timing rows.

Order: seed `first` (the first of --seeds) of every task and method, then the other seeds, so
the first complete picture comes first. Within each pass a task's cells stay together (its
dataset is built once, just before its first cell), the tasks whose datasets are already on
this machine first; within a task seed by seed, the methods in the grid's order.

Estimate of one cell: start-up + updates x seconds per update + evaluations x seconds per
evaluation, each measured on this grid's finished cells (timing.csv) when it can be (another
machine kind's rescaled by the two kinds' measured ratio: `estimate_cell`), else the
defaults below (a single-threaded worker of this project's 2-core AMD EPYC machine).
"""

from __future__ import annotations

import datetime as dt
import re
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Cell:
    """One (task, method, seed) of the grid: one worker process, one cell file."""

    task: str
    method: str
    seed: int

    @property
    def label(self) -> str:
        return f"{self.task} {self.method} seed {self.seed}"


def order_cells(cells: Iterable[Cell], tasks: Sequence[str],
                methods: Mapping[str, Sequence[str]], first: int,
                ready: set[str]) -> list[Cell]:
    """The cells in the order they run (module docstring); `ready`: tasks whose datasets are
    on this machine, `methods`: each task's methods in the grid's order."""
    def key(cell: Cell) -> tuple[Any, ...]:
        return (cell.seed != first, cell.task not in ready, tasks.index(cell.task),
                cell.seed, methods[cell.task].index(cell.method))

    return sorted(cells, key=key)


# Defaults when no finished cell of the grid measures it: ms per agent-update, pretraining
# and training averaged, of a BCQ-family cell in one single-threaded worker while another
# worker runs. paper: the median of the paper grid's first 12 BCQ-family cells on this
# project's 2-core AMD EPYC (AVX2; results/paper/timing.csv at 3e774ae: train_s / updates /
# agents, 7.6-16.8 over HalfCheetah, Hopper and Walker), 1.9x the 5.7 that MEASURED.md's
# benchmark on an AVX-512 machine of that kind gave; quick: results/quick-cpu/timing.csv x 1.74
# for one thread. Other families scaled by their step's cost relative to BCQ's (quick-cpu
# timing.csv, docs/learners.md).
DEFAULT_MS_PER_AGENT_UPDATE = {"paper": 10.8, "quick": 1.5, "smoke": 0.5}
FAMILY_COST = {"bcq": 1.0, "td3bc": 1.0, "cql": 18.0, "ddpg": 0.22, "behavior": 0.53}
# Seconds per evaluation (all its episodes and diagnostics) and per cell start-up (process,
# imports, dataset load, compile or compilation-cache read).
DEFAULT_EVAL_S = {"paper": 3.0, "quick": 1.0, "smoke": 1.0}
DEFAULT_STARTUP_S = {"paper": 40.0, "quick": 20.0, "smoke": 15.0}
# Dataset rollouts per build process (MEASURED.md: Hopper's 3 x 10^6 in ~14 min with 2 jobs).
DEFAULT_TRANSITIONS_PER_S = 1800.0


@dataclass(frozen=True)
class Estimate:
    seconds: float | None  # None: nothing to estimate from (not a CPU, nothing measured)
    source: str


@dataclass(frozen=True)
class CellCost:
    """What a cell has to do: its agents, updates (pretraining included) and evaluations."""

    family: str
    agents: int
    updates: int
    evaluations: int
    pretrain: int = 0  # of `updates`


def estimate_cell(cell: Cell, cost: CellCost, history: Sequence[Mapping[str, Any]],
                  preset: str, workers: int, cpu: bool, done_fraction: float = 0.0,
                  device: str = "") -> Estimate:
    """Seconds `cell` will take in a worker (process start to cell file). history: timing rows
    of finished worker cells (timing.csv's columns); within each source below, rows run with
    the same worker count are preferred; each row carries its learner `family`. done_fraction:
    the part of its updates a checkpoint already holds. device (util.provenance.device_name):
    in this order, the cell's own (task, method) measured on this kind of machine (at any
    worker count); its own on another kind, scaled by how much faster this kind ran the
    (task, method)s both kinds ran (`kind_scales`); its family's on this kind, per agent;
    then another kind's own and family's, unscaled (one grid can run on several kinds:
    docs/reproduce.md). A task's cost per agent differs (Ant's is ~1.5x Hopper's), so the
    cell's own cells elsewhere, rescaled, beat other tasks' here."""
    rows = [row for row in history if _number(row.get("workers")) and _number(row.get("updates"))
            and float(row["workers"]) > 0]  # cells of worker processes, not in-process groups

    def same_workers_first(candidates: list) -> list:
        return [row for row in candidates if int(row["workers"]) == workers] or candidates

    def on_this_kind(row: Mapping[str, Any]) -> bool:  # "<device_name()>, <threads>"
        recorded = str(row.get("device") or "")
        return bool(device) and (recorded == device or recorded.startswith(device + ","))

    here_any = [row for row in rows if on_this_kind(row)]
    here = same_workers_first(here_any)
    rows = same_workers_first(rows)
    scales = kind_scales(here, [row for row in rows if not on_this_kind(row)]) if device else {}

    def own(candidates: list) -> list:
        return [row for row in candidates
                if row["task"] == cell.task and row["methods"] == cell.method]

    def kin(candidates: list) -> list:
        return [row for row in candidates if row.get("family") == cost.family]

    def rescaled(candidates: list) -> list:  # another kind's rows as this kind would run them
        out = []
        for row in candidates:
            if row.get("device") not in scales or not all(
                    _number(row.get(name)) for name in ("train_s", "eval_s", "actual_s")):
                continue
            factor = scales[row["device"]][0]
            train, evaluation = float(row["train_s"]), float(row["eval_s"])
            out.append({**row, "train_s": train * factor, "eval_s": evaluation * factor,
                        # start-up (actual - train - eval) is left as measured
                        "actual_s": float(row["actual_s"]) - (1 - factor) * (train + evaluation)})
        return out

    # the cell's own (task, method) at another worker count beats other tasks' at this one:
    # a task's cost per agent differs more than a lone worker's from one of two
    mine, family, where = same_workers_first(own(here_any)), [], ""
    if not mine:
        mine = rescaled(own(rows))
        if mine:
            factors = sorted({scales[row["device"]] for row in mine})
            where = " on another machine kind, " + "; ".join(
                f"x{factor:.2f} (this kind's time over that one's, the median of {pairs} "
                f"task-method pair(s) both ran)" for factor, pairs in factors)
    if not mine:
        family = kin(here)
    if not mine and not family:  # none measured here: another kind's (none have a device "")
        mine, family = own(rows), kin(rows)
        where = " on another machine kind" if device else ""
    left = 1.0 - done_fraction
    if mine:
        per_update = _median(mine, lambda row: row["train_s"] / row["updates"])
        source = f"measured: {len(mine)} finished cell(s) of {cell.task} {cell.method}{where}"
    elif family:
        per_update = cost.agents * _median(
            family, lambda row: row["train_s"] / row["updates"] / row["agents"])
        source = (f"measured: {len(family)} finished {cost.family}-family cell(s), per "
                  f"agent{where}")
    elif cpu and preset in DEFAULT_MS_PER_AGENT_UPDATE:
        per_update = (cost.agents * DEFAULT_MS_PER_AGENT_UPDATE[preset]
                      * FAMILY_COST.get(cost.family, 1.0) / 1000.0)
        source = f"default for a CPU worker ({preset} preset, docs/reproduce.md)"
    else:
        return Estimate(None, "unknown: no finished cell on this device to measure from")
    near = mine or family or rows
    evaluation = (_median(near, lambda row: row["eval_s"] / row["evaluations"])
                  if near else DEFAULT_EVAL_S.get(preset, 3.0))
    startup = (_median(near, lambda row: row["actual_s"] - row["train_s"] - row["eval_s"])
               if near else DEFAULT_STARTUP_S.get(preset, 40.0))
    seconds = max(startup, 0.0) + left * (cost.updates * per_update
                                          + cost.evaluations * evaluation)
    return Estimate(seconds, source)


def kind_scales(here: Sequence[Mapping[str, Any]], others: Sequence[Mapping[str, Any]]
                ) -> dict[str, tuple[float, int]]:
    """For each other device of `others`: (the median over the (task, method)s both it and
    this kind (`here`) finished of this kind's median seconds per update over that device's,
    how many such pairs). Devices sharing none with `here` are left out."""
    def per_update(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], float]:
        keys = {(row["task"], row["methods"]) for row in rows}
        medians = {key: _median([row for row in rows if (row["task"], row["methods"]) == key],
                                lambda row: row["train_s"] / row["updates"]) for key in keys}
        return {key: value for key, value in medians.items() if value > 0}

    mine = per_update(here)
    scales = {}
    for device in sorted({str(row.get("device") or "") for row in others} - {""}):
        theirs = per_update([row for row in others if row.get("device") == device])
        ratios = [mine[key] / theirs[key] for key in mine.keys() & theirs.keys()]
        if ratios:
            scales[device] = (statistics.median(ratios), len(ratios))
    return scales


def estimate_build(task: str, agents: int, transitions: int, jobs: int,
                   history: Sequence[Mapping[str, Any]]) -> float:
    """Seconds to build a task's missing datasets: what it took before on this OUT's machine
    (timing.csv data_s), else the default rollout rate."""
    built = [float(row["data_s"]) for row in history
             if row["task"] == task and _number(row.get("data_s")) and float(row["data_s"]) > 0]
    if built:
        return max(built)
    return agents * transitions / (DEFAULT_TRANSITIONS_PER_S * max(1, min(jobs, agents)))


def _number(value: Any) -> bool:
    try:
        return float(value) == float(value) and value not in ("", None)
    except (TypeError, ValueError):
        return False


def _median(rows: Sequence[Mapping[str, Any]], value: Callable[[dict[str, float]], float]
            ) -> float:
    numbers = [{name: float(row[name]) for name in ("train_s", "eval_s", "updates", "agents",
                                                     "evaluations", "actual_s")
                if _number(row.get(name))} for row in rows]
    values = []
    for row in numbers:
        try:
            values.append(value(row))
        except (KeyError, ZeroDivisionError):
            continue
    return statistics.median(values) if values else 0.0


def fits(now: float, seconds: float | None, deadline: float | None) -> bool:
    """Whether work estimated at `seconds` started `now` ends by `deadline` (epoch seconds). An
    unknown estimate fits: there is nothing to refuse it on (said when the plan is printed)."""
    return deadline is None or seconds is None or now + seconds <= deadline


def overrun_allowance(seconds: float | None) -> float:
    """How far past the deadline a cell in flight may run before it is stopped at its last
    checkpoint: max(60 s, 20% of its estimate)."""
    return max(60.0, 0.2 * (seconds or 0.0))


_DURATION = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s?)?$")


def parse_duration(text: str) -> float:
    """'2h30m', '45m', '600s' or '600' -> seconds (> 0); ValueError naming the form."""
    match = _DURATION.match(text.strip().lower())
    if not text.strip() or match is None or not any(match.groupdict().values()):
        raise ValueError(f"must be a duration like 2h30m, 45m or 600s, got {text!r}")
    parts = {name: int(value or 0) for name, value in match.groupdict().items()}
    seconds = 3600 * parts["h"] + 60 * parts["m"] + parts["s"]
    if seconds <= 0:
        raise ValueError(f"must be a positive duration, got {text!r}")
    return float(seconds)


def parse_clock(text: str) -> dt.time:
    """'14:30' or '14:30:15' (this machine's local time) -> a time of day."""
    try:
        return dt.time.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"must be a local time HH:MM or HH:MM:SS, got {text!r}") from None


def next_occurrence(clock: dt.time, now: dt.datetime) -> dt.datetime:
    """The first moment at `clock` after `now` (today, else tomorrow)."""
    moment = now.replace(hour=clock.hour, minute=clock.minute, second=clock.second,
                         microsecond=0)
    return moment if moment > now else moment + dt.timedelta(days=1)


def duration_text(seconds: float | None) -> str:
    """'2h05m', '13m05s', '40s', or '?' for an unknown estimate (negative: 0s)."""
    if seconds is None:
        return "?"
    seconds = max(0, int(round(seconds)))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
