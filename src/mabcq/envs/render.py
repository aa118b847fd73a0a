"""Offscreen pictures of a task's robot: each agent's body parts in its own color (the paper's
Figure 1), a camera that follows the torso, and a text overlay (step, return so far, agents).

Rendering needs an offscreen OpenGL: Mesa's EGL (Debian/Ubuntu: libegl1 libegl-mesa0
libgl1-mesa-dri libopengl0), or OSMesa (libosmesa6) with MUJOCO_GL=osmesa. No display is
needed. The GL context is made here (mujoco.egl / mujoco.osmesa), not through mujoco.Renderer,
so it does not matter whether MUJOCO_GL was set before MuJoCo was first imported.

Pictures are replayed from a rollout's physics states (RolloutResult.physics_states), so a video
shows exactly the evaluated episode, and the same seed gives the same frames.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mabcq.errors import UserError

if TYPE_CHECKING:  # mabcq.envs.tasks imports MuJoCo: `mabcq --help` stays light
    from mabcq.envs.tasks import Task

# One color per agent (RGB in [0, 1]), saturated so they stand out from the floor and the sky;
# parts no agent drives (the torso) are NEUTRAL.
AGENT_COLORS: tuple[tuple[float, float, float], ...] = (
    (0.90, 0.15, 0.15),  # red
    (0.10, 0.35, 0.95),  # blue
    (0.10, 0.75, 0.20),  # green
    (0.95, 0.65, 0.05),  # amber
    (0.70, 0.20, 0.85),  # violet
    (0.05, 0.75, 0.80),  # teal
)
NEUTRAL = (0.65, 0.65, 0.65)

SYSTEM_PACKAGES = "libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0"
INSTALL_HINT = (f"install Mesa's EGL (Debian/Ubuntu: apt-get install {SYSTEM_PACKAGES}) or "
                "OSMesa (apt-get install libosmesa6, then set MUJOCO_GL=osmesa)")


def agent_color(agent: int) -> tuple[float, float, float]:
    return AGENT_COLORS[agent % len(AGENT_COLORS)]


# ---------------------------------------------------------------- the camera


@dataclass(frozen=True)
class View:
    """A camera looking at (torso x, torso y, height) from `distance` at the given angles
    (degrees; azimuth 90 looks along +y, a side view of a robot running along +x)."""

    distance: float
    elevation: float
    azimuth: float = 90.0
    height: float = 0.5


TASK_VIEWS: dict[str, View] = {
    "halfcheetah-2x3": View(distance=4.5, elevation=-15.0, height=0.4),
    "walker2d-2x3": View(distance=4.0, elevation=-15.0, azimuth=100.0, height=0.9),
    "hopper-3x1": View(distance=3.0, elevation=-15.0, height=0.8),
    "ant-4x2": View(distance=6.0, elevation=-35.0, azimuth=120.0, height=0.4),
    "swimmer-2x1": View(distance=3.5, elevation=-70.0, height=0.0),
}
CAMERAS = ("track", "fixed")  # follow the torso, or stay where it started


def task_view(task: Task, distance: float | None = None) -> View:
    view = TASK_VIEWS.get(task.name, View(distance=4.0, elevation=-20.0))
    if distance is not None:
        view = View(distance, view.elevation, view.azimuth, view.height)
    return view


# ---------------------------------------------------------------- agents' body parts


def body_owners(task: Task, model: Any) -> list[int | None]:
    """The agent that drives each body of `model` (None: no agent, e.g. the torso).

    A body with an actuated joint belongs to the agent whose action slice holds the actuator.
    A body without joints (welded to its parent) follows its parent; a welded body whose
    parent no agent drives (Ant's hip stubs on the torso) goes to the one agent that drives
    its subtree, if there is one. A body with only unactuated joints (the root) has none.
    """
    owner_of_joint: dict[int, int] = {}
    for agent, (start, stop) in enumerate(task.action_slices):
        for actuator in range(start, stop):
            owner_of_joint[int(model.actuator_trnid[actuator][0])] = agent
    direct: list[int | None] = [None] * model.nbody
    for joint, agent in owner_of_joint.items():
        direct[int(model.jnt_bodyid[joint])] = agent
    owners: list[int | None] = [None] * model.nbody
    for body in range(1, model.nbody):  # bodies are stored parents first
        if direct[body] is not None:
            owners[body] = direct[body]
        elif model.body_jntnum[body] == 0:
            owners[body] = owners[int(model.body_parentid[body])]
    for body in range(model.nbody - 1, 0, -1):  # welded stubs on an undriven parent
        if owners[body] is None and model.body_jntnum[body] == 0:
            below = {owners[child] for child in _subtree(model, body)} - {None}
            if len(below) == 1:
                owners[body] = below.pop()
    return owners


def _subtree(model: Any, root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for body in range(1, model.nbody):
        children.setdefault(int(model.body_parentid[body]), []).append(body)
    out, stack = [], [root]
    while stack:
        body = stack.pop()
        out.append(body)
        stack.extend(children.get(body, []))
    return out


def tint_model(task: Task, model: Any) -> list[int | None]:
    """Color every geom of the robot by its body's agent (NEUTRAL where none drives it), in
    place; the floor (the world body's geoms) keeps its look. Returns body_owners."""
    owners = body_owners(task, model)
    for geom in range(model.ngeom):
        body = int(model.geom_bodyid[geom])
        if body == 0:
            continue
        owner = owners[body]
        color = NEUTRAL if owner is None else agent_color(owner)
        model.geom_rgba[geom] = (*color, 1.0)
        model.geom_matid[geom] = -1  # a material's texture would mix its own color in
    return owners


def agent_labels(task: Task, model: Any) -> list[str]:
    """'agent 0: bthigh, bshin, bfoot': each agent and the joints it drives (MaMuJoCo's
    partition, in actuator order)."""
    labels = []
    for agent, (start, stop) in enumerate(task.action_slices):
        joints = [model.joint(int(model.actuator_trnid[actuator][0])).name.removesuffix("_joint")
                  for actuator in range(start, stop)]
        labels.append(f"agent {agent}: {', '.join(joints)}")
    return labels


# ---------------------------------------------------------------- offscreen OpenGL


_BACKEND: dict[str, Any] = {}


def _context_class(backend: str) -> Any:
    if backend == "egl":
        from mujoco.egl import GLContext
    else:
        from mujoco.osmesa import GLContext
    return GLContext


def gl_backend() -> str:
    """'egl' or 'osmesa': the first offscreen OpenGL that makes a context here (MUJOCO_GL=egl
    or osmesa picks one). UserError, one line naming what to install, when none works.
    The answer is remembered for the process."""
    if "name" in _BACKEND:
        return _BACKEND["name"]
    wanted = os.environ.get("MUJOCO_GL", "").strip().lower()
    candidates = [wanted] if wanted in ("egl", "osmesa") else ["egl", "osmesa"]
    platform_before = os.environ.get("PYOPENGL_PLATFORM")
    reasons = []
    for backend in candidates:
        if backend != candidates[0] and "OpenGL.platform" in sys.modules:
            break  # PyOpenGL has bound its platform: another one cannot load in this process
        try:
            context = _context_class(backend)(16, 16)
            context.make_current()
            context.free()
        except Exception as error:  # ImportError, OSError, RuntimeError, PyOpenGL's errors
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            reasons.append(f"{backend}: {first if len(first) <= 160 else first[:157] + '...'}")
            if platform_before is None:  # mujoco.egl / .osmesa set it for PyOpenGL
                os.environ.pop("PYOPENGL_PLATFORM", None)
            continue
        _BACKEND["name"] = backend
        return backend
    raise UserError(f"rendering needs an offscreen OpenGL, and none works here "
                    f"({'; '.join(reasons) or 'PyOpenGL is bound to another platform'}): "
                    f"{INSTALL_HINT}")


class Offscreen:
    """Render a MuJoCo model's scene into numpy RGB frames [height, width, 3] uint8."""

    def __init__(self, model: Any, width: int, height: int) -> None:
        import mujoco

        self.model, self.width, self.height = model, int(width), int(height)
        model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), self.width)
        model.vis.global_.offheight = max(int(model.vis.global_.offheight), self.height)
        self._gl = _context_class(gl_backend())(self.width, self.height)
        self._gl.make_current()
        self.scene = mujoco.MjvScene(model, maxgeom=1000)
        self.option = mujoco.MjvOption()
        self._context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_100)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
        self._rect = mujoco.MjrRect(0, 0, self.width, self.height)

    def render(self, data: Any, camera: Any) -> np.ndarray:
        import mujoco

        self._gl.make_current()
        mujoco.mjv_updateScene(self.model, data, self.option, None, camera,
                               mujoco.mjtCatBit.mjCAT_ALL, self.scene)
        mujoco.mjr_render(self._rect, self.scene, self._context)
        pixels = np.empty((self.height, self.width, 3), dtype=np.uint8)
        mujoco.mjr_readPixels(pixels, None, self._rect, self._context)
        return np.ascontiguousarray(pixels[::-1])  # OpenGL's rows start at the bottom

    def close(self) -> None:
        if self._gl is not None:
            self._gl.make_current()  # MuJoCo frees its GL objects in the current context
            self._context.free()
            self._gl.free()
            self._gl = None

    def __enter__(self) -> Offscreen:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def make_camera(view: View, target: np.ndarray) -> Any:
    """A free camera looking at (target x, target y, view.height)."""
    import mujoco

    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_FREE
    camera.distance, camera.elevation, camera.azimuth = (view.distance, view.elevation,
                                                         view.azimuth)
    camera.lookat[:] = (float(target[0]), float(target[1]), view.height)
    return camera


