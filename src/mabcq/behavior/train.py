"""Train the SAC behavior policy of a task: lockstep envs, replay, evaluation, snapshots, resume.

Output directory (docs/datasets.md, "Behavior directory"):
  behavior.json            config, evaluations, snapshots, chosen intermediate/expert levels,
                           library versions
  checkpoint.npz           latest full state (SAC pytree, replay, envs, RNGs): resume point
  snapshots/step_N.msgpack actor parameters at every evaluation
The replay in checkpoint.npz is SAC's experience in order; recipes take its early part from it
(a shipped set, mabcq.behavior.ship, re-creates that part from early snapshots instead).
"""

from __future__ import annotations

import functools
import json
import time
import zipfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from mabcq import __version__
from mabcq.behavior.sac import SAC, Batch, SACConfig
from mabcq.envs.rollout import physics_state, restore_physics_state, run_episodes
from mabcq.envs.tasks import Task, make_env
from mabcq.errors import UserError
from mabcq.util.atomic import save_npz, write_json
from mabcq.util.provenance import library_versions

REPLAY_FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals",
                 "timeouts", "env_index")


@dataclass(frozen=True)
class BehaviorConfig:
    """How long and how SAC trains; `total_steps` counts env transitions over all envs.

    The defaults are the paper preset: Spinning Up's default run (100 epochs of 4000 steps,
    10^4 random steps first, one update per transition); the paper states no step count.
    """

    total_steps: int = 400_000
    num_envs: int = 4
    start_steps: int = 10_000  # uniform random actions first (Spinning Up)
    update_every: int = 12  # lockstep env steps between update calls (48 ~ Spinning Up's 50)
    updates_per_transition: float = 1.0
    eval_every: int = 10_000
    eval_episodes: int = 5
    eval_max_steps: int = 1000
    checkpoint_every: int = 50_000
    intermediate_fraction: float = 0.5  # of the way from the first eval return to the expert's
    sac: SACConfig = field(default_factory=SACConfig)


BEHAVIOR_PRESETS: dict[str, BehaviorConfig] = {
    "smoke": BehaviorConfig(total_steps=640, num_envs=4, start_steps=256, update_every=8,
                            updates_per_transition=0.25, eval_every=128, eval_episodes=2,
                            eval_max_steps=100, checkpoint_every=320,
                            sac=SACConfig(hidden_sizes=(32, 32), batch_size=64)),
    "quick": BehaviorConfig(total_steps=60_000, num_envs=4, start_steps=5_000, eval_every=5_000,
                            eval_episodes=3, checkpoint_every=20_000),
    "paper": BehaviorConfig(),
}


def _replay_arrays(task: Task, capacity: int) -> dict[str, np.ndarray]:
    return {
        "observations": np.zeros((capacity, task.state_dim), np.float32),
        "actions": np.zeros((capacity, task.joint_action_dim), np.float32),
        "rewards": np.zeros(capacity, np.float32),
        "next_observations": np.zeros((capacity, task.state_dim), np.float32),
        "terminals": np.zeros(capacity, bool),
        "timeouts": np.zeros(capacity, bool),
        "env_index": np.zeros(capacity, np.int16),
    }


@functools.lru_cache(maxsize=8)
def _jitted(sac: SAC):
    """update_many, sample, init jitted once per SAC shape/config (reused across runs)."""
    import jax

    return jax.jit(sac.update_many), jax.jit(sac.sample), jax.jit(sac.init)


