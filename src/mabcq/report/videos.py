"""`mabcq report --videos`: per task, a short clip of MABCQ's and BCQ's final policies (one
seed) acting together in MuJoCo, and of the expert behavior policy for reference, beside
Table 6.

The policy files come from the results directory's own runs (RESULTS/runs/<task>/<group>/
policies/, as `mabcq reproduce` keeps them); the expert is the package's shipped SAC expert of
the task (the behavior the default datasets are built from). Every clip starts from the same
simulator seed and lasts CLIP_SECONDS of simulated time (at most the task's horizon). Files:
OUT/videos/<task>/<name>_0.mp4 and .gif (mabcq.video); report.md shows the GIFs and links the
MP4s. A task whose policy files are not there gets one line saying so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mabcq.errors import UserError
from mabcq.grid.cells import policy_files
from mabcq.report.context import Context
from mabcq.report.tables import method_label, order_tasks, task_label

VIDEO_METHODS = ("mabcq", "bcq")
EXPERT = "expert"
CLIP_SECONDS = 10.0
CLIP_SIZE = (480, 360)  # MP4 frames; the GIF is GIF_WIDTH wide (mabcq.video)
VIDEO_DIR = "videos"
CLIP_SEED = 0  # the evaluation seed of every clip: the same start for every policy


def _seeds(ctx: Context, task: str, method: str) -> list[int]:
    return sorted({row["seed"] for row in ctx.results.returns or []
                   if row["task"] == task and row["method"] == method})


def _clip_steps(task: Any) -> int:
    from mabcq.envs.tasks import make_env

    env = make_env(task).unwrapped
    dt = float(env.dt)
    env.close()
    return max(1, min(task.horizon, round(CLIP_SECONDS / dt)))


def _film_method(task: Any, files: list[Path], steps: int, options: Any, name: str
                 ) -> tuple[list[Path], float, int]:
    from mabcq.training.evaluation import load_policies, run_policies
    from mabcq.video import record_videos

    policies = load_policies(task, files)
    rollout = run_policies(task, policies, 1, CLIP_SEED, steps, record_physics=True)
    paths = record_videos(task, rollout, options, name=name)
    return paths, float(rollout.episode_returns[0]), int(rollout.episode_lengths[0])


def _film_expert(task: Any, steps: int, options: Any) -> tuple[list[Path], float, int]:
    from mabcq.behavior.policies import split_joint_policy
    from mabcq.data.build import Behavior
    from mabcq.envs.rollout import run_episodes
    from mabcq.training.evaluation import evaluation_env_seed
    from mabcq.video import record_videos

    behavior = Behavior.shipped(task)
    policies = split_joint_policy(task, behavior.joint_policies["expert"])
    rollout = run_episodes(task, policies, 1, seed=evaluation_env_seed(CLIP_SEED, 0),
                           max_steps=steps, num_envs=1, record_physics=True)
    paths = record_videos(task, rollout, options, name=EXPERT)
    return paths, float(rollout.episode_returns[0]), int(rollout.episode_lengths[0])


def section(ctx: Context) -> list[str]:
    """The videos section (writes the clips); one line per task or policy not filmed."""
    from mabcq.envs.tasks import TASKS, get_task
    from mabcq.video import GIF_WIDTH, VideoOptions

    lines = ["## Videos: the final policies acting together", "",
             f"One episode each from the same simulator seed ({CLIP_SECONDS:g} s of simulated "
             "time at most), each agent's body parts in its own color (the paper's Figure 1); "
             "the GIF shows the first seconds, the MP4 the whole clip. Policies: the final "
             "ones of the lowest seed that has both methods' files; expert: the shipped SAC "
             "expert of the task, whose data the methods learned from.", ""]
    returns = ctx.results.returns or []
    tasks = order_tasks({row["task"] for row in returns if row["method"] in VIDEO_METHODS
                         and row["task"] in TASKS})
    if not tasks:
        if ctx.results.returns is None:
            return lines + ctx.file_missing("returns.csv", "videos")
        return lines + ctx.rows_missing("returns.csv", "videos", "MABCQ or BCQ")
    video_root = ctx.out_dir / VIDEO_DIR
    written: set[Path] = set()
    rows, notes = [], []
    for task_name in tasks:
        task = get_task(task_name)
        steps = _clip_steps(task)
        seeds = {method: [seed for seed in _seeds(ctx, task_name, method)
                          if policy_files(ctx.results.directory, task_name, method, seed,
                                          task.n_agents)]
                 for method in VIDEO_METHODS}
        both = sorted(set(seeds["mabcq"]) & set(seeds["bcq"]))
        cells = []
        options = VideoOptions(video_root / task_name, width=CLIP_SIZE[0], height=CLIP_SIZE[1],
                               gif_width=min(GIF_WIDTH, CLIP_SIZE[0]))
        for method in VIDEO_METHODS:
            seed = both[0] if both else (seeds[method] or [None])[0]
            if seed is None:
                cells.append("—")
                notes.append(f"{task_name} {method}: no policy files under "
                             f"`runs/{task_name}/*/policies/` of the results directory")
                continue
            files = policy_files(ctx.results.directory, task_name, method, seed, task.n_agents)
            title = f"{task_name}  {method_label(method)} seed {seed}"
            try:
                paths, value, length = _film_method(task, files, steps,
                                                    _titled(options, title), method)
            except UserError as error:  # a damaged or outdated policy file
                cells.append("—")
                notes.append(f"{task_name} {method} seed {seed}: {error}")
                continue
            written.update(paths)
            cells.append(_cell(paths, video_root.parent, value, length,
                               f"{method_label(method)} on {task_label(task_name)}",
                               f"seed {seed}: "))
        try:
            paths, value, length = _film_expert(
                task, steps, _titled(options, f"{task_name}  expert behavior"))
        except UserError as error:  # no shipped set for this task
            cells.append("—")
            notes.append(f"{task_name} expert: {error}")
        else:
            written.update(paths)
            cells.append(_cell(paths, video_root.parent, value, length,
                               f"expert behavior on {task_label(task_name)}"))
        rows.append(f"| {task_label(task_name)} | " + " | ".join(cells) + " |")
    _remove_stale(video_root, written)
    header = "| task | " + " | ".join(method_label(m) for m in VIDEO_METHODS) + " | expert |"
    lines += [header, "|---" * (len(VIDEO_METHODS) + 2) + "|", *rows, ""]
    for note in notes:
        lines.append(f"_Not filmed: {note}._")
        ctx.missing.append(f"video: {note}")
    return lines + ([""] if notes else [])


def _titled(options: Any, title: str) -> Any:
    import dataclasses

    return dataclasses.replace(options, title=title)


def _cell(paths: list[Path], root: Path, value: float, length: int, alt: str,
          prefix: str = "") -> str:
    mp4 = next(path for path in paths if path.suffix == ".mp4").relative_to(root).as_posix()
    gifs = [path.relative_to(root).as_posix() for path in paths if path.suffix == ".gif"]
    picture = f"![{alt}]({gifs[0]})<br>" if gifs else ""
    return f"{picture}{prefix}return {value:.1f} in {length} steps, [MP4]({mp4})"


def _remove_stale(video_root: Path, written: set[Path]) -> None:
    """Clips of an earlier report whose policies are gone: every clip there is this report's."""
    if not video_root.is_dir():
        return
    for path in video_root.glob("*/*"):
        if path.suffix in (".mp4", ".gif") and path not in written:
            path.unlink()
