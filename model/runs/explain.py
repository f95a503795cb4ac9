"""Why a plan falls short, and why a case has no plan at all.

Shortfalls. Candidate limits come from the result tables: facility capacities
(capacity_values), expansion ceilings (builds), export quotas, licences and bans
(controls), production quotas and share caps (supply_caps), stockpile targets and
committed stock builds (stockpiles). Each is scored by its first-order value, shadow value
x 10 % of its limit x period duration (undiscounted USD); the `top` best are relaxed by
10 % one at a time in a copy of the case (capacity, quota, share or ceiling x 1.1; a
stockpile target or committed build x 0.9) and the case is solved again. A ban has no 10 % step: it is relaxed to a quota of
10 % of its reference flow when it has one, else lifted, and the words say which. Every
shortfall row then lists the limits whose relaxation cut it, largest cut first. Bans
that bind are tried before the scored limits (a zero limit has no first-order size). The
candidates are chosen once for the whole run (one re-solve each), so a shortfall that
no top limit touches says so plainly.

Infeasible cases. The LP is rebuilt and HiGHS asked for an irreducible infeasible subset
(`Highs.getIis`, strategy from-LP + irreducible). When HiGHS gives none, an elastic
relaxation is solved instead: every row gets slack columns and every finite upper bound
an excess column, each costing 1, and the rows and bounds that need slack are the
conflict. Either way each row or bound is mapped to the sheet, key and Excel row that
made it (the tables below name, per constraint family, the sheet, its key columns from
the index and the column that sets the limit).
"""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass
from typing import Callable

import highspy
import numpy as np
import pandas as pd
import scipy.sparse as sp

from model.case.schema import SHEETS_BY_NAME
from model.case.workbook import ROW, Case
from model.lp.build import build_model
from model.lp.data import build_model_data
from model.lp.handoff import compile_lp
from model.lp.highs import highs_lp, pass_model, quiet_highs, status_name
from model.lp.solve import run_highs, to_highs
from model.runs.pipeline import build_and_load
from model.runs.resolve import Resolver, shortfall_tables

LOG = logging.getLogger(__name__)
STEP = 0.10
TOP = 5

# Constraint family -> (sheet, column that sets the limit, words with {0}, {1} ... the index).
ROW_MAP: dict[str, tuple[str, str, str]] = {
    "capacity_limit": ("facilities", "capacity_t_per_yr", "capacity of facility {0} in {1}"),
    "expansion_capacity_limit": ("expansion", "max_build_t_per_yr",
                                 "capacity built under option {0} in service in {1}"),
    "max_build": ("expansion", "max_build_t_per_yr", "most that option {0} may build"),
    "export_quota": ("export_controls", "quota_t_per_yr", "export control {0} in {1}"),
    "production_quota": ("supply_caps", "cap_t_per_yr", "production quota {0} in {1}"),
    "supplier_share_cap": ("supply_caps", "max_share", "share cap {0} on supplier {1} in {2}"),
    "bloc_use_definition": ("supply_caps", "max_share", "use of the bloc protected by cap {0} in {1}"),
    "benchmark_share": ("benchmarks", "min_share",
                        "benchmark {0} in {1} (the bloc's own output >= min_share x its consumption)"),
    "stock_level_balance": ("stockpiles", "initial_t",
                            "level of stockpile {0} in {1} (initial level + buys - releases)"),
    "stock_target": ("stockpiles", "target_t", "target of stockpile {0} in {1}"),
    "stock_committed_build": ("stockpiles", "build_min_t_per_yr",
                              "committed net build of stockpile {0} in {1}"),
    "stock_terminal": ("stockpiles", "terminal_rule",
                       "terminal rule of stockpile {0} (end at least at the initial level)"),
    "stock_budget": ("stockpiles", "budget_usd", "purchase budget of stockpile {0}"),
    "floor_must_run": ("price_floors", "quantity_t_per_yr", "must-run quantity of price floor {0} in {1}"),
    "floor_offtake_within_output": ("price_floors", "facilities",
                                    "offtake of price floor {0} within the covered output in {1}, {2}"),
    "floor_offtake_volume": ("price_floors", "quantity_t_per_yr",
                             "contracted offtake volume of price floor {0} in {1}"),
}
# Variable family -> (sheet, column of its upper bound, words).
COL_MAP: dict[str, tuple[str, str, str]] = {
    "stock_buy_t_per_yr": ("stockpiles", "buy_max_t_per_yr", "most stockpile {0} may buy per year in {1}"),
    "stock_release_t_per_yr": ("stockpiles", "release_max_t_per_yr",
                               "most stockpile {0} may release per year in {1}"),
    "stock_level_t": ("stockpiles", "capacity_t", "capacity of stockpile {0} in {1}"),
    "shortfall_t_per_yr": ("demand", "quantity_t_per_yr", "demand of {0} for {1} ({2}) in {3}"),
    "flow_t_per_yr": ("transport", "max_flow_t_per_yr", "lane capacity {0} -> {1} ({2}) in {3}"),
}


