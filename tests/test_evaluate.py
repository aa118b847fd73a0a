"""The paper's diagnostics on hand-made inputs: value difference (Figure 3), extrapolation error
(Table 5) and which Monte-Carlo returns count as true values."""

import numpy as np
import pytest

from mabcq.data.schema import AgentDataset
from mabcq.training.evaluation import (
    evaluation_env_seed,
    extrapolation_error,
    make_agent_policies,
    sample_union_states,
    steps_left,
    trusted_return_mask,
    value_difference,
)


def test_value_difference_is_mean_of_max_minus_min_over_agents() -> None:
    values = np.array([[1.0, 5.0, -2.0], [3.0, 5.0, 0.0], [2.0, 4.0, 1.0]])  # [agents, states]
    # per state: 3-1=2, 5-4=1, 1-(-2)=3 -> mean 2
    assert value_difference(values) == pytest.approx(2.0)
    assert value_difference(np.ones((2, 4))) == 0.0


def test_value_difference_rejects_empty() -> None:
    with pytest.raises(ValueError):
        value_difference(np.zeros((2, 0)))


def test_extrapolation_error_averages_agents_then_compares_with_return() -> None:
    q_values = np.array([[10.0, 0.0, 4.0], [20.0, 2.0, 4.0]])  # mean over agents: 15, 1, 4
    returns = np.array([12.0, 3.0, 100.0])
    mask = np.array([True, True, False])
    assert extrapolation_error(q_values, returns, mask) == pytest.approx((3.0 + 2.0) / 2)
    assert extrapolation_error(q_values, returns, np.ones(3, bool)) == pytest.approx(101.0 / 3)
    assert np.isnan(extrapolation_error(q_values, returns, np.zeros(3, bool)))


def test_steps_left_counts_down_per_episode() -> None:
    np.testing.assert_array_equal(steps_left(np.array([3, 2])), [3, 2, 1, 2, 1])


def test_trusted_mask_keeps_terminated_episodes_and_long_tails_of_cut_ones() -> None:
    lengths = np.array([3, 4])
    # episode 0 ends in a true terminal; episode 1 is cut by the step limit
    terminals = np.array([False, False, True, False, False, False, False])
    mask = trusted_return_mask(lengths, terminals, min_steps_left=3)
    np.testing.assert_array_equal(mask, [True, True, True, True, True, False, False])


def test_union_sample_is_seeded_and_draws_from_every_agent() -> None:
    def dataset(value: float, rows: int) -> AgentDataset:
        observations = np.full((rows, 2), value, np.float32)
        zeros = np.zeros(rows, np.float32)
        return AgentDataset(observations, np.zeros((rows, 1), np.float32), zeros, observations,
                            zeros.astype(bool), zeros.astype(bool))

    datasets = [dataset(0.0, 50), dataset(1.0, 150)]
    first = sample_union_states(datasets, 100, seed=3)
    np.testing.assert_array_equal(first, sample_union_states(datasets, 100, seed=3))
    assert first.shape == (100, 2)
    share_of_agent_1 = float((first[:, 0] == 1.0).mean())
    assert 0.6 < share_of_agent_1 < 0.9  # 150 of 200 states are agent 1's
    assert not np.array_equal(first, sample_union_states(datasets, 100, seed=4))


def test_agent_policies_use_own_state_and_fresh_keys() -> None:
    import jax

    seen = []

    def act(agent_state, observations, key):
        seen.append((agent_state, tuple(np.asarray(jax.random.key_data(key)
                                                   if key.dtype != np.uint32 else key))))
        return np.full((observations.shape[0], 1), agent_state, np.float32)

    policies = make_agent_policies(act, [7.0, 9.0], jax.random.PRNGKey(0))
    observations = np.zeros((2, 3), np.float32)
    np.testing.assert_array_equal(policies[0](observations), [[7.0], [7.0]])
    np.testing.assert_array_equal(policies[1](observations), [[9.0], [9.0]])
    policies[0](observations)
    keys = [key for _, key in seen]
    assert len(set(keys)) == 3  # other agent, and a new key per call


def test_evaluation_seed_depends_on_seed_and_update() -> None:
    assert evaluation_env_seed(0, 100) == evaluation_env_seed(0, 100)
    assert evaluation_env_seed(0, 100) != evaluation_env_seed(0, 200)
    assert evaluation_env_seed(0, 100) != evaluation_env_seed(1, 100)
