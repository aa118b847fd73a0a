"""The command line answers --help and turns user errors into exit code 2."""

import pytest

from mabcq.cli import main


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "mabcq" in capsys.readouterr().out
