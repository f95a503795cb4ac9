"""Hand-solved price floors: cfd changes only payments, must_run and offtake change
physical flows, floor_duty diverts imports; and validation of bad floor rows.

The base case: A makes ox at 80 (60 t/yr), B at 60 (1000 t/yr); lanes cost 10 each
way; A uses 100 t/yr. Without a floor B ships 100 t to A: cost 6000 + 1000 = 7000;
prices A 70, B 60."""

from __future__ import annotations

import pytest

from test_stockpiles import APPROX, dem, fac, find, fp, problems, proc, product, rec, solve_reserves, value


def floor_case(*floors, stockpiles=None, blocs=("", "")) -> dict:
    case = {
        "periods": [{"period": "2025", "start_year": 2025, "duration_yr": 1}],
        "countries": [{"country": "A", "blocs": blocs[0]}, {"country": "B", "blocs": blocs[1]}],
        "products": [product("ox", "oxide", "NdPr", reference_price_usd_per_t=50),
                     product("la", "oxide", "La")],
        "processes": [proc("make", "separation"), proc("make_la", "separation")],
        "recipes": [rec("make", "ox", 1), rec("make_la", "la", 1)],
        "facilities": [fac("fa", "A", 60), fac("fb", "B", 1000), fac("fla", "A", 10)],
        "facility_processes": [fp("fa", "make", 80), fp("fb", "make", 60), fp("fla", "make_la", 1)],
        "demand": [dem("A", "ox", 100)],
        "transport": [{"from_country": "*", "to_country": "*", "product": "ox", "cost_usd_per_t": 10}],
    }
    if floors:
        case["price_floors"] = [{"product": "ox", "floor_price_usd_per_t": 100, **f} for f in floors]
    if stockpiles:
        case["stockpiles"] = stockpiles
    return case


def flow(t, frm, to) -> float:
    return value(t["flows"], "flow_t_per_yr", from_country=frm, to_country=to)


def test_base_case(tmp_path):
    r = solve_reserves(tmp_path, floor_case())
    assert r.solve.objective == pytest.approx(7000.0, **APPROX)
    assert flow(r.tables, "B", "A") == pytest.approx(100.0, **APPROX)
    assert "price_floors" not in r.tables


def test_cfd_changes_only_payments(tmp_path):
    """Both floors cover B's plant (100 t/yr) at 100. Index B: 100 x (100 - 60) = 4000.
    Index bloc Z = {A, B}: prices weighted by demand (only A demands ox): 70, so
    100 x 30 = 3000. Flows and cost are the base case's: 7000, B -> A 100."""
    r = solve_reserves(tmp_path, floor_case(
        {"floor": "cfd_b", "facilities": "fb", "mechanism": "cfd", "index_zone": "B"},
        {"floor": "cfd_z", "facilities": "fb", "mechanism": "cfd", "index_zone": "Z"}, blocs=("Z", "Z")))
    t = r.tables
    assert r.solve.objective == pytest.approx(7000.0, **APPROX)
    assert flow(t, "B", "A") == pytest.approx(100.0, **APPROX)
    assert value(t["costs"], "cost_usd", category="resource") == pytest.approx(7000.0, **APPROX)
    f = t["price_floors"].set_index("floor")
    assert f.loc["cfd_b", "covered_output_t"] == pytest.approx(100.0, **APPROX)
    assert f.loc["cfd_b", "index_price_usd_per_t"] == pytest.approx(60.0, **APPROX)
    assert f.loc["cfd_b", "payment_usd"] == pytest.approx(4000.0, **APPROX)
    assert f.loc["cfd_z", "index_price_usd_per_t"] == pytest.approx(70.0, **APPROX)
    assert f.loc["cfd_z", "payment_usd"] == pytest.approx(3000.0, **APPROX)
    # The payments are transfers in the cost table (so in the summary and comparisons),
    # outside the objective.
    costs = t["costs"]
    assert value(costs, "cost_usd", component="floor_payment_cfd") == pytest.approx(7000.0, **APPROX)
    assert not costs.loc[costs["component"] == "floor_payment_cfd", "in_objective"].any()
    summary = t["summary"].set_index(["section", "item"])["value"]
    assert float(summary[("transfers", "total (undiscounted)")]) == pytest.approx(7000.0, **APPROX)


