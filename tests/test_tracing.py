"""Content tracing by proportional mixing: a three-country chain traced by hand, a
stockpile release, and the shipped example (shares sum to 1).

The hand case (every capacity is needed, so the plan is forced):
  A mines 60 t REO of concentrate, B mines 40. A separates 30 of its own; C separates
  the other 70 (30 from A, 40 from B); separation yields half NdPr oxide, half La oxide
  (disposed of). B makes 100 t of magnets from 15 t oxide from A and 35 from C (0.5 t
  oxide + 0.5 t iron-boron per t magnet); B uses 60 and ships 40 to A.
  C's oxide: mined A 30/70 = 3/7, B 4/7; separated C.
  B's magnets: mined A (15 + 35 x 3/7) / 50 = 0.6, B 0.4; separated A 0.3, C 0.7.
  A's magnets are B's (imports carry the exporter's mix). Iron-boron has no rare-earth
  content and counts for nothing.
"""

from __future__ import annotations

import pytest

from conftest import solve
from model.analysis.tracing import STOCKPILE, content_shares, period_flows, trace_period
from rows import dem, fac, fp, proc, product, rec

APPROX = dict(rel=1e-9, abs=1e-9)


def lane(a, b, p, cost=10.0):
    return {"from_country": a, "to_country": b, "product": p, "cost_usd_per_t": cost}


def three_country_case() -> dict:
    return {
        "periods": [{"period": "2025", "start_year": 2025, "duration_yr": 1}],
        "countries": [{"country": c} for c in ("A", "B", "C")],
        "products": [product("conc", "concentrate", "mix"), product("ox", "oxide", "NdPr"),
                     product("la", "oxide", "La", disposal_cost_usd_per_t=1),
                     product("feb", "input", "", unit="t"), product("mag", "magnet", "mix", unit="t_magnet")],
        "processes": [proc("mine", "mining"), proc("sep", "separation"), proc("make", "magnet"),
                      proc("buy_feb", "other")],
        "recipes": [rec("mine", "conc", 1), rec("sep", "conc", -1), rec("sep", "ox", 0.5), rec("sep", "la", 0.5),
                    rec("make", "ox", -0.5), rec("make", "feb", -0.5), rec("make", "mag", 1),
                    rec("buy_feb", "feb", 1)],
        "facilities": [fac("mine_a", "A", 60), fac("mine_b", "B", 40), fac("sep_a", "A", 30),
                       fac("sep_c", "C", 70), fac("mag_b", "B", 1000), fac("feb_b", "B", 1e6)],
        "facility_processes": [fp("mine_a", "mine", 10), fp("mine_b", "mine", 10), fp("sep_a", "sep", 10),
                               fp("sep_c", "sep", 10), fp("mag_b", "make", 10), fp("feb_b", "buy_feb", 1)],
        "demand": [dem("B", "mag", 60), dem("A", "mag", 40)],
        "transport": [lane("A", "C", "conc"), lane("B", "C", "conc"), lane("A", "B", "ox"),
                      lane("C", "B", "ox"), lane("B", "A", "mag")],
    }


def shares(cs, country, product_, basis) -> dict[str, float]:
    sub = cs[(cs["country"] == country) & (cs["product"] == product_) & (cs["basis"] == basis)]
    return dict(zip(sub["origin_country"], sub["content_share"]))


def test_three_country_content_shares_match_the_hand_trace(tmp_path):
    r = solve(tmp_path, three_country_case())
    assert r.tables["shortfall"].empty
    cs = content_shares(r.tables)
    for country, supply in (("B", 100.0), ("A", 40.0)):
        mined = shares(cs, country, "mag", "mined_in")
        assert mined.keys() == {"A", "B"}
        assert mined["A"] == pytest.approx(0.6, **APPROX)
        assert mined["B"] == pytest.approx(0.4, **APPROX)
        sep = shares(cs, country, "mag", "separated_in")
        assert sep.keys() == {"A", "C"}
        assert sep["A"] == pytest.approx(0.3, **APPROX)
        assert sep["C"] == pytest.approx(0.7, **APPROX)
        rows = cs[(cs["country"] == country) & (cs["product"] == "mag")]
        assert rows["supply_t_per_yr"].to_numpy() == pytest.approx(supply, **APPROX)
        assert rows.groupby("basis")["origin_t_per_yr"].sum().to_numpy() == pytest.approx(supply, **APPROX)
    # Only final products (those with demand) are reported.
    assert set(cs["product"]) == {"mag"}
    # Intermediate nodes through the solver: C's oxide is 3/7 A, 4/7 B by mining.
    pf = period_flows(r.tables, "2025")
    mined, inflow = trace_period(pf, r.tables["chain"], "mining")
    assert mined.loc[("C", "ox"), "A"] == pytest.approx(3 / 7, **APPROX)
    assert mined.loc[("C", "ox"), "B"] == pytest.approx(4 / 7, **APPROX)
    assert inflow[("C", "ox")] == pytest.approx(35.0, **APPROX)
    # Iron-boron has no upstream mining: labelled '(no mining)', and it leaves no trace in the magnet.
    assert mined.loc[("B", "feb"), "(no mining)"] == pytest.approx(1.0, **APPROX)


def test_content_shares_sum_to_one_on_the_example():
    from test_cli import EXAMPLE
    from model.runs.pipeline import run_case
    r = run_case(str(EXAMPLE), "cn_heavy_ban")
    cs = content_shares(r.tables)
    total = cs.groupby(["country", "product", "period", "basis"])["content_share"].sum()
    assert len(total) > 20
    assert total.to_numpy() == pytest.approx(1.0, abs=1e-9)
    assert (cs["content_share"] > 0).all() and (cs["content_share"] <= 1 + 1e-12).all()
    # Under the ban no Chinese Dy leaves China, yet Japanese magnets still have a Chinese
    # content share through NdPr: a content share is not the taint rule.
    jp = shares(cs[cs["period"] == "2025"], "JPN", "magnet_ht", "mined_in")
    assert 0 < jp.get("CHN", 0.0) < 1


def test_stockpile_release_is_its_own_origin(tmp_path):
    """A holds 30 t of oxide and releases it all; its plant makes 70; B's supply of 100 t
    imported from A is 30 % 'stockpile', 70 % mined in A."""
    case = {
        "periods": [{"period": "2025", "start_year": 2025, "duration_yr": 1}],
        "countries": [{"country": "A"}, {"country": "B"}],
        "products": [product("conc", "concentrate", "mix"), product("ox", "oxide", "NdPr")],
        "processes": [proc("mine", "mining"), proc("sep", "separation")],
        "recipes": [rec("mine", "conc", 1), rec("sep", "conc", -1), rec("sep", "ox", 1)],
        "facilities": [fac("mine_a", "A", 70), fac("sep_a", "A", 70)],
        "facility_processes": [fp("mine_a", "mine", 10), fp("sep_a", "sep", 10)],
        "demand": [dem("B", "ox", 100)],
        "transport": [lane("A", "B", "ox")],
        "stockpiles": [{"stockpile": "res", "holder": "A", "product": "ox", "initial_t": 30,
                        "terminal_rule": "free"}],
    }
    r = solve(tmp_path, case)
    cs = content_shares(r.tables)
    mined = shares(cs, "B", "ox", "mined_in")
    assert mined == pytest.approx({"A": 0.7, STOCKPILE: 0.3}, **APPROX)
