"""A corpus of malformed command lines, every command and every kind of value: each one is
refused before any work with exit code 2 and exactly one line `mabcq: error: ...` (no
traceback, nothing on stdout), and leaves the current directory and the data it was given
exactly as they were. Then a closed stdout (`mabcq matrix | head -1`) ends quietly.

Every case fails while parsing or in a handler's first checks, before JAX compiles anything, so
the corpus runs in a few seconds. Placeholders: {file} an existing file, {dir} an existing empty
directory, {data} a small valid dataset of hopper-3x1, {agent0} its agent 0 file; the current
directory is the test's tmp_path (see `workdir` for what else it holds).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_train_support import write_random_dataset

from mabcq.cli import EXIT_BROKEN_PIPE, build_parser, main
from mabcq.cli import kinds as cli_types

SRC = Path(__file__).resolve().parents[1] / "src"

TRAIN = ["train", "hopper-3x1", "--data", "{data}"]
BUILD = ["data", "build", "hopper-3x1", "--out", "out"]
EVALUATE = ["evaluate", "hopper-3x1", "--policies", "{file}", "{file}", "{file}"]
SAC = ["behavior", "train", "hopper-3x1", "--out", "out"]

# (command line, a piece of the expected error line), grouped by command; the id says the class.
CORPUS: dict[str, tuple[list[str], str]] = {
    # top level: argparse's own errors in the one-line form
    "top-unknown-command": (["bogus"], "invalid choice: 'bogus'"),
    "top-unknown-flag": (["--verbose"], "unrecognized arguments: --verbose"),
    "top-group-without-subcommand": (["data"], "data: the following arguments are required"),
    # matrix: seeds, integers and numbers outside their domain, choices, input files
    "matrix-negative-seed": (["matrix", "--seed=-1"], "--seed: must be an integer in 0.."),
    "matrix-seed-too-large": (["matrix", "--seed", "4294967296"], "--seed: must be an integer"),
    "matrix-seed-not-integer": (["matrix", "--seed", "1.5"], "got '1.5'"),
    "matrix-samples-zero": (["matrix", "--samples", "0"], "--samples: must be an integer >= 1"),
    "matrix-samples-negative": (["matrix", "--samples=-3"], "--samples"),
    "matrix-gamma-nan": (["matrix", "--gamma", "nan"], "--gamma: must be a finite number"),
    "matrix-gamma-above-one": (["matrix", "--gamma", "1.5"], "in [0, 1], got '1.5'"),
    "matrix-eps-negative": (["matrix", "--eps=-1"], "--eps: must be a finite number >= 0"),
    "matrix-eps-inf": (["matrix", "--eps", "inf"], "--eps"),
    "matrix-tol-zero": (["matrix", "--tol", "0"], "--tol: must be a finite number > 0"),
    "matrix-max-iterations-zero": (["matrix", "--max-iterations", "0"], "--max-iterations"),
    "matrix-decimals-too-many": (["matrix", "--decimals", "13"], "in 0..12"),
    "matrix-stages-too-many": (["matrix", "--stages", "7"], "--stages: must be an integer in 1..6"),
    "matrix-unknown-method": (["matrix", "--method", "vd,bogus"], "unknown method 'bogus'"),
    "matrix-game-missing": (["matrix", "--game", "nope.json"], "nope.json: no such file"),
    "matrix-game-is-dir": (["matrix", "--game", "{dir}"], "is a directory, not a file"),
    "matrix-flag-value-on-switch": (["matrix", "--json=yes"], "ignored explicit argument"),
    # behavior train / ship / tasks
    "sac-unknown-task": (["behavior", "train", "cheetah", "--out", "out"],
                         "unknown task 'cheetah'"),
    "sac-out-is-file": (["behavior", "train", "hopper-3x1", "--out", "{file}"],
                        "is a file, not a directory"),
    "sac-out-under-file": (["behavior", "train", "hopper-3x1", "--out", "{file}/sub"],
                           "nothing can be created under it"),
    "sac-negative-seed": ([*SAC, "--seed=-1"], "--seed: must be an integer in 0.."),
    "sac-total-steps-zero": ([*SAC, "--total-steps", "0"], "--total-steps"),
    "sac-num-envs-negative": ([*SAC, "--num-envs=-2"], "--num-envs: must be an integer in 1..256"),
    "sac-num-envs-zero": ([*SAC, "--num-envs", "0"], "--num-envs"),
    "sac-eval-every-text": ([*SAC, "--eval-every", "abc"], "got 'abc'"),
    "sac-unknown-preset": ([*SAC, "--preset", "huge"], "invalid choice: 'huge'"),
    "sac-missing-out": (["behavior", "train", "hopper-3x1"], "required: --out"),
    "ship-dir-missing": (["behavior", "ship", "nope", "--task", "hopper-3x1"],
                         "nope: no such directory"),
    "ship-dir-is-file": (["behavior", "ship", "{file}", "--task", "hopper-3x1"],
                         "is a file, not a directory"),
    "ship-unknown-task": (["behavior", "ship", "{dir}", "--task", "x"], "unknown task 'x'"),
    "ship-early-until-zero": (["behavior", "ship", "{dir}", "--task", "hopper-3x1",
                               "--early-until", "0"], "--early-until"),
    "ship-root-is-file": (["behavior", "ship", "{dir}", "--task", "hopper-3x1",
                           "--shipped-root", "{file}"], "--shipped-root"),
    "behavior-without-subcommand": (["behavior"], "required: SUBCOMMAND"),
    "tasks-extra-argument": (["behavior", "tasks", "extra"], "unrecognized arguments: extra"),
    # data build / info
    "build-unknown-recipe": ([*BUILD, "--recipe", "bogus"], "data build: argument --recipe: "
                             "invalid choice: 'bogus'"),
    "build-unknown-preset": ([*BUILD, "--preset", "bogus"], "invalid choice: 'bogus'"),
    "build-unknown-task": (["data", "build", "cheetah", "--out", "out"], "unknown task"),
    "build-out-is-file": (["data", "build", "hopper-3x1", "--out", "{file}"], "is a file"),
    "build-out-under-file": (["data", "build", "hopper-3x1", "--out", "{file}/x"],
                             "nothing can be created under it"),
    "build-agent-file-is-dir": (["data", "build", "hopper-3x1", "--out", "clash"],
                                "clash/agent_1.h5: is a directory where a file must go"),
    "build-sac-dir-is-file": (["data", "build", "hopper-3x1", "--out", "clash2"],
                              "clash2/behavior: a file where SAC's directory goes"),
    "build-missing-out": (["data", "build", "hopper-3x1"], "required: --out"),
    "build-negative-seed": ([*BUILD, "--seed=-1"], "--seed: must be an integer in 0.."),
    "build-size-zero": ([*BUILD, "--size", "0"], "--size: must be an integer >= 1"),
    "build-noise-negative": ([*BUILD, "--noise=-1"], "--noise: must be a finite number >= 0"),
    "build-noise-nan": ([*BUILD, "--noise", "nan"], "--noise: must be a finite number"),
    "build-num-envs-zero": ([*BUILD, "--num-envs", "0"], "--num-envs"),
    "build-num-envs-negative": ([*BUILD, "--num-envs=-2"], "--num-envs"),
    "build-jobs-zero": ([*BUILD, "--jobs", "0"], "--jobs"),
    "build-behavior-missing": ([*BUILD, "--behavior", "nope"], "nope: no such directory"),
    "build-behavior-is-file": ([*BUILD, "--behavior", "{file}"], "is a file"),
    "build-shipped-root-missing": ([*BUILD, "--shipped-root", "nope"], "no such directory"),
    "build-negative-step": ([*BUILD, "--intermediate-step=-1"], "--intermediate-step"),
    "info-missing": (["data", "info", "nope.h5"], "nope.h5: no such file or directory"),
    "info-not-hdf5": (["data", "info", "{file}"], "afile"),
    "info-empty-dir": (["data", "info", "{dir}"], "adir"),
    # train
    "train-negative-seed": ([*TRAIN, "--seeds=-1"],
                            "--seeds: must be an integer in 0..4294967295, got '-1'"),
    "train-empty-seed": ([*TRAIN, "--seeds", "0,,1"], "empty entry in '0,,1'"),
    "train-repeated-seed": ([*TRAIN, "--seeds", "1,1"], "repeated entry"),
    "train-seed-text": ([*TRAIN, "--seeds", "a,b"], "'a' in 'a,b'"),
    "train-batch-size-zero": ([*TRAIN, "--batch-size", "0"], "--batch-size"),
    "train-optimism-negative": ([*TRAIN, "--optimism=-1"], "--optimism: must be a finite number "
                                "in [0, 1]"),
    "train-optimism-nan": ([*TRAIN, "--optimism", "nan"], "--optimism"),
    "train-eval-max-steps-negative": ([*TRAIN, "--eval-max-steps=-1"], "--eval-max-steps"),
    "train-updates-zero": ([*TRAIN, "--updates", "0"], "--updates"),
    "train-pretrain-negative": ([*TRAIN, "--pretrain-updates=-1"], "--pretrain-updates"),
    "train-updates-per-call-zero": ([*TRAIN, "--updates-per-call", "0"], "--updates-per-call"),
    "train-checkpoint-every-zero": ([*TRAIN, "--checkpoint-every", "0"], "--checkpoint-every"),
    "train-eval-episodes-zero": ([*TRAIN, "--eval-episodes", "0"], "--eval-episodes"),
    "train-hidden-width-zero": ([*TRAIN, "--hidden-sizes", "64,0"], "--hidden-sizes"),
    "train-out-is-file": ([*TRAIN, "--out", "{file}"], "is a file, not a directory"),
    "train-out-under-file": ([*TRAIN, "--out", "{file}/run"], "nothing can be created"),
    "train-unknown-method": ([*TRAIN, "--method", "sac"], "unknown method 'sac'"),
    "train-mixed-family": ([*TRAIN, "--method", "mabcq+ddpg"], "of one weighted family"),
    "train-repeated-method": ([*TRAIN, "--method", "bcq+bcq"], "repeated"),
    "train-unknown-preset": ([*TRAIN, "--preset", "x"], "invalid choice: 'x'"),
    "train-unknown-task": (["train", "hopper-9x9", "--data", "{data}"], "unknown task"),
    "train-negative-agent": ([*TRAIN, "--agent=-1"], "--agent: must be an integer >= 0"),
    "train-agent-out-of-range": (["train", "hopper-3x1", "--agent", "3", "--data", "{agent0}",
                                  "--out", "run"], "agents 0..2"),
    "train-agent-of-other-file": (["train", "hopper-3x1", "--agent", "1", "--data", "{agent0}",
                                   "--out", "run"], "agent 0's data"),
    "train-data-missing": (["train", "hopper-3x1", "--data", "nope", "--out", "run"],
                           "no such dataset directory"),
    "train-data-is-a-file": (["train", "hopper-3x1", "--data", "{agent0}", "--out", "run"],
                             "a file; give the dataset directory"),
    "train-data-of-other-task": (["train", "halfcheetah-2x3", "--data", "{data}", "--out",
                                  "run"], "halfcheetah-2x3"),
    # evaluate
    "evaluate-max-steps-zero": ([*EVALUATE, "--max-steps", "0"], "--max-steps"),
    "evaluate-max-steps-negative": ([*EVALUATE, "--max-steps=-3"], "--max-steps"),
    "evaluate-episodes-zero": ([*EVALUATE, "--episodes", "0"], "--episodes"),
    "evaluate-negative-seed": ([*EVALUATE, "--seed=-1"], "--seed"),
    "evaluate-policy-missing": (["evaluate", "hopper-3x1", "--policies", "a", "b", "c"],
                                "a: no such file"),
    "evaluate-policy-is-dir": (["evaluate", "hopper-3x1", "--policies", "{dir}"],
                               "is a directory"),
    "evaluate-policy-count": (["evaluate", "hopper-3x1", "--policies", "{file}"], "3 agents"),
    "evaluate-unknown-task": (["evaluate", "cheetah", "--policies", "{file}"], "unknown task"),
    # demo
    "demo-out-is-file": (["demo", "--out", "{file}"], "is a file, not a directory"),
    "demo-updates-zero": (["demo", "--updates", "0"], "--updates"),
    "demo-negative-seed": (["demo", "--seeds=-1"], "--seeds"),
    "demo-unknown-task": (["demo", "--task", "bogus"], "unknown task 'bogus'"),
    # reproduce
    "reproduce-empty-task": (["reproduce", "--tasks", "hopper-3x1,,ant-4x2"], "empty entry"),
    "reproduce-unknown-task": (["reproduce", "--tasks", "foo"], "unknown task 'foo'"),
    "reproduce-unknown-method": (["reproduce", "--methods", "sac"], "unknown method 'sac'"),
    "reproduce-eps-outside": (["reproduce", "--methods", "mabcq-eps2"], "eps must be"),
    "reproduce-repeated-seed": (["reproduce", "--seeds", "0,0"], "repeated entry"),
    "reproduce-negative-seed": (["reproduce", "--seeds=-1"], "--seeds"),
    "reproduce-updates-zero": (["reproduce", "--updates", "0"], "--updates"),
    "reproduce-data-jobs-zero": (["reproduce", "--data-jobs", "0"], "--data-jobs"),
    "reproduce-out-is-file": (["reproduce", "--out", "{file}"], "--out"),
    "reproduce-data-root-under-file": (["reproduce", "--data-root", "{file}/d"], "--data-root"),
    "reproduce-unknown-preset": (["reproduce", "--preset", "x"], "invalid choice: 'x'"),
    "reproduce-commit-not-hex": (["reproduce", "--allow-commits", "3e774ae,main"],
                                 "'main' in '3e774ae,main': must be a commit of 7 to 40 hex"),
    "reproduce-commit-too-short": (["reproduce", "--allow-commits", "3e77"], "--allow-commits"),
    # report
    "report-results-missing": (["report", "nope"], "nope: no such directory"),
    "report-results-is-file": (["report", "{file}"], "is a file, not a directory"),
    "report-out-is-file": (["report", "{dir}", "--out", "{file}"], "--out"),
    # acting: a directory that `mabcq reproduce` did not write
    "acting-results-missing": (["acting", "nope"], "nope: no such directory"),
    "acting-results-without-cells": (["acting", "{dir}"], "no cells/ directory"),
    "acting-unknown-task": (["acting", "{dir}", "--tasks", "cheetah"], "unknown task 'cheetah'"),
    # decentralized: the task and its per-agent files
    "decentralized-unknown-task": (["decentralized", "cheetah", "--data", "{data}"],
                                   "unknown task 'cheetah'"),
    "decentralized-data-missing": (["decentralized", "hopper-3x1", "--data", "nope"],
                                   "nope: no such directory"),
    "decentralized-data-empty": (["decentralized", "hopper-3x1", "--data", "{dir}"],
                                 "no agent_0.h5"),
    # data import / export: formats, and sources that are not what the format says
    "import-unknown-format": (["data", "import", "bogus", "{dir}"], "invalid choice: 'bogus'"),
    "import-omar-not-omar": (["data", "import", "omar", "{dir}", "--task", "hopper-3x1",
                              "--out", "out"], "no obs_0.npy"),
    "import-omiga-not-hdf5": (["data", "import", "omiga", "{file}", "--task", "swimmer-2x1",
                               "--out", "out"], "cannot read as HDF5"),
    "import-og-marl-not-a-vault": (["data", "import", "og-marl", "{dir}", "--task", "hopper-3x1",
                                    "--out", "out"], "not a Flashbax vault"),
    "export-no-agent-files": (["data", "export", "{dir}", "--to", "minari"],
                              "no *.h5 agent files"),
    "export-unknown-format": (["data", "export", "{data}", "--to", "bogus"],
                              "invalid choice: 'bogus'"),
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_dataset(tmp_path_factory.mktemp("data"), transitions=60)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current directory of a case, holding an existing file and an empty directory."""
    (tmp_path / "afile").write_text("not a dataset, a game or a directory\n")
    (tmp_path / "adir").mkdir()
    (tmp_path / "clash" / "agent_1.h5").mkdir(parents=True)  # a directory where a file goes
    (tmp_path / "clash2").mkdir()
    (tmp_path / "clash2" / "behavior").write_text("a file where SAC's directory goes\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file and directory under `roots` (hidden ones too), with size and mtime."""
    found = {}
    for root in roots:
        for path in [root, *root.rglob("*")]:
            stat = path.stat()
            found[str(path)] = (stat.st_size, stat.st_mtime_ns)
    return found


def assert_refused(argv: list[str], capsys: pytest.CaptureFixture[str],
                   *untouched: Path) -> str:
    """main(argv) exits 2 with one error line, prints nothing else, and changes no file."""
    before = snapshot(*untouched)
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured
    assert "Traceback" not in captured.err
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mabcq: error: "), captured.err
    assert captured.out == ""
    assert snapshot(*untouched) == before
    return lines[0]


def fill(argv: list[str], workdir: Path, data_dir: Path) -> list[str]:
    names = {"file": workdir / "afile", "dir": workdir / "adir", "data": data_dir,
             "agent0": data_dir / "agent_0.h5"}
    return [arg.format(**{key: str(value) for key, value in names.items()}) for arg in argv]


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_bad_input_is_refused_in_one_line_before_any_work(
        case: str, workdir: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv, expected = CORPUS[case]
    line = assert_refused(fill(argv, workdir, data_dir), capsys, workdir, data_dir)
    assert expected in line


@pytest.mark.parametrize("argv", [
    ["train", "hopper-3x1", "--data", "{data}"],  # default --out runs/hopper-3x1-mabcq
    ["demo"],  # default --out runs/demo
    ["reproduce", "--tasks", "hopper-3x1"],  # default --data-root runs/data
    ["report", "{dir}"],  # default --out RESULTS/report, here under a file
])
def test_a_default_output_path_is_checked_like_a_given_one(
        argv: list[str], workdir: Path, data_dir: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "runs").write_text("a file where the default output folder would go\n")
    (workdir / "adir" / "report").write_text("a file where the report folder would go\n")
    line = assert_refused(fill(argv, workdir, data_dir), capsys, workdir, data_dir)
    # reproduce meets its default --data-root runs/data first: the same check
    assert ("--out" in line or "--data-root" in line) and ("runs" in line or "report" in line)


def test_an_unwritable_output_directory_is_refused(
        workdir: Path, data_dir: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    locked = workdir / "adir"
    real_access = os.access

    def access(path: object, mode: int) -> bool:  # as if locked had mode 0o555 (root or not)
        if Path(os.fspath(path)).resolve() == locked.resolve() and mode & os.W_OK:
            return False
        return real_access(path, mode)

    monkeypatch.setattr(cli_types.os, "access", access)
    for argv in (["data", "build", "hopper-3x1", "--out", "{dir}"],
                 ["data", "build", "hopper-3x1", "--out", "{dir}/new"],
                 [*TRAIN, "--out", "{dir}/run"]):
        line = assert_refused(fill(argv, workdir, data_dir), capsys, workdir)
        assert "not writable (permission denied)" in line


def test_corpus_covers_every_command() -> None:
    assert len(CORPUS) >= 60
    commands = {" ".join(argv[:2]) if argv[0] in ("behavior", "data") else argv[0]
                for argv, _ in CORPUS.values()}
    for command in ("matrix", "behavior train", "behavior ship", "behavior tasks", "data build",
                    "data info", "data import", "data export", "train", "evaluate", "demo",
                    "reproduce", "report", "acting", "decentralized"):
        assert command in commands


def _run_into_closed_pipe(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run mabcq with stdout a pipe whose reader is already gone (`mabcq ... | head -0`)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "mabcq", *argv], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, cwd=cwd, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(SRC)})
    finally:
        os.close(write_end)


@pytest.mark.parametrize("argv", [["matrix"], ["data", "info", "{data}"], ["behavior", "tasks"]])
def test_a_closed_stdout_ends_quietly(argv: list[str], tmp_path: Path, data_dir: Path) -> None:
    result = _run_into_closed_pipe(fill(argv, tmp_path, data_dir), tmp_path)
    assert result.returncode == EXIT_BROKEN_PIPE
    assert result.stderr == ""
    assert list(tmp_path.iterdir()) == []


# Flags whose text a later parser reads as a whole (the game's own spec; --data, whose
# handler names the `mabcq data build` to run): every other value-taking flag names its kind.
FREE_TEXT_FLAGS = {"mabcq matrix --payoff", "mabcq matrix --behavior", "mabcq train --data"}


def _value_actions(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                yield from _value_actions(subparser)
        elif action.nargs != 0 and not isinstance(
                action, argparse._HelpAction | argparse._VersionAction):
            yield parser.prog, action


def test_every_flag_names_its_kind() -> None:
    unchecked = []
    for prog, action in _value_actions(build_parser()):
        name = action.option_strings[0] if action.option_strings else action.dest
        if action.choices is None and f"{prog} {name}" not in FREE_TEXT_FLAGS and (
                action.type in (None, int, float, str, Path)):
            unchecked.append(f"{prog} {name}")
    assert unchecked == []