def test_must_run_changes_flows(tmp_path):
    """A's plant must make 30 t/yr: B ships 70. Cost 30 x 80 + 70 x 70 = 7300; A's price
    stays 70 (the marginal tonne is imported). The guaranteed buyer's loss on resale,
    index A: 30 x (100 - 70) = 900."""
    r = solve_reserves(tmp_path, floor_case(
        {"floor": "mr", "facilities": "fa", "mechanism": "must_run", "quantity_t_per_yr": 30, "index_zone": "A"}))
    t = r.tables
    assert r.solve.objective == pytest.approx(7300.0, **APPROX)
    assert value(t["production"], "activity_t_per_yr", facility="fa") == pytest.approx(30.0, **APPROX)
    assert flow(t, "B", "A") == pytest.approx(70.0, **APPROX)
    assert value(t["prices"], "price_usd_per_t", country="A", product="ox") == pytest.approx(70.0, **APPROX)
    f = t["price_floors"].iloc[0]
    assert f["covered_output_t_per_yr"] == pytest.approx(30.0, **APPROX)
    assert f["payment_usd"] == pytest.approx(900.0, **APPROX)


def reserve(**kw) -> list[dict]:
    return [{"stockpile": "res", "holder": "A", "product": "ox", "release_max_t_per_yr": 0,
             "holding_cost_usd_per_t_yr": 1, "terminal_rule": "free", **kw}]


def test_offtake_takes_output_off_the_market(tmp_path):
    """The buyer takes 30 t/yr of A's output into the reserve (which does not release):
    A's plant runs 30 and B still ships all 100. Cost 30 x 80 + 100 x 70 + holding 30 x 1
    = 9430; the payment 30 x 100 = 3000 is a transfer outside the objective; the reserve
    ends at 30 t."""
    r = solve_reserves(tmp_path, floor_case(
        {"floor": "ot", "facilities": "fa", "mechanism": "offtake", "quantity_t_per_yr": 30,
         "offtake_stockpile": "res"}, stockpiles=reserve()))
    t = r.tables
    assert r.solve.objective == pytest.approx(9430.0, **APPROX)
    assert value(t["production"], "activity_t_per_yr", facility="fa") == pytest.approx(30.0, **APPROX)
    assert flow(t, "B", "A") == pytest.approx(100.0, **APPROX)
    f = t["price_floors"].iloc[0]
    assert f["offtake_t"] == pytest.approx(30.0, **APPROX)
    assert f["payment_usd"] == pytest.approx(3000.0, **APPROX)
    s = t["stockpiles"].iloc[0]
    assert s["inflow_t"] == pytest.approx(30.0, **APPROX)
    assert s["level_t"] == pytest.approx(30.0, **APPROX)
    pay = t["costs"][t["costs"]["component"] == "floor_offtake_payment"]
    assert pay["cost_usd"].sum() == pytest.approx(3000.0, **APPROX)
    assert not pay["in_objective"].any()


def test_offtake_above_covered_capacity_takes_what_capacity_makes(tmp_path):
    """Quantity 150 but A's plant can make 60: the buyer takes 60 (take-or-pay up to the
    capacity). Cost 60 x 80 + 100 x 70 + holding 60 = 11860; payment 6000."""
    r = solve_reserves(tmp_path, floor_case(
        {"floor": "ot", "facilities": "fa", "mechanism": "offtake", "quantity_t_per_yr": 150,
         "offtake_stockpile": "res"}, stockpiles=reserve()))
    t = r.tables
    assert r.solve.objective == pytest.approx(11860.0, **APPROX)
    f = t["price_floors"].iloc[0]
    assert f["offtake_t_per_yr"] == pytest.approx(60.0, **APPROX)
    assert f["payment_usd"] == pytest.approx(6000.0, **APPROX)


