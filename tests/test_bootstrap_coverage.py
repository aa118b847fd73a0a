"""scripts/bootstrap_coverage.py: the report's percentile bootstrap over a few seeds is narrower
than a Student-t interval and holds the true mean less often; the script measures both with the
report's own functions, and a bad flag is one line and exit 2."""

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "scripts" / "bootstrap_coverage.py"


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SCRIPT.parents[1] / "src")}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          env=env, check=False)


def test_the_bootstrap_covers_less_often_and_is_narrower_than_the_t_interval():
    done = run("--sizes", "2,5", "--trials", "300")
    assert done.returncode == 0, done.stderr
    rows = {}
    for line in done.stdout.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells[0].isdigit():
            rows[int(cells[0])] = (float(cells[1].rstrip("%")), float(cells[2].rstrip("%")),
                                   float(cells[3]))
    assert set(rows) == {2, 5}
    for n, (boot, student, width) in rows.items():
        assert boot < student and width < 1.0, (n, boot, student, width)
        assert 90.0 <= student <= 99.0  # the t-interval is exact for normal draws
    assert rows[2][0] < rows[5][0] and rows[2][2] < rows[5][2]  # closer with more seeds


def test_a_bad_flag_is_one_line_and_exit_2():
    done = run("--sizes", "1,5")
    assert done.returncode == 2 and done.stdout == ""
    assert "every size must be 2 or more" in done.stderr.splitlines()[-1]
