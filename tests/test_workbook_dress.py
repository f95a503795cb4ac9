"""The shipped workbooks and the blank template are easy to fill in Excel (issue 17): every
data sheet has a frozen header, a note on each header from the schema, and dropdowns:
enumerations offer their values, code columns the codes their home sheet defines. The
dropdowns warn, never refuse (a new code can still be typed; validation names it)."""

from __future__ import annotations

import openpyxl
import pytest

from conftest import ROOT
from model.case.dress import column_note
from model.case.schema import SHEETS_BY_NAME
from model.case.template import write_template


def validations(ws) -> dict[str, tuple[str, str]]:
    """Header name -> (list formula, error style) of each column's dropdown."""
    head = [c.value for c in ws[1]]
    out = {}
    for dv in ws.data_validations.dataValidation:
        first = str(dv.sqref).split(":")[0]
        col = openpyxl.utils.cell.column_index_from_string("".join(ch for ch in first if ch.isalpha()))
        out[head[col - 1]] = (dv.formula1, dv.errorStyle)
    return out


@pytest.mark.parametrize("book", ["base.xlsx", "example.xlsx"])
def test_shipped_workbooks_have_frozen_headers_notes_and_dropdowns(book):
    wb = openpyxl.load_workbook(ROOT / "inputs" / book)
    for ws in wb.worksheets:
        if ws.title not in SHEETS_BY_NAME:
            continue
        spec = SHEETS_BY_NAME[ws.title]
        assert ws.freeze_panes == "A2", ws.title
        for cell in ws[1]:
            if cell.value in spec.column_names:
                assert cell.comment is not None and cell.comment.text == column_note(spec.column(cell.value))
    dem = validations(wb["demand"])
    assert dem["product"][0] == "'products'!$A$2:$A$5000" and dem["period"][0] == "'periods'!$A$2:$A$5000"
    assert dem["country"][1] == "warning"
    if "export_controls" in wb.sheetnames:
        ec = validations(wb["export_controls"])
        assert ec["kind"] == ('"ban,quota,licence"', "warning")
        assert ec["exporter"][0] == "'countries'!$A$2:$A$5000"
        assert "destinations" not in ec  # a list of codes in one cell gets no single-choice dropdown


def test_the_template_carries_the_same_dropdowns(tmp_path):
    wb = openpyxl.load_workbook(write_template(tmp_path / "t.xlsx"))
    ec = validations(wb["export_controls"])
    assert ec["kind"] == ('"ban,quota,licence"', "warning")
    assert ec["exporter"][0] == "'countries'!$A$2:$A$5000"
    assert wb["facilities"]["A1"].comment.text.startswith(SHEETS_BY_NAME["facilities"].column("facility").description)