def test_floor_duty_diverts_imports(tmp_path):
    """A floor of 80 over a reference price of 50: a duty of 30 on B -> A. B's
    landed cost 60 + 10 + 30 = 100 > A's 80, so A's plant runs at its 60 and B ships only
    40 (from 100). Resource cost 60 x 80 + 40 x 70 = 7600; duty 40 x 30 = 1200 is a
    transfer in the objective: 8800. A's price is the landed cost, 100."""
    r = solve_reserves(tmp_path, floor_case(
        {"floor": "fd", "mechanism": "floor_duty", "index_zone": "A", "floor_price_usd_per_t": 80}))
    t = r.tables
    assert r.solve.objective == pytest.approx(8800.0, **APPROX)
    assert flow(t, "B", "A") == pytest.approx(40.0, **APPROX)
    assert value(t["production"], "activity_t_per_yr", facility="fa") == pytest.approx(60.0, **APPROX)
    assert value(t["costs"], "cost_usd", category="resource") == pytest.approx(7600.0, **APPROX)
    assert value(t["costs"], "cost_usd", component="floor_duty") == pytest.approx(1200.0, **APPROX)
    assert value(t["prices"], "price_usd_per_t", country="A", product="ox") == pytest.approx(100.0, **APPROX)
    f = t["price_floors"].iloc[0]
    assert f["duty_usd_per_t"] == pytest.approx(30.0, **APPROX)
    assert f["imports_t"] == pytest.approx(40.0, **APPROX)
    assert f["payment_usd"] == pytest.approx(1200.0, **APPROX)
    lane = t["floor_landed_costs"].set_index(["from_country", "to_country"]).loc[("B", "A")]
    assert lane["exporter_price_usd_per_t"] == pytest.approx(60.0, **APPROX)
    assert lane["freight_usd_per_t"] == pytest.approx(10.0, **APPROX)
    assert lane["landed_cost_usd_per_t"] == pytest.approx(100.0, **APPROX)
    assert lane["flow_t_per_yr"] == pytest.approx(40.0, **APPROX)


def test_floor_applies_only_in_its_periods(tmp_path):
    """must_run 30 in 2026 only: 2025 is the base case (7000), 2026 costs 7300."""
    case = floor_case({"floor": "mr", "facilities": "fa", "mechanism": "must_run", "quantity_t_per_yr": 30,
                       "periods": "2026"})
    case["periods"].append({"period": "2026", "start_year": 2026, "duration_yr": 1})
    case["demand"].append(dem("A", "ox", 100, "2026"))
    r = solve_reserves(tmp_path, case)
    assert r.solve.objective == pytest.approx(14300.0, **APPROX)
    assert value(r.tables["production"], "activity_t_per_yr", facility="fa", period="2025") == pytest.approx(0.0, **APPROX)
    assert value(r.tables["production"], "activity_t_per_yr", facility="fa", period="2026") == pytest.approx(30.0, **APPROX)
    assert list(r.tables["price_floors"]["period"]) == ["2026"]


# --- validation ---------------------------------------------------------------------

def test_negative_floor(tmp_path):
    p = find(problems(tmp_path, floor_case({"floor": "x", "facilities": "fb", "mechanism": "cfd",
                                            "index_zone": "A", "floor_price_usd_per_t": -5})),
             "price_floors", 2, "floor_price_usd_per_t", "out of range")
    assert p.expected == "a number at least 0"


def test_offtake_names_unknown_stockpile(tmp_path):
    p = find(problems(tmp_path, floor_case(
        {"floor": "ot", "facilities": "fa", "mechanism": "offtake", "quantity_t_per_yr": 30,
         "offtake_stockpile": "rez"}, stockpiles=reserve())), "price_floors", 2, "offtake_stockpile",
        "unknown stockpile")
    assert "did you mean 'res'" in p.message


