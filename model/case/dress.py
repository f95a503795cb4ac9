"""What makes a case workbook easy to fill in Excel, from the schema: a frozen header row,
each header's note (description, unit, whether required, what is expected), and dropdown
lists: a column of codes offers the codes its sheet defines (countries, products,
processes, facilities, periods, stockpiles, scenarios) and an enumeration its allowed
values. The lists warn rather than refuse, so a code not yet defined can still be typed
(validation then names it). Used by the shipped cases and the blank template."""

from __future__ import annotations

from model.case import schema as S
from model.case.schema import Column, Sheet

# Where a reference kind's codes are defined: (sheet, column).
REF_HOME = {S.COUNTRY: ("countries", "country"), S.PRODUCT: ("products", "product"),
            S.PROCESS: ("processes", "process"), S.FACILITY: ("facilities", "facility"),
            S.PERIOD: ("periods", "period"), S.STOCKPILE: ("stockpiles", "stockpile"),
            S.SCENARIO: ("scenarios", "scenario"), S.GROUP: ("product_groups", "group")}
LAST_ROW = 5000  # rows a dropdown covers


def column_note(col: Column) -> str:
    bits = [col.description]
    if col.unit:
        bits.append(f"Unit: {col.unit}.")
    bits.append(("Required. " if col.required else "Optional. ") + f"Expected: {col.expected()}.")
    if col.default not in (None, ""):
        bits.append(f"Default: {col.default}.")
    return " ".join(bits)


def _letter(j: int) -> str:
    s = ""
    j += 1
    while j:
        j, r = divmod(j - 1, 26)
        s = chr(65 + r) + s
    return s


def dropdown(col: Column, present: dict[str, list[str]]) -> str | None:
    """The list formula a column's dropdown offers, or None. `present`: each sheet's column
    names as written in this workbook (a reference list points at its home column there)."""
    if col.dtype == "list":
        return None  # several codes in one cell: a dropdown would offer one
    if col.codes:
        text = ",".join(col.codes)
        return f'"{text}"' if len(text) <= 250 else None
    if col.dtype == "bool":
        return '"TRUE,FALSE"'
    home = REF_HOME.get(col.ref or "")
    if home is None or home[1] not in present.get(home[0], []):
        return None
    j = present[home[0]].index(home[1])
    return f"'{home[0]}'!${_letter(j)}$2:${_letter(j)}${LAST_ROW}"


def dress_openpyxl(ws, spec: Sheet, names: list[str], present: dict[str, list[str]]) -> None:
    """Frozen header, header notes and dropdowns on an openpyxl sheet whose header is `names`."""
    from openpyxl.comments import Comment
    from openpyxl.worksheet.datavalidation import DataValidation
    ws.freeze_panes = "A2"
    for j, name in enumerate(names):
        if name not in spec.column_names:
            continue
        col = spec.column(name)
        note = Comment(column_note(col), "rare-earth schema")
        note.width, note.height = 320, 140
        ws.cell(1, j + 1).comment = note
        formula = dropdown(col, present)
        if formula:
            dv = DataValidation(type="list", formula1=formula, allow_blank=True, errorStyle="warning",
                                showErrorMessage=True, errorTitle=name,
                                error=f"Not in the list: {col.expected()} (validation will check it)")
            dv.add(f"{_letter(j)}2:{_letter(j)}{LAST_ROW}")
            ws.add_data_validation(dv)