class _Trainer:
    """The mutable loop around the pure SAC update; everything needed to resume is saved."""

    def __init__(self, task: Task, config: BehaviorConfig, out: Path, seed: int):

        self.task, self.config, self.out, self.seed = task, config, out, seed
        self.sac = SAC(task.state_dim, task.joint_action_dim, config.sac)
        self.n_updates = max(1, round(config.num_envs * config.update_every
                                      * config.updates_per_transition))
        self.update_fn, self.sample_fn, self.init_fn = _jitted(self.sac)
        self.envs = [make_env(task).unwrapped for _ in range(config.num_envs)]
        self.replay = _replay_arrays(task, config.total_steps + config.num_envs)
        self.size = 0
        self.lockstep = 0
        self.evals: list[dict[str, Any]] = []
        self.train_returns: list[float] = []
        self.wall_seconds = 0.0

    # ------------------------------------------------------------ state
    def fresh(self) -> None:
        import jax

        self.key = jax.random.PRNGKey(self.seed)
        self.key, init_key = jax.random.split(self.key)
        self.state = self.init_fn(init_key)
        self.rng = np.random.default_rng([self.seed, 7])
        self.obs = np.stack([env.reset(seed=self.seed * 1000 + i)[0]
                             for i, env in enumerate(self.envs)]).astype(np.float32)
        self.ep_len = np.zeros(len(self.envs), np.int64)
        self.ep_return = np.zeros(len(self.envs), np.float64)

    def save(self) -> None:
        from flax import serialization

        state_bytes = serialization.to_bytes(self.state)
        progress = {
            "size": self.size, "lockstep": self.lockstep, "evals": self.evals,
            "train_returns": self.train_returns, "wall_seconds": self.wall_seconds,
            "rng": self.rng.bit_generator.state,
            "env_rngs": [env.np_random.bit_generator.state for env in self.envs],
            "config": asdict(self.config), "seed": self.seed, "task": self.task.name,
        }
        arrays = {name: self.replay[name][: self.size] for name in REPLAY_FIELDS}
        arrays.update(
            sac_state=np.frombuffer(state_bytes, np.uint8), key=np.asarray(self.key),
            env_physics=np.stack([physics_state(env) for env in self.envs]),
            obs=self.obs, ep_len=self.ep_len, ep_return=self.ep_return,
            progress_json=np.frombuffer(json.dumps(progress).encode(), np.uint8))
        save_npz(self.out / "checkpoint.npz", arrays)

    def restore(self, path: Path) -> None:
        import jax.numpy as jnp
        from flax import serialization

        self.fresh()  # structure for from_bytes, env RNG objects
        try:
            with np.load(path) as data:
                progress = json.loads(data["progress_json"].tobytes())
                self._check_compatible(path, progress)
                self.state = serialization.from_bytes(self.state, data["sac_state"].tobytes())
                self.key = jnp.asarray(data["key"])
                for i, env in enumerate(self.envs):
                    restore_physics_state(env, data["env_physics"][i])
                self.obs, self.ep_len = data["obs"], data["ep_len"]
                self.ep_return = data["ep_return"]
                size = int(progress["size"])
                for name in REPLAY_FIELDS:
                    self.replay[name][:size] = data[name]
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as error:
            raise UserError(
                f"{path}: unreadable checkpoint ({error}); delete it to restart") from None
        self.size, self.lockstep = size, int(progress["lockstep"])
        self.evals, self.train_returns = progress["evals"], progress["train_returns"]
        self.wall_seconds = float(progress["wall_seconds"])
        self.rng.bit_generator.state = progress["rng"]
        for env, state in zip(self.envs, progress["env_rngs"], strict=True):
            env.np_random.bit_generator.state = state

    def _check_compatible(self, path: Path, progress: dict[str, Any]) -> None:
        """Only --total-steps may change between a checkpoint and its resumption."""
        if progress["task"] != self.task.name or progress["seed"] != self.seed:
            raise UserError(f"{path}: checkpoint is for task {progress['task']} seed "
                            f"{progress['seed']}; use another --out")
        saved = {k: v for k, v in progress["config"].items() if k != "total_steps"}
        wanted = {k: v for k, v in json.loads(json.dumps(asdict(self.config))).items()
                  if k != "total_steps"}
        if saved != wanted:
            changed = sorted(k for k in wanted if saved.get(k) != wanted[k])
            raise UserError(f"{path}: checkpoint was trained with other settings "
                            f"({', '.join(changed)}); use another --out (only --total-steps "
                            "may change on resume)")
        if int(progress["size"]) > len(self.replay["rewards"]):
            raise UserError(f"{path}: holds {progress['size']} transitions, more than "
                            "--total-steps allows; raise it or use another --out")

    # ------------------------------------------------------------ loop pieces
    def act(self) -> np.ndarray:
        import jax

        if self.size < self.config.start_steps:
            return self.rng.uniform(-1, 1, (len(self.envs), self.task.joint_action_dim))
        self.key, sample_key = jax.random.split(self.key)
        actions, _ = self.sample_fn(self.state.actor_params, self.obs, sample_key)
        return np.asarray(actions)

    def step_envs(self, actions: np.ndarray) -> None:
        actions = actions.astype(np.float32)
        for i, env in enumerate(self.envs):
            next_obs, reward, terminated, _, _ = env.step(actions[i])
            self.ep_len[i] += 1
            self.ep_return[i] += reward
            timeout = not terminated and self.ep_len[i] >= self.task.horizon
            row = self.size
            for name, value in (("observations", self.obs[i]), ("actions", actions[i]),
                                ("rewards", reward), ("next_observations", next_obs),
                                ("terminals", terminated), ("timeouts", timeout),
                                ("env_index", i)):
                self.replay[name][row] = value
            self.size += 1
            if terminated or timeout:
                self.train_returns.append(float(self.ep_return[i]))
                next_obs, _ = env.reset()
                self.ep_len[i], self.ep_return[i] = 0, 0.0
            self.obs[i] = next_obs
        self.lockstep += 1

    def update(self) -> dict[str, float]:
        import jax

        batch = self.config.sac.batch_size
        index = self.rng.integers(0, self.size, (self.n_updates, batch))
        batches = Batch(
            self.replay["observations"][index], self.replay["actions"][index],
            self.replay["rewards"][index], self.replay["next_observations"][index],
            self.replay["terminals"][index].astype(np.float32))
        self.key, update_key = jax.random.split(self.key)
        self.state, metrics = self.update_fn(self.state, batches, update_key)
        return {name: float(value) for name, value in metrics.items()}

    def evaluate(self) -> dict[str, Any]:
        from mabcq.behavior.policies import joint_mean_policy, save_actor, split_joint_policy

        config = self.config
        policy = split_joint_policy(self.task,
                                    joint_mean_policy(self.sac, self.state.actor_params))
        result = run_episodes(self.task, policy, episodes=config.eval_episodes,
                              seed=self.seed * 7919 + len(self.evals),
                              max_steps=config.eval_max_steps,
                              num_envs=min(config.eval_episodes, 8))
        snapshot = f"snapshots/step_{self.size:09d}.msgpack"
        save_actor(self.out / snapshot, self.state.actor_params)
        record = {"step": self.size, "return_mean": float(result.episode_returns.mean()),
                  "return_std": float(result.episode_returns.std()),
                  "length_mean": float(result.episode_lengths.mean()), "snapshot": snapshot}
        self.evals.append(record)
        return record


