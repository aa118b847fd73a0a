"""Flax modules shared by every learner and by the SAC behavior policies."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax


class MLP(nn.Module):
    """Fully connected ReLU network: [..., in] -> [..., output_dim].

    The paper uses (64, 64) hidden layers for every network (Table 8).
    """

    hidden_sizes: Sequence[int]
    output_dim: int

    @nn.compact
    def __call__(self, inputs: jax.Array) -> jax.Array:
        hidden = inputs
        for width in self.hidden_sizes:
            hidden = nn.relu(nn.Dense(width)(hidden))
        return nn.Dense(self.output_dim)(hidden)
