from mini_sheet import Sheet


def test_sum_over_a_row_range_across_column_z():
    sheet = Sheet()
    sheet.update({"Y1": 1, "Z1": 2, "AA1": 3, "AB1": 4, "A2": "=SUM(Z1:AB1)", "A3": "=AA1*10"})
    assert sheet.get("A3") == 30, "AA1 is its own cell, not A1"
    assert sheet.get("A2") == 9, "Z1:AB1 covers Z1, AA1 and AB1"


def test_average_ignores_blank_cells():
    sheet = Sheet()
    sheet.update({"A1": 2, "A2": 4, "B1": "=AVG(A1:A3)", "B2": "=AVERAGE(A1:A3)"})
    assert sheet.get("B1") == 3, "the blank A3 is not part of the average: (2+4)/2"
    assert sheet.get("B2") == 3, "AVERAGE is the same function as AVG"


def test_average_and_count_use_only_numeric_cells():
    sheet = Sheet()
    sheet.update({
        "A1": 10,
        "A3": "n/a",
        "A4": 20,
        "B1": "=AVG(A1:A4)",
        "B2": "=COUNT(A1:A4)",
        "B3": "=AVG(C1:C3)",
    })
    assert sheet.get("B2") == 2, "COUNT counts the two numbers in A1:A4"
    assert sheet.get("B1") == 15, "AVG(A1:A4) averages 10 and 20 only: blank A2 and text A3 are skipped"
    assert sheet.display("B3") == "#DIV/0!", "the average of blank cells is a division by zero"


def test_min_and_max_skip_blank_cells():
    sheet = Sheet()
    sheet.update({
        "A1": 5, "A3": 7,
        "C1": -2, "C3": -4,
        "B1": "=MIN(A1:A3)", "B2": "=MAX(A1:A3)", "D1": "=MAX(C1:C3)",
    })
    assert sheet.get("B2") == 7, "MAX(A1:A3) sees A3"
    assert sheet.get("B1") == 5, "MIN(A1:A3) is 5: the blank A2 is not a zero"
    assert sheet.get("D1") == -2, "MAX(C1:C3) is -2: the blank C2 is not a zero"


def test_round_takes_halves_away_from_zero():
    cases = {
        "=ROUND(2.5, 0)": 3,
        "=ROUND(-2.5, 0)": -3,
        "=ROUND(0.125, 2)": 0.13,
        "=ROUND(2.675, 2)": 2.68,
        "=ROUND(1.005, 2)": 1.01,
        "=ROUND(-1.005, 2)": -1.01,
        "=ROUND(1234.5678, -2)": 1200,
    }
    sheet = Sheet()
    for formula, expected in cases.items():
        sheet.set("A1", formula)
        assert sheet.get("A1") == expected, f"{formula} is {expected}: a half rounds away from zero"
