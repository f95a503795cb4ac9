"""Result tables from a solved model. Reports read these tables only, never the model."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from model.analysis.margins import reference_margins
from model.analysis.who_pays import coercer_table, transfers_table, who_pays_table
from model.lp.build import BuiltModel
from model.lp.core import CALIBRATION, PENALTY, RESOURCE, TRANSFER
from model.lp.solve import SolveResult


def cost_table(built: BuiltModel, sol: SolveResult) -> pd.DataFrame:
    """Money by component, category and period: undiscounted USD and present value."""
    per = built.data.periods
    parts = []
    for term in built.registry.costs:
        rate = np.asarray(term.coefs, float) * sol.values(term.vars)
        df = pd.DataFrame({"period": term.periods, "rate": rate})
        g = df.groupby("period", sort=False)["rate"].sum().reset_index()
        g["component"] = term.component
        g["category"] = term.category
        g["in_objective"] = term.in_objective
        parts.append(g)
    cols = ["component", "category", "in_objective", "period", "cost_usd", "pv_usd"]
    if not parts:
        return pd.DataFrame(columns=cols)
    out = pd.concat(parts).groupby(["component", "category", "in_objective", "period"],
                                   sort=False)["rate"].sum().reset_index()
    out["cost_usd"] = out["rate"] * out["period"].map(per["duration_yr"]).to_numpy()
    out["pv_usd"] = out["cost_usd"] * out["period"].map(per["pv_factor"]).to_numpy()
    return out[cols]


SHORT_KEY = ["country", "product", "segment"]
SHORT_TOL_T = 1e-9  # tonnes: less is no shortfall


def _demand_tonnes(demand: pd.DataFrame, periods: pd.DataFrame) -> pd.DataFrame:
    return demand.assign(demand_t=demand["demand_t_per_yr"] * demand["period"].map(periods["duration_yr"]).to_numpy())


def shortfall_table(demand: pd.DataFrame, periods: pd.DataFrame) -> pd.DataFrame:
    """Unserved demand by country, product, segment and period (rows with some): tonnes in
    the period and the share of that period's demand, the worst share first. A quarter-long
    cut reads as what it is in its quarter, not diluted over the horizon."""
    d = _demand_tonnes(demand, periods)
    out = d.groupby(SHORT_KEY + ["period"], as_index=False, sort=False).agg(
        demand_t=("demand_t", "sum"), unserved_t=("unserved_t", "sum"),
        penalty_value_usd=("penalty_value_usd", "sum"))
    out["unserved_share"] = np.where(out["demand_t"] > 0, out["unserved_t"] / out["demand_t"], 0.0)
    out = out[out["unserved_t"] > SHORT_TOL_T]
    start = out["period"].map(periods["start_year"])
    out = out.assign(_start=start).sort_values(["unserved_share", "_start", "country", "product", "segment"],
                                               ascending=[False, True, True, True, True], kind="mergesort")
    return out[SHORT_KEY + ["period", "demand_t", "unserved_t", "unserved_share", "penalty_value_usd"]
               ].reset_index(drop=True)


def shortfall_horizon_table(demand: pd.DataFrame, periods: pd.DataFrame, by_period: pd.DataFrame) -> pd.DataFrame:
    """Per country, product and segment short in some period: the worst period (largest
    share of that period's demand; the earlier on a tie) and its share and tonnes, beside
    the totals over the horizon. Worst share first."""
    cols = SHORT_KEY + ["worst_period", "worst_period_unserved_t", "worst_period_share",
                        "demand_t", "unserved_t", "unserved_share", "penalty_value_usd"]
    if by_period.empty:
        return pd.DataFrame(columns=cols)
    worst = by_period.drop_duplicates(SHORT_KEY).rename(columns={
        "period": "worst_period", "unserved_t": "worst_period_unserved_t", "unserved_share": "worst_period_share"})
    total = _demand_tonnes(demand, periods).groupby(SHORT_KEY, as_index=False).agg(
        demand_t=("demand_t", "sum"), unserved_t=("unserved_t", "sum"), penalty_value_usd=("penalty_value_usd", "sum"))
    out = worst[SHORT_KEY + ["worst_period", "worst_period_unserved_t", "worst_period_share"]].merge(
        total, on=SHORT_KEY, how="left")
    out["unserved_share"] = np.where(out["demand_t"] > 0, out["unserved_t"] / out["demand_t"], 0.0)
    return out[cols].reset_index(drop=True)


GLOSSARY = {
    "resource cost": "the real resources the plan uses (mining, processing, freight, disposal, capital, stock "
                     "holding) at model costs. It falls when demand goes unserved (less is made), so never read "
                     "it alone in a crisis: read the unserved tonnes by period and their penalty value beside it.",
    "transfers": "money that changes hands without using resources: tariffs and duties, price-floor payments, "
                 "stockpile purchases at the reference price. In the objective only where it steers decisions.",
    "penalty value": "unserved tonnes x their shortfall penalty (USD/t): what the case says a missing tonne costs "
                     "its buyer. Not a resource cost; it makes the solver serve demand worth more than its cost. "
                     "It also holds the priced gap of a missed benchmark or offtake (component benchmark_gap, "
                     "floor_offtake_unmet), where the case prices one.",
    "calibration terms": "per-facility adjustments (below and above observed output) that make the base case "
                         "reproduce observed production. A modelling device: no one pays them.",
    "objective": "what the solver minimises: resource cost + transfers in the objective + penalty value + "
                 "calibration terms, all in present value at the case's discount rate.",
}


def objective_rows(costs: pd.DataFrame, objective: float) -> list[tuple[str, str, object, str]]:
    """How the objective adds up, category by category (present value)."""
    inside = costs[costs["in_objective"].astype(bool)].groupby("category")["pv_usd"].sum()
    parts = [("resource cost", RESOURCE), ("transfers in the objective", TRANSFER),
             ("penalty value (unserved demand, missed targets)", PENALTY), ("calibration terms", CALIBRATION)]
    rows = [("how the objective adds up", name + " (present value)", float(inside.get(cat, 0.0)), "USD")
            for name, cat in parts]
    rows.append(("how the objective adds up", "= objective (present value)", float(objective), "USD"))
    outside = costs[~costs["in_objective"].astype(bool)]["pv_usd"].sum()
    if abs(outside) > 0:
        rows.append(("how the objective adds up", "transfers outside the objective (paid after the solve)",
                     float(outside), "USD"))
    return rows


def summary_table(costs: pd.DataFrame, demand: pd.DataFrame, sol: SolveResult,
                  built: BuiltModel) -> pd.DataFrame:
    """Headline figures: status, resource cost by component; unserved tonnes and their
    penalty value and transfers on their own lines, never in the resource total."""
    rows: list[tuple[str, str, object, str]] = [
        ("status", "solver status", sol.status, ""),
        ("status", "solver message", sol.message, ""),
        ("status", "objective (present value, incl. penalties)", sol.objective, "USD"),
    ]
    by = costs.groupby(["category", "component"], sort=False)[["cost_usd", "pv_usd"]].sum()
    cats = [(RESOURCE, "resource cost"), (TRANSFER, "transfers"), (PENALTY, "unserved demand")]
    if CALIBRATION in set(costs["category"]):
        cats.append((CALIBRATION, "calibration terms"))
    for cat, label in cats:
        part = by.loc[cat] if cat in by.index.get_level_values(0) else None
        if part is not None:
            for comp, rec in part.iterrows():
                rows.append((label, f"{comp} (present value)", float(rec["pv_usd"]), "USD"))
                rows.append((label, f"{comp} (undiscounted)", float(rec["cost_usd"]), "USD"))
        total_pv = float(part["pv_usd"].sum()) if part is not None else 0.0
        total = float(part["cost_usd"].sum()) if part is not None else 0.0
        rows.append((label, "total (present value)", total_pv, "USD"))
        rows.append((label, "total (undiscounted)", total, "USD"))
    unserved = float(demand["unserved_t"].sum()) if not demand.empty else 0.0
    total_dem = float((demand["demand_t_per_yr"] * demand["period"].map(
        built.data.periods["duration_yr"])).sum()) if not demand.empty else 0.0
    rows.append(("unserved demand", "unserved tonnes", unserved, "t"))
    rows.append(("unserved demand", "share of demand unserved",
                 unserved / total_dem if total_dem else 0.0, "share"))
    rows += objective_rows(costs, sol.objective)
    rows += [("glossary", k, v, "") for k, v in GLOSSARY.items()]
    rows.append(("notes", "prices", "Model prices are balance duals divided by the period weight "
                 "(undiscounted USD/t), tagged cost, penalty (rationing) or disposal (glut). Prices "
                 "of joint products and of nodes linked by parallel lanes are often not unique; "
                 "read them as one valid set of marginal values, not a forecast.", ""))
    st = sol.stats
    if "canonical" in st:  # which plan the tables report (model.lp.canonical)
        rows.append(("solve statistics", "plan reported", st["canonical"], ""))
    for key, unit in (("rows", ""), ("columns", ""), ("nonzeros", ""), ("iterations", ""),
                      ("compile_s", "s"), ("pass_s", "s"), ("solve_s", "s"), ("load_s", "s")):
        if key in st:
            rows.append(("solve statistics", key, st[key], unit))
    return pd.DataFrame(rows, columns=["section", "item", "value", "unit"])


def chain_table(data) -> pd.DataFrame:
    """Every recipe line with its process and product stages, the product's unit and its
    rare-earth content in t REO per t (the sum of its element contents; 1 for a t_REO,
    t_metal or t_magnet product without element detail, 0 for other units), so content
    tracing and the Sankey read result tables only."""
    rec = data.recipes[["process", "product", "coefficient"]].copy()
    rec["process_stage"] = rec["process"].map(data.tables["processes"].set_index("process")["stage"])
    rec["product_stage"] = rec["product"].map(data.products["stage"])
    rec["unit"] = rec["product"].map(data.products["unit"])
    total = data.content.sum(axis=1) if len(data.content.columns) else pd.Series(dtype=float)
    content = rec["product"].map(total).fillna(0.0).to_numpy(float)
    default = rec["unit"].isin(["t_REO", "t_metal", "t_magnet"]).to_numpy(float)
    rec["re_content_t_per_t"] = np.where(content > 0, content, default)
    return rec[["process", "process_stage", "product", "product_stage", "unit", "coefficient",
                "re_content_t_per_t"]]


def extract_tables(built: BuiltModel, sol: SolveResult,
                   first: Callable[[dict[str, pd.DataFrame]], None] | None = None) -> dict[str, pd.DataFrame]:
    """Every result table of an optimal solve. first: called with the modules', cost,
    shortfall, period and chain tables before those derived from them (who pays,
    transfers, margins, summary) are made: a single run's PNG helper draws its figures
    from these meanwhile (model.runs.single)."""
    if not sol.optimal:
        raise ValueError(f"no results: the solve was not optimal ({sol.message})")
    tables: dict[str, pd.DataFrame] = {}
    balance = None
    for mod in built.modules:
        if mod.name == "balance":
            balance = mod
            continue
        tables.update(mod.extract(sol, built.data))
    tol = float(built.data.settings.get("price_tolerance_usd_per_t", 1e-3))
    tables.update(balance.extract(sol, built.data, tables, tol))
    for mod in built.modules:  # tables that need prices (floor payments, landed costs, cover)
        if hasattr(mod, "post_extract"):
            tables.update(mod.post_extract(tables, built.data))
    costs = cost_table(built, sol)
    extra = tables.pop("post_solve_costs", None)  # money known only from prices (floor payments)
    if extra is not None and len(extra):
        costs = pd.concat([costs, extra[costs.columns]], ignore_index=True)
    dem = tables["demand"]
    tables["shortfall"] = shortfall_table(dem, built.data.periods)
    tables["shortfall_horizon"] = shortfall_horizon_table(dem, built.data.periods, tables["shortfall"])
    tables["costs"] = costs
    tables["periods"] = built.data.periods.reset_index()[["period", "start_year", "duration_yr", "discount_factor",
                                                          "weight", "pv_factor"]]
    content = built.data.content.reset_index()
    tables["content"] = content
    tables["chain"] = chain_table(built.data)  # recipes as run: tracing reads tables only
    if first is not None:
        first(dict(tables))
    tables["who_pays"] = who_pays_table(tables)
    tables["transfers"] = transfers_table(tables)
    ledger = coercer_table(tables)
    if not ledger.empty:
        tables["coercer"] = ledger
    tables["reference_margins"] = reference_margins(built.data.tables, tables["production"], built.data.period_list,
                                                    tables["flows"])
    tables = {"summary": summary_table(costs, dem, sol, built), **tables}
    return tables