# -- sheet rows -------------------------------------------------------------------

def sheet_row(case: Case, sheet: str, key: tuple) -> str:
    """'row N' of the sheet row with this key (its Excel row), a note for a row a
    scenario appended, '' if not found."""
    t = case.tables.get(sheet)
    spec = SHEETS_BY_NAME.get(sheet)
    if t is None or spec is None or not spec.key or t.empty:
        return ""
    mask = pd.Series(True, index=t.index)
    for col, v in zip(spec.key, key):
        mask &= t[col].astype(str) == str(v)
    hit = t[mask]
    if hit.empty:
        return ""
    r = hit.iloc[0]
    if ROW in hit and pd.notna(r[ROW]):
        return f"row {int(r[ROW])}"
    return "row appended by the scenario"


# -- shortfall explanations ------------------------------------------------------

@dataclass
class Candidate:
    """A limit that may hold supply back, and how to relax it in a case."""

    kind: str
    sheet: str
    key: str
    column: str
    describe: str
    value_usd: float                      # first-order value of the relaxation (ranking)
    relax: Callable[[Case], str]          # changes a case copy; returns what it did, in words


def _durations(case: Case) -> pd.Series:
    per = case.tables["periods"]
    return per.set_index("period")["duration_yr"].astype(float)


def _scale(sheet: str, key_col: str, key: str, col: str, factor: float, cap: float | None = None):
    def relax(case: Case) -> str:
        t = case.tables[sheet]
        mask = t[key_col].astype(str) == key
        old = pd.to_numeric(t.loc[mask, col], errors="coerce").astype(float)
        new = old * factor
        if cap is not None:
            new = new.clip(upper=cap)
        t[col] = t[col].astype(float)
        t.loc[mask, col] = new
        return f"{col} {_num(old.iloc[0])} -> {_num(new.iloc[0])}"
    return relax


def _num(v: float) -> str:
    return f"{v:,.3g}" if abs(v) < 10 else f"{v:,.0f}"


def capacity_candidates(tables: dict, case: Case) -> list[Candidate]:
    cv = tables.get("capacity_values")
    if cv is None or cv.empty:
        return []
    d = cv["period"].map(_durations(case)).fillna(1.0)
    cv = cv.assign(v=cv["capacity_value_usd_per_t_per_yr"].clip(lower=0.0) * STEP * cv["capacity_t_per_yr"] * d)
    out = []
    for f, g in cv.groupby("facility", sort=False):
        v = float(g["v"].sum())
        if v > 0:
            cap = float(g["capacity_t_per_yr"].iloc[0])
            out.append(Candidate("capacity", "facilities", f, "capacity_t_per_yr",
                                 f"capacity of facility {f} ({g['country'].iloc[0]}, {_num(cap)} t/yr)", v,
                                 _scale("facilities", "facility", f, "capacity_t_per_yr", 1 + STEP)))
    return out


def expansion_candidates(tables: dict, case: Case) -> list[Candidate]:
    b = tables.get("builds")
    if b is None or b.empty or "max_build_value_pv_usd_per_t_per_yr" not in b:
        return []
    opts = case.tables["expansion"].set_index("option")
    out = []
    for o, g in b.groupby("option", sort=False):
        limit = float(opts.at[o, "max_build_t_per_yr"])
        v = float(g["max_build_value_pv_usd_per_t_per_yr"].clip(lower=0.0).max()) * STEP * limit
        if v > 0:
            out.append(Candidate("expansion ceiling", "expansion", o, "max_build_t_per_yr",
                                 f"most that expansion option {o} may build ({_num(limit)} t/yr)", v,
                                 _scale("expansion", "option", o, "max_build_t_per_yr", 1 + STEP)))
    return out


