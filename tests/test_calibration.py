"""Calibration by positive mathematical programming in LP form, solved by hand.

Demand 125 t/yr at one node. A (cost 10) and B (cost 30) were observed producing 60
each; C (cost 25, unobserved) is free. Uncalibrated, A runs to its 100 t capacity and
C makes the rest: B idles, unlike what was observed.

Stage 1 holds A and B within 1 % of 60: A at 60.6 (it wants more), B at 59.4 (it wants
less), C makes 5 and sets the price at 25. A's upper row is worth 25 - 10 = 15 a tonne,
B's lower row costs 30 - 25 = 5 a tonne. With a margin of 1: A's terms are -1 below
and +16 above its observed output, B's -6 and +1. Calibrated, A below 60 costs 9 and
above 26, B 24 and 31: the free solve runs A 60, B 60, C 5 and costs
60 x 9 + 60 x 24 + 5 x 25 = 2105, of which resource cost 600 + 1800 + 125 = 2525 and
calibration terms -60 - 360 = -420.
"""

from __future__ import annotations

import openpyxl
import pytest

from conftest import assert_feasible, value
from model.analysis.calibration import calibration_table
from model.case.casewriter import write_case
from model.cli import main
from model.runs.pipeline import load_case, run_case
from rows import dem, fac, fp, proc, product, rec

APPROX = dict(rel=1e-7, abs=1e-6)


def case() -> dict:
    return {
        "periods": [{"period": "2025", "start_year": 2025, "duration_yr": 1}],
        "countries": [{"country": "X"}],
        "products": [product("conc", "concentrate", "mix")],
        "processes": [proc("mine", "mining")],
        "recipes": [rec("mine", "conc", 1)],
        "facilities": [fac("A", "X", 100, observed_output_t_per_yr=60),
                       fac("B", "X", 100, observed_output_t_per_yr=60), fac("C", "X", 100)],
        "facility_processes": [fp("A", "mine", 10), fp("B", "mine", 30), fp("C", "mine", 25)],
        "demand": [dem("X", "conc", 125, penalty=1000)],
    }


@pytest.fixture
def workbook(tmp_path):
    return write_case(tmp_path / "c.xlsx", case(), {"base_year": 2025})


def test_uncalibrated_model_does_not_reproduce_observed_output(workbook):
    r = run_case(str(workbook))
    assert value(r.tables["production"], "activity_t_per_yr", facility="A") == pytest.approx(100.0)
    assert value(r.tables["production"], "activity_t_per_yr", facility="B") == pytest.approx(0.0)


def test_terms_are_the_stage_one_duals_plus_margin(workbook):
    t = calibration_table(load_case(str(workbook))).set_index("facility")
    assert list(t.index) == ["A", "B"]
    assert t.loc["A", "below_observed_usd_per_t"] == pytest.approx(-1.0, **APPROX)
    assert t.loc["A", "above_observed_usd_per_t"] == pytest.approx(16.0, **APPROX)
    assert t.loc["B", "below_observed_usd_per_t"] == pytest.approx(-6.0, **APPROX)
    assert t.loc["B", "above_observed_usd_per_t"] == pytest.approx(1.0, **APPROX)
    assert t.loc["A", "source"].startswith("derived: calibration dual of run ")


def test_calibrated_free_solve_reproduces_observed_output(workbook, tmp_path, capsys):
    out = tmp_path / "calibrated.xlsx"
    assert main(["calibrate", str(workbook), str(out)]) == 0
    assert "calibrated 2 facilities" in capsys.readouterr().out
    assert "calibration" in openpyxl.load_workbook(out).sheetnames
    r = run_case(str(out))
    assert_feasible(r)
    prod = r.tables["production"]
    assert value(prod, "activity_t_per_yr", facility="A") == pytest.approx(60.0, **APPROX)
    assert value(prod, "activity_t_per_yr", facility="B") == pytest.approx(60.0, **APPROX)
    assert value(prod, "activity_t_per_yr", facility="C") == pytest.approx(5.0, **APPROX)
    assert r.solve.objective == pytest.approx(2105.0, **APPROX)
    costs = r.tables["costs"]
    assert value(costs, "cost_usd", category="resource") == pytest.approx(2525.0, **APPROX)
    assert value(costs, "cost_usd", category="calibration") == pytest.approx(-420.0, **APPROX)
    summary = r.tables["summary"].set_index(["section", "item"])["value"]
    assert float(summary[("calibration terms", "total (undiscounted)")]) == pytest.approx(-420.0, **APPROX)


