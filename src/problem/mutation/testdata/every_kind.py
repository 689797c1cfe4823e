"""A small module with every kind of mutation candidate (the doc string is left alone)."""

from typing import TYPE_CHECKING

__all__ = ["clamp", "window", "Stack"]
__version__ = "1.2.3"

if TYPE_CHECKING:
    from typing import List

LIMIT = 10


def clamp(x: int, lo: int = 0, hi: int = 99) -> int:
    """Clamps x into [lo, hi]."""
    if x < lo:
        return lo
    elif x > hi:
        return hi
    else:
        return x


def window(items, start, size):
    # Münze: the slice takes `size` items from `start`.
    return items[start:start + size]


def tail(items, n):
    return items[len(items) - 1:] if n == 1 else items[-n:]


def count_in(items, wanted, strict=True):
    total = 0
    for i in range(0, len(items)):
        if items[i] in wanted and not strict:
            total += 2
        elif items[i] in wanted or items[i] is None:
            total += 1
    return total


def ratio(a, b):
    if b == 0:
        return None
    return divide(a, b)


def divide(a, b):
    return a / b


def accent(s):
    return "é" + s if len(s) > 2 else s


class Stack:
    def __init__(self):
        self.items = []
        self.frozen = False

    def push(self, x):
        if self.frozen:
            raise ValueError("frozen")
        self.items.append(x)

    def peek(self):
        if self.items:
            return self.items[-1]


if __name__ == "__main__":
    print(clamp(5, 1, 3) < 2)
