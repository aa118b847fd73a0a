"""Which learners exist and what each method name means: one line per learner family.

The registry sits above the learners: `base.py` (the interface) is at the bottom, each learner
file imports it, and this module imports a learner's file only when that learner is built
(`make_learner`, `learner_config`), so the name tables below cost no JAX import. A learner
file provides `LEARNER` (its class, built as `LEARNER(config, method)`) and `CONFIG` (its
hyperparameter dataclass). Adding a learner = its file + one `Family` line in `FAMILIES`.

Method names of a weighted family `x` (MABCQ's weights on base learner x):
    ma<x>          both weights (lambda_tn * lambda_vd), e.g. mabcq, macql, matd3bc
    ma<x>-no-tn    lambda_vd only
    ma<x>-no-vd    lambda_tn only
    <x>            neither: the plain base learner (bcq, cql, td3bc)
    ma<x>-epsE     both weights, lambda_vd clipped at optimism eps = E (e.g. mabcq-eps0.32)
    ma<x>-vdterm1, -tnclip, -tnnorm, -relguard, -combined
                   both weights with one of the estimator's options (OPTION_METHODS: choices
                   the paper leaves open, issue 19) or all four; ma<x> stays the paper's reading
A family may fix config fields for all its methods (Family.options): bcq-latent10 is the BCQ
family at Table 8's "VAE hidden space 10" read literally as the latent size (mabcq-latent10,
mabcq-latent10-no-tn, mabcq-latent10-no-vd, bcq-latent10), kept as rows of their own beside the
grid's base (latent 2 x the action size; issue 17, docs/learners.md).
An unweighted family (ddpg, behavior) has one method, its name. The methods of one family
differ only in their weights, so they train side by side in one compiled step (the family's
full method's learner, `Batch.variant`).
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mabcq.errors import UserError
from mabcq.learners.config import BaseLearnerConfig
from mabcq.paper import TASK_OPTIMISM

if TYPE_CHECKING:
    from mabcq.learners.base import Learner


@dataclass(frozen=True)
class Family:
    """A base learner and the methods built on it."""

    name: str  # the plain method: "bcq", "cql", ...
    module: str  # where LEARNER and CONFIG live
    weighted: bool  # MABCQ's weights apply: the ma<name>, -no-tn, -no-vd, -epsE methods exist
    # config fields that every method of the family sets (name, value) pairs: another reading of
    # the paper, kept as methods of their own (hashable, so a Family can go in a set)
    options: tuple[tuple[str, Any], ...] = ()
    option_methods: bool = True  # the ma<name>-vdterm1 ... methods (OPTION_METHODS) exist

    @property
    def full(self) -> str:
        """The method with every weight on (the family's learner in a grid step)."""
        return f"ma{self.name}" if self.weighted else self.name

    def methods(self) -> dict[str, tuple[bool, bool]]:
        """Method name -> (use_vd, use_tn), full method first, the option methods last."""
        if not self.weighted:
            return {self.name: (False, False)}
        return {self.full: (True, True), f"{self.full}-no-tn": (True, False),
                f"{self.full}-no-vd": (False, True), self.name: (False, False),
                **{f"{self.full}-{suffix}": (True, True)
                   for suffix in (OPTION_METHODS if self.option_methods else ())}}


# The estimator's open points as named methods (both weights on), each setting config fields
# whose defaults are the paper's reading (config.BaseLearnerConfig, weights.py):
# vdterm1: lambda_vd = 1 where s' is terminal (the paper's formula gives 1 +- eps there by the
#   sign of the critic's residual alone); tnclip: lambda_tn clipped to [0.2, 1.4], the range the
#   paper reports "for almost all samples" (section 3.3); tnnorm: lambda_tn divided by its
#   batch mean (self-normalized importance weights); relguard: |E[V]| floored at 0.1 x the
#   batch mean |E[V]| as well as at vd_guard; combined: all four. docs/study.md.
OPTION_METHODS: dict[str, dict[str, Any]] = {
    "vdterm1": {"vd_terminal": "one"},
    "tnclip": {"tn_clip": (0.2, 1.4)},
    "tnnorm": {"tn_self_normalize": True},
    "relguard": {"vd_guard_rel": 0.1},
}
OPTION_METHODS["combined"] = {key: value for options in list(OPTION_METHODS.values())
                              for key, value in options.items()}


FAMILIES: tuple[Family, ...] = (
    Family("bcq", "mabcq.learners.bcq", weighted=True),  # the paper's MABCQ (section 3.3)
    Family("bcq-latent10", "mabcq.learners.bcq", weighted=True,  # Table 8's latent read literally
           options=(("latent_dim", 10),), option_methods=False),
    Family("cql", "mabcq.learners.cql", weighted=True),  # Appendix B's MACQL (Figure 6)
    Family("td3bc", "mabcq.learners.td3bc", weighted=True),
    Family("ddpg", "mabcq.learners.ddpg", weighted=False),
    Family("behavior", "mabcq.learners.behavior", weighted=False),
)

_BY_METHOD: dict[str, tuple[Family, tuple[bool, bool]]] = {
    method: (family, flags) for family in FAMILIES for method, flags in family.methods().items()
}
METHODS: tuple[str, ...] = tuple(_BY_METHOD)  # every fixed method name, families in order
EPS_INFIX = "-eps"


def eps_method(eps: float, family: str = "bcq") -> str:
    """The full method of `family` at optimism eps, e.g. 0.16 -> "mabcq-eps0.16"."""
    return f"{family_by_name(family).full}{EPS_INFIX}{eps:.2f}"


def family_by_name(name: str) -> Family:
    for family in FAMILIES:
        if family.name == name:
            return family
    raise UserError(f"unknown learner family {name!r}; choose one of "
                    f"{', '.join(family.name for family in FAMILIES)}")


def parse_method(method: str) -> tuple[str, float | None]:
    """(fixed method name, eps override or None): "mabcq-eps0.32" -> ("mabcq", 0.32)."""
    if method in _BY_METHOD:
        return method, None
    head, infix, text = method.rpartition(EPS_INFIX)
    if infix and head in _BY_METHOD and _BY_METHOD[head][0].full == head and \
            _BY_METHOD[head][0].weighted:
        try:
            eps = float(text)
        except ValueError:
            eps = float("nan")
        if not 0.0 <= eps <= 1.0:  # also rejects nan
            raise UserError(f"method {method!r}: eps must be a number in [0, 1], e.g. "
                            f"{head}{EPS_INFIX}0.32")
        return head, eps
    raise UserError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}, or "
                    f"ma<x>{EPS_INFIX}E (both weights at optimism eps = E, e.g. "
                    f"{eps_method(0.32)})")


