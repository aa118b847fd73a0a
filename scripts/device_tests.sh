#!/usr/bin/env bash
# On the lent GPU machine, from the repository root, with .whl carried (scripts/fetch_device_wheels.sh):
# the whole test suite on the image's own Python, JAX, Flax and Optax. Leaves in $OUT:
# versions.txt (each dependency's installed version against pyproject's range, JAX's devices),
# pytest.log (the whole output, its last line the summary) and junit.xml. docs/versions.md.
#   bash scripts/device_tests.sh [more pytest arguments]
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-/tmp}"
# into the image's environment, not a --target folder: some tests start `python -m mabcq` with
# PYTHONPATH set to src alone, and must still find MuJoCo (the machine is thrown away afterwards)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade .whl/*.whl \
    || exit 1
export PYTHONPATH=src XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
export MABCQ_JAX_CACHE=/tmp/mabcq-jax-cache
python3 - >"$out/versions.txt" 2>&1 <<'EOF'
import platform, tomllib
from importlib.metadata import PackageNotFoundError, version
from packaging.requirements import Requirement
print("python", platform.python_version())
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
for req in map(Requirement, project["dependencies"] + project["optional-dependencies"]["test"]):
    if req.name == "ruff":  # lint only, not on the machine
        continue
    try:
        have = version(req.name)
        verdict = "in range" if req.specifier.contains(have, prereleases=True) else "OUT OF RANGE"
    except PackageNotFoundError:
        have, verdict = "-", "MISSING"
    print(f"{req.name:20} {have:12} {str(req.specifier):14} {verdict}")
import jax
print("jax devices", jax.devices())
EOF
cat "$out/versions.txt"
# The optional extras' tests (Ray ~70 MB of wheels, Minari, Flashbax) do not fit the 64 MiB that a
# device call carries, and none of them touches the accelerator: they run in CI and here on CPU.
optional_tests=(--ignore=tests/test_ray_backend.py --ignore=tests/test_data_minari.py
                --ignore=tests/test_data_import_sources.py)
# SIGINT before the 10-minute limit of one device command: pytest still prints its summary
timeout -s INT 540 python3 -m pytest -q -p no:cacheprovider --junitxml="$out/junit.xml" \
    "${optional_tests[@]}" "$@" \
    2>&1 | tee "$out/pytest.log"
exit "${PIPESTATUS[0]}"
