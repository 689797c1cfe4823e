import math

import pytest

from expr_calc import (
    BinaryOp,
    CalcError,
    EvalError,
    Number,
    ParseError,
    TokenizeError,
    TokenKind,
    UnaryOp,
    calc,
    parse,
    tokenize,
)


# --- tokenizing --------------------------------------------------------------


def test_decimal_and_scientific_numbers():
    assert calc("1.5 + 2.25") == 3.75, "decimals keep their fractional part: 1.5 + 2.25 == 3.75"
    assert calc(".5 * 4") == 2, "a leading decimal point is allowed: .5 * 4 == 2"
    assert calc("1.5e3") == 1500, "scientific notation: 1.5e3 == 1500"
    assert calc("2.5E-2") == 0.025, "exponents may be negative and use a capital E"


def test_tokenize_reports_kinds_positions_and_values():
    tokens = tokenize("3.5*(x - 12)")
    assert [(t.kind, t.text, t.position) for t in tokens] == [
        (TokenKind.NUMBER, "3.5", 0),
        (TokenKind.OPERATOR, "*", 3),
        (TokenKind.LPAREN, "(", 4),
        (TokenKind.NAME, "x", 5),
        (TokenKind.OPERATOR, "-", 7),
        (TokenKind.NUMBER, "12", 9),
        (TokenKind.RPAREN, ")", 11),
        (TokenKind.END, "", 12),
    ], "each token carries its kind, its source text and its 0-based offset"
    assert tokens[0].value == 3.5 and tokens[5].value == 12, "number tokens carry their value"
    assert isinstance(tokens[5].value, int), "a literal without '.' or exponent is an int"


def test_tabs_and_newlines_count_as_whitespace():
    assert calc("1 +\t2") == 3, "a tab between tokens is whitespace"
    assert calc("(1 +\n 2)\n* 3") == 9, "an expression may span several lines"
    assert [t.text for t in tokenize("\t7\r\n//  2 ")] == ["7", "//", "2", ""], (
        "tabs, carriage returns and newlines are skipped like spaces"
    )


# --- parsing -----------------------------------------------------------------


def test_multiplication_binds_tighter_than_addition():
    assert calc("1 + 2 * 3") == 7, "* binds tighter than +: 1 + 2 * 3 == 7"
    assert calc("2 * 3 + 4 * 5") == 26, "2 * 3 + 4 * 5 == 6 + 20"
    assert calc("7 - 2 * 3") == 1, "7 - 2 * 3 == 7 - 6"


def test_parentheses_override_precedence():
    assert calc("(1 + 2) * 3") == 9, "parentheses are evaluated first: (1 + 2) * 3 == 9"
    assert calc("2 * (3 + 4) ^ 2") == 98, "2 * (3 + 4) ^ 2 == 2 * 49"
    assert calc("((((5))))") == 5, "redundant parentheses are harmless"


def test_power_is_right_associative():
    assert calc("2^3^2") == 512, "exponentiation is right-associative: 2^3^2 == 2^(3^2)"
    assert parse("2^3^2") == BinaryOp("^", Number(2), BinaryOp("^", Number(3), Number(2))), (
        "2^3^2 parses as 2^(3^2)"
    )


def test_subtraction_and_division_are_left_associative():
    assert calc("10 - 4 - 3") == 3, "10 - 4 - 3 == (10 - 4) - 3"
    assert calc("1 - 2 + 3") == 2, "1 - 2 + 3 == (1 - 2) + 3"
    assert calc("100 / 10 / 5") == 2, "100 / 10 / 5 == (100 / 10) / 5"
    assert calc("2 * 3 % 4") == 2, "operators of equal precedence group left: 2 * 3 % 4 == (2 * 3) % 4"


