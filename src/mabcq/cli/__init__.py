"""The `mabcq` command line: parse, call, print. Each command group lives in its own module,
which exposes `register(subparsers)`; the handlers are imported lazily so `--help` stays fast.

Every error a user can cause ends in one line `mabcq: error: ...` and exit code 2: argparse's
own (an unknown choice, a missing argument), a flag's value outside its kind (mabcq.cli.kinds),
and a UserError from a handler. A closed stdout (`mabcq matrix | head -1`) ends quietly with
exit code 141 (128 + SIGPIPE), what a shell reports for a Unix tool stopped the same way.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NoReturn

from mabcq import __version__
from mabcq.errors import UserError

# Every command group; each module defines `register(subparsers)`.
COMMAND_MODULES: tuple[str, ...] = (
    "mabcq.cli.matrix",
    "mabcq.cli.behavior",
    "mabcq.cli.data",
    "mabcq.cli.train",
    "mabcq.cli.reproduce",
    "mabcq.cli.decentralized",
    "mabcq.cli.report",
    "mabcq.cli.acting",
)

# Exit code of a command whose stdout was closed by its reader (128 + SIGPIPE's number 13).
EXIT_BROKEN_PIPE = 141


class UsageError(UserError):
    """argparse refused the command line (raised by MabcqArgumentParser.error)."""


class MabcqArgumentParser(argparse.ArgumentParser):
    """argparse with its errors in the project's one-line form instead of usage + message.

    Subparsers inherit the class (argparse makes them with the parent's type), so `data build`
    answers `mabcq: error: data build: argument --recipe: invalid choice: ...`.
    """

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("mabcq").strip()
        where = f"{command}: " if command else ""
        raise UsageError(where + " ".join(message.split()))


def build_parser() -> argparse.ArgumentParser:
    parser = MabcqArgumentParser(
        prog="mabcq",
        description="Offline, fully decentralized multi-agent RL: MABCQ and its baselines.",
    )
    parser.add_argument("--version", action="version", version=f"mabcq {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        return _run(argv)
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE


def _run(argv: list[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not hasattr(args, "handler"):
            parser.print_help()
            return 0
        return int(args.handler(args) or 0)
    except UserError as error:
        message = str(error).replace("\n", " ")
        print(f"mabcq: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mabcq: interrupted", file=sys.stderr)
        return 130


def _discard_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real file behind sys.stdout (tests)
        pass


if __name__ == "__main__":
    sys.exit(main())
