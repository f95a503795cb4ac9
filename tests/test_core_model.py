"""Hand-solved cases of the core LP: each asserts cost, flows and prices worked out on
paper (the arithmetic is in each docstring), and `solve` checks every constraint."""

from __future__ import annotations

import pytest

from conftest import one_period, value
from rows import dem, fac, fp, proc, product, rec

APPROX = dict(rel=1e-7, abs=1e-6)


def chain_case() -> dict:
    """Mine -> separation -> reduction -> magnet in one country."""
    return {
        "periods": one_period(),
        "countries": [{"country": "A"}],
        "products": [product("conc", "concentrate", "mix"), product("NdPr_ox", "oxide", "NdPr"),
                     product("NdPr_metal", "metal", "NdPr", "t_metal"), product("Fe", "input", "", "t"),
                     product("magnet", "magnet", "", "t_magnet")],
        "processes": [proc("mine", "mining"), proc("sep", "separation"), proc("reduce", "reduction"),
                      proc("make_magnet", "magnet"), proc("buy_fe", "other")],
        "recipes": [rec("mine", "conc", 1), rec("sep", "conc", -1), rec("sep", "NdPr_ox", 1),
                    rec("reduce", "NdPr_ox", -1.17), rec("reduce", "NdPr_metal", 1),
                    rec("make_magnet", "NdPr_metal", -0.3), rec("make_magnet", "Fe", -0.7),
                    rec("make_magnet", "magnet", 1), rec("buy_fe", "Fe", 1)],
        "facilities": [fac("mine_A", "A", 1000), fac("sep_A", "A", 1000), fac("red_A", "A", 1000),
                       fac("mag_A", "A", 1000), fac("fe_A", "A", 1000)],
        "facility_processes": [fp("mine_A", "mine", 10), fp("sep_A", "sep", 20), fp("red_A", "reduce", 50),
                               fp("mag_A", "make_magnet", 100), fp("fe_A", "buy_fe", 1)],
        "demand": [dem("A", "magnet", 100)],
    }


def test_single_chain(tmp_case):
    """100 t magnet needs 30 t metal, 35.1 t oxide and concentrate, 70 t Fe.
    Cost 351 + 702 + 1500 + 10000 + 70 = 12623. Prices: conc 10, oxide 30,
    metal 50 + 1.17 x 30 = 85.1, magnet 100 + 0.3 x 85.1 + 0.7 x 1 = 126.23."""
    r = tmp_case(chain_case())
    t = r.tables
    assert r.solve.objective == pytest.approx(12623.0, **APPROX)
    assert value(t["production"], "activity_t_per_yr", process="mine") == pytest.approx(35.1, **APPROX)
    assert value(t["production"], "activity_t_per_yr", process="reduce") == pytest.approx(30.0, **APPROX)
    assert value(t["production"], "activity_t_per_yr", process="buy_fe") == pytest.approx(70.0, **APPROX)
    prices = t["prices"].set_index("product")["price_usd_per_t"]
    assert prices["conc"] == pytest.approx(10.0, **APPROX)
    assert prices["NdPr_ox"] == pytest.approx(30.0, **APPROX)
    assert prices["NdPr_metal"] == pytest.approx(85.1, **APPROX)
    assert prices["magnet"] == pytest.approx(126.23, **APPROX)
    assert set(t["prices"]["tag"]) == {"cost"}
    assert t["shortfall"].empty
    assert value(t["costs"], "cost_usd", component="running") == pytest.approx(12623.0, **APPROX)


