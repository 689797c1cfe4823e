"""A small arithmetic expression calculator.

The language understood by :func:`calc`:

* numbers: integers (``42``), decimals (``3.25``, ``.5``) and scientific
  notation (``1.5e3``, ``2E-4``);
* binary operators, from loosest to tightest binding:
  ``+ -``, then ``* / // %``, then ``^`` (exponentiation);
* unary ``-`` and ``+``, which bind tighter than ``* / // %`` but looser
  than ``^``, so ``-2^2 == -4`` and ``2^-1 == 0.5``;
* parentheses for grouping;
* the constants ``pi``, ``e`` and ``tau``, caller-supplied variables and
  a few functions (``abs``, ``sqrt``, ``floor``, ``ceil``, ``min``, ``max``).

``^`` is right-associative; every other binary operator is left-associative.
``/`` is true division, ``//`` is floor division and ``%`` is the matching
modulo (its result takes the sign of the divisor), so that
``a == (a // b) * b + a % b`` always holds.

Example::

    >>> calc("2 * (3 + 4) ^ 2")
    98
    >>> calc("x / 4", {"x": 10})
    2.5
"""

from typing import Mapping, Optional

from .evaluator import EvalError, Value, evaluate
from .parser import BinaryOp, Call, Name, Node, Number, ParseError, UnaryOp, parse
from .tokenizer import CalcError, Token, TokenizeError, TokenKind, tokenize

__all__ = [
    "BinaryOp",
    "CalcError",
    "Call",
    "EvalError",
    "Name",
    "Node",
    "Number",
    "ParseError",
    "Token",
    "TokenKind",
    "TokenizeError",
    "UnaryOp",
    "Value",
    "calc",
    "evaluate",
    "parse",
    "tokenize",
]


def calc(text: str, variables: Optional[Mapping[str, Value]] = None) -> Value:
    """Tokenize, parse and evaluate ``text`` in one go."""
    return evaluate(parse(text), variables)
