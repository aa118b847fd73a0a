"""`mabcq matrix`: the paper's Tables 2-4 for its matrix game, or for any one-step game."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from mabcq.cli import kinds
from mabcq.errors import UserError

if TYPE_CHECKING:
    from mabcq.tabular.game import OneStepGame

DESCRIPTION = """\
Solve a cooperative one-step game exactly with decentralized tabular Q-learning under each
weighting (dataset = plain independent Q-learning, vd, tn, tn_vd = MABCQ) and print, per agent
and action, the transition over payoffs and the expected return (the paper's Tables 2-4), then
the joint action the agents learn and its true payoff. Without a game it uses the paper's.
"""

EPILOG = """\
examples:
  mabcq matrix
  mabcq matrix --json
  mabcq matrix --payoff "1,5;6,1" --behavior "0.8,0.2" --behavior "0.4,0.6"
  mabcq matrix --game game.toml --method tn_vd
  mabcq matrix --samples 1000 --seed 3 --eps 0.8
  mabcq matrix --stages 2 --gamma 0.9

game file (JSON or TOML), N agents:
  {"payoff": [[1, 5], [6, 1]], "behavior": [[0.8, 0.2], [0.4, 0.6]]}
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "matrix",
        help="reproduce the paper's matrix-game Tables 2-4, or solve any one-step game",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_argument_group("game (default: the paper's Table 1)")
    source.add_argument("--game", metavar="FILE", type=kinds.existing_file,
                        help="game file, .json or .toml")
    source.add_argument(
        "--payoff",
        metavar="TEXT",
        help='payoff on the command line: rows ";", columns "," (2 agents: "1,5;6,1"); '
        'a 3rd agent adds "|" between agent 1\'s actions; write --payoff=TEXT when TEXT '
        'starts with "-"',
    )
    source.add_argument(
        "--behavior",
        metavar="P1,P2,...",
        action="append",
        help="behavior probabilities of one agent; repeat once per agent, in order "
        '(--behavior=P1,... when it starts with "-")',
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--samples",
        type=kinds.positive_int,
        metavar="K",
        help="use a dataset of K sampled joint plays (episodes, with --stages) instead of "
        "exact expectations",
    )
    data.add_argument(
        "--seed", type=kinds.seed, default=0, help="seed of the sampled dataset (0)"
    )
    data.add_argument(
        "--stages",
        # states grow as payoffs^stages: 6 stages of the paper's game are 3^6 histories
        type=kinds.integer(1, 6),
        metavar="N",
        default=1,
        help="play the game this many times in a row (a multi-step MDP; states are payoff "
        "histories); tables show the first stage (1)",
    )
    solve = parser.add_argument_group("solver and output")
    solve.add_argument(
        "--method",
        action="append",
        type=method_names,
        metavar="NAME",
        help="weighting(s) to show: dataset (alias none), vd, tn, tn_vd (alias tn+vd); "
        "repeat or comma-separate; default: all",
    )
    solve.add_argument(
        "--eps",
        type=kinds.non_negative_number,
        help="clip lambda_vd to [1 - eps, 1 + eps] (default: no clip)",
    )
    solve.add_argument(
        "--gamma", type=kinds.probability, default=0.99, help="discount (0.99)"
    )
    options = parser.add_argument_group(
        "the estimator's options (issue 19; defaults: the paper's reading)")
    options.add_argument("--vd-terminal", choices=("deviation", "one"), default="deviation",
                         help="lambda_vd where s' is terminal: the paper's deviation, or 1 "
                         "(every s' of a one-step game is terminal: vd off)")
    options.add_argument("--tn-clip", type=clip_range, metavar="LOW,HIGH",
                         help="clip lambda_tn to [LOW, HIGH], e.g. 0.2,1.4 (default: no clip)")
    options.add_argument("--tn-normalize", action="store_true",
                         help="divide lambda_tn by its mean over the agent's data (a constant: "
                         "z_i's normalization removes it)")
    options.add_argument("--vd-guard-rel", type=kinds.non_negative_number, default=0.0,
                         help="floor |E[y]| at this x its mean over the agent's (s, a_i) (0)")
    solve.add_argument(
        "--tol", type=kinds.positive_number, default=1e-10, help="Q-iteration tolerance (1e-10)"
    )
    solve.add_argument(
        "--max-iterations",
        type=kinds.positive_int,
        default=10_000,
        help="Q-iteration sweep cap (10000)",
    )
    solve.add_argument(
        "--decimals", type=kinds.integer(0, 12), default=2, help="digits shown in tables (2)"
    )
    solve.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.set_defaults(handler=run_matrix)


def method_names(text: str) -> tuple[str, ...]:
    """One --method value (comma-separated weightings) -> canonical names (argparse `type=`)."""
    from mabcq.tabular.transitions import canonical_method

    names = []
    for name in text.split(","):
        method = canonical_method(name)
        if method is None:
            raise argparse.ArgumentTypeError(
                f"unknown method {name.strip()!r}; valid: dataset (alias none), vd, tn, "
                "tn_vd (alias tn+vd)"
            )
        names.append(method)
    return tuple(names)


def clip_range(text: str) -> tuple[float, float]:
    """--tn-clip LOW,HIGH -> (low, high) with 0 <= low <= high (argparse `type=`)."""
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give LOW,HIGH, e.g. 0.2,1.4") from None
    if not 0.0 <= low <= high < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: need 0 <= LOW <= HIGH, finite")
    return low, high


def parse_methods(values: list[tuple[str, ...]] | None) -> list[str]:
    """--method values (each already split by `method_names`) -> canonical names, in order,
    each once; all methods without --method."""
    from mabcq.tabular.transitions import METHODS

    if not values:
        return list(METHODS)
    return list(dict.fromkeys(name for names in values for name in names))


def resolve_game(args: argparse.Namespace) -> OneStepGame:
    """The game from --game, or from --payoff/--behavior, or the paper's."""
    from mabcq.tabular.game import paper_game
    from mabcq.tabular.spec import game_from_flags, load_game_file

    if args.game is not None:
        if args.payoff is not None or args.behavior:
            raise UserError(
                "give the game either as --game FILE or as --payoff/--behavior, not both"
            )
        return load_game_file(args.game)
    game = game_from_flags(args.payoff, args.behavior)
    return paper_game() if game is None else game


def run_matrix(args: argparse.Namespace) -> int:
    from mabcq.tabular.tables import build_game_report, render_text
    from mabcq.tabular.transitions import WeightOptions

    methods = parse_methods(args.method)
    game = resolve_game(args)
    report = build_game_report(
        game,
        methods,
        gamma=args.gamma,
        eps=args.eps,
        samples=args.samples,
        seed=args.seed,
        tol=args.tol,
        max_iterations=args.max_iterations,
        stages=args.stages,
        options=WeightOptions(args.vd_terminal, args.tn_clip, args.tn_normalize,
                              args.vd_guard_rel),
    )
    for warning in report["warnings"]:
        print(f"mabcq: warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2, allow_nan=False))
    else:
        print(render_text(report, methods, args.decimals))
    return 0
