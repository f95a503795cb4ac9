"""Hand-solved end-use controls (issue 18 part 1): a control naming demand segments
denies them material of the controller's origin while the other segments still buy it.

Case: China makes magnets at 10 USD/t, Japan at 30, Australia oxide at 20; freight 5 to
the USA (1 on the oxide and magnet lanes of the extraterritorial case). The USA demands
10 t/yr of magnets for defence and 50 for consumers."""

from __future__ import annotations

import pytest

from conftest import one_period, solve, value
from model.case.casewriter import write_case
from model.case.schema import InputError
from model.runs.pipeline import load_case

APPROX = dict(rel=1e-7, abs=1e-6)


def magnet_case(lanes=(("CHN", "USA", 5), ("JPN", "USA", 5))) -> dict:
    """CHN makes magnets at 10, JPN at 30; the USA buys 10 t/yr for defence, 50 for consumers."""
    return {
        "periods": one_period(),
        "countries": [{"country": c, "blocs": ""} for c in ("CHN", "JPN", "USA")],
        "products": [{"product": "mag", "stage": "magnet", "element": "Nd", "unit": "t_REO",
                      "reference_price_usd_per_t": 100}],
        "processes": [{"process": "make", "stage": "magnet"}],
        "recipes": [{"process": "make", "product": "mag", "coefficient": 1}],
        "facilities": [{"facility": "cn", "country": "CHN", "capacity_t_per_yr": 1000},
                       {"facility": "jp", "country": "JPN", "capacity_t_per_yr": 1000}],
        "facility_processes": [{"facility": "cn", "process": "make", "unit_cost_usd_per_t": 10},
                               {"facility": "jp", "process": "make", "unit_cost_usd_per_t": 30}],
        "demand": [{"country": "USA", "product": "mag", "segment": seg, "period": "2025",
                    "quantity_t_per_yr": q, "shortfall_penalty_usd_per_t": 1e4}
                   for seg, q in (("defence", 10), ("consumer", 50))],
        "transport": [{"from_country": f, "to_country": t, "product": "*", "cost_usd_per_t": c}
                      for f, t, c in lanes],
    }


def deny(product="mag", **kw) -> list[dict]:
    return [{"control": "no_military", "exporter": "CHN", "product": product, "destinations": "USA",
             "kind": "ban", "segments": "defence", **kw}]


def assert_denied_node_balances(t) -> None:
    """The end-use constraint: the denied segments are served only from material not of
    China's origin: at each denied node, other-class imports + own other-class supply ==
    denied served + absorbed into the pool + other-class exports; and nothing of Chinese
    origin reaches it (its only inflows are `other` flows and the supplier table's own row)."""
    sup = t["end_use_supply"]
    use = t["end_use"]
    for (c, p, per), g in sup.groupby(["country", "product", "period"]):
        served = use[(use["country"] == c) & (use["product"] == p) & (use["period"] == per)]["served_t_per_yr"].sum()
        assert g["serves_denied_t_per_yr"].sum() == pytest.approx(served, **APPROX)
        node = g.drop_duplicates("supplier")  # a node's suppliers repeat for each control it serves
        imports = node[node["supplier"] != c]["supply_t_per_yr"].sum()
        flows = t["flows"]
        arrive = flows[(flows["to_country"] == c) & (flows["product"] == p) & (flows["period"] == per)]
        assert arrive[arrive["origin_class"] == "other"]["flow_t_per_yr"].sum() == pytest.approx(imports, **APPROX)


def test_free_market_buys_chinese_for_every_segment(tmp_path):
    """No control: all 60 t from China at 10 + 5 = 15: cost 900."""
    r = solve(tmp_path, magnet_case())
    assert r.solve.objective == pytest.approx(900.0, **APPROX)
    assert value(r.tables["flows"], "flow_t_per_yr", from_country="CHN") == pytest.approx(60.0, **APPROX)


