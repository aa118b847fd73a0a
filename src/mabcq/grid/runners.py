"""Who trains a grid's groups (`mabcq reproduce --backend`): this process, one group after
another (local), or Ray tasks, all groups at once over a cluster (ray).

The unit of Ray work is a group (docs/reproduce.md): the cells that share one compiled step
(a task's BCQ-family methods and seeds), so batching on the card is kept and each task's
datasets travel once per group; `--unit cell` makes every (method, seed) a task of its own for
spreading over many GPUs. The driver builds and checks every task's datasets before anything is
dispatched, and puts each task's datasets into Ray's object store once; a task reads no dataset
file. Each task sends back its metrics rows, summary, timing and small run files; the driver
writes the cells and the CSVs, so OUT has to be visible to the driver only.
"""

from __future__ import annotations

from typing import Any

from mabcq.grid.groups import Grid, GroupJob, finish_group, run_group


class LocalGroups:
    """Train each group in this process as it is added (the default backend)."""

    def __init__(self, grid: Grid, out: Any, overrides: dict[str, Any], split: dict[str, Any],
                 progress: bool, options: Any = None) -> None:
        self.grid, self.out, self.overrides, self.split = grid, out, overrides, split
        self.progress = progress

    def __enter__(self) -> LocalGroups:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        return None

    def add(self, job: GroupJob, datasets: list[Any]) -> None:
        rows, summary, timing, provenance = run_group(
            job.task, job.methods, job.seeds, self.grid, datasets, job.run_dir, self.progress,
            self.overrides, job.data_seconds)
        finish_group(self.out, job, rows, summary, timing, self.split, provenance)

    def run(self) -> list[Any]:
        return []


class RayGroups:
    """Collect the groups, then run them as Ray tasks (ray_backend.run_jobs: retried once,
    failures reported while the others go on), writing each group's cells as it finishes."""

    def __init__(self, grid: Grid, out: Any, overrides: dict[str, Any], split: dict[str, Any],
                 progress: bool, options: Any) -> None:
        self.grid, self.out, self.overrides, self.split = grid, out, overrides, split
        self.options = options
        self.jobs: list[Any] = []
        self.groups: dict[str, GroupJob] = {}
        self.dataset_refs: dict[tuple[str, str], Any] = {}

    def __enter__(self) -> RayGroups:
        from mabcq.grid.ray_backend import ray_session

        self._session = ray_session(self.options)
        self.ray = self._session.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._session.__exit__(*exc_info)

    def add(self, job: GroupJob, datasets: list[Any]) -> None:
        from mabcq.grid.ray_backend import Job

        key = (job.task, job.recipe)
        if key not in self.dataset_refs:  # one copy per task in the object store
            self.dataset_refs[key] = self.ray.put(list(datasets))
        self.groups[job.label] = job
        self.jobs.append(Job(job.label, train_group_task, (
            job.task, job.methods, job.seeds, self.grid, self.overrides,
            self.dataset_refs[key], str(job.run_dir.absolute()), job.data_seconds)))

    def run(self) -> list[Any]:
        from mabcq.grid.ray_backend import run_jobs

        if not self.jobs:
            return []
        resources = self.ray.cluster_resources()
        print(f"ray: {len(self.jobs)} task(s), each {self.options.cpus_per_task:g} CPU and "
              f"{self.options.gpus_per_task:g} GPU, on a cluster of "
              f"{resources.get('CPU', 0):g} CPU and {resources.get('GPU', 0):g} GPU", flush=True)
        return run_jobs(self.ray, self.jobs, self.options, self._finished)

    def _finished(self, job: Any, result: dict[str, Any]) -> None:
        from mabcq.grid.ray_backend import unpack_run_files

        group = self.groups[job.label]
        # The cells first: once they exist the group is never trained again.
        finish_group(self.out, group, result["rows"], result["summary"], result["timing"],
                     self.split, result.get("provenance"))
        unpack_run_files(group.run_dir, result["files"])
        worker = result["worker"]
        print(f"{job.label}: {len(group.methods) * len(group.seeds)} cell(s) done on "
              f"{worker['host']} (pid {worker['pid']}, attempt {worker['attempt']}): train "
              f"{result['timing']['train_s']:.0f} s, eval {result['timing']['eval_s']:.0f} s",
              flush=True)


def train_group_task(task: str, methods: tuple[str, ...], seeds: tuple[int, ...], grid: Grid,
                     overrides: dict[str, Any], datasets: list[Any], run_dir: str,
                     data_seconds: float, *, attempt: int) -> dict[str, Any]:
    """In a Ray worker: train one group (resuming a checkpoint a killed attempt left in its run
    dir) and return what the driver writes: metrics rows, summary, timing, the run's small
    files, and where it ran."""
    from mabcq.grid.ray_backend import pack_run_files, worker_record, worker_setup

    path = worker_setup(run_dir, attempt)
    rows, summary, timing, provenance = run_group(task, methods, seeds, grid, datasets, path,
                                                  False, overrides, data_seconds)
    return {"rows": rows, "summary": summary, "timing": timing, "provenance": provenance,
            "files": pack_run_files(path), "worker": worker_record(attempt)}
