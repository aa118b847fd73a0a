"""`build_report`: a results directory on disk -> OUT/report.md and its PNG figures.

Reads only what `mabcq reproduce` wrote (never trains). Each section appears when its data
exist, else as one line naming the missing file or rows. report.md has no timestamps or paths:
the same CSVs give the same report.md byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mabcq.report import sections_acting as acting
from mabcq.report import sections_diagnostics as diagnostics
from mabcq.report import sections_families as families
from mabcq.report import sections_returns as returns
from mabcq.report import sections_study as study
from mabcq.report.completeness import completeness
from mabcq.report.context import Context
from mabcq.report.load import load_results
from mabcq.util.atomic import write_bytes

REPORT_FILE = "report.md"
FIGURE_FILES = ("fig2_learning_curves.png", "fig3_value_difference.png",
                "fig4_swimmer.png", "fig5_eps_sweep.png", families.FIGURE6, families.TD3BC_FIGURE)

SECTIONS = (returns.table6, returns.figure2, diagnostics.figure3, diagnostics.table5,
            diagnostics.table7, returns.figure5, returns.figure4, families.figure6,
            families.td3bc_table, diagnostics.lambda_table, diagnostics.weight_diagnostics_table,
            acting.acting_section, study.study_section)


@dataclass(frozen=True)
class ReportResult:
    report: Path
    figures: tuple[Path, ...]
    missing: tuple[str, ...]  # one line per section or file not reported


def build_report(results_dir: Path, out_dir: Path, videos: bool = False) -> ReportResult:
    """Write `out_dir`/report.md and the figures whose data exist in `results_dir`.

    Malformed input files raise `UserError` naming the file and column; missing ones are
    reported inside report.md. Figures of an earlier report in `out_dir` whose data are gone
    are removed, so every PNG there belongs to this report. videos: also film each task's
    MABCQ, BCQ and expert policies into `out_dir`/videos/ (mabcq.report.videos), shown after
    Table 6.
    """
    if videos:  # before any work: one line naming what to install
        from mabcq.video import require_video

        require_video()
    results = load_results(Path(results_dir))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = Context.create(results, out_dir)
    body: list[str] = []
    for section in SECTIONS:
        body += section(ctx)
        if videos and section is returns.table6:
            from mabcq.report.videos import section as video_section

            body += video_section(ctx)
    head = returns.header(ctx) + returns.file_summary(ctx) + completeness(ctx)
    if ctx.missing:
        head += ["Not in this report (" + str(len(ctx.missing)) + "):", ""]
        head += [f"- {line}" for line in ctx.missing] + [""]
    text = "\n".join(head + body).rstrip("\n") + "\n"
    report = out_dir / REPORT_FILE
    write_bytes(report, text.encode("utf-8"))
    for stale in set(FIGURE_FILES) - set(ctx.figures):
        (out_dir / stale).unlink(missing_ok=True)
    return ReportResult(report, tuple(out_dir / name for name in ctx.figures),
                        tuple(ctx.missing))
