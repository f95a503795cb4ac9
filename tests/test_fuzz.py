"""A seeded fuzz test: a few hundred broken variants of the shipped teaching workbook,
each with one known fault (a bad number, an out-of-range value, an unknown code, an
Excel error, a renamed column, a duplicated key, a missing sheet). Every variant must
give exit status 2 with the sheet (and, for a cell, the row and column) named, no
traceback, no output folder, and the variant file unchanged."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from pathlib import Path

import openpyxl

from conftest import ROOT
from model.case.schema import SHEETS_BY_NAME
from model.case.workbook import file_hash
from model.cli import main

SOURCE = ROOT / "inputs" / "example.xlsx"
SEED = 20261203
VARIANTS = 240
BAD_TEXT = ["3,5", "1,000", "1_000", "\u0661\u0662", "\uff11\uff12", "nan", "NaN", "inf", "-inf", "1e", "0x1A",
            "abc", "12%", "--3", "1.2.3", "TRUE?"]


@dataclass
class Fault:
    kind: str
    sheet: str
    row: int | None = None   # Excel row (header is 1)
    column: str | None = None


def _grid() -> dict[str, list[list]]:
    wb = openpyxl.load_workbook(SOURCE, read_only=True)
    try:
        return {ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in wb.worksheets}
    finally:
        wb.close()


def _cells(grid: dict, want) -> list[tuple[str, int, int, str]]:
    """(sheet, Excel row, column position, column name) of the data cells whose schema
    column passes want(col, value)."""
    out = []
    for sheet, rows in grid.items():
        spec = SHEETS_BY_NAME.get(sheet)
        if spec is None or sheet == "settings" or len(rows) < 2:
            continue
        for c, name in enumerate(rows[0]):
            if name not in spec.column_names:
                continue
            col = spec.column(name)
            for r, row in enumerate(rows[1:], start=2):
                value = row[c] if c < len(row) else None
                if want(col, value):
                    out.append((sheet, r, c, name))
    return out


def _mutate(grid: dict, rng: random.Random) -> tuple[dict, Fault]:
    g = {s: [list(r) for r in rows] for s, rows in grid.items()}
    kind = rng.choice(["bad_text", "out_of_range", "too_large", "bool", "date", "unknown_code", "excel_error",
                       "renamed_column", "duplicate_key", "missing_sheet", "bad_setting"])
    if kind in ("bad_text", "too_large", "bool", "date"):
        cells = _cells(g, lambda col, v: col.dtype in ("float", "int") and "year" not in col.unit
                       and v is not None and not isinstance(v, str))
        sheet, r, c, name = rng.choice(cells)
        g[sheet][r - 1][c] = {"bad_text": lambda: rng.choice(BAD_TEXT), "too_large": lambda: 10.0 ** rng.randint(15, 300),
                              "bool": lambda: True, "date": lambda: dt.datetime(2030, 1, 1)}[kind]()
        return g, Fault(kind, sheet, r, name)
    if kind == "out_of_range":
        cells = _cells(g, lambda col, v: col.dtype in ("float", "int") and col.min is not None and col.min >= 0
                       and isinstance(v, (int, float)))
        sheet, r, c, name = rng.choice(cells)
        g[sheet][r - 1][c] = -1 - rng.random() * 100
        return g, Fault(kind, sheet, r, name)
    if kind == "unknown_code":
        cells = _cells(g, lambda col, v: col.ref is not None and col.dtype == "str" and isinstance(v, str) and v != "*")
        sheet, r, c, name = rng.choice(cells)
        g[sheet][r - 1][c] = "ZZ_" + str(rng.randint(0, 999))
        return g, Fault(kind, sheet, r, name)
    if kind == "excel_error":
        cells = _cells(g, lambda col, v: v is not None and col.name != "source")
        sheet, r, c, name = rng.choice(cells)
        g[sheet][r - 1][c] = rng.choice(["#N/A", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#NULL!"])
        return g, Fault(kind, sheet, r, name)
    if kind == "renamed_column":
        sheet = rng.choice([s for s in g if s in SHEETS_BY_NAME and s != "settings"])
        spec = SHEETS_BY_NAME[sheet]
        c = rng.choice([i for i, h in enumerate(g[sheet][0]) if h in spec.column_names])
        name = g[sheet][0][c]
        g[sheet][0][c] = name + "_x"
        return g, Fault(kind, sheet, 1, name + "_x")
    if kind == "duplicate_key":
        sheet = rng.choice([s for s in g if s in SHEETS_BY_NAME and SHEETS_BY_NAME[s].key and len(g[s]) > 1
                            and s not in ("settings",)])
        r = rng.randrange(1, len(g[sheet]))
        g[sheet].append(list(g[sheet][r]))
        return g, Fault(kind, sheet, len(g[sheet]), None)
    if kind == "missing_sheet":
        sheet = rng.choice([s for s in g if s in SHEETS_BY_NAME and SHEETS_BY_NAME[s].required])
        del g[sheet]
        return g, Fault(kind, sheet)
    rows = g["settings"]
    keys = [i for i, r in enumerate(rows[1:], start=1) if r[0] in ("base_year", "discount_rate")]
    i = rng.choice(keys)
    rows[i][1] = rng.choice(BAD_TEXT)
    return g, Fault(kind, "settings", i + 1, "value")


def _write(grid: dict, path: Path) -> None:
    wb = openpyxl.Workbook(write_only=True)
    for sheet, rows in grid.items():
        ws = wb.create_sheet(sheet)
        for row in rows:
            ws.append(row)
    wb.save(path)


def test_broken_variants_of_the_shipped_workbook_are_named_and_write_nothing(tmp_path, capsys):
    rng = random.Random(SEED)
    grid = _grid()
    out = tmp_path / "out"
    kinds: dict[str, int] = {}
    failures = []
    for i in range(VARIANTS):
        g, fault = _mutate(grid, rng)
        kinds[fault.kind] = kinds.get(fault.kind, 0) + 1
        path = tmp_path / f"v{i:03d}.xlsx"
        _write(g, path)
        before = file_hash(path)
        code = main(["-q", "run", str(path), "--no-explain", "--out", str(out)])
        err = capsys.readouterr().err
        where = [f"sheet '{fault.sheet}'"] + ([f"row {fault.row}"] if fault.row else []) + (
            [f"column '{fault.column}'"] if fault.column else [])
        line = next((ln for ln in err.splitlines() if all(w in ln for w in where)), None)
        ok = (code == 2 and line is not None and "Traceback" not in err and file_hash(path) == before
              and (not out.exists() or not any(out.iterdir())))
        if not ok:
            failures.append(f"variant {i} {fault}: exit {code}; {err[-600:]}")
        path.unlink()
    print(f"fuzz: {VARIANTS} variants, seed {SEED}: {sorted(kinds.items())}")
    assert failures == [], "\n".join(failures[:10])
    assert len(kinds) == 11  # every kind of fault was tried
