"""mini_sheet: a small spreadsheet engine.

>>> sheet = Sheet()
>>> sheet.update({"A1": 2, "A2": 3, "A3": "=SUM(A1:A2)*10"})
>>> sheet.get("A3")
50.0
>>> sheet.set("A1", 4)
>>> sheet.display("A3")
'70'
"""

from .formula import Formula, FormulaSyntaxError
from .refs import CellRange, CellRef, RefError, column_index, column_letters
from .sheet import Sheet
from .values import CellError, format_value

__all__ = [
    "CellError",
    "CellRange",
    "CellRef",
    "Formula",
    "FormulaSyntaxError",
    "RefError",
    "Sheet",
    "column_index",
    "column_letters",
    "format_value",
]
