"""The dependency graph between cells.

An edge runs from a cell to each cell its formula reads (its *precedents*),
and the reverse edges lead to the cells that read it (its *dependents*). The
sheet uses the graph to find what to recalculate after a change, in which
order, and which cells are caught in circular references.
"""

from __future__ import annotations

import heapq
from typing import AbstractSet, Dict, FrozenSet, Iterable, List, Set, Tuple

from .refs import CellRef


class DependencyGraph:
    def __init__(self) -> None:
        self._precedents: Dict[CellRef, Set[CellRef]] = {}
        self._dependents: Dict[CellRef, Set[CellRef]] = {}

    def precedents(self, cell: CellRef) -> FrozenSet[CellRef]:
        """The cells ``cell`` reads."""
        return frozenset(self._precedents.get(cell, ()))

    def dependents(self, cell: CellRef) -> FrozenSet[CellRef]:
        """The cells that read ``cell``."""
        return frozenset(self._dependents.get(cell, ()))

    def set_precedents(self, cell: CellRef, precedents: Iterable[CellRef]) -> None:
        """Replace the cells ``cell`` reads; an empty iterable means it reads none."""
        for old in self._precedents.pop(cell, ()):
            readers = self._dependents[old]
            readers.discard(cell)
            if not readers:
                del self._dependents[old]
        new = set(precedents)
        if new:
            self._precedents[cell] = new
            for ref in new:
                self._dependents.setdefault(ref, set()).add(cell)

    def dependents_closure(self, cells: Iterable[CellRef]) -> Set[CellRef]:
        """``cells`` together with every cell that reads them, directly or not."""
        found = set(cells)
        pending = list(found)
        while pending:
            cell = pending.pop()
            for dependent in self._dependents.get(cell, ()):
                if dependent not in found:
                    found.add(dependent)
                    pending.append(dependent)
        return found

    def evaluation_order(
        self, cells: AbstractSet[CellRef]
    ) -> Tuple[List[CellRef], Set[CellRef]]:
        """Order ``cells`` so that each comes after the cells it reads.

        Returns ``(order, blocked)``. ``order`` lists the cells that can be
        computed, precedents first (ties broken row by row). ``blocked`` holds
        the cells on a circular reference and the cells that read from one;
        they cannot be computed and are left out of ``order``.
        """
        waiting = {cell: len(self._precedents.get(cell, set()) & cells) for cell in cells}
        ready = [cell for cell, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        order = []
        while ready:
            cell = heapq.heappop(ready)
            order.append(cell)
            for dependent in self._dependents.get(cell, ()):
                if dependent in waiting:
                    waiting[dependent] -= 1
                    if waiting[dependent] == 0:
                        heapq.heappush(ready, dependent)
        blocked = set(cells).difference(order)
        return order, blocked
