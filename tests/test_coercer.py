"""The controlling country's ledger: its exports, market share and the rent a licence gives.

The case (hand-solved, one year): the USA needs 100 t/yr of concentrate (penalty 100,000
USD/t). China mines up to 1,000 t/yr at 10 USD/t, Australia up to 60 t/yr at 30; freight
is 1 USD/t on every lane (so no cycle is free and flows are unique). Base: China sells all
100 t at its price 10 (its mine is not full), the USA pays 11: export revenue 1,000 USD,
100 % of world exports.

Scenario `licence`: China licenses 50 % of a 100 t/yr reference flow to the USA. China sells
50 t, Australia 50 t (not full, so the USA pays Australia's 30 + 1). China's price stays 10:
export revenue 50 x 10 = 500 (it loses 500), 50 % of world tonnes, 500 / (500 + 1,500) = 25 %
of world export revenue. A licensed tonne is worth 31 - 11 = 20 USD to its holder: the
licence rent, 50 x 20 = 1,000 USD from the USA's buyers to China's licensed exporters. The
controlling country ends up with 500 + 1,000 = 1,500 USD, more than the 1,000 it had.
"""

from __future__ import annotations

import pandas as pd
import pytest

from model.case.casewriter import write_case
from model.cli import main
from model.runs.pipeline import run_case

APPROX = dict(rel=1e-9, abs=1e-9)


def sheets() -> dict:
    return {
        "periods": [{"period": "2025", "start_year": 2025, "duration_yr": 1}],
        "countries": [{"country": "CHN"}, {"country": "AUS"}, {"country": "USA"}],
        "products": [{"product": "conc", "stage": "concentrate", "element": "mix", "unit": "t_REO"}],
        "processes": [{"process": "mine", "stage": "mining"}],
        "recipes": [{"process": "mine", "product": "conc", "coefficient": 1}],
        "facilities": [{"facility": "cn", "country": "CHN", "capacity_t_per_yr": 1000},
                       {"facility": "au", "country": "AUS", "capacity_t_per_yr": 60}],
        "facility_processes": [{"facility": "cn", "process": "mine", "unit_cost_usd_per_t": 10},
                               {"facility": "au", "process": "mine", "unit_cost_usd_per_t": 30}],
        "demand": [{"country": "USA", "product": "conc", "period": "2025", "quantity_t_per_yr": 100,
                    "shortfall_penalty_usd_per_t": 1e5}],
        "transport": [{"from_country": "*", "to_country": "*", "product": "*", "cost_usd_per_t": 1}],
        "scenarios": [{"scenario": "licence", "description": "China licenses half of its exports to the USA"}],
        "scenario_changes": [
            {"scenario": "licence", "sheet": "export_controls", "filter": "*", "column": "*", "op": "append",
             "value": "control=lic; exporter=CHN; product=conc; destinations=USA; kind=licence; "
                      "licence_approval_share=0.5; reference_flow_t_per_yr=100"}],
    }


@pytest.fixture
def case(tmp_path):
    return write_case(tmp_path / "coercer.xlsx", sheets(), {"base_year": 2025, "discount_rate": 0.0})


def test_the_coercers_ledger_by_hand(case):
    r = run_case(str(case), "licence")
    assert r.solve.objective == pytest.approx(50 * 11 + 50 * 31, **APPROX)
    ledger = r.tables["coercer"].set_index(["exporter", "product", "period"]).loc[("CHN", "conc", "2025")]
    assert ledger["exported_t"] == pytest.approx(50.0, **APPROX)
    assert ledger["world_exported_t"] == pytest.approx(100.0, **APPROX)
    assert ledger["world_tonnes_share"] == pytest.approx(0.5, **APPROX)
    assert ledger["export_revenue_usd"] == pytest.approx(500.0, **APPROX)
    assert ledger["world_export_revenue_usd"] == pytest.approx(2000.0, **APPROX)
    assert ledger["world_revenue_share"] == pytest.approx(0.25, **APPROX)
    rent = r.tables["transfers"].set_index("component").loc["control_rent"]
    assert (rent["payer"], rent["receiver"]) == ("buyers of CHN's exports under lic", "licensed exporters in CHN")
    assert rent["usd"] == pytest.approx(1000.0, **APPROX)
    p = r.tables["prices"].fillna({"origin_class": ""}).set_index(["country", "origin_class"])
    used = [("CHN", "CHN"), ("AUS", "other"), ("USA", "")]  # where the exports leave and the demand is
    assert p.loc[used, "price_usd_per_t"].tolist() == [pytest.approx(10.0), pytest.approx(30.0), pytest.approx(31.0)]
    assert p.loc[used, "price_unique"].all()
    assert "coercer" not in run_case(str(case)).tables  # no control in the base case: no ledger


