"""Videos of the agents' policies acting together: MP4 per episode, and a small GIF for docs.

`mabcq evaluate ... --video DIR`, `mabcq.evaluate(..., video=DIR or VideoOptions(...))`,
`mabcq report --videos` and `mabcq demo` all come here. The frames are replayed from the
evaluation's own rollout (its physics states, mabcq.envs.render), so a video shows exactly the
episodes whose returns are reported, and the same seed gives the same frames.

Needs the `video` extra (`pip install 'mabcq[video]'`: imageio-ffmpeg, whose wheel carries its
own ffmpeg; Pillow) and an offscreen OpenGL from the system (mabcq.envs.render). A missing piece
is refused by `require_video` in one line naming what to install, before any work.

Files are written to a temp file beside the target and renamed, so a video is whole or absent.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mabcq.errors import UserError

DEFAULT_SIZE = (480, 360)
GIF_WIDTH = 320
GIF_SECONDS = 8.0
GIF_MAX_FPS = 12.5
GIF_COLORS = 64
GIF_LAST_FRAME_MS = 1000  # the last frame stays a second before the loop starts again
MAX_FPS = 30.0
VIDEO_EXTRA = "pip install 'mabcq[video]'"


@dataclass(frozen=True)
class VideoOptions:
    """What to film and how.

    out: the directory the files go into (created). episodes: the first this many evaluation
    episodes, one MP4 each (episode_<k>.mp4). width, height: MP4 frame size (even numbers).
    fps: frames per second; None: real time, every k-th simulator step at up to 30 fps.
    camera: "track" (follows the torso) or "fixed" (looks where the torso started).
    distance: camera distance in meters (None: the task's default). gif: also a small GIF of
    the first episode's first `gif_seconds` (episode_0.gif, `gif_width` pixels wide).
    title: overlay text in front of the step and return (default: the task name).
    shadows: MuJoCo's shadows (about 4x slower on a software OpenGL).
    """

    out: Path
    episodes: int = 1
    width: int = DEFAULT_SIZE[0]
    height: int = DEFAULT_SIZE[1]
    fps: float | None = None
    camera: str = "track"
    distance: float | None = None
    gif: bool = True
    gif_width: int = GIF_WIDTH
    gif_seconds: float = GIF_SECONDS
    title: str = ""
    shadows: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))


def video_options(video: Any) -> VideoOptions:
    """`video` (a directory, or VideoOptions) checked: UserError naming a bad value."""
    from mabcq.envs.render import CAMERAS

    options = video if isinstance(video, VideoOptions) else VideoOptions(Path(video))
    for name in ("width", "height", "gif_width"):
        value = getattr(options, name)
        if not isinstance(value, int | np.integer) or not 16 <= value <= 4096 or value % 2:
            raise UserError(f"video {name} must be an even number of pixels in 16..4096, "
                            f"got {value!r}")
    if not isinstance(options.episodes, int | np.integer) or options.episodes < 1:
        raise UserError(f"video episodes must be >= 1, got {options.episodes!r}")
    if options.fps is not None and not 1 <= options.fps <= 120:
        raise UserError(f"video fps must be in 1..120, got {options.fps!r}")
    if options.camera not in CAMERAS:
        raise UserError(f"video camera {options.camera!r}: choose one of {', '.join(CAMERAS)}")
    if options.distance is not None and not 0 < options.distance <= 100:
        raise UserError(f"video distance must be in (0, 100] meters, got {options.distance!r}")
    if not options.gif_seconds > 0:
        raise UserError(f"video gif_seconds must be > 0, got {options.gif_seconds!r}")
    if options.out.exists() and not options.out.is_dir():
        raise UserError(f"video: {options.out} is a file; give a directory")
    return options


def checked_video_options(video: Any, episodes: int) -> VideoOptions:
    """mabcq.evaluate's `video`, checked, and the machine's ability to render, before any work."""
    options = video_options(video)
    if options.episodes > episodes:
        raise UserError(f"video: {options.episodes} episodes to film, but only {episodes} "
                        "are run")
    require_video()
    return options


def require_video() -> str:
    """Check that videos can be made here, before any work: the MP4 writer is installed and an
    offscreen OpenGL makes a context. Returns the OpenGL backend ('egl' or 'osmesa'); UserError
    in one line naming what to install otherwise."""
    for module, package in (("imageio_ffmpeg", "imageio-ffmpeg"), ("PIL", "Pillow")):
        if importlib.util.find_spec(module) is None:
            raise UserError(f"videos need {package}, which is not installed: {VIDEO_EXTRA}")
    from mabcq.envs.render import gl_backend

    return gl_backend()


# ---------------------------------------------------------------- files


def _ffmpeg_writer(path: Path, width: int, height: int, fps: float) -> Any:
    import imageio_ffmpeg

    # One thread and bit-exact flags: the same frames give the same bytes on any machine with
    # the same ffmpeg. The temp file's name does not end in .mp4: name the container.
    writer = imageio_ffmpeg.write_frames(
        str(path), (width, height), fps=fps, codec="libx264", pix_fmt_in="rgb24",
        pix_fmt_out="yuv420p", macro_block_size=2, ffmpeg_log_level="error", quality=None,
        output_params=["-crf", "23", "-preset", "medium", "-threads", "1",
                       "-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1",
                       "-movflags", "+faststart", "-f", "mp4"])
    with _fork_exec_quietly():
        writer.send(None)  # starts ffmpeg
    return writer


@contextlib.contextmanager
def _fork_exec_quietly() -> Iterator[None]:
    """Starting ffmpeg fork-execs: JAX's fork warning is about a child that keeps running
    Python, and this one execs ffmpeg at once."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called",
                                category=RuntimeWarning)
        yield