def test_mechanisms_needing_quantity_with_quantity_blank(tmp_path):
    found = problems(tmp_path, floor_case(
        {"floor": "mr", "facilities": "fa", "mechanism": "must_run"},
        {"floor": "ot", "facilities": "fa", "mechanism": "offtake", "offtake_stockpile": "res"},
        stockpiles=reserve()))
    find(found, "price_floors", 2, "quantity_t_per_yr", "quantity_t_per_yr is blank")
    find(found, "price_floors", 3, "quantity_t_per_yr", "quantity_t_per_yr is blank")


def test_unknown_period(tmp_path):
    p = find(problems(tmp_path, floor_case({"floor": "mr", "facilities": "fa", "mechanism": "must_run",
                                            "quantity_t_per_yr": 10, "periods": "2025,2099"})),
             "price_floors", 2, "periods", "unknown period")
    assert p.value == "2099"


def test_each_mechanism_has_what_it_needs(tmp_path):
    found = problems(tmp_path, floor_case(
        {"floor": "c1", "mechanism": "cfd"},                                        # row 2
        {"floor": "c2", "facilities": "fla", "mechanism": "cfd", "index_zone": "A"},  # row 3
        {"floor": "mr", "facilities": "fa", "mechanism": "must_run", "quantity_t_per_yr": 61},  # row 4
        {"floor": "ot", "facilities": "fa", "mechanism": "offtake", "quantity_t_per_yr": 5},  # row 5
        {"floor": "o2", "facilities": "fa", "mechanism": "offtake", "quantity_t_per_yr": 5,
         "offtake_stockpile": "la_store"},                                          # row 6
        {"floor": "fd", "mechanism": "floor_duty"},                                 # row 7
        stockpiles=[{"stockpile": "la_store", "holder": "A", "product": "la"}]))
    find(found, "price_floors", 2, "facilities", "needs covered facilities")
    find(found, "price_floors", 2, "index_zone", "needs index_zone")
    find(found, "price_floors", 3, "facilities", "does not make the product")
    p = find(found, "price_floors", 4, "quantity_t_per_yr", "above covered capacity")
    assert "(60 t/yr)" in p.expected
    find(found, "price_floors", 5, "offtake_stockpile", "needs a stockpile")
    find(found, "price_floors", 6, "offtake_stockpile", "holds la")
    find(found, "price_floors", 7, "index_zone", "needs index_zone")


def test_floor_duty_needs_reference_price(tmp_path):
    case = floor_case({"floor": "fd", "mechanism": "floor_duty", "index_zone": "A"})
    case["products"][0]["reference_price_usd_per_t"] = None
    find(problems(tmp_path, case), "price_floors", 2, "product", "needs the product's reference price")


def test_offtake_the_plants_cannot_fill_is_unmet_not_infeasible(tmp_path):
    """The covered plant fc (100 t/yr) separates a feed nobody supplies: the 30 t/yr
    contract cannot be filled. The case still solves, with the 30 t reported unmet at
    the default shortfall penalty (1e6 USD/t) and the rest of the plan as without it."""
    case = floor_case({"floor": "g", "product": "ox", "facilities": "fc", "floor_price_usd_per_t": 50,
                       "mechanism": "offtake", "quantity_t_per_yr": 30, "offtake_stockpile": "res"},
                      stockpiles=reserve())
    case["products"].append(product("feed", "concentrate", "mix"))
    case["processes"].append(proc("sep_feed", "separation"))
    case["recipes"] += [rec("sep_feed", "feed", -1), rec("sep_feed", "ox", 1)]
    case["facilities"].append(fac("fc", "A", 100))
    case["facility_processes"].append(fp("fc", "sep_feed", 1))
    r = solve_reserves(tmp_path, case)
    row = r.tables["price_floors"].iloc[0]
    assert row["offtake_t_per_yr"] == pytest.approx(0.0, abs=1e-9)
    assert row["offtake_unmet_t_per_yr"] == pytest.approx(30.0)
    assert value(r.tables["costs"], "cost_usd", component="floor_offtake_unmet") == pytest.approx(30.0 * 1e6)
    assert r.solve.objective == pytest.approx(7000.0 + 30.0 * 1e6)
