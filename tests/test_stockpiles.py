"""Hand-solved stockpile cases: a buy in a normal year drawn in a crisis quarter, a
days-of-cover target of magnet demand, a binding budget, the terminal rule, usable
cover; and validation of bad stockpile rows. `solve_reserves` checks every core
constraint and every stockpile and price-floor constraint from the result tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import rows
from conftest import assert_feasible, value
from rows import fac, fp, proc, product, rec
from model.case.casewriter import write_case
from model.case.schema import InputError, Problem
from model.runs.pipeline import load_case, run_case

APPROX = dict(rel=1e-7, abs=1e-6)
TOL = 1e-6


def dem(country, product_, qty, period="2025", penalty=1000.0):
    """A demand row with these tests' default penalty of 1000 USD/t."""
    return rows.dem(country, product_, qty, period, penalty=penalty)


# --- solve and check ------------------------------------------------------------------

def solve_reserves(tmp_path: Path, sheets: dict, name: str = "case.xlsx", scenario: str | None = None):
    """Write, run, assert optimal and check every constraint family from the tables."""
    path = write_case(tmp_path / name, sheets, {"base_year": 2025}, overwrite=True)
    result = run_case(str(path), scenario)
    assert result.optimal, result.solve.message
    assert_feasible_with_reserves(result)
    return result


def assert_feasible_with_reserves(result) -> None:
    """The shared families (conftest.assert_feasible: product_balance with stock buys,
    releases and offtakes, capacity_limit, lane and shortfall bounds) plus
    stock_level_balance, level, buy and release bounds, stock_target, stock_terminal,
    stock_budget, floor_must_run and the offtake constraints."""
    assert_feasible(result)
    t, case = result.tables, result.case.tables
    if t.get("stockpiles") is not None:
        _check_stock(t["stockpiles"], case["stockpiles"].set_index("stockpile"))
    if t.get("price_floors") is not None:
        _check_floors(t["price_floors"], case, t["production"], case["recipes"][["process", "product", "coefficient"]])


def _check_stock(stock: pd.DataFrame, rows: pd.DataFrame) -> None:
    for h, g in stock.groupby("stockpile", sort=False):
        r = rows.loc[h]
        start = float(r["initial_t"]) if r["initial_t"] == r["initial_t"] else 0.0
        for x in g.to_dict("records"):
            # stock_level_balance: L[t] = L[t-1] + d (buy - release + inflow)
            assert x["level_start_t"] == pytest.approx(start, abs=1e-6)
            assert x["level_t"] == pytest.approx(
                start + x["duration_yr"] * (x["buy_t_per_yr"] - x["release_t_per_yr"] + x["inflow_t_per_yr"]), abs=1e-6)
            assert x["level_t"] >= -TOL
            for col, lim in (("level_t", "capacity_t"), ("buy_t_per_yr", "buy_max_t_per_yr"),
                             ("release_t_per_yr", "release_max_t_per_yr")):
                if r[lim] == r[lim]:
                    assert x[col] <= r[lim] + TOL, f"{col} above {lim}"
            if x["build_min_t_per_yr"] > 0:  # stock_committed_build
                assert x["buy_t_per_yr"] - x["release_t_per_yr"] >= x["build_min_t_per_yr"] - TOL
            if x["target_enforced"]:  # stock_target
                assert x["level_t"] >= x["target_t"] - TOL
                assert x["regime"] == "normal"
            start = x["level_t"]
        if r["terminal_rule"] == "keep":  # stock_terminal
            assert start >= float(r["initial_t"] if r["initial_t"] == r["initial_t"] else 0.0) - TOL
        if r["budget_usd"] == r["budget_usd"]:  # stock_budget
            assert g["purchase_value_usd"].sum() <= r["budget_usd"] + 1e-6


