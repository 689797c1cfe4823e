"""Cell values: error values, coercion between types, rounding and display.

A computed cell value is one of ``None`` (blank), ``int``/``float``, ``str``,
``bool`` or a :class:`CellError` such as ``#DIV/0!``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Optional, Union

Number = Union[int, float]


@dataclass(frozen=True)
class CellError:
    """An error value, shown in the cell in place of a result."""

    code: str

    def __str__(self) -> str:
        return self.code


DIV_ZERO = CellError("#DIV/0!")
VALUE = CellError("#VALUE!")
REF = CellError("#REF!")
NAME = CellError("#NAME?")
NUM = CellError("#NUM!")
CYCLE = CellError("#CYCLE!")


class EvaluationError(Exception):
    """Raised while evaluating a formula; carries the error value the cell shows."""

    def __init__(self, error: CellError) -> None:
        super().__init__(error.code)
        self.error = error


_NUMBER_PATTERN = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def is_number(value: object) -> bool:
    """True for ints and floats. Booleans are not numbers here."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_number(text: str) -> Optional[Number]:
    """Read numeric text such as ``"42"``, ``"-1.5"`` or ``"1e3"``; None otherwise."""
    text = text.strip()
    if not _NUMBER_PATTERN.fullmatch(text):
        return None
    if text.lstrip("+-").isdigit():
        return int(text)
    number = float(text)
    return number if math.isfinite(number) else None


def to_number(value: object) -> Number:
    """Coerce a value for arithmetic: blank is 0, TRUE is 1, numeric text is read."""
    if isinstance(value, CellError):
        raise EvaluationError(value)
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if is_number(value):
        return value
    if isinstance(value, str):
        number = parse_number(value)
        if number is not None:
            return number
    raise EvaluationError(VALUE)


def to_text(value: object) -> str:
    """Coerce a value for text operations such as ``&``."""
    if isinstance(value, CellError):
        raise EvaluationError(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if is_number(value):
        return format_number(value)
    return str(value)


def to_bool(value: object) -> bool:
    """Coerce a value used as a condition: numbers are true unless zero."""
    if isinstance(value, CellError):
        raise EvaluationError(value)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if is_number(value):
        return value != 0
    if isinstance(value, str) and value.upper() in ("TRUE", "FALSE"):
        return value.upper() == "TRUE"
    raise EvaluationError(VALUE)


def round_half_up(number: Number, places: int = 0) -> Number:
    """Round to ``places`` decimals (tens, hundreds... when negative).

    Halves are rounded away from zero, as spreadsheets do: 2.5 becomes 3 and
    -2.5 becomes -3.
    """
    if not math.isfinite(number):
        return number
    digits = Decimal(repr(number))
    if places >= -digits.as_tuple().exponent:
        return number
    quantum = Decimal(1).scaleb(-places)
    return float(digits.quantize(quantum, rounding=ROUND_HALF_UP))


def format_number(number: Number, places: Optional[int] = None) -> str:
    """Format a number for display.

    With ``places`` the number is rounded and shown with exactly that many
    decimals. Without it, up to 15 significant digits are shown and trailing
    zeros are dropped, so 6.0 shows as ``6`` and 0.1 + 0.2 as ``0.3``.
    """
    if places is not None:
        rounded = round_half_up(number, places)
        if rounded == 0:
            rounded = 0.0
        return f"{rounded:.{max(places, 0)}f}"
    if number == 0:
        return "0"
    return f"{number:.15g}"


def format_value(value: object, places: Optional[int] = None) -> str:
    """The text a cell shows for ``value``; ``places`` applies to numbers only."""
    if value is None:
        return ""
    if isinstance(value, CellError):
        return value.code
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if is_number(value):
        return format_number(value, places)
    return str(value)
