"""What decides a training run's numbers: the presets, TrainConfig, and how a run's methods
and seeds become (method, seed) cells and one learner (a BCQ-family grid: one learner, flags as
data). No JAX and no simulator at import: the CLI, the API and `reproduce` build configs cheaply.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mabcq.errors import UserError

# Presets: what each scale trains for. Learner sizes stay at the paper's Table 8 unless a preset
# overrides them (the smoke preset uses tiny nets so the whole pipeline runs in seconds).
# pretrain_updates None: the learner config's vae_pretrain_steps (G1/G2 fitted first, Alg. 1).
PRESETS: dict[str, dict[str, Any]] = {
    "smoke": dict(updates=200, pretrain_updates=100, eval_every=100, eval_episodes=1,
                  eval_max_steps=50, diagnostic_states=256, updates_per_call=50,
                  learner_overrides={"hidden_sizes": (32, 32), "batch_size": 64},
                  fast_compile=True),
    "quick": dict(updates=5000, pretrain_updates=5000, eval_every=1000, eval_episodes=2,
                  eval_max_steps=1000, diagnostic_states=1000, updates_per_call=100,
                  learner_overrides={"batch_size": 256}),
    "paper": dict(updates=50_000, pretrain_updates=None, eval_every=5000, eval_episodes=10,
                  eval_max_steps=1000, diagnostic_states=10_000, updates_per_call=100,
                  learner_overrides={}),
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a run's numbers (saved as RUN_DIR/config.json)."""

    task: str
    method: str  # one method, or BCQ-family methods joined by "+" trained in one step
    seeds: tuple[int, ...]
    updates: int
    pretrain_updates: int
    eval_every: int
    eval_episodes: int
    eval_max_steps: int | None
    diagnostic_states: int
    updates_per_call: int
    checkpoint_every: int
    min_steps_left: int = 300
    agent: int | None = None  # decentralized mode: train this one agent from its own file
    learner_overrides: dict[str, Any] = field(default_factory=dict)
    # XLA's fast-compile options (learners.batched.FAST_COMPILE): ~3x faster compiles, slower
    # steps. For smoke runs and tests only; never for timing.
    fast_compile: bool = False

    def to_json(self) -> dict[str, Any]:
        payload = dataclasses.asdict(self)
        payload["seeds"] = list(self.seeds)
        payload["learner_overrides"] = {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in self.learner_overrides.items()
        }
        return payload


