"""Files that survive a kill: write into a temp file beside the target, fsync, then os.replace.

A reader (or a resumed run) then sees either the old file or the new one, never half of one.
Every file the project writes for later reading (datasets, checkpoints, policies, JSON) goes
through here.

A kill (SIGKILL, power loss) inside a write leaves its temp file behind. Temp names say who
wrote them, `.NAME.tmp-<pid>-<host>-<random>.tmp`, so the next write into that directory (a
resumed run, a rebuilt dataset) removes the ones whose writer is gone: same host, process no
longer alive. A live process's temp file is never touched, nor one written from another host
(its process cannot be checked from here), nor any file of another naming.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

# mkstemp's random part: 8 characters of [a-z0-9_].
_TEMP_NAME = re.compile(r"^\..+\.tmp-(?P<pid>\d+)-(?P<host>[A-Za-z0-9.-]*)-[a-z0-9_]{8}\.tmp$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())


def temp_prefix(target: Path) -> str:
    """The start of a temp file's name for `target` written by this process."""
    return f".{target.name}.tmp-{os.getpid()}-{_host()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def stale_temp_files(directory: Path) -> list[Path]:
    """Temp files of this module's naming in `directory` whose writer on this host is gone."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    host, stale = _host(), []
    for name in names:
        match = _TEMP_NAME.match(name)
        if match and match["host"] == host and not _alive(int(match["pid"])):
            stale.append(directory / name)
    return stale


def remove_stale_temp_files(directory: str | os.PathLike) -> list[Path]:
    """Remove the stale temp files of `directory` (see the module docstring); returns them."""
    removed = []
    for path in stale_temp_files(Path(directory)):
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:  # another cleaner was first
            pass
    return removed


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path in `path`'s directory; on success it replaces `path`, else it is removed.

    For writers that need a file name (h5py); `write_bytes` is the short form for a payload.
    Every write also removes the stale temp files of its directory (a listing: cheap next to
    the write).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(target.parent)
    handle, temp_name = tempfile.mkstemp(prefix=temp_prefix(target), suffix=".tmp",
                                         dir=target.parent)
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
