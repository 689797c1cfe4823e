"""Built-in worksheet functions.

A function receives its arguments already evaluated. A reference or range
argument (``A1``, ``A1:B3``) arrives as :class:`CellValues`, the values of its
cells row by row; any other argument arrives as a single value, with an error
passed as its :class:`~mini_sheet.values.CellError`.

As in common spreadsheet applications, the aggregates (SUM, AVERAGE, MIN, MAX,
COUNT) only look at the numbers among cell values, while literal arguments
are coerced: ``SUM(A1:A3)`` skips a text cell, ``SUM("2", 3)`` is 5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

from .values import (
    DIV_ZERO,
    VALUE,
    CellError,
    EvaluationError,
    Number,
    is_number,
    round_half_up,
    to_bool,
    to_number,
)


class CellValues(tuple):
    """The values of the cells named by a reference or range argument."""

    __slots__ = ()


@dataclass(frozen=True)
class Function:
    """A built-in function and the number of arguments it accepts."""

    name: str
    call: Callable[..., object]
    min_args: int
    max_args: Optional[int]

    def accepts(self, count: int) -> bool:
        return count >= self.min_args and (self.max_args is None or count <= self.max_args)


FUNCTIONS: Dict[str, Function] = {}


def lookup(name: str) -> Optional[Function]:
    """The function called ``name`` (case-insensitive), or None."""
    return FUNCTIONS.get(name.upper())


def _register(*names: str, min_args: int = 1, max_args: Optional[int] = None):
    def decorator(call: Callable[..., object]) -> Callable[..., object]:
        for name in names:
            FUNCTIONS[name] = Function(name, call, min_args, max_args)
        return call

    return decorator


def _scalar(arg: object) -> object:
    """A single value from an argument; a one-cell reference counts as its value."""
    if isinstance(arg, CellValues):
        if len(arg) != 1:
            raise EvaluationError(VALUE)
        arg = arg[0]
    if isinstance(arg, CellError):
        raise EvaluationError(arg)
    return arg


def _numbers(args: Tuple[object, ...]) -> List[Number]:
    """The numbers an aggregate works on; the first error found is raised."""
    numbers: List[Number] = []
    for arg in args:
        if isinstance(arg, CellValues):
            for value in arg:
                if isinstance(value, CellError):
                    raise EvaluationError(value)
                if is_number(value):
                    numbers.append(value)
        else:
            numbers.append(to_number(arg))
    return numbers


@_register("SUM")
def sum_(*args: object) -> Number:
    return math.fsum(_numbers(args))


@_register("AVERAGE", "AVG")
def average(*args: object) -> Number:
    numbers = _numbers(args)
    if not numbers:
        raise EvaluationError(DIV_ZERO)
    return math.fsum(numbers) / len(numbers)


@_register("MIN")
def min_(*args: object) -> Number:
    return min(_numbers(args), default=0)


@_register("MAX")
def max_(*args: object) -> Number:
    return max(_numbers(args), default=0)


@_register("COUNT")
def count(*args: object) -> int:
    """Count the numbers among the arguments; errors and text are not counted."""
    total = 0
    for arg in args:
        values = arg if isinstance(arg, CellValues) else (arg,)
        total += sum(1 for value in values if is_number(value))
    return total


@_register("ROUND", max_args=2)
def round_(number: object, places: object = 0) -> Number:
    return round_half_up(to_number(_scalar(number)), int(to_number(_scalar(places))))


@_register("ABS", max_args=1)
def abs_(number: object) -> Number:
    return abs(to_number(_scalar(number)))


@_register("IF", min_args=2, max_args=3)
def if_(condition: object, if_true: object, if_false: object = False) -> object:
    """Only the chosen branch matters: an error in the other one is ignored."""
    return _scalar(if_true if to_bool(_scalar(condition)) else if_false)
