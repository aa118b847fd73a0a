"""The BCQ policy: argmax-Q candidate selection, action bounds, value = Q(s, pi(s))."""

import jax
import jax.numpy as jnp
import numpy as np

from mabcq.learners.batched import FAST_COMPILE
from mabcq.learners.bcq import select_candidates
from mabcq.learners.registry import learner_config, make_learner


def test_select_candidates_picks_highest_q():
    candidates = jnp.arange(2 * 4 * 3, dtype=jnp.float32).reshape(2, 4, 3)
    q_values = jnp.array([[0.1, 3.0, -1.0, 2.9], [5.0, 0.0, 0.0, 5.5]])
    chosen = select_candidates(candidates, q_values)
    np.testing.assert_array_equal(chosen, candidates[[0, 1], [1, 3]])


def tiny_learner(method="mabcq", **overrides):
    config = learner_config(method, hidden_sizes=(16, 16), batch_size=32, **overrides)
    learner = make_learner(method, config)
    init = jax.jit(learner.init, static_argnums=(1, 2), compiler_options=FAST_COMPILE)
    return learner, init(jax.random.PRNGKey(0), 5, 2)


def fast_jit(function):
    return jax.jit(function, compiler_options=FAST_COMPILE)


def test_actions_respect_bounds_even_with_large_perturbation():
    learner, state = tiny_learner(max_action=0.5, perturbation_scale=3.0)
    states = 10.0 * jax.random.normal(jax.random.PRNGKey(1), (256, 5))
    actions = fast_jit(learner.act)(state, states, jax.random.PRNGKey(2))
    assert actions.shape == (256, 2)
    assert float(jnp.max(jnp.abs(actions))) <= 0.5
    # The perturbation is not a no-op: some actions sit on the bound.
    assert float(jnp.max(jnp.abs(actions))) == 0.5


def test_act_returns_the_argmax_candidate_and_value_is_its_q():
    learner, state = tiny_learner()
    states = jax.random.normal(jax.random.PRNGKey(3), (64, 5))
    key = jax.random.PRNGKey(4)
    @fast_jit
    def everything(state, states, key):
        actions = learner.act(state, states, key)
        candidates, q1 = learner._candidates(state.params, states, key)
        chosen_q = learner.q_value(state, states, actions)
        return actions, candidates, q1, chosen_q, learner.value(state, states, key)

    actions, candidates, q1, chosen_q, values = everything(state, states, key)
    # The chosen action is one of the candidates and no candidate has a higher Q1.
    np.testing.assert_allclose(chosen_q, jnp.max(q1, axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(values, chosen_q, rtol=1e-5, atol=1e-6)
    assert bool(jnp.all(jnp.any(jnp.all(candidates == actions[:, None], axis=-1), axis=1)))
    # Different states pick different candidate indices (selection is per state, not global).
    assert len(set(np.asarray(jnp.argmax(q1, axis=1)).tolist())) > 1
