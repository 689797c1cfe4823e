from mini_sheet import Sheet


def test_dependent_formula_updates_when_its_input_changes():
    sheet = Sheet()
    sheet.set("A1", 1)
    sheet.set("B1", "=A1*2")
    assert sheet.get("B1") == 2
    sheet.set("A1", 5)
    assert sheet.get("B1") == 10, "B1 = A1*2 follows A1"
    assert sheet.content("B1") == "=A1*2", "the formula text is kept"


def test_chain_of_dependents_is_recomputed():
    sheet = Sheet()
    sheet.update({"A1": 1, "B1": "=A1+1", "C1": "=B1+1", "D1": "=C1*10"})
    assert sheet.get("D1") == 30
    sheet.set("A1", 10)
    assert sheet.get("B1") == 11, "B1 reads A1 directly"
    assert sheet.get("C1") == 12, "C1 reads A1 through B1"
    assert sheet.get("D1") == 120, "D1 reads A1 through B1 and C1"


def test_sum_total_feeds_other_formulas():
    sheet = Sheet()
    sheet.update({"A1": 1, "A2": 2, "A3": 3, "A4": "=SUM(A1:A3)", "B4": "=A4*10"})
    assert sheet.get("A4") == 6, "SUM(A1:A3) adds A1, A2 and A3"
    assert sheet.get("B4") == 60
    sheet.set("A3", 4)
    assert sheet.get("A4") == 7, "the total follows A3"
    assert sheet.get("B4") == 70, "B4 reads the total, so it follows A3 too"


def test_direct_circular_reference_is_reported():
    sheet = Sheet()
    sheet.set("A1", "=B1+1")
    sheet.set("B1", "=A1+1")
    sheet.set("C1", "=A1*2")
    assert sheet.display("A1") == "#CYCLE!", "A1 and B1 read each other"
    assert sheet.display("B1") == "#CYCLE!", "A1 and B1 read each other"
    assert sheet.display("C1") == "#CYCLE!", "a cell reading a circular reference shows #CYCLE! too"


def test_indirect_circular_reference_marks_every_cell():
    sheet = Sheet()
    sheet.set("D1", "=A1*2")
    sheet.set("A1", "=B1+1")
    sheet.set("B1", "=C1+1")
    sheet.set("C1", "=A1+1")
    for name in ["A1", "B1", "C1"]:
        assert sheet.display(name) == "#CYCLE!", f"{name} is on the circle A1 -> B1 -> C1 -> A1"
    assert sheet.display("D1") == "#CYCLE!", "D1 reads a cell on the circle"


def test_breaking_a_circular_reference_recovers():
    sheet = Sheet()
    sheet.set("A1", "=B1+1")
    sheet.set("B1", "=A1+1")
    assert sheet.display("A1") == "#CYCLE!"
    sheet.set("B1", 5)
    assert sheet.get("B1") == 5, "B1 is a plain number now"
    assert sheet.get("A1") == 6, "with the circle broken A1 = B1+1 can be computed"


def test_formula_replaced_by_a_number_stops_reading_its_old_inputs():
    sheet = Sheet()
    sheet.set("A1", "=B1*2")
    sheet.set("A1", 5)
    sheet.set("B1", "=A1+1")
    assert sheet.get("B1") == 6, "A1 no longer reads B1, so B1 = A1+1 is not circular"
    sheet.set("A1", 7)
    assert sheet.get("A1") == 7
    assert sheet.get("B1") == 8, "B1 follows A1"


def test_precedents_and_dependents_track_formula_changes():
    sheet = Sheet()
    sheet.set("C1", "=SUM(A1:B1)+A2")
    assert sheet.precedents("C1") == ["A1", "B1", "A2"], "C1 reads A1, B1 and A2 (row by row)"
    assert sheet.dependents("A1") == ["C1"]
    sheet.set("C1", "=A2")
    assert sheet.precedents("C1") == ["A2"]
    assert sheet.dependents("A1") == [], "C1 no longer reads A1"
    sheet.set("C1", 10)
    assert sheet.precedents("C1") == [], "a plain number reads no cells"
    assert sheet.dependents("A2") == [], "C1 no longer reads A2"


def test_clearing_a_cell_updates_its_dependents():
    sheet = Sheet()
    sheet.update({"A1": 3, "B1": "=A1+1", "B2": '=A1&"!"'})
    sheet.clear("A1")
    assert sheet.get("A1") is None and sheet.display("A1") == "", "A1 is blank"
    assert sheet.get("B1") == 1, "a blank cell counts as 0 in arithmetic"
    assert sheet.get("B2") == "!", "a blank cell counts as empty text"
    sheet.set("A1", "")
    assert sheet.content("A1") is None, "setting empty text clears the cell"