def control_candidates(tables: dict, case: Case) -> list[Candidate]:
    ctl = tables.get("controls")
    if ctl is None or ctl.empty:
        return []
    rows = case.tables["export_controls"].set_index("control")
    d = ctl["period"].map(_durations(case)).fillna(1.0)
    ctl = ctl.assign(d=d, s=pd.to_numeric(ctl["shadow_value_usd_per_t"], errors="coerce").fillna(0.0).clip(lower=0.0))
    out = []
    for name, g in ctl.groupby("control", sort=False):
        r = rows.loc[name]
        kind = r["kind"]
        if kind == "ban":
            ref = r["reference_flow_t_per_yr"]
            volume = float(ref) if pd.notna(ref) else 0.0
            v = float((g["s"] * g["d"]).sum()) * STEP * max(volume, 1.0)
            if v > 0:
                out.append(Candidate("export ban", "export_controls", name, "kind",
                                     f"{r['exporter']}'s export ban {name}", v, _relax_ban(name)))
            continue
        allowed = pd.to_numeric(g["allowed_t_per_yr"], errors="coerce").fillna(0.0)
        v = float((g["s"] * STEP * allowed * g["d"]).sum())
        if v <= 0:
            continue
        if kind == "licence":
            col = "licence_approval_share"
            relax = _scale("export_controls", "control", name, col, 1 + STEP, cap=1.0)
        elif pd.notna(r["quota_t_per_yr"]):
            col = "quota_t_per_yr"
            relax = _scale("export_controls", "control", name, col, 1 + STEP)
        else:
            col = "quota_share"
            relax = _scale("export_controls", "control", name, col, 1 + STEP, cap=1.0)
        out.append(Candidate(f"export {kind}", "export_controls", name, col,
                             f"{r['exporter']}'s export {kind} {name} ({_num(float(allowed.max()))} t/yr allowed)",
                             v, relax))
    return out


def _relax_ban(name: str):
    def relax(case: Case) -> str:
        t = case.tables["export_controls"]
        mask = t["control"].astype(str) == name
        ref = t.loc[mask, "reference_flow_t_per_yr"].iloc[0]
        segments = t.loc[mask, "segments"].iloc[0] if "segments" in t.columns else ""
        if segments and segments == segments:  # an end-use denial has no tonnage to step
            case.tables["export_controls"] = t[~mask].reset_index(drop=True)
            return f"end-use denial of {segments} lifted"
        if pd.notna(ref) and float(ref) > 0:
            t.loc[mask, "kind"] = "quota"
            t["quota_t_per_yr"] = t["quota_t_per_yr"].astype(float)
            t.loc[mask, "quota_t_per_yr"] = STEP * float(ref)
            t.loc[mask, "element"] = ""
            return f"ban -> quota of {_num(STEP * float(ref))} t/yr (10 % of the reference flow)"
        case.tables["export_controls"] = t[~mask].reset_index(drop=True)
        return "ban lifted (a ban has no 10 % step and no reference flow was given)"
    return relax


def supply_cap_candidates(tables: dict, case: Case) -> list[Candidate]:
    sc = tables.get("supply_caps")
    if sc is None or sc.empty:
        return []
    d = sc["period"].map(_durations(case)).fillna(1.0)
    sc = sc.assign(v=sc["shadow_value_usd_per_t"].clip(lower=0.0) * STEP * sc["limit_t_per_yr"].abs() * d)
    out = []
    for cap, g in sc.groupby("cap", sort=False):
        v = float(g["v"].sum())
        if v <= 0:
            continue
        if g["kind"].iloc[0] == "quota":
            out.append(Candidate("production quota", "supply_caps", cap, "cap_t_per_yr",
                                 f"production quota {cap} ({g['country'].iloc[0]} {g['stage'].iloc[0] or g['product'].iloc[0]}, "
                                 f"{_num(float(g['limit_t_per_yr'].iloc[0]))} t/yr)", v,
                                 _scale("supply_caps", "cap", cap, "cap_t_per_yr", 1 + STEP)))
        else:
            out.append(Candidate("share cap", "supply_caps", cap, "max_share",
                                 f"share cap {cap} (at most {float(g['max_share'].iloc[0]):.0%} from one supplier)", v,
                                 _scale("supply_caps", "cap", cap, "max_share", 1 + STEP, cap=1.0)))
    return out


