"""pyproject.toml's Python versions agree with each other: the classifiers name exactly the minor
versions that requires-python admits, and ruff targets the lowest, so neither drifts when the
range moves (issue 10)."""

import re
import sys
import tomllib
from pathlib import Path

from packaging.specifiers import SpecifierSet

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
CLASSIFIER = re.compile(r"Programming Language :: Python :: 3\.(\d+)$")


def admitted_minors(requires_python: str) -> list[int]:
    """The 3.x minors that requires-python admits, 3.0 to 3.40 (any patch release of x)."""
    spec = SpecifierSet(requires_python)
    return [m for m in range(41) if any(spec.contains(f"3.{m}.{p}") for p in range(30))]


def classified_minors(classifiers: list[str]) -> list[int]:
    return sorted(int(m.group(1)) for c in classifiers if (m := CLASSIFIER.match(c)))


def test_admitted_minors_reads_the_specifier() -> None:
    assert admitted_minors(">=3.11,<3.14") == [11, 12, 13]
    assert admitted_minors(">=3.11,<3.12") == [11]
    assert admitted_minors(">=3.12,!=3.13.*,<3.15") == [12, 14]
    assert classified_minors(["Programming Language :: Python :: 3.9",
                              "Programming Language :: Python :: 3 :: Only"]) == [9]


def test_classifiers_match_requires_python() -> None:
    config = tomllib.loads(PYPROJECT.read_text())
    project = config["project"]
    admitted = admitted_minors(project["requires-python"])
    assert {11, 12, 13} <= set(admitted), "Python 3.11-3.13 must stay installable (issue 10)"
    assert classified_minors(project["classifiers"]) == admitted
    assert config["tool"]["ruff"]["target-version"] == f"py3{admitted[0]}"


def test_running_python_is_admitted() -> None:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    assert SpecifierSet(project["requires-python"]).contains(
        ".".join(map(str, sys.version_info[:3])))
