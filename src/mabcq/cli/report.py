"""`mabcq report RESULTS --out DIR`: tables and figures from results on disk."""

from __future__ import annotations

import argparse

from mabcq.cli import kinds


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="write report.md and figures from a results directory (never trains)",
        description="Read RESULTS/{returns,diagnostics,timing,behavior}.csv and grid.json (as "
                    "`mabcq reproduce` writes them; any may be missing) and write "
                    "OUT/report.md with the paper's Tables 5-7 and Figures 2-5, mean ± std, "
                    "95% bootstrap CIs over seeds and an IQM aggregate (docs/report.md).")
    parser.add_argument("results", type=kinds.existing_dir, metavar="RESULTS",
                        help="the results directory")
    parser.add_argument("--out", type=kinds.output_dir, metavar="DIR",
                        help="output directory for report.md and the PNGs "
                             "(default: RESULTS/report)")
    parser.add_argument("--videos", action="store_true",
                        help="also film, per task, MABCQ's and BCQ's final policies (one seed, "
                             "from RESULTS/runs/) and the expert behavior: OUT/videos/, GIFs "
                             "shown beside Table 6 (needs the `video` extra and an offscreen "
                             "OpenGL)")
    parser.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    from mabcq.report.build import build_report

    out_dir = args.out if args.out is not None else kinds.check(
        kinds.output_dir, args.results / "report", "--out")
    if args.videos:
        from mabcq.video import require_video

        require_video()  # before any work: one line naming what to install
    result = build_report(args.results, out_dir, videos=args.videos)
    print(f"wrote {result.report} and {len(result.figures)} figure(s)")
    for path in result.figures:
        print(f"  {path}")
    if args.videos:
        print(f"videos in {out_dir / 'videos'}")
    if result.missing:
        print(f"not reported ({len(result.missing)}; see report.md):")
        for line in result.missing:
            print(f"  {line}")
    return 0
