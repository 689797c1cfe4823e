"""The worksheet: cell contents, cached values and recalculation."""

from __future__ import annotations

from typing import Dict, Iterable, List, Mapping, Optional, Tuple, Union

from .formula import Formula
from .graph import DependencyGraph
from .refs import CellRef
from .values import CYCLE, format_value, parse_number

Content = Union[None, str, int, float, bool]


def _constant_value(content: Content) -> object:
    """The value of a cell that holds no formula.

    Numeric text is read as a number and TRUE/FALSE as booleans; a leading
    apostrophe keeps text as it is (``'42`` is the text ``42``).
    """
    if not isinstance(content, str):
        return content
    if content.startswith("'"):
        return content[1:]
    number = parse_number(content)
    if number is not None:
        return number
    if content.upper() in ("TRUE", "FALSE"):
        return content.upper() == "TRUE"
    return content


class Sheet:
    """A grid of cells addressed by A1-style names.

    Setting a cell stores its content, then recalculates every formula that
    reads it, directly or through other formulas, in dependency order. The
    results are cached, so reading a value never computes anything. Cells on a
    circular reference, and the cells that read them, show ``#CYCLE!``.
    """

    def __init__(self) -> None:
        self._contents: Dict[CellRef, Content] = {}
        self._formulas: Dict[CellRef, Formula] = {}
        self._values: Dict[CellRef, object] = {}
        self._graph = DependencyGraph()

    def set(self, name: str, content: Content) -> None:
        """Set one cell: a number, text, a formula such as ``=A1*2``, or None to clear it."""
        self.update({name: content})

    def clear(self, name: str) -> None:
        self.update({name: None})

    def update(self, cells: Mapping[str, Content]) -> None:
        """Set several cells, then recalculate once.

        All formulas are parsed before anything changes, so a
        :class:`~mini_sheet.formula.FormulaSyntaxError` leaves the sheet as it was.
        """
        changes: List[Tuple[CellRef, Content, Optional[Formula]]] = []
        for name, content in cells.items():
            if content == "":
                content = None
            if content is not None and not isinstance(content, (str, int, float, bool)):
                raise TypeError(f"cannot store {type(content).__name__} in a cell")
            formula = None
            if isinstance(content, str) and content.startswith("="):
                formula = Formula.parse(content)
            changes.append((CellRef.parse(name), content, formula))
        for ref, content, formula in changes:
            self._store(ref, content, formula)
        self._recalculate(ref for ref, _, _ in changes)

    def get(self, name: str) -> object:
        """The cell's value: None when blank, a number, text, a boolean or a CellError."""
        return self._values.get(CellRef.parse(name))

    def content(self, name: str) -> Content:
        """What was stored in the cell, formulas as their source text."""
        return self._contents.get(CellRef.parse(name))

    def display(self, name: str, places: Optional[int] = None) -> str:
        """The cell's value as text, numbers rounded to ``places`` decimals if given."""
        return format_value(self.get(name), places)

    def precedents(self, name: str) -> List[str]:
        """Names of the cells this cell's formula reads, row by row."""
        return [ref.name for ref in sorted(self._graph.precedents(CellRef.parse(name)))]

    def dependents(self, name: str) -> List[str]:
        """Names of the cells whose formulas read this cell, row by row."""
        return [ref.name for ref in sorted(self._graph.dependents(CellRef.parse(name)))]

    def _store(self, ref: CellRef, content: Content, formula: Optional[Formula]) -> None:
        if content is None:
            self._contents.pop(ref, None)
        else:
            self._contents[ref] = content
        if formula is None:
            self._formulas.pop(ref, None)
        else:
            self._formulas[ref] = formula
        self._graph.set_precedents(ref, formula.references() if formula else ())

    def _recalculate(self, changed: Iterable[CellRef]) -> None:
        affected = self._graph.dependents_closure(changed)
        order, blocked = self._graph.evaluation_order(affected)
        for ref in blocked:
            self._values[ref] = CYCLE
        for ref in order:
            value = self._evaluate(ref)
            if value is None:
                self._values.pop(ref, None)
            else:
                self._values[ref] = value

    def _evaluate(self, ref: CellRef) -> object:
        formula = self._formulas.get(ref)
        if formula is None:
            return _constant_value(self._contents.get(ref))
        return formula.evaluate(self._values.get)