def _check_floors(floors: pd.DataFrame, case: dict, prod: pd.DataFrame, recipes: pd.DataFrame) -> None:
    """floor_must_run and the offtake rows (their balance terms are in assert_feasible)."""
    pf = case["price_floors"].set_index("floor")
    for x in floors.to_dict("records"):
        g = pf.loc[x["floor"]]
        covered = [f for f in g["facilities"].split(",") if f]
        made = prod[prod["facility"].isin(covered) & (prod["period"] == x["period"])].merge(
            recipes[(recipes["product"] == g["product"]) & (recipes["coefficient"] > 0)], on="process")
        out = float((made["activity_t_per_yr"] * made["coefficient"]).sum())
        assert x["covered_output_t_per_yr"] == pytest.approx(out, abs=1e-6)
        if x["mechanism"] == "must_run":
            assert out >= g["quantity_t_per_yr"] - TOL
        if x["mechanism"] == "offtake":
            assert x["offtake_t_per_yr"] <= min(out, g["quantity_t_per_yr"]) + TOL


# --- cases ----------------------------------------------------------------------------

def crisis_case(**stock) -> dict:
    """B makes ox at 10 (100 t/yr) until its plant stops after 2025; A buys it over a
    lane at 5 and uses 80 t/yr; 2026Q1 is a crisis quarter with no supply at all."""
    case = {
        "periods": [{"period": "2025", "start_year": 2025, "duration_yr": 1},
                    {"period": "2026Q1", "start_year": 2026, "duration_yr": 0.25, "regime": "crisis"}],
        "countries": [{"country": "A"}, {"country": "B"}],
        "products": [product("ox", "oxide", "NdPr", reference_price_usd_per_t=100)],
        "processes": [proc("make", "separation")],
        "recipes": [rec("make", "ox", 1)],
        "facilities": [fac("fb", "B", 100, last_year=2025)],
        "facility_processes": [fp("fb", "make", 10)],
        "demand": [dem("A", "ox", 80, "2025"), dem("A", "ox", 80, "2026Q1")],
        "transport": [{"from_country": "B", "to_country": "A", "product": "ox", "cost_usd_per_t": 5}],
    }
    if stock:
        case["stockpiles"] = [{"stockpile": "res", "holder": "A", "product": "ox", "capacity_t": 15,
                               "holding_cost_usd_per_t_yr": 2, "terminal_rule": "free", **stock}]
    return case


def test_bought_in_normal_year_drawn_in_crisis_quarter(tmp_path):
    """Without a stock the crisis quarter leaves all 80 t/yr unserved (20 t): cost
    80 x 15 + 20 x 1000 = 21200. With a 15 t store A buys 15 t in 2025 (imports 95 from B
    at 10 + 5) and releases 15 t in the quarter = 60 t/yr: unserved falls to 20 t/yr (5 t),
    by exactly the release. Cost 95 x 15 + holding 2 x 15 x 1 + 5 x 1000 = 6455;
    purchase value 15 x 100 = 1500 (a transfer, not in the objective). Prices: A 2025 = 15,
    A 2026Q1 = 1000 (rationing)."""
    base = solve_reserves(tmp_path, crisis_case(), "base.xlsx")
    assert base.solve.objective == pytest.approx(21200.0, **APPROX)
    assert value(base.tables["demand"], "unserved_t", period="2026Q1") == pytest.approx(20.0, **APPROX)

    r = solve_reserves(tmp_path, crisis_case(initial_t=0))
    t = r.tables
    assert r.solve.objective == pytest.approx(6455.0, **APPROX)
    s = t["stockpiles"].set_index("period")
    assert s.loc["2025", "buy_t_per_yr"] == pytest.approx(15.0, **APPROX)
    assert s.loc["2025", "level_t"] == pytest.approx(15.0, **APPROX)
    assert s.loc["2026Q1", "release_t_per_yr"] == pytest.approx(60.0, **APPROX)
    assert s.loc["2026Q1", "release_t"] == pytest.approx(15.0, **APPROX)
    assert s.loc["2026Q1", "level_t"] == pytest.approx(0.0, **APPROX)
    assert s.loc["2025", "days_of_cover"] == pytest.approx(15 / (80 / 365), **APPROX)
    assert s.loc["2025", "holding_cost_usd"] == pytest.approx(30.0, **APPROX)
    assert s.loc["2025", "purchase_value_usd"] == pytest.approx(1500.0, **APPROX)
    unserved = value(t["demand"], "unserved_t", period="2026Q1")
    assert unserved == pytest.approx(5.0, **APPROX)
    assert value(base.tables["demand"], "unserved_t", period="2026Q1") - unserved == pytest.approx(
        s.loc["2026Q1", "release_t"], **APPROX)
    assert value(t["flows"], "flow_t_per_yr", period="2025") == pytest.approx(95.0, **APPROX)
    prices = t["prices"].set_index(["country", "period"])["price_usd_per_t"]
    assert prices["A", "2025"] == pytest.approx(15.0, **APPROX)
    assert prices["A", "2026Q1"] == pytest.approx(1000.0, **APPROX)
    costs = t["costs"]
    assert value(costs, "cost_usd", component="stock_holding") == pytest.approx(30.0, **APPROX)
    purchases = costs[costs["component"] == "stock_purchases"]
    assert purchases["cost_usd"].sum() == pytest.approx(1500.0, **APPROX)
    assert not purchases["in_objective"].any()


