"""Behavior policies shipped with the package: the few SAC snapshots the dataset recipes need.

`ship_behavior` copies them out of a `mabcq behavior train` directory into
`SHIPPED_ROOT/<task>/` (docs/datasets.md, "Shipped behavior policies"):

  behavior.json            SAC config, env steps, every evaluation, the chosen levels and their
                           rule, the early experience's segments, what each file stands for,
                           library versions, sha256 of every file and their `policies_sha256`
  step_<N>.msgpack         SAC's actor after N env steps (float32 flax msgpack), one file per
                           shipped step whatever roles it plays (early / intermediate / expert)

The early experience (the recipes' "early" part and medium-replay) is then re-created by
rollouts (mabcq.data.early): SAC's uniform warm-up, then each early snapshot's sampled policy for
the env steps SAC collected between it and the next one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mabcq import __version__
from mabcq.envs.tasks import Task
from mabcq.errors import UserError
from mabcq.util.atomic import write_bytes, write_json
from mabcq.util.provenance import combined_sha256, library_versions, sha256_file

SHIPPED_ROOT = Path(__file__).resolve().parent / "shipped"
SHIPPED_FORMAT = "mabcq-shipped-behavior"
SHIPPED_FORMAT_VERSION = 1
EARLY_SEGMENTS = 10  # default spacing: the early cutoff over this many snapshots


def shipped_dir(task_name: str, root: str | os.PathLike | None = None) -> Path:
    """Where the shipped set of `task_name` lives (root: SHIPPED_ROOT unless given)."""
    return Path(SHIPPED_ROOT if root is None else root) / task_name


def has_shipped(task_name: str, root: str | os.PathLike | None = None) -> bool:
    return (shipped_dir(task_name, root) / "behavior.json").is_file()


def snapshot_file_name(step: int) -> str:
    return f"step_{step:09d}.msgpack"


# ---------------------------------------------------------------- choosing what to ship


def default_early_until(levels: dict[str, Any], env_steps: int) -> int:
    """The env steps of SAC's experience the recipes take at the paper preset: the "early" part
    (20% of 10^6) and medium-replay (up to the intermediate step, capped at 10^6)."""
    from mabcq.data.recipes import DATA_PRESETS, RECIPES, part_sizes

    size = DATA_PRESETS["paper"].size
    needed = [min(size, int(levels["intermediate"]["step"]))]
    for parts in RECIPES.values():
        needed += [count for part, count in zip(parts, part_sizes(parts, size), strict=True)
                   if part.source == "replay" and not part.replay_until]
    return min(max(needed), env_steps)


def early_segments(eval_steps: list[int], start_steps: int, until: int, every: int
                   ) -> list[dict[str, Any]]:
    """SAC's experience [0, until) cut into segments, each with the policy that re-creates it.

    [0, start_steps): uniform random actions (SAC's warm-up). Then snapshots t_0 < t_1 < ...
    taken from the evaluation steps at least `every` apart (t_0: the last one at or before the
    warm-up's end, else the first one); snapshot t_k stands for SAC's changing actor over
    [t_k, t_{k+1}) (from the warm-up's end for t_0).
    """
    warmup_end = min(start_steps, until)
    segments: list[dict[str, Any]] = []
    if warmup_end > 0:
        segments.append({"start": 0, "stop": warmup_end, "policy": "uniform"})
    if until <= warmup_end:
        return segments
    steps = sorted(eval_steps)
    if not steps:
        raise UserError("no evaluations (snapshots) recorded: train SAC longer")
    before = [step for step in steps if step <= warmup_end]
    chosen = [before[-1] if before else steps[0]]
    for step in steps:
        if chosen[-1] + every <= step < until:
            chosen.append(step)
    starts = [warmup_end] + chosen[1:]
    stops = chosen[1:] + [until]
    for snapshot, start, stop in zip(chosen, starts, stops, strict=True):
        segments.append({"start": start, "stop": stop, "policy": "sampled",
                         "snapshot_step": snapshot, "snapshot": snapshot_file_name(snapshot)})
    return segments


def _roles(levels: dict[str, Any], segments: list[dict[str, Any]]) -> dict[int, list[str]]:
    """{step: [what the snapshot at step stands for, ...]} of every shipped snapshot."""
    roles: dict[int, list[str]] = {}
    for segment in segments:
        if segment["policy"] == "sampled":
            roles.setdefault(segment["snapshot_step"], []).append(
                f"early: SAC's actor after {segment['snapshot_step']} env steps, sampled (not "
                f"its mean), re-creates SAC's experience of env steps [{segment['start']}, "
                f"{segment['stop']})")
    for level in ("intermediate", "expert"):
        value = levels[level]
        roles.setdefault(int(value["step"]), []).append(
            f"{level}: deterministic policy tanh(mean), eval return {value['return_mean']:.1f} "
            f"({value['rule']})")
    return dict(sorted(roles.items()))


# ---------------------------------------------------------------- writing a set


def ship_behavior(behavior_dir: Path, task: Task, root: str | os.PathLike | None = None,
                  early_every: int | None = None, early_until: int | None = None
                  ) -> dict[str, Any]:
    """Write `task`'s shipped set from a trained SAC directory; returns its behavior.json record.

    early_until: env steps of SAC's experience to make re-creatable (default
    `default_early_until`); early_every: env steps between early snapshots (default: the cutoff
    over EARLY_SEGMENTS, rounded down to whole evaluation periods, at least one).
    """
    from mabcq.behavior.train import load_behavior

    behavior_dir = Path(behavior_dir)
    record = load_behavior(behavior_dir)
    if record["task"] != task.name:
        raise UserError(f"{behavior_dir}: SAC was trained on {record['task']}, not {task.name}")
    config, env_steps = record["config"], int(record["env_steps"])
    levels = record["levels"]
    if early_until is None:
        early_until = default_early_until(levels, env_steps)
    elif not 0 < early_until <= env_steps:
        raise UserError(f"--early-until {early_until}: SAC in {behavior_dir} ran {env_steps} "
                        "env steps; give 1..that")
    eval_every = int(config["eval_every"])
    if early_every is None:
        early_every = max(eval_every, early_until // EARLY_SEGMENTS // eval_every * eval_every)
    elif early_every <= 0:
        raise UserError(f"--early-every must be positive, got {early_every}")
    by_step = {int(e["step"]): e for e in record["evaluations"]}
    segments = early_segments(list(by_step), int(config["start_steps"]), early_until,
                              early_every)
    roles = _roles(levels, segments)
    out = shipped_dir(task.name, root)
    snapshots = []
    for step, stands_for in roles.items():
        source = behavior_dir / by_step[step]["snapshot"]
        name = snapshot_file_name(step)
        payload = _read_float32_actor(source)
        write_bytes(out / name, payload)
        snapshots.append({"file": name, "step": step, "eval_return": by_step[step]["return_mean"],
                          "stands_for": stands_for, "bytes": len(payload),
                          "sha256": sha256_file(out / name)})
    hashes = {s["file"]: s["sha256"] for s in snapshots}
    shipped = {
        "format": SHIPPED_FORMAT, "format_version": SHIPPED_FORMAT_VERSION, "task": task.name,
        "seed": record["seed"], "config": config, "env_steps": env_steps,
        "updates": record.get("updates"),
        "evaluations": [{key: e[key] for key in ("step", "return_mean", "return_std",
                                                 "length_mean") if key in e}
                        for e in record["evaluations"]],
        "levels": {level: {key: value for key, value in levels[level].items()
                           if key != "snapshot"} | {"snapshot": snapshot_file_name(
                               int(levels[level]["step"]))}
                   for level in ("intermediate", "expert")},
        "early": {"until_step": early_until, "warmup_steps": int(config["start_steps"]),
                  "every": early_every, "segments": segments},
        "snapshots": snapshots,
        "bytes": sum(s["bytes"] for s in snapshots),
        "policies_sha256": combined_sha256(hashes),
        "versions": record.get("versions") or library_versions(),
        "versions_recorded": "at SAC training" if record.get("versions") else "at shipping",
        "package_version": __version__,
    }
    write_json(out / "behavior.json", shipped)
    for stale in out.glob("*.msgpack"):
        if stale.name not in hashes:
            stale.unlink()  # left by an earlier ship of this task
    return shipped


def _read_float32_actor(path: Path) -> bytes:
    """The snapshot's bytes, after checking it is a readable actor of float32 arrays."""
    import numpy as np
    from flax import serialization
    from jax.tree_util import tree_leaves

    if not path.is_file():
        raise UserError(f"{path}: snapshot missing from the behavior directory")
    payload = path.read_bytes()
    try:
        leaves = tree_leaves(serialization.msgpack_restore(payload))
    except Exception as error:  # msgpack raises several unrelated types
        raise UserError(f"{path}: unreadable actor snapshot ({error})") from None
    if not leaves or any(np.asarray(leaf).dtype != np.float32 for leaf in leaves):
        raise UserError(f"{path}: not a float32 actor snapshot")
    return payload


# ---------------------------------------------------------------- reading a set


def load_shipped(task_name: str, root: str | os.PathLike | None = None) -> dict[str, Any]:
    """The verified behavior.json record of `task_name`'s shipped set (plus its "directory").

    Every listed file must exist with its recorded sha256, and the combined hash must match:
    otherwise a UserError names the file.
    """
    directory = shipped_dir(task_name, root)
    path = directory / "behavior.json"
    if not path.is_file():
        raise UserError(
            f"no shipped behavior policies for {task_name} (no {path}); make them from a "
            f"trained SAC directory with `mabcq behavior ship DIR --task {task_name}`, or pass "
            "--behavior DIR")
    try:
        record = json.loads(path.read_text())
        snapshots = record["snapshots"]
        hashes = {s["file"]: s["sha256"] for s in snapshots}
        fmt, task, combined = record["format"], record["task"], record["policies_sha256"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserError(f"{path}: unreadable shipped behavior record ({error})") from None
    if fmt != SHIPPED_FORMAT or task != task_name:
        raise UserError(f"{path}: not the shipped behavior set of {task_name} (format "
                        f"{fmt!r}, task {task!r})")
    for name, expected in hashes.items():
        file = directory / name
        if not file.is_file():
            raise UserError(f"{file}: shipped policy file missing; reinstall mabcq or ship "
                            "the set again")
        actual = sha256_file(file)
        if actual != expected:
            raise UserError(f"{file}: sha256 {actual[:16]}... differs from behavior.json's "
                            f"{expected[:16]}...; the file was changed: restore it (git "
                            "checkout, reinstall) or ship the set again")
    if combined_sha256(hashes) != combined:
        raise UserError(f"{path}: policies_sha256 does not match its files' hashes; ship the "
                        "set again")
    return {**record, "directory": str(directory)}
