"""The kinds of value a command-line flag takes, each checked in one place.

Every flag of every command names its kind here as argparse's `type=`, so a bad value is refused
while parsing, before any import of JAX or MuJoCo and before anything is written, with one line
(`mabcq: error: train: argument --batch-size: must be an integer >= 1, got '0'`). A new flag gets
the same treatment by naming a kind. Values a handler computes itself (a default output directory
built from the task name) go through the same kind with `check`.

Each kind is a callable `text -> value` that raises argparse.ArgumentTypeError with the reason.
Checks that need more than the value (an agent index against the task's agent count, a dataset
against its task) stay in the handlers, ahead of any file they create.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mabcq.errors import UserError

T = TypeVar("T")

# Seeds go to numpy, Gymnasium and jax.random.PRNGKey; all take 0 .. 2**32 - 1.
SEED_MAX = 2**32 - 1


def _kind(name: str, parse: Callable[[str], T]) -> Callable[[str], T]:
    """`parse` under a readable name (argparse shows it in some messages)."""
    parse.__name__ = name
    return parse


def integer(minimum: int | None = None, maximum: int | None = None) -> Callable[[str], int]:
    """An integer in [minimum, maximum] (either bound optional)."""
    if minimum is not None and maximum is not None:
        domain = f"an integer in {minimum}..{maximum}"
    elif minimum is not None:
        domain = f"an integer >= {minimum}"
    elif maximum is not None:
        domain = f"an integer <= {maximum}"
    else:
        domain = "an integer"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"must be {domain}, got {text!r}") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"must be {domain}, got {text!r}")
        return value

    return _kind(domain, parse)


def number(minimum: float | None = None, maximum: float | None = None, *,
           above: float | None = None) -> Callable[[str], float]:
    """A finite float in [minimum, maximum], or > above (NaN and inf are never accepted)."""
    if minimum is not None and maximum is not None:
        domain = f"a finite number in [{minimum:g}, {maximum:g}]"
    else:
        bounds = [f"{sign} {bound:g}" for sign, bound in
                  ((">", above), (">=", minimum), ("<=", maximum)) if bound is not None]
        domain = " ".join(["a finite number", " and ".join(bounds)]).strip()

    def parse(text: str) -> float:
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"must be {domain}, got {text!r}") from None
        if (not math.isfinite(value)
                or (minimum is not None and value < minimum)
                or (maximum is not None and value > maximum)
                or (above is not None and value <= above)):
            raise argparse.ArgumentTypeError(f"must be {domain}, got {text!r}")
        return value

    return _kind(domain, parse)


def comma_list(item: Callable[[str], T], what: str, example: str, *,
               distinct: bool = True) -> Callable[[str], tuple[T, ...]]:
    """Comma-separated items, each of kind `item`: no empty entry, none repeated (`distinct`)."""

    def parse(text: str) -> tuple[T, ...]:
        entries = [entry.strip() for entry in text.split(",")]
        if not text.strip() or not all(entries):
            raise argparse.ArgumentTypeError(
                f"empty entry in {text!r}; give comma-separated {what}, e.g. {example}")
        values = []
        for entry in entries:
            try:
                values.append(item(entry))
            except argparse.ArgumentTypeError as error:
                where = f"{entry!r} in {text!r}: " if len(entries) > 1 else ""
                raise argparse.ArgumentTypeError(f"{where}{error}") from None
        if distinct and len(set(values)) != len(values):
            raise argparse.ArgumentTypeError(f"repeated entry in {text!r}; give each once")
        return tuple(values)

    return _kind(f"comma-separated {what}", parse)


positive_int = integer(1)
non_negative_int = integer(0)
seed = integer(0, SEED_MAX)
seed_list = comma_list(seed, "seeds (integers in 0..4294967295)", "0,1,2")
# Network widths: positive, and small enough that a typo does not try to allocate terabytes.
hidden_sizes = comma_list(integer(1, 65_536), "layer widths", "64,64", distinct=False)
# Lockstep envs of one rollout: each is a MuJoCo simulator in this process.
env_count = integer(1, 256)
probability = number(0.0, 1.0)
non_negative_number = number(minimum=0.0)
positive_number = number(above=0.0)


def _commit(text: str) -> str:
    """A git commit or its prefix: 7 to 40 hex digits (lower-cased, as git writes them)."""
    if not re.fullmatch(r"[0-9a-fA-F]{7,40}", text):
        raise argparse.ArgumentTypeError(f"must be a commit of 7 to 40 hex digits, got {text!r}")
    return text.lower()


commit_list = comma_list(_kind("a commit", _commit), "commits (7+ hex digits)", "3e774ae")


def _user_error_to_argument(check: Callable[[str], Any], text: str) -> Any:
    try:
        return check(text)
    except UserError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def task_name(text: str) -> str:
    """A task of mabcq.envs.tasks (the list is in the message otherwise)."""
    from mabcq.envs.tasks import get_task

    return _user_error_to_argument(get_task, text).name


def task_list(text: str) -> tuple[str, ...]:
    """'all' (the paper's four tasks and swimmer-2x1) or comma-separated task names."""
    if text.strip() == "all":
        from mabcq.paper import PAPER_TASKS

        return (*PAPER_TASKS, "swimmer-2x1")
    return comma_list(task_name, "task names", "hopper-3x1,ant-4x2")(text)


def _single_method(text: str) -> str:
    from mabcq.learners.registry import parse_method

    _user_error_to_argument(parse_method, text)
    return text


method_list = comma_list(_single_method, "method names", "mabcq,bcq")


def method_group(text: str) -> str:
    """One method (mabcq-epsE too), or one family's methods joined by '+' trained in one step."""
    from mabcq.learners.registry import split_methods

    return "+".join(_user_error_to_argument(split_methods, text))


def existing_file(text: str) -> Path:
    """A file that exists and can be read."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: is a directory, not a file")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"{text}: not readable (permission denied)")
    return path


def existing_dir(text: str) -> Path:
    """A directory that exists and can be listed."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such directory")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a file, not a directory")
    if not os.access(path, os.R_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text}: not readable (permission denied)")
    return path


