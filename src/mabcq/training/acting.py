"""A BCQ-family policy taken apart: its final evaluation re-run with parts of pi_i switched off.

BCQ's policy (and so MABCQ's) acts in three steps: draw n actions from G1, perturb each by xi_i
(at most Phi), keep the one the first critic scores highest. Which step gains or loses the return
is not visible from the return alone: a method can lose to Behavior because G1 is poor, because
the critic picks badly among G1's candidates, or because xi moves the actions where the critic
is wrong. Each variant below changes n or Phi only, and re-runs the cell's own final evaluation
(the same simulator seeds and the same key streams: training.evaluator), so `policy` reproduces
the recorded return exactly and every other variant differs from it in that one respect:

    policy    n = the policy's (10), Phi = the policy's (0.05): the evaluated policy itself
    g1        n = 1, Phi = 0: one sample of G1 (the generative model alone)
    argmax    n = the policy's, Phi = 0: the critic's choice among G1's candidates, no xi
    perturb   n = 1, Phi = the policy's: xi on one G1 sample, no choice by the critic

Each agent still acts from its own parameters and its own key stream (decentralized).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# variant -> (n_candidates, perturbation_scale); None keeps the policy's own value.
VARIANTS: dict[str, tuple[int | None, float | None]] = {
    "policy": (None, None),
    "g1": (1, 0.0),
    "argmax": (None, 0.0),
    "perturb": (1, None),
}


@dataclass(frozen=True)
class VariantResult:
    """One variant's evaluation: its settings, the mean return and length over the episodes."""

    variant: str
    candidates: int
    perturbation_scale: float
    episodes: int
    mean_return: float
    mean_length: float


def variant_config(config: Any, variant: str) -> Any:
    """The policy's learner config with the variant's n and Phi (others unchanged)."""
    candidates, scale = VARIANTS[variant]
    return dataclasses.replace(
        config,
        n_candidates=config.n_candidates if candidates is None else candidates,
        perturbation_scale=config.perturbation_scale if scale is None else scale)


def is_bcq_policy(policy: Any) -> bool:
    """True for a policy whose pi_i is BCQ's (n candidates from G1, xi, the critic's choice)."""
    from mabcq.learners.bcq import BCQLearner

    return isinstance(policy.learner, BCQLearner)


@functools.lru_cache(maxsize=16)
def _compiled_act(method: str, config: Any, fast_compile: bool) -> Any:
    """The jitted lockstep act of every agent (the training loop's evaluation step, with its
    compile options), kept per (method, config): cells of one method compile it once."""
    import jax

    from mabcq.learners.batched import FAST_COMPILE
    from mabcq.learners.registry import make_learner
    from mabcq.training.evaluator import lockstep_actions

    learner = make_learner(method, config)
    return jax.jit(lambda states, obs, keys, step: lockstep_actions(
        learner.act, states, obs, keys, step),
        compiler_options=FAST_COMPILE if fast_compile else None)


def evaluate_variants(task: Any, policies: Sequence[Any], seed: int, update: int,
                      episodes: int, variants: Sequence[str] = tuple(VARIANTS),
                      max_steps: int | None = None, gamma: float = 0.99,
                      fast_compile: bool = False) -> list[VariantResult]:
    """Re-run the evaluation at `update` of training seed `seed` (its simulator seeds and keys)
    once per variant, with the agents' policies (one Policy per agent, BCQ-family, the same
    method, global states, one shape) acting together. fast_compile: the run's own setting
    (TrainConfig.fast_compile), so the acting program is compiled as the run's was. Returns one
    VariantResult per variant."""
    import jax
    import jax.numpy as jnp

    from mabcq.envs.lockstep import LockstepEnvs
    from mabcq.training.evaluation import evaluation_env_seed, evaluation_key

    unknown = [name for name in variants if name not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; known: {list(VARIANTS)}")
    first = policies[0]
    # [runs=1, agents, ...]: the layout the training loop's evaluation acts on.
    states = jax.tree.map(lambda *leaves: jnp.stack(leaves)[None],
                          *[policy.agent_state for policy in policies])
    keys = jnp.stack([evaluation_key(seed, update)])
    env_seeds = [evaluation_env_seed(seed, update)]
    envs = LockstepEnvs(task, 1, episodes)
    results = []
    try:
        for name in variants:
            config = variant_config(first.config, name)
            act_all = _compiled_act(first.method, config, fast_compile)

            def act(observations: np.ndarray, step: int, act_all: Any = act_all) -> np.ndarray:
                return np.asarray(act_all(states, np.asarray(observations, np.float32), keys,
                                          np.int32(step)))

            rollout = envs.run(act, env_seeds, gamma=gamma, max_steps=max_steps)[0]
            results.append(VariantResult(
                name, int(config.n_candidates), float(config.perturbation_scale), episodes,
                float(np.mean(rollout.episode_returns)), float(np.mean(rollout.episode_lengths))))
    finally:
        envs.close()
    return results
