"""Jobs as Ray tasks (`--backend ray`): connect, dispatch with resources, retry once, report.

Ray is an optional extra (`pip install 'mabcq[ray]'`) imported only in here, and only when a
command is given `--backend ray`. A job is a module-level function and its arguments; it runs in
a Ray worker process on any node of the cluster and returns a picklable result (metrics rows,
the run's small files as bytes) to the driver, which writes every file of the results layout
itself, atomically: OUT only has to be visible to the driver. A job that fails (it raises, or its
worker process dies: killed, out of memory, node lost) is submitted once more; a second failure
is reported in one line and the other jobs go on. Ray's own task retries stay off
(max_retries=0), so "retried once" means exactly that whatever the cause.

Worker side (`worker_setup`): the job's run directory is created at the driver's absolute path
when the worker's node can create it (a shared filesystem: a retried job resumes from the
checkpoint of the killed attempt, wherever it runs), else under the node's temp directory; a
retry on a node without the checkpoint starts that job over (the same numbers, more time).
"""

from __future__ import annotations

import os
import re
import socket
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from mabcq.errors import UserError

INSTALL_HINT = "pip install 'mabcq[ray]'"
ATTEMPTS = 2  # the first try and one retry
# The small files of a run dir a job sends back (checkpoints and TensorBoard events stay where
# the job ran); worker.json says where that was.
RUN_FILES = ("config.json", "metrics.csv", "summary.json", "worker.json")


@dataclass(frozen=True)
class RayOptions:
    """Where and with what each Ray task runs."""

    address: str | None = None  # None: start a local Ray instance for this command
    cpus_per_task: float = 1.0
    gpus_per_task: float = 0.0  # fractional: several tasks share one card (e.g. 0.25)


@dataclass(frozen=True)
class Job:
    """One Ray task: `fn(*args, attempt=N)`, named `label` in reports."""

    label: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    # A new worker process for this job alone (Ray's max_calls=1; GPU tasks always get one).
    fresh_process: bool = False


@dataclass(frozen=True)
class Failure:
    label: str
    attempts: int
    message: str


def require_ray() -> ModuleType:
    """The ray module, or a one-line UserError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError(f"--backend ray needs Ray, which is not installed here: "
                        f"{INSTALL_HINT}") from None
    return ray


@contextmanager
def ray_session(options: RayOptions) -> Iterator[ModuleType]:
    """Ray connected while inside: a caller's ray.init is reused (tests, notebooks), else join
    options.address, else Ray's default (the cluster `ray start` runs on this machine, or a local
    instance started here, without dashboard); what this opened it shuts down."""
    ray = require_ray()
    opened = not ray.is_initialized()
    if opened:
        if options.address and options.address != "auto":
            check_reachable(options.address)
        try:
            with warnings.catch_warnings():  # Ray fork-execs its processes: no JAX state copied
                warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called",
                                        category=RuntimeWarning)
                if options.address:
                    ray.init(address=options.address, configure_logging=False)
                else:
                    ray.init(include_dashboard=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as error:
            where = f"--address {options.address}" if options.address else "a local Ray instance"
            raise UserError(f"{where}: cannot start or join Ray ({_first_line(error)}); start "
                            "the head with `ray start --head` and pass its address") from None
    try:
        check_resources([node["Resources"] for node in ray.nodes() if node.get("Alive")],
                        options)
        yield ray
    finally:
        if opened:
            ray.shutdown()


def check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """A HOST:PORT (or ray://HOST:PORT) that nothing answers on is refused at once (ray.init
    would wait for it without end)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise UserError(f"--address {address}: nothing answers there ({error.strerror or error}); "
                        "start the head with `ray start --head` and pass the address it "
                        "prints") from None


def check_resources(nodes: Sequence[dict[str, float]], options: RayOptions) -> None:
    """Refuse a task no node could ever run (Ray would wait for it forever). nodes: each live
    node's total resources ({"CPU": 16.0, "GPU": 1.0, ...})."""
    for name, wanted, flag in (("CPU", options.cpus_per_task, "--cpus-per-task"),
                               ("GPU", options.gpus_per_task, "--gpus-per-task")):
        largest = max((node.get(name, 0.0) for node in nodes), default=0.0)
        if wanted > largest:
            raise UserError(f"{flag} {wanted:g}: no node of the Ray cluster has that many "
                            f"{name}s (the largest has {largest:g}); ask for less or add a node")


