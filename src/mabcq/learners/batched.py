"""Every agent (and seed) in one compiled step, and the single-agent path it must agree with.

The batched step is a map of the single-agent computation over (seed, agent) pairs, nothing
more: pair p reads only states[p], keys[p] and its own agent's rows of the data. Whether the map
is a jax.vmap or a sequential jax.lax.map (cache-friendlier for 3+ agents on a CPU, see
../shared/MEASURED.md) is an implementation detail chosen by `agents_per_chunk`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mabcq.errors import UserError
from mabcq.learners.base import AgentState, Batch, Learner

INIT_STREAM = 0x1A17  # init keys: fold_in(agent key, INIT_STREAM); training uses the agent key

# XLA options that compile ~3x faster and run slower: for tests and smoke runs, never benchmarks.
FAST_COMPILE: dict[str, Any] = {"xla_backend_optimization_level": 0}


class AgentData(NamedTuple):
    """All agents' datasets on device, zero-padded to the longest."""

    transitions: Batch  # leaves [agents, T_max, ...]
    sizes: jax.Array  # [agents] int32, rows actually filled per agent


def dataset_transitions(dataset: Any) -> Batch:
    """An AgentDataset (data/schema.py) as a Batch of numpy arrays, [T, ...].

    Only true terminals stop bootstrapping; timeouts are not dones.
    """
    return Batch(
        states=np.asarray(dataset.observations, np.float32),
        actions=np.asarray(dataset.actions, np.float32),
        rewards=np.asarray(dataset.rewards, np.float32),
        next_states=np.asarray(dataset.next_observations, np.float32),
        dones=np.asarray(dataset.terminals, np.float32),
    )


def stack_agent_data(datasets: Sequence[Any]) -> AgentData:
    """Stack agents' datasets ([T_i, ...] each) into AgentData, padding to max T_i with zeros."""
    if not datasets:
        raise UserError("no agent datasets given")
    state_dims = {int(d.observations.shape[1]) for d in datasets}
    action_dims = {int(d.actions.shape[1]) for d in datasets}
    if len(state_dims) > 1 or len(action_dims) > 1:
        raise UserError(
            f"agents' datasets differ in state dims {sorted(state_dims)} or action dims "
            f"{sorted(action_dims)}; the batched step needs equal shapes: train such agents "
            "one at a time with the single-agent path"
        )
    sizes = [len(d.observations) for d in datasets]
    if min(sizes) == 0:
        raise UserError(f"an agent's dataset is empty (sizes {sizes})")
    longest = max(sizes)

    def pad(array: np.ndarray) -> np.ndarray:
        padding = [(0, longest - array.shape[0])] + [(0, 0)] * (array.ndim - 1)
        return np.pad(array, padding)

    per_agent = [dataset_transitions(d) for d in datasets]
    stacked = Batch(*(jnp.asarray(np.stack([pad(t[i]) for t in per_agent])) for i in range(5)))
    return AgentData(stacked, jnp.asarray(sizes, jnp.int32))


def agent_key(seed: int, agent_index: int) -> jax.Array:
    """Agent i's root key: fold_in(PRNGKey(seed), i). Depends on nothing about other agents."""
    return jax.random.fold_in(jax.random.PRNGKey(seed), agent_index)


def agent_keys(seed: int, n_agents: int) -> jax.Array:
    """[agents, 2]: agent_key(seed, i) for every agent (the training key stream)."""
    return jnp.stack([agent_key(seed, i) for i in range(n_agents)])


def seed_agent_keys(
    seeds: Sequence[int], n_agents: int, agent_ids: Sequence[int] | None = None
) -> jax.Array:
    """[seeds, agents, 2] training keys for make_multi_update: agent_key(seed, i) for the agents
    `agent_ids` (default all n_agents; one id trains that agent alone, as in its joint slice)."""
    ids = list(range(n_agents)) if agent_ids is None else list(agent_ids)
    return jnp.stack([jnp.stack([agent_key(seed, agent) for agent in ids]) for seed in seeds])


def init_agent(
    learner: Learner,
    seed: int,
    agent_index: int,
    state_dim: int,
    action_dim: int,
    compiler_options: dict[str, Any] | None = None,
) -> AgentState:
    """Agent i's initial state, from its own key only (same as its slice of init_agents)."""
    key = jax.random.fold_in(agent_key(seed, agent_index), INIT_STREAM)
    init = jax.jit(learner.init, static_argnums=(1, 2), compiler_options=compiler_options)
    return init(key, state_dim, action_dim)


