"""Read a case workbook into typed tables, collecting every problem before failing.

Each sheet becomes a DataFrame with the schema's columns (defaults filled) plus
`_row`, the Excel row number, so later checks can point at the cell. The workbook is
opened read-only and never written to.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import math
import os
import re
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from model.case.schema import SETTINGS, SETTINGS_BY_NAME, SHEETS, Column, InputError, Problem, Sheet

try:  # openpyxl uses defusedxml for untrusted XML when it is installed
    import defusedxml  # noqa: F401
except ImportError:  # pragma: no cover - dependency of the package
    pass
import openpyxl
import openpyxl.worksheet._reader as _sheet_reader
from openpyxl.cell.cell import ERROR_CODES

ROW = "_row"
# The largest magnitude any number in a case may have: HiGHS refuses a matrix value of
# 1e15 or more and reads costs and bounds of 1e20 as infinite, so a larger cell could
# only make a model the solver rejects or silently reads as unbounded.
NUMBER_LIMIT = 1e15
# A plain decimal number in ASCII digits: no thousands separators, no underscores, no
# other scripts' digits, no words (nan, inf), no hex. Python's float() accepts all of those.
# Size limits checked before a workbook is parsed (an .xlsx is a zip: a few MB can unpack
# to gigabytes). Raise them with the environment variables of the same names.
LIMITS = {"RARE_EARTH_MAX_UNPACKED_MB": 500, "RARE_EARTH_MAX_ROWS": 250_000, "RARE_EARTH_MAX_CELLS": 10_000_000}
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # an encrypted .xlsx or an old .xls


def limit(name: str) -> int:
    """A size limit: the environment's value when it is a whole number, else the default."""
    try:
        return max(1, int(os.environ.get(name, LIMITS[name])))
    except ValueError:
        return LIMITS[name]


TOO_LARGE = "beyond what the solver accepts (magnitude below 1e15)"
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


@dataclass
class Case:
    """A case as read from a workbook: typed tables and settings."""

    path: str
    tables: dict[str, pd.DataFrame]
    settings: dict[str, Any]
    input_hash: str
    settings_rows: dict[str, int] = field(default_factory=dict)
    # Cell-level problems found while reading; `validate_case` reports them together
    # with the cross-sheet problems so a planner sees everything at once.
    read_problems: list[Problem] = field(default_factory=list)

    @property
    def name(self) -> str:
        return Path(self.path).stem

    def copy(self) -> "Case":
        return Case(self.path, {k: v.copy() for k, v in self.tables.items()},
                    dict(self.settings), self.input_hash, dict(self.settings_rows),
                    list(self.read_problems))


def did_you_mean(value: str, choices: list[str] | set[str]) -> str:
    """' (did you mean X?)' for a near-miss code, else ''."""
    # Short codes (Dy, CHN) differ by a larger share when one letter is off.
    cutoff = 0.5 if len(str(value)) <= 3 else 0.6
    close = difflib.get_close_matches(str(value), sorted(map(str, choices)), n=1, cutoff=cutoff)
    if not close:
        lowered = {str(c).lower(): c for c in choices}
        if str(value).lower() in lowered:
            close = [lowered[str(value).lower()]]
    return f" (did you mean '{close[0]}'?)" if close else ""


def unknown_scenario(name: str, known: list[str], limit: int = 20) -> str:
    """The words for a scenario name the workbook lacks: a near miss, and the names it has."""
    names = [str(k) for k in known]
    listed = ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")
    return ("unknown scenario" + did_you_mean(name, names)
            + (f"; the workbook's scenarios: {listed}" if names else "; the workbook has no scenarios"))


def file_hash(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "") or (
        isinstance(value, float) and math.isnan(value))


