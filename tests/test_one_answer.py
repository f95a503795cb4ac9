"""One answer per case: the reported plan, prices and values of limits do not depend on
which of several least-cost plans (or dual solutions) HiGHS returns, on its method or on
the order of rows in the workbook. Every figure below is computed by hand."""

from __future__ import annotations

import pytest

from conftest import one_period, solve, value
from model.analysis.sameness import run_differences, shuffle_workbook
from model.case.casewriter import write_case
from model.runs.pipeline import run_case
from test_controls import magnet_case

APPROX = dict(rel=1e-7, abs=1e-6)


def sheets(countries, products, processes, recipes, facilities, fps, demand, transport, **more):
    return {"periods": one_period(), "countries": [{"country": c, "blocs": ""} for c in countries],
            "products": products, "processes": processes, "recipes": recipes,
            "facilities": facilities, "facility_processes": fps, "demand": demand,
            "transport": transport, **more}


def allies_case():
    """Oxide made at 10 in Australia and in Canada (1000 t/yr each), 5 to ship to the
    USA, which needs 100 t/yr: every split is equally cheap (cost 1500)."""
    return sheets(
        ["AUS", "CAN", "USA"],
        [{"product": "ox", "stage": "oxide", "element": "Dy", "unit": "t_REO"}],
        [{"process": "make", "stage": "separation"}],
        [{"process": "make", "product": "ox", "coefficient": 1}],
        [{"facility": "au", "country": "AUS", "capacity_t_per_yr": 1000},
         {"facility": "ca", "country": "CAN", "capacity_t_per_yr": 1000}],
        [{"facility": "au", "process": "make", "unit_cost_usd_per_t": 10},
         {"facility": "ca", "process": "make", "unit_cost_usd_per_t": 10}],
        [{"country": "USA", "product": "ox", "period": "2025", "quantity_t_per_yr": 100,
          "shortfall_penalty_usd_per_t": 1e4}],
        [{"from_country": f, "to_country": "USA", "product": "*", "cost_usd_per_t": 5} for f in ("AUS", "CAN")])


def test_equal_allies_share_the_supply_evenly(tmp_path):
    """min a^2 + b^2 (production) + a^2 + b^2 (flows) with a + b = 100: a = b = 50."""
    r = solve(tmp_path, allies_case())
    t = r.tables
    assert r.solve.objective == pytest.approx(1500.0, **APPROX)
    for c in ("AUS", "CAN"):
        assert value(t["flows"], "flow_t_per_yr", from_country=c) == pytest.approx(50.0, **APPROX)
    assert r.solve.stats["canonical"] == "least-norm plan"
    prices = t["prices"].set_index("country")
    # The USA's price is unique: one more tonne costs 10 + 5, one less saves as much.
    assert prices.loc["USA", "price_usd_per_t"] == pytest.approx(15.0, **APPROX)
    assert bool(prices.loc["USA", "price_unique"])


def test_the_vertex_is_reported_when_the_case_asks(tmp_path):
    """canonical_plan FALSE: the split is HiGHS's vertex, whatever it is; the cost is the same."""
    r = solve(tmp_path, allies_case(), settings={"canonical_plan": False})
    assert r.solve.objective == pytest.approx(1500.0, **APPROX)
    assert value(r.tables["flows"], "flow_t_per_yr") == pytest.approx(100.0, **APPROX)
    assert r.solve.stats["canonical"] == "off"


def series_case():
    """A mine (100 t/yr, cost 10) feeds a plant (100 t/yr, cost 10) in the USA, which
    needs exactly 100 t/yr of product at a shortfall penalty of 10 000."""
    return sheets(
        ["USA"],
        [{"product": "ore", "stage": "ore", "unit": "t_REO"},
         {"product": "ox", "stage": "oxide", "element": "Nd", "unit": "t_REO"}],
        [{"process": "mine", "stage": "mining"}, {"process": "sep", "stage": "separation"}],
        [{"process": "mine", "product": "ore", "coefficient": 1},
         {"process": "sep", "product": "ore", "coefficient": -1},
         {"process": "sep", "product": "ox", "coefficient": 1}],
        [{"facility": "mine", "country": "USA", "capacity_t_per_yr": 100},
         {"facility": "plant", "country": "USA", "capacity_t_per_yr": 100}],
        [{"facility": "mine", "process": "mine", "unit_cost_usd_per_t": 10},
         {"facility": "plant", "process": "sep", "unit_cost_usd_per_t": 10}],
        [{"country": "USA", "product": "ox", "period": "2025", "quantity_t_per_yr": 100,
          "shortfall_penalty_usd_per_t": 1e4}],
        [])


