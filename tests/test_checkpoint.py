"""Checkpoints: exact round trip, atomic replacement, clear errors on mismatch or corruption."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mabcq.errors import UserError
from mabcq.training.checkpoint import load_checkpoint, save_checkpoint
from mabcq.training.logs import CsvLog, read_csv_rows
from mabcq.util.atomic import write_bytes


def _tree(scale: float) -> dict:
    return {"params": {"w": jnp.arange(6.0).reshape(2, 3) * scale, "b": jnp.ones(3)},
            "step": jnp.asarray(5, jnp.int32), "keys": jax.random.split(jax.random.PRNGKey(1), 2)}


def test_round_trip_is_bitwise(tmp_path: Path) -> None:
    tree = _tree(1.37)
    save_checkpoint(tmp_path / "c.npz", tree, {"done": 12, "window": {"a": [[1.5]]}})
    restored, meta = load_checkpoint(tmp_path / "c.npz", _tree(0.0))
    assert meta == {"done": 12, "window": {"a": [[1.5]]}}
    for original, loaded in zip(jax.tree_util.tree_leaves(tree),
                                jax.tree_util.tree_leaves(restored), strict=True):
        assert original.dtype == loaded.dtype
        np.testing.assert_array_equal(np.asarray(original), np.asarray(loaded))


def test_typed_keys_round_trip(tmp_path: Path) -> None:
    tree = {"key": jax.random.key(3)}
    save_checkpoint(tmp_path / "k.npz", tree, {})
    restored, _ = load_checkpoint(tmp_path / "k.npz", {"key": jax.random.key(0)})
    np.testing.assert_array_equal(jax.random.key_data(restored["key"]),
                                  jax.random.key_data(tree["key"]))


def test_mismatched_template_is_a_user_error(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "c.npz", _tree(1.0), {})
    wrong = _tree(1.0)
    wrong["params"]["w"] = jnp.zeros((3, 3))
    with pytest.raises(UserError, match="c.npz"):
        load_checkpoint(tmp_path / "c.npz", wrong)
    with pytest.raises(UserError, match="arrays"):
        load_checkpoint(tmp_path / "c.npz", {"only": jnp.zeros(1)})


def test_truncated_or_missing_checkpoint_is_a_user_error(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "c.npz", _tree(1.0), {})
    payload = (tmp_path / "c.npz").read_bytes()
    (tmp_path / "c.npz").write_bytes(payload[: len(payload) // 2])
    with pytest.raises(UserError, match="unreadable"):
        load_checkpoint(tmp_path / "c.npz", _tree(1.0))
    with pytest.raises(UserError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.npz", _tree(1.0))


def test_failed_atomic_write_keeps_the_old_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "f.bin"
    write_bytes(target, b"old")

    def crash(*args):
        raise OSError("disk died mid-write")

    monkeypatch.setattr("mabcq.training.logs.os.replace", crash)
    with pytest.raises(OSError):
        write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [path.name for path in tmp_path.iterdir()] == ["f.bin"]  # no temp file left


def test_csv_truncate_drops_rows_after_a_position(tmp_path: Path) -> None:
    log = CsvLog(tmp_path / "m.csv", columns=("update", "seed", "x"))
    log.append([{"update": 1, "seed": 0, "x": 0.1}])
    position = log.position()
    log.append([{"update": 2, "seed": 0, "x": float("nan")}])
    log.truncate(position)
    log.append([{"update": 2, "seed": 0, "x": 0.25}])
    rows = read_csv_rows(tmp_path / "m.csv")
    assert [(row["update"], row["x"]) for row in rows] == [("1", "0.1"), ("2", "0.25")]
    log.start_over()
    assert read_csv_rows(tmp_path / "m.csv") == []


def _old_version_run(run_dir: Path, checkpoint: bool) -> dict:
    """A run dir whose metrics.csv another version wrote: a header of fewer columns, one row."""
    from mabcq.training.logs import CSV_COLUMNS, RunDirLog

    config = {"task": "t", "method": "m"}
    RunDirLog(run_dir, config, resume=False)  # writes config.json
    old_columns = CSV_COLUMNS[:5]
    CsvLog(run_dir / "metrics.csv", columns=old_columns).append(
        [dict.fromkeys(old_columns, 1)] if checkpoint else [])
    if checkpoint:
        save_checkpoint(run_dir / "checkpoint.npz", _tree(1.0), {"done": 1, "csv_position": 0})
    return config


def test_resume_under_another_versions_csv_header_is_one_clear_error(tmp_path: Path) -> None:
    from mabcq.training.logs import RunDirLog

    config = _old_version_run(tmp_path / "run", checkpoint=True)
    before = (tmp_path / "run" / "metrics.csv").read_bytes()
    log = RunDirLog(tmp_path / "run", config, resume=True)
    with pytest.raises(UserError, match=r"metrics.csv: written by another version of mabcq "
                                        r"\(5 columns"):
        log.restore(_tree(0.0), ["seed_0"], 0)
    assert (tmp_path / "run" / "metrics.csv").read_bytes() == before  # nothing cut or appended


def test_fresh_start_replaces_another_versions_csv_header(tmp_path: Path) -> None:
    from mabcq.training.logs import CSV_COLUMNS, RunDirLog

    config = _old_version_run(tmp_path / "run", checkpoint=False)  # a run that never got going
    log = RunDirLog(tmp_path / "run", config, resume=False)
    assert log.restore(_tree(0.0), ["seed_0"], 0) is None
    log.close()
    assert CsvLog(tmp_path / "run" / "metrics.csv").written_columns() == tuple(CSV_COLUMNS)
    assert read_csv_rows(tmp_path / "run" / "metrics.csv") == []
