"""MABCQ's two importance weights (paper section 3.3), generic over the base learner.

A learner supplies per-sample values it already has (V(s'), Q(s, a_i), r, done, latent means) and
gets per-sample weights [B] that multiply its per-sample losses (paper eq. 1 and 2). Nothing here
knows about BCQ, so CQL / TD3+BC can reuse it. Every weight is wrapped in stop_gradient: the
weights reshape the sampling distribution, they are not trained through.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def value_deviation(
    next_values: jax.Array,
    q_values: jax.Array,
    rewards: jax.Array,
    dones: jax.Array,
    gamma: float,
    optimism: float,
    guard: float = 1e-3,
) -> jax.Array:
    """lambda_vd = clip(1 + (V(s') - E[V]) / |E[V]|, 1 - eps, 1 + eps), all [B] -> [B].

    next_values: V(s') = Q^(s', pi^(s')) from the TARGET networks (not yet masked);
    q_values: Q^(s, a_i) from the target critic; the Bellman relation Q = r + gamma E[V] gives
    E[V] = (Q^(s, a_i) - r) / gamma without visiting the other next states of (s, a_i).
    dones: 1.0 where s' is terminal: V(s') counts as 0 there (no value after termination).

    Guard: |E[V]| is floored at `guard` in the denominator. For E[V] = 0 (e.g. Q ~ r right
    after init, or a terminal-only (s, a_i)) the ratio would be 0/0 or x/0; with the floor it is
    finite, V(s') = E[V] still gives exactly 1, and any deviation larger than `guard` saturates at
    the clip, so the weight stays in [1 - eps, 1 + eps] and never turns NaN/inf.
    """
    masked_next_values = next_values * (1.0 - dones)
    expected_values = (q_values - rewards) / gamma
    scale = jnp.maximum(jnp.abs(expected_values), guard)
    weight = 1.0 + (masked_next_values - expected_values) / scale
    return jax.lax.stop_gradient(jnp.clip(weight, 1.0 - optimism, 1.0 + optimism))


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