def test_unary_minus():
    assert calc("-3 + 5") == 2, "-3 + 5 == 2"
    assert calc("--4") == 4, "a double negation cancels out"
    assert calc("2 * -3") == -6, "a unary minus may follow a binary operator"
    assert calc("-(2 + 3)") == -5, "a unary minus applies to a parenthesized group"
    assert calc("-2^2") == -4, "unary minus binds looser than ^: -2^2 == -(2^2)"
    assert parse("-2^2") == UnaryOp("-", BinaryOp("^", Number(2), Number(2))), (
        "-2^2 parses as -(2^2)"
    )
    assert calc("2^-1") == 0.5, "an exponent may be negated: 2^-1 == 0.5"


def test_syntax_errors_report_position():
    cases = [
        ("1 +", ParseError, 3),
        ("(1 + 2", ParseError, 6),
        ("1 2", ParseError, 2),
        ("max(1,)", ParseError, 6),
        ("1 $ 2", TokenizeError, 2),
    ]
    for text, error, position in cases:
        with pytest.raises(error) as info:
            calc(text)
        assert info.value.position == position, (
            f"the error for {text!r} points at offset {position}, got {info.value.position}"
        )
        assert isinstance(info.value, CalcError), "every calculator error is a CalcError"


# --- evaluating --------------------------------------------------------------


def test_true_division_keeps_exact_quotients_as_integers():
    assert calc("7 / 2") == 3.5, "/ is true division: 7 / 2 == 3.5"
    assert calc("1 / 4") == 0.25, "1 / 4 == 0.25"
    result = calc("6 / 3")
    assert result == 2 and isinstance(result, int), "an exact integer quotient stays an int"


def test_floor_division_rounds_toward_negative_infinity():
    assert calc("7 // 2") == 3, "7 // 2 == 3"
    assert calc("-7 // 2") == -4, "floor division rounds down, not toward zero: -7 // 2 == -4"
    assert calc("7 // -2") == -4, "floor division rounds down, not toward zero: 7 // -2 == -4"
    assert calc("-7.5 // 2") == -4, "floor(-3.75) == -4"


def test_modulo_result_takes_sign_of_divisor():
    assert calc("7 % 3") == 1, "7 % 3 == 1"
    assert calc("-7 % 3") == 2, "the result of % has the sign of the divisor: -7 % 3 == 2"
    assert calc("7 % -3") == -2, "the result of % has the sign of the divisor: 7 % -3 == -2"
    assert calc("7.5 % 2") == 1.5, "% works on decimals: 7.5 % 2 == 1.5"


def test_functions_and_constants():
    assert calc("sqrt(16) + abs(-2)") == 6, "sqrt(16) + abs(-2) == 4 + 2"
    assert calc("max(1, 5, 3)") == 5, "max takes any number of arguments"
    assert calc("min(4, -1)") == -1, "min(4, -1) == -1"
    assert calc("floor(-2.5) + ceil(2.1)") == 0, "floor(-2.5) + ceil(2.1) == -3 + 3"
    assert calc("2 * pi") == pytest.approx(math.tau), "pi is a built-in constant"


def test_variables_shadow_constants_and_unknown_names_fail():
    assert calc("x * y + 1", {"x": 3, "y": 4}) == 13, "variables are looked up by name"
    assert calc("e + 1", {"e": 2}) == 3, "a caller's variable shadows the constant of the same name"
    with pytest.raises(EvalError, match="unknown variable 'z'"):
        calc("z + 1")
    with pytest.raises(EvalError, match="unknown function 'foo'"):
        calc("foo(1)")
    with pytest.raises(EvalError, match="takes 1 argument"):
        calc("abs(1, 2)")


def test_invalid_operations_raise_eval_error():
    for text in ("1 / 0", "1 // 0", "5 % 0", "1.5 / 0.0"):
        with pytest.raises(EvalError, match="division by zero"):
            calc(text)
    with pytest.raises(EvalError):
        calc("sqrt(-1)")
    with pytest.raises(EvalError, match="not a real number"):
        calc("(-8) ^ (1 / 3)")
    with pytest.raises(EvalError, match="too large"):
        calc("10.0 ^ 400")
