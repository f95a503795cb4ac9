"""Shared helpers: write a tiny case, solve it, and check the solution against every
constraint family using the result tables alone."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from model.case.casewriter import write_case  # noqa: E402
from model.runs.pipeline import run_case  # noqa: E402

TOL = 1e-6


def solve(tmp_path: Path, sheets: dict, settings: dict | None = None, scenario: str | None = None,
          name: str = "case.xlsx"):
    """Write the sheets to a workbook, run it, check feasibility, return the RunResult."""
    settings = {"base_year": 2025, **(settings or {})}
    path = write_case(tmp_path / name, sheets, settings, overwrite=True)
    result = run_case(str(path), scenario)
    assert result.optimal, result.solve.message
    assert_feasible(result)
    return result


def one_period(**extra) -> list[dict]:
    return [{"period": "2025", "start_year": 2025, "duration_yr": 1, **extra}]


def value(table: pd.DataFrame, col: str, **where) -> float:
    """Sum of `col` over rows matching every col=value in `where` (0 if none)."""
    mask = pd.Series(True, index=table.index)
    for k, v in where.items():
        mask &= table[k] == v
    return float(table.loc[mask, col].sum())


def assert_feasible(result) -> None:
    """Every shared constraint family holds in the reported solution (from tables
    only): product_balance at every node (production, new capacity, trade, disposal,
    shortfall, stockpile buys and releases, floor offtakes), capacity_limit per facility
    and period, expansion_capacity_limit, lane bounds, 0 <= shortfall <= demand,
    non-negativity. Module tests add checks of their own constraints."""
    t = result.tables
    case = result.case.tables
    recipes = case["recipes"][["process", "product", "coefficient"]]
    prod = t["production"]
    flows = t["flows"]
    dem = t["demand"]
    disp = t["disposal"]
    new = t.get("expansion_capacity")
    for name, df, col in (("production", prod, "activity_t_per_yr"), ("flows", flows, "flow_t_per_yr"),
                          ("demand", dem, "unserved_t_per_yr"), ("disposal", disp, "disposal_t_per_yr")):
        assert (df[col] >= -TOL).all(), f"negative {col} in {name}"
    # capacity_limit
    used = prod.groupby(["facility", "period"]).agg(u=("activity_t_per_yr", "sum"), c=("capacity_t_per_yr", "first"))
    assert (used["u"] <= used["c"] + TOL).all(), "capacity_limit broken"
    if new is not None:
        assert (new["activity_t_per_yr"] >= -TOL).all()
        assert (new["activity_t_per_yr"] <= new["capacity_online_t_per_yr"] + TOL).all(), \
            "expansion_capacity_limit broken"
    # lane bounds (origin classes of one lane share its capacity)
    lane = flows.assign(cap=pd.to_numeric(flows["max_flow_t_per_yr"], errors="coerce")).groupby(
        ["from_country", "to_country", "product", "period"]).agg(f=("flow_t_per_yr", "sum"), cap=("cap", "first"))
    assert (lane["cap"].isna() | (lane["f"] <= lane["cap"] + TOL)).all(), "lane capacity broken"
    # shortfall bounds
    assert (dem["unserved_t_per_yr"] <= dem["demand_t_per_yr"] + TOL).all()
    # product_balance: supply - use == 0 at every node (origin classes summed)
    key = ["country", "product", "period"]
    active = prod if new is None else pd.concat([prod, new], ignore_index=True)
    made = active.merge(recipes, on="process")
    made["q"] = made["activity_t_per_yr"] * made["coefficient"]
    parts = [made[key + ["q"]]]
    if not flows.empty:
        parts.append(flows.rename(columns={"to_country": "country"}).assign(q=flows["flow_t_per_yr"])[key + ["q"]])
        parts.append(flows.rename(columns={"from_country": "country"}).assign(q=-flows["flow_t_per_yr"])[key + ["q"]])
    if not disp.empty:
        parts.append(disp.assign(q=-disp["disposal_t_per_yr"])[key + ["q"]])
    parts.append(dem.assign(q=-dem["served_t_per_yr"])[key + ["q"]])
    stock = t.get("stockpiles")
    if stock is not None:
        s = stock.rename(columns={"holder": "country"})
        parts.append(s.assign(q=s["release_t_per_yr"] - s["buy_t_per_yr"])[key + ["q"]])
    parts += offtake_parts(t.get("price_floors"), case)
    scrap = t.get("scrap")
    if scrap is not None:  # scrap arising from products in use (end of life, legacy stock)
        parts.append(scrap.rename(columns={"scrap_product": "product"}).assign(
            q=scrap["collected_t_per_yr"])[key + ["q"]])
    net = pd.concat(parts).groupby(key)["q"].sum()
    bad = net[net.abs() > 1e-6 * max(1.0, float(net.abs().max()))]
    assert bad.empty, f"product_balance broken at {bad.to_dict()}"


def offtake_parts(floors: pd.DataFrame | None, case: dict) -> list[pd.DataFrame]:
    """A floor's offtake leaves the covered facilities' country node (one country per
    floor in these tests)."""
    if floors is None:
        return []
    pf = case["price_floors"].set_index("floor")
    fac_country = case["facilities"].set_index("facility")["country"]
    parts = []
    for x in floors[floors["mechanism"] == "offtake"].to_dict("records"):
        g = pf.loc[x["floor"]]
        countries = {fac_country[f] for f in g["facilities"].split(",") if f}
        assert len(countries) == 1, "the check handles one covered country"
        parts.append(pd.DataFrame({"country": [countries.pop()], "product": [g["product"]],
                                   "period": [x["period"]], "q": [-x["offtake_t_per_yr"]]}))
    return parts


@pytest.fixture
def tmp_case(tmp_path):
    def _solve(sheets, settings=None, scenario=None):
        return solve(tmp_path, sheets, settings, scenario)
    return _solve
