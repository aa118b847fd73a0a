"""What every report section needs: the loaded results, where figures go, one color per method,
and the short notes a section prints when its data are not there."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mabcq.report.figures import color_of
from mabcq.report.load import Results
from mabcq.report.tables import order_methods

SWIMMER = "swimmer-2x1"
MAKE_COMMAND = "`mabcq reproduce`"


@dataclass
class Context:
    results: Results
    out_dir: Path
    colors: dict[str, str]
    figures: list[str] = field(default_factory=list)  # file names written, in order
    missing: list[str] = field(default_factory=list)  # one line per thing not reported

    @classmethod
    def create(cls, results: Results, out_dir: Path) -> Context:
        methods = {row["method"] for row in (results.returns or [])}
        methods |= {row["method"] for row in (results.diagnostics or [])}
        colors = {method: color_of(index) for index, method in enumerate(order_methods(methods))}
        return cls(results, out_dir, colors)

    def file_missing(self, file: str, what: str) -> list[str]:
        """One line for a section whose file is not there; also collected for the summary."""
        line = f"_{what}: not reported, `{file}` is missing; {MAKE_COMMAND} writes it._"
        self.missing.append(f"{what}: `{file}` is missing")
        return [line, ""]

    def rows_missing(self, file: str, what: str, needed: str) -> list[str]:
        """One line for a section whose file holds none of the rows it needs."""
        line = (f"_{what}: not reported, `{file}` has no rows for {needed}; a {MAKE_COMMAND} "
                f"run that includes them writes them._")
        self.missing.append(f"{what}: `{file}` has no rows for {needed}")
        return [line, ""]

    def method_color(self, method: str) -> str:
        return self.colors.get(method, "#000000")


def main_tasks(tasks: set[str]) -> set[str]:
    """Tasks of the paper's main tables (everything but the appendix's Swimmer)."""
    return {task for task in tasks if task != SWIMMER}