# ---------------------------------------------------------------- the overlay


def _font(size: int) -> Any:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)  # Pillow's own font: the same on every machine


def overlay(frame: np.ndarray, header: str, labels: Sequence[str],
            colors: Sequence[tuple[float, float, float]]) -> np.ndarray:
    """`frame` with `header` (top left) and one line per agent, each behind a swatch of its
    color, on a translucent dark box."""
    from PIL import Image, ImageDraw

    height, frame_width = frame.shape[:2]
    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image, "RGBA")
    lines = [header, *labels]
    size = max(6, round(height / 24))
    while True:  # the largest font (up to 1/24 of the height) whose lines fit the width
        font = _font(size)
        pad, line = max(2, size // 3), size + max(2, size // 4)
        width = max(draw.textlength(text, font=font) for text in lines) + 3 * pad + size
        if width <= frame_width or size <= 6:
            break
        size -= 1
    draw.rectangle((0, 0, width, pad * 2 + line * len(lines)), fill=(0, 0, 0, 140))
    draw.text((pad, pad), header, font=font, fill=(255, 255, 255))
    for row, (label, color) in enumerate(zip(labels, colors, strict=True), start=1):
        top = pad + row * line
        swatch = tuple(int(round(255 * c)) for c in color)
        draw.rectangle((pad, top + 1, pad + size - 2, top + size - 1), fill=swatch)
        draw.text((2 * pad + size, top), label, font=font, fill=(255, 255, 255))
    return np.asarray(image)


# ---------------------------------------------------------------- episodes


@dataclass(frozen=True)
class Picture:
    """One rendered moment of an episode: the raw scene and what its overlay says."""

    scene: np.ndarray  # [height, width, 3] uint8, no text
    step: int  # env steps taken
    episode_return: float  # return of those steps


class EpisodeRenderer:
    """Renders episodes of one task from physics states; one GL context for all of them."""

    def __init__(self, task: Task, width: int, height: int, camera: str = "track",
                 distance: float | None = None) -> None:
        from mabcq.envs.tasks import make_env

        if camera not in CAMERAS:
            raise UserError(f"camera {camera!r}: choose one of {', '.join(CAMERAS)}")
        self.task = task
        self.env = make_env(task).unwrapped  # its own model: the tint stays here
        self.owners = tint_model(task, self.env.model)
        self.labels = agent_labels(task, self.env.model)
        self.colors = [agent_color(agent) for agent in range(task.n_agents)]
        self.view = task_view(task, distance)
        self.camera = camera
        torso = [self.env.model.body(i).name for i in range(self.env.model.nbody)]
        self._torso = torso.index("torso") if "torso" in torso else 1
        try:
            self.offscreen = Offscreen(self.env.model, width, height)
        except BaseException:
            self.env.close()
            raise

    def close(self) -> None:
        self.offscreen.close()
        self.env.close()

    def __enter__(self) -> EpisodeRenderer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _picture(self, start: np.ndarray) -> np.ndarray:
        import mujoco

        mujoco.mj_forward(self.env.model, self.env.data)
        torso = self.env.data.xpos[self._torso]
        target = torso if self.camera == "track" else start
        return self.offscreen.render(self.env.data, make_camera(self.view, target))

    def episode(self, physics_states: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                stride: int = 1) -> Iterator[Picture]:
        """Pictures of one episode after 0, stride, 2 stride, ... steps and after its last step.

        physics_states [L, nq + 2 nv]: the state before each step (RolloutResult's);
        actions [L, joint]: the executed actions, to take the last step once more and show
        where the episode ended; rewards [L].
        """
        from mabcq.envs.rollout import restore_physics_state

        length = len(physics_states)
        if length == 0:
            return
        returns = np.concatenate([[0.0], np.cumsum(np.asarray(rewards, np.float64))])
        restore_physics_state(self.env, physics_states[0])
        import mujoco

        mujoco.mj_forward(self.env.model, self.env.data)
        start = self.env.data.xpos[self._torso].copy()
        steps = list(range(0, length, stride))
        for step in steps:
            restore_physics_state(self.env, physics_states[step])
            yield Picture(self._picture(start), step, float(returns[step]))
        restore_physics_state(self.env, physics_states[-1])
        self.env.step(np.asarray(actions[-1], dtype=np.float32))
        yield Picture(self._picture(start), length, float(returns[length]))

    def header(self, picture: Picture, length: int, title: str = "") -> str:
        parts = [title or self.task.name, f"step {picture.step}/{length}",
                 f"return {picture.episode_return:.1f}"]
        return "   ".join(parts)


def real_time_stride(task_dt: float, fps: float | None, max_fps: float = 30.0
                     ) -> tuple[int, float]:
    """(stride, fps): every stride-th step at fps frames per second plays at about real time.

    fps None: the fastest real-time rate up to max_fps (HalfCheetah's 20 steps per second:
    every step at 20 fps; Hopper's 125: every 5th step at 25 fps). A given fps keeps it and
    picks the stride closest to real time."""
    steps_per_second = 1.0 / task_dt
    if fps is None:
        stride = max(1, int(np.ceil(steps_per_second / max_fps - 1e-9)))
        return stride, steps_per_second / stride
    return max(1, int(round(steps_per_second / fps))), float(fps)
