"""A1-style cell references and rectangular ranges.

Rows and columns are stored zero-based: ``A1`` is row 0, column 0 and ``AA10``
is row 9, column 26. Names are case-insensitive and always printed upper-case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

MAX_ROWS = 1_048_576
MAX_COLUMNS = 16_384  # A .. XFD

_CELL_PATTERN = re.compile(r"([A-Za-z]+)([0-9]+)")


class RefError(ValueError):
    """Raised for text that does not name a cell or range on the sheet."""


def column_index(letters: str) -> int:
    """Return the zero-based index of a column: ``A`` -> 0, ``Z`` -> 25, ``AA`` -> 26."""
    if not letters.isascii() or not letters.isalpha():
        raise RefError(f"invalid column letters: {letters!r}")
    index = 0
    for letter in letters.upper():
        index = index * 26 + (ord(letter) - ord("A") + 1)
    return index - 1


def column_letters(index: int) -> str:
    """Return the letters of a zero-based column index: 0 -> ``A``, 26 -> ``AA``."""
    if index < 0:
        raise RefError(f"negative column index: {index}")
    letters = []
    number = index + 1
    while number:
        number, remainder = divmod(number - 1, 26)
        letters.append(chr(ord("A") + remainder))
    return "".join(reversed(letters))


@dataclass(frozen=True, order=True)
class CellRef:
    """One cell, by zero-based row and column. References sort row by row."""

    row: int
    col: int

    @classmethod
    def parse(cls, text: str) -> CellRef:
        """Parse a name such as ``B3`` or ``aa10``."""
        match = _CELL_PATTERN.fullmatch(text.strip())
        if match is None:
            raise RefError(f"not a cell reference: {text!r}")
        letters, digits = match.groups()
        row = int(digits) - 1
        col = column_index(letters)
        if not (0 <= row < MAX_ROWS and 0 <= col < MAX_COLUMNS):
            raise RefError(f"cell reference outside the sheet: {text!r}")
        return cls(row, col)

    @property
    def name(self) -> str:
        return f"{column_letters(self.col)}{self.row + 1}"

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class CellRange:
    """The rectangle of cells from ``(top, left)`` to ``(bottom, right)``, inclusive."""

    top: int
    left: int
    bottom: int
    right: int

    @classmethod
    def between(cls, first: CellRef, second: CellRef) -> CellRange:
        """The smallest range holding both cells, whichever corners they are."""
        return cls(
            min(first.row, second.row),
            min(first.col, second.col),
            max(first.row, second.row),
            max(first.col, second.col),
        )

    @classmethod
    def parse(cls, text: str) -> CellRange:
        """Parse ``A1:B3`` (corners in either order) or a single cell ``A1``."""
        start, colon, end = text.partition(":")
        first = CellRef.parse(start)
        return cls.between(first, CellRef.parse(end) if colon else first)

    @property
    def name(self) -> str:
        return f"{CellRef(self.top, self.left)}:{CellRef(self.bottom, self.right)}"

    @property
    def size(self) -> int:
        """The number of cells in the range."""
        return (self.bottom - self.top + 1) * (self.right - self.left + 1)

    def cells(self) -> Iterator[CellRef]:
        """Yield every cell of the range, row by row."""
        for row in range(self.top, self.bottom):
            for col in range(self.left, self.right + 1):
                yield CellRef(row, col)

    def __str__(self) -> str:
        return self.name