def test_committed_build_is_a_net_addition(tmp_path):
    """Two normal years; B makes ox at 10 (100 t/yr) both years, A uses 80 t/yr and could
    release its 15 t initial stock (terminal rule free): without a commitment it does,
    importing 65 t in 2025 (cost 65 x 15 + 80 x 15 = 2175, nothing held). A
    committed net build of 10 t/yr in 2025 only: buying 10 and releasing 10 in the same
    year would leave the level unchanged, so the constraint counts buys less releases:
    A imports 90 in 2025 and nothing comes out; in 2026 it releases all 25 t and imports
    55. Cost 90 x 15 + 2 x 25 (holding 2025) + 55 x 15 = 2225; the last committed tonne
    costs 15 in 2025 less the 15 it saves in 2026 plus 2 of holding = 2 USD/t."""
    def case(**stock) -> dict:
        c = crisis_case(initial_t=15, capacity_t=None, **stock)
        c["periods"] = [{"period": "2025", "start_year": 2025, "duration_yr": 1},
                        {"period": "2026", "start_year": 2026, "duration_yr": 1}]
        c["facilities"] = [fac("fb", "B", 100)]
        c["demand"] = [dem("A", "ox", 80, "2025"), dem("A", "ox", 80, "2026")]
        return c
    free = solve_reserves(tmp_path, case(), "free.xlsx")
    assert free.solve.objective == pytest.approx(65 * 15 + 80 * 15, **APPROX)

    r = solve_reserves(tmp_path, case(build_min_t_per_yr=10, build_min_periods="2025"), "built.xlsx")
    s = r.tables["stockpiles"].set_index("period")
    assert s.loc["2025", "buy_t_per_yr"] - s.loc["2025", "release_t_per_yr"] == pytest.approx(10.0, **APPROX)
    assert s.loc["2025", "level_t"] == pytest.approx(25.0, **APPROX)
    assert s.loc["2026", "release_t_per_yr"] == pytest.approx(25.0, **APPROX)
    assert s.loc["2025", "build_min_t_per_yr"] == pytest.approx(10.0) and s.loc["2026", "build_min_t_per_yr"] == 0
    assert value(r.tables["flows"], "flow_t_per_yr", period="2025") == pytest.approx(90.0, **APPROX)
    assert value(r.tables["flows"], "flow_t_per_yr", period="2026") == pytest.approx(55.0, **APPROX)
    # No discounting in these tests (rate 0): 1350 + 50 + 825.
    assert r.solve.objective == pytest.approx(90 * 15 + 2 * 25 + 55 * 15, **APPROX)
    assert s.loc["2025", "build_cost_usd_per_t"] == pytest.approx(2.0, **APPROX)


def test_budget_that_binds(tmp_path):
    """Budget 1000 at a reference price of 100 buys 10 t (< the 15 t capacity): release
    40 t/yr in the quarter, unserved 40 t/yr (10 t). Cost 90 x 15 + 2 x 10 + 10 x 1000 = 11370;
    budget used 1000 (share 1)."""
    r = solve_reserves(tmp_path, crisis_case(budget_usd=1000))
    s = r.tables["stockpiles"].set_index("period")
    assert r.solve.objective == pytest.approx(11370.0, **APPROX)
    assert s.loc["2025", "buy_t"] == pytest.approx(10.0, **APPROX)
    assert s.loc["2026Q1", "release_t_per_yr"] == pytest.approx(40.0, **APPROX)
    assert s.loc["2026Q1", "budget_used_usd"] == pytest.approx(1000.0, **APPROX)
    assert s.loc["2026Q1", "budget_used_share"] == pytest.approx(1.0, **APPROX)
    assert value(r.tables["demand"], "unserved_t", period="2026Q1") == pytest.approx(10.0, **APPROX)