def parse_number(value: Any) -> tuple[float | None, str | None]:
    """The one way a cell, a scenario change or a sweep value becomes a number:
    (number, None) or (None, what is wrong). Finite, below NUMBER_LIMIT in magnitude,
    and text only in plain decimal notation with '.' as the decimal point."""
    if isinstance(value, bool):
        return None, "a TRUE/FALSE where a number belongs"
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if not _NUMBER.fullmatch(text):
            if "," in text and _NUMBER.fullmatch(text.replace(",", "")):
                return None, ("a comma in a number: the decimal point is '.' and numbers have no "
                              "thousands separators")
            return None, "not a number"
        number = float(text)
    else:
        return None, "not a number"
    if not math.isfinite(number):
        return None, "not a finite number"
    if abs(number) >= NUMBER_LIMIT:
        return None, TOO_LARGE
    return number, None


def coerce(value: Any, col: Column) -> tuple[Any, str | None]:
    """Convert one cell to the column's type; returns (value, error or None)."""
    if _is_blank(value):
        return col.default, None
    if isinstance(value, str) and value.strip() in ERROR_CODES:
        return None, f"an Excel error value ({value.strip()}): fix the formula or type the value"
    kind = col.dtype
    try:
        if kind in ("str", "list"):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            text = str(value).strip()
            if kind == "list":
                items = [t.strip() for t in text.replace(";", ",").split(",") if t.strip()]
                return ",".join(items), None
            return text, None
        if kind == "bool":
            if isinstance(value, bool):
                return value, None
            text = str(value).strip().lower()
            if text in ("true", "yes", "1", "1.0", "y"):
                return True, None
            if text in ("false", "no", "0", "0.0", "n"):
                return False, None
            return None, "not TRUE or FALSE"
        if isinstance(value, bool):
            return None, "a TRUE/FALSE where a number belongs"
        if isinstance(value, (dt.datetime, dt.date)):
            if "year" in col.unit:  # a date in a year column: a fractional year
                d = value if isinstance(value, dt.datetime) else dt.datetime(
                    value.year, value.month, value.day)
                start = dt.datetime(d.year, 1, 1)
                length = (dt.datetime(d.year + 1, 1, 1) - start).total_seconds()
                return d.year + (d - start).total_seconds() / length, None
            return None, "a date where a number belongs"
        number, err = parse_number(value)
        if err:
            return None, err
        if kind == "int":
            if not number.is_integer():
                return None, "not a whole number"
            return int(number), None
        return number, None
    except (TypeError, ValueError):
        return None, "not a number"


def check_range(value: Any, col: Column) -> str | None:
    """Error text if a typed value breaks the column's codes or bounds."""
    if value is None:
        return None
    if col.codes is not None and col.dtype == "str" and value not in col.codes:
        return "not an allowed value" + did_you_mean(value, list(col.codes))
    if col.dtype in ("float", "int"):
        if not math.isfinite(value) or abs(value) >= NUMBER_LIMIT:
            return "not a finite number" if not math.isfinite(value) else TOO_LARGE
        if col.min is not None and (value < col.min or (col.min_exclusive and value == col.min)):
            return "out of range"
        if col.max is not None and value > col.max:
            return "out of range"
    return None


class StoredText(str):
    """A numeric cell whose stored value is not a finite number (NaN, INF, 1e, 0x1A):
    kept as its text so the cell is reported, not the whole workbook."""


_CAST_LOCK = threading.Lock()


def _tolerant_cast(value: str):
    try:
        number = _STRICT_CAST(value)
    except ValueError:
        return StoredText(value)
    return number if not isinstance(number, float) or math.isfinite(number) else StoredText(value)


_STRICT_CAST = getattr(_sheet_reader, "_cast_number", None)


