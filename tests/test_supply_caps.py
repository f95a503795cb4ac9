"""Supply caps, solved by hand: a mining quota that binds (the price rises to the next
source; the quota's shadow value is the gap), a product quota on a bloc, a quota on new
capacity, and a 65 % diversification cap that binds (the cheapest supplier is held to
65 % of the bloc's use, the rest comes from the next). Every solution is checked
against production_quota and supplier_share_cap recomputed from the production and
flow tables; bad cap rows are rejected with the row named."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import TOL, assert_feasible, value
from model.case.casewriter import write_case
from model.case.schema import InputError
from model.runs.pipeline import load_case, run_case
from test_expansion import check_feasible as check_feasible_with_expansion

APPROX = dict(rel=1e-7, abs=1e-6)


def case(countries: list[dict], facilities: list[tuple], lanes: list[tuple], demand: list[tuple],
         caps: list[dict], n_periods: int = 1, yield_: float = 1.0) -> dict:
    """One product `ox` made by process `make` (stage mining, `yield_` t per unit of
    activity). facilities: (code, country, capacity, unit cost); lanes: (from, to,
    freight); demand: (country, t/yr, period)."""
    return {
        "periods": [{"period": str(2025 + i), "start_year": 2025 + i, "duration_yr": 1} for i in range(n_periods)],
        "countries": countries,
        "products": [{"product": "ox", "stage": "concentrate", "element": "mix", "unit": "t_REO"}],
        "processes": [{"process": "make", "stage": "mining"}],
        "recipes": [{"process": "make", "product": "ox", "coefficient": yield_}],
        "facilities": [{"facility": f, "country": c, "capacity_t_per_yr": cap} for f, c, cap, _ in facilities],
        "facility_processes": [{"facility": f, "process": "make", "unit_cost_usd_per_t": u}
                               for f, _, _, u in facilities],
        "demand": [{"country": c, "product": "ox", "period": p, "quantity_t_per_yr": q,
                    "shortfall_penalty_usd_per_t": 1e5} for c, q, p in demand],
        "transport": [{"from_country": a, "to_country": b, "product": "*", "cost_usd_per_t": f} for a, b, f in lanes],
        "supply_caps": caps,
    }


def solve(tmp_path, sheets, with_expansion: bool = False):
    path = write_case(tmp_path / "case.xlsx", sheets, {"base_year": 2025, "discount_rate": 0.0}, overwrite=True)
    result = run_case(str(path))
    assert result.optimal, result.solve.message
    if with_expansion:
        check_feasible_with_expansion(result)
    else:
        assert_feasible(result)
    check_caps(result)
    return result


def check_caps(result) -> None:
    """Recompute each cap row from the production, expansion and flow tables, per the
    module's definitions, and check value <= limit."""
    t = result.tables
    c = result.case.tables
    rec = c["recipes"]
    out = rec[rec["coefficient"] > 0].groupby(["process", "product"])["coefficient"].sum().reset_index()
    acts = t["production"][["country", "process", "period", "activity_t_per_yr"]]
    if "expansion_capacity" in t:
        acts = pd.concat([acts, t["expansion_capacity"][acts.columns]], ignore_index=True)
    stage = c["processes"].set_index("process")["stage"]
    made = acts.merge(out, on="process")
    made["q"] = made["activity_t_per_yr"] * made["coefficient"]
    blocs: dict[str, list[str]] = {}
    for code, text in zip(c["countries"]["country"], c["countries"]["blocs"]):
        for b in str(text or "").split(","):
            if b:
                blocs.setdefault(b, []).append(code)
    every = list(c["countries"]["country"])
    members = lambda code: every if code == "*" else blocs.get(code, [code])  # noqa: E731
    flows = t["flows"]
    rows = t["supply_caps"]
    caps = c["supply_caps"].set_index("cap")
    for r in rows.to_dict("records"):
        spec = caps.loc[r["cap"]]
        per = r["period"]
        if r["kind"] == "quota":
            where = members(spec["country"])
            if spec["product"]:
                sel = made[made["country"].isin(where) & (made["period"] == per) & (made["product"] == spec["product"])]
                if spec["stage"]:
                    sel = sel[sel["process"].map(stage) == spec["stage"]]
                got = sel["q"].sum()
            else:
                sel = acts[acts["country"].isin(where) & (acts["period"] == per)
                           & (acts["process"].map(stage) == spec["stage"])]
                got = sel["activity_t_per_yr"].sum()
            assert got <= spec["cap_t_per_yr"] + TOL, f"production_quota {r['cap']} broken"
        else:
            bloc = members(spec["bloc"])
            f = flows[(flows["product"] == spec["product"]) & (flows["period"] == per)]
            imp = f[f["to_country"].isin(bloc) & ~f["from_country"].isin(bloc)]
            exp = f[f["from_country"].isin(bloc) & ~f["to_country"].isin(bloc)]
            prod = made[(made["product"] == spec["product"]) & (made["period"] == per)]
            use = prod.loc[prod["country"].isin(bloc), "q"].sum() + imp["flow_t_per_yr"].sum() - exp["flow_t_per_yr"].sum()
            k = r["supplier"]
            if k in bloc:
                got = prod.loc[prod["country"] == k, "q"].sum() - exp.loc[exp["from_country"] == k, "flow_t_per_yr"].sum()
            else:
                got = imp.loc[imp["from_country"] == k, "flow_t_per_yr"].sum()
            assert r["bloc_use_t_per_yr"] == pytest.approx(use, abs=1e-6)
            assert got <= spec["max_share"] * use + TOL, f"supplier_share_cap {r['cap']} / {k} broken"
        assert r["value_t_per_yr"] == pytest.approx(got, abs=1e-6)
        assert r["slack_t_per_yr"] >= -TOL


