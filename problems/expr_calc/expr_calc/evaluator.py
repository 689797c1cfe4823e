"""Evaluate a syntax tree produced by :mod:`expr_calc.parser`."""

import math
import operator
from typing import Callable, Dict, Mapping, NamedTuple, Optional, Union

from .parser import BinaryOp, Call, Name, Node, Number, UnaryOp
from .tokenizer import CalcError

Value = Union[int, float]


class EvalError(CalcError):
    """The expression is well formed but cannot be evaluated."""


CONSTANTS: Dict[str, Value] = {"pi": math.pi, "e": math.e, "tau": math.tau}

# Integer powers with larger exponents are refused rather than computed.
MAX_INT_EXPONENT = 10_000


def _check_divisor(right: Value) -> None:
    if right == 0:
        raise EvalError("division by zero")


def _divide(left: Value, right: Value) -> Value:
    """True division that keeps exact integer quotients as ints (6/3 == 2)."""
    _check_divisor(right)
    if isinstance(left, int) and isinstance(right, int) and left % right == 0:
        return left // right
    return left / right


def _floor_divide(left: Value, right: Value) -> int:
    """Floor division (``//``), which always yields an int."""
    _check_divisor(right)
    return int(left / right)


def _modulo(left: Value, right: Value) -> Value:
    """Modulo matching :func:`_floor_divide`; the sign follows the divisor."""
    _check_divisor(right)
    return left % right


def _power(base: Value, exponent: Value) -> Value:
    if base == 0 and exponent < 0:
        raise EvalError("zero cannot be raised to a negative power")
    if isinstance(exponent, int) and abs(exponent) > MAX_INT_EXPONENT:
        raise EvalError(f"exponent {exponent} is too large")
    result = base ** exponent
    if isinstance(result, complex):
        raise EvalError("result is not a real number")
    return result


BINARY_FUNCTIONS: Dict[str, Callable[[Value, Value], Value]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": _divide,
    "//": _floor_divide,
    "%": _modulo,
    "^": _power,
}

UNARY_FUNCTIONS: Dict[str, Callable[[Value], Value]] = {
    "-": operator.neg,
    "+": operator.pos,
}


class Function(NamedTuple):
    impl: Callable[..., Value]
    min_args: int
    max_args: Optional[int]  # None: any number of arguments


FUNCTIONS: Dict[str, Function] = {
    "abs": Function(abs, 1, 1),
    "sqrt": Function(math.sqrt, 1, 1),
    "floor": Function(math.floor, 1, 1),
    "ceil": Function(math.ceil, 1, 1),
    "min": Function(min, 1, None),
    "max": Function(max, 1, None),
}


def evaluate(node: Node, variables: Optional[Mapping[str, Value]] = None) -> Value:
    """Compute the value of ``node``.

    ``variables`` maps names to numbers; they shadow the built-in constants.
    """
    return _Evaluator(variables or {}).eval(node)


class _Evaluator:
    def __init__(self, variables: Mapping[str, Value]) -> None:
        self._variables = variables

    def eval(self, node: Node) -> Value:
        if isinstance(node, Number):
            return node.value
        if isinstance(node, Name):
            return self._lookup(node.name)
        if isinstance(node, UnaryOp):
            return UNARY_FUNCTIONS[node.op](self.eval(node.operand))
        if isinstance(node, BinaryOp):
            left = self.eval(node.left)
            right = self.eval(node.right)
            try:
                result = BINARY_FUNCTIONS[node.op](left, right)
            except OverflowError:
                result = math.inf
            if isinstance(result, float) and not math.isfinite(result):
                raise EvalError(f"result of {node.op!r} is too large")
            return result
        if isinstance(node, Call):
            return self._call(node)
        raise TypeError(f"not an expression node: {node!r}")

    def _lookup(self, name: str) -> Value:
        if name in self._variables:
            return self._variables[name]
        if name in CONSTANTS:
            return CONSTANTS[name]
        raise EvalError(f"unknown variable {name!r}")

    def _call(self, node: Call) -> Value:
        function = FUNCTIONS.get(node.name)
        if function is None:
            raise EvalError(f"unknown function {node.name!r}")
        count = len(node.args)
        if count < function.min_args or (
            function.max_args is not None and count > function.max_args
        ):
            raise EvalError(f"{node.name}() takes {_arity(function)}, got {count}")
        args = [self.eval(arg) for arg in node.args]
        try:
            return function.impl(*args)
        except (ValueError, OverflowError) as exc:
            raise EvalError(f"{node.name}(): {exc}") from None


def _arity(function: Function) -> str:
    if function.max_args is None:
        return f"at least {function.min_args} argument(s)"
    if function.min_args == function.max_args:
        return f"{function.min_args} argument(s)"
    return f"{function.min_args} to {function.max_args} argument(s)"