def train_behavior(task: Task, config: BehaviorConfig, out: Path, seed: int = 0,
                   progress: bool = True, stop_at_step: int | None = None) -> dict[str, Any]:
    """Train (or resume) SAC into `out`; returns the behavior.json record.

    stop_at_step: stop (as if killed) after the first checkpoint at or past this step; used to
    test resuming.
    """
    from tqdm.auto import tqdm

    out.mkdir(parents=True, exist_ok=True)
    trainer = _Trainer(task, config, out, seed)
    checkpoint = out / "checkpoint.npz"
    if checkpoint.exists():
        trainer.restore(checkpoint)
    else:
        trainer.fresh()
    bar = tqdm(total=config.total_steps, initial=trainer.size, desc=f"SAC {task.name}",
               unit="step", disable=not progress, smoothing=0.05)
    started = time.perf_counter()
    last: dict[str, float] = {}
    while trainer.size < config.total_steps:
        before = trainer.size
        trainer.step_envs(trainer.act())
        if trainer.size >= config.start_steps and trainer.lockstep % config.update_every == 0:
            last = trainer.update()
        if trainer.size // config.eval_every > before // config.eval_every:
            record = trainer.evaluate()
            bar.set_postfix(eval_return=f"{record['return_mean']:.0f}",
                            alpha=f"{last.get('alpha', 1.0):.3f}")
        bar.update(trainer.size - before)
        if trainer.size // config.checkpoint_every > before // config.checkpoint_every:
            trainer.wall_seconds += time.perf_counter() - started
            started = time.perf_counter()
            trainer.save()
            if stop_at_step is not None and trainer.size >= stop_at_step:
                bar.close()
                raise KeyboardInterrupt(f"stopped at step {trainer.size} (test hook)")
    bar.close()
    if not trainer.evals or trainer.evals[-1]["step"] != trainer.size:
        trainer.evaluate()
    trainer.wall_seconds += time.perf_counter() - started
    trainer.save()
    record = {
        "task": task.name, "seed": seed, "config": asdict(config),
        "package_version": __version__, "env_steps": trainer.size,
        "updates": int(trainer.state.steps), "wall_seconds": trainer.wall_seconds,
        "env_steps_per_second": trainer.size / max(trainer.wall_seconds, 1e-9),
        "evaluations": trainer.evals, "train_episode_returns": trainer.train_returns,
        "levels": choose_levels(trainer.evals, config.intermediate_fraction),
        "versions": library_versions(),
    }
    write_json(out / "behavior.json", record)
    return record


