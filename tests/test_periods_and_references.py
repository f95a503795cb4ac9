"""Time in every shortfall figure, and scenarios set against the right reference.

The case (hand-solved): USA needs 100 t/yr of Nd oxide in a first quarter Q (2025, 0.25 yr)
and the rest of the year R (2025.25, 0.75 yr). Separation turns 1 t of concentrate into
0.2 t Nd oxide and 0.8 t La oxide. Mine m2 (250 t/yr of concentrate: 50 t/yr of Nd oxide)
runs all year; mine m1 (1,000 t/yr) only from 2025.25. So in Q half the demand is served:
50 t/yr short, 12.5 t in the quarter, 50 % of the quarter's demand; R is fully served. Over
the horizon 12.5 of 100 t (12.5 %): a horizon total would hide the quarter's 50 %.

Scenarios: `crisis` sets m2's capacity to 0 (Q: 100 t/yr short, 25 t, 100 %); `relief`, a
child of crisis, sets it to 125 (25 t/yr of Nd oxide: 75 t/yr short, 18.75 t, 75 %). Against
its parent, relief cuts the shortfall by 6.25 t; against the base case it adds 6.25 t.
"""

from __future__ import annotations

import pandas as pd
import pytest

from model.case.casewriter import write_case
from model.cli import main
from model.runs.pipeline import run_case

SETTINGS = {"base_year": 2025, "discount_rate": 0.0}


def sheets() -> dict:
    return {
        "periods": [{"period": "Q", "start_year": 2025, "duration_yr": 0.25},
                    {"period": "R", "start_year": 2025.25, "duration_yr": 0.75}],
        "countries": [{"country": "CHN"}, {"country": "USA"}],
        "products": [{"product": "conc", "stage": "concentrate", "element": "mix", "unit": "t_REO"},
                     {"product": "Nd_ox", "stage": "oxide", "element": "Nd", "unit": "t_REO"},
                     {"product": "La_ox", "stage": "oxide", "element": "La", "unit": "t_REO",
                      "disposal_cost_usd_per_t": 0}],
        "processes": [{"process": "mine", "stage": "mining"}, {"process": "sep", "stage": "separation"}],
        "recipes": [{"process": "mine", "product": "conc", "coefficient": 1},
                    {"process": "sep", "product": "conc", "coefficient": -1},
                    {"process": "sep", "product": "Nd_ox", "coefficient": 0.2},
                    {"process": "sep", "product": "La_ox", "coefficient": 0.8}],
        "facilities": [{"facility": "m1", "country": "CHN", "capacity_t_per_yr": 1000, "first_year": 2025.25},
                       {"facility": "m2", "country": "CHN", "capacity_t_per_yr": 250},
                       {"facility": "s1", "country": "CHN", "capacity_t_per_yr": 5000}],
        "facility_processes": [{"facility": "m1", "process": "mine", "unit_cost_usd_per_t": 10},
                               {"facility": "m2", "process": "mine", "unit_cost_usd_per_t": 10},
                               {"facility": "s1", "process": "sep", "unit_cost_usd_per_t": 20}],
        "demand": [{"country": "USA", "product": "Nd_ox", "period": p, "quantity_t_per_yr": 100,
                    "shortfall_penalty_usd_per_t": 1e5} for p in ("Q", "R")],
        "transport": [{"from_country": "*", "to_country": "*", "product": "*", "cost_usd_per_t": 0}],
        "scenarios": [{"scenario": "crisis", "description": "m2 stops"},
                      {"scenario": "relief", "parent": "crisis", "description": "m2 back at half"}],
        "scenario_changes": [
            {"scenario": "crisis", "sheet": "facilities", "filter": "facility=m2", "column": "capacity_t_per_yr",
             "op": "set", "value": "0"},
            {"scenario": "relief", "sheet": "facilities", "filter": "facility=m2", "column": "capacity_t_per_yr",
             "op": "set", "value": "125"}],
    }


@pytest.fixture
def case(tmp_path):
    return write_case(tmp_path / "quarter.xlsx", sheets(), SETTINGS)


