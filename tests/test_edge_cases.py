"""Cases a review found wrong, solved by hand: routes that only new capacity or a reserve
uses, origin classes sharing a lane, quotas and duties counted once at the border,
reserves that ship under origin tracking, offtakes that would pass a ban, reserved
characters in codes."""

from __future__ import annotations

import pytest

from conftest import solve, value
from model.case.casewriter import write_case
from model.case.schema import InputError
from model.runs.pipeline import load_case

APPROX = dict(rel=1e-7, abs=1e-6)
OX = {"product": "ox", "stage": "oxide", "element": "Nd", "unit": "t_REO", "reference_price_usd_per_t": 100}


def one(period="2025"):
    return [{"period": period, "start_year": int(period), "duration_yr": 1}]


def maker(facility, country, cost=100, **kw):
    return ({"facility": facility, "country": country, "capacity_t_per_yr": 1000, **kw},
            {"facility": facility, "process": "make", "unit_cost_usd_per_t": cost})


def ox_case(countries, makers, demand, lanes, **more):
    facs = [maker(m[0], m[1], *(m[2:3] or (100,)), **(m[3] if len(m) > 3 else {})) for m in makers]
    return {"periods": more.pop("periods", one()),
            "countries": [c if isinstance(c, dict) else {"country": c} for c in countries],
            "products": [OX], "processes": [{"process": "make", "stage": "separation"}],
            "recipes": [{"process": "make", "product": "ox", "coefficient": 1}],
            "facilities": [f for f, _ in facs], "facility_processes": [p for _, p in facs],
            "demand": [{"country": c, "product": "ox", "period": t, "quantity_t_per_yr": q,
                        "shortfall_penalty_usd_per_t": 1e4} for c, q, t in demand],
            "transport": [{"from_country": f, "to_country": t, "product": "ox", "cost_usd_per_t": c, **x}
                          for f, t, c, *rest in lanes for x in [rest[0] if rest else {}]],
            **more}


def test_a_lane_only_new_capacity_would_use_is_kept(tmp_path):
    """B mines ore at 10; only an expansion option in A separates it (capex 10 per t/yr,
    10-year life, r = 0: 1 a year). Per t of oxide: ore 10 + freight 5 + annuity 1 = 16:
    A builds 100 t/yr and serves its 100 t in both years: 2 x 1,600 = 3,200."""
    case = {
        "periods": [{"period": p, "start_year": int(p), "duration_yr": 1} for p in ("2025", "2026")],
        "countries": [{"country": "A"}, {"country": "B"}],
        "products": [{"product": "ore", "stage": "concentrate", "element": "mix", "unit": "t_REO"}, OX],
        "processes": [{"process": "mine", "stage": "mining"}, {"process": "sep", "stage": "separation"}],
        "recipes": [{"process": "mine", "product": "ore", "coefficient": 1},
                    {"process": "sep", "product": "ore", "coefficient": -1},
                    {"process": "sep", "product": "ox", "coefficient": 1}],
        "facilities": [{"facility": "mB", "country": "B", "capacity_t_per_yr": 1000}],
        "facility_processes": [{"facility": "mB", "process": "mine", "unit_cost_usd_per_t": 10}],
        "demand": [{"country": "A", "product": "ox", "period": t, "quantity_t_per_yr": 100,
                    "shortfall_penalty_usd_per_t": 1e5} for t in ("2025", "2026")],
        "transport": [{"from_country": "*", "to_country": "*", "product": "*", "cost_usd_per_t": 5}],
        "expansion": [{"option": "sepA", "country": "A", "process": "sep", "max_build_t_per_yr": 1000,
                       "capex_usd_per_t_per_yr": 10, "lifetime_yr": 10, "lead_time_yr": 0}],
    }
    r = solve(tmp_path, case)
    assert r.solve.objective == pytest.approx(3200.0, **APPROX)
    assert r.tables["shortfall"].empty


