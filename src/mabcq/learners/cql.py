"""CQL for continuous actions (Kumar et al. 2020), with MABCQ's weights (the paper's MACQL).

Methods: `cql` (no weights), `macql` (lambda_tn * lambda_vd), `macql-no-tn`, `macql-no-vd`.
One agent, pure functions; networks: a SAC-style tanh-Gaussian actor, twin critics and their
targets, the entropy temperature log(alpha), the Lagrange multiplier log(alpha') (used only with
`cql_lagrange`), and G1/G2 (only with lambda_tn).

CQL as its authors' code does it (aviralkumar2907/CQL, d4rl/rlkit/torch/sac/cql.py):
- actor (SAC): minimize alpha log pi(a|s) - min_k Q_k(s, a), a ~ pi(s) reparameterized; during
  the first `bc_warmup_steps` updates instead alpha log pi(a|s) - log pi(a_data|s) (its
  policy_eval_start warm start); alpha tuned to the target entropy -|A| (Adam, policy lr).
- critic target y = r + gamma (1 - done) min_k Q^k(s', a'), a' ~ pi(s') (deterministic backup:
  no entropy term, the code's default for MuJoCo; `backup_entropy` adds it).
- CQL(H), importance-sampled (min_q_version 3): per critic k,
  cql_alpha * (temp * logsumexp_j(Q_k(s, a_j) / temp - log mu(a_j)) - Q_k(s, a_data)) over
  n = 10 uniform actions (log mu = log 0.5^|A|), n actions from pi(s) and n from pi(s') (the code
  evaluates those at s too), each with its log-probability subtracted; batch mean.
- Lagrange variant (`cql_lagrange`): that term becomes alpha' (term - target_gap), alpha' =
  exp(log alpha') clipped to [0, 1e6], trained to maximize it (Adam, critic lr).
All losses are computed from the parameters before this update's steps, as the code does.

Where MABCQ's weights go (w = lambda_tn * lambda_vd per sample, stop-gradient):
- the TD loss: mean(w * sum_k (Q_k(s, a) - y)^2): the Bellman backup over s' that the weights
  reshape (paper eq. 1). V(s') = min_k Q^k(s', a'), the value inside y; E[V] =
  (Q^1(s, a_i) - r) / gamma from the first target critic, as for MABCQ.
- the actor: mean(w * per-sample actor loss): paper eq. 2 weights the actor's objective per
  sample; the entropy (and warm-start BC) term belongs to the same sample's objective.
- NOT the CQL regularizer: it is not a Bellman backup (no s' is backed up in it); it pushes Q
  down on sampled actions and up on the data action at s, whatever next state followed. The
  paper (Appendix B) notes that with it "the learned Q-value may not represent the original
  meaning", so lambda_vd's E[V] comes from a conservative critic.
- the temperatures alpha and alpha' are constraints, not per-sample objectives: unweighted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax

from mabcq import weights
from mabcq.learners import common, weighting
from mabcq.learners.base import AgentState, Batch
from mabcq.learners.config import BaseLearnerConfig
from mabcq.learners.weighted import WeightedLearner
from mabcq.nets import TanhGaussianActor

LOG_ALPHA_PRIME_MAX = math.log(1e6)  # the code clamps alpha' to [0, 1e6]
ACTION_EDGE = 1.0 - 1e-6  # data actions at +-max_action: atanh needs |a| < 1


@dataclass(frozen=True)
class CQLConfig(BaseLearnerConfig):
    """CQL's hyperparameters. Defaults: the authors' settings for Gym MuJoCo (aviralkumar2907/CQL:
    README "--policy_lr=1e-4 --lagrange_thresh=-1.0 --min_q_weight=5.0 --min_q_version=3" and
    d4rl/examples/cql_mujoco_new.py): (256, 256, 256) ReLU nets, critic lr 3e-4, policy lr 1e-4,
    batch 256, tau 5e-3, gamma 0.99, min_q_weight 5.0 without Lagrange, 10 sampled actions,
    temperature 1.0, deterministic backup, automatic entropy tuning to -|A|, policy_eval_start
    40 000 (BC warm start). Lagrange threshold: the script's argparse default 5.0."""

    hidden_sizes: tuple[int, ...] = (256, 256, 256)
    lr_critic: float = 3e-4  # also alpha' (the code's alpha_prime_optimizer uses qf_lr)
    lr_actor: float = 1e-4  # also the entropy temperature (the code uses policy_lr)
    batch_size: int = 256
    vae_hidden_sizes: tuple[int, ...] | None = (64, 64)  # G1/G2 as MABCQ's (Table 8)
    cql_alpha: float = 5.0  # min_q_weight
    cql_n_actions: int = 10  # num_random: actions per source in the logsumexp
    cql_temperature: float = 1.0
    cql_lagrange: bool = False  # with_lagrange (the README's MuJoCo runs: off)
    cql_target_gap: float = 5.0  # lagrange_thresh (tau), only with cql_lagrange
    backup_entropy: bool = False  # deterministic_backup=True: no entropy term in y
    bc_warmup_steps: int = 40_000  # policy_eval_start: actor does BC for this many updates