def _read_cells(path: Path) -> tuple[dict[str, list[tuple]], dict[str, set[tuple[int, int]]]]:
    """All sheets' cached values, and the (row, col) of formulas with no cached value.
    Every row is read whatever the sheet's stored dimension says (some writers leave
    it stale, and read-only mode would stop there)."""
    with _CAST_LOCK:
        if _STRICT_CAST is not None:  # openpyxl casts numeric cells here; keep bad ones as text
            _sheet_reader._cast_number = _tolerant_cast
        try:
            return _read_all(path)
        finally:
            if _STRICT_CAST is not None:
                _sheet_reader._cast_number = _STRICT_CAST


class TooLarge(Exception):
    """A sheet beyond RARE_EARTH_MAX_ROWS, or a workbook beyond RARE_EARTH_MAX_CELLS: (sheet, words)."""


def _rows(ws, cap: int, cells: list[int]) -> list[tuple]:
    """A sheet's rows, stopping at the row limit or the workbook's cell limit (cells[0]
    counts what is left)."""
    rows = []
    for r in ws.iter_rows(values_only=True):
        rows.append(tuple(r))
        cells[0] -= len(r)
        if len(rows) > cap:
            raise TooLarge(ws.title, f"more than {cap - 1:,} rows (set RARE_EARTH_MAX_ROWS to raise the limit)")
        if cells[0] < 0:
            raise TooLarge(ws.title, f"the workbook has more than {limit('RARE_EARTH_MAX_CELLS'):,} cells "
                                     "(set RARE_EARTH_MAX_CELLS to raise the limit)")
    return rows


_FORMULA = re.compile(rb"<(?:\w+:)?f[\s>/]")  # a cell's formula element, namespace prefix or not


def _has_formulas(path: Path) -> bool:
    """Whether any worksheet of the file holds a formula (True when unsure): a workbook
    without any needs no second pass looking for formulas without a cached value."""
    try:
        with zipfile.ZipFile(path) as z:
            return any(_FORMULA.search(z.read(n)) for n in z.namelist() if "worksheets/" in n)
    except Exception:
        return True


def _read_all(path: Path) -> tuple[dict[str, list[tuple]], dict[str, set[tuple[int, int]]]]:
    cap = limit("RARE_EARTH_MAX_ROWS") + 1  # the header row
    cells = [limit("RARE_EARTH_MAX_CELLS")]
    values_wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    formula_wb = openpyxl.load_workbook(path, read_only=True, data_only=False) if _has_formulas(path) else None
    values: dict[str, list[tuple]] = {}
    uncached: dict[str, set[tuple[int, int]]] = {}
    try:
        for ws in values_wb.worksheets:
            ws.reset_dimensions()
            values[ws.title] = _rows(ws, cap, cells)
            uncached[ws.title] = set()
        for ws in formula_wb.worksheets if formula_wb is not None else []:
            ws.reset_dimensions()
            rows = values[ws.title]
            missing = set()
            for r, row in enumerate(ws.iter_rows(values_only=True)):
                for c, cell in enumerate(row):
                    if isinstance(cell, str) and cell.startswith("=") and (
                            r >= len(rows) or c >= len(rows[r]) or rows[r][c] is None):
                        missing.add((r + 1, c))
            uncached[ws.title] = missing
    finally:
        values_wb.close()
        if formula_wb is not None:
            formula_wb.close()
    return values, uncached