def test_content_coefficients_of_a_magnet(tmp_case):
    """A magnet of 0.3 t NdPr metal (1.17 t oxide each) and 0.02 t Dy metal (1.148 t
    oxide each) holds 0.351 t NdPr and 0.02296 t Dy as oxide; the concentrate holds what
    separation gives (0.9 NdPr, 0.1 Dy)."""
    case = chain_case()
    case["products"] += [product("Dy_ox", "oxide", "Dy"), product("Dy_metal", "metal", "Dy", "t_metal")]
    case["recipes"] = [r for r in case["recipes"] if r["process"] not in ("sep", "make_magnet")] + [
        rec("sep", "conc", -1), rec("sep", "NdPr_ox", 0.9), rec("sep", "Dy_ox", 0.1),
        rec("reduce_dy", "Dy_ox", -1.148), rec("reduce_dy", "Dy_metal", 1),
        rec("make_magnet", "NdPr_metal", -0.3), rec("make_magnet", "Dy_metal", -0.02),
        rec("make_magnet", "Fe", -0.68), rec("make_magnet", "magnet", 1)]
    case["processes"].append(proc("reduce_dy", "reduction"))
    case["facility_processes"].append(fp("red_A", "reduce_dy", 80))
    r = tmp_case(case)
    content = r.tables["content"].set_index("product")
    assert content.loc["magnet", "NdPr"] == pytest.approx(0.351, **APPROX)
    assert content.loc["magnet", "Dy"] == pytest.approx(0.02296, **APPROX)
    assert content.loc["NdPr_metal", "NdPr"] == pytest.approx(1.17, **APPROX)
    assert content.loc["conc", "NdPr"] == pytest.approx(0.9, **APPROX)
    assert content.loc["conc", "Dy"] == pytest.approx(0.1, **APPROX)
    assert content.loc["Fe"].sum() == 0.0


def coproduct_case(la_demand=50.0) -> dict:
    return {
        "periods": one_period(),
        "countries": [{"country": "A"}],
        "products": [product("conc", "concentrate", "mix"), product("Nd_ox", "oxide", "Nd"),
                     product("La_ox", "oxide", "La", disposal_cost_usd_per_t=5)],
        "processes": [proc("mine", "mining"), proc("sep", "separation")],
        "recipes": [rec("mine", "conc", 1), rec("sep", "conc", -1), rec("sep", "Nd_ox", 0.2),
                    rec("sep", "La_ox", 0.8)],
        "facilities": [fac("mine_A", "A", 1000), fac("sep_A", "A", 1000)],
        "facility_processes": [fp("mine_A", "mine", 10), fp("sep_A", "sep", 20)],
        "demand": [dem("A", "Nd_ox", 100), dem("A", "La_ox", la_demand)],
    }


def test_coproduct_glut_is_disposed_and_priced_at_minus_disposal_cost(tmp_case):
    """100 t Nd at a 0.2 yield needs 500 t of feed, which also yields 400 t La; 50 t
    La are used and 350 t disposed at 5 USD/t. Cost 5000 + 10000 + 1750 = 16750. La's
    price is -5 (tagged disposal); Nd carries the joint cost: (10 + 20) / 0.2 + 4 x 5 = 170."""
    r = tmp_case(coproduct_case())
    t = r.tables
    assert r.solve.objective == pytest.approx(16750.0, **APPROX)
    assert value(t["disposal"], "disposal_t_per_yr", product="La_ox") == pytest.approx(350.0, **APPROX)
    prices = t["prices"].set_index("product")
    assert prices.loc["La_ox", "price_usd_per_t"] == pytest.approx(-5.0, **APPROX)
    assert prices.loc["La_ox", "tag"] == "disposal"
    assert prices.loc["Nd_ox", "price_usd_per_t"] == pytest.approx(170.0, **APPROX)
    assert prices.loc["Nd_ox", "tag"] == "cost"
    assert value(t["costs"], "cost_usd", component="disposal") == pytest.approx(1750.0, **APPROX)


def test_merit_order_over_capacity_tranches(tmp_case):
    """Tranches of 100 t at 10 and 100 t at 30 meet 150 t: 100 + 50, cost 2500, price
    30 (the marginal tranche); the cheap tranche's capacity is worth 30 - 10 = 20."""
    case = {
        "periods": one_period(),
        "countries": [{"country": "A"}],
        "products": [product("conc", "concentrate", "mix")],
        "processes": [proc("mine", "mining")],
        "recipes": [rec("mine", "conc", 1)],
        "facilities": [fac("cheap", "A", 100), fac("dear", "A", 100)],
        "facility_processes": [fp("cheap", "mine", 10), fp("dear", "mine", 30)],
        "demand": [dem("A", "conc", 150)],
    }
    r = tmp_case(case)
    t = r.tables
    assert r.solve.objective == pytest.approx(2500.0, **APPROX)
    assert value(t["production"], "activity_t_per_yr", facility="cheap") == pytest.approx(100.0, **APPROX)
    assert value(t["production"], "activity_t_per_yr", facility="dear") == pytest.approx(50.0, **APPROX)
    assert value(t["prices"], "price_usd_per_t", product="conc") == pytest.approx(30.0, **APPROX)
    cap = t["capacity_values"].set_index("facility")
    assert cap.loc["cheap", "capacity_value_usd_per_t_per_yr"] == pytest.approx(20.0, **APPROX)
    assert cap.loc["dear", "capacity_value_usd_per_t_per_yr"] == pytest.approx(0.0, **APPROX)
    assert cap.loc["cheap", "utilisation"] == pytest.approx(1.0, **APPROX)
    assert cap.loc["dear", "utilisation"] == pytest.approx(0.5, **APPROX)


