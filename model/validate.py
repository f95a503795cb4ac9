"""Cross-sheet checks of a typed case: keys, references, recipes, periods.

Every problem is collected and raised at once as an `InputError`.
"""

from __future__ import annotations

import pandas as pd

from model import schema as S
from model.schema import SHEETS, InputError, Problem
from model.workbook import ROW, Case, did_you_mean


def code_sets(tables: dict[str, pd.DataFrame]) -> dict[str, set[str]]:
    """The codes each reference kind may name, from the case's own tables."""
    countries = set(tables["countries"]["country"].dropna())
    blocs: set[str] = set()
    for text in tables["countries"]["blocs"].dropna():
        blocs.update(b for b in str(text).split(",") if b)
    products = set(tables["products"]["product"].dropna())
    groups = set(tables["product_groups"]["group"].dropna())
    return {
        S.COUNTRY: countries,
        S.BLOC: blocs,
        S.COUNTRY_OR_BLOC: countries | blocs,
        S.PRODUCT: products,
        S.GROUP: groups,
        S.PRODUCT_OR_GROUP: products | groups,
        S.PROCESS: set(tables["processes"]["process"].dropna()),
        S.FACILITY: set(tables["facilities"]["facility"].dropna()),
        S.PERIOD: set(tables["periods"]["period"].dropna()),
        S.STOCKPILE: set(tables["stockpiles"]["stockpile"].dropna()),
        S.SCENARIO: set(tables["scenarios"]["scenario"].dropna()),
        S.SHEET: {s.name for s in SHEETS},
    }


def _row(value) -> int | None:
    """The Excel row of a record; None for a row a scenario appended (it has no cell)."""
    return None if value is None or pd.isna(value) else int(value)


def _check_keys(file: str, sheet: S.Sheet, df: pd.DataFrame, out: list[Problem]) -> None:
    if not sheet.key or df.empty:
        return
    dup = df[df.duplicated(list(sheet.key), keep="first")]
    first = df.drop_duplicates(list(sheet.key), keep="first").set_index(list(sheet.key))[ROW]
    for rec in dup.to_dict("records"):
        key = tuple(rec[k] for k in sheet.key)
        k = key if len(key) > 1 else key[0]
        out.append(Problem(file, sheet.name, rec[ROW], ", ".join(sheet.key),
                           "; ".join(map(str, key)), "a key used once",
                           f"duplicate key (first used in row {first.loc[k]})"))


def _check_refs(file: str, sheet: S.Sheet, df: pd.DataFrame, codes: dict[str, set[str]],
                out: list[Problem]) -> None:
    for col in sheet.columns:
        if not col.ref or df.empty:
            continue
        allowed = codes[col.ref]
        for value, row in zip(df[col.name], df[ROW]):
            if value is None or value == "":
                continue
            items = str(value).split(",") if col.dtype == "list" else [value]
            for item in items:
                if item == "*" and col.wildcard:
                    continue
                if item not in allowed:
                    what = col.ref.replace("_or_", " or ")
                    out.append(Problem(file, sheet.name, _row(row), col.name, item,
                                       f"a known {what}" + (" or *" if col.wildcard else ""),
                                       f"unknown {what}" + did_you_mean(item, allowed)))


def _check_recipes(file: str, t: dict[str, pd.DataFrame], out: list[Problem]) -> None:
    rec = t["recipes"]
    for r in rec[rec["coefficient"] == 0].to_dict("records"):
        out.append(Problem(file, "recipes", r[ROW], "coefficient", 0,
                           "a non-zero number (+ output, - input)", "zero coefficient"))
    has_output = set(rec.loc[rec["coefficient"] > 0, "process"])
    has_rows = set(rec["process"])
    for p in t["processes"].to_dict("records"):
        if p["process"] not in has_rows:
            out.append(Problem(file, "processes", p[ROW], "process", p["process"],
                               "rows in the recipes sheet", "process has no recipe"))
        elif p["process"] not in has_output:
            first = rec.loc[rec["process"] == p["process"], ROW].iloc[0]
            out.append(Problem(file, "recipes", _row(first), "coefficient", p["process"],
                               "at least one output (a positive coefficient)",
                               "process has no output"))


