#!/usr/bin/env bash
# Wheels that the GPU machine lacks (its image has JAX, Flax, Optax, h5py, tqdm, matplotlib on
# Python 3.12 but no simulator), downloaded here into .whl/ for `carry` (see docs/reproduce.md),
# with pytest and its two small needs for scripts/device_tests.sh (docs/versions.md).
set -euo pipefail
cd "$(dirname "$0")/.."
exclude="$(git rev-parse --git-path info/exclude)"  # in a worktree .git is a file
mkdir -p "$(dirname "$exclude")"
grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >> "$exclude"
mkdir -p .whl
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
         manylinux1_x86_64; do platforms+=(--platform "$p"); done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp "${platforms[@]}" -d .whl \
    mujoco==4.0.0 mujoco-core==4.0.0 gymnasium==1.4.0 gymnasium-robotics==1.4.2 \
    tensorboardX==2.6.4 pettingzoo==1.27.0 farama-notifications glfw pyopengl \
    pytest==9.2.0 pluggy==1.7.0 iniconfig==2.3.1
du -sh .whl
