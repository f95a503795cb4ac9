"""Hand-solved benchmarks (issue 18 part 3): a bloc's own output at a stage at least a
share of its consumption, in tonnes of rare-earth content, with its price per point.

Case: EU1 (bloc EU) demands 100 t/yr of oxide; China separates at 10 USD/t, EU1 at 30
(capacity 1000 unless a test says otherwise); freight 0; one year, no discounting."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import one_period, solve, value
from model.case.casewriter import write_case
from model.case.schema import InputError
from model.lp.modules.benchmarks import content_per_t, stage_output_content
from model.runs.explain import diagnose_infeasible
from model.runs.pipeline import load_case, run_case

APPROX = dict(rel=1e-7, abs=1e-6)


def eu_case(eu_cap: float = 1000, **benchmark) -> dict:
    case = {
        "periods": one_period(),
        "countries": [{"country": "CHN", "blocs": ""}, {"country": "EU1", "blocs": "EU"}],
        "products": [{"product": "ox", "stage": "oxide", "element": "Nd", "unit": "t_REO"}],
        "processes": [{"process": "sep", "stage": "separation"}],
        "recipes": [{"process": "sep", "product": "ox", "coefficient": 1}],
        "facilities": [{"facility": "cn", "country": "CHN", "capacity_t_per_yr": 1000},
                       {"facility": "eu", "country": "EU1", "capacity_t_per_yr": eu_cap}],
        "facility_processes": [{"facility": "cn", "process": "sep", "unit_cost_usd_per_t": 10},
                               {"facility": "eu", "process": "sep", "unit_cost_usd_per_t": 30}],
        "demand": [{"country": "EU1", "product": "ox", "period": "2025", "quantity_t_per_yr": 100,
                    "shortfall_penalty_usd_per_t": 1e4}],
        "transport": [{"from_country": "CHN", "to_country": "EU1", "product": "*", "cost_usd_per_t": 0}],
    }
    if benchmark:
        case["benchmarks"] = [{"benchmark": "crma_processing", "bloc": "EU", "stage": "separation",
                               **benchmark}]
    return case


def check_benchmark_rows(t) -> None:
    """benchmark_share holds: output (+ gap) >= min_share x consumption, and the output is
    the bloc's activity of the stage's processes (here one product, content 1 per t)."""
    b = t["benchmarks"]
    assert (b["output_t_per_yr"] + b["gap_t_per_yr"] >= b["required_t_per_yr"] - 1e-6).all()
    prod = t["production"]
    eu_made = prod[prod["country"] == "EU1"]["activity_t_per_yr"].sum()
    assert b["output_t_per_yr"].sum() == pytest.approx(eu_made, **APPROX)


def test_no_benchmark_buys_chinese(tmp_path):
    r = solve(tmp_path, eu_case())
    assert r.solve.objective == pytest.approx(1000.0, **APPROX)


def test_processing_benchmark_and_its_price_per_point(tmp_path):
    """40 %: EU1 separates 40 t at 30, China 60 at 10: cost 1200 + 600 = 1800 (+800 on the
    free market). One more t/yr required moves a tonne from China (10) to EU1 (30): 20
    USD/t; a point is 1 % of 100 t = 1 t/yr, so 20 USD a year (weight 1: 20 USD PV).
    The EU price of oxide stays China's 10 (the marginal tonne comes from China)."""
    r = solve(tmp_path, eu_case(min_share=0.4))
    t = r.tables
    assert r.solve.objective == pytest.approx(1800.0, **APPROX)
    assert value(t["production"], "activity_t_per_yr", facility="eu") == pytest.approx(40.0, **APPROX)
    b = t["benchmarks"].iloc[0]
    assert (b["consumption_t_per_yr"], b["required_t_per_yr"], b["output_t_per_yr"]) == \
        (pytest.approx(100.0), pytest.approx(40.0), pytest.approx(40.0))
    assert b["share_made_in_bloc"] == pytest.approx(0.4, **APPROX)
    assert bool(b["binding"])
    assert b["value_usd_per_t"] == pytest.approx(20.0, **APPROX)
    assert b["cost_of_one_more_point_usd_per_yr"] == pytest.approx(20.0, **APPROX)
    assert b["cost_of_one_more_point_usd_pv"] == pytest.approx(20.0, **APPROX)
    prices = t["prices"].set_index(["country", "product"])
    assert prices.loc[("EU1", "ox"), "price_usd_per_t"] == pytest.approx(10.0, **APPROX)
    sup = t["benchmark_supply"]
    assert list(sup["unit"]) == ["eu"] and not bool(sup.iloc[0]["new_capacity"])
    check_benchmark_rows(t)


