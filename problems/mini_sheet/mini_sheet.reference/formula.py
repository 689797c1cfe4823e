"""Formula parsing and evaluation.

A formula is text starting with ``=``. Its grammar, loosest binding first::

    comparison := concat (("=" | "<>" | "<" | ">" | "<=" | ">=") concat)*
    concat     := sum ("&" sum)*
    sum        := product (("+" | "-") product)*
    product    := power (("*" | "/") power)*
    power      := unary ("^" unary)*
    unary      := ("+" | "-") unary | primary
    primary    := NUMBER | STRING | TRUE | FALSE | CELL | RANGE
                | NAME "(" [comparison ("," comparison)*] ")"
                | "(" comparison ")"

As in Excel, every binary operator groups to the left and negation binds
tighter than ``^``: ``2^3^2`` is 64 and ``-2^2`` is 4.
"""

from __future__ import annotations

import math
import operator
import re
from typing import Callable, FrozenSet, Iterator, List, NamedTuple, Optional, Sequence

from .functions import CellValues, Function, lookup
from .refs import CellRange, CellRef, RefError
from .values import (
    DIV_ZERO,
    NAME,
    NUM,
    REF,
    VALUE,
    CellError,
    EvaluationError,
    to_number,
    to_text,
)

Lookup = Callable[[CellRef], object]


class FormulaSyntaxError(ValueError):
    """Raised for text that is not a well-formed formula."""


class Token(NamedTuple):
    kind: str
    text: str
    position: int


