"""Behavior pinned bitwise (issue 21): a smoke grid and smoke CQL / TD3+BC runs hash to the
values stored in tests/fixtures/behavior_hashes.json, so a refactor that moves code keeps every
number it produces.

What is hashed (sha256 of the bytes as written):
- `mabcq reproduce` at the smoke preset on two tasks (hopper-3x1 on its paper recipe,
  swimmer-2x1 on its low recipe, both built from the shipped behavior policies), the BCQ family
  (mabcq, mabcq-no-tn, mabcq-no-vd, bcq: one compiled step with the variants as data), DDPG and
  Behavior, seeds 0 and 1: every cell file, every group's metrics.csv and policy files;
- `mabcq train` of macql+cql and of matd3bc+td3bc on the hopper data (smoke preset, 2 seeds):
  metrics.csv and policy files;
- one agent of mabcq, macql and matd3bc updated alone by the single-agent path
  (learners.batched.make_single_update), where the weighted grid paths above do not go: each
  method's own config as Python values (no variant row), lambda_tn recomputed in the update
  (no precomputed table) and, for mabcq, G1/G2 trained in the update (vae_in_update): the
  parameters, optimizer states and metrics after 3 pretrain + 3 train updates.

Left out of the hashes, because they are not numbers of the computation: a cell's `timing`,
`provenance` (commit, library versions, device) and `group` (the run folder's name) fields, and
the clock columns time_per_update_ms and wall_time_s of every metrics row (cells and
metrics.csv). Everything else is hashed as written, floats included.

The production runs in a subprocess with single-threaded XLA (the reproduce workers' setting),
so the numbers do not depend on the test process's flags. Bitwise equality holds for one
kind of machine and one set of library versions: the fixture keeps one set of hashes per kind
(CPU model, AVX-512 or not, and versions; the AMD EPYC and the Intel Xeon kinds round
differently, and an AMD EPYC with AVX-512 is another kind), and the test
skips on a kind it has none for (add them there, before a change, with
`python tests/test_behavior_fixture.py --write`, which keeps the other kinds' sets).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).with_name("fixtures") / "behavior_hashes.json"
TASKS = {"hopper-3x1": "paper", "swimmer-2x1": "low"}
GRID_METHODS = "mabcq,mabcq-no-tn,mabcq-no-vd,bcq,ddpg,behavior"
TRAIN_METHODS = ("macql+cql", "matd3bc+td3bc")
SMALL = ["--updates", "50", "--eval-every", "50"]
CLOCK_COLUMNS = ("time_per_update_ms", "wall_time_s")
RUN_FIELDS = ("timing", "provenance", "group")
LIBRARIES = ("jax", "jaxlib", "flax", "optax", "numpy", "mujoco", "gymnasium", "h5py")
SINGLE_THREAD = {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
                 "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def cell_hash(path: Path) -> str:
    """A cell file without the fields of how it was run (RUN_FIELDS, CLOCK_COLUMNS)."""
    cell = json.loads(path.read_text())
    numbers = {key: value for key, value in cell.items() if key not in RUN_FIELDS}
    numbers["rows"] = [{name: value for name, value in row.items() if name not in CLOCK_COLUMNS}
                       for row in cell["rows"]]
    return sha256(json.dumps(numbers).encode())


def metrics_hash(path: Path) -> str:
    """metrics.csv as written, less the clock columns."""
    rows = list(csv.reader(io.StringIO(path.read_text())))
    keep = [index for index, name in enumerate(rows[0]) if name not in CLOCK_COLUMNS]
    return sha256("\n".join(",".join(row[i] for i in keep) for row in rows).encode())


def run_hashes(run_dir: Path, prefix: str) -> dict[str, str]:
    """A training run's metrics.csv and policy files."""
    hashes = {f"{prefix}/metrics.csv": metrics_hash(run_dir / "metrics.csv")}
    for path in sorted((run_dir / "policies").rglob("*.msgpack")):
        hashes[f"{prefix}/{path.relative_to(run_dir)}"] = sha256(path.read_bytes())
    return hashes


