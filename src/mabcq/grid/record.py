"""grid.json of `mabcq reproduce`: the request, the scale it ran at, the machine, versions and
the seconds per stage, merged across the grids that share one OUT (docs/reproduce.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mabcq.errors import UserError
from mabcq.grid.groups import Grid, dataset_size, group_overrides, groups
from mabcq.learners.registry import family_of
from mabcq.util.provenance import device_name


def grid_record(grid: Grid, out: Path, split: dict[str, float],
                overrides: dict[str, Any]) -> dict[str, Any]:
    """grid.json: the request, the scale it ran at, the machine, versions, and the seconds per
    stage summed over every call that worked on OUT (a resumed grid adds to them).

    recipes, updates and transitions_per_agent are per "task/family" (a task's CQL family may
    train on medium-replay data and for Figure 6's counts while its BCQ family trains on the
    paper's); batch_size is per family. Each collapses to one number when the same everywhere.
    Grids that share OUT (the BCQ grid, then the CQL grid) are merged: tasks, methods and seeds
    are the union, the per-group values are kept; the other settings are this call's.
    """
    from mabcq.data.recipes import DATA_PRESETS
    from mabcq.learners.registry import learner_config
    from mabcq.training.config import make_config
    from mabcq.util.provenance import RESULT_LIBRARIES, library_versions

    updates, batches, recipes, sizes, probe = {}, {}, {}, {}, None
    for task in grid.tasks:
        methods = grid.task_methods(task)
        for group_methods, _ in groups(task, methods, {(method, 0) for method in methods}):
            probe = make_config(task, "+".join(group_methods), grid.seeds, grid.preset,
                                **group_overrides(task, group_methods, grid.preset, overrides))
            family = family_of(group_methods[0]).name
            updates[f"{task}/{family}"] = probe.updates
            recipes[f"{task}/{family}"] = grid.recipe_for(task)
            sizes[f"{task}/{family}"] = (dataset_size(task, grid.preset, grid.recipe_for(task))
                                         or DATA_PRESETS[grid.preset].size)
            batches[family] = learner_config(group_methods[0], task,
                                             **probe.learner_overrides).batch_size
    assert probe is not None
    record = {"preset": grid.preset, "tasks": list(grid.tasks), "methods": list(grid.methods),
              "seeds": list(grid.seeds), "eps_sweep": grid.eps_sweep,
              "recipes": recipes,
              "updates": updates, "eval_every": probe.eval_every,
              "eval_episodes": probe.eval_episodes, "batch_size": batches,
              "transitions_per_agent": sizes,
              "overrides": overrides, "device": device_name(),
              "versions": library_versions(RESULT_LIBRARIES), "wall_time_s": dict(split)}
    if (out / "grid.json").is_file():
        before = json.loads((out / "grid.json").read_text())
        if before.get("preset") != grid.preset:
            raise UserError(f"{out}: holds a {before.get('preset')} grid; use another --out for "
                            f"the {grid.preset} preset")
        record = merge_records(before, record)
    for name in ("updates", "batch_size", "transitions_per_agent"):  # one value: written as it
        if len(set(record[name].values())) == 1:
            record[name] = next(iter(record[name].values()))
    return record


def merge_records(previous: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """`current` grid.json over an earlier one of the same OUT (see grid_record)."""
    def union(name: str) -> list[Any]:
        return list(dict.fromkeys([*previous.get(name, []), *current[name]]))

    def per_group(record: dict[str, Any], name: str, keys: list[str]) -> dict[str, Any]:
        value = record.get(name)
        if value is None:
            return {}
        return dict(value) if isinstance(value, dict) else {key: value for key in keys}

    earlier_groups = [f"{task}/{family_of(method).name}" for task in previous.get("tasks", [])
                      for method in previous.get("methods", [])]
    earlier_families = [family_of(method).name for method in previous.get("methods", [])]
    merged = dict(current)
    for name in ("tasks", "methods", "seeds"):
        merged[name] = union(name)
    merged["eps_sweep"] = bool(previous.get("eps_sweep")) or current["eps_sweep"]
    merged["recipes"] = {**previous.get("recipes", {}), **current["recipes"]}
    for name in ("updates", "transitions_per_agent"):
        merged[name] = {**per_group(previous, name, earlier_groups), **current[name]}
    merged["batch_size"] = {**per_group(previous, "batch_size", earlier_families),
                            **current["batch_size"]}
    spent = previous.get("wall_time_s", {})
    merged["wall_time_s"] = {name: value + float(spent.get(name) or 0.0)
                             for name, value in current["wall_time_s"].items()}
    return merged