def row(result, cap, period="2025", supplier="") -> dict:
    t = result.tables["supply_caps"]
    sel = t[(t["cap"] == cap) & (t["period"] == period) & (t["supplier"] == supplier)]
    assert len(sel) == 1, t
    return sel.iloc[0].to_dict()


TWO = [{"country": "A"}, {"country": "B"}]


def test_mining_quota_binds_in_its_period_only(tmp_path):
    """A mines at 10, B at 30 and ships to A at 5 (landed 35); A needs 100 t/yr in 2025
    and 2026 (r = 0, weights 1). A's mining quota of 60 t/yr holds in 2026 only.
    2025: A mines 100, cost 1000, price 10. 2026: A mines 60, B 40: 600 + 40 x 35 = 2000,
    price in A 35 (the next-cheapest source), in B 30. Objective 3000.
    Shadow value of the quota in 2026 = 35 - 10 = 25 USD/t; binding, slack 0."""
    caps = [{"cap": "a_mining", "country": "A", "stage": "mining", "cap_t_per_yr": 60, "periods": "2026"}]
    r = solve(tmp_path, case(TWO, [("fa", "A", 1000, 10), ("fb", "B", 1000, 30)], [("B", "A", 5)],
                             [("A", 100, "2025"), ("A", 100, "2026")], caps, n_periods=2))
    t = r.tables
    assert r.solve.objective == pytest.approx(3000, **APPROX)
    prod = t["production"]
    assert value(prod, "activity_t_per_yr", facility="fa", period="2025") == pytest.approx(100, **APPROX)
    assert value(prod, "activity_t_per_yr", facility="fa", period="2026") == pytest.approx(60, **APPROX)
    assert value(t["flows"], "flow_t_per_yr", period="2026") == pytest.approx(40, **APPROX)
    prices = t["prices"]
    assert value(prices, "price_usd_per_t", country="A", period="2025") == pytest.approx(10, **APPROX)
    assert value(prices, "price_usd_per_t", country="A", period="2026") == pytest.approx(35, **APPROX)
    assert value(prices, "price_usd_per_t", country="B", period="2026") == pytest.approx(30, **APPROX)
    assert list(t["supply_caps"]["period"]) == ["2026"]
    q = row(r, "a_mining", "2026")
    assert q["kind"] == "quota" and q["binding"]
    assert q["value_t_per_yr"] == pytest.approx(60, **APPROX)
    assert q["slack_t_per_yr"] == pytest.approx(0, **APPROX)
    assert q["shadow_value_usd_per_t"] == pytest.approx(25, **APPROX)
    assert t["shortfall"].empty