def test_defence_served_only_by_allied_supply(tmp_path):
    """China denies US defence: the 10 t come from Japan at 30 + 5 = 35 while consumers
    keep buying Chinese at 15: cost 10 x 35 + 50 x 15 = 1100. Prices: the US pool 15, the
    node defence draws from (not Chinese origin) 35. Letting one tonne of any origin reach
    defence saves 35 - 15 = 20 USD/t (the control's shadow value)."""
    case = magnet_case()
    case["export_controls"] = deny()
    r = solve(tmp_path, case)
    t = r.tables
    assert r.solve.objective == pytest.approx(1100.0, **APPROX)
    flows = t["flows"]
    assert value(flows, "flow_t_per_yr", from_country="JPN", to_country="USA") == pytest.approx(10.0, **APPROX)
    assert value(flows, "flow_t_per_yr", from_country="CHN", to_country="USA", origin_class="CHN") == \
        pytest.approx(50.0, **APPROX)
    dem = t["demand"].set_index("segment")
    assert dem.loc["defence", "denied_by"] == "no_military" and dem.loc["consumer", "denied_by"] == ""
    assert dem["unserved_t_per_yr"].sum() == pytest.approx(0.0, abs=1e-9)
    prices = t["prices"].set_index(["country", "product", "origin_class"])
    assert prices.loc[("USA", "mag", ""), "price_usd_per_t"] == pytest.approx(15.0, **APPROX)
    assert prices.loc[("USA", "mag", "other"), "price_usd_per_t"] == pytest.approx(35.0, **APPROX)
    ctl = t["controls"].iloc[0]
    assert ctl["segments"] == "defence" and ctl["kind"] == "ban"
    assert ctl["shadow_value_usd_per_t"] == pytest.approx(20.0, **APPROX)
    assert bool(ctl["binding"])
    use = t["end_use"].iloc[0]
    assert (use["control"], use["segment"], use["served_t_per_yr"], use["unserved_t_per_yr"]) == \
        ("no_military", "defence", pytest.approx(10.0), pytest.approx(0.0, abs=1e-9))
    sup = t["end_use_supply"]
    assert list(sup["supplier"]) == ["JPN"]
    assert sup.iloc[0]["supply_t_per_yr"] == pytest.approx(10.0, **APPROX)
    assert sup.iloc[0]["serves_denied_t"] == pytest.approx(10.0, **APPROX)
    assert "ban_lane_values" not in t  # no flow is banned
    # Consumers' spending prices each segment where it buys: 10 x 35 + 50 x 15 = 1,100.
    assert value(t["who_pays"], "consumer_spending_usd", country="USA") == pytest.approx(1100.0, **APPROX)
    assert_denied_node_balances(t)


def test_chinese_magnets_through_japan_cannot_serve_defence(tmp_path):
    """Chinese magnets via Japan cost 10 + 2 + 1 = 13 but stay of Chinese origin: they
    serve consumers (13 < 15 direct) while defence still pays Japan's 30 + 1 = 31:
    cost 10 x 31 + 50 x 13 = 960."""
    case = magnet_case(lanes=(("CHN", "USA", 5), ("JPN", "USA", 1), ("CHN", "JPN", 2)))
    case["export_controls"] = deny()
    r = solve(tmp_path, case)
    t = r.tables
    assert r.solve.objective == pytest.approx(960.0, **APPROX)
    flows = t["flows"]
    assert value(flows, "flow_t_per_yr", from_country="JPN", to_country="USA", origin_class="CHN") == \
        pytest.approx(50.0, **APPROX)
    assert value(flows, "flow_t_per_yr", from_country="JPN", to_country="USA", origin_class="other") == \
        pytest.approx(10.0, **APPROX)
    assert_denied_node_balances(t)


def test_no_allied_supply_leaves_defence_short(tmp_path):
    """Japan's plant gone: nothing not of Chinese origin exists, so defence goes unserved
    (10 t at 1e4 = 1e5) while consumers are served: cost 50 x 15 + 1e5 = 100 750; the
    end_use table shows 100 % of the period's defence demand unserved."""
    case = magnet_case()
    case["facilities"] = case["facilities"][:1]
    case["facility_processes"] = case["facility_processes"][:1]
    case["export_controls"] = deny()
    r = solve(tmp_path, case)
    assert r.solve.objective == pytest.approx(100750.0, **APPROX)
    use = r.tables["end_use"].iloc[0]
    assert use["unserved_t_per_yr"] == pytest.approx(10.0, **APPROX)
    assert use["unserved_share"] == pytest.approx(1.0, **APPROX)
    assert use["penalty_value_usd"] == pytest.approx(1e5, **APPROX)
    assert r.tables["end_use_supply"].empty