def test_capacity_values_are_what_one_tonne_more_or_less_is_worth(tmp_path):
    """Demand equals both capacities, so the capacity duals are not unique (any value in
    [0, 9 980] is optimal for either row). One more t/yr of either saves nothing (the
    demand is met); one less leaves a tonne unserved: 10 000 penalty - 20 running cost
    saved = 9 980. Both rows report exactly these, whichever vertex HiGHS returned."""
    r = solve(tmp_path, series_case())
    assert r.solve.objective == pytest.approx(2000.0, **APPROX)
    cv = r.tables["capacity_values"].set_index("facility")
    for f in ("mine", "plant"):
        assert cv.loc[f, "capacity_value_usd_per_t_per_yr"] == pytest.approx(0.0, abs=1e-6)
        assert cv.loc[f, "capacity_value_one_less_usd_per_t_per_yr"] == pytest.approx(9980.0, **APPROX)
    # The price of the product is not unique either (cost 20 up to the penalty 10 000).
    prices = r.tables["prices"].set_index("product")
    assert not bool(prices.loc["ox", "price_unique"])
    assert 20.0 - 1e-6 <= prices.loc["ox", "price_usd_per_t"] <= 1e4 + 1e-6


def two_mines_case():
    """Mine "m1" (100 t/yr, cost 10) and mine "m2" (100 t/yr, cost 30) feed a plant
    (100 t/yr, cost 10) in the USA, which needs 150 t/yr at a shortfall penalty of 10 000:
    m1 and the plant run full, m2 idles, 50 t/yr go short (cost 502 000)."""
    case = series_case()
    case["facilities"] = [{"facility": "m1", "country": "USA", "capacity_t_per_yr": 100},
                          {"facility": "m2", "country": "USA", "capacity_t_per_yr": 100},
                          {"facility": "plant", "country": "USA", "capacity_t_per_yr": 100}]
    case["facility_processes"] = [{"facility": "m1", "process": "mine", "unit_cost_usd_per_t": 10},
                                  {"facility": "m2", "process": "mine", "unit_cost_usd_per_t": 30},
                                  {"facility": "plant", "process": "sep", "unit_cost_usd_per_t": 10}]
    case["demand"][0]["quantity_t_per_yr"] = 150
    return case


@pytest.mark.parametrize("keep", [0, 10**6])
def test_capacity_values_alike_on_the_cut_down_lp_and_the_whole(tmp_path, monkeypatch, keep):
    """Re-solves run on the LP cut down to the columns that can move, each answer proven
    against every column left out, else re-solved in the whole LP (model.lp.sensitivity).
    keep=0 cuts to the basic and non-zero columns, leaving out idle m2: one less t/yr of
    m1 is then a tonne short on the cut-down LP (9 980), refused by m2's negative reduced
    cost, and the whole LP says 20 (m2's 30 - m1's 10); one more of the plant is fed by
    m2 (10 000 - 30 - 10 = 9 960, likewise from the whole LP); one less of the plant
    leaves a tonne short, 10 000 - 10 - 10 = 9 980, proven on the cut-down LP.
    keep=10**6 keeps every column: nothing is cut. Same values either way."""
    import model.lp.sensitivity as S
    monkeypatch.setattr(S, "KEEP_PER_ROW", keep)
    whole = []
    moved = S._moved
    monkeypatch.setattr(S, "_moved", lambda *a: whole.append(a[1]) or moved(*a))
    r = solve(tmp_path, two_mines_case())
    assert r.solve.objective == pytest.approx(502_000.0, **APPROX)
    cv = r.tables["capacity_values"].set_index("facility")
    more, less = "capacity_value_usd_per_t_per_yr", "capacity_value_one_less_usd_per_t_per_yr"
    assert cv.loc["m1", more] == pytest.approx(0.0, abs=1e-6)
    assert cv.loc["m1", less] == pytest.approx(20.0, **APPROX)
    assert cv.loc["m2", more] == pytest.approx(0.0, abs=1e-6)
    assert cv.loc["m2", less] == pytest.approx(0.0, abs=1e-6)  # 100 t/yr of slack
    assert cv.loc["plant", more] == pytest.approx(9960.0, **APPROX)
    assert cv.loc["plant", less] == pytest.approx(9980.0, **APPROX)
    if keep == 0:
        assert whole  # the refused cut-down answers went to the whole LP


