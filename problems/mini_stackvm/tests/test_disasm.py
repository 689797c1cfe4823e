from mini_stackvm import Op, assemble, decode, decode_all, disassemble, trace

FACTORIAL = """
        PUSH 5
        CALL fact 1
        PRINT
        HALT
fact:
        LOAD 0
        PUSH 1
        GT
        JNZ recurse
        PUSH 1
        RET
recurse:
        LOAD 0
        PUSH 1
        SUB
        CALL fact 1
        LOAD 0
        MUL
        RET
"""


def test_decode_all_lists_addresses_and_operands():
    code = assemble("PUSH 5\nPUSH -3\nADD\nPRINT\nHALT\n").code
    listing = [(i.address, str(i)) for i in decode_all(code)]
    assert listing == [
        (0, "PUSH 5"),
        (5, "PUSH -3"),
        (10, "ADD"),
        (11, "PRINT"),
        (12, "HALT"),
    ], "every instruction is decoded at its address, i32 immediates keep their sign"


def test_decode_call_reads_target_and_argument_count():
    code = bytes([Op.NOP, Op.CALL, 0x34, 0x12, 0x02, Op.HALT])
    call = decode(code, 1)
    assert call.operands == (0x1234, 2), (
        "CALL has a u16 target (bytes 34 12) followed by a u8 argument count (02)"
    )
    assert str(call) == "CALL 4660 2"
    assert call.size == 4 and decode(code, 1 + call.size).info.name == "HALT"


def test_disassembly_reassembles_to_identical_bytecode():
    original = assemble(FACTORIAL)
    text = disassemble(original)
    assert "    CALL L000b 1" in text.splitlines(), "call targets are shown as labels named after their address"
    assert "L001c:" in text.splitlines(), "jump targets get a label line"
    assert assemble(text).code == original.code, "disassembling and assembling again gives the same bytes"


def test_trace_shows_stack_before_each_step():
    lines = trace(assemble("PUSH 2\nPUSH 3\nADD\nPRINT\nHALT\n"))
    assert lines == [
        "0000  PUSH 2        []",
        "0005  PUSH 3        [2]",
        "000a  ADD           [2, 3]",
        "000b  PRINT         [5]",
        "000c  HALT          []",
    ], "one line per executed instruction: address, instruction, stack before it ran"