def test_zero_share_prices_the_first_point_and_a_slack_one_is_free(tmp_path):
    """At 0 % nothing need be made in the EU and nothing is: the row is met exactly (0 >= 0),
    so the first point already costs 20 USD/t. With EU1 cheaper than China (5 < 10) it
    makes all 100 t: a 40 % benchmark is slack and worth 0; cost 500."""
    r = solve(tmp_path, eu_case(min_share=0.0), name="zero.xlsx")
    assert r.solve.objective == pytest.approx(1000.0, **APPROX)
    assert r.tables["benchmarks"].iloc[0]["value_usd_per_t"] == pytest.approx(20.0, **APPROX)
    case = eu_case(min_share=0.4)
    case["facility_processes"][1]["unit_cost_usd_per_t"] = 5
    r = solve(tmp_path, case, name="slack.xlsx")
    b = r.tables["benchmarks"].iloc[0]
    assert r.solve.objective == pytest.approx(500.0, **APPROX)
    assert b["output_t_per_yr"] == pytest.approx(100.0, **APPROX) and not bool(b["binding"])
    assert b["value_usd_per_t"] == pytest.approx(0.0, abs=1e-9)
    assert b["cost_of_one_more_point_usd_pv"] == pytest.approx(0.0, abs=1e-9)


def test_a_priced_gap_when_capacity_falls_short(tmp_path):
    """EU1 can make 30 t/yr; the 40 t benchmark is missed by 10 t/yr at 50 USD/t: cost
    30 x 30 + 70 x 10 + 10 x 50 = 2100; one more t/yr required is one more t of gap: 50."""
    r = solve(tmp_path, eu_case(eu_cap=30, min_share=0.4, gap_penalty_usd_per_t=50))
    t = r.tables
    assert r.solve.objective == pytest.approx(2100.0, **APPROX)
    b = t["benchmarks"].iloc[0]
    assert b["gap_t_per_yr"] == pytest.approx(10.0, **APPROX)
    assert b["output_t_per_yr"] == pytest.approx(30.0, **APPROX)
    assert b["value_usd_per_t"] == pytest.approx(50.0, **APPROX)
    costs = t["costs"]
    gap = costs[costs["component"] == "benchmark_gap"]
    assert gap["category"].iloc[0] == "penalty"
    check_benchmark_rows(t)


def test_an_unmet_hard_benchmark_is_infeasible_and_named(tmp_path):
    """Without a gap price, a 40 t requirement against 30 t of capacity cannot be met: the
    run says infeasible and the diagnosis names the benchmark row and the capacity."""
    path = write_case(tmp_path / "hard.xlsx", eu_case(eu_cap=30, min_share=0.4), {"base_year": 2025})
    r = run_case(str(path))
    assert not r.optimal and r.solve.status == "infeasible"
    conflicts = diagnose_infeasible(load_case(str(path)))
    assert ("benchmarks", "min_share") in set(zip(conflicts["sheet"], conflicts["column"]))
    assert ("facilities", "capacity_t_per_yr") in set(zip(conflicts["sheet"], conflicts["column"]))


