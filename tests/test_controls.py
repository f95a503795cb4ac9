"""Hand-solved export controls and tariffs: bans that cannot be dodged by re-export,
exemptions, element-content quotas, licences, the extraterritorial rule, duties."""

from __future__ import annotations

import pytest

from conftest import one_period, solve, value
from model.lp.build import build_model
from model.lp.data import build_model_data
from model.lp.solve import solve_model
from model.runs.pipeline import load_case

APPROX = dict(rel=1e-7, abs=1e-6)


def base(countries, products, processes, recipes, facilities, fps, demand, transport, **more):
    return {"periods": one_period(), "countries": [{"country": c, "blocs": b} for c, b in countries],
            "products": products, "processes": processes, "recipes": recipes,
            "facilities": facilities, "facility_processes": fps, "demand": demand,
            "transport": transport, **more}


def ox_case(extra_lanes=(), jpn_cost=None, demand=(("USA", 100),)):
    """Dy oxide: CHN makes at 10, USA at 100; optional JPN maker."""
    facilities = [{"facility": "cn", "country": "CHN", "capacity_t_per_yr": 1000},
                  {"facility": "us", "country": "USA", "capacity_t_per_yr": 1000}]
    fps = [{"facility": "cn", "process": "make", "unit_cost_usd_per_t": 10},
           {"facility": "us", "process": "make", "unit_cost_usd_per_t": 100}]
    if jpn_cost is not None:
        facilities.append({"facility": "jp", "country": "JPN", "capacity_t_per_yr": 1000})
        fps.append({"facility": "jp", "process": "make", "unit_cost_usd_per_t": jpn_cost})
    return base(
        [("CHN", ""), ("USA", "ALLY"), ("JPN", "ALLY"), ("MYS", "")],
        [{"product": "ox", "stage": "oxide", "element": "Dy", "unit": "t_REO", "reference_price_usd_per_t": 1000}],
        [{"process": "make", "stage": "separation"}],
        [{"process": "make", "product": "ox", "coefficient": 1}],
        facilities, fps,
        [{"country": c, "product": "ox", "period": "2025", "quantity_t_per_yr": q,
          "shortfall_penalty_usd_per_t": 1e4} for c, q in demand],
        [{"from_country": f, "to_country": t, "product": "*", "cost_usd_per_t": c}
         for f, t, c in (("CHN", "USA", 5),) + tuple(extra_lanes)])


def test_ban_cannot_be_dodged_through_a_third_country(tmp_path):
    """Unrestricted, the USA buys Chinese oxide through Malaysia (10 + 2 + 2 = 14 < 15
    direct): cost 1400. With a ban on CHN -> USA, Malaysia may not pass Chinese-origin
    oxide on either, so the USA makes its own at 100: cost 10 000, price 100."""
    case = ox_case(extra_lanes=(("CHN", "MYS", 2), ("MYS", "USA", 2)))
    free = solve(tmp_path, case, name="free.xlsx")
    assert free.solve.objective == pytest.approx(1400.0, **APPROX)
    assert value(free.tables["flows"], "flow_t_per_yr", from_country="MYS", to_country="USA") == pytest.approx(100.0)
    case["export_controls"] = [{"control": "ban_us", "exporter": "CHN", "product": "ox",
                                "destinations": "USA", "kind": "ban"}]
    r = solve(tmp_path, case, name="ban.xlsx")
    t = r.tables
    assert r.solve.objective == pytest.approx(10000.0, **APPROX)
    assert value(t["flows"], "flow_t_per_yr", to_country="USA") == 0.0
    assert value(t["production"], "activity_t_per_yr", facility="us") == pytest.approx(100.0, **APPROX)
    assert value(t["prices"], "price_usd_per_t", country="USA", product="ox", origin_class="") == pytest.approx(100.0, **APPROX)
    ctl = t["controls"].iloc[0]
    assert ctl["kind"] == "ban" and bool(ctl["origin_classes"])
    # One Chinese tonne allowed across the ban's flows (a 1 t/yr quota in its place) goes
    # the cheapest way, through Malaysia: 10 + 2 + 2 = 14 against 100 made in the USA;
    # cost 99 x 100 + 14 = 9 914, so the ban is worth 10 000 - 9 914 = 86 per tonne.
    assert ctl["shadow_value_usd_per_t"] == pytest.approx(86.0, **APPROX)
    assert bool(ctl["binding"])
    # Per lane at the model prices: the USA's price (100) is unique, China's is not (it
    # makes nothing under the ban: any price from 0 to its cost 10 is optimal), so the
    # direct lane's value lies in [100 - 10 - 5, 100 - 0 - 5] and is flagged as such.
    lanes = t["ban_lane_values"].set_index(["from_country", "to_country"])
    assert 85.0 - 1e-6 <= lanes.loc[("CHN", "USA"), "value_usd_per_t"] <= 95.0 + 1e-6
    assert not bool(lanes.loc[("CHN", "USA"), "prices_unique"])
    prices = t["prices"].set_index(["country", "product", "origin_class"])
    assert bool(prices.loc[("USA", "ox", ""), "price_unique"])


