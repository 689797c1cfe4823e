"""mini_stackvm: an assembler, interpreter and disassembler for a small stack VM.

>>> from mini_stackvm import run
>>> run('''
...         PUSH 6
...         PUSH 7
...         MUL
...         PRINT
...         HALT
... ''')
[42]

See :mod:`mini_stackvm.opcodes` for the instruction set,
:mod:`mini_stackvm.assembler` for the source syntax and :mod:`mini_stackvm.vm`
for the execution semantics.
"""

from .assembler import Program, assemble
from .disasm import Instruction, decode, decode_all, disassemble, trace
from .errors import AssemblyError, DisassemblyError, StackVMError, VMError
from .frames import CallStack, Frame
from .opcodes import BY_NAME, INSTRUCTIONS, Op, OpInfo, OperandType, lookup
from .vm import VM, run

__all__ = [
    "AssemblyError",
    "BY_NAME",
    "CallStack",
    "DisassemblyError",
    "Frame",
    "INSTRUCTIONS",
    "Instruction",
    "Op",
    "OpInfo",
    "OperandType",
    "Program",
    "StackVMError",
    "VM",
    "VMError",
    "assemble",
    "decode",
    "decode_all",
    "disassemble",
    "lookup",
    "run",
    "trace",
]