def test_product_quota_on_a_bloc_counts_output_coefficients(tmp_path):
    """`make` yields 0.5 t ox per unit of activity. A (bloc G, 100 units of capacity at
    10: 20 per t ox), B (bloc G, at 12: 24 per t ox) and C (at 20: 40 per t ox) serve
    A's 100 t/yr; B and C ship to A at 2. G's output of ox is capped at 70 t/yr
    (activity x 0.5 over A and B jointly). A makes 50 t (activity 100), B 20 t (40),
    C 30 t (60). Cost 1000 + 480 + 40 + 1200 + 60 = 2780. Price in A: C's landed 42.
    Shadow value: a t more of G's quota replaces C with B: 42 - 26 = 16 USD/t. Price in
    B: 24 to make a t plus 16 for the quota it uses = 40. A's capacity is worth
    0.5 x 26 - 10 = 3 per unit (its extra half tonne displaces B's under the cap)."""
    countries = [{"country": "A", "blocs": "G"}, {"country": "B", "blocs": "G"}, {"country": "C"}]
    caps = [{"cap": "g_ox", "country": "G", "product": "ox", "cap_t_per_yr": 70}]
    r = solve(tmp_path, case(countries, [("fa", "A", 100, 10), ("fb", "B", 1000, 12), ("fc", "C", 1000, 20)],
                             [("B", "A", 2), ("C", "A", 2)], [("A", 100, "2025")], caps, yield_=0.5))
    t = r.tables
    assert r.solve.objective == pytest.approx(2780, **APPROX)
    prod = t["production"].set_index("facility")["activity_t_per_yr"]
    assert prod["fa"] == pytest.approx(100, **APPROX)
    assert prod["fb"] == pytest.approx(40, **APPROX)
    assert prod["fc"] == pytest.approx(60, **APPROX)
    assert value(t["prices"], "price_usd_per_t", country="A") == pytest.approx(42, **APPROX)
    assert value(t["prices"], "price_usd_per_t", country="B") == pytest.approx(40, **APPROX)
    q = row(r, "g_ox")
    assert q["binding"] and q["value_t_per_yr"] == pytest.approx(70, **APPROX)
    assert q["shadow_value_usd_per_t"] == pytest.approx(16, **APPROX)
    cap = t["capacity_values"].set_index("facility")
    assert cap.loc["fa", "capacity_value_usd_per_t_per_yr"] == pytest.approx(3, **APPROX)


def test_quota_counts_new_capacity(tmp_path):
    """A has no plant, only an option to build mining capacity: capex 10 per t/yr,
    lifetime 1 yr, r = 0 (annuity 10), no running cost; B mines at 30, landed 35. A's
    mining quota of 60 binds on the new capacity: A builds 60, B ships 40.
    Cost 600 + 1400 = 2000; price in A 35; quota shadow 35 - 10 = 25; the new capacity's
    value equals its annuity, 10."""
    sheets = case(TWO, [("fb", "B", 1000, 30)], [("B", "A", 5)], [("A", 100, "2025")],
                  [{"cap": "a_mining", "country": "A", "stage": "mining", "cap_t_per_yr": 60}])
    sheets["expansion"] = [{"option": "new_mine", "country": "A", "process": "make", "max_build_t_per_yr": 1000,
                            "capex_usd_per_t_per_yr": 10, "lifetime_yr": 1}]
    r = solve(tmp_path, sheets, with_expansion=True)
    t = r.tables
    assert r.solve.objective == pytest.approx(2000, **APPROX)
    assert value(t["builds"], "build_t_per_yr") == pytest.approx(60, **APPROX)
    assert value(t["expansion_capacity"], "activity_t_per_yr") == pytest.approx(60, **APPROX)
    assert value(t["prices"], "price_usd_per_t", country="A") == pytest.approx(35, **APPROX)
    q = row(r, "a_mining")
    assert q["binding"] and q["shadow_value_usd_per_t"] == pytest.approx(25, **APPROX)
    assert value(t["expansion_capacity"], "capacity_value_usd_per_t_per_yr") == pytest.approx(10, **APPROX)


CRMA = {"cap": "crma", "country": "*", "product": "ox", "bloc": "EU", "max_share": 0.65}