def test_facility_chooses_between_two_processes_sharing_capacity(tmp_case):
    """Separator F (100 t/yr) runs sep_b (bastnaesite feed at 50 + 10) or sep_m (monazite
    feed at 10 + 30), each yielding 0.5 t oxide: oxide costs 120 via b, 80 via m. For 60 t
    oxide F runs m at capacity (50 t oxide, cost 4000) and separator G makes the other 10 t
    via b (20 t feed, cost 1200): total 5200, oxide price 120, and F's capacity is worth
    0.5 x 120 - 40 = 20 per t/yr."""
    case = {
        "periods": one_period(),
        "countries": [{"country": "A"}],
        "products": [product("conc_b", "concentrate", "mix"), product("conc_m", "concentrate", "mix"),
                     product("ox", "oxide", "NdPr")],
        "processes": [proc("mine_b", "mining"), proc("mine_m", "mining"), proc("sep_b", "separation"),
                      proc("sep_m", "separation")],
        "recipes": [rec("mine_b", "conc_b", 1), rec("mine_m", "conc_m", 1), rec("sep_b", "conc_b", -1),
                    rec("sep_b", "ox", 0.5), rec("sep_m", "conc_m", -1), rec("sep_m", "ox", 0.5)],
        "facilities": [fac("mb", "A", 1000), fac("mm", "A", 1000), fac("F", "A", 100), fac("G", "A", 100)],
        "facility_processes": [fp("mb", "mine_b", 50), fp("mm", "mine_m", 10), fp("F", "sep_b", 10),
                               fp("F", "sep_m", 30), fp("G", "sep_b", 10)],
        "demand": [dem("A", "ox", 60)],
    }
    r = tmp_case(case)
    t = r.tables
    assert r.solve.objective == pytest.approx(5200.0, **APPROX)
    prod = t["production"]
    assert value(prod, "activity_t_per_yr", facility="F", process="sep_m") == pytest.approx(100.0, **APPROX)
    assert value(prod, "activity_t_per_yr", facility="F", process="sep_b") == pytest.approx(0.0, **APPROX)
    assert value(prod, "activity_t_per_yr", facility="G", process="sep_b") == pytest.approx(20.0, **APPROX)
    assert value(t["prices"], "price_usd_per_t", product="ox") == pytest.approx(120.0, **APPROX)
    cap = t["capacity_values"].set_index("facility")
    assert cap.loc["F", "capacity_value_usd_per_t_per_yr"] == pytest.approx(20.0, **APPROX)


def trade_case(freight: float) -> dict:
    return {
        "periods": one_period(),
        "countries": [{"country": "A"}, {"country": "B"}],
        "products": [product("ox", "oxide", "NdPr")],
        "processes": [proc("make", "separation")],
        "recipes": [rec("make", "ox", 1)],
        "facilities": [fac("fa", "A", 1000), fac("fb", "B", 1000)],
        "facility_processes": [fp("fa", "make", 100), fp("fb", "make", 60)],
        "demand": [dem("A", "ox", 50)],
        "transport": [{"from_country": "B", "to_country": "A", "product": "*", "cost_usd_per_t": freight}],
    }


