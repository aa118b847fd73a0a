"""MABCQ: offline, fully decentralized multi-agent RL with BCQ and two importance weights.

The Python API (docs/api.md), the same calls the `mabcq` command line makes:

    datasets = mabcq.build_datasets("hopper-3x1", preset="smoke")   # or load_datasets(DIR)
    config = mabcq.make_config("hopper-3x1", ["mabcq", "bcq"], preset="smoke", seeds=[0, 1])
    result = mabcq.fit(config, datasets)                  # nothing written without run_dir
    result.table("mabcq")["return_mean"]                  # curves as numpy arrays
    mabcq.evaluate("hopper-3x1", result.policies("mabcq"), episodes=10).return_mean
    result.policy(0, "mabcq").save("agent_0.msgpack")     # one agent, alone
    mabcq.Policy.load("agent_0.msgpack").act(states)      # [B, S] -> [B, A_0]

The names in __all__ are the public API; every other module is internal. They load lazily,
so `import mabcq` stays light (no JAX until a function needs it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_API: dict[str, str] = {
    "AgentDataset": "mabcq.data.schema",
    "Evaluation": "mabcq.api",
    "FitResult": "mabcq.api",
    "Policy": "mabcq.learners.export",
    "TrainConfig": "mabcq.training.config",
    "VideoOptions": "mabcq.video",
    "build_datasets": "mabcq.api",
    "dataset_from_arrays": "mabcq.data.io",
    "evaluate": "mabcq.api",
    "extrapolation_error": "mabcq.api.diagnostics",
    "fit": "mabcq.api",
    "lambda_statistics": "mabcq.api.diagnostics",
    "lambda_tn_values": "mabcq.api.diagnostics",
    "load_datasets": "mabcq.api",
    "make_config": "mabcq.api",
    "save_datasets": "mabcq.api",
    "value_difference": "mabcq.api.diagnostics",
}

__all__ = [
    "AgentDataset",
    "Evaluation",
    "FitResult",
    "Policy",
    "TrainConfig",
    "VideoOptions",
    "build_datasets",
    "dataset_from_arrays",
    "evaluate",
    "extrapolation_error",
    "fit",
    "lambda_statistics",
    "lambda_tn_values",
    "load_datasets",
    "make_config",
    "save_datasets",
    "value_difference",
]

if TYPE_CHECKING:
    from mabcq.api import (
        Evaluation,
        FitResult,
        build_datasets,
        evaluate,
        fit,
        load_datasets,
        make_config,
        save_datasets,
    )
    from mabcq.api.diagnostics import (
        extrapolation_error,
        lambda_statistics,
        lambda_tn_values,
        value_difference,
    )
    from mabcq.data.io import dataset_from_arrays
    from mabcq.data.schema import AgentDataset
    from mabcq.learners.export import Policy
    from mabcq.training.config import TrainConfig
    from mabcq.video import VideoOptions


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'mabcq' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
