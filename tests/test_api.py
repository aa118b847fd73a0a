"""The public Python API: light import, names, configs, and fit without a run dir giving the
same numbers as `mabcq train`'s run dir."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_train_support import (
    TASK,
    deterministic_rows,
    tiny_config,
    use_test_compilation_cache,
    write_random_dataset,
)

import mabcq
from mabcq.errors import UserError

use_test_compilation_cache()
SRC = str(Path(__file__).resolve().parents[1] / "src")


def test_import_is_light_and_every_public_name_resolves() -> None:
    code = ("import sys, mabcq; assert 'jax' not in sys.modules, 'jax imported'; "
            "assert mabcq.fit.__doc__ and 'run_dir' in mabcq.fit.__doc__; "
            "assert 'jax' not in sys.modules, 'fit imported jax'")
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": SRC})
    assert mabcq.__all__ == sorted(mabcq.__all__)
    for name in mabcq.__all__:
        assert getattr(mabcq, name).__doc__, name
    with pytest.raises(AttributeError):
        mabcq.no_such_name  # noqa: B018


def test_evaluate_stays_the_function_after_the_internal_modules_load() -> None:
    import mabcq.training.evaluation  # noqa: F401  (the internal module; it must not shadow the API)
    import mabcq.training.loop  # noqa: F401

    assert callable(mabcq.evaluate) and mabcq.evaluate.__module__ == "mabcq.api"


def test_make_config_methods_seeds_and_overrides() -> None:
    config = mabcq.make_config(TASK, ["mabcq", "bcq"], preset="smoke", seeds=3, gamma=0.9,
                               hidden_sizes=[8, 8], updates=100)
    assert (config.method, config.seeds, config.updates) == ("mabcq+bcq", (3,), 100)
    assert config.learner_overrides["gamma"] == 0.9
    assert config.learner_overrides["hidden_sizes"] == (8, 8)
    with pytest.raises(UserError, match="unknown option.*learning_rate"):
        mabcq.make_config(TASK, learning_rate=1.0)
    with pytest.raises(UserError, match="ddpg"):
        mabcq.make_config(TASK, ["mabcq", "ddpg"])
    with pytest.raises(UserError, match="unknown task"):
        mabcq.make_config("hopper-9x9")


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> list:
    return mabcq.load_datasets(write_random_dataset(tmp_path_factory.mktemp("data")))


def test_fit_without_run_dir_equals_the_run_dir_run(datasets: list, tmp_path: Path) -> None:
    import jax

    config = tiny_config(seeds=(0, 1))  # the shapes test_train_loop compiles too
    in_memory = mabcq.fit(config, datasets, progress=False)
    on_disk = mabcq.fit(config, datasets, tmp_path / "run", progress=False)
    assert in_memory.run_dir is None and on_disk.run_dir == tmp_path / "run"
    for memory_leaf, disk_leaf in zip(jax.tree_util.tree_leaves(in_memory.states),
                                      jax.tree_util.tree_leaves(on_disk.states), strict=True):
        np.testing.assert_array_equal(np.asarray(memory_leaf), np.asarray(disk_leaf))

    def numbers(rows: list[dict]) -> list[dict]:  # NaN as text: nan != nan
        return [{key: "nan" if isinstance(value, float) and value != value else value
                 for key, value in row.items()
                 if key not in ("time_per_update_ms", "wall_time_s")} for row in rows]

    assert numbers(in_memory.metrics) == numbers(on_disk.metrics)
    # the in-memory rows are metrics.csv's rows, as numbers
    csv_rows = deterministic_rows(tmp_path / "run")
    assert [{key: value for key, value in row.items() if value != ""} for row in csv_rows] == [
        {key: (repr(value) if isinstance(value, float) else str(value))
         for key, value in row.items()} for row in numbers(in_memory.metrics)]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert in_memory.final()["final_return_per_seed"] == summary["final_return_per_seed"]
    table = in_memory.table(seed=1)
    assert table["update"].tolist() == [50, 100] and table["seed"].tolist() == [1, 1]
    assert np.isfinite(table["lambda_tn_data_median"]).all()
    assert set(mabcq.lambda_statistics(in_memory, seed=1)) >= {"update", "lambda_vd_mean"}


def test_policies_from_memory_equal_the_exported_files(datasets: list, tmp_path: Path) -> None:
    import jax

    result = mabcq.fit(tiny_config(seeds=(0, 1)), datasets, progress=False)
    paths = result.export(tmp_path / "policies")
    assert [path.relative_to(tmp_path / "policies").as_posix() for path in paths] == [
        f"seed_{seed}/agent_{agent}.msgpack" for seed in (0, 1) for agent in range(3)]
    states, key = datasets[0].observations[:7], jax.random.PRNGKey(3)
    loaded = mabcq.Policy.load(tmp_path / "policies" / "seed_1" / "agent_2.msgpack")
    assert (loaded.agent, loaded.task, loaded.metadata["seed"]) == (2, TASK, 1)
    np.testing.assert_array_equal(loaded.act(states, key),
                                  result.policy(2, seed=1).act(states, key))
    # without a key: the policy's own stream, the same on a fresh copy
    again = mabcq.Policy.load(tmp_path / "policies" / "seed_1" / "agent_2.msgpack")
    np.testing.assert_array_equal(loaded.act(states), again.act(states))
    with pytest.raises(UserError, match="agents"):
        result.policy(3)
    with pytest.raises(UserError, match="seed 5"):
        result.policy(0, seed=5)
    evaluation = mabcq.evaluate(TASK, result.policies(seed=0), episodes=2, max_steps=10)
    assert evaluation.episode_returns.shape == (2,)
    assert np.isfinite(mabcq.extrapolation_error(result.policies(seed=0), evaluation,
                                                 all_states=True))
    assert mabcq.value_difference(result.policies(seed=0), datasets, samples=64) >= 0.0
    values = mabcq.lambda_tn_values(result, datasets[1], seed=0)
    assert values.shape == (len(datasets[1]),) and (values > 0).all()
    with pytest.raises(UserError, match="agent order"):
        mabcq.evaluate(TASK, result.policies(seed=0)[::-1], episodes=1)


def test_fit_replaces_seeds_and_refuses_resume_without_a_run_dir(datasets: list) -> None:
    config = tiny_config(seeds=(0, 1))
    with pytest.raises(UserError, match="run_dir"):
        mabcq.fit(config, datasets, resume=True, progress=False)
    with pytest.raises(UserError, match="seed"):
        mabcq.fit(config, datasets, seeds=[], progress=False)