class CQLLearner(WeightedLearner):
    """One agent's (MA)CQL: networks actor, critic, log_alpha, log_alpha_prime, vae1/vae2."""

    config: CQLConfig

    def __init__(self, config: CQLConfig, method: str = "cql") -> None:
        super().__init__(config, method)
        self.alpha_opt = optax.adam(config.lr_actor)
        self.alpha_prime_opt = optax.adam(config.lr_critic)

    def _actor(self, action_dim: int) -> TanhGaussianActor:
        return TanhGaussianActor(self.config.hidden_sizes, action_dim, self.config.weight_init)

    def init(self, key: jax.Array, state_dim: int, action_dim: int) -> AgentState:
        params, opt_states = self._init_networks(key, state_dim, action_dim)
        params.update(log_alpha=jnp.zeros(()), log_alpha_prime=jnp.zeros(()))
        opt_states.update(log_alpha=self.alpha_opt.init(params["log_alpha"]),
                          log_alpha_prime=self.alpha_prime_opt.init(params["log_alpha_prime"]))
        return AgentState(params, {"critic": params["critic"]}, opt_states,
                          jnp.zeros((), jnp.int32))

    # --- the tanh-Gaussian policy ------------------------------------------------------------

    def _sample(self, actor_params: Any, states: jax.Array, key: jax.Array,
                num: int | None = None) -> tuple[jax.Array, jax.Array]:
        """(actions [B, A] or [B, num, A], log pi [B] or [B, num]), reparameterized."""
        mean, log_std = self._actor(common.output_dim(actor_params)).apply(actor_params, states)
        if num is not None:
            mean, log_std = mean[:, None], log_std[:, None]
        shape = mean.shape if num is None else (mean.shape[0], num, mean.shape[-1])
        pre_tanh = mean + jnp.exp(log_std) * common.standard_normal(key, shape)
        return self.config.max_action * jnp.tanh(pre_tanh), _log_prob(mean, log_std, pre_tanh,
                                                                      self.config.max_action)

    def _data_log_prob(self, actor_params: Any, states: jax.Array, actions: jax.Array):
        """log pi(a_data | s) [B] (the BC warm start's likelihood)."""
        mean, log_std = self._actor(actions.shape[-1]).apply(actor_params, states)
        scaled = jnp.clip(actions / self.config.max_action, -ACTION_EDGE, ACTION_EDGE)
        return _log_prob(mean, log_std, jnp.arctanh(scaled), self.config.max_action)

    # --- the update ------------------------------------------------------------------------

    def update(
        self, agent_state: AgentState, batch: Batch, key: jax.Array
    ) -> tuple[AgentState, dict[str, jax.Array]]:
        cfg = self.config
        vae_key, actor_key, next_key, cql_key = jax.random.split(key, 4)
        agent_state, metrics, latent_means = self.fit_vaes_in_update(agent_state, batch, vae_key)
        params, opt_states = agent_state.params, agent_state.opt_states
        target_critic = agent_state.target_params["critic"]
        action_dim = batch.actions.shape[-1]

        # Entropy temperature (SAC): alpha towards the target entropy -|A|.
        _, log_pi = self._sample(params["actor"], batch.states, actor_key)
        alpha_gap = jax.lax.stop_gradient(log_pi - action_dim)  # log pi + target entropy

        def alpha_loss_fn(log_alpha: jax.Array) -> jax.Array:
            return -jnp.mean(log_alpha * alpha_gap)

        alpha_grad = jax.grad(alpha_loss_fn)(params["log_alpha"])
        log_alpha, alpha_opt = common.optimizer_step(self.alpha_opt, params["log_alpha"],
                                                     opt_states["log_alpha"], alpha_grad)
        alpha = jnp.exp(log_alpha)

        # TD target and the weights (paper eq. 1): V(s') = min_k Q^k(s', a'), a' ~ pi(s').
        next_actions, next_log_pi = self._sample(params["actor"], batch.next_states, next_key)
        next_values = jnp.min(self.critic.apply(target_critic, batch.next_states, next_actions), 0)
        if cfg.backup_entropy:
            next_values = next_values - alpha * next_log_pi
        y = jax.lax.stop_gradient(batch.rewards + cfg.gamma * (1.0 - batch.dones) * next_values)
        settings = weighting.settings(cfg, batch.variant)
        expected_values = None
        if settings.use_vd:  # E[V] = (Q^1(s, a_i) - r) / gamma, from the first target critic
            expected_values = weights.expected_value(
                self.q1(target_critic, batch.states, batch.actions), batch.rewards, cfg.gamma)
        sample_weights, weight_metrics = self.sample_weights(
            settings, agent_state, batch, next_values, expected_values, latent_means)
        metrics.update(weight_metrics)

        # Actor (paper eq. 2 weighted per sample), from the critics before their step.
        warmup = agent_state.step < cfg.bc_warmup_steps

        def actor_loss_fn(actor_params: Any) -> jax.Array:
            actions, log_pi = self._sample(actor_params, batch.states, actor_key)
            q_new = jnp.min(self.critic.apply(params["critic"], batch.states, actions), 0)
            data_log_prob = self._data_log_prob(actor_params, batch.states, batch.actions)
            per_sample = alpha * log_pi - jnp.where(warmup, data_log_prob, q_new)
            return jnp.mean(sample_weights * per_sample)

        actor_loss, grads = jax.value_and_grad(actor_loss_fn)(params["actor"])
        actor_params, actor_opt = common.optimizer_step(self.actor_opt, params["actor"],
                                                        opt_states["actor"], grads)

        # Critic: weighted TD loss + the (unweighted) CQL(H) regularizer.
        sampled = jax.lax.stop_gradient(self._cql_actions(params["actor"], batch, cql_key))
        alpha_prime = jnp.exp(jnp.minimum(params["log_alpha_prime"], LOG_ALPHA_PRIME_MAX))

        def critic_loss_fn(critic_params: Any) -> tuple[jax.Array, tuple[jax.Array, ...]]:
            q_data = self.critic.apply(critic_params, batch.states, batch.actions)  # [2, B]
            td = common.weighted_td_loss(sample_weights, q_data, y)
            gaps = self._conservative_gaps(critic_params, batch.states, q_data, sampled)  # [2]
            penalties = alpha_prime * (gaps - cfg.cql_target_gap) if cfg.cql_lagrange else gaps
            return td + jnp.sum(penalties), (td, gaps, jnp.mean(q_data[0]))

        (critic_loss, (td_loss, gaps, q_mean)), grads = jax.value_and_grad(
            critic_loss_fn, has_aux=True)(params["critic"])
        critic_params, critic_opt = common.optimizer_step(self.critic_opt, params["critic"],
                                                          opt_states["critic"], grads)
        log_alpha_prime, alpha_prime_opt = self._lagrange_step(params, opt_states, gaps)

        new_params = {**params, "critic": critic_params, "actor": actor_params,
                      "log_alpha": log_alpha, "log_alpha_prime": log_alpha_prime}
        new_opt = {**opt_states, "critic": critic_opt, "actor": actor_opt, "log_alpha": alpha_opt,
                   "log_alpha_prime": alpha_prime_opt}
        new_targets = {"critic": common.soft_update(target_critic, critic_params, cfg.tau)}
        metrics.update(critic_loss=critic_loss, actor_loss=actor_loss, q_mean=q_mean,
                       target_mean=jnp.mean(y), td_loss=td_loss, cql_loss=jnp.mean(gaps),
                       entropy_alpha=alpha, log_pi_mean=jnp.mean(log_pi))
        if cfg.cql_lagrange:
            metrics["lagrange_alpha"] = alpha_prime
        return AgentState(new_params, new_targets, new_opt, agent_state.step + 1), metrics

    def _cql_actions(self, actor_params: Any, batch: Batch, key: jax.Array
                     ) -> tuple[jax.Array, jax.Array]:
        """The logsumexp's actions [B, 3n, A] and their log-densities [B, 3n]: n uniform, n from
        pi(s), n from pi(s') (all evaluated at s, as the authors' code does)."""
        cfg, n = self.config, self.config.cql_n_actions
        uniform_key, current_key, next_key = jax.random.split(key, 3)
        shape = (batch.states.shape[0], n, batch.actions.shape[-1])
        uniform = jax.random.uniform(uniform_key, shape, minval=-cfg.max_action,
                                     maxval=cfg.max_action)
        uniform_log_density = jnp.full(shape[:2], -shape[-1] * math.log(2.0 * cfg.max_action))
        current, current_log_pi = self._sample(actor_params, batch.states, current_key, n)
        following, following_log_pi = self._sample(actor_params, batch.next_states, next_key, n)
        return (jnp.concatenate([uniform, following, current], axis=1),
                jnp.concatenate([uniform_log_density, following_log_pi, current_log_pi], axis=1))

    def _conservative_gaps(self, critic_params: Any, states: jax.Array, q_data: jax.Array,
                           sampled: tuple[jax.Array, jax.Array]) -> jax.Array:
        """cql_alpha * (temp * mean_B logsumexp_j((Q_k(s, a_j) - log mu_j) / temp) -
        mean_B Q_k(s, a_data)) for each critic k: [2]."""
        cfg = self.config
        actions, log_density = sampled
        q_sampled = self.critic.apply(critic_params, states[:, None, :], actions)  # [2, B, 3n]
        soft_max = cfg.cql_temperature * jax.nn.logsumexp(
            (q_sampled - log_density) / cfg.cql_temperature, axis=-1)  # [2, B]
        return cfg.cql_alpha * (jnp.mean(soft_max, axis=-1) - jnp.mean(q_data, axis=-1))

    def _lagrange_step(self, params: dict[str, Any], opt_states: dict[str, Any],
                       gaps: jax.Array) -> tuple[jax.Array, Any]:
        """One ascent step of log alpha' on alpha' (gap - target_gap) averaged over the twins
        (the code's alpha_prime_loss), gaps [2] from the critics before their step; unchanged
        without cql_lagrange."""
        cfg = self.config
        if not cfg.cql_lagrange:
            return params["log_alpha_prime"], opt_states["log_alpha_prime"]
        gaps = jax.lax.stop_gradient(gaps)

        def loss_fn(log_alpha_prime: jax.Array) -> jax.Array:
            alpha_prime = jnp.exp(jnp.minimum(log_alpha_prime, LOG_ALPHA_PRIME_MAX))
            return -0.5 * jnp.sum(alpha_prime * (gaps - cfg.cql_target_gap))

        grad = jax.grad(loss_fn)(params["log_alpha_prime"])
        return common.optimizer_step(self.alpha_prime_opt, params["log_alpha_prime"],
                                     opt_states["log_alpha_prime"], grad)

    # --- acting: the deterministic policy max_action * tanh(mean), as the code evaluates -----

    def act(self, agent_state: AgentState, states: jax.Array, key: jax.Array) -> jax.Array:
        actor_params = agent_state.params["actor"]
        mean, _ = self._actor(common.output_dim(actor_params)).apply(actor_params, states)
        return self.config.max_action * jnp.tanh(mean)

    def q_value(self, agent_state: AgentState, states: jax.Array, actions: jax.Array) -> jax.Array:
        return self.q1(agent_state.params["critic"], states, actions)