def test_ban_with_an_exempt_country(tmp_path):
    """China bans oxide to all but Japan. Japan imports 50 t of Chinese oxide at 15;
    it may not pass it on, but it ships 100 t of its own (made at 20) to the USA at
    22: cost 750 + 2200 = 2950; prices JPN 15, USA 22."""
    case = ox_case(extra_lanes=(("CHN", "JPN", 5), ("JPN", "USA", 2)), jpn_cost=20,
                   demand=(("USA", 100), ("JPN", 50)))
    case["export_controls"] = [{"control": "ban", "exporter": "CHN", "product": "ox",
                                "destinations": "*", "exempt": "JPN", "kind": "ban"}]
    r = solve(tmp_path, case)
    t = r.tables
    assert r.solve.objective == pytest.approx(2950.0, **APPROX)
    flows = t["flows"]
    assert value(flows, "flow_t_per_yr", from_country="CHN", to_country="JPN", origin_class="CHN") == pytest.approx(50.0)
    assert value(flows, "flow_t_per_yr", from_country="JPN", to_country="USA", origin_class="other") == pytest.approx(100.0)
    assert value(flows, "flow_t_per_yr", to_country="USA", origin_class="CHN") == 0.0
    prices = t["prices"][t["prices"]["origin_class"] == ""].set_index("country")["price_usd_per_t"]
    assert prices["JPN"] == pytest.approx(15.0, **APPROX)
    assert prices["USA"] == pytest.approx(22.0, **APPROX)


def magnet_case():
    """CHN mines Dy oxide at 100 and makes magnets (0.05 t Dy oxide each) at 10; the
    USA can only make a Dy-free substitute magnet at 200."""
    return base(
        [("CHN", ""), ("USA", "")],
        [{"product": "dy_ox", "stage": "oxide", "element": "Dy", "unit": "t_REO"},
         {"product": "magnet", "stage": "magnet", "element": "mix", "unit": "t_magnet"}],
        [{"process": "mine", "stage": "mining"}, {"process": "make_mag", "stage": "magnet"},
         {"process": "substitute", "stage": "substitution"}],
        [{"process": "mine", "product": "dy_ox", "coefficient": 1},
         {"process": "make_mag", "product": "dy_ox", "coefficient": -0.05},
         {"process": "make_mag", "product": "magnet", "coefficient": 1},
         {"process": "substitute", "product": "magnet", "coefficient": 1}],
        [{"facility": "cn_mine", "country": "CHN", "capacity_t_per_yr": 1000},
         {"facility": "cn_mag", "country": "CHN", "capacity_t_per_yr": 1000},
         {"facility": "us_sub", "country": "USA", "capacity_t_per_yr": 1000}],
        [{"facility": "cn_mine", "process": "mine", "unit_cost_usd_per_t": 100},
         {"facility": "cn_mag", "process": "make_mag", "unit_cost_usd_per_t": 10},
         {"facility": "us_sub", "process": "substitute", "unit_cost_usd_per_t": 200}],
        [{"country": "USA", "product": "magnet", "period": "2025", "quantity_t_per_yr": 100,
          "shortfall_penalty_usd_per_t": 1e4}],
        [{"from_country": "CHN", "to_country": "USA", "product": "*", "cost_usd_per_t": 5}])