def _table(file: str, sheet: Sheet, rows: list[tuple], uncached: set[tuple[int, int]],
           problems: list[Problem]) -> pd.DataFrame:
    """Type one sheet's rows against its schema."""
    names = sheet.column_names
    if not rows or all(_is_blank(v) for v in rows[0]):
        problems.append(Problem(file, sheet.name, 1, message="the header row is empty",
                                expected="a header row with columns " + ", ".join(names)))
        return typed_frame(sheet, [])
    header = [None if _is_blank(h) else str(h).strip() for h in rows[0]]
    positions: dict[str, int] = {}
    for c, h in enumerate(header):
        if h is None:
            continue
        if h in positions:
            problems.append(Problem(file, sheet.name, 1, h, message="duplicate column"))
        elif h not in names:
            problems.append(Problem(file, sheet.name, 1, h, h, message="unknown column" +
                                    did_you_mean(h, names),
                                    expected="one of " + ", ".join(names)))
        else:
            positions[h] = c
    for col in sheet.columns:
        if col.required and col.name not in positions:
            problems.append(Problem(file, sheet.name, 1, col.name,
                                    message="required column is missing"))
    records = []
    for r, raw in enumerate(rows[1:], start=2):
        if all(_is_blank(v) for v in raw):
            continue
        rec: dict[str, Any] = {ROW: r}
        for col in sheet.columns:
            c = positions.get(col.name)
            cell = raw[c] if c is not None and c < len(raw) else None
            if c is not None and (r, c) in uncached:
                problems.append(Problem(file, sheet.name, r, col.name, message=(
                    "formula has no cached value (the file was saved by a program that "
                    "does not calculate); open and save it in Excel or LibreOffice"),
                    expected="a value"))
                rec[col.name] = col.default
                continue
            value, err = coerce(cell, col)
            if err is None:
                err = check_range(value, col)
            if err is None and col.required and value is None and c is not None:
                err = "required value is blank"
            if err:
                problems.append(Problem(file, sheet.name, r, col.name, cell, col.expected(), err))
                value = col.default
            rec[col.name] = value
        records.append(rec)
    return typed_frame(sheet, records)


def typed_frame(sheet: Sheet, records: list[dict] | pd.DataFrame) -> pd.DataFrame:
    """A sheet's table with its schema's columns: numbers as float (blank = NaN),
    booleans as bool, text as Python str (blank = the default)."""
    names = sheet.column_names
    frame = (records if isinstance(records, pd.DataFrame)
             else pd.DataFrame.from_records(records, columns=names + [ROW]))
    frame = frame.astype({c.name: object for c in sheet.columns if c.dtype in ("str", "list", "bool")})
    for col in sheet.columns:
        if col.dtype in ("float", "int"):
            frame[col.name] = pd.to_numeric(frame[col.name], errors="coerce").astype(float)
    return frame


def _settings(file: str, table: pd.DataFrame, problems: list[Problem]) -> tuple[dict, dict]:
    values = {s.name: s.default for s in SETTINGS}
    where: dict[str, int] = {}
    seen: set[str] = set()
    for rec in table.to_dict("records"):
        key = rec["key"]
        col = SETTINGS_BY_NAME.get(key)
        if col is None:
            continue  # the key column's codes already reported it
        seen.add(key)
        value, err = coerce(rec["value"], col)
        if err is None:
            err = check_range(value, col)
        if err is None and value is None and col.required:
            err = "required setting is blank"
        if err:
            problems.append(Problem(file, "settings", rec[ROW], "value", rec["value"],
                                    f"{key}: {col.expected()}", err))
            continue
        values[key] = value
        where[key] = rec[ROW]
    for col in SETTINGS:
        if col.required and col.name not in seen:
            problems.append(Problem(file, "settings", None, "key", None,
                                    f"a row with key '{col.name}'",
                                    "required setting is missing"))
    return values, where


def open_workbook(path: Path) -> tuple[dict[str, list[tuple]], dict[str, set[tuple[int, int]]]]:
    """Every sheet's cached cell values and uncached formulas; InputError if the file is
    missing or is not an .xlsx workbook."""
    file = path.name
    if not path.exists():
        raise InputError([Problem(file, message=f"file not found: {path}")])
    check_package(path)
    try:
        return _read_cells(path)
    except TooLarge as exc:
        sheet, words = exc.args
        raise InputError([Problem(file, sheet, None, message=words,
                                  expected="a workbook within the size limits")]) from None
    except Exception as exc:  # openpyxl raises many kinds for a non-xlsx file
        raise InputError([Problem(file, message=f"cannot be read as an .xlsx workbook ({exc})",
                                  expected="an Excel .xlsx file")]) from None