def test_a_comparison_gives_the_coercers_loss_and_its_rent(case, tmp_path):
    assert main(["-q", "run", str(case), "--scenario", "licence", "--no-explain", "--out", str(tmp_path)]) == 0
    folder = next(p for p in tmp_path.iterdir() if p.is_dir())
    vs = pd.read_csv(folder / "versus_base.csv").set_index("figure")
    assert vs.at["export revenue of CHN (USD)", "reference_value"] == pytest.approx(1000.0, **APPROX)
    assert vs.at["export revenue of CHN (USD)", "change"] == pytest.approx(-500.0, **APPROX)
    assert vs.at["exports of conc from CHN (t)", "change"] == pytest.approx(-50.0, **APPROX)
    assert vs.at["share of world conc exports from CHN", "reference_value"] == pytest.approx(1.0, **APPROX)
    assert vs.at["share of world conc exports from CHN", "scenario_value"] == pytest.approx(0.5, **APPROX)
    rent = "transfer control_rent: buyers of CHN's exports under lic to licensed exporters in CHN (USD)"
    assert (vs.at[rent, "reference_value"], vs.at[rent, "change"]) == (0.0, pytest.approx(1000.0, **APPROX))
    assert vs.at["consumer spending in USA (USD)", "change"] == pytest.approx(100 * 31 - 100 * 11, **APPROX)
    assert (folder / "coercer.csv").exists()


def test_a_licence_share_change_re_solves_on_the_kept_model(tmp_path):
    """The licence in the base case at 50 %, a scenario at 60 %: China sells 60 t and
    Australia 40 t, 60 x 11 + 40 x 31 = 1,900 USD, re-solved on the kept model (the
    licence's export_quota row gets its new right-hand side), as a rebuild gives."""
    from model.runs.batch import BatchJob, load_inputs, scenario_case
    from model.runs.resolve import Resolver
    s = sheets()
    s["export_controls"] = [{"control": "lic", "exporter": "CHN", "product": "conc", "destinations": "USA",
                             "kind": "licence", "licence_approval_share": 0.5, "reference_flow_t_per_yr": 100}]
    s["scenarios"] = [{"scenario": "wider"}]
    s["scenario_changes"] = [{"scenario": "wider", "sheet": "export_controls", "filter": "control=lic",
                              "column": "licence_approval_share", "op": "set", "value": "0.6"}]
    path = write_case(tmp_path / "lic.xlsx", s, {"base_year": 2025, "discount_rate": 0.0})
    case, source = load_inputs(str(path))
    res = Resolver(case)
    scen = scenario_case(BatchJob("t", case, source), "wider")
    why, data = res.check(scen)
    assert why is None
    sol, tables, _ = res.resolve(scen, data)
    assert sol.objective == pytest.approx(60 * 11 + 40 * 31, **APPROX)
    ctl = tables["controls"].iloc[0]
    assert ctl["allowed_t_per_yr"] == pytest.approx(60.0) and ctl["used_t_per_yr"] == pytest.approx(60.0, **APPROX)
    assert ctl["shadow_value_usd_per_t"] == pytest.approx(20.0, **APPROX)
    assert run_case(str(path), "wider").solve.objective == pytest.approx(sol.objective, **APPROX)
