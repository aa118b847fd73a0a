"""LearnerConfig.weight_init: Flax's default (unchanged parameters) or PyTorch's nn.Linear
default (BCQ's and d3rlpy's), for the cross-check against d3rlpy (issue 17)."""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mabcq.api import make_config
from mabcq.errors import UserError
from mabcq.learners.registry import learner_config, make_learner
from mabcq.nets import MLP, PairMLP


def _layers(params):
    return {jax.tree_util.keystr(path): np.asarray(leaf)
            for path, leaf in jax.tree_util.tree_leaves_with_path(params)}


def test_flax_init_is_flax_dense_default():
    """The default builds exactly the parameters of plain nn.Dense layers."""

    class Plain(nn.Module):
        @nn.compact
        def __call__(self, x):
            hidden = nn.relu(nn.Dense(8)(x))
            return nn.Dense(3)(hidden)

    inputs = jnp.ones((1, 5))
    ours = MLP((8,), 3).init(jax.random.PRNGKey(1), inputs)
    plain = Plain().init(jax.random.PRNGKey(1), inputs)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), ours, plain))


def test_torch_init_is_uniform_in_one_over_sqrt_fan_in():
    """Kernel and bias ~ U(+-1/sqrt(fan_in)); a layer split over (first, second) counts both
    inputs, as one nn.Linear over their concatenation."""
    params = PairMLP((256, 256), 4, "torch").init(
        jax.random.PRNGKey(0), jnp.ones((1, 17)), jnp.ones((1, 6)))
    layers = _layers(params)
    bounds = {"first_in": 1 / np.sqrt(23), "second_in": 1 / np.sqrt(23),
              "Dense_0": 1 / np.sqrt(256), "Dense_1": 1 / np.sqrt(256)}
    for name, values in layers.items():
        bound = next(b for layer, b in bounds.items() if f"'{layer}'" in name)
        assert np.abs(values).max() <= bound
        if values.size >= 256:  # uniform: the spread fills the bound, std = bound / sqrt(3)
            assert np.abs(values).max() > 0.95 * bound
            assert abs(values.std() - bound / np.sqrt(3)) < 0.1 * bound
    assert np.abs(layers["['params']['first_in']['bias']"]).max() > 0  # bias not zero


@pytest.mark.parametrize("method", ["mabcq", "bcq", "ddpg", "behavior", "cql", "td3bc"])
def test_every_network_of_a_learner_follows_weight_init(method):
    assert learner_config(method).weight_init == "torch"  # the default since issue 17
    state = make_learner(method, learner_config(method)).init(jax.random.PRNGKey(0), 11, 3)
    biases = [values for name, values in _layers(state.params).items() if name.endswith(
        "['bias']")]
    assert biases and all(np.abs(b).max() > 0 for b in biases)  # Flax would start them at 0
    config = dataclasses.replace(learner_config(method), weight_init="flax")
    flax_state = make_learner(method, config).init(jax.random.PRNGKey(0), 11, 3)
    flax_biases = [values for name, values in _layers(flax_state.params).items()
                   if name.endswith("['bias']")]
    assert all(np.abs(b).max() == 0 for b in flax_biases)


def _encoder_out(state):
    return _layers(state.params)["['vae1']['params']['encoder']['Dense_1']['kernel']"].shape[-1]


@pytest.mark.parametrize("method", ["mabcq", "mabcq-no-tn", "mabcq-no-vd", "bcq"])
def test_grid_base_latent_is_twice_the_action_and_the_literal_family_keeps_ten(method):
    """Issue 17's decision: the BCQ family's latent is 2 x the action size (BCQ's code); the
    bcq-latent10 family (mabcq-latent10, ...) keeps Table 8's 10 whatever config it is given."""
    key = jax.random.PRNGKey(0)
    base = make_learner(method, learner_config(method)).init(key, 11, 3)
    assert _encoder_out(base) == 2 * (2 * 3)  # mean and log-std of a latent of 2 x 3
    literal = method.replace("bcq", "bcq-latent10")
    assert learner_config(literal).latent_dim == 10
    state = make_learner(literal, learner_config(method)).init(key, 11, 3)
    assert _encoder_out(state) == 2 * 10
    assert learner_config(literal).use_vd == learner_config(method).use_vd
    assert learner_config(literal).use_tn == learner_config(method).use_tn


def test_unknown_weight_init_is_a_user_error():
    with pytest.raises(UserError, match="weight_init must be one of flax, torch"):
        learner_config("bcq", weight_init="xavier")
    with pytest.raises(UserError, match="weight_init must be one of flax, torch"):
        make_config("hopper-3x1", "bcq", preset="smoke", weight_init="xavier")
