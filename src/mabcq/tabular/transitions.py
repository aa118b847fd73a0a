"""Each agent's view of the dynamics, and that view modified by the paper's importance weights.

An agent sees only its own tuples (s, a_i, r, s', done), so its transition estimate
P_Bi(s'|s, a_i) = num(s, a_i, s') / sum_x num(s, a_i, x) (section 3.1) bakes in the behavior
policies of the other agents. The weights (section 3.2) reshape it:
- transition normalization (3.2.2): lambda_tn = 1 / (P_Bi(s'|s,a_i) z_tn), z_tn the number of
  distinct s' seen after (s, a_i); P_Bi lambda_tn is uniform over the observed next states;
- value deviation (3.2.1): lambda_vd = 1 + (y(s') - E[y]) / |E[y]|, E under the current
  (for tn+vd: the normalized) transition;
- P~ = P lambda_tn lambda_vd / z (3.2.3), z normalizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Method names; the first is the dataset's own transition (plain independent Q-learning, "BCQ").
METHODS: tuple[str, ...] = ("dataset", "vd", "tn", "tn_vd")
METHOD_ALIASES: dict[str, str] = {"none": "dataset", "bcq": "dataset", "tn+vd": "tn_vd"}

# |E[y]| at or below this makes lambda_vd undefined; those (s, a_i) keep lambda_vd = 1.
DEGENERATE_EXPECTATION = 1e-9


@dataclass(frozen=True)
class AgentView:
    """What one agent knows: the MDP as estimated from its own dataset B_i.

    transition: float [S, A_i, S], P_Bi(s'|s, a_i); zero rows where (s, a_i) has no data.
    support: bool [S, A_i], (s, a_i) occurs in B_i (batch-constrained: only these are learned).
    reward: float [S], R(s') as observed on arrival (0 for states never reached in B_i).
    terminal: bool [S], s' observed with done = True.
    """

    transition: np.ndarray
    support: np.ndarray
    reward: np.ndarray
    terminal: np.ndarray

    @property
    def num_states(self) -> int:
        return int(self.transition.shape[0])

    @property
    def num_actions(self) -> int:
        return int(self.transition.shape[1])


@dataclass(frozen=True)
class ModifiedTransition:
    """The transition an agent backs up with, and the weights that made it.

    probabilities: float [S, A_i, S], P~ (zero rows where unsupported).
    lambda_vd, lambda_tn: float [S, A_i, S] (1 where not used).
    degenerate: bool [S, A_i], |E[y]| ~ 0 there, so value deviation was left out (lambda_vd = 1).
    """

    probabilities: np.ndarray
    lambda_vd: np.ndarray
    lambda_tn: np.ndarray
    degenerate: np.ndarray


@dataclass(frozen=True)
class WeightOptions:
    """The deep learner's estimator options (config.BaseLearnerConfig, issue 19) in the exact
    engine; the defaults are the paper's reading and change nothing.

    vd_terminal "one": lambda_vd = 1 where s' is terminal. In a one-step game every s' is
    terminal, so this switches value deviation off entirely there (Tables 3 and 4 need it on
    the payoff, which is the terminal s' value y(s') = R(s')).
    tn_clip (low, high): lambda_tn clipped, then P lambda_tn renormalized per (s, a_i) (z_i).
    tn_self_normalize: lambda_tn divided by its mean over the agent's data; a constant factor,
    which z_i's normalization per (s, a_i) removes: a no-op here by construction.
    vd_guard_rel: |E[y]| floored at this times the mean |E[y]| over the agent's supported
    (s, a_i) (the exact engine's "batch").
    """

    vd_terminal: str = "deviation"
    tn_clip: tuple[float, float] | None = None
    tn_self_normalize: bool = False
    vd_guard_rel: float = 0.0

    def changed(self) -> dict[str, object]:
        """The options that differ from the paper's reading, by name."""
        default = WeightOptions()
        return {name: getattr(self, name) for name in self.__dataclass_fields__
                if getattr(self, name) != getattr(default, name)}


PAPER_OPTIONS = WeightOptions()


def canonical_method(name: str) -> str | None:
    """The method's canonical name, or None if unknown."""
    name = name.strip().lower()
    name = METHOD_ALIASES.get(name, name)
    return name if name in METHODS else None


def normalized_transition(transition: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P_Bi lambda_tn (uniform over the observed next states) and lambda_tn itself, [S, A_i, S]."""
    observed = transition > 0
    distinct = observed.sum(axis=-1, keepdims=True)  # z_tn per (s, a_i)
    uniform = np.where(observed, 1.0 / np.maximum(distinct, 1), 0.0)
    safe_probability = np.where(observed, transition, 1.0)
    lambda_tn = np.where(observed, uniform / safe_probability, 1.0)
    return uniform, lambda_tn


def value_deviation(
    base: np.ndarray, next_values: np.ndarray, eps: float | None, guard_rel: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """lambda_vd [S, A_i, S] for the transition `base` and the degenerate mask [S, A_i].

    next_values: float [S], y(s') = R(s') + gamma V_i(s') (V_i = 0 at terminals), the value of
    arriving in s'. For a one-step game y is the payoff, as in the paper's Tables 3 and 4.
    eps: clip lambda_vd to [1 - eps, 1 + eps] (section 3.3), or None for no clip (the tables).
    """
    expected = base @ next_values  # E[y] per (s, a_i), [S, A_i]
    has_data = base.sum(axis=-1) > 0
    degenerate = has_data & (np.abs(expected) <= DEGENERATE_EXPECTATION)
    safe = np.where(degenerate | ~has_data, 1.0, np.abs(expected))
    if guard_rel > 0 and has_data.any():  # floor at a share of the mean |E[y]| (issue 19)
        safe = np.maximum(safe, guard_rel * np.abs(expected[has_data]).mean())
    lambda_vd = 1.0 + (next_values[None, None, :] - expected[..., None]) / safe[..., None]
    lambda_vd = np.where((degenerate | ~has_data)[..., None], 1.0, lambda_vd)
    if eps is not None:
        lambda_vd = np.clip(lambda_vd, 1.0 - eps, 1.0 + eps)
    return lambda_vd, degenerate


def modify(
    view: AgentView, next_values: np.ndarray, method: str, eps: float | None = None,
    options: WeightOptions = PAPER_OPTIONS,
) -> ModifiedTransition:
    """P~(s'|s, a_i) of section 3.2.3 for one agent, from its own view only.

    method: "dataset" (P_Bi), "vd", "tn" or "tn_vd". next_values: float [S], y(s').
    options: the estimator's options (WeightOptions; default: the paper's reading).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    base = view.transition
    lambda_tn = np.ones_like(base)
    if method in ("tn", "tn_vd"):
        base, lambda_tn = normalized_transition(view.transition)
        if options.tn_clip is not None or options.tn_self_normalize:
            base, lambda_tn = _shaped_transition(view.transition, lambda_tn, options)
    lambda_vd = np.ones_like(base)
    degenerate = np.zeros(view.support.shape, dtype=bool)
    if method in ("vd", "tn_vd"):
        lambda_vd, degenerate = value_deviation(base, next_values, eps, options.vd_guard_rel)
        if options.vd_terminal == "one":
            lambda_vd = np.where(view.terminal[None, None, :], 1.0, lambda_vd)
    weighted = base * lambda_vd
    total = weighted.sum(axis=-1, keepdims=True)  # z; exactly 1 without the clip
    # A clip with eps > 1 can drive z to ~0: then the weights carry no usable direction.
    collapsed = view.support & (np.abs(total[..., 0]) <= DEGENERATE_EXPECTATION)
    degenerate = degenerate | collapsed
    probabilities = np.where(
        collapsed[..., None], base, weighted / np.where(np.abs(total) > 0, total, 1.0)
    )
    probabilities = np.where(view.support[..., None], probabilities, 0.0)
    return ModifiedTransition(probabilities, lambda_vd, lambda_tn, degenerate)


def _shaped_transition(transition: np.ndarray, lambda_tn: np.ndarray, options: WeightOptions
                       ) -> tuple[np.ndarray, np.ndarray]:
    """P lambda_tn renormalized per (s, a_i) after tn_clip and tn_self_normalize."""
    observed = transition > 0
    if options.tn_clip is not None:
        lambda_tn = np.where(observed, np.clip(lambda_tn, *options.tn_clip), 1.0)
    if options.tn_self_normalize:  # the mean over the agent's data: a constant factor
        rows = observed.any(axis=-1)
        mean = float(np.sum(transition * lambda_tn) / max(int(rows.sum()), 1))
        lambda_tn = np.where(observed, lambda_tn / mean, 1.0)
    weighted = np.where(observed, transition * lambda_tn, 0.0)
    total = weighted.sum(axis=-1, keepdims=True)
    return weighted / np.where(total > 0, total, 1.0), lambda_tn
