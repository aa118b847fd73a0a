"""Learner hyperparameters: one frozen dataclass with the paper's defaults (Table 8) and presets.

`learner_config(method, task)` is the one place that turns a method name (which weights are on)
and a task name (which optimism level eps) into a config.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from mabcq.errors import UserError


@dataclass(frozen=True)
class LearnerConfig:
    """Hyperparameters of one agent's learner. Defaults: paper Table 8 (shared column)."""

    hidden_sizes: tuple[int, ...] = (64, 64)  # every MLP: critics, xi, VAE encoders/decoders
    latent_dim: int = 10  # VAE latent ("VAE hidden space")
    n_candidates: int = 10  # n: actions drawn from G1 per state
    perturbation_scale: float = 0.05  # Phi, times max_action
    gamma: float = 0.99
    tau: float = 0.005  # soft target update, as in BCQ
    lr_critic: float = 1e-3
    lr_actor: float = 1e-4  # xi (and DDPG's actor)
    lr_vae: float = 1e-4
    batch_size: int = 1024
    optimism: float = 0.8  # eps: lambda_vd is clipped to [1 - eps, 1 + eps]
    double_q_mix: float = 0.75  # BCQ's soft clipped double-Q: mix * min + (1 - mix) * max
    max_action: float = 1.0
    use_vd: bool = True  # value deviation weight lambda_vd
    use_tn: bool = True  # transition normalization weight lambda_tn (needs G2)
    # Algorithm 1 line 4 fits G1 (and G2) before the Q updates; this many pretrain updates.
    vae_pretrain_steps: int = 20_000
    # False (default): G1/G2 stay as fitted by the pretrain phase (Algorithm 1: the update loop
    # only changes Q and xi), so mu1 and mu2 in lambda_tn come from models fitted side by side
    # and the BCQ variant uses the very same G1. True: G1 (and G2 when lambda_tn is used) also
    # take one step per update, as the original BCQ trains its VAE.
    vae_in_update: bool = False
    latent_clip: float = 0.5  # BCQ: decoder latent ~ N(0, 1) clipped to [-0.5, 0.5] at sampling
    vae_kl_weight: float = 0.5  # BCQ's VAE loss: recon + 0.5 * KL
    # |E[V]| is floored at this value in lambda_vd's denominator (see weights.py).
    vd_guard: float = 1e-3
    # lambda_tn's log is clamped to [-tn_max_log, tn_max_log]: a safety net against inf only
    # (the paper reports lambda_tn in [0.2, 1.4]; e^10 is far outside that).
    tn_max_log: float = 10.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LearnerConfig:
        """Inverse of to_dict (lists from JSON/msgpack become tuples); unknown keys -> UserError."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"learner config: unknown field(s) {unknown}; known: {sorted(known)}")
        fixed = dict(values)
        if "hidden_sizes" in fixed:
            fixed["hidden_sizes"] = tuple(int(width) for width in fixed["hidden_sizes"])
        return cls(**fixed)


# Optimism level eps per task (paper Table 8). Tasks not listed use the default 0.8.
TASK_OPTIMISM: dict[str, float] = {
    "halfcheetah-2x3": 0.80,
    "walker2d-2x3": 0.48,
    "hopper-3x1": 0.80,
    "ant-4x2": 0.64,
}

# Which importance weights each method uses (paper section 4.2's ablations).
METHOD_WEIGHTS: dict[str, tuple[bool, bool]] = {  # method -> (use_vd, use_tn)
    "mabcq": (True, True),
    "mabcq-no-tn": (True, False),
    "mabcq-no-vd": (False, True),
    "bcq": (False, False),
    "ddpg": (False, False),
    "behavior": (False, False),
}


# The BCQ family: one learner whose variants differ only in their weights (and eps), so they
# can train side by side in one compiled step (mabcq.learners.batched, `variants`).
BCQ_FAMILY: tuple[str, ...] = ("mabcq", "mabcq-no-tn", "mabcq-no-vd", "bcq")
# The paper's eps sweep (Figure 5; Table 8's values are multiples of 0.16).
EPS_SWEEP: tuple[float, ...] = (0.0, 0.16, 0.32, 0.48, 0.64, 0.8)
_EPS_PREFIX = "mabcq-eps"


def eps_method(eps: float) -> str:
    """The method name of MABCQ at optimism level eps, e.g. 0.16 -> "mabcq-eps0.16"."""
    return f"{_EPS_PREFIX}{eps:.2f}"


def parse_method(method: str) -> tuple[str, float | None]:
    """(base method, eps override or None): "mabcq-eps0.32" -> ("mabcq", 0.32)."""
    if method.startswith(_EPS_PREFIX):
        text = method[len(_EPS_PREFIX):]
        try:
            eps = float(text)
        except ValueError:
            eps = float("nan")
        if not 0.0 <= eps <= 1.0:  # also rejects nan
            raise UserError(f"method {method!r}: eps must be a number in [0, 1], e.g. "
                            f"{eps_method(0.32)}")
        return "mabcq", eps
    if method not in METHOD_WEIGHTS:
        raise UserError(f"unknown method {method!r}; choose one of {', '.join(METHOD_WEIGHTS)} "
                        f"or {_EPS_PREFIX}E (MABCQ at optimism eps = E, e.g. {eps_method(0.32)})")
    return method, None


def split_methods(method: str) -> tuple[str, ...]:
    """"mabcq+bcq" -> ("mabcq", "bcq"): several methods trained in one step must all be of the
    BCQ family (eps variants included); each name is checked."""
    methods = tuple(name.strip() for name in method.split("+"))
    if len(set(methods)) != len(methods) or not all(methods):
        raise UserError(f"method {method!r}: empty or repeated name in a '+' list")
    for name in methods:
        parse_method(name)
    if len(methods) > 1:
        outside = [name for name in methods if parse_method(name)[0] not in BCQ_FAMILY]
        if outside:
            raise UserError(f"method {method!r}: only BCQ-family methods ({', '.join(BCQ_FAMILY)}, "
                            f"{_EPS_PREFIX}E) train together in one step, not {outside}")
    return methods


def learner_config(method: str, task: str | None = None, **overrides: Any) -> LearnerConfig:
    """Config for `method` on `task`: weights flags from the method, eps from Table 8 (or from
    the name, "mabcq-eps0.32").

    `overrides` replace any field last (e.g. `batch_size=32` for a smoke run).
    """
    base, eps = parse_method(method)
    use_vd, use_tn = METHOD_WEIGHTS[base]
    values: dict[str, Any] = {"use_vd": use_vd, "use_tn": use_tn}
    if task is not None and task.lower() in TASK_OPTIMISM:
        values["optimism"] = TASK_OPTIMISM[task.lower()]
    values.update(overrides)
    if eps is not None:  # the name's eps wins over an --optimism override
        values["optimism"] = eps
    known = {field.name for field in dataclasses.fields(LearnerConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"learner config: unknown option(s) {unknown}; known: {sorted(known)}")
    return LearnerConfig(**values)
