"""Write a case workbook from Python rows (used to build shipped cases and test cases)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl

from model.case.dress import dress_openpyxl
from model.case.schema import SHEETS_BY_NAME


def write_case(path: str | Path, sheets: dict[str, list[dict[str, Any]]],
               settings: dict[str, Any] | None = None, overwrite: bool = False) -> Path:
    """Write sheets (name -> list of row dicts) and settings (key -> value) to a new
    .xlsx. Columns follow the schema's order; only columns some row uses are written. Each
    sheet gets a frozen header, the schema's note on every header and dropdown lists
    (model.case.dress)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(path)
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    if settings is not None:
        ws = wb.create_sheet("settings")
        ws.append(["key", "value", "source"])
        for k, v in settings.items():
            val, src = (v if isinstance(v, tuple) else (v, ""))
            ws.append([k, val, src])
        dress_openpyxl(ws, SHEETS_BY_NAME["settings"], ["key", "value", "source"], {})
    headers: dict[str, list[str]] = {}
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        spec = SHEETS_BY_NAME.get(name)
        used: list[str] = []
        for r in rows:
            for k in r:
                if k not in used:
                    used.append(k)
        if spec is not None:
            order = [c for c in spec.column_names if c in used] + [c for c in used if c not in spec.column_names]
            if not used:
                order = [c.name for c in spec.columns if c.required] or spec.column_names[:1]
        else:
            order = used
        ws.append(order)
        headers[name] = order
        for r in rows:
            ws.append([r.get(c) for c in order])
    for name in sheets:  # once every sheet's header is known: dropdowns point across sheets
        if name in SHEETS_BY_NAME:
            dress_openpyxl(wb[name], SHEETS_BY_NAME[name], headers[name], headers)
    wb.save(path)
    return path