def japan_magnet_case(ban: dict | None = None):
    """test_controls' magnet case with the magnet plant moved to Japan: China mines Dy
    oxide at 100 but makes no magnets; Japan makes magnets (0.05 t Dy oxide each) at 10;
    the USA needs 100 magnets and can only make a Dy-free substitute at 200. Freight 5
    on every lane."""
    case = magnet_case()
    case["countries"].append({"country": "JPN", "blocs": ""})
    for rows in (case["facilities"], case["facility_processes"]):
        for r in rows:
            if r["facility"] == "cn_mag":
                r["facility"] = "jp_mag"
                if "country" in r:
                    r["country"] = "JPN"
    case["transport"] = [{"from_country": f, "to_country": t, "product": "*", "cost_usd_per_t": 5}
                         for f, t in (("CHN", "JPN"), ("JPN", "USA"), ("CHN", "USA"))]
    if ban:
        case["export_controls"] = [ban]
    return case


def test_extraterritorial_ban_value_when_the_exporter_makes_no_magnets(tmp_path):
    """Free: Japanese magnets with Chinese Dy reach the USA at 0.05 x (100 + 5) + 10 + 5
    = 20.25 each (cost 2 025). China's extraterritorial ban on Dy oxide to the USA keeps
    them out: substitutes at 200 (cost 20 000). China makes no magnets, so its price of
    magnets and its Dy price under the ban are not unique; the ban's value is measured:
    one tonne allowed across its flows is one Japanese magnet, saving 200 - 20.25 =
    179.75, as a plain re-run with the ban replaced by a 1 t/yr quota confirms."""
    free = solve(tmp_path, japan_magnet_case(), name="free.xlsx")
    assert free.solve.objective == pytest.approx(2025.0, **APPROX)
    ban = {"control": "dy_ban", "exporter": "CHN", "product": "dy_ox", "destinations": "USA",
           "kind": "ban", "extraterritorial": True}
    r = solve(tmp_path, japan_magnet_case(ban), name="ban.xlsx")
    assert r.solve.objective == pytest.approx(20000.0, **APPROX)
    assert value(r.tables["production"], "activity_t_per_yr", facility="us_sub") == pytest.approx(100.0, **APPROX)
    ctl = r.tables["controls"].set_index("control").loc["dy_ban"]
    assert ctl["shadow_value_usd_per_t"] == pytest.approx(179.75, **APPROX)
    assert bool(ctl["binding"])
    quota = dict(ban, kind="quota", quota_t_per_yr=1)
    q = solve(tmp_path, japan_magnet_case(quota), name="quota.xlsx")
    assert q.solve.objective == pytest.approx(20000.0 - 179.75, **APPROX)
    assert r.solve.objective - q.solve.objective == pytest.approx(ctl["shadow_value_usd_per_t"], **APPROX)