def learner_hashes() -> dict[str, str]:
    """One agent alone (single-agent path): 3 pretrain + 3 train updates per method."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from mabcq.learners import batched
    from mabcq.learners.registry import learner_config, make_learner
    from mabcq.learners.synthetic import synthetic_dataset

    options = {"mabcq": dict(vae_in_update=True), "macql": dict(bc_warmup_steps=2),
               "matd3bc": {}}
    dataset = synthetic_dataset(0, 90, 5, 2)
    transitions = jax.tree.map(jnp.asarray, batched.dataset_transitions(dataset))
    size = jnp.int32(len(dataset))
    hashes = {}
    for method, extra in options.items():
        config = learner_config(method, hidden_sizes=(16, 16), vae_hidden_sizes=(16, 16),
                                batch_size=32, **extra)
        learner = make_learner(method, config)
        fast = batched.FAST_COMPILE
        state = batched.init_agent(learner, 3, 1, 5, 2, fast)
        state = jax.jit(learner.prepare, compiler_options=fast)(state, transitions, size)
        key = batched.agent_key(3, 1)
        state, key, pre_metrics = batched.make_single_update(learner, "pretrain", 3, fast)(
            state, transitions, size, key)
        state, key, metrics = batched.make_single_update(learner, "train", 3, fast)(
            state, transitions, size, key)
        leaves = jax.tree.leaves((state, key, pre_metrics, metrics))
        hashes[f"learners/{method}"] = sha256(b"".join(
            np.asarray(leaf).tobytes() for leaf in leaves))
        hashes[f"learners/{method}/metric_names"] = sha256(
            ",".join(sorted({**pre_metrics, **metrics})).encode())
    return hashes


def produce(work: Path) -> dict[str, str]:
    """Every hash of the fixture, made in `work` (this process: call it in a fresh one)."""
    from mabcq.cli import main

    data_root, grid = work / "data", work / "grid"
    for task, recipe in TASKS.items():
        assert main(["data", "build", task, "--preset", "smoke", "--recipe", recipe,
                     "--behavior", "shipped", "--jobs", "1", "--no-progress",
                     "--out", str(data_root / "smoke" / task / recipe)]) == 0
    assert main(["reproduce", "--tasks", ",".join(TASKS), "--methods", GRID_METHODS,
                 "--seeds", "0,1", "--preset", "smoke", "--unit", "group", *SMALL,
                 "--no-progress", "--out", str(grid), "--data-root", str(data_root)]) == 0
    hashes = {f"grid/{path.relative_to(grid / 'cells')}": cell_hash(path)
              for path in sorted((grid / "cells").glob("*/*/seed_*.json"))}
    for run_dir in sorted((grid / "runs").glob("*/*")):
        hashes.update(run_hashes(run_dir, f"grid/runs/{run_dir.parent.name}/"
                                          f"{run_dir.name.split('_seeds')[0]}"))
    for method in TRAIN_METHODS:
        out = work / "train" / method
        assert main(["train", "hopper-3x1", "--method", method, "--preset", "smoke",
                     "--data", str(data_root / "smoke" / "hopper-3x1" / "paper"),
                     "--seeds", "0,1", *SMALL, "--hidden-sizes", "16,16", "--batch-size", "32",
                     "--out", str(out), "--no-progress"]) == 0
        hashes.update(run_hashes(out, f"train/{method}"))
    hashes.update(learner_hashes())
    return hashes


def machine() -> dict[str, str]:
    """What bitwise equality depends on besides the code."""
    from importlib.metadata import PackageNotFoundError, version

    record = {"python": platform.python_version(), "machine": platform.machine()}
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    model = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    record["cpu"] = model[0] if model else platform.processor()
    # The model name alone does not tell the kinds apart: "AMD EPYC" names an AVX2 machine and
    # an AVX-512 one, and XLA's code differs between them (docs/reproduce.md).
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")),
                 [])
    record["avx512f"] = "yes" if "avx512f" in flags else "no"
    for name in LIBRARIES:
        try:
            record[name] = version(name)
        except PackageNotFoundError:
            record[name] = "absent"
    return record


def produce_in_subprocess(work: Path) -> dict[str, str]:
    env = {**os.environ, **SINGLE_THREAD, "PYTHONPATH": str(ROOT / "src"),
           "MABCQ_JAX_CACHE": os.environ.get("MABCQ_JAX_CACHE", str(
               Path(tempfile.gettempdir()) / "mabcq-test-jax-cache"))}
    result = subprocess.run([sys.executable, __file__, "--produce", str(work)], env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return json.loads((work / "hashes.json").read_text())


def fixture_for(machines: list[dict], here: dict[str, str]) -> dict[str, str] | None:
    """The hashes recorded on this kind of machine (same CPU model and library versions)."""
    return next((entry["hashes"] for entry in machines if entry["machine"] == here), None)


def test_smoke_runs_are_bitwise_what_the_fixture_holds(tmp_path: Path) -> None:
    machines = json.loads(FIXTURE.read_text())["machines"]
    here = machine()
    expected = fixture_for(machines, here)
    if expected is None:
        kinds = [f"{entry['machine']['cpu']}, AVX-512 {entry['machine'].get('avx512f')}"
                 for entry in machines]
        pytest.skip(f"no hashes recorded on this machine kind ({here['cpu']}, AVX-512 "
                    f"{here['avx512f']}) with these library versions (recorded: {kinds}); "
                    "add them here, before a change, with "
                    "`python tests/test_behavior_fixture.py --write`")
    hashes = produce_in_subprocess(tmp_path)
    differing = sorted(name for name in set(hashes) | set(expected)
                       if hashes.get(name) != expected.get(name))
    assert not differing, f"changed: {differing}"


if __name__ == "__main__":
    if sys.argv[1:2] == ["--produce"]:
        work = Path(sys.argv[2])
        import jax

        jax.config.update("jax_compilation_cache_dir", os.environ["MABCQ_JAX_CACHE"])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        (work / "hashes.json").write_text(json.dumps(produce(work), indent=1, sort_keys=True))
    elif sys.argv[1:] == ["--write"]:
        with tempfile.TemporaryDirectory() as folder:
            produced = produce_in_subprocess(Path(folder))
        here = machine()
        kept = [entry for entry in (json.loads(FIXTURE.read_text())["machines"]
                                    if FIXTURE.exists() else []) if entry["machine"] != here]
        FIXTURE.parent.mkdir(exist_ok=True)
        FIXTURE.write_text(json.dumps({"machines": [*kept, {"machine": here, "hashes": produced}]},
                                      indent=1, sort_keys=True) + "\n")
        print(f"wrote {len(produced)} hashes for {here['cpu']} to {FIXTURE} "
              f"({len(kept)} other machine kind(s) kept)")
    else:
        sys.exit("usage: python tests/test_behavior_fixture.py --write")
