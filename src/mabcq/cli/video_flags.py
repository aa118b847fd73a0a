"""The flags of `mabcq evaluate --video DIR` and their VideoOptions (mabcq.video films)."""

from __future__ import annotations

import argparse

from mabcq.cli import kinds
from mabcq.errors import UserError
from mabcq.video import DEFAULT_SIZE, VideoOptions, video_options


def frame_size(text: str) -> tuple[int, int]:
    """WIDTHxHEIGHT, even numbers of pixels in 16..4096 (an argparse type)."""
    parts = text.lower().split("x")
    try:
        width, height = (int(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be WIDTHxHEIGHT, e.g. 480x360, got {text!r}"
                                         ) from None
    if not (16 <= width <= 4096 and 16 <= height <= 4096) or width % 2 or height % 2:
        raise argparse.ArgumentTypeError(f"must be even numbers of pixels in 16..4096, e.g. "
                                         f"480x360, got {text!r}")
    return width, height


def add_video_arguments(parser: argparse.ArgumentParser) -> None:
    """--video DIR and its options (`mabcq evaluate`)."""
    from mabcq.envs.render import CAMERAS

    group = parser.add_argument_group("videos (the `video` extra and an offscreen OpenGL)")
    group.add_argument("--video", type=kinds.output_dir, metavar="DIR",
                       help="also film the agents acting together: DIR/episode_<k>.mp4, each "
                       "agent's body parts in its own color, and a small DIR/episode_0.gif")
    group.add_argument("--video-episodes", type=kinds.positive_int, metavar="N",
                       help="episodes to film (default 1; at most --episodes)")
    group.add_argument("--video-size", type=frame_size, metavar="WxH",
                       help=f"frame size (default {DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]})")
    group.add_argument("--video-fps", type=kinds.number(1, 120), metavar="FPS",
                       help="frames per second (default: real time, up to 30)")
    group.add_argument("--video-camera", choices=CAMERAS,
                       help="track: follow the torso (default); fixed: stay at the start")
    group.add_argument("--video-distance", type=kinds.number(0.1, 100), metavar="M",
                       help="camera distance in meters (default: the task's)")
    group.add_argument("--no-gif", action="store_true", help="no GIF beside the MP4s")


VIDEO_FLAGS = ("video_episodes", "video_size", "video_fps", "video_camera", "video_distance")


def options_from_args(args: argparse.Namespace, episodes: int) -> VideoOptions | None:
    """The VideoOptions of `add_video_arguments`' flags (None without --video), checked."""
    if args.video is None:
        given = [f"--{name.replace('_', '-')}" for name in VIDEO_FLAGS
                 if getattr(args, name) is not None] + (["--no-gif"] if args.no_gif else [])
        if given:
            raise UserError(f"{given[0]} needs --video DIR")
        return None
    count = args.video_episodes or 1
    if count > episodes:
        raise UserError(f"--video-episodes {count}: only {episodes} episode(s) are run "
                        "(--episodes)")
    width, height = args.video_size or DEFAULT_SIZE
    options = VideoOptions(args.video, episodes=count, width=width, height=height,
                           fps=args.video_fps, camera=args.video_camera or "track",
                           distance=args.video_distance, gif=not args.no_gif)
    return video_options(options)