def test_a_reserve_held_where_nothing_is_made_or_used_can_ship(tmp_path):
    """H holds 100 t and has no plant and no demand; B makes ox at 100 and ships to A at
    5 in 2025 (10,500); B's plant closes after 2025, so in 2026 the reserve ships H -> A
    at 5 (500): 11,000, nothing short."""
    case = ox_case(["A", "B", "H"], [("fB", "B", 100, {"last_year": 2025})],
                   [("A", 100, "2025"), ("A", 100, "2026")],
                   [("B", "A", 5), ("H", "A", 5)],
                   periods=[{"period": "2025", "start_year": 2025, "duration_yr": 1},
                            {"period": "2026", "start_year": 2026, "duration_yr": 1, "regime": "crisis"}],
                   stockpiles=[{"stockpile": "res", "holder": "H", "product": "ox", "initial_t": 100,
                                "capacity_t": 1000, "terminal_rule": "free"}])
    r = solve(tmp_path, case)
    assert r.solve.objective == pytest.approx(11000.0, **APPROX)
    assert value(r.tables["flows"], "flow_t_per_yr", from_country="H", period="2026") == pytest.approx(100.0)


def test_origin_classes_share_a_lane_capacity(tmp_path):
    """A's only supply route is T -> A, capped at 50 t/yr. X's ban on D gives ox origin
    classes; X- and other-origin ox together may not exceed 50: A is 50 t short.
    Cost 50 x (100 + 1 + 1) + 1 x (100 + 1) for D + 50 x 10,000 = 505,201."""
    case = ox_case(["A", "X", "B", "T", "D"], [("fX", "X"), ("fB", "B")],
                   [("A", 100, "2025"), ("D", 1, "2025")],
                   [("X", "T", 1), ("B", "T", 1), ("B", "D", 1), ("T", "A", 1, {"max_flow_t_per_yr": 50})],
                   export_controls=[{"control": "ban_D", "exporter": "X", "product": "ox",
                                     "destinations": "D", "kind": "ban"}])
    r = solve(tmp_path, case)
    assert r.solve.objective == pytest.approx(505201.0, **APPROX)
    assert value(r.tables["flows"], "flow_t_per_yr", from_country="T", to_country="A") == pytest.approx(50.0)


def test_a_quota_counts_material_once_when_it_enters_the_destinations(tmp_path):
    """A 100 t/yr quota on X's ox to D1 and D2; the only route to D2 is X -> D1 -> D2. Both
    get 50 t: 100 t leave X (at the quota), cost 100 x 101 + 50 x 1 = 10,150."""
    case = ox_case(["X", "D1", "D2", "E"], [("fX", "X")], [("D1", 50, "2025"), ("D2", 50, "2025")],
                   [("X", "D1", 1), ("D1", "D2", 1)],
                   export_controls=[{"control": "q", "exporter": "X", "product": "ox", "destinations": "D1,D2",
                                     "kind": "quota", "quota_t_per_yr": 100}])
    r = solve(tmp_path, case)
    assert r.solve.objective == pytest.approx(10150.0, **APPROX)
    assert r.tables["shortfall"].empty
    assert r.tables["controls"].iloc[0]["used_t_per_yr"] == pytest.approx(100.0)


def test_a_bloc_duty_is_paid_once_at_the_bloc_border(tmp_path):
    """The EU (D1, D2) charges 50 USD/t on X's ox; X -> D1 -> D2 pays it once: 50 x (100 + 1
    + 50 + 1) = 7,600, revenue 2,500."""
    case = ox_case(["X", {"country": "D1", "blocs": "EU"}, {"country": "D2", "blocs": "EU"}], [("fX", "X")],
                   [("D2", 50, "2025")], [("X", "D1", 1), ("D1", "D2", 1)],
                   tariffs=[{"importer": "EU", "exporter": "X", "product": "ox", "specific_usd_per_t": 50}])
    r = solve(tmp_path, case)
    assert r.solve.objective == pytest.approx(7600.0, **APPROX)
    assert r.tables["tariffs"]["revenue_usd"].sum() == pytest.approx(2500.0, **APPROX)


