import pytest

from mini_sheet import CellRange, CellRef, RefError, column_index, column_letters


def test_column_letters_round_trip_past_z():
    expected = {"A": 0, "Z": 25, "AA": 26, "AZ": 51, "BA": 52, "ZZ": 701, "AAA": 702, "XFD": 16383}
    for letters, index in expected.items():
        assert column_index(letters) == index, f"column {letters} has zero-based index {index}"
        assert column_letters(index) == letters, f"zero-based column {index} is {letters}"
    for index in range(2000):
        assert column_index(column_letters(index)) == index, f"column {index} survives a round trip"


def test_cell_names_are_parsed_case_insensitively_and_validated():
    assert CellRef.parse("b3") == CellRef(row=2, col=1), "B3 is row 2, column 1 (zero-based)"
    assert CellRef.parse("aa10").name == "AA10", "names are printed upper-case"
    for bad in ["", "A", "7", "3B", "A0", "A-1", "B 3", "XFE1", "A1048577"]:
        with pytest.raises(RefError):
            CellRef.parse(bad)


def test_range_expands_to_every_cell_including_the_last_row_and_column():
    block = CellRange.parse("A1:B3")
    names = [ref.name for ref in block.cells()]
    assert names == ["A1", "B1", "A2", "B2", "A3", "B3"], "A1:B3 holds six cells, row by row"
    assert len(names) == block.size == 6
    assert CellRange.parse("B3:A1") == block, "corners may be given in either order"
    assert [ref.name for ref in CellRange.parse("C2:C2").cells()] == ["C2"], "C2:C2 is the single cell C2"
    assert [ref.name for ref in CellRange.parse("A5:C5").cells()] == ["A5", "B5", "C5"], "a one-row range"