def test_quota_in_element_content(tmp_path):
    """A quota of 2 t Dy a year on magnets (0.05 t Dy each) lets 40 magnets through at
    10 + 0.05 x 100 + 5 = 20; the other 60 are substitutes at 200: cost 800 + 12 000
    = 12 800. One more t of Dy quota saves (200 - 20) / 0.05 = 3600."""
    case = magnet_case()
    case["export_controls"] = [{"control": "dy_quota", "exporter": "CHN", "product": "magnet",
                                "kind": "quota", "element": "Dy", "quota_t_per_yr": 2}]
    r = solve(tmp_path, case)
    t = r.tables
    assert r.solve.objective == pytest.approx(12800.0, **APPROX)
    assert value(t["flows"], "flow_t_per_yr", product="magnet") == pytest.approx(40.0, **APPROX)
    assert value(t["production"], "activity_t_per_yr", facility="us_sub") == pytest.approx(60.0, **APPROX)
    ctl = t["controls"].iloc[0]
    assert ctl["used_t_per_yr"] == pytest.approx(2.0, **APPROX)
    assert ctl["shadow_value_usd_per_t"] == pytest.approx(3600.0, **APPROX)
    assert bool(ctl["binding"]) and not bool(ctl["origin_classes"])
    assert value(t["prices"], "price_usd_per_t", country="USA", product="magnet") == pytest.approx(200.0, **APPROX)


def test_licence_share_with_its_cost(tmp_path):
    """Licences approve 40 % of a 100 t/yr reference flow at 20 USD/t paperwork: 40 t
    arrive at 10 + 5 + 20 = 35, the USA makes 60 t at 100: cost 1400 + 6000 = 7400;
    licence cost 800; refused 60 t; a licensed tonne is worth 100 - 35 = 65."""
    case = ox_case()
    case["export_controls"] = [{"control": "lic", "exporter": "CHN", "product": "ox", "kind": "licence",
                                "licence_approval_share": 0.4, "reference_flow_t_per_yr": 100,
                                "licence_cost_usd_per_t": 20}]
    r = solve(tmp_path, case)
    t = r.tables
    assert r.solve.objective == pytest.approx(7400.0, **APPROX)
    assert value(t["flows"], "flow_t_per_yr", from_country="CHN") == pytest.approx(40.0, **APPROX)
    assert value(t["costs"], "cost_usd", component="licence") == pytest.approx(800.0, **APPROX)
    ctl = t["controls"].iloc[0]
    assert ctl["refused_t_per_yr"] == pytest.approx(60.0, **APPROX)
    assert ctl["shadow_value_usd_per_t"] == pytest.approx(65.0, **APPROX)


def metal_case(extraterritorial: bool):
    """Dy metal made in CHN at 10 or AUS at 40; JPN makes magnets (0.1 t metal each) at 5
    for its own 50 t and for 100 t of US demand; lanes cost 1."""
    case = base(
        [("CHN", ""), ("USA", ""), ("JPN", ""), ("AUS", "")],
        [{"product": "dy_metal", "stage": "metal", "element": "Dy", "unit": "t_metal"},
         {"product": "magnet", "stage": "magnet", "element": "mix", "unit": "t_magnet"}],
        [{"process": "make_metal", "stage": "reduction"}, {"process": "make_mag", "stage": "magnet"}],
        [{"process": "make_metal", "product": "dy_metal", "coefficient": 1},
         {"process": "make_mag", "product": "dy_metal", "coefficient": -0.1},
         {"process": "make_mag", "product": "magnet", "coefficient": 1}],
        [{"facility": "cn", "country": "CHN", "capacity_t_per_yr": 1000},
         {"facility": "au", "country": "AUS", "capacity_t_per_yr": 1000},
         {"facility": "jp_mag", "country": "JPN", "capacity_t_per_yr": 1000}],
        [{"facility": "cn", "process": "make_metal", "unit_cost_usd_per_t": 10},
         {"facility": "au", "process": "make_metal", "unit_cost_usd_per_t": 40},
         {"facility": "jp_mag", "process": "make_mag", "unit_cost_usd_per_t": 5}],
        [{"country": "USA", "product": "magnet", "period": "2025", "quantity_t_per_yr": 100,
          "shortfall_penalty_usd_per_t": 1e4},
         {"country": "JPN", "product": "magnet", "period": "2025", "quantity_t_per_yr": 50,
          "shortfall_penalty_usd_per_t": 1e4}],
        [{"from_country": f, "to_country": t, "product": p, "cost_usd_per_t": 1}
         for f, t, p in (("CHN", "JPN", "dy_metal"), ("AUS", "JPN", "dy_metal"), ("JPN", "USA", "magnet"))])
    case["export_controls"] = [{"control": "dy_rule", "exporter": "CHN", "product": "dy_metal",
                                "destinations": "USA", "kind": "ban", "extraterritorial": extraterritorial}]
    return case


