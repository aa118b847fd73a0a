"""The package's shape (issue 21): imports inside src/mabcq run one way, from a layer to itself or
to a layer below it, never in a circle, and no module grows past ~400 lines.

The layers, bottom to top (docs/architecture.md says what each holds). A module belongs to the
layer of the longest prefix that names it; every module must belong to one. Every import counts,
at the top of a file or inside a function (a lazy import is still a dependency), except the root
package `mabcq` itself: its __init__ imports nothing at import time (its public names load lazily
from their modules), so reading `mabcq.__version__` from anywhere adds no edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src" / "mabcq"
MAX_LINES = 400

LAYERS: tuple[tuple[str, ...], ...] = (
    ("mabcq.errors", "mabcq.paper", "mabcq.util"),  # shared by all: errors, constants, files
    ("mabcq.tabular",),  # the exact engine for finite games
    ("mabcq.envs",),  # tasks over MaMuJoCo, rollouts
    ("mabcq.nets", "mabcq.weights"),  # Flax modules; MABCQ's two weights
    ("mabcq.data.schema", "mabcq.data.recipes"),  # what a dataset holds and mixes
    ("mabcq.behavior",),  # SAC behavior policies, shipped snapshots
    ("mabcq.data",),  # building, reading, writing, importing datasets
    ("mabcq.learners",),  # one agent's learners, the batched step over agents
    ("mabcq.training",),  # run config and presets, the loop, evaluation, logs, checkpoints
    ("mabcq.video",),  # videos of evaluations: films rollouts, writes MP4/GIF
    ("mabcq.grid",),  # the paper's grid of runs, its cells, workers, Ray
    ("mabcq.report",),  # tables and figures from a grid's results
    ("mabcq.api",),  # the Python API
    ("mabcq.cli", "mabcq.__main__"),  # the command line
)


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(SOURCE.rglob("*.py")):
        parts = path.relative_to(SOURCE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of `known` that `name` imports (a package's __init__ for `from p import x`
    when x is not a module), the root package left out."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                found.add(f"{module}.{alias.name}" if f"{module}.{alias.name}" in known
                          else module)
    return {module for module in found if module in known and module not in ("mabcq", name)}


def layer_of(module: str) -> int | None:
    best, index = -1, None
    for position, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, index = len(prefix), position
    return index


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(name, path, set(found)) for name, path in found.items()}


def test_every_module_has_a_layer():
    assert [name for name in modules() if name != "mabcq" and layer_of(name) is None] == []


def test_no_import_from_a_lower_layer_to_a_higher_one():
    upward = sorted(f"{name} -> {target}" for name, targets in graph().items() if name != "mabcq"
                    for target in targets
                    if layer_of(target) is not None and layer_of(name) is not None
                    and layer_of(target) > layer_of(name))
    assert upward == []


def test_no_import_circle():
    edges = {name: targets for name, targets in graph().items() if name != "mabcq"}
    circles, state = [], {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(edges.get(name, ())):
            if state.get(target) == "open":
                circles.append(" -> ".join(path[path.index(target):] + [name, target])
                               if target in path else f"{name} -> {target}")
            elif target not in state:
                visit(target, path + [name])
        state[name] = "done"

    for name in sorted(edges):
        if name not in state:
            visit(name, [])
    assert circles == []


def test_no_module_over_400_lines():
    long = {name: count for name, path in modules().items()
            if (count := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}
