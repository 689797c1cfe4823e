import pytest

from mini_sheet import FormulaSyntaxError, Sheet


def calc(formula, **cells):
    sheet = Sheet()
    sheet.update(cells)
    sheet.set("Z99", formula)
    return sheet.get("Z99")


def test_operator_precedence_and_grouping_follow_excel():
    assert calc("=1+2*3") == 7, "* binds tighter than +"
    assert calc("=(1+2)*3") == 9, "parentheses group"
    assert calc("=10-4-3") == 3, "- groups to the left: (10-4)-3"
    assert calc("=2*3^2") == 18, "^ binds tighter than *"
    assert calc("=2^3^2") == 64, "^ groups to the left as in Excel: (2^3)^2"
    assert calc("=-2^2") == 4, "negation binds tighter than ^ as in Excel: (-2)^2"
    assert calc('=1+2&"x"') == "3x", "& binds looser than +"
    assert calc("=A1*2+B1", A1=4, B1="1.5") == 9.5, "numeric text in a cell is a number"


def test_text_concatenation_and_comparison():
    assert calc('="Total: "&A1', A1=3) == "Total: 3", "& turns a whole number into its digits"
    assert calc('="Total: "&A1', A1=2.5) == "Total: 2.5"
    assert calc('=A1&"|"&B1', A1="x") == "x|", "a blank cell concatenates as empty text"
    assert calc('="abc"="ABC"') is True, "text comparison ignores case"
    assert calc("=2<10") is True
    assert calc('="2"<"10"') is False, "text compares character by character"
    assert calc('=1<"a"') is True, "numbers sort before text"


def test_errors_propagate_through_formulas():
    sheet = Sheet()
    sheet.update({
        "A1": "=1/0",
        "A2": "=A1+1",
        "A3": "=SUM(A1, 5)",
        "B1": '="a"+1',
        "B2": "=NOPE(1)",
        "B3": "=XFE1",
    })
    assert sheet.display("A1") == "#DIV/0!", "division by zero"
    assert sheet.display("A2") == "#DIV/0!", "an error in a referenced cell propagates"
    assert sheet.display("A3") == "#DIV/0!", "SUM propagates errors of its arguments"
    assert sheet.display("B1") == "#VALUE!", "text that is not a number in arithmetic"
    assert sheet.display("B2") == "#NAME?", "unknown function"
    assert sheet.display("B3") == "#REF!", "XFE is past the last column XFD"


def test_if_only_evaluates_the_chosen_branch():
    sheet = Sheet()
    sheet.update({"A1": 10, "B1": 0, "C1": "=IF(B1=0, 0, A1/B1)", "C2": '=IF(A1>5, "big", "small")'})
    assert sheet.get("C1") == 0, "the division by zero is in the branch not taken"
    assert sheet.get("C2") == "big"
    sheet.set("B1", 4)
    assert sheet.get("C1") == 2.5, "C1 follows B1"
    sheet.set("A1", 1)
    assert sheet.get("C2") == "small", "C2 follows A1"


def test_syntax_errors_are_rejected_and_leave_the_sheet_unchanged():
    sheet = Sheet()
    sheet.set("A1", 5)
    for bad in ["=1+", "=(1+2", "=SUM(1,)", "=1 2", "=ROUND()", "=ROUND(1, 2, 3)", "=#"]:
        with pytest.raises(FormulaSyntaxError):
            sheet.set("A1", bad)
        assert sheet.get("A1") == 5, f"a rejected formula {bad!r} leaves the old value"
    with pytest.raises(FormulaSyntaxError):
        sheet.update({"B1": 1, "C1": "=)"})
    assert sheet.get("B1") is None, "update() is all or nothing"
