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
    log.truncate(log.header_size())
    assert read_csv_rows(tmp_path / "m.csv") == []
