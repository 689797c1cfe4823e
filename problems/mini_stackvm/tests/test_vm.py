import pytest

from mini_stackvm import VM, VMError, assemble, run


def calc(a, b, op):
    return run(f"PUSH {a}\nPUSH {b}\n{op}\nPRINT\nHALT\n")[0]


def test_binary_operators_take_the_left_operand_from_deeper_in_the_stack():
    assert calc(10, 3, "SUB") == 7, "PUSH 10, PUSH 3, SUB computes 10 - 3"
    assert calc(6, 7, "MUL") == 42, "6 * 7 == 42"
    assert calc(20, 4, "DIV") == 5, "PUSH 20, PUSH 4, DIV computes 20 / 4"
    assert calc(2, 5, "ADD") == 7, "2 + 5 == 7"
    assert run("PUSH 1\nPUSH 2\nSWAP\nSUB\nPRINT\nHALT") == [1], "SWAP exchanges the top two values: 2 - 1"
    assert run("PUSH 1\nPUSH 2\nOVER\nPRINT\nPRINT\nPRINT\nHALT") == [1, 2, 1], "OVER copies the second value"


def test_division_truncates_toward_zero():
    assert calc(7, 2, "DIV") == 3, "7 / 2 == 3"
    assert calc(-7, 2, "DIV") == -3, "-7 / 2 truncates toward zero: -3, not -4"
    assert calc(7, -2, "DIV") == -3, "7 / -2 truncates toward zero: -3, not -4"
    assert calc(-7, -2, "DIV") == 3, "-7 / -2 == 3"
    assert calc(-1, 3, "DIV") == 0, "-1 / 3 truncates to 0, not -1"


def test_div_and_mod_satisfy_the_remainder_identity():
    for a in (-9, -7, -1, 0, 1, 7, 9):
        for b in (-4, -3, 2, 5):
            q = calc(a, b, "DIV")
            r = calc(a, b, "MOD")
            assert q * b + r == a, f"(a DIV b) * b + (a MOD b) == a must hold for a={a}, b={b}"
            assert abs(r) < abs(b), f"|a MOD b| < |b| for a={a}, b={b}"


def test_mod_result_takes_the_sign_of_the_dividend():
    assert calc(7, 3, "MOD") == 1, "7 MOD 3 == 1"
    assert calc(-7, 3, "MOD") == -1, "-7 MOD 3 == -1 (sign of the dividend, as in C)"
    assert calc(7, -3, "MOD") == 1, "7 MOD -3 == 1 (sign of the dividend, as in C)"


def test_division_by_zero_is_a_vm_error():
    for op in ("DIV", "MOD"):
        with pytest.raises(VMError, match="division by zero") as error:
            run(f"PUSH 1\nPUSH 0\n{op}\nHALT\n")
        assert error.value.pc == 10, f"{op} by zero reports the address of the {op} instruction"


def test_comparisons_push_one_for_true_and_zero_for_false():
    cases = [
        (3, 5, "LT", 1), (5, 3, "LT", 0), (3, 3, "LE", 1), (5, 3, "GT", 1),
        (3, 5, "GT", 0), (3, 3, "GE", 1), (3, 3, "EQ", 1), (3, 4, "NE", 1),
    ]
    for a, b, op, expected in cases:
        assert calc(a, b, op) == expected, f"PUSH {a}, PUSH {b}, {op} compares {a} {op} {b}"
    assert run("PUSH 0\nNOT\nPRINT\nPUSH 9\nNOT\nPRINT\nHALT") == [1, 0], "NOT maps 0 to 1, anything else to 0"


def test_iterative_fibonacci_with_backward_loop():
    source = """
            PUSH 0
            STORE 0         ; a
            PUSH 1
            STORE 1         ; b
            PUSH 10
            STORE 2         ; numbers left to print
    loop:   LOAD 0
            PRINT
            LOAD 0
            LOAD 1
            DUP
            STORE 0         ; a = b
            ADD
            STORE 1         ; b = old a + b
            LOAD 2
            PUSH 1
            SUB
            DUP
            STORE 2
            JNZ loop
            HALT
    """
    assert run(source) == [0, 1, 1, 2, 3, 5, 8, 13, 21, 34], "first ten Fibonacci numbers"


def test_while_loop_exits_through_forward_jump():
    source = """
            PUSH 0
            STORE 0         ; total
            PUSH 1
            STORE 1         ; i
    loop:
            LOAD 1
            PUSH 10
            GT
            JNZ done        ; while i <= 10
            LOAD 0
            LOAD 1
            ADD
            STORE 0         ; total += i
            LOAD 1
            PUSH 1
            ADD
            STORE 1         ; i += 1
            JMP loop
    done:
            LOAD 0
            PRINT
            HALT
    """
    vm = VM(assemble(source))
    assert vm.run() == [55], "1 + 2 + ... + 10 == 55"
    assert vm.stack == [], "the loop leaves nothing behind on the stack"


def test_stack_underflow_is_a_vm_error():
    with pytest.raises(VMError, match="stack underflow") as error:
        run("PUSH 1\nADD\nHALT\n")
    assert error.value.pc == 5, "the error names the ADD that found only one operand"
    with pytest.raises(VMError, match="step limit"):
        run("spin: JMP spin\n", max_steps=1000)
