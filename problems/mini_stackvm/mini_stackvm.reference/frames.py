"""Call frames and the call stack.

The operand stack is shared by all functions. A frame remembers where the
caller continues (``return_address``), how high the operand stack was when the
callee started (``stack_base``) so that RET can drop whatever the callee left
behind, and the callee's local variables. Arguments arrive in local slots
``0 .. argc-1``; other slots come into existence when first stored to.

The outermost frame belongs to the main program and has no return address.
"""

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional

from .errors import VMError

DEFAULT_MAX_DEPTH = 256


@dataclass
class Frame:
    return_address: Optional[int]
    stack_base: int
    locals: Dict[int, int] = field(default_factory=dict)

    def load(self, slot: int) -> int:
        try:
            return self.locals[slot]
        except KeyError:
            raise VMError(f"local {slot} read before it was assigned") from None

    def store(self, slot: int, value: int) -> None:
        self.locals[slot] = value


class CallStack:
    """The stack of active frames; ``current`` is the innermost one."""

    def __init__(self, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
        self.max_depth = max_depth
        self._frames: List[Frame] = [Frame(return_address=None, stack_base=0)]
        self.current: Frame = self._frames[0]

    @property
    def depth(self) -> int:
        """Number of active calls; 0 while the main program runs."""
        return len(self._frames) - 1

    def __iter__(self):
        return iter(self._frames)

    def push(self, return_address: int, stack_base: int, args: Iterable[int] = ()) -> Frame:
        if self.depth >= self.max_depth:
            raise VMError(f"call stack overflow: more than {self.max_depth} nested calls")
        frame = Frame(return_address, stack_base, dict(enumerate(args)))
        self._frames.append(frame)
        self.current = frame
        return frame

    def pop(self) -> Frame:
        """Remove the innermost frame and make its caller current again."""
        if self.depth == 0:
            raise VMError("RET outside of a function")
        frame = self._frames.pop()
        self.current = self._frames[-1]
        return frame
