"""Exception hierarchy shared by the assembler, the VM and the disassembler."""

from typing import Optional


class StackVMError(Exception):
    """Base class of every error raised by mini_stackvm."""


class AssemblyError(StackVMError):
    """The assembly source is malformed; ``line`` is the 1-based source line."""

    def __init__(self, message: str, line: Optional[int] = None) -> None:
        self.message = message
        self.line = line
        super().__init__(f"line {line}: {message}" if line is not None else message)


class VMError(StackVMError):
    """The running program did something illegal; ``pc`` is the faulting address."""

    def __init__(self, message: str, pc: Optional[int] = None) -> None:
        self.message = message
        self.pc = pc
        super().__init__(f"{message} (pc={pc:04x})" if pc is not None else message)


class DisassemblyError(StackVMError):
    """The bytecode cannot be decoded (unknown opcode or truncated operand)."""