def run_jobs(ray: ModuleType, jobs: Sequence[Job], options: RayOptions,
             on_result: Callable[[Job, Any], None], attempts: int = ATTEMPTS) -> list[Failure]:
    """Submit every job at once; call `on_result(job, result)` in this process as each one
    finishes (in completion order); a failed job is submitted again until `attempts` tries have
    failed, then reported (stderr line, returned Failure) while the others go on."""
    remote = {}
    pending: dict[Any, tuple[Job, int]] = {}
    failures: list[Failure] = []

    def submit(job: Job, attempt: int) -> None:
        key = (job.fn, job.fresh_process)
        if key not in remote:
            extra = {"max_calls": 1} if job.fresh_process else {}
            remote[key] = ray.remote(
                num_cpus=options.cpus_per_task, num_gpus=options.gpus_per_task, max_retries=0,
                retry_exceptions=False, **extra)(job.fn)
        pending[remote[key].remote(*job.args, attempt=attempt)] = (job, attempt)

    for job in jobs:
        submit(job, 1)
    try:
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            job, attempt = pending.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as error:
                message = failure_message(error)
                if attempt < attempts:
                    print(f"mabcq: {job.label}: attempt {attempt} of {attempts} failed "
                          f"({message}); retrying", file=sys.stderr, flush=True)
                    submit(job, attempt + 1)
                else:
                    print(f"mabcq: {job.label}: FAILED after {attempts} attempts: {message}",
                          file=sys.stderr, flush=True)
                    failures.append(Failure(job.label, attempts, message))
                continue
            on_result(job, result)
    finally:
        for ref in pending:  # interrupted (Ctrl-C, a driver-side error): stop the rest
            ray.cancel(ref, force=True)
    return failures


def failure_message(error: BaseException) -> str:
    """One line for a failed task: the job's own exception (a UserError's message as it is),
    or Ray's reason (the worker died, ...)."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, BaseException):
        error = cause
    if isinstance(error, UserError):
        return _first_line(error)
    return f"{type(error).__name__}: {_first_line(error)}"


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return re.sub(r"\x1b\[[0-9;]*m", "", lines[0]) if lines else type(error).__name__


# ---------------------------------------------------------------- worker side


def worker_setup(run_dir: str, attempt: int, inputs: dict[str, str] | None = None) -> Path:
    """In a Ray worker, before JAX is imported: no whole-card preallocation (tasks may share a
    GPU), the compilation cache on; the job's run dir (see the module docstring) with
    worker.json saying which host, process and attempt is training it (and `inputs`, e.g. the
    sha256 of the dataset file the job received)."""
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    from mabcq.training.logs import write_json_atomic
    from mabcq.util.compile_cache import enable_compilation_cache

    enable_compilation_cache()
    path = Path(run_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        path = Path(tempfile.gettempdir()) / "mabcq-ray" / re.sub(r"[^\w.-]", "_", run_dir)
        path.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path / "worker.json", {**worker_record(attempt), "inputs": inputs or {}})
    return path


def worker_record(attempt: int) -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "attempt": attempt}


def pack_run_files(run_dir: Path) -> dict[str, bytes]:
    """The run's small files (RUN_FILES and every exported policy) by path relative to it."""
    files = {name: (run_dir / name).read_bytes() for name in RUN_FILES
             if (run_dir / name).is_file()}
    for path in sorted((run_dir / "policies").rglob("*.msgpack")):
        files[path.relative_to(run_dir).as_posix()] = path.read_bytes()
    return files


def unpack_run_files(run_dir: Path, files: dict[str, bytes]) -> None:
    """Write a job's files into the driver's run dir, each atomically."""
    from mabcq.util import atomic

    for name, payload in files.items():
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise UserError(f"{run_dir}: refusing a job's file outside the run dir: {name}")
        atomic.write_bytes(run_dir / name, payload)
