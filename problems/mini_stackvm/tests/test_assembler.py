import pytest

from mini_stackvm import AssemblyError, Op, assemble


def test_operands_are_encoded_little_endian_after_the_opcode():
    program = assemble(
        """
        PUSH 258        ; i32 immediate
        push -2         ; mnemonics are case-insensitive
        LOAD 3
        HALT
        """
    )
    assert program.code == bytes(
        [Op.PUSH, 0x02, 0x01, 0x00, 0x00,
         Op.PUSH, 0xFE, 0xFF, 0xFF, 0xFF,
         Op.LOAD, 0x03,
         Op.HALT]
    ), "PUSH carries a signed little-endian i32, LOAD a single u8 slot"
    assert program.lines == {0: 2, 5: 3, 10: 4, 12: 5}, "each instruction maps back to its source line"


def test_backward_label_resolves_to_label_address():
    program = assemble(
        """
            PUSH 1
        top:
            PUSH 2
            JMP top
        """
    )
    assert program.labels == {"top": 5}, "a label names the address of the next instruction"
    assert program.code[10:] == bytes([Op.JMP, 0x05, 0x00]), "JMP top encodes address 5"


def test_forward_label_resolves_to_label_address():
    program = assemble(
        """
            JMP end
            PUSH 1
        end:
            HALT
        """
    )
    assert program.labels == {"end": 8}, "JMP (3 bytes) + PUSH (5 bytes) put 'end' at address 8"
    assert program.code == bytes(
        [Op.JMP, 0x08, 0x00,
         Op.PUSH, 0x01, 0x00, 0x00, 0x00,
         Op.HALT]
    ), "a label used before its definition is patched into the JMP operand, not over the opcode"


def test_call_to_function_defined_later_encodes_address_and_argc():
    program = assemble(
        """
            PUSH 4
            PUSH 6
            CALL add2, 2
            HALT
        add2:
            LOAD 0
            LOAD 1
            ADD
            RET
        """
    )
    assert program.labels["add2"] == 15, "2 x PUSH (10 bytes) + CALL (4 bytes) + HALT put add2 at 15"
    assert program.code[10:14] == bytes([Op.CALL, 0x0F, 0x00, 0x02]), (
        "CALL add2, 2 is the CALL opcode, the u16 address 15 and the argument count 2"
    )
    assert program.code[14] == Op.HALT, "the instruction after the CALL is left untouched"


def test_assembly_errors_report_the_source_line():
    with pytest.raises(AssemblyError) as unknown:
        assemble("PUSH 1\n\n    PUHS 2\n")
    assert unknown.value.line == 3, "unknown mnemonic on line 3 is reported as line 3"
    assert "PUHS" in str(unknown.value), "the message names the unknown mnemonic"

    with pytest.raises(AssemblyError) as undefined:
        assemble("PUSH 0\nJZ nowhere\nHALT\n")
    assert undefined.value.line == 2, "an undefined label is reported where it is used"
    assert "nowhere" in str(undefined.value), "the message names the undefined label"

    with pytest.raises(AssemblyError) as arity:
        assemble("ADD 1\n")
    assert arity.value.line == 1, "ADD takes no operands"

    with pytest.raises(AssemblyError) as duplicate:
        assemble("a: NOP\na: NOP\n")
    assert duplicate.value.line == 2, "a label may only be defined once"