def write_mp4(path: str | os.PathLike, frames: Iterator[np.ndarray], fps: float) -> int:
    """Encode RGB frames [H, W, 3] uint8 (all of one size) as H.264 MP4, atomically; returns
    the frame count. UserError when there are none."""
    from mabcq.util.atomic import atomic_path

    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise UserError(f"{path}: no frames to write")
    height, width = first.shape[:2]
    count = 0
    with atomic_path(path) as temp:
        writer = _ffmpeg_writer(temp, width, height, fps)
        try:
            for frame in _chain(first, frames):
                writer.send(np.ascontiguousarray(frame, dtype=np.uint8))
                count += 1
        finally:
            writer.close()
    return count


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


def write_gif(path: str | os.PathLike, frames: Sequence[np.ndarray], fps: float) -> int:
    """An animated GIF at `fps` (looping, one palette for all frames; the last frame shows for
    a second), atomically; returns the frame count."""
    from PIL import Image

    from mabcq.util.atomic import atomic_path

    if not frames:
        raise UserError(f"{path}: no frames to write")
    # One palette for all frames, from the first, middle and last: unchanged pixels stay the
    # same index, so the GIF stores less.
    samples = [np.asarray(frames[i], np.uint8) for i in sorted({0, len(frames) // 2, -1})]
    palette = Image.fromarray(np.concatenate(samples, axis=0)).quantize(
        colors=GIF_COLORS, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    images = [Image.fromarray(np.asarray(frame, np.uint8)).quantize(
        palette=palette, dither=Image.Dither.NONE) for frame in frames]
    delay = max(20, int(round(100.0 / fps)) * 10)  # GIF delays are in 1/100 s
    durations = [delay] * (len(images) - 1) + [max(delay, GIF_LAST_FRAME_MS)]
    with atomic_path(path) as temp:
        images[0].save(temp, format="GIF", save_all=True, append_images=images[1:],
                       duration=durations, loop=0, optimize=False, disposal=1)
    return len(images)


def read_mp4(path: str | os.PathLike) -> tuple[dict[str, Any], np.ndarray]:
    """(ffmpeg's metadata, frames [N, H, W, 3] uint8) of an MP4: for tests and checks."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    with _fork_exec_quietly():
        meta = next(reader)
    width, height = meta["size"]
    frames = [np.frombuffer(raw, np.uint8).reshape(height, width, 3) for raw in reader]
    return meta, np.stack(frames) if frames else np.zeros((0, height, width, 3), np.uint8)


# ---------------------------------------------------------------- episodes -> files


def episode_bounds(lengths: Sequence[int]) -> list[tuple[int, int]]:
    ends = np.cumsum(np.asarray(lengths, dtype=np.int64))
    return [(int(end - length), int(end)) for end, length in zip(ends, lengths, strict=True)]


def record_videos(task: Any, rollout: Any, options: VideoOptions, name: str = "episode"
                  ) -> list[Path]:
    """Film the first `options.episodes` episodes of `rollout` (a RolloutResult recorded with
    record_physics=True): OUT/<name>_<k>.mp4 each, and OUT/<name>_0.gif when options.gif.
    Returns the paths in the order written: <name>_0.mp4, <name>_0.gif, <name>_1.mp4, ..."""
    import mujoco

    from mabcq.envs.render import EpisodeRenderer, overlay, real_time_stride

    if rollout.physics_states is None:
        raise ValueError("record_videos needs a rollout recorded with record_physics=True")
    bounds = episode_bounds(rollout.episode_lengths)[: options.episodes]
    paths: list[Path] = []
    with EpisodeRenderer(task, options.width, options.height, options.camera,
                         options.distance) as renderer:
        renderer.offscreen.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = options.shadows
        stride, fps = real_time_stride(renderer.env.dt, options.fps, MAX_FPS)
        gif_every = max(1, int(np.ceil(fps / GIF_MAX_FPS - 1e-9)))
        gif_frames = max(2, int(options.gif_seconds * fps / gif_every))
        gif_size = (options.gif_width,
                    2 * max(8, round(options.gif_width * options.height / options.width / 2)))
        for episode, (start, stop) in enumerate(bounds):
            gif: list[np.ndarray] = []
            want_gif = options.gif and episode == 0

            def frames(start: int = start, stop: int = stop, gif: list = gif,
                       want_gif: bool = want_gif) -> Iterator[np.ndarray]:
                pictures = renderer.episode(rollout.physics_states[start:stop],
                                            rollout.actions[start:stop],
                                            rollout.rewards[start:stop], stride)
                for index, picture in enumerate(pictures):
                    header = renderer.header(picture, stop - start, options.title)
                    last = picture.step == stop - start
                    if want_gif and len(gif) < gif_frames and (index % gif_every == 0 or last):
                        small = _resize(picture.scene, gif_size)
                        gif.append(overlay(small, header, renderer.labels, renderer.colors))
                    yield overlay(picture.scene, header, renderer.labels, renderer.colors)

            path = options.out / f"{name}_{episode}.mp4"
            write_mp4(path, frames(), fps)
            paths.append(path)
            if want_gif:
                gif_path = options.out / f"{name}_{episode}.gif"
                write_gif(gif_path, gif, fps / gif_every)
                paths.append(gif_path)
    return paths


def _resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    if (frame.shape[1], frame.shape[0]) == size:
        return frame
    return np.asarray(Image.fromarray(frame).resize(size, Image.Resampling.LANCZOS))


# ---------------------------------------------------------------- command line


def with_out(options: VideoOptions, out: Path, **changes: Any) -> VideoOptions:
    return dataclasses.replace(options, out=Path(out), **changes)


# ---------------------------------------------------------------- the demo's clip


DEMO_CLIP_STEPS = 200  # the demo's evaluation length


def film_policies(task_name: str, policies: Sequence[Any], out: Path, name: str,
                  title: str = "", max_steps: int | None = None, seed: int = 0
                  ) -> list[Path]:
    """One episode of `policies` (one Policy per agent) acting together, filmed as
    OUT/<name>_0.mp4 and OUT/<name>_0.gif; the evaluation is mabcq.evaluate's."""
    from mabcq.envs.tasks import get_task
    from mabcq.training.evaluation import run_policies

    task = get_task(task_name)
    steps = DEMO_CLIP_STEPS if max_steps is None else max_steps
    rollout = run_policies(task, list(policies), 1, seed, steps, record_physics=True)
    return record_videos(task, rollout, VideoOptions(Path(out), title=title), name=name)


def video_unavailable() -> str | None:
    """None when videos can be made here, else the one-line reason (what to install)."""
    try:
        require_video()
    except UserError as error:
        return str(error)
    return None