def test_crisis_target_may_be_drawn_but_normal_target_holds(tmp_path):
    """A 15 t target holds in 2025 (normal) but not in the crisis quarter, so the draw of
    the first test stands (cost 6455). With both periods normal the stock must stay at
    15 t: nothing is released and the quarter is all unserved: 95 x 15 + holding
    2 x 15 x 1 + 2 x 15 x 0.25 + 20 x 1000 = 21462.5. Lowering the 2026Q1 target by 1 t
    frees 1 t (4 t/yr over the quarter): it saves 1000 of penalty and 0.5 of holding,
    per unit of period weight (0.25) 4002 USD/t: the target's cost."""
    r = solve_reserves(tmp_path, crisis_case(target_t=15), "a.xlsx")
    assert r.solve.objective == pytest.approx(6455.0, **APPROX)
    s = r.tables["stockpiles"].set_index("period")
    assert bool(s.loc["2025", "target_enforced"]) and not bool(s.loc["2026Q1", "target_enforced"])

    case = crisis_case(target_t=15)
    case["periods"][1]["regime"] = "normal"
    r = solve_reserves(tmp_path, case, "b.xlsx")
    assert r.solve.objective == pytest.approx(95 * 15 + 30 + 7.5 + 20000, **APPROX)
    s = r.tables["stockpiles"].set_index("period")
    assert s.loc["2026Q1", "level_t"] == pytest.approx(15.0, **APPROX)
    assert s.loc["2026Q1", "release_t_per_yr"] == pytest.approx(0.0, **APPROX)
    assert s.loc["2026Q1", "target_cost_usd_per_t"] == pytest.approx(4002.0, **APPROX)


def test_terminal_rule_keep_versus_free(tmp_path):
    """A makes 40 t/yr at 10 and uses 50; the store starts with 10 t. Free: release 10,
    nothing unserved, cost 400. Keep: the final level must be 10 t, so 10 t/yr go
    unserved: 400 + 10 x 1000 + holding 2 x 10 = 10420."""
    def case(rule: str) -> dict:
        return {
            "periods": [{"period": "2025", "start_year": 2025, "duration_yr": 1}],
            "countries": [{"country": "A"}, {"country": "B"}],
            "products": [product("ox", "oxide", "NdPr")],
            "processes": [proc("make", "separation")],
            "recipes": [rec("make", "ox", 1)],
            "facilities": [fac("fa", "A", 40)],
            "facility_processes": [fp("fa", "make", 10)],
            "demand": [dem("A", "ox", 50)],
            "stockpiles": [{"stockpile": "res", "holder": "A", "product": "ox", "initial_t": 10,
                            "holding_cost_usd_per_t_yr": 2, "terminal_rule": rule}],
        }
    free = solve_reserves(tmp_path, case("free"), "free.xlsx")
    assert free.solve.objective == pytest.approx(400.0, **APPROX)
    assert value(free.tables["stockpiles"], "release_t_per_yr") == pytest.approx(10.0, **APPROX)
    assert free.tables["shortfall"].empty
    keep = solve_reserves(tmp_path, case("keep"), "keep.xlsx")
    assert keep.solve.objective == pytest.approx(10420.0, **APPROX)
    s = keep.tables["stockpiles"]
    assert value(s, "level_t") == pytest.approx(10.0, **APPROX)
    assert value(keep.tables["demand"], "unserved_t_per_yr") == pytest.approx(10.0, **APPROX)
    assert value(keep.tables["prices"], "price_usd_per_t", country="A") == pytest.approx(1000.0, **APPROX)