def init_agents(
    learner: Learner,
    seeds: Sequence[int],
    n_agents: int,
    state_dim: int,
    action_dims: int | Sequence[int],
    compiler_options: dict[str, Any] | None = None,
    agent_ids: Sequence[int] | None = None,
) -> AgentState:
    """Initial states of every (seed, agent), leaves [seeds, agents, ...]; `agent_ids` as in
    seed_agent_keys (action_dims then lists those agents' dims)."""
    n_batched = n_agents if agent_ids is None else len(agent_ids)
    dims = [action_dims] * n_batched if isinstance(action_dims, int) else list(action_dims)
    if len(set(dims)) != 1 or len(dims) != n_batched:
        raise UserError(
            f"batched agents need one action dim each and all equal, got {dims} for {n_batched} "
            "agents; train such agents one at a time with the single-agent path"
        )
    init_keys = jax.vmap(jax.vmap(lambda key: jax.random.fold_in(key, INIT_STREAM)))(
        seed_agent_keys(seeds, n_agents, agent_ids)
    )
    init = jax.vmap(jax.vmap(lambda key: learner.init(key, state_dim, dims[0])))
    return jax.jit(init, compiler_options=compiler_options)(init_keys)


def make_prepare(
    learner: Learner, compiler_options: dict[str, Any] | None = None
) -> Callable[[AgentState, AgentData], AgentState]:
    """Jitted fn(states [seeds, agents, ...], data) -> states: learner.prepare of every (seed,
    agent) from its own agent's dataset. Call it once after init_agents; pair (seed, agent)
    reads only its own agent's rows (`size` masks the padding)."""

    def run(states: AgentState, data: AgentData) -> AgentState:
        def one_agent(agent_states: AgentState, agent: jax.Array) -> AgentState:
            own = jax.tree.map(lambda leaf: leaf[agent], data.transitions)
            return jax.vmap(lambda state: learner.prepare(state, own, data.sizes[agent]))(
                agent_states)

        by_agent = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), states)  # [agents, seeds, ...]
        prepared = jax.lax.map(lambda inputs: one_agent(*inputs),
                               (by_agent, jnp.arange(data.sizes.shape[0])))
        return jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), prepared)

    return jax.jit(run, compiler_options=compiler_options)


def sample_batch(key: jax.Array, batch_size: int, size: jax.Array,
                 take: Callable[[jax.Array], Batch], lambda_tn: jax.Array | None = None,
                 variant: jax.Array | None = None) -> Batch:
    """A uniform mini-batch (with replacement) of one agent's rows [0, size): `take(rows)`
    gathers its transitions, `lambda_tn` [T] its precomputed weights (or None), `variant` its
    run's row (or None). Both paths below sample through here: the single agent's [T, ...]
    leaves, and one agent's rows of all agents' [agents, T, ...] leaves."""
    rows = jax.random.randint(key, (batch_size,), 0, size)
    batch = take(rows)
    if lambda_tn is not None:
        batch = batch._replace(lambda_tn=lambda_tn[rows])
    if variant is not None:
        batch = batch._replace(variant=variant)
    return batch


StepFn = Callable[[AgentState, Batch, jax.Array], tuple[AgentState, dict[str, jax.Array]]]


def _phase_step(learner: Learner, phase: str) -> StepFn:
    if phase == "pretrain":
        return learner.pretrain_update
    if phase == "train":
        return learner.update
    raise ValueError(f"phase must be 'pretrain' or 'train', got {phase!r}")


def _run_updates(
    step: StepFn,
    agent_state: AgentState,
    key: jax.Array,
    sample: Callable[[jax.Array], Batch],
    updates: int,
) -> tuple[AgentState, jax.Array, dict[str, jax.Array]]:
    """`updates` steps of one agent, batches from `sample(key)`; metrics averaged over them."""

    def body(carry, _):
        state, key = carry
        key, batch_key, update_key = jax.random.split(key, 3)
        state, metrics = step(state, sample(batch_key), update_key)
        return (state, key), metrics

    (agent_state, key), metrics = jax.lax.scan(body, (agent_state, key), None, length=updates)
    return agent_state, key, jax.tree.map(lambda m: jnp.mean(m, axis=0), metrics)


def make_single_update(
    learner: Learner,
    phase: Literal["pretrain", "train"],
    updates_per_call: int,
    compiler_options: dict[str, Any] | None = None,
) -> Callable[..., tuple[AgentState, jax.Array, dict[str, jax.Array]]]:
    """Jitted fn(agent_state, transitions [T, ...], size, key, lambda_tn=None)
    -> (state, key, metrics).

    One agent trained from its own data alone: what a real decentralized deployment runs.
    lambda_tn: optional [T] table from learner.transition_weights (see make_transition_weights).
    """
    step = _phase_step(learner, phase)
    batch_size = learner.config.batch_size

    def run(agent_state, transitions, size, key, lambda_tn=None):
        def sample(batch_key):
            return sample_batch(batch_key, batch_size, size,
                                lambda rows: jax.tree.map(lambda leaf: leaf[rows], transitions),
                                lambda_tn)

        return _run_updates(step, agent_state, key, sample, updates_per_call)

    return jax.jit(run, compiler_options=compiler_options)


