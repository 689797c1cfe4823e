"""Instruction set of the stack VM.

Every instruction is one opcode byte followed by its operands, if any.
Operands are stored little-endian and come in three kinds:

``u8``
    an unsigned byte: a local-variable slot or an argument count
``addr``
    an unsigned 16-bit absolute code address (jump and call targets)
``i32``
    a signed 32-bit immediate, pushed by ``PUSH``

========  ====  ============  =============================================
mnemonic  code  operands      effect
========  ====  ============  =============================================
HALT      0x00                stop the machine
NOP       0x01                do nothing
PUSH      0x02  i32           push the immediate
POP       0x03                discard the top of the stack
DUP       0x04                duplicate the top of the stack
SWAP      0x05                exchange the two topmost values
OVER      0x06                push a copy of the second value from the top
ADD       0x10                a b -> a + b
SUB       0x11                a b -> a - b
MUL       0x12                a b -> a * b
DIV       0x13                a b -> a / b, truncated toward zero
MOD       0x14                a b -> a - b * (a / b), sign of the dividend
NEG       0x15                a -> -a
EQ .. GE  0x20  ..0x25        a b -> 1 if the comparison holds, else 0
NOT       0x26                a -> 1 if a == 0 else 0
JMP       0x30  addr          jump
JZ        0x31  addr          pop; jump if the value is 0
JNZ       0x32  addr          pop; jump if the value is not 0
LOAD      0x40  u8            push local slot
STORE     0x41  u8            pop into local slot
CALL      0x50  addr u8       call a function with that many arguments
RET       0x51                return the top of the stack to the caller
PRINT     0x60                pop and append to the machine's output
========  ====  ============  =============================================
"""

from dataclasses import dataclass
from enum import IntEnum
from typing import Dict, Sequence, Tuple


@dataclass(frozen=True)
class OperandType:
    """How one operand is laid out in the bytecode."""

    name: str
    width: int
    signed: bool

    @property
    def min_value(self) -> int:
        return -(1 << (8 * self.width - 1)) if self.signed else 0

    @property
    def max_value(self) -> int:
        bits = 8 * self.width - 1 if self.signed else 8 * self.width
        return (1 << bits) - 1

    def encode(self, value: int) -> bytes:
        if not self.min_value <= value <= self.max_value:
            raise ValueError(
                f"{value} does not fit in an {self.name} operand "
                f"({self.min_value}..{self.max_value})"
            )
        return value.to_bytes(self.width, "little", signed=self.signed)

    def decode(self, code: Sequence[int], offset: int) -> int:
        end = offset + self.width
        if offset < 0 or end > len(code):
            raise ValueError(f"truncated {self.name} operand at {offset:04x}")
        return int.from_bytes(bytes(code[offset:end]), "little", signed=self.signed)


U8 = OperandType("u8", 1, signed=False)
ADDR = OperandType("addr", 2, signed=False)
I32 = OperandType("i32", 4, signed=True)


class Op(IntEnum):
    HALT = 0x00
    NOP = 0x01
    PUSH = 0x02
    POP = 0x03
    DUP = 0x04
    SWAP = 0x05
    OVER = 0x06
    ADD = 0x10
    SUB = 0x11
    MUL = 0x12
    DIV = 0x13
    MOD = 0x14
    NEG = 0x15
    EQ = 0x20
    NE = 0x21
    LT = 0x22
    LE = 0x23
    GT = 0x24
    GE = 0x25
    NOT = 0x26
    JMP = 0x30
    JZ = 0x31
    JNZ = 0x32
    LOAD = 0x40
    STORE = 0x41
    CALL = 0x50
    RET = 0x51
    PRINT = 0x60


@dataclass(frozen=True)
class OpInfo:
    """Static description of one instruction."""

    op: Op
    operands: Tuple[OperandType, ...] = ()

    @property
    def name(self) -> str:
        return self.op.name

    @property
    def code(self) -> int:
        return int(self.op)

    @property
    def size(self) -> int:
        """Encoded length in bytes: the opcode plus all of its operands."""
        return 1 + sum(kind.width for kind in self.operands)


_OPERANDS: Dict[Op, Tuple[OperandType, ...]] = {
    Op.PUSH: (I32,),
    Op.JMP: (ADDR,),
    Op.JZ: (ADDR,),
    Op.JNZ: (ADDR,),
    Op.LOAD: (U8,),
    Op.STORE: (U8,),
    Op.CALL: (ADDR, U8),
}

INSTRUCTIONS: Dict[int, OpInfo] = {int(op): OpInfo(op, _OPERANDS.get(op, ())) for op in Op}
BY_NAME: Dict[str, OpInfo] = {info.name: info for info in INSTRUCTIONS.values()}


def lookup(opcode: int) -> OpInfo:
    """Return the instruction for an opcode byte; ``KeyError`` if there is none."""
    return INSTRUCTIONS[opcode]
