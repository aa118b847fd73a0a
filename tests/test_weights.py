"""lambda_vd and lambda_tn on hand-made batches (paper section 3.3; matrix game Table 3)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mabcq.weights import (
    expected_value,
    transition_normalization,
    value_deviation,
    weight_stats,
)


def vd(next_values, expected, rewards=None, dones=None, gamma=0.9, optimism=0.8, guard=1e-3):
    """value_deviation with Q^(s, a) built from a chosen E[V]: Q = r + gamma * E[V]."""
    expected = jnp.asarray(expected, jnp.float32)
    rewards = jnp.zeros_like(expected) if rewards is None else jnp.asarray(rewards, jnp.float32)
    dones = jnp.zeros_like(expected) if dones is None else jnp.asarray(dones, jnp.float32)
    q_values = rewards + gamma * expected
    return value_deviation(jnp.asarray(next_values, jnp.float32),
                           expected_value(q_values, rewards, gamma), dones, optimism, guard)


def test_value_deviation_known_values():
    # 1 + (V(s') - E[V]) / |E[V]|, with a reward so that E[V] = (Q - r) / gamma is exercised.
    weights = vd([10.0, 6.0, -2.0], [8.0, 8.0, -4.0], rewards=[1.0, -3.0, 0.5])
    np.testing.assert_allclose(weights, [1.25, 0.75, 1.5], rtol=1e-6)


def test_value_deviation_is_clipped_to_optimism_band():
    weights = vd([30.0, -10.0, 8.8], [8.0, 8.0, 8.0], optimism=0.5)
    np.testing.assert_allclose(weights, [1.5, 0.5, 1.1], rtol=1e-6)


def test_value_deviation_masks_terminal_next_values():
    # done: V(s') counts as 0 whatever the critic says -> 1 + (0 - 4) / 4 = 0 (wide band).
    weights = vd([10.0, 10.0], [4.0, 4.0], dones=[1.0, 0.0], optimism=5.0)
    np.testing.assert_allclose(weights, [0.0, 2.5], rtol=1e-6)


def test_value_deviation_guard_keeps_weights_finite_near_zero_expectation():
    weights = vd([0.0, 1e-4, 5.0, -5.0], [0.0, 0.0, 0.0, 0.0], guard=1e-3, optimism=0.8)
    assert np.all(np.isfinite(weights))
    np.testing.assert_allclose(weights, [1.0, 1.1, 1.8, 0.2], rtol=1e-5)


def test_value_deviation_reproduces_matrix_game_table_3():
    # Agent 1, action a1: next states with payoff 1 (p=.4) and 5 (p=.6); E[V] = 3.4.
    # Unclipped, reweighting P by lambda_vd gives Table 3's p(1)=.12, p(5)=.88.
    weights = vd([1.0, 5.0], [3.4, 3.4], gamma=1.0, optimism=100.0)
    modified = np.array([0.4, 0.6]) * np.asarray(weights)
    np.testing.assert_allclose(modified / modified.sum(), [0.1176, 0.8824], atol=1e-4)


def test_weights_carry_no_gradient():
    def total(next_values, means):
        lambda_vd = vd(next_values, jnp.full(3, 2.0))
        lambda_tn = transition_normalization(means, 0.5 * means)
        return jnp.sum(lambda_vd) + jnp.sum(lambda_tn)

    grads = jax.grad(total, argnums=(0, 1))(jnp.array([1.0, 2.0, 3.0]), jnp.ones((3, 4)))
    assert all(float(jnp.max(jnp.abs(g))) == 0.0 for g in grads)


def test_transition_normalization_known_latent_means():
    mu1 = jnp.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0], [0.3, -0.2]])
    mu2 = jnp.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [0.3, -0.2]])
    expected = [np.exp(-0.5), np.exp(0.5), np.exp(1.0), 1.0]  # exp((|mu2|^2 - |mu1|^2) / 2)
    np.testing.assert_allclose(transition_normalization(mu1, mu2), expected, rtol=1e-6)


def test_transition_normalization_is_ratio_of_normal_densities():
    key1, key2 = jax.random.split(jax.random.PRNGKey(0))
    mu1, mu2 = jax.random.normal(key1, (5, 10)), jax.random.normal(key2, (5, 10))

    def density(mu):  # standard normal density in 10 dims
        return (2 * np.pi) ** -5 * np.exp(-0.5 * np.sum(np.asarray(mu, np.float64) ** 2, -1))

    np.testing.assert_allclose(
        transition_normalization(mu1, mu2), density(mu1) / density(mu2), rtol=1e-4
    )


def test_transition_normalization_safety_clamp():
    weights = transition_normalization(jnp.zeros((2, 3)), jnp.array([[100.0, 0, 0], [0, 0, 0]]))
    assert np.all(np.isfinite(weights))
    np.testing.assert_allclose(weights, [np.exp(10.0), 1.0], rtol=1e-5)


@pytest.mark.parametrize("name", ["lambda_vd", "lambda_tn"])
def test_weight_stats(name):
    stats = weight_stats(name, jnp.array([0.5, 1.0, 2.5]))
    assert {k: float(v) for k, v in stats.items()} == pytest.approx(
        {f"{name}_mean": 4.0 / 3.0, f"{name}_min": 0.5, f"{name}_max": 2.5}
    )
