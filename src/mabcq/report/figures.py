"""The report's figures: curves over updates, mean with a +-std band over seeds, one panel per
task. Matplotlib's Agg canvas only (no display, no pyplot state); PNGs written atomically."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mabcq.report.tables import Curve
from mabcq.util.atomic import write_bytes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

# One color per method name across every figure, so MABCQ is the same color everywhere.
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")


@dataclass(frozen=True)
class Line:
    label: str
    curve: Curve
    color: str


@dataclass(frozen=True)
class Panel:
    """One subplot: its title, its curves and horizontal reference lines (label, value)."""

    title: str
    lines: Sequence[Line]
    references: Sequence[tuple[str, float]] = field(default_factory=tuple)


def color_of(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def plot_panels(path: Path, title: str, ylabel: str, panels: Sequence[Panel],
                xlabel: str = "updates") -> None:
    """One PNG at `path`: a grid of panels (up to 2 columns), each with a legend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = 1 if len(panels) == 1 else 2
    rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(6.0 * columns, 4.2 * rows), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for axis, panel in zip(axes, panels, strict=False):
        _draw_panel(axis, panel, xlabel, ylabel)
    for axis in axes[len(panels):]:
        axis.set_axis_off()
    figure.suptitle(title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    write_bytes(path, buffer.getvalue())


def _draw_panel(axis: Axes, panel: Panel, xlabel: str, ylabel: str) -> None:
    for line in panel.lines:
        curve = line.curve
        axis.plot(curve.updates, curve.mean, color=line.color, marker="o", markersize=3,
                  label=f"{line.label} (n={int(curve.n.max())})")
        axis.fill_between(curve.updates, curve.mean - curve.std, curve.mean + curve.std,
                          color=line.color, alpha=0.2, linewidth=0)
    for index, (label, value) in enumerate(panel.references):
        axis.axhline(value, color="black", linestyle=("--", ":", "-.")[index % 3],
                     linewidth=1, label=label)
    axis.set_title(panel.title)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
