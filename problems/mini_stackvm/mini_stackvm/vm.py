"""The bytecode interpreter.

Semantics
---------
Values are Python integers; ``PUSH`` immediates are signed 32-bit, results of
arithmetic are not truncated.

Binary operators pop the right operand first, then the left one, so
``PUSH 7  PUSH 2  SUB`` leaves 5. ``DIV`` truncates toward zero and ``MOD``
takes the sign of the dividend, as in C, so that ``(a DIV b) * b + (a MOD b)``
is always ``a``: ``-7 DIV 2`` is -3 and ``-7 MOD 2`` is -1. Dividing by zero
is a :class:`VMError`. Comparisons push 1 for true and 0 for false.

``CALL addr n`` moves the top ``n`` values of the stack into local slots
``0 .. n-1`` of a new frame and jumps to ``addr``. ``RET`` pops the return
value, discards anything else the callee left on the stack, makes the
caller's frame current again, pushes the return value and continues after the
``CALL``.

Execution starts at address 0 and ends at ``HALT``; running off the end of
the code is an error.
"""

import operator
from typing import Callable, Dict, List, Union

from .assembler import Program, assemble
from .errors import VMError
from .frames import DEFAULT_MAX_DEPTH, CallStack
from .opcodes import ADDR, I32, U8, Op, OperandType, lookup

DEFAULT_MAX_STEPS = 1_000_000


def _div_trunc(a: int, b: int) -> int:
    quotient = abs(a) // abs(b)
    return quotient if (a < 0) == (b < 0) else -quotient


def _mod_trunc(a: int, b: int) -> int:
    return a - b * _div_trunc(a, b)


def _predicate(compare: Callable[[int, int], bool]) -> Callable[[int, int], int]:
    return lambda a, b: 1 if compare(a, b) else 0


_BINARY: Dict[Op, Callable[[int, int], int]] = {
    Op.ADD: operator.add,
    Op.SUB: operator.sub,
    Op.MUL: operator.mul,
    Op.DIV: operator.floordiv,
    Op.MOD: _mod_trunc,
    Op.EQ: _predicate(operator.eq),
    Op.NE: _predicate(operator.ne),
    Op.LT: _predicate(operator.lt),
    Op.LE: _predicate(operator.le),
    Op.GT: _predicate(operator.gt),
    Op.GE: _predicate(operator.ge),
}


class VM:
    """Executes one program. Inspect ``stack``, ``frames`` and ``output`` freely."""

    def __init__(
        self,
        program: Union[Program, bytes],
        *,
        max_steps: int = DEFAULT_MAX_STEPS,
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        self.code = bytes(program.code if isinstance(program, Program) else program)
        self.max_steps = max_steps
        self.stack: List[int] = []
        self.frames = CallStack(max_depth)
        self.output: List[int] = []
        self.pc = 0
        self.steps = 0
        self.halted = False

    def run(self) -> List[int]:
        """Run until HALT and return everything the program printed."""
        while not self.halted:
            self.step()
        return self.output

    def step(self) -> None:
        """Execute exactly one instruction."""
        if self.halted:
            raise VMError("the machine has halted", self.pc)
        if self.steps >= self.max_steps:
            raise VMError(f"step limit of {self.max_steps} exceeded", self.pc)
        start = self.pc
        try:
            self._execute()
        except VMError as exc:
            if exc.pc is None:
                raise VMError(exc.message, start) from None
            raise
        self.steps += 1

    # -- helpers ---------------------------------------------------------

    def _fetch(self, kind: OperandType) -> int:
        try:
            value = kind.decode(self.code, self.pc)
        except ValueError as exc:
            raise VMError(str(exc)) from None
        self.pc += kind.width
        return value

    def _push(self, value: int) -> None:
        self.stack.append(value)

    def _pop(self) -> int:
        if len(self.stack) <= self.frames.current.stack_base:
            raise VMError("stack underflow")
        return self.stack.pop()

    def _jump(self, target: int) -> None:
        if not 0 <= target < len(self.code):
            raise VMError(f"jump target {target:04x} is outside the program")
        self.pc = target

    # -- dispatch --------------------------------------------------------

    def _execute(self) -> None:
        if not 0 <= self.pc < len(self.code):
            raise VMError("execution ran past the end of the program")
        opcode = self.code[self.pc]
        try:
            op = lookup(opcode).op
        except KeyError:
            raise VMError(f"unknown opcode 0x{opcode:02x}") from None
        self.pc += 1

        if op in _BINARY:
            right = self._pop()
            left = self._pop()
            if right == 0 and op in (Op.DIV, Op.MOD):
                raise VMError("division by zero")
            self._push(_BINARY[op](left, right))
        elif op is Op.PUSH:
            self._push(self._fetch(I32))
        elif op is Op.POP:
            self._pop()
        elif op is Op.DUP:
            value = self._pop()
            self._push(value)
            self._push(value)
        elif op is Op.SWAP:
            top = self._pop()
            below = self._pop()
            self._push(top)
            self._push(below)
        elif op is Op.OVER:
            top = self._pop()
            below = self._pop()
            self._push(below)
            self._push(top)
            self._push(below)
        elif op is Op.NEG:
            self._push(-self._pop())
        elif op is Op.NOT:
            self._push(1 if self._pop() == 0 else 0)
        elif op is Op.JMP:
            self._jump(self._fetch(ADDR))
        elif op in (Op.JZ, Op.JNZ):
            target = self._fetch(ADDR)
            is_zero = self._pop() == 0
            if is_zero == (op is Op.JZ):
                self._jump(target)
        elif op is Op.LOAD:
            self._push(self.frames.current.load(self._fetch(U8)))
        elif op is Op.STORE:
            slot = self._fetch(U8)
            self.frames.current.store(slot, self._pop())
        elif op is Op.CALL:
            self._call(self._fetch(ADDR), self._fetch(U8))
        elif op is Op.RET:
            self._return()
        elif op is Op.PRINT:
            self.output.append(self._pop())
        elif op is Op.HALT:
            self.pc -= 1
            self.halted = True
        elif op is not Op.NOP:
            raise VMError(f"opcode {op.name} is not implemented")

    def _call(self, target: int, argc: int) -> None:
        base = len(self.stack) - argc
        if base < self.frames.current.stack_base:
            raise VMError(f"CALL needs {argc} argument(s) on the stack")
        args = self.stack[base:]
        del self.stack[base:]
        self.frames.push(return_address=self.pc, stack_base=base, args=args)
        self._jump(target)

    def _return(self) -> None:
        result = self._pop()
        frame = self.frames.pop()
        del self.stack[frame.stack_base:]
        self._push(result)
        self.pc = frame.return_address


def run(
    program: Union[Program, bytes, str],
    *,
    max_steps: int = DEFAULT_MAX_STEPS,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> List[int]:
    """Assemble ``program`` if it is source text, run it and return its output."""
    if isinstance(program, str):
        program = assemble(program)
    return VM(program, max_steps=max_steps, max_depth=max_depth).run()
