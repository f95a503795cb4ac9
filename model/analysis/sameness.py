"""Are two runs' result tables the same answer? Used to check that the reported plan does
not depend on the solver's method, version or the order of rows in the workbook.

Tables are compared as sets of rows: rows are matched on their text columns (the keys:
country, product, period, ...), numbers are compared to a relative and absolute
tolerance, and a row present in one table only must carry no more than the tolerance
in its numbers (a table drops a flow below 1e-9 t/yr, so a row may be missing on one
side only when its figures are nil).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

# Tables that describe the run rather than its answer.
NOT_ANSWERS = ("summary",)
# Columns that describe the run (solver statistics) rather than the answer.
RUN_COLUMNS = ("solve_s", "iterations")


def table_differences(a: pd.DataFrame, b: pd.DataFrame, rtol: float = 1e-6, atol: float = 1e-6,
                      skip_columns: tuple[str, ...] = ()) -> list[str]:
    """Lines naming each difference between two tables (empty: the same answer)."""
    if list(a.columns) != list(b.columns):
        return [f"columns differ: {list(a.columns)} vs {list(b.columns)}"]
    cols = [c for c in a.columns if c not in skip_columns]
    num = [c for c in cols if pd.api.types.is_numeric_dtype(a[c]) and not pd.api.types.is_bool_dtype(a[c])]
    keys = [c for c in cols if c not in num]
    a2 = _keyed(a[cols], keys)
    b2 = _keyed(b[cols], keys)
    merged = a2.merge(b2, on=keys + ["_n"], how="outer", suffixes=("_a", "_b"), indicator=True)
    out: list[str] = []
    one_side = merged["_merge"].ne("both").to_numpy()  # a row one table dropped counts as nil
    for c in num:
        x = merged[f"{c}_a"].to_numpy(float)
        y = merged[f"{c}_b"].to_numpy(float)
        x = np.where(one_side, np.nan_to_num(x, nan=0.0), x)
        y = np.where(one_side, np.nan_to_num(y, nan=0.0), y)
        same = (np.isclose(x, y, rtol=rtol, atol=atol)) | (np.isnan(x) & np.isnan(y)) | (x == y)
        for i in np.flatnonzero(~same)[:5]:
            key = {k: merged[k].iloc[i] for k in keys}
            out.append(f"{c} at {key}: {x[i]!r} vs {y[i]!r}")
    return out


def _keyed(t: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows with a running number among equal keys (so duplicate keys still pair up),
    keys as text so NaN and None match."""
    t = t.copy()
    for k in keys:
        t[k] = t[k].astype(str)
    t = t.sort_values(keys + [c for c in t.columns if c not in keys], kind="mergesort")
    t["_n"] = t.groupby(keys, sort=False).cumcount() if keys else np.arange(len(t))
    return t


def run_differences(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame], rtol: float = 1e-6,
                    atol: float = 1e-6, tables: list[str] | None = None) -> dict[str, list[str]]:
    """Per table, its differences between two runs (tables absent from both are skipped)."""
    names = tables or sorted((set(a) | set(b)) - set(NOT_ANSWERS))
    out: dict[str, list[str]] = {}
    for name in names:
        ta, tb = a.get(name), b.get(name)
        if ta is None and tb is None:
            continue
        if ta is None or tb is None:
            out[name] = [f"table present in one run only ({'first' if tb is None else 'second'})"]
            continue
        d = table_differences(ta, tb, rtol, atol, RUN_COLUMNS)
        if d:
            out[name] = d
    return out


def shuffle_workbook(src: str | Path, dst: str | Path, seed: int) -> Path:
    """Copy a case workbook with the data rows of every sheet in a random order (seeded);
    headers stay first. The copy must give the same answer as the original."""
    import openpyxl

    rng = np.random.default_rng(seed)
    wb = openpyxl.load_workbook(src, read_only=True, data_only=True)
    out = openpyxl.Workbook()
    out.remove(out.active)
    for ws in wb.worksheets:
        rows = [list(r) for r in ws.iter_rows(values_only=True)]
        target = out.create_sheet(ws.title)
        if not rows:
            continue
        body = rows[1:]
        target.append(rows[0])
        for i in rng.permutation(len(body)):
            target.append(body[i])
    wb.close()
    out.save(dst)
    return Path(dst)
