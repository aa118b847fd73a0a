"""Cross-check: this project's BCQ against d3rlpy's BCQ on the same per-agent files (issue 17).

Each agent is trained on its own dataset file only (one d3rlpy BCQ per agent, or our BCQ with every
agent in one compiled step), and the agents' policies are then run together in this project's
simulator from the same evaluation start states as `mabcq train` uses at that update
(evaluation_env_seed(seed, update)), 10 episodes by default. d3rlpy is configured at the paper's
sizes (batch 1024; actor, critics and VAE (64, 64) ReLU; lr critic 1e-3, perturbation 1e-4, VAE
1e-4; n = 10 candidates for the target and for acting; Phi 0.05; lambda 0.75; tau 0.005;
gamma 0.99; two critics; beta 0.5). Not settable there: its VAE latent is 2 x the action size and
it trains the VAE at every step beside the critic.

Every run writes one JSON per (side, variant, seed) under OUT/TASK/; `table` prints the
comparison (mean +- std over seeds at each update count). Three subcommands:

    # d3rlpy (torch; in its own process: torch's and XLA's thread pools fight in one process)
    python benchmarks/xcheck_bcq.py d3rlpy hopper-3x1 --data runs/data/paper/hopper-3x1/paper \
        --seed 0 --steps 20000 --eval-every 5000 --out results/xcheck
    # ours, at the paper's defaults or a named variant (VARIANTS below), seeds side by side
    python benchmarks/xcheck_bcq.py ours hopper-3x1 --data runs/data/paper/hopper-3x1/paper \
        --seeds 0,1,2 --steps 20000 --eval-every 5000 --variant default --out results/xcheck
    python benchmarks/xcheck_bcq.py table results/xcheck
    # d3rlpy's saved models taken apart as `mabcq acting` takes ours (G1 alone, no xi, ...)
    python benchmarks/xcheck_bcq.py d3rlpy-acting halfcheetah-2x3 --seeds 0,1,2 --step 20000

d3rlpy lives in the optional side environment of benchmarks/setup_d3rlpy_venv.sh (never in the
core). Batches for d3rlpy are drawn uniformly with replacement from the file's rows, as d3rlpy's
own ReplayBuffer draws transitions, but vectorized, with the file's own s' and terminal flags
(timeouts bootstrap, as in our learner), so both sides learn from identical transitions.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# Our BCQ's variants: LearnerConfig / TrainConfig overrides, each switching one of the known
# differences from BCQ's reference code (sfujim/BCQ, d3rlpy) to the reference's setting.
# latent_dim 0: 2 x the agent's action size (BCQ's code).
# "default" is the base before issue 17's decision (Table 8's latent 10 read literally, Flax's
# init); every variant spells out both settings, so the names keep their meaning now that the
# defaults are the reference's latent and init.
LITERAL = {"latent_dim": 10, "weight_init": "flax"}
VARIANTS: dict[str, dict[str, Any]] = {
    "default": LITERAL,
    "vae-every-step": {**LITERAL, "vae_in_update": True, "pretrain_updates": 0},
    "latent-2a": {**LITERAL, "latent_dim": 0},
    "torch-init": {**LITERAL, "weight_init": "torch"},
    # the base issue 17's rule points to, and the defaults since: the reference's setting where
    # the paper is silent (init) or ambiguous (latent size), the paper's Algorithm 1 where it is
    # clear (G1 fitted first, then fixed)
    "latent-2a-torch-init": {"latent_dim": 0, "weight_init": "torch"},
    "reference": {"vae_in_update": True, "pretrain_updates": 0, "latent_dim": 0,
                  "weight_init": "torch"},
}
D3RLPY_SETTINGS = dict(batch_size=1024, gamma=0.99, tau=0.005, n_critics=2, lam=0.75,
                       n_action_samples=10, action_flexibility=0.05, beta=0.5,
                       actor_learning_rate=1e-4, critic_learning_rate=1e-3,
                       imitator_learning_rate=1e-4, hidden=(64, 64))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("d3rlpy", "ours"):
        sub = commands.add_parser(name, help=f"train and evaluate {name}'s BCQ")
        sub.add_argument("task", help="e.g. hopper-3x1, halfcheetah-2x3")
        sub.add_argument("--data", required=True, help="directory of agent_<i>.h5 files")
        sub.add_argument("--steps", type=int, default=20_000, help="updates per agent")
        sub.add_argument("--eval-every", type=int, default=5000, help="updates between evals")
        sub.add_argument("--episodes", type=int, default=10, help="episodes per evaluation")
        sub.add_argument("--out", default="results/xcheck", help="results root")
        sub.add_argument("--work", default="runs/xcheck",
                         help="model files / run dirs (resumed after a kill)")
        if name == "d3rlpy":
            sub.add_argument("--seed", type=int, default=0)
            sub.add_argument("--threads", type=int, default=1, help="torch threads")
        else:
            sub.add_argument("--seeds", default="0", help="comma-separated, trained together")
            sub.add_argument("--variant", default="default", choices=sorted(VARIANTS))
            sub.add_argument("--diagnostic-states", type=int, default=1000,
                             help="states for the value diagnostics (the paper preset's 10^4 "
                             "cost CPU time and do not change the returns compared here)")
    acting = commands.add_parser("d3rlpy-acting", help="re-run d3rlpy's saved models' "
                                 "evaluation with parts of its policy switched off")
    acting.add_argument("task")
    acting.add_argument("--seeds", default="0,1,2", help="comma-separated, trained already")
    acting.add_argument("--step", type=int, default=20_000, help="the saved update count")
    acting.add_argument("--episodes", type=int, default=10, help="as the training's evaluation")
    acting.add_argument("--out", default="results/xcheck", help="results root")
    acting.add_argument("--work", default="runs/xcheck", help="where d3rlpy's models are")
    table = commands.add_parser("table", help="print the comparison as a markdown table")
    table.add_argument("out", nargs="?", default="results/xcheck")
    return parser.parse_args(argv)


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in ("mabcq", "jax", "flax", "optax", "torch", "d3rlpy", "mujoco", "gymnasium"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def write_result(out: Path, task: str, side: str, variant: str, seed: int,
                 evaluations: list[dict[str, Any]], extra: dict[str, Any]) -> Path:
    path = out / task / f"{side}-{variant}-seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"task": task, "side": side, "variant": variant, "seed": seed,
               "evaluations": evaluations, "versions": versions(), **extra}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(path)
    return path


# ------------------------------------------------------------------------------------ d3rlpy


def d3rlpy_algo(state_dim: int, action_dim: int, device: str = "cpu:0") -> Any:
    import d3rlpy

    encoder = d3rlpy.models.VectorEncoderFactory(hidden_units=list(D3RLPY_SETTINGS["hidden"]))
    settings = {k: v for k, v in D3RLPY_SETTINGS.items() if k != "hidden"}
    config = d3rlpy.algos.BCQConfig(actor_encoder_factory=encoder,
                                    critic_encoder_factory=encoder,
                                    imitator_encoder_factory=encoder, **settings)
    algo = config.create(device=device)
    algo.create_impl((state_dim,), action_dim)
    return algo


def d3rlpy_batch(dataset: Any, rows: Any) -> Any:
    """A d3rlpy TransitionMiniBatch of the file's rows (its own s', terminal flags)."""
    import numpy as np
    from d3rlpy.dataset import TransitionMiniBatch

    def f32(array: Any) -> Any:
        return np.ascontiguousarray(array, dtype=np.float32)

    actions = f32(dataset.actions[rows])
    return TransitionMiniBatch(
        observations=f32(dataset.observations[rows]), actions=actions,
        rewards=f32(dataset.rewards[rows])[:, None],
        next_observations=f32(dataset.next_observations[rows]),
        next_actions=actions,  # unused by BCQ
        terminals=f32(dataset.terminals[rows])[:, None],
        intervals=np.ones((len(rows), 1), np.float32), transitions=[])


def train_d3rlpy(args: argparse.Namespace) -> None:
    """Each agent alone on its own file, saving its model at every evaluation point; then the
    evaluation in a second process (JAX's simulator code and torch in one process are slow)."""
    import subprocess

    import d3rlpy
    import numpy as np
    import torch

    from mabcq.data.io import load_dataset_dir

    torch.set_num_threads(args.threads)
    datasets = load_dataset_dir(args.data)
    work = Path(args.work) / args.task / f"seed{args.seed}"
    started = time.perf_counter()
    for agent, dataset in enumerate(datasets):
        final = work / f"agent_{agent}" / f"step_{args.steps}.d3"
        if final.exists():
            continue
        d3rlpy.seed(args.seed * 1000 + agent)
        rng = np.random.default_rng([args.seed, agent])
        algo = d3rlpy_algo(dataset.state_dim, dataset.action_dim)
        agent_start = time.perf_counter()
        for step in range(1, args.steps + 1):
            rows = rng.integers(0, len(dataset), D3RLPY_SETTINGS["batch_size"])
            algo.update(d3rlpy_batch(dataset, rows))
            if step % args.eval_every == 0:
                path = work / f"agent_{agent}" / f"step_{step}.d3"
                path.parent.mkdir(parents=True, exist_ok=True)
                algo.save_model(str(path))
        print(f"d3rlpy {args.task} seed {args.seed} agent {agent}: {args.steps} updates in "
              f"{time.perf_counter() - agent_start:.0f} s", flush=True)
    train_seconds = time.perf_counter() - started
    command = [sys.executable, __file__, "_d3rlpy_eval", json.dumps(
        {**vars(args), "train_seconds": train_seconds, "work_dir": str(work)})]
    subprocess.run(command, check=True)


def d3rlpy_rollout(task: Any, work: Path, seed: int, step: int, episodes: int,
                   candidates: int | None = None, perturb: bool = True) -> dict[str, Any]:
    """The saved models of WORK at STEP run together from the training's evaluation start
    states, with the torch seed set before the models are made (their init draws from it);
    CANDIDATES (d3rlpy's n) and PERTURB (its perturbation's scale kept, or 0) change its acting,
    None and True leave the model as trained."""
    import numpy as np
    import torch

    from mabcq.envs.rollout import run_episodes
    from mabcq.training.evaluation import evaluation_env_seed

    torch.manual_seed(seed * 7919 + step)
    policies = []
    for agent in range(task.n_agents):
        algo = d3rlpy_algo(task.state_dim, task.agent_action_dim(agent))
        algo.load_model(str(work / f"agent_{agent}" / f"step_{step}.d3"))
        if candidates is not None:
            algo.impl._n_action_samples = candidates
        if not perturb:
            algo.impl._modules.policy._scale = 0.0
        policies.append(lambda states, algo=algo: np.asarray(
            algo.predict(np.asarray(states, np.float32)), np.float64))
    rollout = run_episodes(task, policies, episodes, seed=evaluation_env_seed(seed, step),
                           num_envs=min(8, episodes))
    return episode_summary(step, rollout.episode_returns, rollout.episode_lengths)


def evaluate_d3rlpy(options: dict[str, Any]) -> None:
    import torch

    from mabcq.envs.tasks import get_task

    torch.set_num_threads(1)
    task = get_task(options["task"])
    work = Path(options["work_dir"])
    evaluations = []
    for step in range(options["eval_every"], options["steps"] + 1, options["eval_every"]):
        evaluations.append(d3rlpy_rollout(task, work, options["seed"], step,
                                          options["episodes"]))
        print(f"d3rlpy {task.name} seed {options['seed']} step {step}: return "
              f"{evaluations[-1]['return_mean']:.1f}", flush=True)
    path = write_result(Path(options["out"]), task.name, "d3rlpy", "d3rlpy", options["seed"],
                        evaluations, {"settings": {**D3RLPY_SETTINGS, "latent": "2 x action"},
                                      "train_seconds": options["train_seconds"],
                                      "data": options["data"]})
    print(f"wrote {path}")


# mabcq.training.acting's variants on d3rlpy's BCQ: (candidates n, perturbation kept)
D3RLPY_ACTING = {"policy": (10, True), "g1": (1, False), "argmax": (10, False),
                 "perturb": (1, True)}


def d3rlpy_acting(args: argparse.Namespace) -> None:
    """d3rlpy's saved models at --step, evaluated as its training's evaluation did (same torch
    seed before the models are made, same start states) with its acting switched per
    D3RLPY_ACTING: n candidates from its VAE, and its perturbation's scale kept or set to 0
    (DeterministicResidualPolicy._scale). `policy` must equal the recorded return exactly."""
    import torch

    from mabcq.envs.tasks import get_task

    torch.set_num_threads(1)
    task = get_task(args.task)
    for seed in (int(value) for value in args.seeds.split(",")):
        recorded_path = Path(args.out) / task.name / f"d3rlpy-d3rlpy-seed{seed}.json"
        recorded = {e["updates"]: e["return_mean"]
                    for e in json.loads(recorded_path.read_text())["evaluations"]}
        work = Path(args.work) / task.name / f"seed{seed}"
        for variant, (candidates, perturb) in D3RLPY_ACTING.items():
            summary = d3rlpy_rollout(task, work, seed, args.step, args.episodes, candidates,
                                     perturb)
            extra = {"candidates": candidates, "perturbation": perturb,
                     "recorded_return": recorded.get(args.step)}
            if variant == "policy":
                extra["reproduced"] = summary["return_mean"] == recorded.get(args.step)
            path = write_result(Path(args.out), task.name, "d3rlpy", f"acting-{variant}", seed,
                                [summary], extra)
            print(f"d3rlpy {task.name} seed {seed} step {args.step} {variant}: return "
                  f"{summary['return_mean']:.1f}"
                  + (f" (recorded {recorded.get(args.step):.1f}, reproduced: "
                     f"{extra['reproduced']})" if variant == "policy" else "")
                  + f" -> {path}", flush=True)


def episode_summary(step: int, returns: Any, lengths: Any) -> dict[str, Any]:
    returns = [float(value) for value in returns]
    return {"updates": step, "return_mean": statistics.fmean(returns),
            "returns": returns, "lengths": [int(value) for value in lengths]}


# -------------------------------------------------------------------------------------- ours


def train_ours(args: argparse.Namespace) -> None:
    import mabcq

    datasets = mabcq.load_datasets(args.data)
    seeds = [int(seed) for seed in args.seeds.split(",")]
    overrides = VARIANTS[args.variant]
    config = mabcq.make_config(args.task, "bcq", preset="paper", seeds=seeds,
                               updates=args.steps, eval_every=args.eval_every,
                               eval_episodes=args.episodes,
                               diagnostic_states=args.diagnostic_states, **overrides)
    run_dir = Path(args.work) / args.task / f"ours-{args.variant}-seeds{'_'.join(map(str, seeds))}"
    started = time.perf_counter()
    result = mabcq.fit(config, datasets, run_dir, resume=True, progress=False)
    train_seconds = time.perf_counter() - started
    for seed in seeds:
        table = result.table("bcq", seed)
        evaluations = [
            {"updates": int(step), "return_mean": float(value), "return_std": float(std),
             "episode_length_mean": float(length), "q_mean": float(q_mean),
             "vae1_loss": float(vae_loss)}
            for step, value, std, length, q_mean, vae_loss in zip(
                table["update"], table["return_mean"], table["return_std"],
                table["episode_length_mean"], table["q_mean"], table["vae1_loss"], strict=True)
            if step > 0
        ]
        path = write_result(Path(args.out), args.task, "ours", args.variant, seed, evaluations,
                            {"overrides": overrides, "train_seconds": train_seconds,
                             "seeds_trained_together": seeds, "data": args.data})
        print(f"wrote {path}: " + ", ".join(
            f"{e['updates']}: {e['return_mean']:.1f}" for e in evaluations), flush=True)


# ------------------------------------------------------------------------------------- table


def print_table(out: Path) -> None:
    for task_dir in sorted(p for p in out.iterdir() if p.is_dir() and any(p.glob("*.json"))):
        runs: dict[str, dict[int, list[float]]] = {}
        for path in sorted(task_dir.glob("*.json")):
            payload = json.loads(path.read_text())
            name = (f"{payload['side']} {payload['variant']}"
                    if payload["variant"] != payload["side"] else payload["side"])
            for evaluation in payload["evaluations"]:
                runs.setdefault(name, {}).setdefault(evaluation["updates"], []).append(
                    evaluation["return_mean"])
        names = sorted(runs, key=lambda n: (not n.startswith("d3rlpy"), n != "d3rlpy",
                                            n != "ours default", n))
        steps = sorted({step for per_step in runs.values() for step in per_step})
        print(f"\n{task_dir.name}: return, mean +- std over seeds (n)\n")
        print("| updates | " + " | ".join(names) + " |")
        print("|---" * (len(names) + 1) + "|")
        for step in steps:
            cells = []
            for name in names:
                values = runs[name].get(step, [])
                if not values:
                    cells.append("-")
                    continue
                spread = statistics.pstdev(values) if len(values) > 1 else 0.0
                cells.append(f"{statistics.fmean(values):.0f} +- {spread:.0f} ({len(values)})")
            print(f"| {step} | " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_d3rlpy_eval":
        evaluate_d3rlpy(json.loads(argv[1]))
        return
    args = parse_args(argv)
    if args.command == "d3rlpy":
        train_d3rlpy(args)
    elif args.command == "ours":
        train_ours(args)
    elif args.command == "d3rlpy-acting":
        d3rlpy_acting(args)
    else:
        print_table(Path(args.out))


if __name__ == "__main__":
    main()