def magnet_case(controller: str = "B", days: float = 73.0) -> dict:
    """A makes NdPr oxide (30), metal (50, 1.17 t oxide per t), magnets (100, 0.3 t metal
    + 0.7 t Fe at 1) and demands 100 t/yr of magnets; B demands 50 t/yr, shipped at 10."""
    return {
        "periods": [{"period": "2025", "start_year": 2025, "duration_yr": 1}],
        "countries": [{"country": "A"}, {"country": "B"}],
        "products": [product("NdPr_ox", "oxide", "NdPr"), product("NdPr_metal", "metal", "NdPr", "t_metal"),
                     product("Fe", "input", "", "t"), product("magnet", "magnet", "", "t_magnet")],
        "processes": [proc("make_ox", "separation"), proc("reduce", "reduction"),
                      proc("make_magnet", "magnet"), proc("buy_fe", "other")],
        "recipes": [rec("make_ox", "NdPr_ox", 1), rec("reduce", "NdPr_ox", -1.17), rec("reduce", "NdPr_metal", 1),
                    rec("make_magnet", "NdPr_metal", -0.3), rec("make_magnet", "Fe", -0.7),
                    rec("make_magnet", "magnet", 1), rec("buy_fe", "Fe", 1)],
        "facilities": [fac("ox_A", "A", 1000), fac("red_A", "A", 1000), fac("mag_A", "A", 160),
                       fac("fe_A", "A", 1000)],
        "facility_processes": [fp("ox_A", "make_ox", 30), fp("red_A", "reduce", 50),
                               fp("mag_A", "make_magnet", 100), fp("fe_A", "buy_fe", 1)],
        "demand": [dem("A", "magnet", 100, penalty=1e5), dem("B", "magnet", 50, penalty=1e5)],
        "transport": [{"from_country": "A", "to_country": "B", "product": "magnet", "cost_usd_per_t": 10}],
        "stockpiles": [{"stockpile": "vault", "holder": "A", "product": "NdPr_ox", "target_days_of_cover": days,
                        "holding_cost_usd_per_t_yr": 1, "terminal_rule": "free",
                        "controlling_country": controller}],
    }


def test_days_of_cover_of_magnet_demand(tmp_path):
    """A magnet holds 0.3 x 1.17 = 0.351 t NdPr; A's 100 t/yr of magnets (B's demand does
    not count: A holds the store) is 35.1 t NdPr a year, so 73 days = 0.2 yr is 7.02 t of
    oxide. 150 magnets need 45 t metal, 52.65 t oxide, 105 t Fe; with the 7.02 t bought:
    59.67 x 30 + 45 x 50 + 150 x 100 + 105 + 50 x 10 + holding 7.02 = 19652.12. The
    target's last tonne costs 30 + 1 (oxide + a year's holding).
    Usable cover: magnet plant spare 160 - 150 = 10 t/yr passes 10 x 0.351 = 3.51 t NdPr,
    reduction spare 955 x 1.17 = 1117.35: the magnet stage binds, so 3.51 of the 7.02 t
    can become 10 t of magnets = 36.5 days. With A as the controlling country no plant
    counts and the usable cover is 0."""
    r = solve_reserves(tmp_path, magnet_case(), "a.xlsx")
    t = r.tables
    assert t["content"].set_index("product").loc["magnet", "NdPr"] == pytest.approx(0.351, **APPROX)
    assert r.solve.objective == pytest.approx(19652.12, **APPROX)
    s = t["stockpiles"].iloc[0]
    assert s["target_t"] == pytest.approx(7.02, **APPROX)
    assert s["level_t"] == pytest.approx(7.02, **APPROX)
    assert s["final_demand_t_per_yr"] == pytest.approx(35.1, **APPROX)
    assert s["days_of_cover"] == pytest.approx(73.0, **APPROX)
    assert s["target_cost_usd_per_t"] == pytest.approx(31.0, **APPROX)
    assert value(t["production"], "activity_t_per_yr", process="make_ox") == pytest.approx(59.67, **APPROX)
    assert value(t["prices"], "price_usd_per_t", product="NdPr_ox") == pytest.approx(30.0, **APPROX)
    c = t["stockpile_cover"].iloc[0]
    assert c["downstream_stages"] == "magnet,reduction"
    assert c["bottleneck_stage"] == "magnet"
    assert c["stock_element_t"] == pytest.approx(7.02, **APPROX)
    assert c["usable_element_t"] == pytest.approx(3.51, **APPROX)
    assert c["usable_final_t"] == pytest.approx(10.0, **APPROX)
    assert c["usable_days"] == pytest.approx(36.5, **APPROX)

    r = solve_reserves(tmp_path, magnet_case(controller="A"), "b.xlsx")
    c = r.tables["stockpile_cover"].iloc[0]
    assert c["usable_element_t"] == pytest.approx(0.0, **APPROX)
    assert c["usable_final_t"] == pytest.approx(0.0, **APPROX)


