"""Checkpoints that survive a kill: one .npz file, written to a temp file then os.replace'd.

A checkpoint holds any pytree of arrays (every agent's and seed's learner state with its
optimizer states and target networks, the PRNG keys) plus a JSON-able dict of loop metadata
(step, phase, CSV byte offset, partial metric sums). Loading needs a template pytree of the same
structure (a freshly initialized state): the leaves are stored in `jax.tree_util` order and
checked against the template's shapes and dtypes, so a checkpoint from another configuration is
refused with a clear error instead of being silently misread.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

from mabcq.errors import UserError
from mabcq.util.atomic import write_bytes

FORMAT_VERSION = 1


def _is_key_array(leaf: Any) -> bool:
    return hasattr(leaf, "dtype") and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _to_numpy(leaf: Any) -> np.ndarray:
    if _is_key_array(leaf):
        leaf = jax.random.key_data(leaf)
    return np.asarray(jax.device_get(leaf))


def save_checkpoint(path: str | Path, tree: Any, metadata: dict[str, Any]) -> None:
    """Write `tree` (pytree of arrays) and `metadata` atomically to `path`."""
    leaves = jax.tree_util.tree_leaves(tree)
    arrays = {f"leaf_{index:05d}": _to_numpy(leaf) for index, leaf in enumerate(leaves)}
    header = {"format_version": FORMAT_VERSION, "n_leaves": len(leaves), "metadata": metadata}
    arrays["header_json"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path, template: Any) -> tuple[Any, dict[str, Any]]:
    """Read a file written by `save_checkpoint`: (tree shaped like template, metadata).

    Raises UserError naming the file if it is unreadable or does not match the template.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            header = json.loads(bytes(archive["header_json"]).decode())
            stored = [archive[f"leaf_{index:05d}"] for index in range(header["n_leaves"])]
    except FileNotFoundError as error:
        raise UserError(f"{path}: no checkpoint here; start without --resume") from error
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise UserError(
            f"{path}: unreadable checkpoint ({error}); delete it to restart the run"
        ) from error
    template_leaves, treedef = jax.tree_util.tree_flatten(template)
    if len(stored) != len(template_leaves):
        raise UserError(
            f"{path}: checkpoint holds {len(stored)} arrays but this configuration needs "
            f"{len(template_leaves)}; resume with the same method/task/seeds/config"
        )
    restored = []
    for index, (array, like) in enumerate(zip(stored, template_leaves, strict=True)):
        if _is_key_array(like):
            like_data = jax.random.key_data(like)
            if array.shape != like_data.shape:
                raise UserError(f"{path}: key array {index} has shape {array.shape}, "
                                f"expected {like_data.shape}; resume with the same config")
            restored.append(jax.random.wrap_key_data(array, impl=jax.random.key_impl(like)))
            continue
        like_shape, like_dtype = np.shape(like), np.asarray(like).dtype
        if array.shape != like_shape or array.dtype != like_dtype:
            raise UserError(
                f"{path}: array {index} is {array.dtype}{list(array.shape)}, expected "
                f"{like_dtype}{list(like_shape)}; resume with the same method/task/seeds/config"
            )
        restored.append(jax.numpy.asarray(array))
    return jax.tree_util.tree_unflatten(treedef, restored), header["metadata"]