def stockpile_candidates(tables: dict, case: Case) -> list[Candidate]:
    s = tables.get("stockpiles")
    if s is None or s.empty or "target_cost_usd_per_t" not in s:
        return []
    rows = case.tables["stockpiles"].set_index("stockpile")
    s = s.assign(v=s["target_cost_usd_per_t"].fillna(0.0).clip(lower=0.0) * STEP * s["target_t"].fillna(0.0))
    out = []
    for h, g in s.groupby("stockpile", sort=False):
        v = float(g["v"].sum())
        if v <= 0:
            continue
        col = "target_t" if pd.notna(rows.at[h, "target_t"]) else "target_days_of_cover"
        out.append(Candidate("stockpile target", "stockpiles", h, col,
                             f"target of stockpile {h} ({rows.at[h, 'holder']}, {rows.at[h, 'product']})", v,
                             _scale("stockpiles", "stockpile", h, col, 1 - STEP)))
    if "build_cost_usd_per_t" in s:  # committed net builds take tonnes off the market
        d = s["period"].map(_durations(case)).fillna(1.0)
        s = s.assign(v=s["build_cost_usd_per_t"].fillna(0.0).clip(lower=0.0) * STEP * s["build_min_t_per_yr"] * d)
        for h, g in s.groupby("stockpile", sort=False):
            v = float(g["v"].sum())
            if v > 0:
                out.append(Candidate("committed stock build", "stockpiles", h, "build_min_t_per_yr",
                                     f"committed build of stockpile {h} ({rows.at[h, 'holder']}, "
                                     f"{rows.at[h, 'product']})", v,
                                     _scale("stockpiles", "stockpile", h, "build_min_t_per_yr", 1 - STEP)))
    return out


def _up_to_last_shortfall(tables: dict) -> dict:
    """The tables with limit rows kept only in periods up to the last one with a shortfall:
    a limit that binds only later cannot relieve it (one that binds earlier can, through
    a stock built up before the crisis), so its value must not rank it."""
    short, per = tables.get("shortfall"), tables.get("periods")
    if short is None or short.empty or per is None:
        return tables
    start = per.set_index("period")["start_year"]
    last = float(start.reindex(short["period"].unique()).max())
    keep = set(start.index[start <= last])
    out = dict(tables)
    for name in ("capacity_values", "controls", "supply_caps", "stockpiles"):
        t = out.get(name)
        if t is not None and not t.empty and "period" in t:
            out[name] = t[t["period"].isin(keep)]
    return out


def candidates(tables: dict, case: Case) -> list[Candidate]:
    """Every limit binding up to the last period with a shortfall with a positive
    first-order value there, most valuable first."""
    tables = _up_to_last_shortfall(tables)
    found = (capacity_candidates(tables, case) + expansion_candidates(tables, case)
             + control_candidates(tables, case) + supply_cap_candidates(tables, case)
             + stockpile_candidates(tables, case))
    # A ban cannot be sized (no volume at the margin), so bans that bind come first.
    return sorted(found, key=lambda c: (c.kind != "export ban", -c.value_usd))


def _unserved(tables: dict) -> pd.Series:
    s = tables.get("shortfall_horizon")
    if s is None or s.empty:
        return pd.Series(dtype=float)
    return s.set_index(["country", "product", "segment"])["unserved_t"]


EXPLAIN_COLS = ["country", "product", "segment", "unserved_t", "rank", "limit", "kind", "sheet", "sheet_row",
                "key", "column", "relaxation", "shortfall_reduction_t", "shortfall_reduction_share",
                "total_reduction_t", "first_order_value_usd", "objective_change_usd", "text"]


class _Trials:
    """Solves a relaxed copy of the case: on one kept model, changed in place and started
    warm (model.runs.resolve), when the relaxation only changes numbers it handles (a
    capacity, a production quota), else by a rebuild; either way only the tables an
    explanation reads are extracted. (tables, objective) or None when the relaxed case
    has no optimal plan."""

    def __init__(self, case: Case, scenario: str | None, kept: tuple | None = None):
        self.case, self.scenario, self.resolver, self.kept = case, scenario, None, kept

    def solve(self, trial: Case) -> tuple[dict, float] | None:
        if self.resolver is None:  # the run's own solved model when it kept it
            self.resolver = Resolver(self.case, self.kept)
        why, data = self.resolver.check(trial)
        if why is None:
            sol, tables, _ = self.resolver.resolve(trial, data, reader=shortfall_tables)
            if sol.optimal:
                return tables, sol.objective
        return _lean_rebuild(trial)