def test_65_percent_cap_binds_on_the_cheapest_supplier(tmp_path):
    """Bloc EU = {A}. X makes at 10 and ships to A at 5 (landed 15); A makes at 50. A
    needs 100 t/yr. Uncapped, X would supply all 100. With no supplier above 65 % of
    EU use (use = A's production + imports = 100): X ships 65, A makes 35.
    Cost 65 x 15 + 35 x 50 = 975 + 1750 = 2725. Price in A: a t more of use is met
    65 % by X and 35 % by A: 0.65 x 15 + 0.35 x 50 = 27.25; price in X 10.
    X's row binds with shadow value 50 - 15 = 35 USD/t (a t more of X's allowance
    replaces a t of A's own); A's own row (35 <= 65) is slack with value 0."""
    countries = [{"country": "A", "blocs": "EU"}, {"country": "X"}]
    r = solve(tmp_path, case(countries, [("fa", "A", 1000, 50), ("fx", "X", 1000, 10)], [("X", "A", 5)],
                             [("A", 100, "2025")], [CRMA]))
    t = r.tables
    assert r.solve.objective == pytest.approx(2725, **APPROX)
    assert value(t["flows"], "flow_t_per_yr", from_country="X") == pytest.approx(65, **APPROX)
    assert value(t["production"], "activity_t_per_yr", facility="fa") == pytest.approx(35, **APPROX)
    assert value(t["prices"], "price_usd_per_t", country="A") == pytest.approx(27.25, **APPROX)
    assert value(t["prices"], "price_usd_per_t", country="X") == pytest.approx(10, **APPROX)
    x = row(r, "crma", supplier="X")
    assert x["kind"] == "share" and x["binding"]
    assert x["bloc_use_t_per_yr"] == pytest.approx(100, **APPROX)
    assert x["share"] == pytest.approx(0.65, **APPROX)
    assert x["limit_t_per_yr"] == pytest.approx(65, **APPROX)
    assert x["shadow_value_usd_per_t"] == pytest.approx(35, **APPROX)
    a = row(r, "crma", supplier="A")
    assert not a["binding"]
    assert a["slack_t_per_yr"] == pytest.approx(30, **APPROX)
    assert a["shadow_value_usd_per_t"] == pytest.approx(0, **APPROX)
    assert set(t["supply_caps"]["supplier"]) == {"A", "X"}
    assert t["shortfall"].empty


def test_exports_leaving_the_bloc_are_not_its_use(tmp_path):
    """As above, and A also sells 100 t/yr to C (outside EU, lane A -> C free, C has no
    other source). EU use = A's production 135 + imports 65 - exports 100 = 100, so X is
    still held to 65 (counting the exports as use would let X ship all 100).
    Cost 135 x 50 + 65 x 15 = 7725; prices A 27.25, C 50 (an extra t for C is made in A
    and leaves the bloc: EU use and A's supply to it are unchanged)."""
    countries = [{"country": "A", "blocs": "EU"}, {"country": "X"}, {"country": "C"}]
    r = solve(tmp_path, case(countries, [("fa", "A", 1000, 50), ("fx", "X", 1000, 10)],
                             [("X", "A", 5), ("A", "C", 0)], [("A", 100, "2025"), ("C", 100, "2025")], [CRMA]))
    t = r.tables
    assert r.solve.objective == pytest.approx(7725, **APPROX)
    assert value(t["flows"], "flow_t_per_yr", from_country="X") == pytest.approx(65, **APPROX)
    assert value(t["production"], "activity_t_per_yr", facility="fa") == pytest.approx(135, **APPROX)
    assert value(t["prices"], "price_usd_per_t", country="A") == pytest.approx(27.25, **APPROX)
    assert value(t["prices"], "price_usd_per_t", country="C") == pytest.approx(50, **APPROX)
    x = row(r, "crma", supplier="X")
    assert x["binding"] and x["bloc_use_t_per_yr"] == pytest.approx(100, **APPROX)
    assert row(r, "crma", supplier="A")["value_t_per_yr"] == pytest.approx(35, **APPROX)


def test_share_cap_on_named_supplier_only(tmp_path):
    """country = X caps only X: A's own row does not exist. Same optimum as with *."""
    countries = [{"country": "A", "blocs": "EU"}, {"country": "X"}]
    r = solve(tmp_path, case(countries, [("fa", "A", 1000, 50), ("fx", "X", 1000, 10)], [("X", "A", 5)],
                             [("A", 100, "2025")], [dict(CRMA, country="X")]))
    assert r.solve.objective == pytest.approx(2725, **APPROX)
    assert list(r.tables["supply_caps"]["supplier"]) == ["X"]


# --- validation --------------------------------------------------------------------

def problems(tmp_path, caps: list[dict]) -> list:
    countries = [{"country": "A", "blocs": "EU"}, {"country": "X"}]
    sheets = case(countries, [("fa", "A", 1000, 50), ("fx", "X", 1000, 10)], [("X", "A", 5)],
                  [("A", 100, "2025")], caps)
    path = write_case(tmp_path / "bad.xlsx", sheets, {"base_year": 2025}, overwrite=True)
    with pytest.raises(InputError) as exc:
        load_case(str(path))
    return exc.value.problems


def located(problems_: list, column: str, text: str, row: int = 2):
    (p,) = [p for p in problems_ if p.column == column]
    assert (p.sheet, p.row) == ("supply_caps", row), str(p)
    assert text in p.message, str(p)
    return p


def test_share_outside_zero_one(tmp_path):
    p = located(problems(tmp_path, [dict(CRMA, max_share=1.5)]), "max_share", "out of range")
    assert "between 0 and 1" in p.expected