def test_no_stockpiles_adds_no_tables(tmp_path):
    r = solve_reserves(tmp_path, crisis_case())
    assert "stockpiles" not in r.tables and "stockpile_cover" not in r.tables


# --- validation ---------------------------------------------------------------------

def problems(tmp_path: Path, sheets: dict) -> list[Problem]:
    path = write_case(tmp_path / "x.xlsx", sheets, {"base_year": 2025}, overwrite=True)
    with pytest.raises(InputError) as exc:
        load_case(str(path))
    return exc.value.problems


def find(found: list[Problem], sheet: str, row, column: str, text: str) -> Problem:
    for p in found:
        if (p.sheet, p.row, p.column) == (sheet, row, column) and text in p.message:
            return p
    raise AssertionError(f"no {sheet}/{row}/{column} {text!r} in:\n" + "\n".join(map(str, found)))


def test_target_above_capacity(tmp_path):
    p = find(problems(tmp_path, crisis_case(target_t=20)), "stockpiles", 2, "target_t", "target above capacity")
    assert "at most capacity_t (15)" in p.expected
    assert "row 2" in str(p) and "column 'target_t'" in str(p)


def test_days_of_cover_target_above_capacity(tmp_path):
    """73 days of A's magnet demand is 7.02 t of oxide: a 5 t store cannot hold it."""
    case = magnet_case()
    case["stockpiles"][0]["capacity_t"] = 5
    p = find(problems(tmp_path, case), "stockpiles", 2, "target_days_of_cover", "target above capacity")
    assert "7.02 t" in p.message


def test_two_targets_initial_above_capacity_and_budget_without_price(tmp_path):
    case = crisis_case(target_t=5, target_days_of_cover=10, initial_t=20, budget_usd=100)
    case["products"][0]["reference_price_usd_per_t"] = None
    found = problems(tmp_path, case)
    find(found, "stockpiles", 2, "target_days_of_cover", "two targets")
    find(found, "stockpiles", 2, "initial_t", "initial level above capacity")
    find(found, "stockpiles", 2, "budget_usd", "needs the product's reference price")


def test_unknown_holder_and_product(tmp_path):
    found = problems(tmp_path, crisis_case(holder="C", product="oxx"))
    find(found, "stockpiles", 2, "holder", "unknown country")
    find(found, "stockpiles", 2, "product", "unknown product")


def test_committed_build_above_buy_max_and_unknown_period(tmp_path):
    found = problems(tmp_path, crisis_case(build_min_t_per_yr=20, buy_max_t_per_yr=12, build_min_periods="2025,2027"))
    p = find(found, "stockpiles", 2, "build_min_t_per_yr", "committed build above")
    assert "at most buy_max_t_per_yr (12)" in p.expected
    assert any(q.column == "build_min_periods" and "2027" in str(q.value) for q in found)


def test_committed_build_that_overfills_the_store_or_the_budget(tmp_path):
    """The store holds 15 t: a build of 20 t/yr over 2025 (1 yr) fills 20 t. A budget of 1,000
    at a reference price of 100 buys 10 t: the build needs 2,000."""
    found = problems(tmp_path, crisis_case(build_min_t_per_yr=20, build_min_periods="2025", budget_usd=1000))
    p = find(found, "stockpiles", 2, "build_min_t_per_yr", "fills 20 t by the end of 2025")
    assert "fits capacity_t (15 t)" in p.expected
    p = find(found, "stockpiles", 2, "build_min_t_per_yr", "costs at least 2,000 USD")
    assert "fit budget_usd (1,000 USD)" in p.expected