def test_a_one_quarter_shortfall_reads_as_half_of_that_quarters_demand(case):
    r = run_case(str(case))
    short = r.tables["shortfall"]
    assert list(short["period"]) == ["Q"]  # R is fully served
    q = short.iloc[0]
    assert (q["country"], q["product"], q["segment"]) == ("USA", "Nd_ox", "all")
    assert q["demand_t"] == pytest.approx(25.0) and q["unserved_t"] == pytest.approx(12.5, abs=1e-9)
    assert q["unserved_share"] == pytest.approx(0.5, abs=1e-12)
    h = r.tables["shortfall_horizon"].iloc[0]
    assert (h["worst_period"], h["worst_period_share"]) == ("Q", pytest.approx(0.5, abs=1e-12))
    assert h["demand_t"] == pytest.approx(100.0) and h["unserved_t"] == pytest.approx(12.5, abs=1e-9)
    assert h["unserved_share"] == pytest.approx(0.125, abs=1e-12)


def test_the_console_names_the_worst_period_first(case, tmp_path, capsys):
    assert main(["run", str(case), "--no-explain", "--out", str(tmp_path / "out")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == "shortfall: worst 50.0% of USA Nd_ox (all) demand unserved in Q (12.5 t)"
    assert any("Q" in ln and "50.0%" in ln and "horizon 12.5% (12.5 t)" in ln for ln in lines[3:6])
    folder = next((tmp_path / "out").iterdir())
    assert pd.read_csv(folder / "shortfall.csv")["unserved_share"].tolist() == [pytest.approx(0.5)]
    assert pd.read_csv(folder / "shortfall_horizon.csv")["worst_period"].tolist() == ["Q"]


def test_a_scenario_is_set_against_its_parent_and_the_base(case, tmp_path, capsys):
    assert main(["run", str(case), "--scenario", "relief", "--no-explain", "--out", str(tmp_path / "out")]) == 0
    said = capsys.readouterr().out
    assert "against 'crisis':" in said and "against the base case:" in said
    folder = next((tmp_path / "out").iterdir())
    parent = pd.read_csv(folder / "versus_reference.csv").set_index("figure")
    base = pd.read_csv(folder / "versus_base.csv").set_index("figure")
    assert set(parent["reference"]) == {"crisis"} and set(base["reference"]) == {"base case"}
    assert parent.at["unserved demand (t)", "change"] == pytest.approx(-6.25, abs=1e-9)
    assert base.at["unserved demand (t)", "change"] == pytest.approx(6.25, abs=1e-9)
    row = "unserved Nd_ox in USA (all), Q (t)"
    assert parent.at[row, "reference_share_of_period_demand"] == pytest.approx(1.0)
    assert parent.at[row, "scenario_share_of_period_demand"] == pytest.approx(0.75)
    # --against picks another reference
    assert main(["-q", "run", str(case), "--scenario", "relief", "--against", "base case", "--no-explain",
                 "--out", str(tmp_path / "out2")]) == 0
    assert not (next((tmp_path / "out2").iterdir()) / "versus_reference.csv").exists()


def test_a_batch_has_deltas_against_each_rows_parent(case, tmp_path):
    out = tmp_path / "out"
    assert main(["-q", "run", str(case), "--all-scenarios", "--workers", "1", "--out", str(out)]) == 0
    t = pd.read_csv(next(out.iterdir()) / "comparison.csv").set_index("scenario")
    assert t.at["crisis", "unserved_t"] == pytest.approx(25.0) and t.at["relief", "unserved_t"] == pytest.approx(18.75)
    assert t.at["relief", "parent"] == "crisis" and t.at["crisis", "parent"] == "base case"
    assert t.at["relief", "vs_parent_unserved_t"] == pytest.approx(-6.25, abs=1e-9)
    assert t.at["relief", "vs_base_unserved_t"] == pytest.approx(6.25, abs=1e-9)
    assert t.at["crisis", "vs_parent_unserved_t"] == pytest.approx(12.5, abs=1e-9)  # its parent is the base
    assert t.at["relief", "unserved_USA_all_worst_period_share"] == pytest.approx(0.75)
    line = next(ln for ln in (next(out.iterdir()) / "run.log").read_text().splitlines() if ln.strip().startswith("relief"))
    assert line.split()[-1] == "75.0%"  # the worst period's share of demand beside the horizon tonnes


def test_the_summary_says_how_the_objective_adds_up(case, tmp_path, capsys):
    """Resource cost by hand: Q mines 250 t/yr of concentrate (10 + 20 USD/t to mine and
    separate) for 0.25 yr = 1,875 USD; R needs 500 t/yr (100 t Nd oxide / 0.2) for 0.75 yr
    = 11,250 USD; 13,125 in all (discount rate 0). Penalty: 12.5 t x 100,000 = 1,250,000.
    Objective 1,263,125 USD."""
    r = run_case(str(case))
    assert r.solve.objective == pytest.approx(1_263_125.0, rel=1e-12)
    s = r.tables["summary"]
    add = s[s["section"] == "how the objective adds up"].set_index("item")["value"]
    assert add["resource cost (present value)"] == pytest.approx(13_125.0, rel=1e-12)
    assert add["penalty value (unserved demand, missed targets) (present value)"] == pytest.approx(1_250_000.0, rel=1e-12)
    assert add["calibration terms (present value)"] == 0.0
    assert add["= objective (present value)"] == pytest.approx(1_263_125.0, rel=1e-12)
    words = set(s.loc[s["section"] == "glossary", "item"])
    assert words == {"resource cost", "transfers", "penalty value", "calibration terms", "objective"}
    assert main(["run", str(case), "--no-explain", "--out", str(tmp_path / "out")]) == 0
    assert ("objective 1.263 M USD = resource 0.013 M USD + penalty value 1.250 M USD (present value; resource "
            "cost falls when demand goes unserved: read shortfall beside it)") in capsys.readouterr().out


def test_who_pays_by_hand(case, tmp_path):
    """Prices: in Q the USA rations Nd oxide, so its price is the penalty, 100,000 USD/t,
    and China's (free freight) the same; concentrate is worth 0.2 x 100,000 - 20 = 19,980.
    In R Nd oxide costs (10 + 20) / 0.2 = 150 USD/t, concentrate 10, La oxide 0 (disposal).
    USA consumers pay 12.5 t x 100,000 + 75 t x 150 = 1,261,250 USD, all of it imported
    from China; China's concentrate makers earn 62.5 t x 19,980 + 375 t x 10 = 1,252,500."""
    w = run_case(str(case)).tables["who_pays"].set_index(["country", "product", "period"])
    assert w.at[("USA", "Nd_ox", "Q"), "consumer_spending_usd"] == pytest.approx(1_250_000.0, rel=1e-9)
    assert w.at[("USA", "Nd_ox", "R"), "consumer_spending_usd"] == pytest.approx(11_250.0, rel=1e-9)
    usa = w.loc["USA"].sum()
    assert usa["consumer_spending_usd"] == pytest.approx(1_261_250.0, rel=1e-9)
    assert usa["import_bill_usd"] == pytest.approx(1_261_250.0, rel=1e-9)
    chn = w.loc["CHN"]
    assert chn["export_revenue_usd"].sum() == pytest.approx(1_261_250.0, rel=1e-9)
    assert chn.loc["conc", "producer_revenue_usd"].sum() == pytest.approx(1_252_500.0, rel=1e-9)
    assert chn.loc["La_ox", "producer_revenue_usd"].abs().sum() == 0.0
    assert w["prices_unique"].all()
    # Against its parent, relief's USA consumers pay 6.25 t x 100,000 = 625,000 more.
    assert main(["-q", "run", str(case), "--scenario", "relief", "--no-explain", "--out", str(tmp_path)]) == 0
    vs = pd.read_csv(next(p for p in tmp_path.iterdir() if p.is_dir()) / "versus_reference.csv").set_index("figure")
    assert vs.at["consumer spending in USA (USD)", "change"] == pytest.approx(625_000.0, rel=1e-9)
    assert vs.at["export revenue of CHN (USD)", "change"] == pytest.approx(625_000.0, rel=1e-9)
    assert vs.at["share of world export revenue from CHN", "scenario_value"] == pytest.approx(1.0)


def test_what_a_policy_buys_against_the_crisis_it_answers(case, tmp_path):
    """relief against crisis: in Q, m2's 125 t/yr for 0.25 yr = 31.25 t of concentrate,
    6.25 t of Nd oxide no longer unserved (penalty value 625,000 USD avoided) for 31.25 x 30
    = 937.5 USD of mining and separation: 150 USD of resource cost per avoided tonne. R does
    not move (m1 covers it either way). Watched prices do not move: the USA rations in Q at
    the 100,000 USD/t penalty in both runs, and pays 150 USD/t in R in both."""
    from model.runs.single import run_and_report
    r, folder = run_and_report(str(case), "relief", tmp_path, explain=False)
    v = r.tables["policy_value"].set_index("period")
    assert set(v["reference"]) == {"crisis"}
    assert v.at["Q", "avoided_unserved_t"] == pytest.approx(6.25, abs=1e-9)
    assert v.at["Q", "avoided_penalty_value_pv_usd"] == pytest.approx(625_000.0, rel=1e-9)
    assert v.at["Q", "resource_cost_change_pv_usd"] == pytest.approx(937.5, rel=1e-9)
    assert v.at["Q", "resource_cost_per_avoided_t_usd"] == pytest.approx(150.0, rel=1e-9)
    assert v.at["R", "avoided_unserved_t"] == pytest.approx(0.0, abs=1e-9)
    assert v.at["R", "resource_cost_change_pv_usd"] == pytest.approx(0.0, abs=1e-6)
    assert pd.isna(v.at["R", "resource_cost_per_avoided_t_usd"])
    assert v.at["horizon", "resource_cost_per_avoided_t_usd"] == pytest.approx(150.0, rel=1e-9)
    assert r.tables["price_changes"].empty
    assert (folder / "policy_value.csv").exists() and "150 USD of resource cost per avoided t" in (
        folder / "run.log").read_text()


def test_a_batch_runs_a_requested_scenarios_parent(case, tmp_path):
    """Only relief asked for: its parent crisis runs too, so relief's deltas are against
    it (6.25 t avoided for 937.5 USD of resource cost: 150 USD per avoided tonne)."""
    out = tmp_path / "out"
    assert main(["-q", "run", str(case), "--scenarios", "relief", "--workers", "1", "--out", str(out)]) == 0
    folder = next(out.iterdir())
    t = pd.read_csv(folder / "comparison.csv").set_index("scenario")
    assert list(t.index) == ["base case", "crisis", "relief"]
    assert list(t["role"]) == ["baseline", "parent of a requested scenario", "requested"]
    assert t.at["relief", "vs_parent_avoided_unserved_t"] == pytest.approx(6.25, abs=1e-9)
    assert t.at["relief", "vs_parent_resource_cost_pv_usd"] == pytest.approx(937.5, rel=1e-12)
    assert t.at["relief", "vs_parent_resource_cost_per_avoided_t_usd"] == pytest.approx(150.0, rel=1e-12)
    assert pd.isna(t.at["crisis", "vs_parent_resource_cost_per_avoided_t_usd"])  # it avoids nothing
    log = (folder / "run.log").read_text()
    assert "also running crisis: the parent of a requested scenario" in log
    assert "crisis *" in log


# ---------------------------------------------------------------- a period split by a scenario
def monthly_sheets() -> dict:
    """`by_month` splits Q into three months M1-M3 (1/12 yr each, starting 2025, 2025+1/12,
    2025+2/12) and adds mine m3 (150 t/yr of concentrate: 30 t/yr of Nd oxide) from M3's
    start. By hand: M1 and M2 are 50 t/yr short (50/12 = 4.1667 t each), M3 20 t/yr short
    (1.6667 t), so the quarter loses 10 t (40 % of its 25 t) against 12.5 t unsplit; R is
    served. A La_ox ban in Q (no effect on cost: La is disposed of at no cost) is
    carried to the three months by the split."""
    s = sheets()
    s["export_controls"] = [{"control": "la_ban", "exporter": "CHN", "product": "La_ox", "destinations": "USA",
                             "periods": "Q", "kind": "ban"}]
    s["scenarios"].append({"scenario": "by_month", "description": "Q by month, a new mine from the third"})
    s["scenario_changes"] += [
        {"scenario": "by_month", "sheet": "periods", "filter": "period=Q", "op": "split", "value": "M1, M2, M3"},
        {"scenario": "by_month", "sheet": "facilities", "op": "append",
         "value": f"facility=m3; country=CHN; capacity_t_per_yr=150; first_year={2025 + 2 / 12!r}"},
        {"scenario": "by_month", "sheet": "facility_processes", "op": "append",
         "value": "facility=m3; process=mine; unit_cost_usd_per_t=10"}]
    return s


def test_a_split_quarter_is_solved_month_by_month(tmp_path):
    from model.runs.pipeline import load_case
    path = write_case(tmp_path / "months.xlsx", monthly_sheets(), SETTINGS)
    case = load_case(str(path), "by_month")
    per = case.tables["periods"]
    assert list(per["period"]) == ["M1", "M2", "M3", "R"]
    assert per["start_year"].tolist() == pytest.approx([2025, 2025 + 1 / 12, 2025 + 2 / 12, 2025.25], abs=1e-12)
    assert per["duration_yr"].tolist() == pytest.approx([1 / 12] * 3 + [0.75], abs=1e-12)
    dem = case.tables["demand"]  # the month rows take the quarter's place
    assert dem["period"].tolist() == ["M1", "M2", "M3", "R"] and (dem["quantity_t_per_yr"] == 100).all()
    assert case.tables["export_controls"]["periods"].tolist() == ["M1,M2,M3"]
    r = run_case(str(path), "by_month")
    from model.reports.charts import period_order
    assert period_order(r.tables) == ["M1", "M2", "M3", "R"]  # reports put the months in time order
    short = r.tables["shortfall"].set_index("period")
    assert short["unserved_t"].to_dict() == pytest.approx({"M1": 50 / 12, "M2": 50 / 12, "M3": 20 / 12}, abs=1e-9)
    assert short["unserved_share"].to_dict() == pytest.approx({"M1": 0.5, "M2": 0.5, "M3": 0.2}, abs=1e-12)
    h = r.tables["shortfall_horizon"].iloc[0]
    assert (h["worst_period"], h["unserved_t"]) == ("M1", pytest.approx(10.0, abs=1e-9))
    # cost by hand: 10 t unserved at 1e5 USD/t, and 90 t of Nd oxide served (15 t in the months,
    # 75 in R), each from 5 t of concentrate at 10 USD/t mining + 20 separation: 150 USD/t
    costs = r.tables["costs"].groupby("category")["pv_usd"].sum()
    assert costs["penalty"] == pytest.approx(1e6, rel=1e-12)
    assert costs["resource"] == pytest.approx(90 * 150, rel=1e-12)


@pytest.mark.parametrize("change, column, expected", [
    ({"sheet": "facilities", "filter": "facility=m1"}, "op", "set, scale, add, drop or append"),
    ({"sheet": "periods", "filter": "period=X"}, "filter", "period=<code of one period of the periods sheet>"),
    ({"sheet": "periods", "filter": "period=Q", "value": "M1"}, "value", "two or more new period codes"),
    ({"sheet": "periods", "filter": "period=Q", "value": "M1, R"}, "value", "two or more new period codes"),
])
def test_a_bad_split_names_the_cell_and_what_was_expected(tmp_path, change, column, expected):
    from model.case.schema import InputError
    from model.runs.pipeline import load_case
    s = sheets()
    s["scenarios"].append({"scenario": "bad", "description": "a bad split"})
    s["scenario_changes"].append({"scenario": "bad", "op": "split", "value": "M1, M2", **change})
    path = write_case(tmp_path / "bad.xlsx", s, SETTINGS)
    with pytest.raises(InputError) as err:
        load_case(str(path), "bad")
    (p,) = err.value.problems
    assert (p.sheet, p.row, p.column) == ("scenario_changes", 4, column)
    assert p.expected.startswith(expected)
