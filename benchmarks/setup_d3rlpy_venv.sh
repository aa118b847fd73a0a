#!/usr/bin/env bash
# Optional: a side virtualenv with d3rlpy 2.8.1 on CPU torch 2.13.0, so that
# benchmarks/bench_update.py can time d3rlpy's BCQ in the same run as ours.
# d3rlpy 2.8.1 pins gymnasium==1.0.0 while mabcq needs >=1.2, so it cannot be an extra of the
# project: it lives in its own venv, which also sees the project's .venv (a .pth file).
# `torch==2.13.0` resolves to a CPU wheel on this machine; a plain `torch` would pull CUDA builds.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || { echo "run the README's setup first (.venv missing)" >&2; exit 2; }
python3 -m venv .benchvenv
.benchvenv/bin/python -m pip install -q torch==2.13.0 d3rlpy==2.8.1
main_site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
bench_site=$(.benchvenv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$main_site" > "$bench_site/mabcq-main-venv.pth"
echo "ready: PYTHONPATH=src .benchvenv/bin/python benchmarks/bench_update.py --flops"
