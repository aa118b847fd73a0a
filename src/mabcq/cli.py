"""The `mabcq` command line: parse, call, print. Each command group lives in its own module,
which exposes `register(subparsers)`; the handlers are imported lazily so `--help` stays fast."""

from __future__ import annotations

import argparse
import importlib
import sys

from mabcq import __version__
from mabcq.errors import UserError

# Every command group; each module defines `register(subparsers)`.
COMMAND_MODULES: tuple[str, ...] = (
    "mabcq.tabular.commands",
    "mabcq.behavior.commands",
    "mabcq.data.commands",
    "mabcq.train_commands",
    "mabcq.reproduce_commands",
    "mabcq.report.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mabcq",
        description="Offline, fully decentralized multi-agent RL: MABCQ and its baselines.",
    )
    parser.add_argument("--version", action="version", version=f"mabcq {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 0
    try:
        return int(args.handler(args) or 0)
    except UserError as error:
        print(f"mabcq: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mabcq: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