def chain_case() -> dict:
    """Oxide -> magnet: CHN oxide at 10, AUS oxide at 20; magnets (1 t oxide each) made in
    CHN or JPN at 5; every lane costs 1."""
    lanes = (("CHN", "JPN"), ("AUS", "JPN"), ("JPN", "USA"), ("CHN", "USA"))
    return {
        "periods": one_period(),
        "countries": [{"country": c, "blocs": ""} for c in ("CHN", "AUS", "JPN", "USA")],
        "products": [{"product": "ox", "stage": "oxide", "element": "Nd", "unit": "t_REO",
                      "reference_price_usd_per_t": 50},
                     {"product": "mag", "stage": "magnet", "element": "", "unit": "t_magnet",
                      "reference_price_usd_per_t": 100}],
        "processes": [{"process": "sep", "stage": "separation"}, {"process": "make", "stage": "magnet"}],
        "recipes": [{"process": "sep", "product": "ox", "coefficient": 1},
                    {"process": "make", "product": "ox", "coefficient": -1},
                    {"process": "make", "product": "mag", "coefficient": 1}],
        "facilities": [{"facility": f, "country": c, "capacity_t_per_yr": 1000}
                       for f, c in (("cn_sep", "CHN"), ("au_sep", "AUS"), ("cn_mag", "CHN"), ("jp_mag", "JPN"))],
        "facility_processes": [{"facility": f, "process": p, "unit_cost_usd_per_t": c}
                               for f, p, c in (("cn_sep", "sep", 10), ("au_sep", "sep", 20), ("cn_mag", "make", 5),
                                               ("jp_mag", "make", 5))],
        "demand": [{"country": "USA", "product": "mag", "segment": seg, "period": "2025",
                    "quantity_t_per_yr": q, "shortfall_penalty_usd_per_t": 1e4}
                   for seg, q in (("defence", 10), ("consumer", 50))],
        "transport": [{"from_country": f, "to_country": t, "product": "*", "cost_usd_per_t": 1} for f, t in lanes],
    }


def test_extraterritorial_denial_reaches_magnets_made_abroad(tmp_path):
    """China denies US defence its oxide and what contains it: Japanese magnets made from
    Chinese oxide (10 + 1 + 5 + 1 = 17) are tainted; defence needs Japanese magnets from
    Australian oxide (20 + 1 + 5 + 1 = 27) while consumers buy Chinese magnets at
    10 + 5 + 1 = 16: cost 10 x 27 + 50 x 16 = 1070. Without the extraterritorial flag
    (the control on magnets only) Japanese magnets of Chinese oxide serve defence at 17:
    cost 10 x 17 + 800 = 970."""
    case = chain_case()
    case["export_controls"] = deny(product="ox", extraterritorial=True)
    r = solve(tmp_path, case, name="extra.xlsx")
    t = r.tables
    assert r.solve.objective == pytest.approx(1070.0, **APPROX)
    assert value(t["production"], "activity_t_per_yr", facility="au_sep") == pytest.approx(10.0, **APPROX)
    assert value(t["production"], "activity_t_per_yr", facility="jp_mag", mode="clean") == pytest.approx(10.0, **APPROX)
    assert value(t["production"], "activity_t_per_yr", facility="cn_mag") == pytest.approx(50.0, **APPROX)
    assert list(t["end_use_supply"]["supplier"]) == ["JPN"]
    assert_denied_node_balances(t)

    case["export_controls"] = deny(product="mag")
    r = solve(tmp_path, case, name="plain.xlsx")
    assert r.solve.objective == pytest.approx(970.0, **APPROX)
    assert value(r.tables["production"], "activity_t_per_yr", facility="au_sep") == 0.0
    assert value(r.tables["production"], "activity_t_per_yr", facility="jp_mag") == pytest.approx(10.0, **APPROX)


def test_bad_end_use_rows_all_reported(tmp_path):
    """A licence naming segments and a misspelt segment: both problems at once, each with
    sheet, row, column, the value found and what was expected."""
    case = magnet_case()
    case["export_controls"] = deny(segments="defense") + [
        {"control": "lic", "exporter": "CHN", "product": "mag", "destinations": "USA", "kind": "licence",
         "licence_approval_share": 0.5, "reference_flow_t_per_yr": 60, "segments": "consumer"}]
    path = write_case(tmp_path / "bad.xlsx", case, {"base_year": 2025})
    with pytest.raises(InputError) as exc:
        load_case(str(path))
    found = [(p.sheet, p.row, p.column, str(p)) for p in exc.value.problems]
    assert any(s == "export_controls" and r == 2 and c == "segments" and "unknown segment" in m
               and "did you mean 'defence'" in m for s, r, c, m in found), found
    assert any(s == "export_controls" and r == 3 and c == "segments" and "a licence cannot name segments" in m
               for s, r, c, m in found), found


def test_base_case_military_enduse_scenario():
    """The shipped scenario: China's military end-use denial from 2027 (extraterritorial).
    Every defence segment outside China is served by chains clear of Chinese material (no
    shortfall, China never a supplier of the denied nodes), and the denial binds: letting
    one tonne of any origin reach defence would save money in each covered period."""
    from model.runs.pipeline import run_case
    from test_base_case import BASE
    r = run_case(str(BASE), "military_enduse_2027")
    assert r.optimal
    use = r.tables["end_use"]
    assert set(use["period"]) == {"2027", "2028-30", "2031-35"}
    assert "CHN" not in set(use["country"]) and set(use["segment"]) == {"defence"}
    assert use["unserved_t_per_yr"].max() == pytest.approx(0.0, abs=1e-6)
    assert "CHN" not in set(r.tables["end_use_supply"]["supplier"])
    ctl = r.tables["controls"]
    ctl = ctl[ctl["control"] == "military_enduse"]
    assert (ctl["shadow_value_usd_per_t"] > 1000.0).all()  # USD per t: defence pays a premium


