"""Files that survive a kill: write into a temp file beside the target, fsync, then os.replace.

A reader (or a resumed run) then sees either the old file or the new one, never half of one.
Every file the project writes for later reading (datasets, checkpoints, policies, JSON) goes
through here.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path in `path`'s directory; on success it replaces `path`, else it is removed.

    For writers that need a file name (h5py); `write_bytes` is the short form for a payload.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    os.close(handle)
    try:
        yield Path(temp_name)
        with open(temp_name, "rb+") as written:
            os.fsync(written.fileno())
        os.chmod(temp_name, 0o644)  # mkstemp makes 0600; these files are meant to be shared
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, payload: bytes) -> None:
    """Write `payload` to `path` atomically."""
    with atomic_path(path) as temp_path:
        temp_path.write_bytes(payload)


def write_json(path: str | os.PathLike, value: Any) -> None:
    """Write `value` as indented, key-sorted JSON atomically."""
    write_bytes(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())


def save_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """np.savez into memory, then one atomic write (checkpoints are at most a few hundred MB)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_bytes(path, buffer.getvalue())
