import pytest

from mini_stackvm import VM, CallStack, VMError, assemble, run

FACTORIAL = """
        PUSH 5
        CALL fact 1
        PRINT
        PUSH 10
        CALL fact 1
        PRINT
        HALT

fact:                   ; fact(n) = n <= 1 ? 1 : fact(n - 1) * n
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
        LOAD 0          ; n, read again after the recursive call
        MUL
        RET
"""

FIBONACCI = """
        PUSH 0
        STORE 0         ; i
loop:
        LOAD 0
        PUSH 10
        GT
        JNZ done
        LOAD 0
        CALL fib 1
        PRINT
        LOAD 0          ; the caller's i must survive the call
        PUSH 1
        ADD
        STORE 0
        JMP loop
done:
        HALT

fib:                    ; fib(n) = n < 2 ? n : fib(n - 1) + fib(n - 2)
        LOAD 0
        PUSH 2
        LT
        JZ recurse
        LOAD 0
        RET
recurse:
        LOAD 0
        PUSH 1
        SUB
        CALL fib 1
        LOAD 0
        PUSH 2
        SUB
        CALL fib 1
        ADD
        RET
"""


def test_recursive_factorial():
    vm = VM(assemble(FACTORIAL))
    assert vm.run() == [120, 3628800], "5! == 120 and 10! == 3628800"
    assert vm.stack == [] and vm.frames.depth == 0, "every call returned and cleaned up after itself"


def test_recursive_fibonacci_in_a_loop():
    assert run(FIBONACCI) == [0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55], "fib(0) .. fib(10)"


def test_caller_frame_is_current_again_after_pop():
    calls = CallStack()
    main = calls.current
    main.store(0, 42)
    callee = calls.push(return_address=7, stack_base=0, args=[3, 4])
    assert calls.current is callee and calls.depth == 1, "push makes the new frame current"
    assert (callee.load(0), callee.load(1)) == (3, 4), "arguments land in slots 0 and 1"

    returned = calls.pop()
    assert returned is callee, "pop hands back the frame that was returned from"
    assert calls.depth == 0, "only the main frame is left"
    assert calls.current is main, "after a return the caller's frame is current again"
    assert calls.current.load(0) == 42, "the caller sees its own locals, not the callee's"


def test_unbounded_recursion_hits_the_depth_limit():
    with pytest.raises(VMError, match="call stack overflow"):
        run("forever: CALL forever 0\n", max_depth=50)
    with pytest.raises(VMError, match="RET outside of a function"):
        run("PUSH 1\nRET\n")