def test_extraterritorial_rule_blocks_magnets_made_from_controlled_metal(tmp_path):
    """With the 0.1 % rule, a Japanese magnet made from Chinese metal is Chinese-origin
    and may not go to the USA; one made from Australian metal is clean. JPN serves itself
    with tainted magnets at 5 + 0.1 x 11 = 6.1 (305) and the USA with clean ones at
    5 + 0.1 x 41 + 1 = 10.1 (1010): cost 1315. The magnet line runs 100 t clean and
    50 t tainted in one capacity."""
    r = solve(tmp_path, metal_case(True))
    t = r.tables
    assert r.solve.objective == pytest.approx(1315.0, **APPROX)
    prod = t["production"]
    assert value(prod, "activity_t_per_yr", facility="jp_mag", mode="clean") == pytest.approx(100.0, **APPROX)
    assert value(prod, "activity_t_per_yr", facility="jp_mag", mode="tainted") == pytest.approx(50.0, **APPROX)
    flows = t["flows"]
    assert value(flows, "flow_t_per_yr", from_country="AUS", product="dy_metal", origin_class="other") == pytest.approx(10.0)
    assert value(flows, "flow_t_per_yr", from_country="CHN", product="dy_metal", origin_class="CHN") == pytest.approx(5.0)
    assert value(flows, "flow_t_per_yr", to_country="USA", origin_class="other") == pytest.approx(100.0)
    assert value(flows, "flow_t_per_yr", to_country="USA", origin_class="CHN") == 0.0
    usa = t["prices"][(t["prices"]["country"] == "USA") & (t["prices"]["origin_class"] == "")]
    assert usa["price_usd_per_t"].iloc[0] == pytest.approx(10.1, **APPROX)


def test_without_the_extraterritorial_rule_third_country_magnets_pass(tmp_path):
    """The same ban without the 0.1 % rule covers the metal only: Japan makes all 150
    magnets from Chinese metal at 6.1 and ships 100 to the USA for 1 more: cost 1015."""
    r = solve(tmp_path, metal_case(False))
    t = r.tables
    assert r.solve.objective == pytest.approx(1015.0, **APPROX)
    assert set(t["production"]["mode"]) == {""}
    assert value(t["flows"], "flow_t_per_yr", from_country="AUS") == 0.0


def tariff_case(rows):
    case = ox_case(extra_lanes=(("JPN", "USA", 5),), jpn_cost=90)
    case["tariffs"] = rows
    return case


def test_ad_valorem_and_specific_duties_with_bloc_wildcards(tmp_path):
    """ALLY members pay 5 % of the 1000 USD/t reference price on Chinese oxide, and
    every importer pays 2 USD/t on oxide from anywhere: CHN landed 10 + 5 + 50 + 2 = 67
    beats JPN 90 + 5 + 2 and US-made 100. Objective 6700; resource cost 1500 (running 1000, freight
    500); tariff revenue 5200 is a transfer; the US price is 67."""
    r = solve(tmp_path, tariff_case([
        {"importer": "ALLY", "exporter": "CHN", "product": "*", "ad_valorem_pct": 5},
        {"importer": "*", "exporter": "*", "product": "ox", "specific_usd_per_t": 2}]))
    t = r.tables
    assert r.solve.objective == pytest.approx(6700.0, **APPROX)
    assert value(t["tariffs"], "revenue_usd", importer="USA") == pytest.approx(5200.0, **APPROX)
    costs = t["costs"]
    assert value(costs, "cost_usd", category="resource") == pytest.approx(1500.0, **APPROX)
    assert value(costs, "cost_usd", category="transfer") == pytest.approx(5200.0, **APPROX)
    assert value(t["prices"], "price_usd_per_t", country="USA", origin_class="") == pytest.approx(67.0, **APPROX)
    summary = t["summary"].set_index(["section", "item"])["value"]
    assert float(summary[("transfers", "total (undiscounted)")]) == pytest.approx(5200.0, **APPROX)