def test_import_when_landed_cost_is_below_local_cost(tmp_case):
    """B makes at 60 and ships at 30: landed 90 < 100 in A, so A imports 50 t; cost
    50 x 90 = 4500; prices A 90, B 60."""
    r = tmp_case(trade_case(30.0))
    t = r.tables
    assert r.solve.objective == pytest.approx(4500.0, **APPROX)
    assert value(t["flows"], "flow_t_per_yr", from_country="B", to_country="A") == pytest.approx(50.0, **APPROX)
    assert value(t["production"], "activity_t_per_yr", facility="fa") == pytest.approx(0.0, **APPROX)
    prices = t["prices"].set_index("country")["price_usd_per_t"]
    assert prices["A"] == pytest.approx(90.0, **APPROX)
    assert prices["B"] == pytest.approx(60.0, **APPROX)
    assert value(t["costs"], "cost_usd", component="transport") == pytest.approx(1500.0, **APPROX)


def test_local_production_when_freight_is_dear(tmp_case):
    """Freight 50: landed 110 > 100, so A makes its own 50 t; cost 5000; price in A 100."""
    r = tmp_case(trade_case(50.0))
    t = r.tables
    assert r.solve.objective == pytest.approx(5000.0, **APPROX)
    assert t["flows"].empty
    assert value(t["production"], "activity_t_per_yr", facility="fa") == pytest.approx(50.0, **APPROX)
    assert value(t["prices"], "price_usd_per_t", country="A") == pytest.approx(100.0, **APPROX)


def test_lane_capacity_limits_imports(tmp_case):
    """The cheap lane carries at most 20 t/yr: 20 t imported at 90, 30 t made at 100;
    cost 1800 + 3000 = 4800; price in A is the local cost 100."""
    case = trade_case(30.0)
    case["transport"][0]["max_flow_t_per_yr"] = 20
    r = tmp_case(case)
    t = r.tables
    assert r.solve.objective == pytest.approx(4800.0, **APPROX)
    assert value(t["flows"], "flow_t_per_yr", from_country="B") == pytest.approx(20.0, **APPROX)
    assert value(t["prices"], "price_usd_per_t", country="A") == pytest.approx(100.0, **APPROX)


def test_shortfall_rationed_by_segment_penalty(tmp_case):
    """60 t/yr of capacity at 100 against defence 30 (penalty 1e6) and consumer 50
    (penalty 1000): defence is served in full, consumer gets 30 and 20 t go unserved.
    Running cost 6000, penalty 20 000; the price is the consumer penalty, tagged penalty."""
    case = {
        "periods": one_period(),
        "countries": [{"country": "A"}],
        "products": [product("ox", "oxide", "Dy")],
        "processes": [proc("make", "separation")],
        "recipes": [rec("make", "ox", 1)],
        "facilities": [fac("f", "A", 60)],
        "facility_processes": [fp("f", "make", 100)],
        "demand": [dem("A", "ox", 30, segment="defence", penalty=1e6),
                   dem("A", "ox", 50, segment="consumer", penalty=1000)],
    }
    r = tmp_case(case)
    t = r.tables
    assert r.solve.objective == pytest.approx(26000.0, **APPROX)
    d = t["demand"].set_index("segment")
    assert d.loc["defence", "unserved_t_per_yr"] == pytest.approx(0.0, **APPROX)
    assert d.loc["consumer", "unserved_t_per_yr"] == pytest.approx(20.0, **APPROX)
    assert d.loc["consumer", "penalty_value_usd"] == pytest.approx(20000.0, **APPROX)
    p = t["prices"].iloc[0]
    assert p["price_usd_per_t"] == pytest.approx(1000.0, **APPROX)
    assert p["tag"] == "penalty"
    s = t["summary"].set_index("item")["value"]
    # The headline resource cost excludes the penalty; it sits on its own line.
    assert float(s["total (present value)"].iloc[0]) == pytest.approx(6000.0, **APPROX)
    assert float(s["unserved tonnes"]) == pytest.approx(20.0, **APPROX)
    assert value(t["shortfall"], "unserved_t", country="A", product="ox") == pytest.approx(20.0, **APPROX)
    assert list(t["shortfall"]["segment"]) == ["consumer"]
    assert value(t["shortfall"], "unserved_share", segment="consumer") == pytest.approx(0.4, **APPROX)