def _lean_rebuild(case: Case) -> tuple[dict, float] | None:
    """Build and solve a case, reading only the tables an explanation needs (shortfall)."""
    try:
        built, h, cols, rows, stats = build_and_load(build_model_data(case), case.settings)
        sol = run_highs(h, cols, rows, stats, case.settings)
        return (shortfall_tables(built, sol), sol.objective) if sol.optimal else None
    finally:
        gc.unfreeze()


def explain_shortfalls(result, top: int = TOP) -> pd.DataFrame:
    """For each shortfall row, the limits whose 10 % relaxation cuts it most (one
    re-solve per candidate, `top` candidates), in words."""
    tables, case = result.tables, result.case
    base = _unserved(tables)
    if base.empty:
        return pd.DataFrame(columns=EXPLAIN_COLS)
    tried = []
    trials = _Trials(case, result.scenario, getattr(result, "kept", None))
    for cand in candidates(tables, case)[:top]:
        trial = case.copy()
        change = cand.relax(trial)
        solved = trials.solve(trial)
        if solved is None:
            continue
        after_tables, objective = solved
        after = _unserved(after_tables).reindex(base.index).fillna(0.0)
        tried.append((cand, change, base - after, float(base.sum() - _unserved(after_tables).sum()),
                      objective - result.solve.objective))
    rows = []
    for key, unserved in base.sort_values(ascending=False, kind="stable").items():
        hits = sorted(((c, ch, float(red[key]), tot, dobj) for c, ch, red, tot, dobj in tried
                       if red[key] > 1e-6 * max(1.0, unserved)), key=lambda x: -x[2])
        text = _words(key, unserved, tables, case, hits, len(tried))
        if not hits:
            rows.append(list(key) + [unserved, 0, "", "", "", "", "", "", "", 0.0, 0.0, np.nan, np.nan, np.nan, text])
        for rank, (c, change, red, tot, dobj) in enumerate(hits, 1):
            rows.append(list(key) + [unserved, rank, c.describe, c.kind, c.sheet, sheet_row(case, c.sheet, (c.key,)),
                                     c.key, c.column, change, red, red / unserved, tot, c.value_usd, dobj, text])
    return pd.DataFrame(rows, columns=EXPLAIN_COLS)


def _words(key: tuple, unserved: float, tables: dict, case: Case, hits: list, n_tried: int) -> str:
    country, product, segment = key
    short = tables["shortfall_horizon"].set_index(["country", "product", "segment"]).loc[key]
    share, worst = float(short["unserved_share"]), float(short["worst_period_share"])
    head = (f"{country} is short of {unserved:,.0f} t of {product} for {segment} over the horizon "
            f"({share:.1%} of its demand" + (f"; worst in {short['worst_period']}: {worst:.1%} of that period's "
                                             "demand)." if abs(worst - share) > 1e-9 else ")."))
    if n_tried == 0:
        return head + (" No capacity, control, quota or stockpile limit has a shadow value: at the margin, "
                       "supplying it costs more than its shortfall penalty, or a lane or recipe limits it.")
    if not hits:
        return head + (f" None of the {n_tried} most valuable limits, relaxed by 10 %, reduces it: supplying it "
                       "costs more than its shortfall penalty at the margin, or it is held back by a limit "
                       "not tested here (a lane, a recipe, another limit).")
    parts = []
    for c, change, red, _, _ in hits:
        where = sheet_row(case, c.sheet, (c.key,))
        parts.append(f"{c.describe} [{c.sheet} {where or 'sheet'}: {change}] cuts it by {red:,.0f} t "
                     f"({red / unserved:.1%})")
    rest = n_tried - len(hits)
    tail = f" The other {rest} limit{'s' if rest != 1 else ''} tested do{'' if rest != 1 else 'es'} not reduce it." \
        if rest else ""
    return head + " What binds, by how much the shortfall falls when each is relaxed by 10 %: " + \
        "; ".join(parts) + "." + tail


# -- infeasibility ------------------------------------------------------------------

CONFLICT_COLS = ["method", "kind", "family", "index", "sheet", "sheet_row", "key", "column", "what", "violation"]


