from mini_sheet import Sheet


def test_display_rounds_to_fixed_places_half_up():
    sheet = Sheet()
    sheet.update({"A1": 2.675, "A2": "=1/8", "A3": -0.001, "A4": "1.005", "A5": "=7/2", "A6": 3})
    assert sheet.display("A1", places=2) == "2.68", "2.675 shows as 2.68 with two places"
    assert sheet.display("A2", places=2) == "0.13", "0.125 shows as 0.13 with two places"
    assert sheet.display("A3", places=2) == "0.00", "no negative zero"
    assert sheet.display("A4", places=2) == "1.01", "1.005 shows as 1.01 with two places"
    assert sheet.display("A5", places=0) == "4", "3.5 shows as 4 with no decimals"
    assert sheet.display("A6", places=2) == "3.00", "fixed places pad with zeros"


def test_display_general_format():
    sheet = Sheet()
    sheet.update({
        "A1": 6,
        "A2": "=SUM(A1, 0)",
        "A3": "=0.1+0.2",
        "A4": "=1/3",
        "A5": "true",
        "A6": "'42",
        "A7": "=1/0",
    })
    assert sheet.display("A2") == "6", "whole numbers show without decimals"
    assert sheet.display("A3") == "0.3", "at most 15 significant digits are shown"
    assert sheet.display("A4") == "0.333333333333333"
    assert sheet.display("A5") == "TRUE", "booleans show upper-case"
    assert sheet.display("A6") == "42" and sheet.get("A6") == "42", "a leading apostrophe keeps text"
    assert sheet.display("A7") == "#DIV/0!", "errors show their code"
    assert sheet.display("B9") == "", "blank cells show nothing"
