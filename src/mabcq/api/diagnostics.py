"""The paper's diagnostics from the Python API (docs/api.md): value difference (Figure 3),
extrapolation error (Table 5) and the two importance weights (lambda_vd, lambda_tn) of a fit, over
the same functions `mabcq train` logs them with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from mabcq.data.schema import AgentDataset
from mabcq.errors import UserError

if TYPE_CHECKING:
    import jax

    from mabcq.api import Evaluation, FitResult
    from mabcq.learners.export import Policy


def value_difference(policies: Sequence[Policy],
                     states: np.ndarray | Sequence[np.ndarray] | Sequence[AgentDataset], *,
                     samples: int = 1000, seed: int = 0,
                     key: jax.Array | None = None) -> float:
    """The paper's Figure 3: mean over states of max_i V_i(s) - min_i V_i(s), with
    V_i(s) = Q_i(s, pi_i(s)) of agent i's own policy. 0 when the agents agree on every state.

    states: [B, S] states, or the agents' datasets: then a fixed seeded sample of `samples`
        states of their union (as training's diagnostic draws it). Policies trained on local
        observations: one [B, O_i] array per agent, each agent's own view of the same B states
        (e.g. `Evaluation.agent_observations()`; a dataset holds one agent's view only).
    key: the PRNG key of the policies' action sampling (default PRNGKey(seed)); agent i uses
        fold_in(key, i).
    """
    import jax

    from mabcq.training.evaluation import (
        agent_values,
        policies_observation_spec,
        sample_union_states,
    )
    from mabcq.training.evaluation import value_difference as spread

    local = policies_observation_spec(list(policies)).is_local
    if len(states) and isinstance(states[0], AgentDataset):
        if local:
            raise UserError("value_difference: these policies read local observations and each "
                            "dataset holds one agent's view only; pass one [B, O_i] array per "
                            "agent (e.g. Evaluation.agent_observations())")
        states = sample_union_states(list(states), samples, seed)
    per_agent = ([np.asarray(part, np.float32) for part in states]
                 if isinstance(states, list | tuple) else np.asarray(states, np.float32))
    if local and not isinstance(per_agent, list):
        raise UserError("value_difference: policies on local observations need one [B, O_i] "
                        "array per agent")
    key = jax.random.PRNGKey(seed) if key is None else key
    values = agent_values(lambda policy, obs, agent_key: policy.value(obs, agent_key),
                          list(policies), per_agent, key)
    return spread(values)


def extrapolation_error(policies: Sequence[Policy], evaluation: Evaluation, *,
                        min_steps_left: int = 300, all_states: bool = False) -> float:
    """The paper's Table 5: mean over the evaluation's states of |(1/N) sum_i Q_i(s, a_i) - R|,
    a_i agent i's own executed action and R the discounted Monte-Carlo return-to-go.

    Only states whose return is (nearly) the true value count: every state of an episode that
    ended in a true terminal, and states of cut episodes with at least `min_steps_left` steps
    left (NaN when there are none); all_states=True uses every state (it overstates the error
    near a cut). docs/training.md explains the truncation caveat.
    """
    from mabcq.envs.observations import observer_for
    from mabcq.envs.tasks import get_task
    from mabcq.training.evaluation import policies_observation_spec, rollout_diagnostics

    observer = observer_for(evaluation.task, policies_observation_spec(list(policies)))
    row = rollout_diagnostics(lambda policy, states, actions: policy.q_value(states, actions),
                              list(policies), evaluation.rollout, get_task(evaluation.task),
                              min_steps_left, observer)
    return row["extrapolation_error_all_states" if all_states else "extrapolation_error"]


LAMBDA_COLUMNS = ("lambda_vd_mean", "lambda_vd_min", "lambda_vd_max", "lambda_vd_at_clip",
                  "lambda_tn_mean", "lambda_tn_min", "lambda_tn_max",
                  "lambda_tn_data_in_paper_range", "lambda_tn_data_p05",
                  "lambda_tn_data_median", "lambda_tn_data_p95",
                  # the weights' per-batch diagnostics (issue 19; docs/training.md)
                  "lambda_vd_p05", "lambda_vd_p50", "lambda_vd_p95", "lambda_vd_ess",
                  "lambda_vd_at_low", "lambda_vd_at_high", "lambda_vd_terminal_mean",
                  "lambda_vd_nonterminal_mean", "terminal_share", "lambda_tn_p05",
                  "lambda_tn_p50", "lambda_tn_p95", "lambda_tn_ess", "lambda_tn_at_low",
                  "lambda_tn_at_high", "weight_mean", "weight_ess")


def lambda_statistics(result: FitResult, method: str | None = None,
                      seed: int | None = None) -> dict[str, np.ndarray]:
    """The importance weights over training, per evaluation (columns [rows], as `table`):
    lambda_vd_* and lambda_tn_* over the window's batches (mean of means, min of mins, max of
    maxes; lambda_vd_at_clip: share at the 1 +- eps clip) and lambda_tn on a fixed sample of
    each agent's own transitions (share in the paper's [0.2, 1.4], 5/50/95% quantiles), and
    the per-batch diagnostics (quantiles, effective sample size, shares at each clip, lambda_vd
    on terminal vs other transitions). Columns of a weight the method does not use are absent.
    Plus "update" and "seed"."""
    table = result.table(method, seed)
    return {name: values for name, values in table.items()
            if name in ("update", "seed", *LAMBDA_COLUMNS)}


def lambda_tn_values(result: FitResult, dataset: AgentDataset, *, method: str | None = None,
                     seed: int | None = None, chunk: int = 4096) -> np.ndarray:
    """lambda_tn = phi(mu1) / phi(mu2) of every transition (s, a_i, s') of one agent's OWN
    dataset, [T], from that agent's final G1 and G2 (the weight MABCQ's update uses; the
    paper reports it in [0.2, 1.4]). Only for methods with lambda_tn (mabcq, mabcq-no-vd)."""
    import jax
    import jax.numpy as jnp

    from mabcq.learners.registry import make_learner
    from mabcq.training.config import cell_learner_config
    from mabcq.training.evaluation import lambda_tn_values as lambda_tn

    method = result._method(method)
    cell_config = cell_learner_config(result.config, method)
    learner = make_learner(method, cell_config)
    if not learner.config.use_tn:
        raise UserError(f"method {method!r} does not use lambda_tn")
    agent = int(dataset.metadata["agent"])
    agent_state = result.agent_state(agent, method, seed)
    fn = jax.jit(lambda state, s, a, s2: lambda_tn(learner, state, s, a, s2))
    arrays = (dataset.observations, dataset.actions, dataset.next_observations)
    values = []
    for start in range(0, len(dataset), chunk):
        part = [array[start:start + chunk] for array in arrays]
        rows = part[0].shape[0]
        padded = [np.concatenate([a, np.repeat(a[-1:], chunk - rows, axis=0)]) for a in part]
        values.append(np.asarray(fn(agent_state, *map(jnp.asarray, padded)))[:rows])
    return np.concatenate(values)
