"""`mabcq data build`'s entry point: a data preset's scale, and what the build draws from (a
shipped set, a trained SAC directory, or SAC trained now at the preset's scale)."""

from __future__ import annotations

from pathlib import Path

from mabcq.data.build import Behavior, build_datasets
from mabcq.envs.observations import GLOBAL, ObservationSpec
from mabcq.envs.tasks import Task
from mabcq.errors import UserError


def build_dataset_files(task: Task, recipe: str, preset: str, out: Path, *,
                        behavior: str | Path | None = None, shipped_root: Path | None = None,
                        size: int | None = None, noise: float | None = None, seed: int = 0,
                        num_envs: int | None = None, jobs: int = 1,
                        intermediate_step: int | None = None, expert_step: int | None = None,
                        progress: bool = True, obs: ObservationSpec = GLOBAL) -> list[Path]:
    """`mabcq data build` (and `mabcq.build_datasets`): out/agent_{i}.h5 for every agent of
    `task`, from the behavior `behavior_source` picks; size, noise and num_envs default to the
    data preset's (mabcq.data.recipes.DATA_PRESETS); obs: what each file's observations are
    (global states, or each agent's local observation)."""
    from mabcq.data.recipes import DATA_PRESETS

    if preset not in DATA_PRESETS:
        raise UserError(f"unknown data preset {preset!r}; choose one of "
                        f"{', '.join(DATA_PRESETS)}")
    scale = DATA_PRESETS[preset]
    size = scale.size if size is None else size
    if size <= 0:
        raise UserError(f"size must be positive, got {size}")
    if jobs < 1:
        raise UserError(f"jobs must be >= 1, got {jobs}")
    if num_envs is not None and num_envs < 1:
        raise UserError(f"num_envs must be >= 1, got {num_envs}")
    if noise is not None and not 0 <= noise < float("inf"):  # NaN fails this too
        raise UserError(f"noise must be a finite number >= 0, got {noise}")
    source = behavior_source(task, preset, Path(out), behavior, shipped_root, intermediate_step,
                             expert_step, seed, progress)
    # A shipped Behavior has its levels chosen already; a directory's are chosen when opened.
    levels = ({"intermediate_step": intermediate_step, "expert_step": expert_step}
              if isinstance(source, Path) else {})
    return build_datasets(task, recipe, size, source, Path(out), seed=seed,
                          noise=scale.noise if noise is None else noise,
                          num_envs=scale.num_envs if num_envs is None else num_envs,
                          progress=progress, jobs=jobs, obs=obs, **levels)


def behavior_source(task: Task, preset: str, out: Path, behavior: str | Path | None = None,
                    shipped_root: Path | None = None, intermediate_step: int | None = None,
                    expert_step: int | None = None, seed: int = 0,
                    progress: bool = True) -> Behavior | Path:
    """What to build from: a Behavior (shipped set) or a trained SAC directory (Path).

    behavior "shipped", or None at the quick/paper presets when the task has a shipped set: the
    shipped set; a directory: that directory; otherwise SAC trained into OUT/behavior (the
    smoke preset always trains its tiny SAC unless told "shipped").
    """
    from mabcq.behavior.ship import has_shipped, shipped_dir
    from mabcq.behavior.train import load_behavior, preset_config, train_behavior
    from mabcq.data.recipes import DATA_PRESETS

    scale = DATA_PRESETS[preset]
    if behavior == "shipped" or (
            behavior is None and preset != "smoke" and has_shipped(task.name, shipped_root)):
        shipped = Behavior.shipped(task, shipped_root, intermediate_step, expert_step)
        print(f"using the shipped behavior policies of {task.name} "
              f"({shipped_dir(task.name, shipped_root)}, policies_sha256 "
              f"{shipped.policies_sha256[:16]}...)")
        return shipped
    if behavior is not None:
        load_behavior(Path(behavior))
        return Path(behavior)
    behavior_dir = out / "behavior"
    if behavior_dir.exists() and not behavior_dir.is_dir():
        raise UserError(f"{behavior_dir}: a file where SAC's directory goes; move it or choose "
                        "another --out")
    if not (behavior_dir / "behavior.json").exists():
        if preset != "smoke":
            print(f"no shipped behavior policies for {task.name} (make them with `mabcq "
                  f"behavior ship DIR --task {task.name}`)")
        print(f"training SAC ({scale.behavior_preset} preset) into {behavior_dir}")
        train_behavior(task, preset_config(scale.behavior_preset), behavior_dir,
                       seed=seed, progress=progress)
    else:
        trained = load_behavior(behavior_dir)["config"]["total_steps"]
        wanted = preset_config(scale.behavior_preset).total_steps
        if trained != wanted:
            raise UserError(
                f"{behavior_dir}: SAC there was trained for {trained} steps, the "
                f"{preset} preset trains {wanted}; use another --out, or pass "
                f"--behavior {behavior_dir} to build from it anyway")
    return behavior_dir