_TOKEN_PATTERN = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<number>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
    | (?P<string>"(?:[^"]|"")*")
    | (?P<range>[A-Za-z]+[0-9]+:[A-Za-z]+[0-9]+)
    | (?P<cell>[A-Za-z]+[0-9]+)(?![A-Za-z0-9_(])
    | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
    | (?P<op><>|<=|>=|[-+*/^&=<>])
    | (?P<punct>[(),])
    """,
    re.VERBOSE,
)


def tokenize(text: str) -> List[Token]:
    """Split formula text (without the leading ``=``) into tokens, ending with ``end``."""
    tokens = []
    position = 0
    while position < len(text):
        match = _TOKEN_PATTERN.match(text, position)
        if match is None:
            raise FormulaSyntaxError(f"unexpected character {text[position]!r} at {position}")
        kind = match.lastgroup
        if kind != "space":
            tokens.append(Token(kind, match.group(), position))
        position = match.end()
    tokens.append(Token("end", "", position))
    return tokens


class Node:
    """A node of a formula's syntax tree."""

    def evaluate(self, lookup: Lookup) -> object:
        """The node's value; errors are raised as :class:`EvaluationError`."""
        raise NotImplementedError

    def argument(self, lookup: Lookup) -> object:
        """The node's value as a function argument, with errors passed as values."""
        try:
            return self.evaluate(lookup)
        except EvaluationError as exc:
            return exc.error

    def references(self) -> Iterator[CellRef]:
        """Every cell the node reads."""
        return iter(())


class Literal(Node):
    def __init__(self, value: object) -> None:
        self.value = value

    def evaluate(self, lookup: Lookup) -> object:
        return self.value


class ErrorLiteral(Node):
    """A part of the formula that can only evaluate to an error, like an unknown name."""

    def __init__(self, error: CellError) -> None:
        self.error = error

    def evaluate(self, lookup: Lookup) -> object:
        raise EvaluationError(self.error)


class Reference(Node):
    def __init__(self, ref: CellRef) -> None:
        self.ref = ref

    def evaluate(self, lookup: Lookup) -> object:
        value = lookup(self.ref)
        if isinstance(value, CellError):
            raise EvaluationError(value)
        return value

    def argument(self, lookup: Lookup) -> object:
        return CellValues((lookup(self.ref),))

    def references(self) -> Iterator[CellRef]:
        yield self.ref


class RangeReference(Node):
    def __init__(self, cells: CellRange) -> None:
        self.cells = cells

    def evaluate(self, lookup: Lookup) -> object:
        raise EvaluationError(VALUE)

    def argument(self, lookup: Lookup) -> object:
        return CellValues(lookup(ref) for ref in self.cells.cells())

    def references(self) -> Iterator[CellRef]:
        return self.cells.cells()


class Unary(Node):
    def __init__(self, op: str, operand: Node) -> None:
        self.op = op
        self.operand = operand

    def evaluate(self, lookup: Lookup) -> object:
        number = to_number(self.operand.evaluate(lookup))
        return -number if self.op == "-" else number

    def references(self) -> Iterator[CellRef]:
        return self.operand.references()


class Binary(Node):
    def __init__(self, op: str, left: Node, right: Node) -> None:
        self.op = op
        self.left = left
        self.right = right

    def evaluate(self, lookup: Lookup) -> object:
        left = self.left.evaluate(lookup)
        right = self.right.evaluate(lookup)
        if self.op == "&":
            return to_text(left) + to_text(right)
        if self.op in _COMPARISONS:
            return _compare(self.op, left, right)
        return _arithmetic(self.op, to_number(left), to_number(right))

    def references(self) -> Iterator[CellRef]:
        yield from self.left.references()
        yield from self.right.references()


class Call(Node):
    def __init__(self, name: str, function: Optional[Function], args: Sequence[Node]) -> None:
        self.name = name
        self.function = function
        self.args = list(args)

    def evaluate(self, lookup: Lookup) -> object:
        if self.function is None:
            raise EvaluationError(NAME)
        return self.function.call(*(arg.argument(lookup) for arg in self.args))

    def references(self) -> Iterator[CellRef]:
        for arg in self.args:
            yield from arg.references()


_COMPARISONS = {
    "=": operator.eq,
    "<>": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}


def _sort_key(value: object, other: object) -> tuple:
    """Numbers sort before text, text before booleans; text ignores case.

    A blank compares as the empty text, FALSE or 0, depending on ``other``.
    """
    if isinstance(value, CellError):
        raise EvaluationError(value)
    if value is None:
        value = "" if isinstance(other, str) else False if isinstance(other, bool) else 0
    if isinstance(value, bool):
        return (2, value)
    if isinstance(value, str):
        return (1, value.casefold())
    return (0, value)


def _compare(op: str, left: object, right: object) -> bool:
    return _COMPARISONS[op](_sort_key(left, right), _sort_key(right, left))


def _arithmetic(op: str, left: float, right: float) -> object:
    if op == "+":
        result = left + right
    elif op == "-":
        result = left - right
    elif op == "*":
        result = left * right
    elif op == "/":
        if right == 0:
            raise EvaluationError(DIV_ZERO)
        result = left / right
    else:
        if left == 0 and right < 0:
            raise EvaluationError(DIV_ZERO)
        try:
            result = float(left) ** right
        except OverflowError:
            raise EvaluationError(NUM) from None
        if isinstance(result, complex):
            raise EvaluationError(NUM)
    if isinstance(result, float) and not math.isfinite(result):
        raise EvaluationError(NUM)
    return result


class _Parser:
    _LEVELS = (
        ("=", "<>", "<", ">", "<=", ">="),
        ("&",),
        ("+", "-"),
        ("*", "/"),
        ("^",),
    )

    def __init__(self, text: str) -> None:
        self._tokens = tokenize(text)
        self._index = 0

    def parse(self) -> Node:
        node = self._binary(0)
        self._expect("end")
        return node

    def _peek(self) -> Token:
        return self._tokens[self._index]

    def _advance(self) -> Token:
        token = self._tokens[self._index]
        self._index += 1
        return token

    def _at(self, kind: str, text: Optional[str] = None) -> bool:
        token = self._peek()
        return token.kind == kind and (text is None or token.text == text)

    def _expect(self, kind: str, text: Optional[str] = None) -> Token:
        if not self._at(kind, text):
            token = self._peek()
            found = repr(token.text) if token.text else "end of formula"
            raise FormulaSyntaxError(f"expected {text or kind}, found {found} at {token.position}")
        return self._advance()

    def _binary(self, level: int) -> Node:
        if level == len(self._LEVELS):
            return self._unary()
        node = self._binary(level + 1)
        while self._peek().kind == "op" and self._peek().text in self._LEVELS[level]:
            op = self._advance().text
            node = Binary(op, node, self._binary(level + 1))
        return node

    def _unary(self) -> Node:
        if self._at("op", "-") or self._at("op", "+"):
            op = self._advance().text
            return Unary(op, self._unary())
        return self._primary()

    def _primary(self) -> Node:
        token = self._advance()
        if token.kind == "number":
            text = token.text
            return Literal(int(text) if text.isdigit() else float(text))
        if token.kind == "string":
            return Literal(token.text[1:-1].replace('""', '"'))
        if token.kind == "cell":
            try:
                return Reference(CellRef.parse(token.text))
            except RefError:
                return ErrorLiteral(REF)
        if token.kind == "range":
            try:
                return RangeReference(CellRange.parse(token.text))
            except RefError:
                return ErrorLiteral(REF)
        if token.kind == "name":
            if self._at("punct", "("):
                return self._call(token)
            if token.text.upper() in ("TRUE", "FALSE"):
                return Literal(token.text.upper() == "TRUE")
            return ErrorLiteral(NAME)
        if token.kind == "punct" and token.text == "(":
            node = self._binary(0)
            self._expect("punct", ")")
            return node
        found = repr(token.text) if token.text else "end of formula"
        raise FormulaSyntaxError(f"unexpected {found} at {token.position}")

    def _call(self, name: Token) -> Node:
        self._expect("punct", "(")
        args: List[Node] = []
        if not self._at("punct", ")"):
            args.append(self._binary(0))
            while self._at("punct", ","):
                self._advance()
                args.append(self._binary(0))
        self._expect("punct", ")")
        function = lookup(name.text)
        if function is not None and not function.accepts(len(args)):
            raise FormulaSyntaxError(f"{function.name} does not take {len(args)} argument(s)")
        return Call(name.text.upper(), function, args)


class Formula:
    """A parsed formula: its source text and syntax tree."""

    def __init__(self, source: str, tree: Node) -> None:
        self.source = source
        self.tree = tree

    @classmethod
    def parse(cls, source: str) -> Formula:
        """Parse text such as ``=SUM(A1:A3)*2``."""
        if not source.startswith("="):
            raise FormulaSyntaxError(f"a formula starts with '=': {source!r}")
        return cls(source, _Parser(source[1:]).parse())

    def references(self) -> FrozenSet[CellRef]:
        """Every cell the formula reads, ranges expanded."""
        return frozenset(self.tree.references())

    def evaluate(self, lookup: Lookup) -> object:
        """Compute the formula's value, reading other cells through ``lookup``.

        Errors are returned as :class:`CellError` values; a formula that only
        reads a blank cell is 0.
        """
        try:
            value = self.tree.evaluate(lookup)
        except EvaluationError as exc:
            return exc.error
        return 0 if value is None else value

    def __repr__(self) -> str:
        return f"Formula({self.source!r})"