def _index(obj) -> tuple:
    idx = obj.index()
    return idx if isinstance(idx, tuple) else (idx,)


def describe_row(con, built, case: Case) -> dict:
    """A constraint row as sheet, key, row and words."""
    fam = con.parent_component().local_name
    idx = _index(con)
    if fam == "product_balance":
        c, p, t = built.module("balance").keys.iloc[idx[0]]
        return {"family": fam, "index": f"{c}, {p}, {t}", "sheet": "", "sheet_row": "", "key": "",
                "column": "", "what": f"balance of {p} in {c}, {t} (supply = use + demand served)"}
    sheet, col, words = ROW_MAP.get(fam, ("", "", fam + " {0}"))
    if fam == "stock_target":
        rows = case.tables["stockpiles"].set_index("stockpile")
        if idx[0] in rows.index and pd.isna(rows.at[idx[0], "target_t"]):
            col = "target_days_of_cover"
    return _entry(fam, idx, sheet, col, words, case)


def describe_col(var, built, case: Case) -> dict | None:
    """A variable's bound as sheet, key, row and words (None for plain non-negativity)."""
    fam = var.parent_component().local_name
    idx = _index(var)
    if fam == "flow_t_per_yr":
        lane = built.module("trade").lanes.iloc[idx[0]]
        idx = (lane["from_country"], lane["to_country"], lane["product"], lane["period"])
        entry = _entry(fam, idx, *COL_MAP[fam], case, key=idx[:3])
        return entry
    if fam not in COL_MAP:
        return None
    return _entry(fam, idx, *COL_MAP[fam], case)


def _entry(fam: str, idx: tuple, sheet: str, col: str, words: str, case: Case, key: tuple | None = None) -> dict:
    spec = SHEETS_BY_NAME.get(sheet)
    nkey = len(spec.key) if spec and spec.key else 1
    key = key if key is not None else idx[:nkey]
    try:
        what = words.format(*idx)
    except IndexError:
        what = f"{words} {idx}"
    return {"family": fam, "index": ", ".join(map(str, idx)), "sheet": sheet,
            "sheet_row": sheet_row(case, sheet, key) if sheet else "", "key": ", ".join(map(str, key)),
            "column": col, "what": what}


def _iis(h: highspy.Highs) -> tuple[list[int], list[int]] | None:
    """Rows and bounded columns of HiGHS's irreducible infeasible subset, or None."""
    if not hasattr(h, "getIis") or not hasattr(highspy, "IisStrategy"):
        return None
    try:
        strategy = int(highspy.IisStrategy.kIisStrategyFromLp) | int(highspy.IisStrategy.kIisStrategyIrreducible)
        h.setOptionValue("iis_strategy", strategy)
        status, iis = h.getIis()
    except Exception:  # noqa: BLE001 - an IIS is a diagnosis; fall back to the elastic solve
        return None
    if status != highspy.HighsStatus.kOk or not iis.valid_ or (not len(iis.row_index_) and not len(iis.col_index_)):
        return None
    upper = {int(highspy.IisBoundStatus.kIisBoundStatusUpper), int(highspy.IisBoundStatus.kIisBoundStatusBoxed)}
    cols = [int(j) for j, b in zip(iis.col_index_, iis.col_bound_) if int(b) in upper]
    return [int(i) for i in iis.row_index_], cols