def test_two_periods_with_discounting(tmp_case):
    """Periods 2025 (1 yr) and 2026-27 (2 yr) at r = 10 %: weights 1 and 1/1.1 + 1/1.21
    (each year discounted to its own start). Mining at 10 for 100 t/yr costs
    1000 + 1000 x (1/1.1 + 1/1.21) = 2735.54 in present value, 3000 undiscounted; prices
    stay undiscounted at 10 in both periods."""
    case = {
        "periods": [{"period": "p1", "start_year": 2025, "duration_yr": 1},
                    {"period": "p2", "start_year": 2026, "duration_yr": 2}],
        "countries": [{"country": "A"}],
        "products": [product("conc", "concentrate", "mix")],
        "processes": [proc("mine", "mining")],
        "recipes": [rec("mine", "conc", 1)],
        "facilities": [fac("m", "A", 1000)],
        "facility_processes": [fp("m", "mine", 10)],
        "demand": [dem("A", "conc", 100, period="p1"), dem("A", "conc", 100, period="p2")],
    }
    r = tmp_case(case, {"discount_rate": 0.1})
    t = r.tables
    assert r.solve.objective == pytest.approx(1000 + 1000 * (1 / 1.1 + 1 / 1.21), **APPROX)
    prices = t["prices"].set_index("period")["price_usd_per_t"]
    assert prices["p1"] == pytest.approx(10.0, **APPROX)
    assert prices["p2"] == pytest.approx(10.0, **APPROX)
    costs = t["costs"]
    assert value(costs, "cost_usd", component="running", period="p2") == pytest.approx(2000.0, **APPROX)
    assert value(costs, "pv_usd", component="running", period="p2") == pytest.approx(
        1000 * (1 / 1.1 + 1 / 1.21), **APPROX)
    assert value(t["production"], "activity_t", period="p2") == pytest.approx(200.0, **APPROX)


def test_facility_years_limit_the_periods_it_runs(tmp_case):
    """A cheap mine opening in 2026 is absent in 2025: 2025 uses the dear one (30),
    2026 the cheap one (10); cost 3000 + 1000 at r = 0."""
    case = {
        "periods": [{"period": "p1", "start_year": 2025, "duration_yr": 1},
                    {"period": "p2", "start_year": 2026, "duration_yr": 1}],
        "countries": [{"country": "A"}],
        "products": [product("conc", "concentrate", "mix")],
        "processes": [proc("mine", "mining")],
        "recipes": [rec("mine", "conc", 1)],
        "facilities": [fac("new", "A", 1000, first_year=2026), fac("old", "A", 1000, last_year=2025)],
        "facility_processes": [fp("new", "mine", 10), fp("old", "mine", 30)],
        "demand": [dem("A", "conc", 100, period="p1"), dem("A", "conc", 100, period="p2")],
    }
    r = tmp_case(case)
    prod = r.tables["production"]
    assert r.solve.objective == pytest.approx(4000.0, **APPROX)
    assert set(zip(prod["facility"], prod["period"])) == {("new", "p2"), ("old", "p1")}


def test_content_of_an_oxide_separated_from_a_concentrate_alone(tmp_path):
    """sep: 1 t concentrate -> 0.8 t oxide (losses, no co-product): the oxide holds 1 t
    of its REO per t, the concentrate 0.8, and a magnet of 0.3 t metal (1.17 t oxide
    each) 0.351: neither side waits on the other."""
    from model.case.derived import content_coefficients
    import pandas as pd
    products = pd.DataFrame({"element": ["mix", "Nd", "Nd", ""], "unit": ["t_REO", "t_REO", "t_metal", "t_magnet"]},
                            index=pd.Index(["conc", "ox", "metal", "magnet"], name="product"))
    recipes = pd.DataFrame([("mine", "conc", 1), ("sep", "conc", -1), ("sep", "ox", 0.8),
                            ("reduce", "ox", -1.17), ("reduce", "metal", 1),
                            ("make", "metal", -0.3), ("make", "magnet", 1)],
                           columns=["process", "product", "coefficient"])
    c = content_coefficients(products, recipes)["Nd"]
    assert c["ox"] == pytest.approx(1.0) and c["conc"] == pytest.approx(0.8)
    assert c["metal"] == pytest.approx(1.17) and c["magnet"] == pytest.approx(0.351)
