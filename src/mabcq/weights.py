"""MABCQ's two importance weights (paper section 3.3), generic over the base learner.

A learner supplies per-sample values it already has (V(s'), Q(s, a_i), r, done, latent means) and
gets per-sample weights [B] that multiply its per-sample losses (paper eq. 1 and 2). Nothing here
knows about BCQ, so CQL / TD3+BC can reuse it. Every weight is wrapped in stop_gradient: the
weights reshape the sampling distribution, they are not trained through.

The points the paper leaves open (lambda_vd on terminal transitions, lambda_tn's range and
normalization, the guard on |E[V]|) are options whose defaults are the paper's reading and add
no operation (issue 19; docs/learners.md). The diagnostics below (quantiles, effective sample
size, shares at the clips, lambda_vd on terminal vs other transitions) are per-batch scalars.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def expected_value(q_values: jax.Array, rewards: jax.Array, gamma: float) -> jax.Array:
    """E[V] = sum_x P(x | s, a_i) V(x) over the next states of (s, a_i), [B] -> [B].

    The Bellman relation Q^(s, a_i) = r + gamma E[V] gives E[V] = (Q^(s, a_i) - r) / gamma from
    the target critic's value of the sample itself, without visiting the other next states of
    (s, a_i) (section 3.3).
    """
    return (q_values - rewards) / gamma


def value_deviation(
    next_values: jax.Array,
    expected_values: jax.Array,
    dones: jax.Array,
    optimism: float | jax.Array,
    guard: float = 1e-3,
    *,
    terminal_one: bool | jax.Array = False,
    relative_guard: float | jax.Array = 0.0,
) -> jax.Array:
    """lambda_vd = clip(1 + (V(s') - E[V]) / |E[V]|, 1 - eps, 1 + eps), all [B] -> [B].

    next_values: V(s') = Q^(s', pi^(s')) from the TARGET networks (not yet masked);
    expected_values: E[V] (expected_value) from the target critic.
    dones: 1.0 where s' is terminal: V(s') counts as 0 there (no value after termination).

    Guard: |E[V]| is floored at `guard` in the denominator. For E[V] = 0 (e.g. Q ~ r right
    after init, or a terminal-only (s, a_i)) the ratio would be 0/0 or x/0; with the floor it is
    finite, V(s') = E[V] still gives exactly 1, and any deviation larger than `guard` saturates at
    the clip, so the weight stays in [1 - eps, 1 + eps] and never turns NaN/inf.

    Options (defaults: the paper's reading, section 3.3, where neither case is discussed):
    terminal_one: True (or a traced flag) sets lambda_vd to exactly 1 where s' is terminal. There
    V(s') = 0 and E[V] = (Q^ - r) / gamma ~ 0, so the paper's weight is 1 - eps or 1 + eps by
    the sign of the critic's residual alone. relative_guard: also floor |E[V]| at this times
    the batch mean of |E[V]|, so a sample whose E[V] is small next to the batch's values does
    not saturate at the clip. A Python False / 0.0 adds no operation (the default path's
    numbers stay what they were); traced values (a grid's variants) always apply.
    """
    masked_next_values = next_values * (1.0 - dones)
    scale = jnp.maximum(jnp.abs(expected_values), guard)
    if not _off(relative_guard):
        scale = jnp.maximum(scale, relative_guard * jnp.mean(jnp.abs(expected_values)))
    weight = 1.0 + (masked_next_values - expected_values) / scale
    weight = jnp.clip(weight, 1.0 - optimism, 1.0 + optimism)
    if not _off(terminal_one):
        weight = jnp.where((dones > 0) & (terminal_one > 0), 1.0, weight)
    return jax.lax.stop_gradient(weight)


def shape_transition_weights(
    lambda_tn: jax.Array,
    clip: tuple[float, float] | tuple[jax.Array, jax.Array] | None = None,
    self_normalize: bool | jax.Array = False,
) -> jax.Array:
    """lambda_tn [B] clipped to `clip` = (low, high), then divided by its batch mean when
    `self_normalize` (the self-normalized importance weight: the batch averages exactly 1).

    The paper neither clips nor normalizes lambda_tn per sample; it reports values in [0.2, 1.4]
    "for almost all samples" (section 3.3) and normalizes P~ by z_i per (s, a_i), which a sampled
    batch cannot compute. Without either, a few samples of lambda_tn ~ e^10 can outweigh the rest
    of a batch. None / False add no operation; traced values (a grid's variants) always apply
    (clip (0, inf) and flag 0 leave the weights bitwise as they are).
    """
    weights = lambda_tn
    if clip is not None:
        weights = jnp.clip(weights, clip[0], clip[1])
    if not _off(self_normalize):
        normalized = weights / jnp.mean(weights)
        weights = normalized if self_normalize is True else jnp.where(self_normalize > 0,
                                                                     normalized, weights)
    return jax.lax.stop_gradient(weights)


def _off(option: bool | float | jax.Array) -> bool:
    """A Python False/0 option: skip its operation entirely (a traced one is never off)."""
    return isinstance(option, bool | int | float) and not option


def transition_normalization(
    means_sa: jax.Array, means_sas: jax.Array, max_log: float = 10.0
) -> jax.Array:
    """lambda_tn = phi(mu1) / phi(mu2) = exp((|mu2|^2 - |mu1|^2) / 2), [B, latent] x2 -> [B].

    means_sa: G1's latent mean mu1 given (s, a_i); means_sas: G2's latent mean mu2 given
    (s, a_i, s'); phi is the standard normal density, whose (2 pi)^(d/2) cancels in the ratio.
    The log is clamped to [-max_log, max_log] only so that a diverged encoder cannot give inf.
    """
    log_weight = 0.5 * (jnp.sum(means_sas**2, axis=-1) - jnp.sum(means_sa**2, axis=-1))
    return jax.lax.stop_gradient(jnp.exp(jnp.clip(log_weight, -max_log, max_log)))


def weight_stats(name: str, weights: jax.Array) -> dict[str, jax.Array]:
    """Mean/min/max of a [B] weight, as scalar metrics named `{name}_mean` etc."""
    return {
        f"{name}_mean": jnp.mean(weights),
        f"{name}_min": jnp.min(weights),
        f"{name}_max": jnp.max(weights),
    }


def effective_sample_size(weights: jax.Array) -> jax.Array:
    """(sum w)^2 / (B sum w^2) of a [B] weight: the share of the batch that a weighted batch
    is worth (1 for equal weights, 1/B when one sample carries all the weight)."""
    return jnp.sum(weights) ** 2 / (weights.shape[0] * jnp.sum(weights**2))


def weight_diagnostics(name: str, weights: jax.Array) -> dict[str, jax.Array]:
    """weight_stats plus the batch's 5/50/95% quantiles (`{name}_p05`, `_p50`, `_p95`) and its
    effective sample size (`{name}_ess`), scalars."""
    quantiles = jnp.quantile(weights, jnp.asarray([0.05, 0.5, 0.95]))
    return {**weight_stats(name, weights),
            f"{name}_p05": quantiles[0], f"{name}_p50": quantiles[1],
            f"{name}_p95": quantiles[2], f"{name}_ess": effective_sample_size(weights)}


def clip_shares(name: str, weights: jax.Array, low: float | jax.Array,
                high: float | jax.Array) -> dict[str, jax.Array]:
    """Shares of the batch at the lower and at the upper clip (`{name}_at_low`,
    `{name}_at_high`), within a relative 1e-6 of the bound."""
    return {f"{name}_at_low": jnp.mean(weights <= low + 1e-6 * jnp.abs(low)),
            f"{name}_at_high": jnp.mean(weights >= high - 1e-6 * jnp.abs(high))}


# Window metrics that are pooled shares: name -> (numerator, denominator), see finish_window.
POOLED = {"lambda_vd_terminal_mean": ("lambda_vd_terminal_mass", "terminal_share"),
          "lambda_vd_nonterminal_mean": ("lambda_vd_nonterminal_mass", "nonterminal_share")}


def terminal_split(lambda_vd: jax.Array, dones: jax.Array) -> dict[str, jax.Array]:
    """The batch sums behind lambda_vd's mean on terminal and on other transitions, as batch
    means (a batch may hold no terminal): finish_window divides them over a whole window."""
    terminal = (dones > 0).astype(lambda_vd.dtype)
    return {"lambda_vd_terminal_mass": jnp.mean(lambda_vd * terminal),
            "lambda_vd_nonterminal_mass": jnp.mean(lambda_vd * (1.0 - terminal)),
            "terminal_share": jnp.mean(terminal), "nonterminal_share": jnp.mean(1.0 - terminal)}


def finish_window(summary: dict[str, float]) -> dict[str, float]:
    """A window's averaged metrics with the pooled means of POOLED in place of their sums
    (equal batch sizes: the mean over batches of each batch mean is the pooled share); NaN where
    the window saw no such transition."""
    out = dict(summary)
    for name, (mass, share) in POOLED.items():
        if mass in out and share in out:
            out[name] = out[mass] / out[share] if out[share] > 0 else float("nan")
            del out[mass]
        if share == "nonterminal_share":
            out.pop(share, None)
    return out