def test_a_reserve_does_not_launder_origin(tmp_path):
    """The USA charges 100 USD/t on Chinese-origin magnets; China makes them at 10 and every
    lane costs 1. If the EU's reserve could buy Chinese magnets and release them as EU-origin
    in the same period, the USA would buy through it at 10 + 1 + 1 = 12 duty-free. Releases
    enter China's origin class (a store keeps no origin), so the duty applies either way and
    the USA buys direct: 100 x (10 + 1) + 100 x 100 duty = 11,100; the reserve is idle."""
    sheets = {
        "periods": [{"period": "2025", "start_year": 2025, "duration_yr": 1}],
        "countries": [{"country": "CHN"}, {"country": "EUR"}, {"country": "USA"}],
        "products": [product("magnet", "magnet", "", "t_magnet")],
        "processes": [proc("make", "magnet")], "recipes": [rec("make", "magnet", 1)],
        "facilities": [fac("cn", "CHN", 1000)], "facility_processes": [fp("cn", "make", 10)],
        "demand": [rows.dem("USA", "magnet", 100, penalty=1e5)],
        "transport": [{"from_country": "*", "to_country": "*", "product": "*", "cost_usd_per_t": 1}],
        "tariffs": [{"importer": "USA", "exporter": "CHN", "product": "magnet", "specific_usd_per_t": 100}],
        "stockpiles": [{"stockpile": "eu_store", "holder": "EUR", "product": "magnet", "terminal_rule": "free"}],
    }
    r = solve_reserves(tmp_path, sheets, "launder.xlsx")
    assert r.solve.objective == pytest.approx(11100.0, **APPROX)
    s = r.tables["stockpiles"]
    assert s["buy_t_per_yr"].abs().max() == pytest.approx(0.0, abs=TOL)
    assert value(r.tables["flows"], "flow_t_per_yr", from_country="CHN", to_country="USA") == pytest.approx(100.0, **APPROX)


def test_only_the_initial_stock_leaves_as_the_holders_origin(tmp_path):
    """X bans ox to A in 2026. H's reserve starts with 60 t (its own origin) and may buy more
    from X in 2025 at 10. A needs 100 t in 2026: 60 t of H's initial stock ship to A at 5
    (300); the rest cannot (bought tonnes leave as X-origin, banned to A): 40 t unserved at
    1,000. H buying in 2025 for A would be laundering: it does not happen. 300 + 40,000."""
    sheets = {
        "periods": [{"period": "2025", "start_year": 2025, "duration_yr": 1},
                    {"period": "2026", "start_year": 2026, "duration_yr": 1}],
        "countries": [{"country": "A"}, {"country": "X"}, {"country": "H"}],
        "products": [product("ox", "oxide", "Nd")],
        "processes": [proc("make", "separation")], "recipes": [rec("make", "ox", 1)],
        "facilities": [fac("fX", "X", 1000)], "facility_processes": [fp("fX", "make", 10)],
        "demand": [rows.dem("A", "ox", 100, period="2026", penalty=1000)],
        "transport": [{"from_country": "*", "to_country": "*", "product": "*", "cost_usd_per_t": 5}],
        "export_controls": [{"control": "ban_A", "exporter": "X", "product": "ox", "destinations": "A",
                             "kind": "ban", "periods": "2026"}],
        "stockpiles": [{"stockpile": "res", "holder": "H", "product": "ox", "initial_t": 60, "terminal_rule": "free"}],
    }
    r = solve_reserves(tmp_path, sheets, "own.xlsx")
    assert r.solve.objective == pytest.approx(300.0 + 40 * 1000.0, **APPROX)
    assert value(r.tables["flows"], "flow_t_per_yr", from_country="H", to_country="A") == pytest.approx(60.0, **APPROX)
    s = r.tables["stockpiles"].set_index("period")
    assert s.at["2025", "buy_t_per_yr"] == pytest.approx(0.0, abs=TOL)
    assert s.at["2026", "release_t_per_yr"] == pytest.approx(60.0, **APPROX)
