"""What made a file: library versions, content hashes (recorded in behavior sets and datasets),
and the machine a result was computed on.

Versions come from the installed distributions' metadata (no import of the simulator needed).
A set of files is hashed as sha256sum would list it, so `policies_sha256` can be checked by hand:
sha256 of the lines "<sha256>  <name>\\n", sorted by name.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Distributions whose versions decide the simulated transitions or the policies' outputs.
LIBRARIES = ("mujoco", "gymnasium", "gymnasium-robotics", "jax", "flax", "numpy")
# ... and, for a results record, the rest of the stack.
RESULT_LIBRARIES = ("mabcq", *LIBRARIES, "jaxlib", "optax")


def library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str]:
    """{"mujoco": "3.3.0", ..., "python": "3.11.9"}: the installed versions."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    versions["python"] = platform.python_version()
    return versions


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def combined_sha256(file_hashes: Mapping[str, str]) -> str:
    """One hash for a set of files {name: sha256}: sha256 of their sha256sum listing."""
    listing = "".join(f"{file_hashes[name]}  {name}\n" for name in sorted(file_hashes))
    return hashlib.sha256(listing.encode()).hexdigest()


def files_sha256(paths: Mapping[str, Path]) -> tuple[dict[str, str], str]:
    """({name: sha256}, combined) for files given as {name: path}."""
    hashes = {name: sha256_file(path) for name, path in paths.items()}
    return hashes, combined_sha256(hashes)


def device_name() -> str:
    """The accelerator the update runs on, in words (for timing.csv and the report)."""
    import jax

    device = jax.devices()[0]
    if device.platform == "cpu":
        return f"cpu: {_cpu_model()} ({os.cpu_count()} cores)"
    return f"{device.platform}: {device.device_kind}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def code_version(source: Path | None = None) -> dict[str, Any]:
    """The git commit of the checkout the running mabcq was imported from, and whether its code
    (src/, pyproject.toml) differs from that commit: what a result must name to be traced back to
    one implementation. Outside a git checkout (an installed wheel, a lent machine's copy of the
    working tree) the commit is what MABCQ_CODE_COMMIT declares, else "unknown", and dirty is
    None (not known). dirty_paths lists up to 20 changed or untracked paths of the code."""
    root = (source or Path(__file__).resolve().parents[2])
    try:
        commit = _git(root, "rev-parse", "HEAD").strip()
        status = _git(root, "status", "--porcelain", "--", "src", "pyproject.toml")
    except (OSError, subprocess.SubprocessError):
        declared = os.environ.get("MABCQ_CODE_COMMIT", "").strip().lower()
        return {"commit": declared or "unknown", "dirty": None, "dirty_paths": [],
                **({"declared": "MABCQ_CODE_COMMIT"} if declared else {})}
    paths = [line[3:] for line in status.splitlines() if line.strip()]
    return {"commit": commit, "dirty": bool(paths), "dirty_paths": paths[:20]}


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                          text=True, timeout=30).stdout


def usable_cores() -> list[int]:
    """The cores this process may run on (`taskset` limits them); [] where the OS cannot say."""
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def cell_provenance(threads: str) -> dict[str, Any]:
    """What a grid cell records about how it was made: code version, library versions, device
    (with `threads`, e.g. "one thread" in a pinned worker), the process's cores and its
    XLA_FLAGS (they can change the numbers: docs/reproduce.md, "CPU machines of two kinds")."""
    return {"code": code_version(), "versions": library_versions(RESULT_LIBRARIES),
            "device": f"{device_name()}, {threads}", "cores": usable_cores(),
            "xla_flags": os.environ.get("XLA_FLAGS", "")}
