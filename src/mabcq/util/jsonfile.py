"""Reading the project's JSON records (grid.json, cell files) with one clear line on bad input:
the file's path and what is wrong with it, never a traceback from the json module."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mabcq.errors import UserError


def read_json_object(path: Path, what: str = "JSON object") -> dict[str, Any]:
    """PATH's JSON object; UserError naming PATH and WHAT it should hold when it is missing, not
    JSON, or not an object."""
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: not found (expected a {what})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{path}: not a readable {what} ({error})") from None
    if not isinstance(value, dict):
        raise UserError(f"{path}: expected a {what}, got JSON {type(value).__name__}")
    return value
