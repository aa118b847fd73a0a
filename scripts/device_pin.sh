#!/usr/bin/env bash
# Here, before device calls: the grid's pinned code into the ignored .pin/ for `carry`, so that a
# lent machine runs the pin while this checkout stays on main (the CPU queue runs from it).
#   bash scripts/device_pin.sh <pinned commit>      # then carry [".whl", ".pin"]
# .pin holds the pin's src (without the shipped behavior policies: scripts/device_grid.sh copies
# them there from the tree, so they travel once; refused unless they are the pin's bytes), its
# scripts and pyproject.toml, and COMMIT (the full commit, which device_grid.sh checks).
set -euo pipefail
cd "$(dirname "$0")/.."
pin="$(git rev-parse --verify "${1:?usage: device_pin.sh <pinned commit>}^{commit}")"
shipped=src/mabcq/behavior/shipped
if ! git diff --quiet "$pin" -- "$shipped"; then
    echo "device_pin: error: $shipped here differs from ${pin:0:12}'s; the machine would train on other data" >&2
    exit 2
fi
exclude="$(git rev-parse --git-path info/exclude)"
mkdir -p "$(dirname "$exclude")"
grep -qx '/.pin/' "$exclude" 2>/dev/null || echo '/.pin/' >> "$exclude"
rm -rf .pin && mkdir .pin
git archive "$pin" src scripts pyproject.toml | tar -x -C .pin
rm -rf ".pin/$shipped"
echo "$pin" > .pin/COMMIT
echo "device_pin: .pin holds ${pin:0:12} ($(du -sh .pin | cut -f1)); carry it with .whl"