def test_high_duty_diverts_imports(tmp_path):
    """At 10 % plus 5 USD/t, Chinese oxide lands at 10 + 5 + 105 + 2 = 122 > 97 from
    Japan (< 100 made at home): the USA buys Japanese; objective 9700, revenue only the
    2 USD/t layer (200)."""
    r = solve(tmp_path, tariff_case([
        {"importer": "ALLY", "exporter": "CHN", "product": "ox", "ad_valorem_pct": 10, "specific_usd_per_t": 5},
        {"importer": "*", "exporter": "*", "product": "ox", "specific_usd_per_t": 2}]))
    t = r.tables
    assert r.solve.objective == pytest.approx(9700.0, **APPROX)
    assert value(t["flows"], "flow_t_per_yr", from_country="JPN") == pytest.approx(100.0, **APPROX)
    assert t["tariffs"]["revenue_usd"].sum() == pytest.approx(200.0, **APPROX)


def _size(path):
    data = build_model_data(load_case(str(path)))
    sol = solve_model(build_model(data).model, data.settings)
    return sol.stats["rows"], sol.stats["columns"]


def test_controls_add_classes_only_where_needed(tmp_path):
    """No control: the core model's size. A ban on all destinations: fewer flow columns,
    no class rows. A ban with a named destination: class rows and columns for that
    product only."""
    from model.case.casewriter import write_case
    case = ox_case(extra_lanes=(("CHN", "MYS", 2), ("MYS", "USA", 2)))
    plain = _size(write_case(tmp_path / "a.xlsx", case, {"base_year": 2025}))
    case["export_controls"] = [{"control": "b", "exporter": "CHN", "product": "ox", "destinations": "*", "kind": "ban"}]
    everywhere = _size(write_case(tmp_path / "b.xlsx", case, {"base_year": 2025}))
    case["export_controls"][0]["destinations"] = "USA"
    named = _size(write_case(tmp_path / "c.xlsx", case, {"base_year": 2025}))
    # plain: 3 lanes; balance rows at CHN, USA, MYS.
    assert plain == (3 + 2, 2 + 3 + 1 + 3)  # rows: 3 nodes + 2 capacity; cols: 2 make, 3 flows, shortfall, 3 disposal
    # CHN's two lanes go, and with them Malaysia's disposal column (nothing reaches it).
    assert everywhere[0] == plain[0] and everywhere[1] == plain[1] - 3
    assert named[0] > plain[0] and named[1] > plain[1]


def test_duty_on_one_exporter_follows_origin_through_a_transit_country(tmp_path):
    """A 100 USD/t US duty on Chinese oxide. Through Malaysia (10 + 2 + 2 = 14) Chinese
    oxide would land duty-free if the duty followed the ship; it follows origin, so
    Chinese oxide lands at 15 + 100 direct or 14 + 100 via Malaysia, both above the
    US plant's 100: the USA makes its own 100 t, cost 10 000, no revenue."""
    case = ox_case(extra_lanes=(("CHN", "MYS", 2), ("MYS", "USA", 2)))
    case["tariffs"] = [{"importer": "USA", "exporter": "CHN", "product": "ox", "specific_usd_per_t": 100}]
    r = solve(tmp_path, case)
    t = r.tables
    assert r.solve.objective == pytest.approx(10000.0, **APPROX)
    assert value(t["flows"], "flow_t_per_yr", to_country="USA") == 0.0
    assert value(t["production"], "activity_t_per_yr", facility="us") == pytest.approx(100.0, **APPROX)