def ties_case():
    """Ties of every kind: Dy oxide mined at 100 in China, Australia and Canada (each
    mine also makes 4 t of La oxide per t, a co-product nobody buys), with equal freight
    to Japan, which makes magnets for itself and for the USA; China makes no magnets and
    bans its Dy (extraterritorially) from the USA."""
    mines = [("cn_mine", "CHN", 1000), ("au_mine", "AUS", 3), ("ca_mine", "CAN", 3)]
    return sheets(
        ["CHN", "AUS", "CAN", "JPN", "USA"],
        [{"product": "dy_ox", "stage": "oxide", "element": "Dy", "unit": "t_REO"},
         {"product": "la_ox", "stage": "oxide", "element": "La", "unit": "t_REO"},
         {"product": "magnet", "stage": "magnet", "element": "mix", "unit": "t_magnet"}],
        [{"process": "mine", "stage": "mining"}, {"process": "make_mag", "stage": "magnet"},
         {"process": "substitute", "stage": "substitution"}],
        [{"process": "mine", "product": "dy_ox", "coefficient": 1},
         {"process": "mine", "product": "la_ox", "coefficient": 4},
         {"process": "make_mag", "product": "dy_ox", "coefficient": -0.05},
         {"process": "make_mag", "product": "magnet", "coefficient": 1},
         {"process": "substitute", "product": "magnet", "coefficient": 1}],
        [{"facility": f, "country": c, "capacity_t_per_yr": cap} for f, c, cap in mines]
        + [{"facility": "jp_mag", "country": "JPN", "capacity_t_per_yr": 1000},
           {"facility": "us_sub", "country": "USA", "capacity_t_per_yr": 1000}],
        [{"facility": f, "process": "mine", "unit_cost_usd_per_t": 100} for f, _, _ in mines]
        + [{"facility": "jp_mag", "process": "make_mag", "unit_cost_usd_per_t": 10},
           {"facility": "us_sub", "process": "substitute", "unit_cost_usd_per_t": 200}],
        [{"country": c, "product": "magnet", "period": "2025", "quantity_t_per_yr": 100,
          "shortfall_penalty_usd_per_t": 1e4} for c in ("USA", "JPN")],
        [{"from_country": f, "to_country": "JPN", "product": "*", "cost_usd_per_t": 5} for f in ("CHN", "AUS", "CAN")]
        + [{"from_country": "JPN", "to_country": "USA", "product": "*", "cost_usd_per_t": 5}],
        export_controls=[{"control": "dy_ban", "exporter": "CHN", "product": "dy_ox", "destinations": "USA",
                          "kind": "ban", "extraterritorial": True}])


def test_ties_case_by_hand(tmp_path):
    """Japan needs 10 t of Dy oxide (0.05 x 200 magnets); the 5 t in the USA's magnets
    must be Australian or Canadian (6 t/yr between them). Every magnet costs 0.05 x 105
    + 10 = 15.25 in Japan, 20.25 in the USA: cost 200 x 15.25 + 100 x 5 = 3 550. Least
    norm among the equally cheap plans: the three mines make (a, a, 10 - 2a) t with
    a <= 3; the co-product scales the squares by 1 + 16, so a = 10/3 capped at 3:
    Australia and Canada 3 t each, China 4 t."""
    r = solve(tmp_path, ties_case(), settings={"canonical_prices": True})
    t = r.tables
    assert r.solve.objective == pytest.approx(3550.0, **APPROX)
    mined = {f: value(t["production"], "activity_t_per_yr", facility=f) for f in ("cn_mine", "au_mine", "ca_mine")}
    assert mined == pytest.approx({"cn_mine": 4.0, "au_mine": 3.0, "ca_mine": 3.0}, **APPROX)
    assert value(t["disposal"], "disposal_t_per_yr", product="la_ox") == pytest.approx(40.0, **APPROX)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_permuted_rows_and_solver_method_give_the_same_tables(tmp_path, seed):
    """Every result table (plan, prices with canonical_prices, values of limits and of
    the ban) is the same, to 1e-6, with the rows of every sheet shuffled, and with the
    interior-point method instead of simplex."""
    path = write_case(tmp_path / "ties.xlsx", ties_case(), {"base_year": 2025, "canonical_prices": True})
    ref = run_case(str(path))
    assert ref.optimal
    shuffled = run_case(str(shuffle_workbook(path, tmp_path / f"shuffled_{seed}.xlsx", seed)))
    assert run_differences(ref.tables, shuffled.tables) == {}
    ipm = write_case(tmp_path / "ipm.xlsx", ties_case(),
                     {"base_year": 2025, "canonical_prices": True, "solver_method": "ipm"})
    assert run_differences(ref.tables, run_case(str(ipm)).tables) == {}