def _log_prob(mean: jax.Array, log_std: jax.Array, pre_tanh: jax.Array, max_action: float):
    """log density of max_action * tanh(u), u ~ N(mean, exp(log_std)), summed over the action
    axis: [..., A] -> [...]. log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), stable."""
    gaussian = -0.5 * ((pre_tanh - mean) / jnp.exp(log_std)) ** 2 - log_std - 0.5 * math.log(
        2.0 * math.pi)
    squash = 2.0 * (math.log(2.0) - pre_tanh - jax.nn.softplus(-2.0 * pre_tanh))
    return jnp.sum(gaussian - squash - math.log(max_action), axis=-1)


# The BC warm start scaled to the run (docs/learners.md, "Fair baselines"): the authors'
# policy_eval_start = 40 000 (cql_mujoco_new.py; "40000 or 10000 work similarly") of the 10^6
# gradient steps their D4RL Gym results report, i.e. 4% of the run.
BC_WARMUP_SHARE = 40_000 / 1_000_000


def run_length_rule(updates: int, learner_overrides: dict[str, Any]) -> tuple[int, dict]:
    """(updates, learner overrides) of a run of `updates` updates: the BC warm start is
    BC_WARMUP_SHARE of the run unless `bc_warmup_steps` was given (the authors' 40 000 was set
    for runs of 10^6 updates; in a 5 x 10^4-update run it would be 80% of the actor's updates)."""
    if "bc_warmup_steps" in learner_overrides:
        return updates, {}
    return updates, {"bc_warmup_steps": round(BC_WARMUP_SHARE * updates)}


LEARNER, CONFIG = CQLLearner, CQLConfig  # for learners.registry
