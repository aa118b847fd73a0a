"""Flax modules shared by every learner and by the SAC behavior policies."""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

# How every Dense layer's parameters start: "flax" (Flax's default: kernel LeCun-normal, bias 0)
# or "torch" (PyTorch's nn.Linear default, which BCQ's and d3rlpy's code use: kernel and bias
# both ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))). LearnerConfig.weight_init chooses (docs/learners.md).
INITS = ("flax", "torch")


def _torch_uniform(fan_in: int):
    bound = 1.0 / math.sqrt(fan_in)

    def init(key: jax.Array, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def dense(width: int, init: str, fan_in: int, **kwargs) -> nn.Dense:
    """A Dense layer started as `init` (one of INITS) says; fan_in: the inputs of the whole
    linear map (for a layer split over several inputs, their total, as one nn.Linear over the
    concatenation)."""
    if init == "flax":
        return nn.Dense(width, **kwargs)
    if init == "torch":
        uniform = _torch_uniform(fan_in)
        return nn.Dense(width, kernel_init=uniform, bias_init=uniform, **kwargs)
    raise ValueError(f"init must be one of {INITS}, got {init!r}")


class MLP(nn.Module):
    """Fully connected ReLU network: [..., in] -> [..., output_dim].

    The paper uses (64, 64) hidden layers for every network (Table 8).
    """

    hidden_sizes: Sequence[int]
    output_dim: int
    weight_init: str = "flax"

    @nn.compact
    def __call__(self, inputs: jax.Array) -> jax.Array:
        hidden = inputs
        for width in self.hidden_sizes:
            hidden = nn.relu(dense(width, self.weight_init, hidden.shape[-1])(hidden))
        return dense(self.output_dim, self.weight_init, hidden.shape[-1])(hidden)


class PairMLP(nn.Module):
    """MLP over the concatenation [first, second]: [..., F] x [..., E] -> [..., output_dim].

    The first layer is computed as Dense(first) + Dense(second), which equals one Dense over the
    concatenation but lets `first` broadcast: one state [B, 1, S] against its n candidate actions
    [B, n, A] costs the state's share of the first layer once, not n times.
    """

    hidden_sizes: Sequence[int]
    output_dim: int
    weight_init: str = "flax"

    @nn.compact
    def __call__(self, first: jax.Array, second: jax.Array) -> jax.Array:
        width, fan_in = self.hidden_sizes[0], first.shape[-1] + second.shape[-1]
        hidden = dense(width, self.weight_init, fan_in, name="first_in")(first)
        hidden = nn.relu(hidden + dense(width, self.weight_init, fan_in, use_bias=False,
                                        name="second_in")(second))
        for width in self.hidden_sizes[1:]:
            hidden = nn.relu(dense(width, self.weight_init, hidden.shape[-1])(hidden))
        return dense(self.output_dim, self.weight_init, hidden.shape[-1])(hidden)


class TwinCritic(nn.Module):
    """`num_heads` independent Q networks in one module: ([..., S], [..., A]) -> [heads, ...].

    The heads' parameters are stacked on a leading axis (nn.vmap), so one batched matmul per layer
    evaluates both critics of BCQ's clipped double-Q.
    """

    hidden_sizes: Sequence[int]
    num_heads: int = 2
    weight_init: str = "flax"

    @nn.compact
    def __call__(self, states: jax.Array, actions: jax.Array) -> jax.Array:
        """states [..., S] may broadcast against actions [..., A] (e.g. [B, 1, S], [B, n, A])."""
        heads = nn.vmap(
            PairMLP,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=0,
            axis_size=self.num_heads,
        )(self.hidden_sizes, 1, self.weight_init)
        return heads(states, actions)[..., 0]


class Perturbation(nn.Module):
    """BCQ's perturbation xi(s, a): returns the perturbed action clip(a + xi, bounds), [..., A].

    xi = Phi * max_action * tanh(MLP([s, a])) lies in [-Phi, Phi] * max_action.
    """

    hidden_sizes: Sequence[int]
    action_dim: int
    max_action: float
    scale: float  # Phi
    weight_init: str = "flax"

    @nn.compact
    def __call__(self, states: jax.Array, actions: jax.Array) -> jax.Array:
        raw = PairMLP(self.hidden_sizes, self.action_dim, self.weight_init)(states, actions)
        perturbation = self.scale * self.max_action * jnp.tanh(raw)
        return jnp.clip(actions + perturbation, -self.max_action, self.max_action)


class DeterministicActor(nn.Module):
    """DDPG's actor: [..., S] -> max_action * tanh(MLP(s)), [..., A]."""

    hidden_sizes: Sequence[int]
    action_dim: int
    max_action: float
    weight_init: str = "flax"

    @nn.compact
    def __call__(self, states: jax.Array) -> jax.Array:
        return self.max_action * jnp.tanh(
            MLP(self.hidden_sizes, self.action_dim, self.weight_init)(states))


class TanhGaussianActor(nn.Module):
    """SAC's policy (as CQL uses it): [..., S] -> (mean, log_std), each [..., A], of the Gaussian
    whose sample u gives the action max_action * tanh(u).

    Two heads on one ReLU trunk, as rlkit's TanhGaussianPolicy; log_std clamped to [-20, 2] (its
    bounds). The mean head is the last `Dense_k`, so common.output_dim reads A from it.
    """

    hidden_sizes: Sequence[int]
    action_dim: int
    weight_init: str = "flax"

    @nn.compact
    def __call__(self, states: jax.Array) -> tuple[jax.Array, jax.Array]:
        hidden = states
        for width in self.hidden_sizes:
            hidden = nn.relu(dense(width, self.weight_init, hidden.shape[-1])(hidden))
        mean = dense(self.action_dim, self.weight_init, hidden.shape[-1])(hidden)
        log_std = dense(self.action_dim, self.weight_init, hidden.shape[-1], name="log_std")(hidden)
        return mean, jnp.clip(log_std, -20.0, 2.0)


class ConditionalVAE(nn.Module):
    """Conditional VAE of an action given a condition: G1 (condition s) or G2 (condition [s, s']).

    encode: ([..., C], [..., A]) -> (mean, log_std), each [..., latent]
    decode: ([..., C], [..., latent]) -> action in [-max_action, max_action], [..., A]
    """

    hidden_sizes: Sequence[int]
    action_dim: int
    latent_dim: int
    max_action: float
    weight_init: str = "flax"

    def setup(self) -> None:
        self.encoder = PairMLP(self.hidden_sizes, 2 * self.latent_dim, self.weight_init)
        self.decoder = PairMLP(self.hidden_sizes, self.action_dim, self.weight_init)

    def encode(self, conditions: jax.Array, actions: jax.Array) -> tuple[jax.Array, jax.Array]:
        out = self.encoder(conditions, actions)
        mean, log_std = jnp.split(out, 2, axis=-1)
        return mean, jnp.clip(log_std, -4.0, 15.0)  # BCQ's clamp keeps std finite

    def decode(self, conditions: jax.Array, latents: jax.Array) -> jax.Array:
        """conditions [..., C] may broadcast against latents [..., latent]."""
        out = self.decoder(conditions, latents)
        return self.max_action * jnp.tanh(out)

    def __call__(
        self, conditions: jax.Array, actions: jax.Array, noise: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Reconstruction with the reparameterized latent mean + std * noise; used for init."""
        mean, log_std = self.encode(conditions, actions)
        reconstruction = self.decode(conditions, mean + jnp.exp(log_std) * noise)
        return reconstruction, mean, log_std
