"""Learner hyperparameters: frozen dataclasses with the paper's defaults (Table 8).

`BaseLearnerConfig` holds what every learner shares (sizes, discount, the weights' settings, the
G1/G2 models); `LearnerConfig` adds (MA)BCQ's own fields. Learners with other papers' defaults
define their dataclass in their own file. `mabcq.learners.registry.learner_config(method, task)`
turns a method name (which learner, which weights) and a task (which eps) into a config.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Self

from mabcq.errors import UserError

VD_TERMINAL = ("deviation", "one")  # lambda_vd where s' is terminal (BaseLearnerConfig)


@dataclass(frozen=True)
class BaseLearnerConfig:
    """What every learner shares: network sizes, discount, targets, batch, and MABCQ's weights
    (lambda_vd's clip and guard; G1/G2, the conditional VAEs lambda_tn is computed from).

    Defaults: paper Table 8 (shared column). A learner's own dataclass adds its fields and may
    change these defaults to its own paper's (learners/cql.py, learners/td3bc.py).
    """

    hidden_sizes: tuple[int, ...] = (64, 64)  # every MLP: critics, actors, VAE encoders/decoders
    gamma: float = 0.99
    tau: float = 0.005  # soft target update, as in BCQ
    lr_critic: float = 1e-3
    lr_actor: float = 1e-4  # xi (BCQ), the actor (DDPG, CQL, TD3+BC)
    batch_size: int = 1024
    max_action: float = 1.0
    optimism: float = 0.8  # eps: lambda_vd is clipped to [1 - eps, 1 + eps]
    use_vd: bool = True  # value deviation weight lambda_vd
    use_tn: bool = True  # transition normalization weight lambda_tn (needs G1 and G2)
    # |E[V]| is floored at this value in lambda_vd's denominator (see weights.py).
    vd_guard: float = 1e-3
    # lambda_tn's log is clamped to [-tn_max_log, tn_max_log]: a safety net against inf only
    # (the paper reports lambda_tn in [0.2, 1.4]; e^10 is far outside that).
    tn_max_log: float = 10.0
    # The estimator's open points (issue 19), each an option whose default is the paper's
    # reading (section 3.3; weights.py and docs/learners.md say why each exists):
    # lambda_vd where s' is terminal: "deviation" (the paper's formula, V(s') = 0 there) or
    # "one" (lambda_vd = 1 on terminal transitions: no value deviation there).
    vd_terminal: str = "deviation"
    # lambda_tn clipped to [low, high] (e.g. the paper's reported range (0.2, 1.4)); None: no
    # clip (the paper clips lambda_vd only).
    tn_clip: tuple[float, float] | None = None
    # lambda_tn divided by its batch mean (the self-normalized importance weight); the paper
    # normalizes by z_i per (s, a_i), which a sampled batch cannot compute.
    tn_self_normalize: bool = False
    # |E[V]| also floored at vd_guard_rel x the batch mean of |E[V]| (0: vd_guard alone).
    vd_guard_rel: float = 0.0
    # G1/G2's latent size; 0: 2 x the agent's action size, as BCQ's and d3rlpy's code. Table 8's
    # "VAE hidden space 10" read literally as the latent trails that reference BCQ on the same
    # data (issue 17's cross-check), so the grid's base uses the reference's size and the literal
    # reading is the bcq-latent10 family's (learners/registry.py, docs/learners.md).
    latent_dim: int = 0
    # G1/G2's hidden layers; None: hidden_sizes (BCQ). Learners with wider nets of their own
    # keep MABCQ's (64, 64) here, so lambda_tn comes from the same models as MABCQ's.
    vae_hidden_sizes: tuple[int, ...] | None = None
    lr_vae: float = 1e-4
    # Algorithm 1 line 4 fits G1 (and G2) before the Q updates; this many pretrain updates.
    vae_pretrain_steps: int = 20_000
    # False (default): G1/G2 stay as fitted by the pretrain phase (Algorithm 1: the update loop
    # only changes Q and the actor), so mu1 and mu2 in lambda_tn come from models fitted side by
    # side and the BCQ variant uses the very same G1. True: G1 (and G2 when lambda_tn is used)
    # also take one step per update, as the original BCQ trains its VAE.
    vae_in_update: bool = False
    latent_clip: float = 0.5  # BCQ: decoder latent ~ N(0, 1) clipped to [-0.5, 0.5] at sampling
    vae_kl_weight: float = 0.5  # BCQ's VAE loss: recon + 0.5 * KL
    # How the networks' Dense layers start (nets.INITS): "torch" (PyTorch's nn.Linear default,
    # as BCQ's and d3rlpy's code: the paper does not say, so the reference code decides) or
    # "flax" (Flax's default, this project's base before issue 17); docs/learners.md.
    weight_init: str = "torch"

    def __post_init__(self) -> None:
        from mabcq.nets import INITS

        if self.latent_dim < 0:
            raise UserError(f"latent_dim must be >= 0 (0: 2 x the action size), "
                            f"got {self.latent_dim}")
        if self.vd_terminal not in VD_TERMINAL:
            raise UserError(f"vd_terminal must be one of {', '.join(VD_TERMINAL)}, "
                            f"got {self.vd_terminal!r}")
        if self.tn_clip is not None and not (len(self.tn_clip) == 2
                                             and 0.0 <= self.tn_clip[0] <= self.tn_clip[1]):
            raise UserError(f"tn_clip must be (low, high) with 0 <= low <= high, got "
                            f"{self.tn_clip!r}")
        if not self.vd_guard_rel >= 0.0:
            raise UserError(f"vd_guard_rel must be >= 0, got {self.vd_guard_rel!r}")
        if self.weight_init not in INITS:
            raise UserError(f"weight_init must be one of {', '.join(INITS)}, "
                            f"got {self.weight_init!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        """Inverse of to_dict (lists from JSON/msgpack become tuples); unknown keys -> UserError."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"{cls.__name__}: unknown field(s) {unknown}; known: {sorted(known)}")
        fixed = dict(values)
        for name in ("hidden_sizes", "vae_hidden_sizes"):
            if fixed.get(name) is not None:
                fixed[name] = tuple(int(width) for width in fixed[name])
        if fixed.get("tn_clip") is not None:
            fixed["tn_clip"] = tuple(float(bound) for bound in fixed["tn_clip"])
        return cls(**fixed)


@dataclass(frozen=True)
class LearnerConfig(BaseLearnerConfig):
    """(MA)BCQ's hyperparameters (also DDPG's and Behavior's). Defaults: paper Table 8."""

    n_candidates: int = 10  # n: actions drawn from G1 per state
    perturbation_scale: float = 0.05  # Phi, times max_action
    double_q_mix: float = 0.75  # BCQ's soft clipped double-Q: mix * min + (1 - mix) * max

