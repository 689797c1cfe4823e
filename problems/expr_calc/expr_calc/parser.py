"""Build an abstract syntax tree from tokens by precedence climbing."""

import enum
from dataclasses import dataclass
from typing import Dict, List, NamedTuple, Sequence, Tuple, Union

from .tokenizer import CalcError, Token, TokenKind, describe, tokenize


class ParseError(CalcError):
    """The tokens do not form a valid expression."""


@dataclass(frozen=True)
class Number:
    value: Union[int, float]


@dataclass(frozen=True)
class Name:
    name: str


@dataclass(frozen=True)
class UnaryOp:
    op: str
    operand: "Node"


@dataclass(frozen=True)
class BinaryOp:
    op: str
    left: "Node"
    right: "Node"


@dataclass(frozen=True)
class Call:
    name: str
    args: Tuple["Node", ...]


Node = Union[Number, Name, UnaryOp, BinaryOp, Call]


class Assoc(enum.Enum):
    LEFT = "left"
    RIGHT = "right"


class OperatorInfo(NamedTuple):
    precedence: int
    assoc: Assoc


BINARY_OPERATORS: Dict[str, OperatorInfo] = {
    "+": OperatorInfo(10, Assoc.LEFT),
    "-": OperatorInfo(10, Assoc.LEFT),
    "*": OperatorInfo(20, Assoc.LEFT),
    "/": OperatorInfo(20, Assoc.LEFT),
    "//": OperatorInfo(20, Assoc.LEFT),
    "%": OperatorInfo(20, Assoc.LEFT),
    "^": OperatorInfo(30, Assoc.RIGHT),
}

# Unary minus binds tighter than "*" but looser than "^": -2^2 == -(2^2).
UNARY_PRECEDENCE = 25
UNARY_OPERATORS = ("-", "+")


def parse(source: Union[str, Sequence[Token]]) -> Node:
    """Parse expression text (or an already tokenized expression)."""
    tokens = tokenize(source) if isinstance(source, str) else list(source)
    return Parser(tokens).parse()


class Parser:
    def __init__(self, tokens: List[Token]) -> None:
        if not tokens or tokens[-1].kind is not TokenKind.END:
            raise ValueError("token list must end with an END token")
        self._tokens = tokens
        self._index = 0

    def parse(self) -> Node:
        node = self._parse_expression(0)
        token = self._peek()
        if token.kind is not TokenKind.END:
            raise ParseError(f"unexpected {describe(token)}", token.position)
        return node

    def _peek(self) -> Token:
        return self._tokens[self._index]

    def _advance(self) -> Token:
        token = self._tokens[self._index]
        if token.kind is not TokenKind.END:
            self._index += 1
        return token

    def _expect(self, kind: TokenKind) -> Token:
        token = self._peek()
        if token.kind is not kind:
            raise ParseError(
                f"expected {kind.value}, found {describe(token)}", token.position
            )
        return self._advance()

    def _parse_expression(self, min_precedence: int) -> Node:
        left = self._parse_unary()
        while True:
            token = self._peek()
            if token.kind is not TokenKind.OPERATOR:
                break
            info = BINARY_OPERATORS[token.text]
            if info.precedence < min_precedence:
                break
            self._advance()
            if info.assoc is Assoc.RIGHT:
                next_min = info.precedence + 1
            else:
                next_min = info.precedence
            right = self._parse_expression(next_min)
            left = BinaryOp(token.text, left, right)
        return left

    def _parse_unary(self) -> Node:
        token = self._peek()
        if token.kind is TokenKind.OPERATOR and token.text in UNARY_OPERATORS:
            self._advance()
            operand = self._parse_expression(UNARY_PRECEDENCE)
            return UnaryOp(token.text, operand)
        return self._parse_primary()

    def _parse_primary(self) -> Node:
        token = self._advance()
        if token.kind is TokenKind.NUMBER:
            assert token.value is not None
            return Number(token.value)
        if token.kind is TokenKind.NAME:
            if self._peek().kind is TokenKind.LPAREN:
                return Call(token.text, self._parse_arguments())
            return Name(token.text)
        if token.kind is TokenKind.LPAREN:
            node = self._parse_expression(0)
            self._expect(TokenKind.RPAREN)
            return node
        raise ParseError(f"unexpected {describe(token)}", token.position)

    def _parse_arguments(self) -> Tuple[Node, ...]:
        self._expect(TokenKind.LPAREN)
        args: List[Node] = []
        if self._peek().kind is not TokenKind.RPAREN:
            args.append(self._parse_expression(0))
            while self._peek().kind is TokenKind.COMMA:
                self._advance()
                args.append(self._parse_expression(0))
        self._expect(TokenKind.RPAREN)
        return tuple(args)
