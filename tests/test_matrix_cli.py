"""`mabcq matrix` end to end: the default tables, --json's schema, game files and flags, and
every bad input answered with exit code 2 and one line naming the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mabcq.cli import main

PAPER_FLAGS = ["--payoff", "1,5;6,1", "--behavior", "0.8,0.2", "--behavior", "0.4,0.6"]


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["matrix", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    code, out, _ = run([*args, "--json"], capsys)
    assert code == 0
    return json.loads(out)


def test_default_prints_the_paper_tables(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run([], capsys)
    assert code == 0 and err == ""
    for line in (
        "p(1|a1)=0.12  p(5|a1)=0.88",  # Table 3, agent 1
        "p(5|a2)=0.95  p(1|a2)=0.05",  # Table 3, agent 2
        "p(6|a2)=0.86  p(1|a2)=0.14  5.29",  # Table 4, agent 1
        "learned joint action (a1, a2): payoff 5 (optimal 6)",
        "learned joint action (a2, a2): payoff 1 (optimal 6)",
        "learned joint action (a2, a1): payoff 6 (optimal); values V1 = 5.29, V2 = 5.29",
    ):
        assert line in out
    assert out.index("Table 2") < out.index("Table 3") < out.index("Table 4")


def test_json_has_the_fixed_schema(capsys: pytest.CaptureFixture[str]) -> None:
    report = run_json([], capsys)
    for method in ("dataset", "vd", "tn", "tn_vd"):
        result = report[method]
        assert len(result["agents"]) == 2
        for actions in result["agents"]:
            assert len(actions) == 2
            for entry in actions:
                assert set(entry) == {"next", "expected"}
                assert all(isinstance(key, str) for key in entry["next"])
                assert all(isinstance(p, float) for p in entry["next"].values())
                assert isinstance(entry["expected"], float)
        assert all(isinstance(a, int) for a in result["joint_action"])
        assert isinstance(result["payoff"], float)
    assert report["tn_vd"]["joint_action"] == [1, 0] and report["tn_vd"]["payoff"] == 6
    assert report["vd"]["joint_action"] == [1, 1] and report["vd"]["payoff"] == 1
    assert report["dataset"]["joint_action"] == [0, 1] and report["dataset"]["payoff"] == 5
    # full precision, not the rounded display
    assert report["vd"]["agents"][0][0]["expected"] == pytest.approx(15.4 / 3.4, abs=1e-12)
    assert report["warnings"] == []


def test_method_subset_and_aliases(capsys: pytest.CaptureFixture[str]) -> None:
    report = run_json(["--method", "tn+vd", "--method", "none"], capsys)
    assert {"tn_vd", "dataset"} <= set(report) and not {"vd", "tn"} & set(report)
    code, out, _ = run(["--method", "vd,tn"], capsys)
    assert code == 0 and "Table 3" in out and "lambda_tn only" in out and "Table 4" not in out


def test_flags_and_files_give_the_same_game(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    default = run_json([], capsys)
    from_flags = run_json(PAPER_FLAGS, capsys)
    json_file = tmp_path / "game.json"
    json_file.write_text(
        json.dumps({"payoff": [[1, 5], [6, 1]], "behavior": [[0.8, 0.2], [0.4, 0.6]]})
    )
    toml_file = tmp_path / "game.toml"
    toml_file.write_text(
        'description = "the paper\'s Table 1"\npayoff = [[1, 5], [6, 1]]\n'
        "behavior = [[0.8, 0.2], [0.4, 0.6]]\n"
    )
    for report in (from_flags, run_json(["--game", str(json_file)], capsys)):
        assert report == default
    assert run_json(["--game", str(toml_file)], capsys) == default


def test_three_agent_game_from_a_file_and_from_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    payoff = [[[5, 1], [1, 2]], [[1, 2], [2, 10]]]
    behavior = [[0.8, 0.2], [0.7, 0.3], [0.9, 0.1]]
    path = tmp_path / "three.json"
    path.write_text(json.dumps({"payoff": payoff, "behavior": behavior}))
    report = run_json(["--game", str(path)], capsys)
    assert len(report["tn_vd"]["agents"]) == 3
    assert report["tn_vd"]["joint_action"] == [1, 1, 1] and report["tn_vd"]["payoff"] == 10
    assert report["dataset"]["joint_action"] == [0, 0, 0]
    flags = ["--payoff", "5,1;1,2|1,2;2,10"]
    for probabilities in behavior:
        flags += ["--behavior", ",".join(str(p) for p in probabilities)]
    assert run_json(flags, capsys) == report
    code, out, _ = run(["--game", str(path)], capsys)
    assert code == 0 and "(a2, a2, a2) = 10" in out


def test_sampled_dataset_option(capsys: pytest.CaptureFixture[str]) -> None:
    report = run_json(["--samples", "20000", "--seed", "3"], capsys)
    assert report["game"]["data"] == "sampled" and report["game"]["samples"] == 20000
    probability = report["dataset"]["agents"][0][0]["next"]["1"]
    assert probability != 0.4 and abs(probability - 0.4) < 0.03
    assert run_json(["--samples", "20000", "--seed", "3"], capsys) == report


def test_clip_option_changes_vd(capsys: pytest.CaptureFixture[str]) -> None:
    clipped = run_json(["--eps", "0.2", "--method", "vd"], capsys)
    assert clipped["game"]["eps"] == 0.2
    entry = clipped["vd"]["agents"][0][0]
    # lambda_vd in [0.8, 1.2] on P = (0.4, 0.6) over payoffs (1, 5): (0.32, 0.72) normalized
    assert entry["next"]["5"] == pytest.approx(0.72 / 1.04, abs=1e-12)


def test_theorem1_and_degenerate_values_are_warnings_not_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(["--payoff=-1,1;1,-1", *PAPER_FLAGS[2:]], capsys)
    assert code == 0 and "learned joint action" in out
    assert "mabcq: warning: Theorem 1 needs positive rewards" in err
    assert "value deviation is undefined" in err  # E[y] = 0 under tn_vd here
    assert "vd: agent 1: the modified transition has negative entries" in err
    report = run_json(["--payoff=-1,1;1,-1", *PAPER_FLAGS[2:]], capsys)
    assert report["theorem1"]["rewards_positive"] is False and report["warnings"]


def test_stages_make_a_multi_step_game_with_proposition1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(["--stages", "2", "--gamma", "0.9", "--json"], capsys)
    assert code == 0
    assert "mabcq: warning: Theorem 1 condition fails: gamma = 0.9" in err
    report = json.loads(out)
    assert report["game"]["stages"] == 2
    assert report["game"]["optimal_return"] == pytest.approx(6 + 0.9 * 6)
    mabcq = report["tn_vd"]
    assert mabcq["path"] == ["start", "6", "6>6"]
    assert mabcq["return"] == pytest.approx(report["game"]["optimal_return"])
    assert mabcq["value_gap"] == pytest.approx(0.0, abs=1e-12)
    assert report["dataset"]["value_gap"] > 0.1
    assert report["dataset"]["return"] < mabcq["return"] - 1
    one_stage = run_json([], capsys)
    assert one_stage["tn_vd"]["return"] == one_stage["tn_vd"]["payoff"] == 6


BAD_INPUTS = [
    (["--behavior=-0.1,1.1", "--behavior", "0.4,0.6"], "negative probability -0.1 for action a1"),
    (["--behavior", "0.5,0.4", "--behavior", "0.4,0.6"], "sums to 0.9, not 1"),
    (["--payoff", "1,5,3;6,1,2", *PAPER_FLAGS[2:]], "payoff shape 2 x 3 does not match"),
    (["--behavior", "0.8,0.2"], "payoff has 2 axes (one per agent) but behavior gives 1 policy"),
    (["--payoff", "1,5;6", *PAPER_FLAGS[2:]], "payoff is ragged"),
    (
        ["--behavior", "1,0", "--behavior", "0.4,0.6"],
        "agent 1 action a2 has behavior probability 0",
    ),
    (
        ["--behavior", "0.999,0.001", "--behavior", "0.4,0.6", "--samples", "10"],
        "agent 1 action a2 has no data in the sampled dataset (10 joint plays, seed 0)",
    ),
    (
        ["--payoff", "1,nan;6,1", *PAPER_FLAGS[2:]],
        "payoff[0][1] is nan; every number must be finite",
    ),
    (["--payoff", "1,inf;6,1", *PAPER_FLAGS[2:]], "payoff[0][1] is inf"),
    (["--behavior", "0.8,nan", "--behavior", "0.4,0.6"], "is nan; every number must be finite"),
    (["--eps", "nan"], "argument --eps: must be a finite number >= 0, got 'nan'"),
    (["--gamma", "inf"], "argument --gamma: must be a finite number in [0, 1], got 'inf'"),
    (["--method", "foo"], "unknown method 'foo'; valid: dataset (alias none), vd, tn, tn_vd"),
    (["--method", "vd,bogus"], "unknown method 'bogus'"),
    (["--payoff", "1,x;6,1", *PAPER_FLAGS[2:]], "--payoff: 'x' is not a number"),
    (["--payoff", "1,5;6,1"], "--payoff needs the behavior policies too"),
    (["--samples", "0"], "argument --samples: must be an integer >= 1, got '0'"),
    (["--gamma", "1.5"], "argument --gamma: must be a finite number in [0, 1], got '1.5'"),
    (["--eps=-1"], "argument --eps: must be a finite number >= 0, got '-1'"),
    (["--stages", "0"], "argument --stages: must be an integer in 1..6, got '0'"),
    (
        [
            "--payoff",
            "1,2,3;4,5,6;7,8,9",
            "--behavior",
            "0.5,0.25,0.25",
            "--behavior",
            "0.5,0.25,0.25",
            "--stages",
            "4",
        ],
        "--stages 4 with 9 distinct payoffs makes 7381 states",
    ),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS)
def test_bad_flags_exit_2_with_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(args, capsys)
    assert code == 2 and out == ""
    assert err.startswith("mabcq: error: ") and err.count("\n") == 1
    assert message in err


BAD_FILES = [
    (
        "bad.json",
        '{"payoff": [[1, 5], [6, 1]], "behavior": [[0.8, 0.2], [0.4, 0.6]',
        "not valid JSON",
    ),
    ("bad.toml", "payoff = [[1, 5], [6, 1]\nbehavior = 3\n", "not valid TOML"),
    ("nan.json", '{"payoff": [[1, NaN], [6, 1]], "behavior": [[0.8, 0.2], [0.4, 0.6]]}', "is nan"),
    ("inf.toml", "payoff = [[1, inf], [6, 1]]\nbehavior = [[0.8, 0.2], [0.4, 0.6]]\n", "is inf"),
    (
        "typo.json",
        '{"payoff": [[1, 5], [6, 1]], "behaviour": [[1.0], [1.0]]}',
        "unknown field(s) behaviour",
    ),
    ("short.json", '{"payoff": [[1, 5], [6, 1]]}', "missing field(s) behavior"),
    ("list.json", "[1, 2]", "the top level must be an object"),
    (
        "text.json",
        '{"payoff": [["a", 5], [6, 1]], "behavior": [[0.8, 0.2], [0.4, 0.6]]}',
        "payoff[0][0] is 'a', not a number",
    ),
    ("game.yaml", "payoff: 1", "unknown game file type '.yaml'"),
    (
        "shape.toml",
        "payoff = [[1, 5, 2], [6, 1, 2]]\nbehavior = [[0.8, 0.2], [0.4, 0.6]]\n",
        "payoff shape 2 x 3 does not match the behavior's action counts 2 x 2",
    ),
]


@pytest.mark.parametrize(("name", "text", "message"), BAD_FILES)
def test_bad_game_files_exit_2_naming_the_file(
    name: str, text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / name
    path.write_text(text)
    code, out, err = run(["--game", str(path)], capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"mabcq: error: {path}") and err.count("\n") == 1
    assert message in err


def test_missing_file_and_conflicting_sources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "absent.json"
    code, _, err = run(["--game", str(missing)], capsys)
    assert code == 2 and f"argument --game: {missing}: no such file" in err
    assert err.count("\n") == 1
    missing.write_text('{"payoff": [[1]], "behavior": [[1.0], [1.0]]}')
    code, _, err = run(["--game", str(missing), *PAPER_FLAGS], capsys)
    assert code == 2 and "either as --game FILE or as --payoff/--behavior" in err


def test_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["matrix", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in (
        "--game",
        "--payoff",
        "--behavior",
        "--samples",
        "--seed",
        "--eps",
        "--method",
        "--json",
    ):
        assert flag in out