def _check_periods(file: str, t: dict[str, pd.DataFrame], settings: dict,
                   rows: dict[str, int], out: list[Problem]) -> None:
    per = t["periods"]
    if per.empty:
        out.append(Problem(file, "periods", None, message="no periods",
                           expected="at least one period"))
        return
    prev = None
    for r in per.to_dict("records"):
        if prev is not None and r["start_year"] < prev["start_year"] + prev["duration_yr"] - 1e-9:
            if r["start_year"] <= prev["start_year"]:
                msg = f"periods out of order (starts before or with '{prev['period']}')"
            else:
                msg = f"overlaps period '{prev['period']}' (which ends at {prev['start_year'] + prev['duration_yr']:g})"
            out.append(Problem(file, "periods", r[ROW], "start_year", r["start_year"],
                               "a start at or after the previous period's end", msg))
        prev = r
    base = settings.get("base_year")
    first = per["start_year"].iloc[0]
    if base is not None and first < base:
        out.append(Problem(file, "settings", rows.get("base_year"), "value", base,
                           f"a year at or before the first period's start ({first:g})",
                           "base_year is after the first period starts"))


def _check_facilities(file: str, t: dict[str, pd.DataFrame], out: list[Problem]) -> None:
    fac = t["facilities"]
    bad = fac[(fac["first_year"].notna()) & (fac["last_year"].notna())
              & (fac["first_year"] > fac["last_year"])]
    for r in bad.to_dict("records"):
        out.append(Problem(file, "facilities", r[ROW], "last_year", r["last_year"],
                           f"a year at or after first_year ({r['first_year']:g})",
                           "last_year before first_year"))
    used = set(t["facility_processes"]["facility"])
    for r in fac[~fac["facility"].isin(used)].to_dict("records"):
        out.append(Problem(file, "facilities", r[ROW], "facility", r["facility"],
                           "at least one row in facility_processes",
                           "facility runs no process"))


def _check_codes_distinct(file: str, codes: dict[str, set[str]], t: dict[str, pd.DataFrame],
                          out: list[Problem]) -> None:
    for clash in sorted(codes[S.COUNTRY] & codes[S.BLOC]):
        named = t["countries"]["blocs"].map(lambda text: clash in str(text or "").split(","))
        row = t["countries"].loc[named, ROW].iloc[0]
        out.append(Problem(file, "countries", _row(row), "blocs", clash,
                           "bloc codes distinct from country codes",
                           "a bloc has the same code as a country"))
    for clash in sorted(codes[S.PRODUCT] & codes[S.GROUP]):
        row = t["product_groups"].loc[t["product_groups"]["group"] == clash, ROW].iloc[0]
        out.append(Problem(file, "product_groups", _row(row), "group", clash,
                           "group codes distinct from product codes",
                           "a group has the same code as a product"))


def _check_unsupported(file: str, t: dict[str, pd.DataFrame], out: list[Problem]) -> None:
    for sheet in SHEETS:
        df = t[sheet.name]
        if not sheet.supported and not df.empty:
            out.append(Problem(file, sheet.name, _row(df[ROW].iloc[0]), message=(
                "this sheet's part of the model is not built yet in this version; "
                "leave the sheet empty or delete it"), expected="no rows"))


def check_case(case: Case) -> list[Problem]:
    """Every cross-sheet problem of a typed case."""
    file = case.name + ".xlsx" if not case.path.endswith(".xlsx") else case.path.split("/")[-1]
    t = case.tables
    out: list[Problem] = []
    codes = code_sets(t)
    for sheet in SHEETS:
        _check_keys(file, sheet, t[sheet.name], out)
        _check_refs(file, sheet, t[sheet.name], codes, out)
    _check_codes_distinct(file, codes, t, out)
    _check_recipes(file, t, out)
    _check_periods(file, t, case.settings, case.settings_rows, out)
    _check_facilities(file, t, out)
    _check_unsupported(file, t, out)
    return out


def validate_case(case: Case) -> Case:
    """Raise InputError with every cross-sheet problem; return the case if clean."""
    problems = case.read_problems + check_case(case)
    case.read_problems = []
    if problems:
        raise InputError(problems)
    return case