def test_row_with_neither_cap_nor_share(tmp_path):
    located(problems(tmp_path, [{"cap": "c", "country": "A", "stage": "mining"}]), "cap_t_per_yr",
            "neither cap_t_per_yr nor max_share")


def test_row_with_both_cap_and_share(tmp_path):
    located(problems(tmp_path, [dict(CRMA, cap_t_per_yr=10)]), "max_share", "both")


def test_max_share_without_bloc(tmp_path):
    located(problems(tmp_path, [dict(CRMA, bloc="")]), "bloc", "max_share needs a bloc")


def test_max_share_without_product(tmp_path):
    located(problems(tmp_path, [dict(CRMA, product="")]), "product", "max_share needs a product")


def test_unknown_stage(tmp_path):
    p = located(problems(tmp_path, [{"cap": "q", "country": "A", "stage": "smelting", "cap_t_per_yr": 5}]),
                "stage", "not an allowed value")
    assert p.value == "smelting"


def test_stage_no_process_has(tmp_path):
    p = located(problems(tmp_path, [{"cap": "q", "country": "A", "stage": "cracking", "cap_t_per_yr": 5}]),
                "stage", "no process has this stage")
    assert "mining" in p.expected


def test_quota_without_stage_or_product(tmp_path):
    located(problems(tmp_path, [{"cap": "q", "country": "A", "cap_t_per_yr": 5}]), "stage",
            "needs a stage or a product")


def test_unknown_bloc_in_share_cap(tmp_path):
    p = located(problems(tmp_path, [dict(CRMA, bloc="UE")]), "bloc", "unknown")
    assert "did you mean 'EU'" in p.message


def test_named_supplier_share_cap_counts_its_origin_through_a_transit_country(tmp_path):
    """CHN makes oxide at 10 and may supply at most 65 % of the EU's use (DEU, 100 t).
    Direct freight 2 (landed 12); through Malaysia 1 + 2 (landed 13); Japan makes at 30
    and ships at 5 (landed 35). Counting by shipper, Malaysia's 35 t would be Malaysian;
    tracking Chinese origin, they are Chinese: CHN supplies 65 t direct and Japan the
    other 35: cost 65 x 12 + 35 x 35 = 2005. One more tonne of EU use lets 0.65 t more
    come from China: the price in DEU is 0.65 x 12 + 0.35 x 35 = 20.05."""
    case = {
        "periods": [{"period": "2025", "start_year": 2025, "duration_yr": 1}],
        "countries": [{"country": "CHN"}, {"country": "MYS"}, {"country": "JPN"},
                      {"country": "DEU", "blocs": "EU"}],
        "products": [{"product": "ox", "stage": "oxide", "element": "Nd", "unit": "t_REO"}],
        "processes": [{"process": "make", "stage": "separation"}],
        "recipes": [{"process": "make", "product": "ox", "coefficient": 1}],
        "facilities": [{"facility": "cn", "country": "CHN", "capacity_t_per_yr": 1000},
                       {"facility": "jp", "country": "JPN", "capacity_t_per_yr": 1000}],
        "facility_processes": [{"facility": "cn", "process": "make", "unit_cost_usd_per_t": 10},
                               {"facility": "jp", "process": "make", "unit_cost_usd_per_t": 30}],
        "demand": [{"country": "DEU", "product": "ox", "period": "2025", "quantity_t_per_yr": 100,
                    "shortfall_penalty_usd_per_t": 1e4}],
        "transport": [{"from_country": f, "to_country": t, "product": "ox", "cost_usd_per_t": c}
                      for f, t, c in (("CHN", "DEU", 2), ("CHN", "MYS", 1), ("MYS", "DEU", 2), ("JPN", "DEU", 5))],
        "supply_caps": [{"cap": "crma", "country": "CHN", "product": "ox", "bloc": "EU", "max_share": 0.65}],
    }
    r = solve(tmp_path, case)
    t = r.tables
    assert r.solve.objective == pytest.approx(2005.0, rel=1e-7)
    flows = t["flows"]
    into_eu = flows[flows["to_country"] == "DEU"]
    assert into_eu.loc[into_eu["origin_class"] == "CHN", "flow_t_per_yr"].sum() == pytest.approx(65.0)
    assert value(flows, "flow_t_per_yr", from_country="JPN") == pytest.approx(35.0)
    cap = t["supply_caps"].iloc[0]
    assert cap["value_t_per_yr"] == pytest.approx(65.0) and bool(cap["binding"])
    assert value(t["prices"], "price_usd_per_t", country="DEU", origin_class="") == pytest.approx(20.05)
