"""The estimator's options (issue 19): each does exactly what it says on hand-made batches, and
the default path stays the paper's formula bitwise through the learner's update."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mabcq import weights
from mabcq.errors import UserError
from mabcq.learners import batched
from mabcq.learners.bcq import BCQLearner
from mabcq.learners.registry import OPTION_METHODS, learner_config, make_learner
from mabcq.learners.synthetic import synthetic_dataset

GAMMA, EPS = 0.9, 0.8


def vd(next_values, expected, dones, **options):
    """value_deviation with Q^ = r + gamma E[V] built from a chosen E[V] (rewards 0.5)."""
    expected = jnp.asarray(expected, jnp.float32)
    rewards = jnp.full_like(expected, 0.5)
    return weights.value_deviation(jnp.asarray(next_values, jnp.float32),
                                   weights.expected_value(rewards + GAMMA * expected, rewards,
                                                          GAMMA),
                                   jnp.asarray(dones, jnp.float32), EPS, **options)


NEXT, EXPECTED, DONES = [3.0, 0.2, 5.0, -4.0], [2.0, 0.001, 4.0, 0.05], [0.0, 1.0, 0.0, 1.0]


def test_terminal_one_is_exactly_one_on_terminals_only():
    paper = vd(NEXT, EXPECTED, DONES)
    assert float(paper[1]) == pytest.approx(1.0 - EPS)  # V(s') = 0 < E[V]: the lower clip
    for flag in (True, jnp.float32(1.0)):  # a Python option and a grid's traced one
        ones = vd(NEXT, EXPECTED, DONES, terminal_one=flag)
        assert np.array_equal(np.asarray(ones)[[1, 3]], [1.0, 1.0])
        assert np.array_equal(np.asarray(ones)[[0, 2]], np.asarray(paper)[[0, 2]])
    assert np.array_equal(vd(NEXT, EXPECTED, DONES, terminal_one=jnp.float32(0.0)), paper)


def test_relative_guard_floors_small_expectations_at_a_share_of_the_batch_mean():
    expected = [10.0, 0.01, 10.0, 10.0]
    floor = 0.5 * np.mean(np.abs(expected))  # 3.75875
    guarded = vd([10.0, 1.0, 10.0, 11.0], expected, [0.0] * 4, relative_guard=0.5)
    np.testing.assert_allclose(guarded, [1.0, 1.0 + (1.0 - 0.01) / floor, 1.0, 1.0 + 1.0 / 10.0],
                               rtol=1e-6)
    paper = vd([10.0, 1.0, 10.0, 11.0], expected, [0.0] * 4)
    assert float(paper[1]) == pytest.approx(1.0 + EPS)  # saturated without the relative guard
    assert np.array_equal(vd(NEXT, EXPECTED, DONES, relative_guard=jnp.float32(0.0)),
                          vd(NEXT, EXPECTED, DONES))


LAMBDA_TN = jnp.exp(jax.random.normal(jax.random.PRNGKey(0), (256,)) * 2.0)


def test_clipped_lambda_tn_stays_in_range_and_is_unchanged_inside():
    clipped = np.asarray(weights.shape_transition_weights(LAMBDA_TN, (0.2, 1.4)))
    assert clipped.min() >= 0.2 and clipped.max() <= 1.4
    inside = (np.asarray(LAMBDA_TN) > 0.2) & (np.asarray(LAMBDA_TN) < 1.4)
    assert 0 < inside.sum() < len(inside)
    assert np.array_equal(clipped[inside], np.asarray(LAMBDA_TN)[inside])


@pytest.mark.parametrize("flag", [True, jnp.float32(1.0)])
def test_self_normalized_lambda_tn_averages_one_per_batch(flag):
    for batch in (LAMBDA_TN, LAMBDA_TN[:7] * 40.0):
        normalized = weights.shape_transition_weights(batch, None, flag)
        assert float(jnp.mean(normalized)) == pytest.approx(1.0, abs=1e-6)
        np.testing.assert_allclose(normalized * jnp.mean(batch), batch, rtol=1e-6)


def test_traced_defaults_leave_lambda_tn_bitwise():
    same = weights.shape_transition_weights(LAMBDA_TN, (jnp.float32(0.0), jnp.float32(np.inf)),
                                            jnp.float32(0.0))
    assert np.array_equal(same, LAMBDA_TN)


def test_diagnostics_known_values():
    assert float(weights.effective_sample_size(jnp.ones(8))) == pytest.approx(1.0)
    assert float(weights.effective_sample_size(jnp.array([4.0, 0, 0, 0]))) == pytest.approx(0.25)
    shares = weights.clip_shares("w", jnp.array([0.2, 0.5, 1.8, 1.8]), 0.2, 1.8)
    assert {k: float(v) for k, v in shares.items()} == {"w_at_low": 0.25, "w_at_high": 0.5}
    stats = weights.weight_diagnostics("w", jnp.arange(101.0))
    assert [float(stats[f"w_p{q}"]) for q in ("05", "50", "95")] == [5.0, 50.0, 95.0]
    window = weights.finish_window({"lambda_vd_terminal_mass": 0.02, "terminal_share": 0.1,
                                    "lambda_vd_nonterminal_mass": 0.9, "nonterminal_share": 0.9})
    assert window == pytest.approx({"lambda_vd_terminal_mean": 0.2,
                                    "lambda_vd_nonterminal_mean": 1.0, "terminal_share": 0.1})
    assert np.isnan(weights.finish_window({"lambda_vd_terminal_mass": 0.0,
                                           "terminal_share": 0.0})["lambda_vd_terminal_mean"])


def test_option_methods_and_bad_options():
    assert learner_config("mabcq-vdterm1").vd_terminal == "one"
    assert learner_config("mabcq-tnclip", tn_clip=(0.1, 9.0)).tn_clip == (0.2, 1.4)
    combined = learner_config("matd3bc-combined")
    assert all(getattr(combined, key) == value
               for key, value in OPTION_METHODS["combined"].items())
    paper = learner_config("mabcq")  # the paper's reading stays the default
    assert (paper.vd_terminal, paper.tn_clip, paper.tn_self_normalize, paper.vd_guard_rel) == (
        "deviation", None, False, 0.0)
    for bad in (dict(vd_terminal="zero"), dict(tn_clip=(1.4, 0.2)), dict(vd_guard_rel=-1.0)):
        with pytest.raises(UserError):
            learner_config("mabcq", **bad)


class PaperWeights(BCQLearner):
    """The paper's weights as the update computed them before the options existed:
    w = clip(1 + (V(s')(1 - done) - E[V]) / max(|E[V]|, guard), 1 +- eps) * lambda_tn, with
    E[V] = (Q^(s, a_i) - r) / gamma as the update hands it over."""

    def sample_weights(self, settings, agent_state, batch, next_values, expected_values,
                       latent_means):
        cfg = self.config
        expected = expected_values
        scale = jnp.maximum(jnp.abs(expected), cfg.vd_guard)
        lambda_vd = 1.0 + (next_values * (1.0 - batch.dones) - expected) / scale
        lambda_vd = jax.lax.stop_gradient(jnp.clip(lambda_vd, 1.0 - cfg.optimism,
                                                   1.0 + cfg.optimism))
        return lambda_vd * batch.lambda_tn, {}


def test_default_update_is_the_papers_formula_bitwise():
    """mabcq's default path (lambda_tn table, G1/G2 frozen) trains exactly the parameters of the
    paper's formula: the options and the diagnostics add no operation to it."""
    config = learner_config("mabcq", hidden_sizes=(16, 16), batch_size=32)
    data = synthetic_dataset(0, 90, 5, 2)
    transitions = jax.tree.map(jnp.asarray, batched.dataset_transitions(data))
    size = jnp.int32(len(data))
    finals = []
    for learner in (make_learner("mabcq", config), PaperWeights(config)):
        state = batched.init_agent(learner, 3, 0, 5, 2, batched.FAST_COMPILE)
        key = batched.agent_key(3, 0)
        state, key, _ = batched.make_single_update(learner, "pretrain", 3, batched.FAST_COMPILE)(
            state, transitions, size, key)
        table = learner.transition_weights(state, transitions)
        state, key, _ = batched.make_single_update(learner, "train", 4, batched.FAST_COMPILE)(
            state, transitions, size, key, table)
        finals.append(state)
    same = jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), *finals)
    assert all(jax.tree.leaves(same))