def test_new_capacity_built_to_meet_it(tmp_path):
    """A new EU1 plant: capex 50 per t/yr over 10 years at 0 % (5 USD per t/yr a year), run at
    20: 25 per t beats the old plant's 30, so the 40 t come from 40 t/yr built: cost
    40 x 25 + 60 x 10 = 1600; one more point costs 25 - 10 = 15."""
    case = eu_case(min_share=0.4)
    case["expansion"] = [{"option": "eu_new", "country": "EU1", "process": "sep", "max_build_t_per_yr": 100,
                          "capex_usd_per_t_per_yr": 50, "lifetime_yr": 10, "unit_cost_usd_per_t": 20,
                          "lead_time_yr": 0}]
    r = solve(tmp_path, case, settings={"discount_rate": 0.0})
    t = r.tables
    assert r.solve.objective == pytest.approx(1600.0, **APPROX)
    b = t["benchmarks"].iloc[0]
    assert b["value_usd_per_t"] == pytest.approx(15.0, **APPROX)
    sup = t["benchmark_supply"]
    assert list(sup["unit"]) == ["eu_new"] and bool(sup.iloc[0]["new_capacity"])
    assert sup.iloc[0]["output_t_per_yr"] == pytest.approx(40.0, **APPROX)


def test_stage_output_counts_final_outputs_once():
    """Separation of 1 t ore gives 0.6 t light oxide and 0.4 t heavy concentrate, which a
    second separation process turns into 0.4 t heavy oxide: the stage's final outputs are
    the two oxides (0.6 and 0.4 per unit of each process), not the concentrate; counted
    in Dy content only, just the heavy oxide's 0.25 t Dy per t."""
    recipes = pd.DataFrame({"process": ["sep", "sep", "sep", "hsep", "hsep"],
                            "product": ["ore", "light", "seg", "seg", "heavy"],
                            "coefficient": [-1.0, 0.6, 0.4, -1.0, 1.0]})
    processes = pd.DataFrame({"process": ["sep", "hsep"], "stage": ["separation", "separation"]})
    content = pd.DataFrame({"Nd": [0.0, 1.0, 0.75, 0.75], "Dy": [0.0, 0.0, 0.25, 0.25]},
                           index=["ore", "light", "seg", "heavy"])
    products = pd.DataFrame({"unit": ["t", "t_REO", "t_REO", "t_REO"]}, index=content.index)
    k = stage_output_content(recipes, processes, content_per_t(products, content, ""), "separation")
    assert k.to_dict() == {"hsep": pytest.approx(1.0), "sep": pytest.approx(0.6)}
    k = stage_output_content(recipes, processes, content_per_t(products, content, "Dy"), "separation")
    assert k.to_dict() == {"hsep": pytest.approx(0.25), "sep": pytest.approx(0.0)}
    # A t_REO mix whose split nobody derived (content 0) still holds a tonne of REO.
    assert content_per_t(products, content * 0.0, "")["seg"] == 1.0


def test_bad_benchmark_rows_all_reported(tmp_path):
    """Unknown stage code, a misspelt element, a bloc with no demand, a share above 1, a
    stage no process has and a duplicate: every problem at once, each naming sheet, row
    and column (rows a and d are unread, so f is the first on EU separation)."""
    case = eu_case()
    case["countries"].append({"country": "USA", "blocs": "NA"})
    case["benchmarks"] = [
        {"benchmark": "a", "bloc": "EU", "stage": "seperation", "min_share": 0.4},
        {"benchmark": "b", "bloc": "EU", "stage": "separation", "min_share": 0.4, "element": "Ndd"},
        {"benchmark": "c", "bloc": "NA", "stage": "separation", "min_share": 0.1},
        {"benchmark": "d", "bloc": "EU", "stage": "separation", "min_share": 1.5},
        {"benchmark": "e", "bloc": "EU", "stage": "mining", "min_share": 0.1},
        {"benchmark": "f", "bloc": "EU", "stage": "separation", "min_share": 0.2},
        {"benchmark": "g", "bloc": "EU", "stage": "separation", "min_share": 0.3},
    ]
    path = write_case(tmp_path / "bad.xlsx", case, {"base_year": 2025})
    with pytest.raises(InputError) as exc:
        load_case(str(path))
    found = {(p.sheet, p.row, p.column) for p in exc.value.problems}
    assert ("benchmarks", 2, "stage") in found      # not an allowed value
    assert ("benchmarks", 3, "element") in found    # unknown element
    assert ("benchmarks", 4, "bloc") in found       # demands nothing
    assert ("benchmarks", 5, "min_share") in found  # above 1
    assert ("benchmarks", 6, "stage") in found      # no process is mining
    assert ("benchmarks", 8, "stage") in found      # duplicate of f (same bloc, stage, element '')
    assert len(found) == 6


