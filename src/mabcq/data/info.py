"""`mabcq data info`: what an agent dataset file (or a directory of them) holds."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from mabcq.data.io import load_agent_dataset, load_dataset_dir_with_paths
from mabcq.data.recipes import episode_returns, return_summary
from mabcq.data.schema import AgentDataset


def dataset_summary(dataset: AgentDataset, path: Path) -> dict[str, Any]:
    """Size, parts, episode returns and per-dimension stats of one agent's dataset."""
    meta = dataset.metadata
    names = meta.get("parts") or []
    parts = []
    if dataset.parts is not None:
        counts = np.bincount(dataset.parts.astype(np.int64), minlength=len(names))
        parts = [{"name": name, "transitions": int(count),
                  "fraction": float(count / len(dataset))} for name, count in zip(
                      names, counts, strict=False)]
    returns = episode_returns(dataset.rewards, dataset.terminals, dataset.timeouts)

    def dims(array: np.ndarray) -> dict[str, list[float]]:
        return {stat: getattr(array, stat)(axis=0).astype(float).round(4).tolist()
                for stat in ("mean", "std", "min", "max")}

    return {
        "path": str(path), "bytes": os.path.getsize(path), "task": meta.get("task"),
        "agent": meta.get("agent"), "n_agents": meta.get("n_agents"),
        "action_slice": meta.get("action_slice"), "recipe": meta.get("recipe"),
        "transitions": len(dataset), "state_dim": dataset.state_dim,
        "obs": meta.get("obs", "global"), "obsk": meta.get("obsk"),
        "action_dim": dataset.action_dim, "terminals": int(dataset.terminals.sum()),
        "timeouts": int(dataset.timeouts.sum()), "parts": parts,
        "episode_returns": return_summary(returns),
        "rewards": {"mean": float(dataset.rewards.mean()), "std": float(dataset.rewards.std()),
                    "min": float(dataset.rewards.min()), "max": float(dataset.rewards.max())},
        "observations": dims(dataset.observations), "actions": dims(dataset.actions),
        "behavior_levels": {level: {"step": value.get("step"),
                                    "eval_return": value.get("return_mean")}
                            for level, value in meta.get("behavior", {}).get(
                                "levels", {}).items()},
        "seed": meta.get("seed"), "package_version": meta.get("package_version"),
        "format_version": meta.get("format_version"), "versions": meta.get("versions"),
        "policies_sha256": meta.get("behavior", {}).get("policies_sha256"),
        "content_sha256": dataset.content_sha256(),
    }


def summarize_path(path: Path) -> list[dict[str, Any]]:
    if path.is_dir():
        return [dataset_summary(dataset, file)
                for file, dataset in load_dataset_dir_with_paths(path)]
    return [dataset_summary(load_agent_dataset(path), path)]


def _obs_note(summary: dict[str, Any]) -> str:
    return f" (local, obsk {summary['obsk']})" if summary["obs"] == "local" else ""


def format_summary(summary: dict[str, Any], dims: bool = True) -> str:
    """Human-readable lines for one file's summary."""
    lines = [
        f"{summary['path']}  ({summary['bytes'] / 2**20:.1f} MiB)",
        f"  task {summary['task']}  agent {summary['agent']}/{summary['n_agents']}  "
        f"action slice {summary['action_slice']}  recipe {summary['recipe']}",
        f"  transitions {summary['transitions']}  "
        f"{'observation' if summary['obs'] == 'local' else 'state'}_dim "
        f"{summary['state_dim']}{_obs_note(summary)}  "
        f"action_dim {summary['action_dim']}  terminals {summary['terminals']}  "
        f"timeouts {summary['timeouts']}",
    ]
    for part in summary["parts"]:
        lines.append(f"  part {part['name']:<34} {part['transitions']:>9}  "
                     f"{100 * part['fraction']:5.1f}%")
    ret = summary["episode_returns"]
    if ret.get("episodes"):
        lines.append(
            f"  episode returns: {ret['episodes']} episodes  mean {ret['mean']:.1f} "
            f"std {ret['std']:.1f}  min {ret['min']:.1f}  p25 {ret['p25']:.1f}  "
            f"median {ret['median']:.1f}  p75 {ret['p75']:.1f}  max {ret['max']:.1f}")
    for level, value in summary["behavior_levels"].items():
        lines.append(f"  behavior {level}: step {value['step']}  eval return "
                     f"{value['eval_return']:.1f}")
    if summary["versions"]:
        lines.append("  made with " + ", ".join(
            f"{name} {version}" for name, version in summary["versions"].items()))
    if summary["policies_sha256"]:
        lines.append(f"  behavior policies sha256 {summary['policies_sha256']}")
    lines.append(f"  content sha256 {summary['content_sha256']} (the arrays training reads)")
    rewards = summary["rewards"]
    lines.append(f"  rewards mean {rewards['mean']:.3f} std {rewards['std']:.3f} "
                 f"[{rewards['min']:.3f}, {rewards['max']:.3f}]")
    if dims:
        for field in ("observations", "actions"):
            stats = summary[field]
            lines.append(f"  {field} per dim: {'dim':>4} {'mean':>9} {'std':>9} {'min':>9} "
                         f"{'max':>9}")
            for d in range(len(stats["mean"])):
                lines.append(f"  {'':>{len(field) + 9}} {d:>4} {stats['mean'][d]:>9.3f} "
                             f"{stats['std'][d]:>9.3f} {stats['min'][d]:>9.3f} "
                             f"{stats['max'][d]:>9.3f}")
    return "\n".join(lines)