def family_of(method: str) -> Family:
    """The family of a method name (eps variants included); unknown -> UserError."""
    return _BY_METHOD[parse_method(method)[0]][0]


def method_weights(method: str) -> tuple[bool, bool]:
    """(use_vd, use_tn) that the method name decides."""
    return _BY_METHOD[parse_method(method)[0]][1]


def method_options(method: str) -> dict[str, Any]:
    """The config fields that the method name sets besides the weights' flags and eps
    (its family's options, then OPTION_METHODS; {} for the others)."""
    name = parse_method(method)[0]
    family = _BY_METHOD[name][0]
    prefix = f"{family.full}-"
    suffix = name[len(prefix):] if family.weighted and name.startswith(prefix) else ""
    return {**dict(family.options), **OPTION_METHODS.get(suffix, {})}


def split_methods(method: str) -> tuple[str, ...]:
    """"mabcq+bcq" -> ("mabcq", "bcq"): several methods trained in one step must be of one
    weighted family (eps variants included); each name is checked."""
    methods = tuple(name.strip() for name in method.split("+"))
    if len(set(methods)) != len(methods) or not all(methods):
        raise UserError(f"method {method!r}: empty or repeated name in a '+' list")
    families = {family_of(name) for name in methods}
    if len(methods) > 1 and (len(families) > 1 or not next(iter(families)).weighted):
        raise UserError(f"method {method!r}: only the methods of one weighted family train "
                        f"together in one step (e.g. macql+cql, mabcq+bcq+mabcq-eps0.32), not "
                        f"{', '.join(sorted(family.name for family in families))} together")
    return methods


def _module(family: Family) -> Any:
    return importlib.import_module(family.module)


def config_class(method: str) -> type[BaseLearnerConfig]:
    """The hyperparameter dataclass of `method`'s learner."""
    return _module(family_of(method)).CONFIG


def learner_config(method: str, task: str | None = None, **overrides: Any) -> BaseLearnerConfig:
    """Config for `method` on `task`: the learner's own defaults, the weights' flags from the
    name, eps from Table 8 (or from the name, "mabcq-eps0.32").

    `overrides` replace any field last (e.g. `batch_size=32` for a smoke run); the name's eps
    and options (OPTION_METHODS) win over overrides of the same fields.
    """
    _, eps = parse_method(method)
    use_vd, use_tn = method_weights(method)
    values: dict[str, Any] = {"use_vd": use_vd, "use_tn": use_tn}
    if task is not None and task.lower() in TASK_OPTIMISM:
        values["optimism"] = TASK_OPTIMISM[task.lower()]
    values.update(overrides)
    values.update(method_options(method))
    if eps is not None:
        values["optimism"] = eps
    cls = config_class(method)
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"learner config: unknown option(s) {unknown} for {method}; known: "
                        f"{sorted(known)}")
    return cls(**values)


def run_length_rule(method: str, updates: int, given: bool,
                    learner_overrides: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """(updates, extra learner overrides) of a run of `method`'s family: a learner file may
    define `run_length_rule(updates, learner_overrides)` for settings that depend on the run's
    length (CQL's BC warm start; TD3+BC's number of updates, applied only when the run's length
    was not `given`). Others: unchanged."""
    rule = getattr(_module(family_of(method)), "run_length_rule", None)
    if rule is None:
        return updates, {}
    scaled, extra = rule(updates, learner_overrides)
    return (updates if given else scaled), extra


def make_learner(method: str, config: BaseLearnerConfig) -> Learner:
    """The learner for `method`. The method name decides the weights: "bcq" ignores
    config.use_vd/use_tn, "mabcq" forces both on, and so on, so a config made for another
    method cannot silently change the algorithm; "mabcq-eps0.32" is MABCQ at optimism 0.32,
    "mabcq-tnclip" MABCQ with its option (OPTION_METHODS); the other methods keep the config's
    options (the paper's reading unless overridden).
    """
    _, eps = parse_method(method)
    family = family_of(method)
    module = _module(family)
    if not isinstance(config, module.CONFIG):
        raise UserError(f"method {method!r} needs a {module.CONFIG.__name__}, got a "
                        f"{type(config).__name__}; build it with learner_config({method!r})")
    use_vd, use_tn = method_weights(method)
    fixed = dataclasses.replace(config, use_vd=use_vd, use_tn=use_tn, **method_options(method))
    if eps is not None:
        fixed = dataclasses.replace(fixed, optimism=eps)
    return module.LEARNER(fixed, method)
