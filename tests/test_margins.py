"""Margins at reference prices (model/analysis/margins.py), by hand.

Mines in A (cost 10) and B (cost 12) make an unpriced concentrate. A separator in A
(cost 20) and one in B (cost 80) turn 1 t of it into 1 t of ox (priced 50) and 0.5 t
of a by-product `by` (unpriced); a heavy separator in A (cost 5) turns 1 t of `by` into
1 t of hox (priced 40). A magnet line makes `mag` (unpriced, nobody uses it).
- netback of `by` = 40 - 5 = 35, so each separator earns 50 + 0.5 x 35 = 67.5;
- separator A pays A's concentrate at its full cost 10: margin 67.5 - 10 - 20 = 37.5;
- separator B pays B's own concentrate, 12: 67.5 - 12 - 80 = -24.5 (a loss);
- the heavy separator pays `by` its netback: 40 - 35 - 5 = 0;
- the mines are checked downstream (their cost is in the separators' input cost);
- the magnet line's output has no price and no user: it cannot be checked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model.analysis.margins import reference_margins


def tables() -> dict[str, pd.DataFrame]:
    products = pd.DataFrame({"product": ["conc", "ox", "by", "hox", "mag"],
                             "reference_price_usd_per_t": [np.nan, 50.0, np.nan, 40.0, np.nan]})
    recipes = pd.DataFrame([("mine", "conc", 1.0), ("sep", "conc", -1.0), ("sep", "ox", 1.0), ("sep", "by", 0.5),
                            ("hsep", "by", -1.0), ("hsep", "hox", 1.0), ("make", "ox", -0.5), ("make", "mag", 1.0)],
                           columns=["process", "product", "coefficient"])
    fps = pd.DataFrame([("mA", "mine", 10.0), ("mB", "mine", 12.0), ("sA", "sep", 20.0), ("sB", "sep", 80.0),
                        ("hA", "hsep", 5.0), ("gA", "make", 3.0)],
                       columns=["facility", "process", "unit_cost_usd_per_t"])
    return {"products": products, "recipes": recipes, "facility_processes": fps}


def production() -> pd.DataFrame:
    rows = [("mA", "mine", "A", 100), ("mB", "mine", "B", 50), ("sA", "sep", "A", 100), ("sB", "sep", "B", 50),
            ("hA", "hsep", "A", 75), ("gA", "make", "A", 10), ("idle", "sep", "A", 0)]
    p = pd.DataFrame(rows, columns=["facility", "process", "country", "activity_t_per_yr"])
    return p.assign(period="2025")


def test_margins_by_hand():
    m = reference_margins(tables(), production(), "2025").set_index("facility")
    assert "idle" not in m.index
    assert m.at["sA", "revenue_usd_per_t"] == pytest.approx(67.5)
    assert m.at["sA", "input_cost_usd_per_t"] == pytest.approx(10.0)
    assert m.at["sA", "margin_usd_per_t"] == pytest.approx(37.5)
    assert m.at["sB", "input_cost_usd_per_t"] == pytest.approx(12.0)
    assert m.at["sB", "margin_usd_per_t"] == pytest.approx(-24.5)
    assert m.at["hA", "margin_usd_per_t"] == pytest.approx(0.0, abs=1e-12)
    for mine in ("mA", "mB"):
        assert m.at[mine, "note"] == "checked downstream" and np.isnan(m.at[mine, "margin_usd_per_t"])
    assert m.at["gA", "note"] == "no price" and np.isnan(m.at["gA", "margin_usd_per_t"])
    assert m.at["sA", "activity_t_per_yr"] == pytest.approx(100.0)


def test_concentrate_bought_abroad_costs_the_cheapest_running_mine():
    """Without a mine in B, separator B pays the cheapest running mine anywhere (A's 10):
    67.5 - 10 - 80 = -22.5."""
    p = production()
    p = p[p["facility"] != "mB"]
    m = reference_margins(tables(), p, "2025").set_index("facility")
    assert m.at["sB", "margin_usd_per_t"] == pytest.approx(-22.5)


def test_imported_concentrate_costs_what_it_costs_where_it_comes_from():
    """Without a mine in B, separator B's concentrate comes from A (flows): A's full cost 10,
    so 67.5 - 10 - 80 = -22.5; with a third country C (mine cost 30) shipping 3 t for every
    1 t from A, B pays (10 + 3 x 30) / 4 = 25: 67.5 - 25 - 80 = -37.5."""
    p = production()
    p = p[p["facility"] != "mB"]
    flows = pd.DataFrame([("A", "B", "conc", "2025", 50.0)],
                         columns=["from_country", "to_country", "product", "period", "flow_t_per_yr"])
    m = reference_margins(tables(), p, "2025", flows).set_index("facility")
    assert m.at["sB", "margin_usd_per_t"] == pytest.approx(-22.5)
    t = tables()
    t["facility_processes"] = pd.concat([t["facility_processes"], pd.DataFrame(
        [("mC", "mine", 30.0)], columns=["facility", "process", "unit_cost_usd_per_t"])])
    p = pd.concat([p, pd.DataFrame([("mC", "mine", "C", 150, "2025")], columns=p.columns)])
    flows = pd.concat([flows, pd.DataFrame([("C", "B", "conc", "2025", 150.0)], columns=flows.columns)])
    m = reference_margins(t, p, "2025", flows).set_index("facility")
    assert m.at["sB", "input_cost_usd_per_t"] == pytest.approx(25.0)
    assert m.at["sB", "margin_usd_per_t"] == pytest.approx(-37.5)


def test_loops_of_unpriced_products_are_cut_and_an_unmade_input_costs_nothing():
    """`a` and `b` (unpriced) are made from each other (a recipe cannot use and make one
    product: process and product are its key); `c` is made and used by nothing; `x` makes
    ox (50) from 1 t of `u`, which no running tranche makes (bought in with the
    running cost 10): margin 50 - 0 - 10 = 40, not the 0 a netback of `u` would give.
    The loop a <-> b is cut at 0 and the result does not depend on the order asked."""
    products = pd.DataFrame({"product": ["a", "b", "c", "u", "ox"],
                             "reference_price_usd_per_t": [np.nan, np.nan, np.nan, np.nan, 50.0]})
    recipes = pd.DataFrame([("ab", "a", -1.0), ("ab", "b", 1.0), ("ba", "b", -1.0), ("ba", "a", 1.0),
                            ("ba", "ox", 0.1), ("cc", "c", 2.0), ("x", "u", -1.0), ("x", "ox", 1.0)],
                           columns=["process", "product", "coefficient"])
    fps = pd.DataFrame([("f1", "ab", 1.0), ("f2", "ba", 1.0), ("f3", "cc", 1.0), ("f4", "x", 10.0)],
                       columns=["facility", "process", "unit_cost_usd_per_t"])
    t = {"products": products, "recipes": recipes, "facility_processes": fps}
    prod = pd.DataFrame([("f1", "ab", "A", 1.0), ("f2", "ba", "A", 1.0), ("f3", "cc", "A", 1.0),
                         ("f4", "x", "A", 1.0)], columns=["facility", "process", "country", "activity_t_per_yr"])
    m1 = reference_margins(t, prod.assign(period="2025"), "2025").set_index("facility")
    m2 = reference_margins(t, prod.iloc[::-1].assign(period="2025"), "2025").set_index("facility")
    assert m1.at["f4", "margin_usd_per_t"] == pytest.approx(40.0)
    assert m1.at["f1", "revenue_usd_per_t"] == pytest.approx(0.0)      # b is on the loop: 0
    assert m1.at["f2", "revenue_usd_per_t"] == pytest.approx(5.0)      # a at 0 + 0.1 t ox at 50
    assert m1.at["f3", "note"] == "no price"                           # c: no price, no user
    pd.testing.assert_frame_equal(m1.sort_index(), m2.sort_index())


def test_two_unpriced_co_inputs_are_valued_at_zero_whatever_the_row_order():
    """`s` makes ox (50) and two unpriced co-products x and y; `u` uses x and y together to
    make ox. x and y value each other through u's netback (a loop of values, not of recipes):
    both are valued at 0 whichever recipe row comes first, so s earns 50 - 10 = 40."""
    products = pd.DataFrame({"product": ["x", "y", "ox"], "reference_price_usd_per_t": [np.nan, np.nan, 50.0]})
    rows = [("s", "ox", 1.0), ("s", "x", 1.0), ("s", "y", 1.0), ("u", "x", -1.0), ("u", "y", -1.0),
            ("u", "ox", 1.0)]
    fps = pd.DataFrame([("f", "s", 10.0), ("g", "u", 5.0)], columns=["facility", "process", "unit_cost_usd_per_t"])
    prod = pd.DataFrame([("f", "s", "A", 1.0, "2025"), ("g", "u", "A", 1.0, "2025")],
                        columns=["facility", "process", "country", "activity_t_per_yr", "period"])
    out = []
    for order in (rows, rows[::-1]):
        t = {"products": products, "facility_processes": fps,
             "recipes": pd.DataFrame(order, columns=["process", "product", "coefficient"])}
        out.append(reference_margins(t, prod, "2025").set_index("facility")["margin_usd_per_t"])
    assert out[0]["f"] == pytest.approx(40.0) and out[1]["f"] == pytest.approx(40.0)
    assert out[0]["g"] == pytest.approx(45.0) and out[1]["g"] == pytest.approx(45.0)
