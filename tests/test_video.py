"""Videos of the agents acting together (`mabcq evaluate --video`, `mabcq.evaluate(video=...)`):
a few small frames of a smoke policy, checked in the decoded file; the agents' colors; the
one-line refusal when rendering cannot work; the flags.

Rendering needs an offscreen OpenGL (.ci/run installs Mesa's EGL) and the `video` extra; without
them the rendering tests are skipped with the reason, unless MABCQ_REQUIRE_VIDEO=1 (set by
.ci/run) makes the missing piece a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from test_train_support import use_test_compilation_cache

import mabcq
from mabcq.cli import main
from mabcq.envs import render
from mabcq.errors import UserError

TASK = "halfcheetah-2x3"  # two agents, both legs seen from the side
SIZE = (128, 96)
STEPS = 8

use_test_compilation_cache()


def _rendering_or_skip() -> None:
    from mabcq.video import require_video

    try:
        require_video()
    except UserError as error:
        if os.environ.get("MABCQ_REQUIRE_VIDEO") == "1":
            pytest.fail(str(error))
        pytest.skip(str(error))


def smoke_policies(task_name: str = TASK) -> list:
    """Untrained BCQ policies with tiny networks, one per agent: they act at once."""
    import jax

    from mabcq.envs.tasks import get_task
    from mabcq.learners.export import Policy
    from mabcq.learners.registry import learner_config, make_learner

    task = get_task(task_name)
    config = learner_config("bcq", task_name, hidden_sizes=(16, 16))
    learner = make_learner("bcq", config)
    return [Policy.from_agent_state(
        "bcq", config, learner.init(jax.random.PRNGKey(agent), task.state_dim,
                                    task.agent_action_dim(agent)),
        {"task": task_name, "agent": agent}) for agent in range(task.n_agents)]


@pytest.fixture(scope="module")
def policies() -> list:
    _rendering_or_skip()
    return smoke_policies()


@pytest.fixture(scope="module")
def filmed(policies: list, tmp_path_factory: pytest.TempPathFactory) -> mabcq.Evaluation:
    out = tmp_path_factory.mktemp("video")
    options = mabcq.VideoOptions(out, width=SIZE[0], height=SIZE[1], gif_width=64)
    return mabcq.evaluate(TASK, policies, episodes=2, max_steps=STEPS, seed=3, video=options)


def agent_pixels(frame: np.ndarray, color: tuple[float, float, float]) -> int:
    """Pixels whose color leans the way `color` does, strongly (lit or shaded alike)."""
    pixels = frame.reshape(-1, 3).astype(np.float64)
    chroma = pixels - pixels.mean(axis=1, keepdims=True)
    target = np.asarray(color) - np.mean(color)
    strength = np.linalg.norm(chroma, axis=1)
    cosine = chroma @ target / (np.maximum(strength, 1e-9) * np.linalg.norm(target))
    return int(np.sum((strength > 40) & (cosine > 0.9)))


def test_video_frames_size_motion_and_each_agents_color(filmed: mabcq.Evaluation) -> None:
    from mabcq.video import read_mp4

    mp4, gif = filmed.videos
    assert (mp4.name, gif.name) == ("episode_0.mp4", "episode_0.gif")
    assert not [p for p in mp4.parent.iterdir() if p.name.startswith(".")]  # no temp files
    meta, frames = read_mp4(mp4)
    length = int(filmed.episode_lengths[0])
    # HalfCheetah steps 20 times a second: every step is a frame at 20 fps, plus the last state
    assert frames.shape == (length + 1, SIZE[1], SIZE[0], 3)
    assert meta["fps"] == 20.0 and meta["codec"] == "h264"
    scene = frames[:, SIZE[1] // 3:]  # below the overlay's box
    assert np.abs(scene[-1].astype(int) - scene[0].astype(int)).mean() > 1.0
    assert np.abs(np.diff(scene.astype(int), axis=0)).mean(axis=(1, 2, 3)).min() > 0.0
    for agent in range(2):
        assert agent_pixels(scene[0], render.agent_color(agent)) > 20, f"agent {agent}'s tint"
    from PIL import Image

    with Image.open(gif) as image:
        assert image.size == (64, 48) and image.n_frames >= 2


def test_video_is_deterministic_and_leaves_returns_alone(
        policies: list, filmed: mabcq.Evaluation, tmp_path: Path) -> None:
    options = mabcq.VideoOptions(tmp_path, width=SIZE[0], height=SIZE[1], gif_width=64)
    again = mabcq.evaluate(TASK, policies, episodes=2, max_steps=STEPS, seed=3, video=options)
    assert [p.read_bytes() for p in again.videos] == [p.read_bytes() for p in filmed.videos]
    plain = mabcq.evaluate(TASK, policies, episodes=2, max_steps=STEPS, seed=3)
    np.testing.assert_array_equal(plain.episode_returns, filmed.episode_returns)
    assert plain.videos == ()


def test_cli_evaluate_writes_the_video(policies: list, tmp_path: Path,
                                       capsys: pytest.CaptureFixture) -> None:
    from mabcq.video import read_mp4

    files = []
    for agent, policy in enumerate(policies):
        files.append(tmp_path / f"agent_{agent}.msgpack")
        policy.save(files[-1])
    out = tmp_path / "clips"
    code = main(["evaluate", TASK, "--policies", *map(str, files), "--episodes", "1",
                 "--max-steps", "3", "--video", str(out), "--video-size", "64x48",
                 "--video-fps", "10", "--video-camera", "fixed", "--no-gif"])
    assert code == 0
    assert f"video: {out / 'episode_0.mp4'}" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["episode_0.mp4"]
    meta, frames = read_mp4(out / "episode_0.mp4")
    assert frames.shape[1:] == (48, 64, 3) and meta["fps"] == 10.0
    # 10 fps of 20 steps a second: every 2nd step (0, 2) and the last state (3)
    assert len(frames) == 3


def test_without_opengl_one_line_names_what_to_install_before_any_work(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    def no_gl(backend: str):
        raise ImportError(f"lib{backend.upper()}.so: cannot open shared object file")

    monkeypatch.setattr(render, "_BACKEND", {})
    monkeypatch.setattr(render, "_context_class", no_gl)
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    out = tmp_path / "clips"
    missing = [str(tmp_path / f"agent_{agent}.msgpack") for agent in range(2)]
    policy = tmp_path / "p.msgpack"
    policy.write_bytes(b"not a policy")  # never read: the check comes first
    code = main(["evaluate", TASK, "--policies", str(policy), str(policy), "--video", str(out)])
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1, error
    assert error.startswith("mabcq: error: rendering needs an offscreen OpenGL")
    assert "apt-get install libegl1" in error and "MUJOCO_GL=osmesa" in error
    assert not out.exists()
    with pytest.raises(UserError, match="offscreen OpenGL"):  # the API checks first too
        mabcq.evaluate(TASK, missing, episodes=1, video=out)


def test_without_the_mp4_writer_one_line_names_the_extra(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "imageio_ffmpeg" else real(name,
                                                                                      *rest))
    with pytest.raises(UserError, match=r"imageio-ffmpeg.*pip install 'mabcq\[video\]'"):
        mabcq.evaluate(TASK, ["a", "b"], episodes=1, video=tmp_path / "clips")


@pytest.mark.parametrize(("flags", "message"), [
    (["--video-size", "65x48"], "--video-size: must be even numbers"),
    (["--video-size", "big"], "--video-size: must be WIDTHxHEIGHT"),
    (["--video-fps", "0"], "--video-fps"),
    (["--video-camera", "side"], "--video-camera: invalid choice"),
    (["--video-episodes", "3"], "--video-episodes 3: only 2 episode"),
])
def test_bad_video_flags_are_one_line(flags: list[str], message: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture) -> None:
    policy = tmp_path / "p.msgpack"
    policy.write_bytes(b"")
    args = ["evaluate", TASK, "--policies", str(policy), str(policy), "--episodes", "2",
            "--video", str(tmp_path / "clips"), *flags]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1, error


def test_video_flags_need_video(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    policy = tmp_path / "p.msgpack"
    policy.write_bytes(b"")
    assert main(["evaluate", TASK, "--policies", str(policy), str(policy),
                 "--video-fps", "10"]) == 2
    assert "--video-fps needs --video DIR" in capsys.readouterr().err


def test_each_agent_owns_its_limbs() -> None:
    from mabcq.envs.tasks import get_task, make_env

    for name, expected in {
        "hopper-3x1": {"torso": None, "thigh": 0, "leg": 1, "foot": 2},
        # Ant's hip stubs are welded to the torso: they go with the leg they carry
        "ant-4x2": {"torso": None, "front_left_leg": 0, "aux_1": 0, "aux_2": 1,
                    "right_back_leg": 3},
        "halfcheetah-2x3": {"bthigh": 0, "bfoot": 0, "fthigh": 1, "ffoot": 1},
    }.items():
        task = get_task(name)
        model = make_env(task).unwrapped.model
        owners = render.body_owners(task, model)
        assert {body: owners[model.body(body).id] for body in expected} == expected
        labels = render.agent_labels(task, model)
        assert len(labels) == task.n_agents and labels[0].startswith("agent 0: ")


def test_real_time_frame_rate() -> None:
    assert render.real_time_stride(0.008, None) == (5, 25.0)  # Hopper: 125 steps a second
    assert render.real_time_stride(0.05, None) == (1, 20.0)  # HalfCheetah, Ant
    assert render.real_time_stride(0.008, 10) == (12, 10.0)
    assert render.real_time_stride(0.05, 60) == (1, 60.0)


def test_report_videos_film_each_method_and_the_expert(
        policies: list, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    from mabcq.report import videos
    from mabcq.video import read_mp4

    monkeypatch.setattr(videos, "CLIP_SECONDS", 0.15)  # 3 HalfCheetah steps
    monkeypatch.setattr(videos, "CLIP_SIZE", (96, 72))
    results = tmp_path / "results"
    group = results / "runs" / TASK / "mabcq+bcq_seeds0-1" / "policies"
    for agent, policy in enumerate(policies):  # MABCQ's files only: BCQ's are missing
        policy.save(group / "mabcq" / "seed_1" / f"agent_{agent}.msgpack")
    rows = [f"{TASK},{method},{seed},100,1.0" for method in ("mabcq", "bcq") for seed in (0, 1)]
    (results / "returns.csv").write_text("task,method,seed,updates,return\n"
                                         + "\n".join(rows) + "\n")
    out = tmp_path / "report"
    stale = out / "videos" / TASK / "ddpg_0.gif"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"GIF89a")
    assert main(["report", str(results), "--out", str(out), "--videos"]) == 0
    assert f"videos in {out / 'videos'}" in capsys.readouterr().out
    text = (out / "report.md").read_text()
    assert text.index("## Table 6") < text.index("## Videos") < text.index("## Figure 2")
    clips = sorted(path.name for path in (out / "videos" / TASK).iterdir())
    assert clips == ["expert_0.gif", "expert_0.mp4", "mabcq_0.gif", "mabcq_0.mp4"]
    videos_section = text[text.index("## Videos"):text.index("## Figure 2")]
    row = next(line for line in videos_section.splitlines() if line.startswith("| HalfCheetah"))
    assert f"![MABCQ on HalfCheetah 2x3](videos/{TASK}/mabcq_0.gif)" in row
    assert f"[MP4](videos/{TASK}/expert_0.mp4)" in row and "| — |" in row  # no BCQ files
    assert f"_Not filmed: {TASK} bcq: no policy files" in text
    _, frames = read_mp4(out / "videos" / TASK / "expert_0.mp4")
    assert frames.shape == (4, 72, 96, 3)


def test_demo_ends_with_the_clip_or_why_there_is_none(
        policies: list, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    from mabcq import video
    from mabcq.cli.train import demo_clip

    class Trained:  # what demo_clip reads of a FitResult
        def policies(self, method: str, seed: int) -> list:
            assert (method, seed) == ("mabcq", 0)
            return policies

    monkeypatch.setattr(video, "DEMO_CLIP_STEPS", 3)
    demo_clip(TASK, Trained(), tmp_path / "video", 0, None)
    last = capsys.readouterr().out.strip().splitlines()[-1]
    mp4, gif = tmp_path / "video" / "mabcq_0.mp4", tmp_path / "video" / "mabcq_0.gif"
    assert last == (f"video of mabcq's agents (seed 0) acting together: {mp4} (GIF: {gif})")
    assert len(video.read_mp4(mp4)[1]) == 4
    demo_clip(TASK, Trained(), tmp_path / "none", 0, "rendering needs ...: install X")
    assert capsys.readouterr().out == "no video of the trained agents: rendering needs ...: " \
                                      "install X\n"
    assert not (tmp_path / "none").exists()