def test_calibration_never_overwrites(workbook, capsys):
    assert main(["calibrate", str(workbook), str(workbook)]) == 2
    assert "never overwrites" in capsys.readouterr().err


def unwanted_output_case() -> dict:
    """D (mining at 20, 200 t/yr) observed at 100 t; demand 60 t/yr in 2025 only; disposal 10."""
    return {
        "periods": [{"period": "2025", "start_year": 2025, "duration_yr": 1},
                    {"period": "2026", "start_year": 2026, "duration_yr": 1}],
        "countries": [{"country": "X"}],
        "products": [product("conc", "concentrate", "mix", disposal_cost_usd_per_t=10)],
        "processes": [proc("mine", "mining")],
        "recipes": [rec("mine", "conc", 1)],
        "facilities": [fac("D", "X", 200, observed_output_t_per_yr=100)],
        "facility_processes": [fp("D", "mine", 20)],
        "demand": [dem("X", "conc", 60, penalty=1000)],
    }


def test_a_plant_is_never_paid_to_make_what_nobody_buys(tmp_path):
    """D observed at 100 t but demand is 60 t in 2025 and none in 2026 (disposal 10 USD/t).
    Stage 1 disposes of 40 t, so the node price is -10 and D's lower row is worth
    20 + 10 = 30 a tonne: -30 - 1 would make running (20 - 31 = -11 a tonne) pay even
    to dump. The term stops at -20 + 1 = -19: D runs 60 t in 2025 (20 - 19 = 1 a tonne,
    cheaper than the 1,000 penalty) and nothing in 2026."""
    case = unwanted_output_case()
    path = write_case(tmp_path / "d.xlsx", case, {"base_year": 2025})
    t = calibration_table(load_case(str(path))).set_index("facility")
    assert t.loc["D", "below_observed_usd_per_t"] == pytest.approx(-19.0, **APPROX)
    assert "capped at the running cost" in t.loc["D", "source"]
    out = tmp_path / "d_cal.xlsx"
    assert main(["calibrate", str(path), str(out)]) == 0
    r = run_case(str(out))
    prod = r.tables["production"]
    assert value(prod, "activity_t_per_yr", period="2025") == pytest.approx(60.0, **APPROX)
    assert value(prod, "activity_t_per_yr", period="2026") == pytest.approx(0.0, abs=1e-9)
    assert r.tables["disposal"].empty


def growth_case(calibrated_as: str = "") -> dict:
    """The case above in 2025 plus 2026, when demand is 185 t and a new tranche A2 of A's
    industry (cost 10, 100 t) opens, with the 2025 calibration terms."""
    c = case()
    c["periods"].append({"period": "2026", "start_year": 2026, "duration_yr": 1})
    c["demand"].append(dem("X", "conc", 185, "2026", penalty=1000))
    c["facilities"].append(fac("A2", "X", 100, first_year=2026, calibrated_as=calibrated_as))
    c["facility_processes"].append(fp("A2", "mine", 10))
    c["calibration"] = [
        {"facility": "A", "observed_output_t_per_yr": 60, "below_observed_usd_per_t": -1,
         "above_observed_usd_per_t": 16, "source": "the stage-1 terms of the test above"},
        {"facility": "B", "observed_output_t_per_yr": 60, "below_observed_usd_per_t": -6,
         "above_observed_usd_per_t": 1, "source": "the stage-1 terms of the test above"}]
    return c