def make_transition_weights(
    learner: Learner, compiler_options: dict[str, Any] | None = None
) -> Callable[[AgentState, AgentData], jax.Array | None]:
    """Jitted fn(states [seeds, agents, ...], data) -> lambda_tn table [seeds, agents, T_max],
    or None when the learner has no per-transition constant weights (not MABCQ with frozen
    G1/G2). Call it once after the pretrain phase. Pair (seed, agent) reads only its own
    agent's rows and its own G1/G2; padded rows get values that are never sampled.
    """

    def run(states: AgentState, data: AgentData):
        n_seeds, n_agents = states.step.shape[0], data.sizes.shape[0]
        flat_states = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), states)
        agent_index = jnp.tile(jnp.arange(n_agents), n_seeds)

        def one_pair(inputs):
            state, agent = inputs
            own = jax.tree.map(lambda leaf: leaf[agent], data.transitions)
            return learner.transition_weights(state, own)

        probe = jax.eval_shape(
            lambda: learner.transition_weights(
                jax.tree.map(lambda x: x[0, 0], states),
                jax.tree.map(lambda leaf: leaf[0], data.transitions),
            )
        )
        if probe is None:
            return None
        table = jax.lax.map(one_pair, (flat_states, agent_index))
        return table.reshape(n_seeds, n_agents, -1)

    return jax.jit(run, compiler_options=compiler_options)


def default_chunk(pairs: int, backend: str | None = None) -> int:
    """(seed, agent) pairs vmapped together per lax.map step.

    CPU: all of them up to 2, else 1 (../shared/MEASURED.md: vmapping 3+ agents' [agents, 10240,
    64] activations falls out of the CPU caches and gets superlinear; a sequential map stays
    linear). GPU/TPU: all pairs in one vmap (1.5-3.5x faster than lax.map chunks on an H100).
    backend: jax.default_backend() when None.
    """
    if (backend or jax.default_backend()) != "cpu":
        return pairs
    return pairs if pairs <= 2 else 1


def make_multi_update(
    learner: Learner,
    phase: Literal["pretrain", "train"],
    updates_per_call: int,
    agents_per_chunk: int | None = None,
    donate: bool = False,
    compiler_options: dict[str, Any] | None = None,
) -> Callable[..., tuple[AgentState, jax.Array, dict[str, jax.Array]]]:
    """Jitted fn(states [seeds, agents, ...], data: AgentData, keys [seeds, agents, 2],
    lambda_tn=None, variants=None) -> (states, keys, metrics {name: [seeds, agents]} averaged
    over the call).

    lambda_tn: optional [seeds, agents, T_max] table from make_transition_weights, computed once
    after pretraining; MABCQ then skips its two encoder passes per update (same numbers).
    variants: optional [seeds, len(weighting.VARIANT_FIELDS)] (which weights, eps, the weights'
    options: weighting.variant_row) per row of the leading axis (then a "run": one method and
    seed), handed to every batch of that run's agents (Batch.variant), so the methods of one
    weighted family in a grid train in this one step.

    agents_per_chunk: how many (seed, agent) pairs are vmapped together; chunks run one after
    another (jax.lax.map). None: default_chunk. donate: donate states/keys buffers (the caller
    must then not reuse the arrays it passed in). compiler_options: e.g. FAST_COMPILE.
    """
    step = _phase_step(learner, phase)
    batch_size = learner.config.batch_size

    def run(states, data: AgentData, keys, lambda_tn=None, variants=None):
        n_seeds, n_agents = keys.shape[0], keys.shape[1]
        pairs = n_seeds * n_agents
        chunk = agents_per_chunk or default_chunk(pairs)
        flat_states = jax.tree.map(lambda x: x.reshape((pairs,) + x.shape[2:]), states)
        flat_keys = keys.reshape(pairs, -1)
        agent_index = jnp.tile(jnp.arange(n_agents), n_seeds)
        pair_index = jnp.arange(pairs)
        flat_tn = None if lambda_tn is None else lambda_tn.reshape(pairs, -1)
        flat_variants = None if variants is None else jnp.repeat(variants, n_agents, axis=0)

        def one_pair(inputs):
            state, key, agent, pair = inputs

            def sample(batch_key):
                # Only agent `agent`'s rows are read: gather (agent, row) pairs directly.
                return sample_batch(
                    batch_key, batch_size, data.sizes[agent],
                    lambda rows: jax.tree.map(lambda leaf: leaf[agent, rows], data.transitions),
                    None if flat_tn is None else flat_tn[pair],
                    None if flat_variants is None else flat_variants[pair])

            return _run_updates(step, state, key, sample, updates_per_call)

        inputs = (flat_states, flat_keys, agent_index, pair_index)
        if chunk >= pairs:
            out = jax.vmap(one_pair)(inputs)
        else:
            out = jax.lax.map(one_pair, inputs, batch_size=chunk if chunk > 1 else None)
        new_states, new_keys, metrics = out

        def unflatten(x):
            return x.reshape((n_seeds, n_agents) + x.shape[1:])

        return (
            jax.tree.map(unflatten, new_states),
            unflatten(new_keys),
            jax.tree.map(unflatten, metrics),
        )

    donated = (0, 2) if donate else ()
    return jax.jit(run, donate_argnums=donated, compiler_options=compiler_options)
