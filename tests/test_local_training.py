"""Training, evaluation and export on local observations (issue 11 part 3).

HalfCheetah 2x3 (equal local sizes, one batched step) through the command line; Hopper 3x1,
whose middle agent sees one joint more (8, 9, 8 dims at K = 1), in two per-shape groups: each
agent equals its slice when trained alone from its own file (tests/test_decentralized.py checks
bitwise that the batched step ignores the other agents' data).
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest

import mabcq
from mabcq.cli import main
from mabcq.learners.groups import GroupedStates

TINY = dict(updates=20, pretrain_updates=10, eval_every=20, eval_episodes=1, eval_max_steps=20,
            diagnostic_states=32, updates_per_call=10, hidden_sizes=(16, 16), batch_size=32)


def test_halfcheetah_local_cli_builds_trains_evaluates(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    data, run = tmp_path / "data", tmp_path / "run"
    assert main(["data", "build", "halfcheetah-2x3", "--obs", "local", "--preset", "smoke",
                 "--behavior", "shipped", "--size", "200", "--out", str(data),
                 "--no-progress"]) == 0
    datasets = mabcq.load_datasets(data)
    assert [d.observations.shape[1] for d in datasets] == [12, 12]
    assert all(d.metadata["obs"] == "local" and d.metadata["obsk"] == 1 for d in datasets)
    assert main(["train", "halfcheetah-2x3", "--method", "mabcq", "--data", str(data),
                 "--preset", "smoke", "--updates", "20", "--pretrain-updates", "10",
                 "--eval-every", "20", "--eval-max-steps", "20", "--out", str(run),
                 "--no-progress"]) == 0
    rows = (run / "metrics.csv").read_text().splitlines()
    header, last = rows[0].split(","), rows[-1].split(",")
    for column in ("return_mean", "value_difference", "extrapolation_error_all_states"):
        assert np.isfinite(float(last[header.index(column)]))
    policies = sorted((run / "policies" / "seed_0").glob("agent_*.msgpack"))
    assert main(["evaluate", "halfcheetah-2x3", "--policies", *map(str, policies),
                 "--episodes", "1", "--max-steps", "10"]) == 0
    assert "return" in capsys.readouterr().out
    policy = mabcq.Policy.load(policies[0])
    assert policy.state_dim == 12 and policy.metadata["obs"] == "local"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["updates"] == 20


@pytest.fixture(scope="module")
def hopper_local() -> list:
    return mabcq.build_datasets("hopper-3x1", preset="smoke", behavior="shipped", size=200,
                                obs="local", progress=False)


def test_hopper_local_trains_in_shape_groups(hopper_local: list) -> None:
    assert [d.observations.shape[1] for d in hopper_local] == [8, 9, 8]
    config = mabcq.make_config("hopper-3x1", "mabcq", preset="smoke", **TINY)
    joint = mabcq.fit(config, hopper_local, progress=False, env_workers=0)
    assert isinstance(joint.states, GroupedStates)
    assert joint.states.slots == ((0, 2), (1,))
    row = joint.metrics[-1]
    assert np.isfinite(row["return_mean"]) and np.isfinite(row["value_difference"])
    assert [joint.policy(agent).state_dim for agent in range(3)] == [8, 9, 8]
    evaluation = mabcq.evaluate("hopper-3x1", joint.policies(), episodes=1, max_steps=10)
    assert evaluation.rollout.local_observations.shape[1] == 25
    # Decentralized: each agent trained alone from its own file equals its slice of the
    # grouped run, the agent with its own group (1) and one sharing a group (2).
    for agent in (1, 2):
        alone = mabcq.fit(mabcq.make_config("hopper-3x1", "mabcq", preset="smoke", agent=agent,
                                            **TINY), [hopper_local[agent]], progress=False,
                          env_workers=0)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                     alone.agent_state(agent).params, joint.agent_state(agent).params)