def existing_path(text: str) -> Path:
    """A file or a directory that exists."""
    path = Path(text)
    if path.is_dir():
        return existing_dir(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file or directory")
    return existing_file(text)


def output_dir(text: str) -> Path:
    """A directory to write into: an existing writable directory, or a path whose nearest
    existing parent is a writable directory (it is created later, by the command's work).
    Nothing is created here."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty path; give a directory")
    path = Path(text)
    if path.is_symlink() and not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: a broken symbolic link; choose another path")
    if path.exists():
        if not path.is_dir():
            raise argparse.ArgumentTypeError(f"{text}: is a file, not a directory; choose "
                                             "another path")
        if not os.access(path, os.W_OK | os.X_OK):
            raise argparse.ArgumentTypeError(f"{text}: directory not writable (permission "
                                             "denied); choose another path")
        return path
    parent = Path(os.path.abspath(path)).parent
    while not parent.exists() and not parent.is_symlink():
        parent = parent.parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: {parent} is not a directory, so nothing "
                                         "can be created under it; choose another path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text}: cannot be created, {parent} is not "
                                         "writable (permission denied); choose another path")
    return path


def output_file(text: str) -> Path:
    """A file to write: not a directory, in a directory that exists or can be created."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a directory where a file must go; move "
                                         "it or choose another path")
    output_dir(str(path.parent))
    return path


def behavior_source(text: str) -> str:
    """`shipped` (the package's shipped set) or an existing `mabcq behavior train` directory."""
    if text == "shipped":
        return text
    existing_dir(text)
    return text


def ray_address(text: str) -> str:
    """A Ray cluster to join: `auto` (the one `ray start` started on this machine), or
    HOST:PORT, optionally as ray://HOST:PORT (Ray Client)."""
    value = text.strip()
    if value == "auto":
        return value
    match = re.fullmatch(r"(ray://)?([A-Za-z0-9_.-]+|\[[0-9A-Fa-f:]+\]):(\d{1,5})", value)
    if match is None or not 1 <= int(match[3]) <= 65_535:
        raise argparse.ArgumentTypeError(
            f"must be auto or HOST:PORT (e.g. 10.0.0.1:6379, ray://head:10001), got {text!r}")
    return value


def ray_resource(text: str) -> float:
    """A Ray resource request: a finite number >= 0, fractional only below 1 (Ray's rule)."""
    value = non_negative_number(text)
    if value > 1 and not value.is_integer():
        raise argparse.ArgumentTypeError(
            f"must be a fraction below 1 or a whole number (Ray's rule), got {text!r}")
    return value


def check(kind: Callable[[str], T], value: Any, flag: str) -> T:
    """Apply `kind` to a value a handler computed (e.g. a default path); UserError if refused,
    in the same words as at parse time."""
    try:
        return kind(str(value))
    except argparse.ArgumentTypeError as error:
        raise UserError(f"argument {flag}: {error}") from None


_LABEL = re.compile(r"[A-Za-z0-9][-\w.]*")


def task_label(text: str) -> str:
    """A task of mabcq.envs.tasks (then data are checked against it), or a name of the user's
    own for data of a task mabcq does not know: letters, digits, '-', '_', '.'."""
    from mabcq.envs.tasks import TASKS

    if text in TASKS or _LABEL.fullmatch(text):
        return text
    raise argparse.ArgumentTypeError(f"{text!r}: give a task name (known: {', '.join(TASKS)}) "
                                     "or a name of your own of letters, digits, '-', '_', '.'")


def name_part(text: str) -> str:
    """One path or id component: letters, digits, '-', '_' (a Minari dataset name, a vault
    UID)."""
    if not re.fullmatch(r"[-\w]+", text):
        raise argparse.ArgumentTypeError(f"{text!r}: use letters, digits, '-' and '_' only")
    return text


def dataset_source(text: str) -> str:
    """A dataset path or id (e.g. a Minari id): non-empty, resolved by the command."""
    if not text.strip() or "\0" in text:
        raise argparse.ArgumentTypeError(f"{text!r}: give a dataset path or id")
    return text