def choose_levels(evals: list[dict[str, Any]], intermediate_fraction: float,
                  intermediate_step: int | None = None, expert_step: int | None = None
                  ) -> dict[str, Any]:
    """Pick the expert and intermediate snapshots from the evaluations.

    Expert: the best mean eval return (or the snapshot at `expert_step`). Intermediate: the
    snapshot before the expert whose return is closest to first + fraction * (expert - first)
    (or the one at `intermediate_step`). The rule is recorded with the choice.
    """
    if not evals:
        raise UserError("no evaluations recorded: train longer than one eval period")
    by_step = {e["step"]: e for e in evals}

    def at(step: int, what: str) -> dict[str, Any]:
        if step not in by_step:
            raise UserError(f"no snapshot at step {step} for the {what} policy; "
                            f"snapshots: {sorted(by_step)}")
        return by_step[step]

    expert = (at(expert_step, "expert") if expert_step is not None
              else max(evals, key=lambda e: (e["return_mean"], e["step"])))
    first = evals[0]["return_mean"]
    target = first + intermediate_fraction * (expert["return_mean"] - first)
    if intermediate_step is not None:
        intermediate = at(intermediate_step, "intermediate")
        rule = f"step {intermediate_step}"
    else:
        earlier = [e for e in evals if e["step"] <= expert["step"]]
        intermediate = min(earlier, key=lambda e: (abs(e["return_mean"] - target), e["step"]))
        rule = (f"eval return closest to first + {intermediate_fraction} * (expert - first) "
                f"= {target:.1f}")
    return {
        "expert": {**expert, "rule": "best eval return" if expert_step is None
                   else f"step {expert_step}"},
        "intermediate": {**intermediate, "rule": rule},
    }


def load_behavior(directory: Path) -> dict[str, Any]:
    path = Path(directory) / "behavior.json"
    if not path.exists():
        raise UserError(f"{directory}: no behavior.json; train with `mabcq behavior train`")
    return json.loads(path.read_text())


def preset_config(name: str, **overrides: Any) -> BehaviorConfig:
    if name not in BEHAVIOR_PRESETS:
        raise UserError(f"unknown preset {name!r}; choose from {', '.join(BEHAVIOR_PRESETS)}")
    config = BEHAVIOR_PRESETS[name]
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return replace(config, **overrides) if overrides else config
