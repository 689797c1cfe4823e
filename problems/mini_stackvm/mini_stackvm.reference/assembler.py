"""Assembler: text source -> bytecode.

Source format, one instruction per line::

    ; comments run from ';' to the end of the line
            PUSH 10         ; mnemonics are case-insensitive
    loop:   LOAD 0          ; a label may share its line with an instruction
            JNZ loop
            CALL fact, 1    ; operands are separated by spaces and/or commas

Integer operands are decimal or ``0x`` hexadecimal and may be negative where
the operand type allows it. Address operands (``JMP``, ``JZ``, ``JNZ`` and the
first operand of ``CALL``) may be a label or a plain number.

Labels are resolved in two passes. While the code is emitted, a reference to
a label that is already defined is encoded directly; a reference to a label
defined further down is encoded as a placeholder and remembered. Once the
whole source has been read, every placeholder is patched with the label's
address.
"""

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .errors import AssemblyError
from .opcodes import ADDR, BY_NAME, OperandType, OpInfo

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_LABEL_DEFINITION = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*:(.*)\Z", re.DOTALL)


@dataclass(frozen=True)
class Program:
    """Assembled bytecode together with its symbol table."""

    code: bytes
    labels: Dict[str, int] = field(default_factory=dict)
    lines: Dict[int, int] = field(default_factory=dict)
    """Maps the address of each instruction to its 1-based source line."""


@dataclass(frozen=True)
class _Fixup:
    offset: int
    kind: OperandType
    label: str
    line: int


class _Assembler:
    def __init__(self) -> None:
        self._code = bytearray()
        self._labels: Dict[str, int] = {}
        self._lines: Dict[int, int] = {}
        self._fixups: List[_Fixup] = []

    def assemble(self, source: str) -> Program:
        for line_no, raw in enumerate(source.splitlines(), start=1):
            self._assemble_line(raw, line_no)
        self._patch_fixups()
        return Program(bytes(self._code), dict(self._labels), dict(self._lines))

    def _assemble_line(self, raw: str, line_no: int) -> None:
        text = raw.split(";", 1)[0].strip()
        match = _LABEL_DEFINITION.match(text)
        while match:
            self._define_label(match.group(1), line_no)
            text = match.group(2).strip()
            match = _LABEL_DEFINITION.match(text)
        if not text:
            return

        mnemonic, *args = text.replace(",", " ").split()
        info = BY_NAME.get(mnemonic.upper())
        if info is None:
            raise AssemblyError(f"unknown instruction {mnemonic!r}", line_no)
        if len(args) != len(info.operands):
            raise AssemblyError(
                f"{info.name} takes {len(info.operands)} operand(s), got {len(args)}", line_no
            )
        self._emit(info, args, line_no)

    def _define_label(self, name: str, line_no: int) -> None:
        if name.upper() in BY_NAME:
            raise AssemblyError(f"label {name!r} clashes with an instruction name", line_no)
        if name in self._labels:
            raise AssemblyError(f"label {name!r} is already defined", line_no)
        self._labels[name] = len(self._code)

    def _emit(self, info: OpInfo, args: List[str], line_no: int) -> None:
        address = len(self._code)
        self._lines[address] = line_no
        self._code.append(info.code)
        for kind, arg in zip(info.operands, args):
            value = self._operand_value(kind, arg, line_no)
            if value is None:
                self._fixups.append(_Fixup(len(self._code), kind, arg, line_no))
                value = 0
            self._code += self._encode(kind, value, line_no)

    def _operand_value(self, kind: OperandType, arg: str, line_no: int) -> Optional[int]:
        """The operand's value, or None for a label that is not defined yet."""
        if kind is ADDR and _IDENTIFIER.match(arg):
            return self._labels.get(arg)
        try:
            return int(arg, 0)
        except ValueError:
            raise AssemblyError(f"bad {kind.name} operand {arg!r}", line_no) from None

    def _encode(self, kind: OperandType, value: int, line_no: int) -> bytes:
        try:
            return kind.encode(value)
        except ValueError as exc:
            raise AssemblyError(str(exc), line_no) from None

    def _patch_fixups(self) -> None:
        for fixup in self._fixups:
            target = self._labels.get(fixup.label)
            if target is None:
                raise AssemblyError(f"undefined label {fixup.label!r}", fixup.line)
            end = fixup.offset + fixup.kind.width
            self._code[fixup.offset:end] = self._encode(fixup.kind, target, fixup.line)


def assemble(source: str) -> Program:
    """Assemble ``source`` into a :class:`Program`; raises :class:`AssemblyError`."""
    return _Assembler().assemble(source)
