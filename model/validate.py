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


def _members(t: dict[str, pd.DataFrame]) -> tuple[dict, dict, list, list]:
    """(bloc -> countries, group -> products, countries, products) for expanding codes."""
    blocs: dict[str, list[str]] = {}
    for c, text in zip(t["countries"]["country"], t["countries"]["blocs"]):
        for b in str(text or "").split(","):
            if b:
                blocs.setdefault(b, []).append(c)
    groups = {g: list(d["product"]) for g, d in t["product_groups"].groupby("group")}
    return blocs, groups, list(t["countries"]["country"]), list(t["products"]["product"])


def _blank(v) -> bool:
    return v is None or v != v or v == ""


def _check_export_controls(file: str, t: dict[str, pd.DataFrame], out: list[Problem]) -> None:
    from model.origin import expand_list
    ctl = t["export_controls"]
    if ctl.empty:
        return
    blocs, groups, countries, products = _members(t)
    elements = {e for e in t["products"]["element"] if e not in ("", "mix", None)}
    periods = list(t["periods"]["period"])
    seen: list[tuple] = []
    for r in ctl.to_dict("records"):
        row = _row(r[ROW])
        kind = r["kind"]
        if kind == "quota" and _blank(r["quota_t_per_yr"]):
            if _blank(r["quota_share"]):
                out.append(Problem(file, "export_controls", row, "quota_t_per_yr", None,
                                   "quota_t_per_yr, or quota_share with reference_flow_t_per_yr",
                                   "a quota needs an amount"))
            elif _blank(r["reference_flow_t_per_yr"]):
                out.append(Problem(file, "export_controls", row, "reference_flow_t_per_yr", None,
                                   "the sourced pre-control flow the share applies to",
                                   "a share quota needs reference_flow_t_per_yr"))
        if kind == "licence":
            for col in ("licence_approval_share", "reference_flow_t_per_yr"):
                if _blank(r[col]):
                    out.append(Problem(file, "export_controls", row, col, None,
                                       "a value (the licensed amount is approval share x reference flow)",
                                       f"a licence needs {col}"))
        if r["element"] and r["element"] not in elements:
            out.append(Problem(file, "export_controls", row, "element", r["element"],
                               "an element named in the products sheet",
                               "unknown element" + did_you_mean(r["element"], elements)))
        dest = set(expand_list(r["destinations"] or "*", blocs, countries)) - set(
            expand_list(r["exempt"], blocs, countries)) - {r["exporter"]}
        if not dest:
            out.append(Problem(file, "export_controls", row, "destinations", r["destinations"],
                               "at least one destination left after exemptions",
                               "the control covers no destination"))
        prods = set(expand_list(r["product"], groups, products))
        pers = expand_list(r["periods"] or "*", {}, periods)
        if len(pers) != len(set(pers)):
            out.append(Problem(file, "export_controls", row, "periods", r["periods"],
                               "each period once", "a period is listed twice"))
        for other in seen:
            name, kind2, x2, prods2, dest2, pers2 = other
            both = set(pers) & set(pers2)
            if kind2 == kind and x2 == r["exporter"] and prods & prods2 and dest & dest2 and both:
                out.append(Problem(file, "export_controls", row, "periods", r["periods"],
                                   f"periods that do not overlap control '{name}' for the same products and destinations",
                                   f"overlaps control '{name}' in period {sorted(both, key=periods.index)[0]} "
                                   f"(two {kind}s on one flow are ambiguous)"))
        seen.append((r["control"], kind, r["exporter"], prods, dest, pers))


def _check_tariffs(file: str, t: dict[str, pd.DataFrame], out: list[Problem]) -> None:
    from model.origin import expand_list
    tar = t["tariffs"]
    if tar.empty:
        return
    _, groups, _, products = _members(t)
    price = dict(zip(t["products"]["product"], t["products"]["reference_price_usd_per_t"]))
    for r in tar.to_dict("records"):
        if not _blank(r["ad_valorem_pct"]) and r["ad_valorem_pct"] > 0:
            missing = [p for p in expand_list(r["product"], groups, products) if _blank(price.get(p))]
            if missing and r["product"] != "*":
                out.append(Problem(file, "tariffs", _row(r[ROW]), "ad_valorem_pct", r["ad_valorem_pct"],
                                   "a reference_price_usd_per_t in the products sheet for " + ", ".join(missing[:5]),
                                   "an ad valorem duty needs the product's reference price"))


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
    _check_export_controls(file, t, out)
    _check_tariffs(file, t, out)
    _check_unsupported(file, t, out)
    return out


def validate_case(case: Case) -> Case:
    """Raise InputError with every cross-sheet problem; return the case if clean."""
    problems = case.read_problems + check_case(case)
    case.read_problems = []
    if problems:
        raise InputError(problems)
    return case
