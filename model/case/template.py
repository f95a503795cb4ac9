"""The blank template workbook and the input documentation, both from the schema."""

from __future__ import annotations

from pathlib import Path

import xlsxwriter

from model.case.dress import LAST_ROW, column_note, dropdown
from model.case.schema import SETTINGS, SHEETS


def write_template(path: str | Path) -> Path:
    """An empty workbook: every sheet with its header (comments describe each column),
    settings pre-filled with defaults, and a `_columns` sheet documenting all columns."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists; the template never overwrites a file")
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False})
    head = wb.add_format({"bold": True, "bg_color": "#DDE6F0", "border": 1})
    present = {sheet.name: sheet.column_names for sheet in SHEETS}
    for sheet in SHEETS:
        ws = wb.add_worksheet(sheet.name)
        for j, col in enumerate(sheet.columns):
            ws.write(0, j, col.name, head)
            ws.write_comment(0, j, column_note(col), {"x_scale": 3, "y_scale": 2})
            ws.set_column(j, j, max(12, len(col.name) + 2))
            formula = dropdown(col, present)
            if formula:
                ws.data_validation(1, j, LAST_ROW - 1, j, {
                    "validate": "list", "source": "=" + formula if not formula.startswith('"') else
                    formula.strip('"').split(","), "error_type": "warning", "error_title": col.name,
                    "error_message": f"Not in the list: {col.expected()} (validation will check it)"[:255]})
        ws.freeze_panes(1, 0)
        if sheet.name == "settings":
            rows = [s for s in SETTINGS if s.required or s.default is not None]
            for i, s in enumerate(rows, start=1):
                ws.write(i, 0, s.name)
                if s.default is not None:
                    ws.write(i, 1, s.default)
    doc = wb.add_worksheet("_columns")
    rows = [("sheet", "column", "type", "unit", "required", "default", "expected", "description")]
    for sheet in SHEETS:
        for col in sheet.columns:
            rows.append((sheet.name, col.name, col.dtype, col.unit, "yes" if col.required else "no",
                         "" if col.default is None else str(col.default), col.expected(), col.description))
    for s in SETTINGS:
        rows.append(("settings (key)", s.name, s.dtype, s.unit, "yes" if s.required else "no",
                     "" if s.default is None else str(s.default), s.expected(), s.description))
    for i, r in enumerate(rows):
        doc.write_row(i, 0, r, head if i == 0 else None)
    doc.freeze_panes(1, 0)
    wb.close()
    return path


def docs_markdown() -> str:
    """inputs/README.md: every sheet and column, generated from the schema."""
    out = ["# Case workbook reference", "",
           "Generated from `model/case/schema.py` by `python run.py docs`; do not edit by hand.",
           "", "One `.xlsx` holds a whole case; each sheet is one table with a header row. "
           "Units are in column names: tonnes (t) and real US dollars of the base year "
           "unless a column says otherwise. Sheets whose name starts with `_` are ignored. "
           "Every data sheet has a `source` column: where the row's figures come from, or "
           "'assumption: ...' and why.", ""]
    out += ["## settings (key/value rows)", "", "| key | type | unit | default | expected | description |",
            "|---|---|---|---|---|---|"]
    for s in SETTINGS:
        out.append(f"| `{s.name}` | {s.dtype} | {s.unit} | {'' if s.default is None else s.default} "
                   f"| {s.expected()} | {s.description} |")
    out.append("")
    for sheet in SHEETS:
        if sheet.name == "settings":
            continue
        key = ", ".join(sheet.key) if sheet.key else "none"
        out += [f"## {sheet.name}", "", sheet.description, "",
                f"Required sheet: {'yes' if sheet.required else 'no'}. Unique key: {key}.", "",
                "| column | type | unit | required | default | expected | description |",
                "|---|---|---|---|---|---|---|"]
        for col in sheet.columns:
            out.append(f"| `{col.name}` | {col.dtype} | {col.unit} | {'yes' if col.required else 'no'} "
                       f"| {'' if col.default in (None, '') else col.default} | {col.expected()} "
                       f"| {col.description} |")
        out.append("")
    return "\n".join(out)


def write_docs(path: str | Path) -> Path:
    path = Path(path)
    path.write_text(docs_markdown())
    return path