def check_package(path: Path) -> None:
    """Before parsing: a folder, an encrypted workbook, a file that is not an .xlsx
    package, and a package that unpacks beyond the size limit are each named plainly."""
    file = path.name
    if path.is_dir():
        raise InputError([Problem(file, message=f"{path} is a folder, not a workbook",
                                  expected="an Excel .xlsx file")])
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head == _OLE:
        raise InputError([Problem(file, message="cannot be read as an .xlsx workbook: it is encrypted "
                                  "(password-protected) or an old .xls file; save it from Excel without a "
                                  "password as .xlsx", expected="an Excel .xlsx file")])
    if not zipfile.is_zipfile(path):
        raise InputError([Problem(file, message="cannot be read as an .xlsx workbook: it is not a zip "
                                  "package (a CSV or another file renamed .xlsx?)", expected="an Excel .xlsx file")])
    try:
        with zipfile.ZipFile(path) as z:
            unpacked = sum(i.file_size for i in z.infolist())
    except zipfile.BadZipFile as exc:
        raise InputError([Problem(file, message=f"cannot be read as an .xlsx workbook: a damaged package ({exc})",
                                  expected="an Excel .xlsx file")]) from None
    cap_mb = limit("RARE_EARTH_MAX_UNPACKED_MB")
    if unpacked > cap_mb * 1e6:
        raise InputError([Problem(file, message=(
            f"unpacks to {unpacked / 1e6:,.0f} MB, more than the {cap_mb:,} MB limit (a decompression bomb, "
            "or a case far larger than planned: set RARE_EARTH_MAX_UNPACKED_MB to raise the limit)"),
            expected="a workbook within the size limit")])


def type_sheets(file: str, cells: dict, uncached: dict, sheets: list[Sheet], problems: list[Problem],
                required: set[str] | None = None) -> dict[str, pd.DataFrame]:
    """Type the given sheets against the schema (a missing optional sheet is empty;
    `required` overrides which must be there)."""
    tables: dict[str, pd.DataFrame] = {}
    for sheet in sheets:
        must = sheet.required if required is None else sheet.name in required
        if sheet.name not in cells:
            if must:
                problems.append(Problem(file, sheet.name, message="required sheet is missing"))
            tables[sheet.name] = typed_frame(sheet, [])
            continue
        tables[sheet.name] = _table(file, sheet, cells[sheet.name], uncached.get(sheet.name, set()), problems)
    return tables


def structural(problems: list[Problem]) -> bool:
    """Missing sheets, columns or settings (no row, or the header row): cross-sheet
    checks would be meaningless."""
    return any(p.row is None or p.row == 1 for p in problems)


def read_case(path: str | Path) -> Case:
    """Read and type every sheet of a workbook; raise InputError listing all problems.

    Cross-sheet checks happen in `model.case.validate.validate_case`.
    """
    path = Path(path)
    file = path.name
    cells, uncached = open_workbook(path)
    problems: list[Problem] = []
    known = {s.name for s in SHEETS}
    for name in cells:
        if name not in known and not name.startswith("_"):
            problems.append(Problem(file, name, message="unknown sheet" + did_you_mean(
                name, known), expected="one of " + ", ".join(sorted(known))))
    tables = type_sheets(file, cells, uncached, list(SHEETS), problems)
    # Periods run in time order whatever the order of their rows (a row keeps its sheet
    # row number for messages), so no result depends on how the sheet is sorted.
    if "periods" in tables and "start_year" in tables["periods"]:
        tables["periods"] = tables["periods"].sort_values("start_year", kind="mergesort",
                                                          na_position="last").reset_index(drop=True)
    settings, where = _settings(file, tables["settings"], problems)
    # Bad cells were set to their column's default, so the cross-sheet checks can still
    # run and report everything else at once.
    if structural(problems):
        raise InputError(problems)
    return Case(str(path), tables, settings, file_hash(path), where, problems)
