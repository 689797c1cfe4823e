"""Turn expression source text into a list of tokens."""

import enum
import math
from dataclasses import dataclass
from typing import List, Optional, Union


class CalcError(Exception):
    """Base class for every error raised by the calculator.

    ``position`` is the 0-based offset in the source text the error refers
    to, or ``None`` when it is not tied to a place in the text.
    """

    def __init__(self, message: str, position: Optional[int] = None) -> None:
        self.message = message
        self.position = position
        if position is not None:
            message = f"{message} at position {position}"
        super().__init__(message)


class TokenizeError(CalcError):
    """The source text contains something that is not a valid token."""


class TokenKind(enum.Enum):
    NUMBER = "number"
    NAME = "name"
    OPERATOR = "operator"
    LPAREN = "'('"
    RPAREN = "')'"
    COMMA = "','"
    END = "end of input"


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str
    position: int
    value: Optional[Union[int, float]] = None


# Longest operators first, so that "//" is not read as two "/" tokens.
OPERATORS = ("//", "+", "-", "*", "/", "%", "^")

_PUNCTUATION = {
    "(": TokenKind.LPAREN,
    ")": TokenKind.RPAREN,
    ",": TokenKind.COMMA,
}


def tokenize(text: str) -> List[Token]:
    """Split ``text`` into tokens; the list always ends with an END token."""
    tokens: List[Token] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == " ":
            i += 1
            continue
        if _is_digit(ch) or (ch == "." and i + 1 < n and _is_digit(text[i + 1])):
            token = _read_number(text, i)
        elif ch.isalpha() or ch == "_":
            token = _read_name(text, i)
        elif ch in _PUNCTUATION:
            token = Token(_PUNCTUATION[ch], ch, i)
        else:
            token = _read_operator(text, i)
        tokens.append(token)
        i += len(token.text)
    tokens.append(Token(TokenKind.END, "", n))
    return tokens


def _read_number(text: str, start: int) -> Token:
    i = _skip_digits(text, start)
    is_float = False
    if i < len(text) and text[i] == ".":
        is_float = True
        i = _skip_digits(text, i + 1)
    exponent_end = _exponent_end(text, i)
    if exponent_end is not None:
        is_float = True
        i = exponent_end
    lexeme = text[start:i]
    value: Union[int, float] = float(lexeme) if is_float else int(lexeme)
    if math.isinf(value):
        raise TokenizeError(f"number {lexeme!r} is too large", start)
    return Token(TokenKind.NUMBER, lexeme, start, value)


def _exponent_end(text: str, i: int) -> Optional[int]:
    """End of an exponent suffix such as ``e10`` or ``E-3`` starting at ``i``.

    Returns ``None`` when there is no complete exponent there, in which case
    an ``e`` is left for the name reader (``2e`` is ``2`` followed by ``e``).
    """
    n = len(text)
    if i >= n or text[i] not in "eE":
        return None
    j = i + 1
    if j < n and text[j] in "+-":
        j += 1
    if j >= n or not _is_digit(text[j]):
        return None
    return _skip_digits(text, j)


def _skip_digits(text: str, i: int) -> int:
    while i < len(text) and _is_digit(text[i]):
        i += 1
    return i


def _is_digit(ch: str) -> bool:
    return "0" <= ch <= "9"


def _read_name(text: str, start: int) -> Token:
    i = start
    while i < len(text) and (text[i].isalnum() or text[i] == "_"):
        i += 1
    return Token(TokenKind.NAME, text[start:i], start)


def _read_operator(text: str, start: int) -> Token:
    for op in OPERATORS:
        if text.startswith(op, start):
            return Token(TokenKind.OPERATOR, op, start)
    raise TokenizeError(f"unexpected character {text[start]!r}", start)


def describe(token: Token) -> str:
    """A short human-readable description of ``token`` for error messages."""
    if token.kind in (TokenKind.NUMBER, TokenKind.NAME, TokenKind.OPERATOR):
        return f"{token.kind.value} {token.text!r}"
    return token.kind.value
