"""Explanations: shortfalls ranked by what relaxing each binding limit by 10 % does
(re-solved), and infeasible cases traced to the sheet rows that conflict."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import solve
from model.case.casewriter import write_case
from model.cli import main
from model.runs.explain import candidates, conflict_lines, diagnose_infeasible, explain_shortfalls
from model.runs.pipeline import load_case
from rows import dem, fac, fp, proc, product, rec


def ox_case(**extra) -> dict:
    """A needs 100 t/yr of oxide (penalty 1000 USD/t); plants fa (60 t/yr, row 2) and fb
    (20 t/yr, row 3) make it at 10 USD/t."""
    case = {
        "periods": [{"period": "2025", "start_year": 2025, "duration_yr": 1}],
        "countries": [{"country": "A"}],
        "products": [product("ox", "oxide", "NdPr", reference_price_usd_per_t=50)],
        "processes": [proc("sep", "separation")],
        "recipes": [rec("sep", "ox", 1)],
        "facilities": [fac("fa", "A", 60), fac("fb", "A", 20)],
        "facility_processes": [fp("fa", "sep", 10), fp("fb", "sep", 10)],
        "demand": [dem("A", "ox", 100, penalty=1000)],
    }
    case.update(extra)
    return case


def test_capacities_ranked_by_how_much_shortfall_falls(tmp_path):
    """Short 20 t. Each capacity is worth 990 USD/t; relaxing fa by 10 % adds 6 t, fb 2 t:
    fa ranks first (6 t, 30 %), then fb (2 t, 10 %)."""
    r = solve(tmp_path, ox_case())
    assert r.tables["shortfall"]["unserved_t"].sum() == pytest.approx(20.0)
    cands = candidates(r.tables, r.case)
    assert [c.key for c in cands] == ["fa", "fb"]
    assert cands[0].value_usd == pytest.approx(990.0 * 6.0)
    ex = explain_shortfalls(r)
    assert list(ex["rank"]) == [1, 2]
    assert list(ex["key"]) == ["fa", "fb"]
    assert list(ex["sheet_row"]) == ["row 2", "row 3"]
    assert ex["shortfall_reduction_t"].to_numpy() == pytest.approx([6.0, 2.0])
    assert ex["shortfall_reduction_share"].to_numpy() == pytest.approx([0.3, 0.1])
    assert ex["objective_change_usd"].to_numpy() == pytest.approx([-990.0 * 6, -990.0 * 2])
    text = ex["text"].iloc[0]
    assert text.startswith("A is short of 20 t of ox for all over the horizon (20.0% of its demand).")
    assert "capacity of facility fa (A, 60 t/yr) [facilities row 2: capacity_t_per_yr 60 -> 66] cuts it by 6 t (30.0%)" in text


def test_a_binding_quota_is_the_reason_not_the_slack_plants(tmp_path):
    """A quota of 75 t/yr on A's separation binds (capacity 80 is slack): only the quota
    has a shadow value; +10 % lets 82.5 through, capped by capacity at 80: 5 t less short."""
    r = solve(tmp_path, ox_case(supply_caps=[{"cap": "sep_quota", "country": "A", "stage": "separation",
                                              "cap_t_per_yr": 75}]))
    ex = explain_shortfalls(r)
    assert len(ex) == 1
    row = ex.iloc[0]
    assert (row["kind"], row["sheet"], row["sheet_row"], row["column"]) == \
        ("production quota", "supply_caps", "row 2", "cap_t_per_yr")
    assert row["shortfall_reduction_t"] == pytest.approx(5.0)
    assert row["unserved_t"] == pytest.approx(25.0)


def test_a_committed_stock_build_that_takes_supply_is_a_reason(tmp_path):
    """fa and fb make 80 t/yr; a committed build of 40 t/yr into A's store leaves 40 for
    demand: 60 t short. A rations, so ox is priced at the 1,000 penalty and each committed
    tonne costs that; relaxing the build by 10 % (40 -> 36 t/yr) serves 4 t more."""
    stock = [{"stockpile": "vault", "holder": "A", "product": "ox", "build_min_t_per_yr": 40,
              "build_min_periods": "*", "terminal_rule": "free"}]
    r = solve(tmp_path, ox_case(stockpiles=stock))
    assert r.tables["shortfall"]["unserved_t"].sum() == pytest.approx(60.0)
    assert r.tables["stockpiles"]["build_cost_usd_per_t"].iloc[0] == pytest.approx(1000.0)
    ex = explain_shortfalls(r)
    build = ex[ex["kind"] == "committed stock build"]
    assert len(build) == 1 and build["key"].iloc[0] == "vault"
    assert build["shortfall_reduction_t"].iloc[0] == pytest.approx(4.0)
    assert build["column"].iloc[0] == "build_min_t_per_yr"


def test_no_shortfall_no_explanation(tmp_path):
    r = solve(tmp_path, ox_case(demand=[dem("A", "ox", 50, penalty=1000)]))
    assert explain_shortfalls(r).empty


def stock_case() -> dict:
    """A reserve 'res' (stockpiles row 3) must hold 100 t at the end of 2025 but may buy
    only 20 t/yr; 'other' (row 2) is harmless."""
    return ox_case(stockpiles=[
        {"stockpile": "other", "holder": "A", "product": "ox", "terminal_rule": "free"},
        {"stockpile": "res", "holder": "A", "product": "ox", "target_t": 100, "buy_max_t_per_yr": 20,
         "terminal_rule": "free"}])


@pytest.mark.parametrize("use_iis", [True, False])
def test_stockpile_target_above_what_can_be_bought_names_its_row(tmp_path, use_iis):
    path = write_case(tmp_path / "c.xlsx", stock_case(), {"base_year": 2025})
    conflict = diagnose_infeasible(load_case(str(path)), use_iis=use_iis)
    assert set(conflict["method"]) == {"IIS" if use_iis else "elastic"}
    named = set(zip(conflict["sheet"], conflict["sheet_row"], conflict["column"]))
    if use_iis:  # the whole irreducible set: level balance, target, buy limit, all of row 3
        assert named == {("stockpiles", "row 3", "initial_t"), ("stockpiles", "row 3", "target_t"),
                         ("stockpiles", "row 3", "buy_max_t_per_yr")}
    else:  # least violation: the target gives way by 80 t
        assert named == {("stockpiles", "row 3", "target_t")}
        assert conflict["violation"].iloc[0] == pytest.approx(80.0)
    assert set(conflict["key"]) == {"res"}


def must_run_case() -> dict:
    """A guaranteed buyer makes separator sep_a (capacity 100) run at least 50 t/yr
    (price_floors row 2), but the only feed is mine_a's 10 t/yr (facilities row 2): no
    plan exists. (An offtake beyond the feed is no longer infeasible: the price-floor
    module leaves it unmet at a penalty.)"""
    return {
        "periods": [{"period": "2025", "start_year": 2025, "duration_yr": 1}],
        "countries": [{"country": "A"}],
        "products": [product("conc", "concentrate", "mix"),
                     product("ox", "oxide", "NdPr", reference_price_usd_per_t=50)],
        "processes": [proc("mine", "mining"), proc("sep", "separation")],
        "recipes": [rec("mine", "conc", 1), rec("sep", "conc", -1), rec("sep", "ox", 1)],
        "facilities": [fac("mine_a", "A", 10), fac("sep_a", "A", 100)],
        "facility_processes": [fp("mine_a", "mine", 10), fp("sep_a", "sep", 10)],
        "demand": [dem("A", "ox", 5)],
        "price_floors": [{"floor": "vault", "product": "ox", "facilities": "sep_a", "floor_price_usd_per_t": 110,
                          "mechanism": "must_run", "quantity_t_per_yr": 50}],
    }


def test_must_run_beyond_the_feed_names_the_floor_and_the_mine(tmp_path):
    path = write_case(tmp_path / "c.xlsx", must_run_case(), {"base_year": 2025})
    conflict = diagnose_infeasible(load_case(str(path)))
    assert set(conflict["method"]) == {"IIS"}
    rows = set(zip(conflict["family"], conflict["sheet"], conflict["sheet_row"]))
    assert ("floor_must_run", "price_floors", "row 2") in rows
    assert ("capacity_limit", "facilities", "row 2") in rows  # the mine, not the separator
    assert ("capacity_limit", "facilities", "row 3") not in rows
    lines = conflict_lines(conflict)
    assert lines[0].startswith("conflicting constraints (an irreducible infeasible subset")
    assert any("price_floors row 2, column quantity_t_per_yr: must-run quantity of price floor vault in 2025" in x
               for x in lines)
    assert any("facilities row 2, column capacity_t_per_yr: capacity of facility mine_a in 2025" in x for x in lines)


def test_cli_reports_the_conflict_and_writes_nothing(tmp_path, capsys):
    path = write_case(tmp_path / "c.xlsx", stock_case(), {"base_year": 2025})
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert "no report was written" in err
    assert "stockpiles row 3, column target_t: target of stockpile res in 2025" in err
    assert not out.exists() or not list(out.iterdir())


def test_cli_writes_explanations_for_a_shortfall(tmp_path, capsys):
    path = write_case(tmp_path / "c.xlsx", ox_case(), {"base_year": 2025})
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "why short (limits relaxed by 10 %, re-solved):" in printed
    assert ("A ox (all): capacity of facility fa (A, 60 t/yr) [facilities row 2: capacity_t_per_yr 60 -> 66] "
            "cuts 6 of 20 t") in printed
    folder = next(out.iterdir())
    ex = pd.read_csv(folder / "explanations.csv")
    assert list(ex["key"]) == ["fa", "fb"]


def _same_data(a, b) -> None:
    """Two ModelData field by field (frames with their dtypes, index and column order)."""
    from dataclasses import fields
    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, pd.DataFrame):
            pd.testing.assert_frame_equal(x, y, obj=f.name)
        elif f.name == "tables":
            assert x.keys() == y.keys()
            for k in x:
                pd.testing.assert_frame_equal(x[k], y[k], obj=k)
        else:
            assert x == y, f.name


def test_a_relaxed_capacity_reuses_the_base_model_data():
    """A trial that changes only capacities (the explanations' usual relaxation) gets the
    model data a build would give, made from the base case's (model.lp.data.with_capacities),
    and none when a capacity reaches 0 (the facility's periods change: built)."""
    from model.lp.data import build_model_data, with_capacities
    from test_cli import EXAMPLE
    case = load_case(str(EXAMPLE), "cn_extraterritorial")  # origin classes and modal products
    base = build_model_data(case)
    for facility in case.tables["facilities"]["facility"]:
        trial = case.copy()
        t = trial.tables["facilities"]
        t["capacity_t_per_yr"] = t["capacity_t_per_yr"].astype(float)
        t.loc[t["facility"] == facility, "capacity_t_per_yr"] *= 1.1
        _same_data(with_capacities(base, trial), build_model_data(trial))
    trial = case.copy()
    trial.tables["facilities"].loc[0, "capacity_t_per_yr"] = 0.0
    assert with_capacities(base, trial) is None
