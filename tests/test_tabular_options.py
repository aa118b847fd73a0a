"""The estimator's options (issue 19) in the exact engine: Tables 2-4 under the paper's reading,
which options are no-ops on the paper's game and why, and what each does on a game where value
deviation picks a worse joint action than the dataset's own transition."""

from __future__ import annotations

import numpy as np
import pytest

from mabcq.cli import main
from mabcq.tabular.datasets import exact_views
from mabcq.tabular.game import game_to_mdp, paper_game
from mabcq.tabular.spec import game_from_flags
from mabcq.tabular.tables import build_game_report
from mabcq.tabular.transitions import METHODS, WeightOptions, modify

PAPER = build_game_report(paper_game(), list(METHODS))
# Value deviation (alone and with tn) coordinates on payoff 1 here; the dataset's own
# transition picks the optimum 9 (the miscoordination the paper's Table 3 shows, made worse).
WORSE = game_from_flags("4,9;9,1", ["0.5,0.5", "0.7,0.3"])


def outcomes(report):
    return {method: (tuple(report[method]["joint_action"]), report[method]["values"])
            for method in METHODS}


def test_default_options_are_the_papers_tables():
    assert build_game_report(paper_game(), list(METHODS), options=WeightOptions()) == PAPER
    assert [PAPER[m]["payoff"] for m in ("dataset", "vd", "tn_vd")] == [5.0, 1.0, 6.0]


@pytest.mark.parametrize("options", [WeightOptions(tn_self_normalize=True),
                                     WeightOptions(vd_guard_rel=0.1)])
def test_no_op_options_on_the_papers_game(options):
    """Self-normalization is a constant factor that z_i removes; the relative guard floors
    |E[y]| far below every |E[y]| of this game (all >= 2.0, mean ~3.4)."""
    report = build_game_report(paper_game(), list(METHODS), options=options)
    for method in METHODS:
        for ours, papers in zip(report[method]["agents"], PAPER[method]["agents"], strict=True):
            for action, paper_action in zip(ours, papers, strict=True):
                assert action["expected"] == pytest.approx(paper_action["expected"], rel=1e-12)
                assert action["next"] == pytest.approx(paper_action["next"], rel=1e-12)
        assert report[method]["joint_action"] == PAPER[method]["joint_action"]


def test_vd_terminal_one_switches_value_deviation_off_in_a_one_step_game():
    for game in (paper_game(), WORSE):
        report = outcomes(build_game_report(game, list(METHODS),
                                            options=WeightOptions(vd_terminal="one")))
        assert report["vd"] == report["dataset"] and report["tn_vd"] == report["tn"]


def test_tn_clip_keeps_lambda_tn_in_range_and_breaks_the_consensus():
    mdp, behavior = game_to_mdp(paper_game())
    for view in exact_views(mdp, behavior):
        modified = modify(view, view.reward, "tn", options=WeightOptions(tn_clip=(0.2, 1.4)))
        observed = view.transition > 0
        assert (modified.lambda_tn[observed] >= 0.2).all()
        assert (modified.lambda_tn[observed] <= 1.4).all()
        np.testing.assert_allclose(modified.probabilities[0].sum(-1)[view.support[0]], 1.0)
    clipped = build_game_report(paper_game(), list(METHODS),
                                options=WeightOptions(tn_clip=(0.2, 1.4)))
    assert clipped["tn_vd"]["payoff"] == 6.0  # still the optimum, but the agents' values differ
    assert clipped["tn_vd"]["value_gap"] > 0.1 and PAPER["tn_vd"]["value_gap"] < 1e-9


def test_options_on_a_game_where_value_deviation_loses_to_the_dataset():
    paper = build_game_report(WORSE, list(METHODS))
    assert paper["dataset"]["payoff"] == 9.0
    assert paper["vd"]["payoff"] == paper["tn_vd"]["payoff"] == 1.0
    combined = WeightOptions("one", (0.2, 1.4), True, 0.1)
    payoffs = {method: build_game_report(WORSE, ["vd", "tn_vd"], options=options)
               for method, options in (("vdterm1", WeightOptions(vd_terminal="one")),
                                       ("combined", combined))}
    assert payoffs["vdterm1"]["vd"]["payoff"] == 9.0  # no vd: the dataset's own choice
    assert payoffs["combined"]["tn_vd"]["payoff"] == 4.0  # tn alone coordinates on 4


def test_cli_flags(capsys: pytest.CaptureFixture[str]):
    assert main(["matrix", "--tn-clip", "0.2,1.4", "--vd-terminal", "one", "--json"]) == 0
    assert '"tn_clip": [\n' in capsys.readouterr().out
    assert main(["matrix", "--tn-clip", "1.4,0.2"]) == 2
    assert "--tn-clip: '1.4,0.2': need 0 <= LOW <= HIGH" in capsys.readouterr().err
