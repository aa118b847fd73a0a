"""XLA's persistent compilation cache, shared by every command that compiles JAX code.

Compiling the update, init, SAC and evaluation functions dominates short runs on a 2-core CPU;
the cache only skips compilation, the numbers are the same.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_VARIABLE = "MABCQ_JAX_CACHE"


def enable_compilation_cache(directory: str | os.PathLike | None = None) -> Path | None:
    """Keep compiled programs on disk so the next run starts in seconds, not tens of seconds.

    Directory: `directory`, else $MABCQ_JAX_CACHE, else ~/.cache/mabcq/jax. An empty value or
    off/0/none disables the cache. Returns the directory in use, or None.
    """
    import jax

    setting = directory if directory is not None else os.environ.get(CACHE_VARIABLE)
    if setting is None:
        setting = Path.home() / ".cache" / "mabcq" / "jax"
    if str(setting).strip().lower() in ("", "off", "0", "none"):
        return None
    path = Path(setting)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # a read-only home is no reason to fail a run
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return path