def test_end_use_reaches_report_html_and_briefing(tmp_path):
    """The page lists the denied segment and Japan as the supplier serving it; the
    briefing gives the denied demand's worst unserved share (0 here)."""
    import pandas as pd

    from model.reports.files import write_run
    case = magnet_case()
    case["export_controls"] = deny()
    folder = write_run(solve(tmp_path, case), tmp_path / "out")
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert "End-use denials: the denied segments" in page and "Whose material serves them" in page
    brief = pd.read_excel(folder / "report.xlsx", sheet_name="briefing", header=None)
    row = brief[brief[0].astype(str) == "no_military: denied demand unserved"].iloc[0]
    assert row[1] == "2025" and row[2] == 0.0


def test_explanations_name_the_denial(tmp_path):
    """With no allied supply, the unserved defence demand is explained by the denial: lifting
    it serves all 10 t (China's magnets at 15)."""
    from model.runs.explain import explain_shortfalls
    case = magnet_case()
    case["facilities"] = case["facilities"][:1]
    case["facility_processes"] = case["facility_processes"][:1]
    case["export_controls"] = deny()
    ex = explain_shortfalls(solve(tmp_path, case))
    row = ex[ex["segment"] == "defence"].iloc[0]
    assert row["kind"] == "export ban" and row["sheet"] == "export_controls" and "no_military" in row["limit"]
    assert row["relaxation"] == "end-use denial of defence lifted"
    assert row["shortfall_reduction_t"] == pytest.approx(10.0, **APPROX)


def test_two_denials_at_one_node_share_its_suppliers(tmp_path):
    """Two controls deny US defence (10 t) and aero (10 t); the USA makes 15 t/yr at 25,
    Japan ships the other 5 at 30 + 5: cost 50 x 15 + 15 x 25 + 5 x 35 = 1,300. The node's
    supply is 15 US + 5 JPN (shares 0.75 / 0.25), and each control's 10 t split so:
    7.5 t US and 2.5 t JPN each."""
    c = magnet_case()
    c["demand"].append({"country": "USA", "product": "mag", "segment": "aero", "period": "2025",
                        "quantity_t_per_yr": 10, "shortfall_penalty_usd_per_t": 1e4})
    c["facilities"].append({"facility": "us", "country": "USA", "capacity_t_per_yr": 15})
    c["facility_processes"].append({"facility": "us", "process": "make", "unit_cost_usd_per_t": 25})
    c["export_controls"] = deny() + [{"control": "no_aero", "exporter": "CHN", "product": "mag",
                                      "destinations": "USA", "kind": "ban", "segments": "aero"}]
    r = solve(tmp_path, c)
    assert r.solve.objective == pytest.approx(1300.0, **APPROX)
    sup = r.tables["end_use_supply"].set_index(["control", "supplier"])
    for ctl in ("no_military", "no_aero"):
        assert sup.loc[(ctl, "USA"), "supply_share"] == pytest.approx(0.75, **APPROX)
        assert sup.loc[(ctl, "USA"), "serves_denied_t"] == pytest.approx(7.5, **APPROX)
        assert sup.loc[(ctl, "JPN"), "serves_denied_t"] == pytest.approx(2.5, **APPROX)
    assert_denied_node_balances(r.tables)


def test_an_end_use_control_that_denies_nothing_is_a_problem(tmp_path):
    """Defence demands magnets only; a denial of oxide without the extraterritorial flag
    would deny nothing: a problem naming the row and column (with the flag it reaches the
    magnets made from the oxide and is accepted)."""
    case = chain_case()
    case["export_controls"] = deny(product="ox")
    path = write_case(tmp_path / "none.xlsx", case, {"base_year": 2025})
    with pytest.raises(InputError) as exc:
        load_case(str(path))
    (p,) = [p for p in exc.value.problems if p.column == "segments"]
    assert p.sheet == "export_controls" and p.row == 2 and "denies nothing" in str(p)
    assert "extraterritorial" in str(p)
    case["export_controls"] = deny(product="ox", extraterritorial=True)
    load_case(str(write_case(tmp_path / "extra.xlsx", case, {"base_year": 2025})))
