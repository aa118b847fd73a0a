"""Reading a one-step game from a JSON/TOML file or from command-line flags, with validation.

File format (JSON or TOML), N agents:
    {"payoff": nested lists [A_1][A_2]...[A_N], "behavior": [[p(a_1), ...], ... one per agent]}
Every problem raises UserError with one line naming the source, the field and the fix.
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from mabcq.errors import UserError
from mabcq.tabular.game import OneStepGame

PROBABILITY_TOLERANCE = 1e-6
GAME_FIELDS = ("payoff", "behavior", "description")
# --payoff separators, outermost first: "|" splits agent 1's actions in a 3-agent game,
# ";" the rows, "," the columns; a 2-agent payoff is "1,5;6,1".
PAYOFF_SEPARATORS = ("|", ";", ",")


def _number(value: Any, where: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserError(f"{source}: {where} is {value!r}, not a number")
    number = float(value)
    if not math.isfinite(number):
        raise UserError(f"{source}: {where} is {number}; every number must be finite")
    return number


def _nested_array(value: Any, where: str, source: str) -> np.ndarray:
    """A rectangular nested list of finite numbers as a float array."""
    if not isinstance(value, list):
        return np.array(_number(value, where, source))
    if not value:
        raise UserError(f"{source}: {where} is an empty list; every agent needs >= 1 action")
    parts = [_nested_array(item, f"{where}[{index}]", source) for index, item in enumerate(value)]
    shapes = {part.shape for part in parts}
    if len(shapes) > 1:
        raise UserError(
            f"{source}: {where} is ragged (its entries have shapes "
            f"{sorted(shapes)}); every row must have the same length"
        )
    return np.stack(parts)


def _shape_text(shape: tuple[int, ...]) -> str:
    return " x ".join(str(n) for n in shape)


def validate_behavior(probabilities: list[float], agent: int, source: str) -> np.ndarray:
    """One agent's behavior policy: finite, non-negative, summing to 1 (tolerance 1e-6)."""
    if not isinstance(probabilities, list) or not probabilities:
        raise UserError(
            f"{source}: behavior of agent {agent} must be a non-empty list of probabilities, "
            f"got {probabilities!r}"
        )
    values = np.array(
        [
            _number(p, f"behavior of agent {agent}, action a{k + 1}", source)
            for k, p in enumerate(probabilities)
        ]
    )
    negative = np.flatnonzero(values < 0)
    if negative.size:
        k = int(negative[0])
        raise UserError(
            f"{source}: behavior of agent {agent} has a negative probability {values[k]:g} "
            f"for action a{k + 1}; probabilities must be >= 0"
        )
    total = float(values.sum())
    if abs(total - 1.0) > PROBABILITY_TOLERANCE:
        raise UserError(
            f"{source}: behavior of agent {agent} {values.tolist()} sums to {total:.10g}, "
            "not 1 (tolerance 1e-6); fix the probabilities"
        )
    return values


def game_from_values(payoff: Any, behavior: Any, source: str) -> OneStepGame:
    """Validate raw payoff/behavior values (from a file or flags) into a OneStepGame."""
    payoff_array = _nested_array(payoff, "payoff", source)
    if payoff_array.ndim == 0:
        raise UserError(
            f"{source}: payoff must be a nested list (one axis per agent), got a number"
        )
    if not isinstance(behavior, list) or not behavior:
        raise UserError(
            f"{source}: behavior must be a list with one probability list per agent, "
            f"got {behavior!r}"
        )
    policies = tuple(validate_behavior(p, i + 1, source) for i, p in enumerate(behavior))
    counts = tuple(p.shape[0] for p in policies)
    if payoff_array.ndim != len(counts):
        raise UserError(
            f"{source}: payoff has {payoff_array.ndim} axes (one per agent) but behavior gives "
            f"{len(counts)} polic{'y' if len(counts) == 1 else 'ies'}; give one behavior "
            "policy per agent"
        )
    if payoff_array.shape != counts:
        raise UserError(
            f"{source}: payoff shape {_shape_text(payoff_array.shape)} does not match the "
            f"behavior's action counts {_shape_text(counts)}; axis i of the payoff needs as "
            "many entries as agent i's behavior list"
        )
    return OneStepGame(payoff_array, policies)


def load_game_file(path: str | Path) -> OneStepGame:
    """Read a game from a .json or .toml file (see the module docstring for the format)."""
    path = Path(path)
    source = str(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".toml"):
        raise UserError(f"{source}: unknown game file type {suffix!r}; use a .json or .toml file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read game file {source}: {error}") from None
    try:
        if suffix == ".json":
            raw = json.loads(text)
        else:
            raw = tomllib.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"{source}: not valid JSON: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{source}: not valid TOML: {error}") from None
    if not isinstance(raw, dict):
        raise UserError(f"{source}: the top level must be an object with payoff and behavior")
    unknown = sorted(set(raw) - set(GAME_FIELDS))
    if unknown:
        raise UserError(
            f"{source}: unknown field(s) {', '.join(unknown)}; valid fields: "
            f"{', '.join(GAME_FIELDS)}"
        )
    missing = [field for field in ("payoff", "behavior") if field not in raw]
    if missing:
        raise UserError(f"{source}: missing field(s) {', '.join(missing)}")
    return game_from_values(raw["payoff"], raw["behavior"], source)


def _parse_number_text(token: str, flag: str) -> float:
    try:
        return float(token)
    except ValueError:
        raise UserError(f"{flag}: {token.strip()!r} is not a number") from None


def parse_payoff_flag(text: str) -> Any:
    """'1,5;6,1' -> [[1.0, 5.0], [6.0, 1.0]]; a 3-agent game adds '|' between agent 1's actions
    ('1,2;3,4|5,6;7,8'); a 1-agent game is '1,5'."""
    first = next((k for k, sep in enumerate(PAYOFF_SEPARATORS) if sep in text), 2)
    return _split_nested(text, list(PAYOFF_SEPARATORS[first:]))


def _split_nested(text: str, separators: list[str]) -> Any:
    if not separators:
        return _parse_number_text(text, "--payoff")
    return [_split_nested(part, separators[1:]) for part in text.split(separators[0])]


def parse_behavior_flag(text: str) -> list[float]:
    """'0.8,0.2' -> [0.8, 0.2]."""
    return [_parse_number_text(token, "--behavior") for token in text.split(",")]


def game_from_flags(payoff: str | None, behaviors: list[str] | None) -> OneStepGame | None:
    """The game given by --payoff/--behavior, or None when neither flag is used."""
    from mabcq.tabular.game import paper_game

    if payoff is None and not behaviors:
        return None
    if payoff is None:
        payoff_values: Any = paper_game().payoff.tolist()
        source = "--behavior (with the paper's payoff)"
    else:
        payoff_values = parse_payoff_flag(payoff)
        source = "--payoff/--behavior"
    if not behaviors:
        raise UserError(
            "--payoff needs the behavior policies too: give --behavior once per agent, "
            'e.g. --behavior "0.8,0.2" --behavior "0.4,0.6"'
        )
    return game_from_values(payoff_values, [parse_behavior_flag(b) for b in behaviors], source)
