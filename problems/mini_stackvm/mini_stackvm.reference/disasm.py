"""Disassembler and execution tracer.

:func:`decode_all` turns bytecode back into :class:`Instruction` objects,
:func:`disassemble` renders it as assembly source that :func:`assemble`
accepts again (jump and call targets get labels named after their address,
e.g. ``L001f``), and :func:`trace` runs a program one step at a time and
records each instruction together with the operand stack it found.
"""

from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from .assembler import Program
from .errors import DisassemblyError
from .opcodes import ADDR, OpInfo, lookup
from .vm import DEFAULT_MAX_STEPS, VM


@dataclass(frozen=True)
class Instruction:
    address: int
    info: OpInfo
    operands: Tuple[int, ...]

    @property
    def size(self) -> int:
        return self.info.size

    @property
    def targets(self) -> Tuple[int, ...]:
        """The code addresses this instruction refers to (jump or call targets)."""
        return tuple(
            value for kind, value in zip(self.info.operands, self.operands) if kind is ADDR
        )

    def format(self, labels: Optional[Mapping[int, str]] = None) -> str:
        labels = labels or {}
        parts = [self.info.name]
        for kind, value in zip(self.info.operands, self.operands):
            if kind is ADDR and value in labels:
                parts.append(labels[value])
            else:
                parts.append(str(value))
        return " ".join(parts)

    def __str__(self) -> str:
        return self.format()


def _code_of(program: Union[Program, bytes, Sequence[int]]) -> bytes:
    return bytes(program.code if isinstance(program, Program) else program)


def decode(program: Union[Program, bytes, Sequence[int]], address: int) -> Instruction:
    """Decode the single instruction that starts at ``address``."""
    code = _code_of(program)
    if not 0 <= address < len(code):
        raise DisassemblyError(f"address {address:04x} is outside the code")
    try:
        info = lookup(code[address])
    except KeyError:
        raise DisassemblyError(
            f"unknown opcode 0x{code[address]:02x} at {address:04x}"
        ) from None
    operands = []
    offset = address + 1
    for kind in info.operands:
        try:
            operands.append(kind.decode(code, offset))
        except ValueError as exc:
            raise DisassemblyError(str(exc)) from None
        offset += kind.width
    return Instruction(address, info, tuple(operands))


def decode_all(program: Union[Program, bytes, Sequence[int]]) -> List[Instruction]:
    """Decode the whole program, front to back."""
    code = _code_of(program)
    instructions = []
    address = 0
    while address < len(code):
        instruction = decode(code, address)
        instructions.append(instruction)
        address += instruction.size
    return instructions


def disassemble(program: Union[Program, bytes, Sequence[int]]) -> str:
    """Render bytecode as assembly source, one indented instruction per line."""
    code = _code_of(program)
    instructions = decode_all(code)
    starts = {instruction.address for instruction in instructions} | {len(code)}
    labels: Dict[int, str] = {}
    for instruction in instructions:
        for target in instruction.targets:
            if target in starts:
                labels[target] = f"L{target:04x}"

    lines = []
    for instruction in instructions:
        if instruction.address in labels:
            lines.append(f"{labels[instruction.address]}:")
        lines.append(f"    {instruction.format(labels)}")
    if len(code) in labels:
        lines.append(f"{labels[len(code)]}:")
    return "\n".join(lines) + "\n"


def trace(
    program: Union[Program, bytes, Sequence[int]], *, max_steps: int = DEFAULT_MAX_STEPS
) -> List[str]:
    """Run ``program`` and describe every executed step.

    Each line holds the address, the instruction and the operand stack as it
    was just before the instruction ran, e.g. ``"0005  PUSH 3        [2]"``.
    """
    vm = VM(_code_of(program), max_steps=max_steps)
    lines = []
    while not vm.halted:
        instruction = decode(vm.code, vm.pc)
        lines.append(f"{instruction.address:04x}  {instruction.format():<14}{vm.stack}")
        vm.step()
    return lines
