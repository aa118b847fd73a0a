"""docs/api.md's walkthrough, executed as written: every ```python block, in order, in one
namespace, in a fresh working directory (smoke data -> fit MABCQ and BCQ -> compare -> export
agent 0 -> load it alone and act)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_train_support import use_test_compilation_cache

use_test_compilation_cache()

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def walkthrough_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_walkthrough_has_every_step() -> None:
    code = "\n".join(walkthrough_blocks())
    for call in ("build_datasets(", "make_config(", "fit(", ".table(", "evaluate(",
                 "value_difference(", "extrapolation_error(", ".save(", "Policy.load(",
                 ".act("):
        assert call in code, call


def test_walkthrough_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "walkthrough"}
    for index, block in enumerate(walkthrough_blocks()):
        exec(compile(block, f"{DOC}:block{index}", "exec"), namespace)
    result, policy, actions = namespace["result"], namespace["policy"], namespace["actions"]
    assert result.methods == ("mabcq", "bcq") and result.run_dir is None
    assert [(row["method"], row["seed"]) for row in result.metrics if row["update"] == 200] == [
        ("mabcq", 0), ("mabcq", 1), ("bcq", 0), ("bcq", 1)]
    assert (policy.method, policy.agent) == ("mabcq", 0)
    assert actions.shape == (5, 1) and abs(actions).max() <= 1.0
    # run_dir=None wrote nothing here: the only file is the one the walkthrough saved
    assert sorted(path.name for path in tmp_path.iterdir()) == ["agent_0.msgpack"]
