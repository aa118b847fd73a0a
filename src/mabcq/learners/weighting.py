"""The thin layer between a learner's update and MABCQ's weights (mabcq.weights): which weights
and options apply, a grid's variant masking, the per-sample product and its diagnostics.

A learner's update reads `settings(config, batch.variant)` once, computes lambda_vd and lambda_tn
where its algorithm has V(s') and E[V] (learners/bcq.py), and multiplies the product of
`WeightSettings.sample_weights` into its per-sample TD loss (paper eq. 1) and actor objective
(eq. 2). Every weight is stop-gradient.

Two ways to decide the weights:
- batch.variant None: the learner's config, as Python values, so an option left at the paper's
  default traces no operation (the default path computes what it always did);
- batch.variant [len(VARIANT_FIELDS)] as data (a grid trains the methods of one family in one
  compiled step, learners.batched `variants`): both weights and every option are computed from
  it, and a switched-off weight is replaced by exactly 1, so a variant equals the learner built
  for it alone.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mabcq import weights
from mabcq.learners.config import BaseLearnerConfig

# Batch.variant's entries, in order: which weights, eps, and the options (variant_row).
VARIANT_FIELDS = ("use_vd", "use_tn", "optimism", "vd_terminal_one", "tn_clip_low",
                  "tn_clip_high", "tn_self_normalize", "vd_guard_rel")


def variant_row(config: BaseLearnerConfig) -> list[float]:
    """A config's weights and options as one row of a grid's variants (Batch.variant): what
    `settings` reads as data so every method of a family trains in one compiled step.
    No tn_clip is the range (0, inf), which leaves lambda_tn bitwise as it is."""
    low, high = config.tn_clip if config.tn_clip is not None else (0.0, math.inf)
    return [float(config.use_vd), float(config.use_tn), float(config.optimism),
            float(config.vd_terminal == "one"), float(low), float(high),
            float(config.tn_self_normalize), float(config.vd_guard_rel)]


class ShapedWeight(NamedTuple):
    """lambda_tn as the loss uses it, and before self-normalization (for its clip shares)."""

    weight: jax.Array  # [B]
    clipped: jax.Array  # [B]


class WeightSettings(NamedTuple):
    """The weights of one update: use_vd / use_tn say which are computed at all (Python bools);
    the options are Python values (a config) or traced ones (a variant row)."""

    config: BaseLearnerConfig
    variant: jax.Array | None
    use_vd: bool
    use_tn: bool
    optimism: Any
    terminal_one: Any
    tn_clip: Any
    self_normalize: Any
    relative_guard: Any

    def value_deviation(self, next_values: jax.Array, expected_values: jax.Array,
                        dones: jax.Array) -> jax.Array:
        """lambda_vd [B] (weights.value_deviation with these options), 1 where a variant row
        switches it off."""
        lambda_vd = weights.value_deviation(
            next_values, expected_values, dones, self.optimism, self.config.vd_guard,
            terminal_one=self.terminal_one, relative_guard=self.relative_guard)
        if self.variant is not None:
            lambda_vd = jnp.where(self.variant[0] > 0, lambda_vd, 1.0)
        return lambda_vd

    def transition_normalization(self, lambda_tn: jax.Array) -> ShapedWeight:
        """lambda_tn [B] clipped and self-normalized as the options say
        (weights.shape_transition_weights), 1 where a variant row switches it off."""
        clipped = weights.shape_transition_weights(lambda_tn, self.tn_clip)
        lambda_tn = weights.shape_transition_weights(clipped, None, self.self_normalize)
        if self.variant is not None:
            lambda_tn = jnp.where(self.variant[1] > 0, lambda_tn, 1.0)
        return ShapedWeight(lambda_tn, clipped)

    def sample_weights(self, lambda_vd: jax.Array | None, lambda_tn: ShapedWeight | None,
                       dones: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        """(w = lambda_vd * lambda_tn [B], 1 for a weight not used; the weights' diagnostics)."""
        sample_weights = jnp.ones_like(dones)
        metrics: dict[str, jax.Array] = {}
        if lambda_vd is not None:
            sample_weights = sample_weights * lambda_vd
            metrics.update(value_deviation_diagnostics(lambda_vd, self.optimism, dones))
        if lambda_tn is not None:
            sample_weights = sample_weights * lambda_tn.weight
            metrics.update(weights.weight_diagnostics("lambda_tn", lambda_tn.weight))
            # At the clip: the shares before self-normalization, at the clip's bounds or, with
            # no clip, at the safety clamp e^(+-tn_max_log).
            max_log = self.config.tn_max_log
            low, high = (self.tn_clip if self.tn_clip is not None else
                         (math.exp(-max_log), math.exp(max_log)))
            metrics.update(weights.clip_shares("lambda_tn", lambda_tn.clipped, low, high))
        metrics["weight_mean"] = jnp.mean(sample_weights)
        metrics["weight_ess"] = weights.effective_sample_size(sample_weights)
        return sample_weights, metrics


def settings(config: BaseLearnerConfig, variant: jax.Array | None) -> WeightSettings:
    """The weights of an update on a batch with this Batch.variant (None: the config's)."""
    if variant is None:
        return WeightSettings(config, None, config.use_vd, config.use_tn, config.optimism,
                              config.vd_terminal == "one", config.tn_clip,
                              config.tn_self_normalize, config.vd_guard_rel)
    if variant.shape[-1] != len(VARIANT_FIELDS):
        raise ValueError(f"Batch.variant holds {variant.shape[-1]} values, expected "
                         f"{len(VARIANT_FIELDS)}: {VARIANT_FIELDS} (variant_row)")
    return WeightSettings(config, variant, True, True, variant[2], variant[3],
                          (variant[4], variant[5]), variant[6], variant[7])


def value_deviation_diagnostics(lambda_vd: jax.Array, optimism: Any, dones: jax.Array
                                ) -> dict[str, jax.Array]:
    """lambda_vd's batch statistics, its shares at each clip and pooled on terminal and other
    transitions."""
    metrics = {**weights.weight_diagnostics("lambda_vd", lambda_vd),
               **weights.clip_shares("lambda_vd", lambda_vd, 1.0 - optimism, 1.0 + optimism)}
    # Share of the batch at the clip [1 - eps, 1 + eps]: where |V(s') - E[V]| >= eps |E[V]|
    # (E[V] ~ 0 early on and on terminal transitions saturates it).
    metrics["lambda_vd_at_clip"] = jnp.mean(jnp.abs(lambda_vd - 1.0) >= optimism * (1.0 - 1e-6))
    metrics.update(weights.terminal_split(lambda_vd, dones))
    return metrics
