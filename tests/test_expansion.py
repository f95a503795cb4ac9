"""Capacity expansion, solved by hand: a build with lead time comes online in the right
period and not before, pays its capex as an annuity (CRF computed on paper) in every
period it serves, and max_build and the lifetime bite. Each solution is checked against
expansion_capacity_limit and max_build from the result tables; bad options are
rejected with the row named."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import TOL, assert_feasible, value
from model.case.casewriter import write_case
from model.case.derived import build_schedule
from model.case.schema import InputError
from model.lp.modules.expansion import capital_recovery_factor
from model.runs.pipeline import load_case, run_case

APPROX = dict(rel=1e-7, abs=1e-6)

# CRF(5 %, 10 yr) = 0.05 / (1 - 1.05^-10) = 0.05 / (1 - 0.6139132535) = 0.1295045750
CRF_5_10 = 0.12950457496545661


def periods(n: int) -> list[dict]:
    return [{"period": str(2025 + i), "start_year": 2025 + i, "duration_yr": 1} for i in range(n)]


def base_case(n_periods: int, demand: dict[str, float], option: dict) -> dict:
    """A imports from B (made at 100, freight 20: landed 120) or builds its own plant."""
    return {
        "periods": periods(n_periods),
        "countries": [{"country": "A"}, {"country": "B"}],
        "products": [{"product": "ox", "stage": "oxide", "element": "Nd", "unit": "t_REO"}],
        "processes": [{"process": "make", "stage": "separation"}],
        "recipes": [{"process": "make", "product": "ox", "coefficient": 1}],
        "facilities": [{"facility": "fb", "country": "B", "capacity_t_per_yr": 1000}],
        "facility_processes": [{"facility": "fb", "process": "make", "unit_cost_usd_per_t": 100}],
        "demand": [{"country": "A", "product": "ox", "period": t, "quantity_t_per_yr": q,
                    "shortfall_penalty_usd_per_t": 1e5} for t, q in demand.items()],
        "transport": [{"from_country": "B", "to_country": "A", "product": "*", "cost_usd_per_t": 20}],
        "expansion": [{"option": "new_A", "country": "A", "process": "make", **option}],
    }


def solve(tmp_path, sheets, rate: float):
    path = write_case(tmp_path / "case.xlsx", sheets, {"base_year": 2025, "discount_rate": rate},
                      overwrite=True)
    result = run_case(str(path))
    assert result.optimal, result.solve.message
    check_feasible(result)
    return result


def check_feasible(result) -> None:
    """The shared families (conftest.assert_feasible counts new activity in the balance
    and checks expansion_capacity_limit) plus max_build."""
    assert_feasible(result)
    t = result.tables
    opts = result.case.tables["expansion"].set_index("option")["max_build_t_per_yr"]
    built = t["builds"].groupby("option")["build_t_per_yr"].sum()
    assert (built <= opts.reindex(built.index) + TOL).all(), "max_build broken"
    assert (t["builds"]["build_t_per_yr"] >= -TOL).all()


def test_crf_by_hand():
    assert capital_recovery_factor(0.05, 10) == pytest.approx(CRF_5_10, rel=1e-12)
    assert capital_recovery_factor(0.0, 8) == pytest.approx(0.125)
    assert capital_recovery_factor(0.1, 1) == pytest.approx(1.1)


def test_build_with_lead_time_comes_online_two_periods_later(tmp_path):
    """Periods 2025, 2026, 2027 (one year each), r = 5 %, weights 1, 1/1.05, 1/1.05^2.
    A needs 100 t/yr of oxide each year; imports land at 100 + 20 = 120.
    Option new_A: capex 500 per t/yr, lifetime 10, r = 5 %: annuity 500 x CRF =
    500 x 0.1295045750 = 64.7522875 per t/yr per year; fixed O&M 5; running 10; lead time
    1.5 yr. Built in 2025 it is online at the first start >= 2026.5, i.e. 2027; built in
    2026 it would be online >= 2027.5: no period, so that build is no variable at all.
    In 2027 own capacity costs 64.7522875 + 5 + 10 = 79.7522875 < 120: build 100 t/yr in
    2025, online 2027 only (not 2025 or 2026, which import 100 t each).
    Objective = 100 x 120 x (1 + 1/1.05) + 100 x 79.7522875 / 1.05^2
              = 23428.5714286 + 7233.7675737 = 30662.3390023.
    Prices in A: 120, 120, and in 2027 the cost of one more t/yr built: 79.7522875.
    Capacity value of the new plant in 2027 = 79.7522875 - 10 = 69.7522875 (= annuity +
    fixed O&M: the build is at its margin). Capex cost line 2027 = 6475.22875 undiscounted."""
    annuity = 500 * CRF_5_10
    option = {"max_build_t_per_yr": 1000, "capex_usd_per_t_per_yr": 500, "lifetime_yr": 10,
              "fixed_om_usd_per_t_per_yr": 5, "unit_cost_usd_per_t": 10, "lead_time_yr": 1.5}
    r = solve(tmp_path, base_case(3, {"2025": 100, "2026": 100, "2027": 100}, option), 0.05)
    t = r.tables
    assert annuity == pytest.approx(64.7522875, rel=1e-9)
    expected = 100 * 120 * (1 + 1 / 1.05) + 100 * (annuity + 15) / 1.05 ** 2
    assert expected == pytest.approx(30662.3390023, rel=1e-10)
    assert r.solve.objective == pytest.approx(expected, **APPROX)

    b = t["builds"]
    assert len(b) == 1
    row = b.iloc[0]
    assert (row["build_period"], row["online_period"], row["online_year"]) == ("2025", "2027", 2027)
    assert row["in_service_periods"] == "2027"
    assert row["build_t_per_yr"] == pytest.approx(100, **APPROX)
    assert row["annuity_usd_per_t_per_yr"] == pytest.approx(annuity, rel=1e-10)
    assert row["annuity_usd_per_yr"] == pytest.approx(100 * annuity, **APPROX)
    assert row["capex_usd"] == pytest.approx(50000, **APPROX)
    assert row["annuities_in_horizon_usd"] == pytest.approx(100 * annuity, **APPROX)
    assert row["capacity_value_usd_per_t_per_yr"] == pytest.approx(annuity + 5, **APPROX)
    assert row["max_build_value_pv_usd_per_t_per_yr"] == pytest.approx(0, **APPROX)

    cap = t["expansion_capacity"].set_index("period")
    assert list(cap.index) == ["2027"]  # no new activity before it can be online
    assert cap.loc["2027", "activity_t_per_yr"] == pytest.approx(100, **APPROX)
    assert cap.loc["2027", "capacity_value_usd_per_t_per_yr"] == pytest.approx(annuity + 5, **APPROX)
    flows = t["flows"]
    for per, q in (("2025", 100), ("2026", 100), ("2027", 0)):
        assert value(flows, "flow_t_per_yr", period=per) == pytest.approx(q, **APPROX)
    prices = t["prices"][t["prices"]["country"] == "A"].set_index("period")["price_usd_per_t"]
    assert prices["2025"] == pytest.approx(120, **APPROX)
    assert prices["2026"] == pytest.approx(120, **APPROX)
    assert prices["2027"] == pytest.approx(annuity + 15, **APPROX)
    costs = t["costs"]
    assert value(costs, "cost_usd", component="capex") == pytest.approx(100 * annuity, **APPROX)
    assert value(costs, "cost_usd", component="capex", period="2025") == 0
    assert value(costs, "cost_usd", component="fixed_om") == pytest.approx(500, **APPROX)
    assert value(costs, "pv_usd", component="capex") == pytest.approx(100 * annuity / 1.05 ** 2, **APPROX)
    assert t["shortfall"].empty


def test_max_build_and_lifetime_bind(tmp_path):
    """Periods 2025, 2026; r = 10 % (weights 1, 1/1.1). Demand 100 t/yr each year;
    imports land at 120. Option: capex 50, lifetime 1 yr, no lead time, running 10, at
    most 60 t/yr in all: annuity = 50 x CRF(10 %, 1) = 50 x 1.1 = 55, own cost 65 < 120.
    A build serves only the period it is built in (lifetime 1). A t/yr built in 2025
    saves 55 at weight 1, in 2026 55/1.1: all 60 are built in 2025; 2026 imports 100.
    Objective = 60 x 65 + 40 x 120 + 100 x 120 / 1.1 = 8700 + 10909.0909091 = 19609.0909091.
    max_build's value = 120 - 65 = 55 per t/yr (PV); capacity value in 2025 = price 120 -
    running 10 = 110 = annuity 55 + that 55. Price in A 120 in both periods."""
    option = {"max_build_t_per_yr": 60, "capex_usd_per_t_per_yr": 50, "lifetime_yr": 1,
              "unit_cost_usd_per_t": 10}
    r = solve(tmp_path, base_case(2, {"2025": 100, "2026": 100}, option), 0.10)
    t = r.tables
    assert r.solve.objective == pytest.approx(8700 + 12000 / 1.1, **APPROX)
    b = t["builds"].set_index("build_period")
    assert list(b.index) == ["2025"]
    assert b.loc["2025", "build_t_per_yr"] == pytest.approx(60, **APPROX)
    assert b.loc["2025", "in_service_periods"] == "2025"
    assert b.loc["2025", "annuity_usd_per_t_per_yr"] == pytest.approx(55, **APPROX)
    assert b.loc["2025", "max_build_value_pv_usd_per_t_per_yr"] == pytest.approx(55, **APPROX)
    assert b.loc["2025", "capacity_value_usd_per_t_per_yr"] == pytest.approx(110, **APPROX)
    cap = t["expansion_capacity"].set_index("period")
    assert cap.loc["2026", "capacity_online_t_per_yr"] == pytest.approx(0, **APPROX)  # life over
    assert cap.loc["2026", "activity_t_per_yr"] == pytest.approx(0, **APPROX)
    assert value(t["flows"], "flow_t_per_yr", period="2025") == pytest.approx(40, **APPROX)
    assert value(t["flows"], "flow_t_per_yr", period="2026") == pytest.approx(100, **APPROX)
    assert value(t["prices"], "price_usd_per_t", country="A", period="2025") == pytest.approx(120, **APPROX)
    assert value(t["costs"], "cost_usd", component="capex") == pytest.approx(60 * 55, **APPROX)


def test_schedule_uses_period_starts_and_lifetime():
    """Quarters 2025.0 .. 2025.75 and a year 2026: lead 0.5 yr from 2025.25 lands at
    2025.75. Lifetime 0.25 yr serves 2025.75 only (2026 starts when life ends); lifetime
    0.5 yr also serves 2026 (it starts before 2026.25, and counts whole)."""
    per = pd.DataFrame({"period": ["q1", "q2", "q3", "q4", "y26"],
                        "start_year": [2025.0, 2025.25, 2025.5, 2025.75, 2026.0]})
    for life, served in ((0.25, ["q4"]), (0.5, ["q4", "y26"])):
        opts = pd.DataFrame([{"option": "o", "lead_time_yr": 0.5, "lifetime_yr": life, "earliest_year": 2025.2}])
        s = build_schedule(opts, per)
        got = s[s["build_period"] == "q2"]
        assert list(got["online_period"].unique()) == ["q4"]
        assert list(got["period"]) == served
        assert "q1" not in set(s["build_period"])  # before earliest_year
        # q3 + 0.5 = 2026.0 reaches y26; q4 and y26 + 0.5 reach no period: no build variable.
        assert set(s["build_period"]) == {"q2", "q3"}


# --- validation --------------------------------------------------------------------

def problems(tmp_path, sheets) -> list:
    path = write_case(tmp_path / "bad.xlsx", sheets, {"base_year": 2025}, overwrite=True)
    with pytest.raises(InputError) as exc:
        load_case(str(path))
    return exc.value.problems


def good_option(**kw) -> dict:
    return {"max_build_t_per_yr": 100, "capex_usd_per_t_per_yr": 500, "lifetime_yr": 10, **kw}


def test_lead_time_beyond_horizon_names_the_row(tmp_path):
    sheets = base_case(3, {"2025": 100}, good_option(lead_time_yr=2.5))
    (p,) = problems(tmp_path, sheets)
    assert (p.sheet, p.row, p.column) == ("expansion", 2, "lead_time_yr")
    assert "never come online inside the horizon" in p.message
    assert "new_A" in p.message


def test_earliest_year_after_last_period(tmp_path):
    sheets = base_case(3, {"2025": 100}, good_option(earliest_year=2030))
    (p,) = problems(tmp_path, sheets)
    assert (p.sheet, p.row, p.column) == ("expansion", 2, "earliest_year")
    assert "after the last period starts" in p.message


def test_unknown_process_and_country(tmp_path):
    sheets = base_case(1, {"2025": 100}, good_option())
    sheets["expansion"][0].update(process="mkae", country="Z")
    found = {(p.column, p.value) for p in problems(tmp_path, sheets) if p.sheet == "expansion"}
    assert ("process", "mkae") in found and ("country", "Z") in found


def test_option_code_must_differ_from_facility_codes(tmp_path):
    sheets = base_case(1, {"2025": 100}, good_option())
    sheets["expansion"][0]["option"] = "fb"
    (p,) = problems(tmp_path, sheets)
    assert (p.sheet, p.row, p.column) == ("expansion", 2, "option")
    assert "facility" in p.message


def test_zero_lifetime_is_rejected(tmp_path):
    sheets = base_case(1, {"2025": 100}, good_option(lifetime_yr=0))
    (p,) = problems(tmp_path, sheets)
    assert (p.sheet, p.column) == ("expansion", "lifetime_yr")