def make_config(task: str, method: str, seeds: Sequence[int], preset: str = "quick",
                **overrides: Any) -> TrainConfig:
    """A TrainConfig from a preset; `overrides` with value None keep the preset's value.

    Learner options (any LearnerConfig field: batch_size, optimism, hidden_sizes, gamma, ...)
    go into learner_overrides; any other name must be a TrainConfig field.
    """
    from mabcq.learners.registry import config_class, split_methods

    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    split_methods(method)  # unknown or mixed methods fail here, before any work
    values = {key: value for key, value in PRESETS[preset].items()}
    learner_overrides = dict(values.pop("learner_overrides"))
    # The fields of this method's learner's config (CQL's and TD3+BC's have their own).
    learner_fields = {item.name
                      for item in dataclasses.fields(config_class(split_methods(method)[0]))}
    train_fields = {item.name for item in dataclasses.fields(TrainConfig)} - {
        "task", "method", "seeds", "learner_overrides"}
    unknown = sorted(set(overrides) - learner_fields - train_fields)
    if unknown:
        raise UserError(f"unknown option(s) {unknown}; training options: "
                        f"{sorted(train_fields)}; learner options: {sorted(learner_fields)}")
    for key in [key for key in overrides if key in learner_fields]:  # in the caller's order
        value = overrides.pop(key)
        if value is not None:
            learner_overrides[key] = (tuple(int(width) for width in value)
                                      if key == "hidden_sizes" else
                                      tuple(float(bound) for bound in value)
                                      if key == "tn_clip" else value)
    given = {key: value for key, value in overrides.items() if value is not None}
    values.update(given)
    # Settings tied to the run's length (CQL's BC warm start, TD3+BC's updates when not given:
    # learners.registry.run_length_rule, docs/learners.md "Fair baselines").
    from mabcq.learners.registry import run_length_rule

    scaled, extra = run_length_rule(split_methods(method)[0], values["updates"],
                                    "updates" in given, learner_overrides)
    if scaled != values["updates"]:
        if "eval_every" not in given:  # as many evaluations as the unscaled run
            values["eval_every"] = -(-values["eval_every"] * scaled // values["updates"])
        values["updates"] = scaled
    learner_overrides.update(extra)
    if values.get("checkpoint_every") is None:
        values["checkpoint_every"] = values["eval_every"]
    from mabcq.learners.registry import learner_config

    # Built here so that a bad learner option (e.g. weight_init) is refused now, not at training.
    learner = learner_config(split_methods(method)[0], task, **learner_overrides)
    if values["pretrain_updates"] is None:
        values["pretrain_updates"] = learner.vae_pretrain_steps
    if not seeds:
        raise UserError("--seeds: give at least one seed, e.g. --seeds 0,1,2")
    config = TrainConfig(task=task, method=method, seeds=tuple(int(s) for s in seeds),
                         learner_overrides=learner_overrides, **values)
    check_counts(config)
    return config


def check_counts(config: TrainConfig) -> None:
    for name in ("updates", "eval_every", "updates_per_call", "checkpoint_every",
                 "eval_episodes", "diagnostic_states"):
        if getattr(config, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(config, name)}")
    if config.pretrain_updates < 0:
        raise UserError(f"--pretrain-updates must be >= 0, got {config.pretrain_updates}")
    if len(set(config.seeds)) != len(config.seeds):
        raise UserError(f"--seeds: repeated seed in {list(config.seeds)}")


def run_cells(config: TrainConfig) -> list[tuple[str, int]]:
    """The (method, seed) cells of a run, in the order of the states' leading axis: methods
    outer, seeds inner. One method: one cell per seed."""
    from mabcq.learners.registry import split_methods

    return [(method, seed) for method in split_methods(config.method) for seed in config.seeds]


def call_size(config: TrainConfig) -> int:
    """Updates per compiled call: divides every count at which the loop must stop and look
    (evaluation, checkpoint, end of pretraining, end), and is at most updates_per_call."""
    step = 0
    for count in (config.updates, config.eval_every, config.checkpoint_every,
                  config.pretrain_updates):
        step = math.gcd(step, count)
    best = 1
    for divisor in range(1, min(step, config.updates_per_call) + 1):
        if step % divisor == 0:
            best = divisor
    return best


def cell_learner_config(config: TrainConfig, method: str) -> Any:
    """The LearnerConfig that `method` of this run would have if trained alone."""
    from mabcq.learners.registry import learner_config

    return learner_config(method, config.task, **config.learner_overrides)


def run_learner(config: TrainConfig) -> tuple[Any, Any]:
    """(learner, variants) of a run. One method: its own learner and None. Several methods of
    one weighted family (mabcq+bcq, macql+cql, ...): the family's full learner (every weight's
    networks) and a [cells, len(VARIANT_FIELDS)] array per cell (which weights, eps and the
    weights' options: learners.weighting.variant_row), so every method trains in one compiled
    step and each cell equals its method trained alone (a switched-off weight is exactly 1; see
    learners.weighting)."""
    import jax.numpy as jnp

    from mabcq.learners.registry import family_of, make_learner, split_methods
    from mabcq.learners.weighting import variant_row

    methods = split_methods(config.method)
    if len(methods) == 1:
        return make_learner(methods[0], cell_learner_config(config, methods[0])), None
    full = family_of(methods[0]).full
    learner = make_learner(full, cell_learner_config(config, full))
    rows = [variant_row(cell_learner_config(config, method)) for method, _ in run_cells(config)]
    return learner, jnp.asarray(rows, jnp.float32)


def cell_labels(config: TrainConfig) -> list[str]:
    """Per cell: "seed_<s>" for one method, "<method>/seed_<s>" for several (TensorBoard
    sub-directories, policy folders)."""
    single = "+" not in config.method
    return [f"seed_{seed}" if single else f"{method}/seed_{seed}"
            for method, seed in run_cells(config)]