def elastic(lp) -> tuple[list[int], list[int], dict[int, float], dict[int, float]]:
    """Minimise total violation: each row gets slack columns (+ below, - above) and each
    finite upper bound an excess column, all costing 1. Returns rows and columns that
    need slack and their violations."""
    A = sp.csc_array(lp.A)
    m, n = A.shape
    lo, up = np.asarray(lp.row_lower, float), np.asarray(lp.row_upper, float)
    has_lo, has_up = np.flatnonzero(np.isfinite(lo)), np.flatnonzero(np.isfinite(up))
    bounded = np.flatnonzero(np.isfinite(lp.col_upper))
    P = sp.csc_array((np.ones(len(has_lo)), (has_lo, np.arange(len(has_lo)))), shape=(m, len(has_lo)))
    N = sp.csc_array((-np.ones(len(has_up)), (has_up, np.arange(len(has_up)))), shape=(m, len(has_up)))
    k = len(bounded)
    # Bound rows: x_j - e_j <= upper_j.
    Xb = sp.csc_array((np.ones(k), (np.arange(k), bounded)), shape=(k, n))
    Eb = sp.csc_array((-np.ones(k), (np.arange(k), np.arange(k))), shape=(k, k))
    top = sp.hstack([A, P, N, sp.csc_array((m, k))])
    bottom = sp.hstack([Xb, sp.csc_array((k, len(has_lo) + len(has_up))), Eb])
    M = sp.csc_array(sp.vstack([top, bottom]))
    n_all = M.shape[1]
    cost = np.concatenate([np.zeros(n), np.ones(n_all - n)])
    col_lo = np.concatenate([lp.col_lower, np.zeros(n_all - n)])
    col_up = np.concatenate([np.where(np.isfinite(lp.col_upper), np.inf, lp.col_upper), np.full(n_all - n, np.inf)])
    row_lo = np.concatenate([lo, np.full(k, -np.inf)])
    row_up = np.concatenate([up, np.asarray(lp.col_upper, float)[bounded]])
    hl = highs_lp(M, cost, col_lo, col_up, row_lo, row_up)
    h = quiet_highs()
    if pass_model(h, hl) is not None:
        return [], [], {}, {}
    h.run()
    if status_name(h) != "kOptimal":  # the relaxation always has a plan: only a limit stops it
        LOG.warning("the elastic relaxation did not solve to optimality (%s): no conflict is named",
                    h.modelStatusToString(h.getModelStatus()))
        return [], [], {}, {}
    x = np.asarray(h.getSolution().col_value, float)
    p = x[n:n + len(has_lo)]
    q = x[n + len(has_lo):n + len(has_lo) + len(has_up)]
    e = x[n + len(has_lo) + len(has_up):]
    viol: dict[int, float] = {}
    for rows, vals in ((has_lo, p), (has_up, q)):
        for i, v in zip(rows, vals):
            if v > 1e-7:
                viol[int(i)] = viol.get(int(i), 0.0) + float(v)
    cviol = {int(j): float(v) for j, v in zip(bounded, e) if v > 1e-7}
    return sorted(viol), sorted(cviol), viol, cviol


def diagnose_infeasible(case: Case, use_iis: bool = True) -> pd.DataFrame:
    """The conflicting constraints of an infeasible case, mapped to sheet rows (empty if
    the case solves). method: 'IIS' (irreducible infeasible subset from HiGHS) or
    'elastic' (rows that need slack in the least-violation relaxation)."""
    built = build_model(build_model_data(case))
    h, cols, rows, _ = to_highs(built.model, case.settings)
    if h.getNumCol() != len(cols):  # refused at loading: no conflict can be named
        return pd.DataFrame(columns=CONFLICT_COLS)
    h.run()
    status = status_name(h)
    if status not in ("kInfeasible", "kUnboundedOrInfeasible"):
        return pd.DataFrame(columns=CONFLICT_COLS)
    found = _iis(h) if use_iis else None
    viol_r: dict[int, float] = {}
    viol_c: dict[int, float] = {}
    if found is not None:
        method, (row_ids, col_ids) = "IIS", found
    else:
        method = "elastic"
        row_ids, col_ids, viol_r, viol_c = elastic(compile_lp(built.model))
    out = []
    for i in row_ids:
        out.append({"method": method, "kind": "constraint", **describe_row(rows[i], built, case),
                    "violation": viol_r.get(i, np.nan)})
    for j in col_ids:
        d = describe_col(cols[j], built, case)
        if d is not None:
            out.append({"method": method, "kind": "bound", **d, "violation": viol_c.get(j, np.nan)})
    return pd.DataFrame(out, columns=CONFLICT_COLS)


def conflict_lines(table: pd.DataFrame) -> list[str]:
    """The conflict in words, one line per constraint or bound."""
    if table.empty:
        return []
    method = table["method"].iloc[0]
    head = ("conflicting constraints (an irreducible infeasible subset from HiGHS: drop or relax any "
            "one and the rest can hold):" if method == "IIS" else
            "conflicting constraints (an elastic relaxation: the rows and bounds that must give way "
            "for a plan to exist):")
    lines = [head]
    for r in table.to_dict("records"):
        where = f"{r['sheet']} {r['sheet_row'] or ''}".strip() if r["sheet"] else "model balance"
        col = f", column {r['column']}" if r["column"] else ""
        lines.append(f"  {where}{col}: {r['what']}")
    return lines
