#!/usr/bin/env bash
# Optional: a side virtualenv with d3rlpy 2.8.1 on torch 2.13.0, for the benchmarks that run
# d3rlpy beside this project (bench_update.py's d3rlpy row; xcheck_bcq.py, the BCQ cross-check).
# d3rlpy 2.8.1 pins gymnasium==1.0.0 while mabcq needs >=1.2, so it cannot be an extra of the
# project. It lives in its own venv, installed without its pinned dependencies (it runs with
# the project's gymnasium 1.4), and that venv also sees the project's .venv (a .pth file), so
# both sides step the very same simulator code.
# `torch==2.13.0` resolves to a CPU wheel on this machine; elsewhere pip may bring CUDA builds.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || { echo "run the README's setup first (.venv missing)" >&2; exit 2; }
python3 -m venv .benchvenv
.benchvenv/bin/python -m pip install -q torch==2.13.0
.benchvenv/bin/python -m pip install -q --no-deps d3rlpy==2.8.1 gym==0.26.2 gym-notices
.benchvenv/bin/python -m pip install -q structlog colorama dataclasses-json "marshmallow<4" \
    typing-inspect mypy-extensions scikit-learn click cloudpickle
main_site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
bench_site=$(.benchvenv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$main_site" > "$bench_site/mabcq-main-venv.pth"
PYTHONPATH=src .benchvenv/bin/python -c "import d3rlpy, gymnasium, mabcq; print('d3rlpy', d3rlpy.__version__,
'with gymnasium', gymnasium.__version__)"
echo "ready: PYTHON=.benchvenv/bin/python bash benchmarks/xcheck_all.sh"