def test_a_tranche_calibrated_as_its_industry_shares_the_cost_curve(tmp_path):
    """Without `calibrated_as`, A2 (10, no terms) undercuts the calibrated curve in 2026:
    A 60 at 9, A2 100 at 10, B 25 at 24 = 2,140 and the price is 24. With A2 calibrated
    as A, A and A2 together make 60 at 9 (10 - 1) and anything beyond pays the 17 step
    (26): B 60 at 24 and C 65 at 25 come first: 540 + 1,440 + 1,625 = 3,605, price 25.
    2025 is the calibrated test above (2,105); no discounting."""
    free = run_case(str(write_case(tmp_path / "a.xlsx", growth_case(), {"base_year": 2025})))
    assert_feasible(free)
    p26 = free.tables["production"].query("period == '2026'").groupby("facility")["activity_t_per_yr"].sum()
    assert p26["A2"] == pytest.approx(100.0, **APPROX) and p26["B"] == pytest.approx(25.0, **APPROX)
    assert free.solve.objective == pytest.approx(2105.0 + 2140.0, **APPROX)

    r = run_case(str(write_case(tmp_path / "b.xlsx", growth_case("A"), {"base_year": 2025})))
    assert_feasible(r)
    p26 = r.tables["production"].query("period == '2026'").groupby("facility")["activity_t_per_yr"].sum()
    assert p26["A"] + p26["A2"] == pytest.approx(60.0, **APPROX)
    assert p26["B"] == pytest.approx(60.0, **APPROX) and p26["C"] == pytest.approx(65.0, **APPROX)
    assert r.solve.objective == pytest.approx(2105.0 + 3605.0, **APPROX)
    ex = r.tables["calibration_excess"].set_index(["facility", "period"])["above_observed_t_per_yr"]
    assert ex["A", "2026"] == pytest.approx(0.0, abs=1e-9)
    price = r.tables["prices"].set_index("period")["price_usd_per_t"]
    assert price["2026"] == pytest.approx(25.0, **APPROX)
    # The terms are derived from 2025, when A2 does not run: the same as without it.
    t = calibration_table(load_case(str(tmp_path / "b.xlsx"))).set_index("facility")
    assert t.loc["A", "above_observed_usd_per_t"] == pytest.approx(16.0, **APPROX)


def test_calibrated_as_must_name_an_observed_facility(tmp_path):
    from model.case.schema import InputError
    c = growth_case("C")
    c["facilities"][0]["calibrated_as"] = "A"  # A has its own observed output
    with pytest.raises(InputError) as exc:
        load_case(str(write_case(tmp_path / "bad.xlsx", c, {"base_year": 2025})))
    found = {(p.row, p.column, p.value, p.message) for p in exc.value.problems}
    assert (2, "calibrated_as", "A", "a facility cannot share its own terms") in found
    assert (5, "calibrated_as", "C", "the facility named has no observed output") in found


def test_a_cheaper_tranche_calibrated_as_a_capped_plant_is_not_paid_to_run(tmp_path):
    """D (cost 20) was observed at 100 t but only 60 t/yr is wanted (disposal 10): its term
    is capped. D2 (cost 5, from 2026) is calibrated as D: the cap is at the group's cheapest
    cost, -5 + 1 = -4, so no member runs at a negative cost: 2025 D makes 60 (20 - 4 = 16),
    2026 D2 makes 60 (5 - 4 = 1) and nothing is made to be disposed of."""
    case = unwanted_output_case()
    case["facilities"].append(fac("D2", "X", 200, first_year=2026, calibrated_as="D"))
    case["facility_processes"].append(fp("D2", "mine", 5))
    case["demand"].append(dem("X", "conc", 60, "2026", penalty=1000))
    path = write_case(tmp_path / "g.xlsx", case, {"base_year": 2025})
    t = calibration_table(load_case(str(path))).set_index("facility")
    assert t.loc["D", "below_observed_usd_per_t"] == pytest.approx(-4.0, **APPROX)
    out = tmp_path / "g_cal.xlsx"
    assert main(["calibrate", str(path), str(out)]) == 0
    r = run_case(str(out))
    assert_feasible(r)
    prod = r.tables["production"].groupby(["facility", "period"])["activity_t_per_yr"].sum()
    assert prod["D", "2025"] == pytest.approx(60.0, **APPROX)
    assert prod["D2", "2026"] == pytest.approx(60.0, **APPROX)
    assert r.tables["disposal"].empty or r.tables["disposal"]["disposal_t_per_yr"].abs().max() < 1e-9