def test_a_reserve_ships_when_its_product_carries_origin_classes(tmp_path):
    """X bans ox to A in 2026 (classes); H's 100 t reserve ships to A at 5: cost 500."""
    case = ox_case(["A", "X", "H"], [("fX", "X")], [("A", 100, "2026")],
                   [("*", "*", 5)],
                   periods=[{"period": "2025", "start_year": 2025, "duration_yr": 1},
                            {"period": "2026", "start_year": 2026, "duration_yr": 1, "regime": "crisis"}],
                   export_controls=[{"control": "ban_A", "exporter": "X", "product": "ox", "destinations": "A",
                                     "kind": "ban", "periods": "2026"}],
                   stockpiles=[{"stockpile": "res", "holder": "H", "product": "ox", "initial_t": 100,
                                "capacity_t": 1000, "terminal_rule": "free"}])
    r = solve(tmp_path, case)
    assert r.solve.objective == pytest.approx(500.0, **APPROX)
    assert value(r.tables["flows"], "flow_t_per_yr", from_country="H", to_country="A") == pytest.approx(100.0)


def _problems(tmp_path, case):
    path = write_case(tmp_path / "bad.xlsx", case, {"base_year": 2025})
    with pytest.raises(InputError) as exc:
        load_case(str(path))
    return exc.value.problems


def test_an_offtake_into_a_reserve_abroad_is_refused(tmp_path):
    case = ox_case(["X", "D"], [("fX", "X")], [("D", 100, "2025")], [("X", "D", 1)],
                   stockpiles=[{"stockpile": "h", "holder": "D", "product": "ox", "capacity_t": 1000}],
                   price_floors=[{"floor": "g", "product": "ox", "facilities": "fX", "mechanism": "offtake",
                                  "floor_price_usd_per_t": 200, "quantity_t_per_yr": 100, "offtake_stockpile": "h"}])
    p = next(p for p in _problems(tmp_path, case) if p.column == "offtake_stockpile")
    assert (p.sheet, p.row) == ("price_floors", 2)
    assert "held in D" in p.message and "held in X" in p.expected


def test_reserved_characters_in_codes_are_refused(tmp_path):
    case = ox_case(["X", "D"], [("fX", "X")], [("D", 100, "2025")], [("X", "D", 1)])
    case["products"] = [dict(OX, product="ox@1")]
    case["recipes"][0]["product"] = "ox@1"
    case["demand"][0]["product"] = "ox@1"
    case["transport"][0]["product"] = "*"
    p = next(p for p in _problems(tmp_path, case) if p.sheet == "products")
    assert (p.row, p.column) == (2, "product") and "may not contain @" in p.message


def test_a_quota_on_an_element_its_products_do_not_hold_is_refused(tmp_path):
    case = ox_case(["X", "D"], [("fX", "X")], [("D", 100, "2025")], [("X", "D", 1)],
                   export_controls=[{"control": "q", "exporter": "X", "product": "ox", "kind": "quota",
                                     "element": "Dy", "quota_t_per_yr": 1}])
    case["products"].append({"product": "dy", "stage": "oxide", "element": "Dy", "unit": "t_REO"})
    p = next(p for p in _problems(tmp_path, case) if p.sheet == "export_controls")
    assert (p.row, p.column) == (2, "element") and "none of the controlled products contains Dy" in p.message


def test_an_offtake_whose_plants_never_run_in_its_periods_is_refused(tmp_path):
    case = ox_case(["X", "D"], [("fX", "X", 100, {"last_year": 2025})], [("X", 100, "2025")], [("X", "D", 1)],
                   periods=[{"period": "2025", "start_year": 2025, "duration_yr": 1},
                            {"period": "2026", "start_year": 2026, "duration_yr": 1}],
                   stockpiles=[{"stockpile": "h", "holder": "X", "product": "ox", "capacity_t": 1000}],
                   price_floors=[{"floor": "g", "product": "ox", "facilities": "fX", "mechanism": "offtake",
                                  "floor_price_usd_per_t": 200, "quantity_t_per_yr": 5, "offtake_stockpile": "h",
                                  "periods": "2026"}])
    p = next(p for p in _problems(tmp_path, case) if p.sheet == "price_floors")
    assert (p.row, p.column) == (2, "facilities") and "would do nothing" in p.message