def test_base_case_crma_benchmarks_scenario():
    """The shipped scenario: the CRMA's three benchmarks from 2028-30. Extraction is missed
    in full (no EU mine in the case: gap = 10 % of consumption); processing and recycling
    are met exactly in 2031-35, once plants decided from 2025 are online (5-year lead time),
    and missed in 2028-30."""
    from model.runs.pipeline import run_case
    from test_base_case import BASE
    r = run_case(str(BASE), "eu_crma_benchmarks")
    assert r.optimal
    b = r.tables["benchmarks"].set_index(["benchmark", "period"])
    for t in ("2028-30", "2031-35"):
        ext = b.loc[("crma_extraction", t)]
        assert ext["output_t_per_yr"] == 0.0
        assert ext["gap_t_per_yr"] == pytest.approx(ext["required_t_per_yr"], rel=1e-9)
        assert ext["required_t_per_yr"] == pytest.approx(0.10 * ext["consumption_t_per_yr"], rel=1e-12)
    for name, share in (("crma_processing", 0.40), ("crma_recycling", 0.25)):
        late = b.loc[(name, "2031-35")]
        assert late["gap_t_per_yr"] == pytest.approx(0.0, abs=1e-6)
        assert late["share_made_in_bloc"] == pytest.approx(share, rel=1e-7)
        assert 0.0 < late["cost_of_one_more_point_usd_pv"] < 1e8  # built, not a gap price
        assert b.loc[(name, "2028-30"), "gap_t_per_yr"] > 0.0
    sup = r.tables["benchmark_supply"]
    assert sup[sup["period"] == "2031-35"]["new_capacity"].any()


def test_benchmarks_reach_report_html_and_briefing(tmp_path):
    """The page and the briefing carry the benchmark: its share made in the bloc (40 %) and
    the price of one more point (20 USD PV) from the hand case above."""
    from model.reports.files import write_run
    r = solve(tmp_path, eu_case(min_share=0.4))
    folder = write_run(r, tmp_path / "out")
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert "Benchmarks: made inside the bloc" in page and "crma_processing" in page
    brief = pd.read_excel(folder / "report.xlsx", sheet_name="briefing", header=None)
    row = brief[brief[0].astype(str).str.startswith("crma_processing")].iloc[0]
    assert row[2] == pytest.approx(0.4) and row[4] == pytest.approx(20.0)


def test_one_more_point_is_a_whole_point_re_solved(tmp_path):
    """Demand 1,000 t/yr, so a point is 10 t/yr. EU1 can make 402 at 30; a gap costs 50.
    At 40 % (400 t/yr) the next point needs 2 t/yr more from EU1 (+20 each: 40) and 8 t/yr
    of gap (50 each: 400): 440, not 10 x the first tonne's 20. With a cheap EU plant making
    405 anyway (5 USD/t), the requirement has 5 t/yr of slack: the next point costs 5 t/yr
    more from EU1 at 30 - 10 = 20: 100, though the first tonne is free."""
    c = eu_case(eu_cap=402, min_share=0.4, gap_penalty_usd_per_t=50)
    c["demand"][0]["quantity_t_per_yr"] = 1000
    b = solve(tmp_path, c, name="kink.xlsx").tables["benchmarks"].iloc[0]
    assert b["value_usd_per_t"] == pytest.approx(20.0, **APPROX)
    assert b["cost_of_one_more_point_usd_pv"] == pytest.approx(440.0, **APPROX)
    c = eu_case(min_share=0.4)
    c["demand"][0]["quantity_t_per_yr"] = 1000
    c["facilities"].append({"facility": "eu_cheap", "country": "EU1", "capacity_t_per_yr": 405})
    c["facility_processes"].append({"facility": "eu_cheap", "process": "sep", "unit_cost_usd_per_t": 5})
    b = solve(tmp_path, c, name="slack.xlsx").tables["benchmarks"].iloc[0]
    assert b["value_usd_per_t"] == pytest.approx(0.0, abs=1e-9)
    assert b["cost_of_one_more_point_usd_pv"] == pytest.approx(100.0, **APPROX)
