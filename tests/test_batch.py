"""Batch runs on a case solved by hand: inheritance and every scenario operation, a
failing scenario, an interrupted batch, scenarios from a second workbook, re-solving in
place against rebuilding, and a Dask cluster against the process pool.

The case: one period (weight 1), oxide demand of 120 t in A (penalty 1000 USD/t);
plant fa in A (100 t/yr at 10 USD/t) and fb in B (100 t/yr at 30 USD/t), freight
5 USD/t on every lane. Base optimum: fa 100 t (1000) + fb 20 t (20 x 35 = 700) = 1700.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import one_period
from rows import dem, fac, fp, proc, product, rec
from model.case.casewriter import write_case
from model.case.schema import InputError
from model.runs.batch import BASELINE, BatchJob, comparison_row, load_inputs, run_batch, scenario_case

REL = 1e-7


def change(scenario, sheet, filter_, column, op, value):
    return {"scenario": scenario, "sheet": sheet, "filter": filter_, "column": column, "op": op, "value": value}


# Scenario -> (objective, unserved t) worked out by hand.
EXPECTED = {
    BASELINE: (1700.0, 0.0),
    # set: fb costs 8, landed in A 13 > 10: fa 100 (1000) + fb 20 x 13 (260)
    "cheap_b": (1260.0, 0.0),
    # scale: fa 150 t/yr covers the 120 t alone
    "big_a": (1200.0, 0.0),
    # add: demand 220: fa 100 (1000) + fb 100 x 35 (3500) + 20 t unserved x 1000
    "more_demand": (24500.0, 20.0),
    # drop (plant and its process rows): fb is gone: fa 100 (1000) + 20 t unserved x 1000
    "no_b": (21000.0, 20.0),
    # append: a plant fc in A (50 t/yr at 12): fa 100 (1000) + fc 20 x 12 (240)
    "new_c": (1240.0, 0.0),
    # child of big_a (fa 150), demand x 1.5 = 180: fa 150 (1500) + fb 30 x 35 (1050)
    "child": (2550.0, 0.0),
    # grandchild of child, fa costs 20 (< 35 landed from B): 150 x 20 + 30 x 35
    "grandchild": (4050.0, 0.0),
}


def tiny_sheets(with_scenarios: bool = True) -> dict:
    sheets = {
        "periods": one_period(),
        "countries": [{"country": "A"}, {"country": "B"}],
        "products": [product("ox", "oxide", "NdPr")],
        "processes": [proc("sep", "separation")],
        "recipes": [rec("sep", "ox", 1)],
        "facilities": [fac("fa", "A", 100), fac("fb", "B", 100)],
        "facility_processes": [fp("fa", "sep", 10), fp("fb", "sep", 30)],
        "transport": [{"from_country": "*", "to_country": "*", "product": "*", "cost_usd_per_t": 5}],
        "demand": [dem("A", "ox", 120, penalty=1000)],
    }
    if with_scenarios:
        sheets["scenarios"] = [{"scenario": s} for s in ("cheap_b", "big_a", "more_demand", "no_b", "new_c",
                                                          "bad_filter")] + [
            {"scenario": "child", "parent": "big_a"}, {"scenario": "grandchild", "parent": "child"}]
        sheets["scenario_changes"] = [
            change("cheap_b", "facility_processes", "facility=fb", "unit_cost_usd_per_t", "set", "8"),
            change("big_a", "facilities", "facility=fa", "capacity_t_per_yr", "scale", "1.5"),
            change("more_demand", "demand", "country=A", "quantity_t_per_yr", "add", "100"),
            change("no_b", "facility_processes", "facility=fb", "", "drop", ""),
            change("no_b", "facilities", "facility=fb", "", "drop", ""),
            change("new_c", "facilities", "*", "", "append", "facility=fc; country=A; capacity_t_per_yr=50"),
            change("new_c", "facility_processes", "*", "", "append",
                   "facility=fc; process=sep; unit_cost_usd_per_t=12"),
            change("bad_filter", "facilities", "facility=zz", "capacity_t_per_yr", "scale", "2"),
            change("child", "demand", "product=ox", "quantity_t_per_yr", "scale", "1.5"),
            change("grandchild", "facility_processes", "facility=fa", "unit_cost_usd_per_t", "set", "20"),
        ]
    return sheets


@pytest.fixture
def tiny(tmp_path):
    return write_case(tmp_path / "tiny.xlsx", tiny_sheets(), {"base_year": 2025})


def manifest(folder) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def run(path, names, tmp_path, **kw):
    case, source = load_inputs(str(path), kw.pop("scenario_file", None))
    kw.setdefault("workers", 1)
    kw.setdefault("reports", False)  # report folders and charts take most of the time: only where checked
    kw.setdefault("charts", False)
    return run_batch(case, source, names, out=tmp_path / "out", stream=open("/dev/null", "w"), **kw)


def test_each_op_and_inheritance_in_a_pool_batch(tiny, tmp_path):
    """Every operation and a three-level parent chain, in two worker processes; the
    comparison holds the hand-solved figures and their deltas against the base case."""
    names = [n for n in EXPECTED if n != BASELINE]
    res = run(tiny, names, tmp_path, workers=2, charts=True)
    assert not res.failed and not res.interrupted
    table = res.comparison.set_index("scenario")
    assert list(table.index) == [BASELINE] + names  # baseline first, then the order asked
    for name, (obj, unserved) in EXPECTED.items():
        assert table.at[name, "objective_usd"] == pytest.approx(obj, rel=REL), name
        assert table.at[name, "unserved_t"] == pytest.approx(unserved, abs=1e-6), name
        assert table.at[name, "vs_base_objective_usd"] == pytest.approx(obj - 1700.0, rel=REL, abs=1e-6)
    # resource cost by component: running and transport (no shortfall in the headline)
    assert table.at["more_demand", "resource_cost_pv_usd"] == pytest.approx(4500.0, rel=REL)
    assert table.at["more_demand", "resource_transport_pv_usd"] == pytest.approx(500.0, rel=REL)
    assert table.at["more_demand", "unserved_penalty_pv_usd"] == pytest.approx(20000.0, rel=REL)
    assert table.at["more_demand", "unserved_A_all_t"] == pytest.approx(20.0, rel=REL)
    # data-only scenarios were re-solved in place, the others rebuilt
    mode = table["solve_mode"]
    assert set(mode[["cheap_b", "big_a", "more_demand", "child", "grandchild"]]) == {"resolve"}
    assert set(mode[["no_b", "new_c"]]) == {"rebuild"}
    assert (res.folder / "comparison.csv").exists() and (res.folder / "comparison.xlsx").exists()
    assert manifest(res.folder)["status"] == "complete"
    assert manifest(res.folder)["charts"] == ["charts/batch_resource_cost.png", "charts/batch_unserved.png"]
    assert all((res.folder / c).stat().st_size > 0 for c in manifest(res.folder)["charts"])
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".tmp")]


def test_a_failing_scenario_is_reported_and_the_others_finish(tiny, tmp_path):
    res = run(tiny, ["cheap_b", "bad_filter", "big_a"], tmp_path, workers=2, reports=True)
    table = res.comparison.set_index("scenario")
    assert table.at["bad_filter", "status"] == "input_error"
    assert "the filter matches no row" in table.at["bad_filter", "message"]
    assert table.at["cheap_b", "objective_usd"] == pytest.approx(1260.0, rel=REL)
    assert table.at["big_a", "objective_usd"] == pytest.approx(1200.0, rel=REL)
    m = manifest(res.folder)
    assert [f["scenario"] for f in m["failed"]] == ["bad_filter"]
    assert "scenario 'bad_filter'" in m["failed"][0]["reason"]
    assert "row 9" in m["failed"][0]["reason"]  # the change's row in scenario_changes
    # report sub-folders written by the pool's workers, named after the scenarios
    assert sorted(p.name for p in res.folder.iterdir() if p.is_dir()) == ["base_case", "big_a", "cheap_b"]
    assert m["not_finished"] == []


def test_an_interrupted_batch_keeps_what_finished(tiny, tmp_path):
    """Ctrl-C after the first scenario (baseline and cheap_b done): both reports stay,
    the folder is complete and its manifest names the scenarios that did not finish."""
    seen = []

    def interrupt(outcome):
        seen.append(outcome.name)
        if len(seen) == 2:
            raise KeyboardInterrupt

    res = run(tiny, ["cheap_b", "big_a", "child"], tmp_path, on_outcome=interrupt, reports=True)
    assert res.interrupted
    m = manifest(res.folder)
    assert m["status"] == "interrupted"
    assert m["not_finished"] == ["big_a", "child"]
    assert [s["scenario"] for s in m["scenarios"]] == [BASELINE, "cheap_b"]
    assert (res.folder / "base_case" / "report.xlsx").exists()
    assert (res.folder / "cheap_b" / "report.xlsx").exists()
    assert not (res.folder / "big_a").exists()
    table = pd.read_csv(res.folder / "comparison.csv").set_index("scenario")
    assert table.at["cheap_b", "objective_usd"] == pytest.approx(1260.0, rel=REL)
    assert table.at["child", "status"] == "not_finished"


def test_scenarios_from_a_second_workbook(tmp_path):
    """The base case without scenarios, the scenarios in their own workbook."""
    base = write_case(tmp_path / "base.xlsx", tiny_sheets(with_scenarios=False), {"base_year": 2025})
    full = tiny_sheets()
    scen = write_case(tmp_path / "scen.xlsx", {"scenarios": full["scenarios"],
                                               "scenario_changes": full["scenario_changes"]})
    res = run(base, ["grandchild", "new_c"], tmp_path, scenario_file=str(scen))
    table = res.comparison.set_index("scenario")
    assert table.at["grandchild", "objective_usd"] == pytest.approx(4050.0, rel=REL)
    assert table.at["new_c", "objective_usd"] == pytest.approx(1240.0, rel=REL)
    assert manifest(res.folder)["scenario_file"].endswith("scen.xlsx")


def test_problems_in_a_scenario_file_name_that_file(tmp_path):
    base = write_case(tmp_path / "base.xlsx", tiny_sheets(with_scenarios=False), {"base_year": 2025})
    full = tiny_sheets()
    changes = [dict(c) for c in full["scenario_changes"]]
    changes[0]["sheet"] = "facility_process"  # a typo
    scen = write_case(tmp_path / "scen.xlsx", {"scenarios": full["scenarios"], "scenario_changes": changes,
                                               "demand": []})
    with pytest.raises(InputError) as err:
        load_inputs(str(base), str(scen))
    text = str(err.value)
    assert "scen.xlsx, sheet 'demand': a scenario file holds only" in text
    # a bad filter found when the scenario is applied also names the scenario file
    scen2 = write_case(tmp_path / "scen2.xlsx", {"scenarios": full["scenarios"],
                                                 "scenario_changes": full["scenario_changes"]})
    case, source = load_inputs(str(base), str(scen2))
    with pytest.raises(InputError) as err:
        scenario_case(BatchJob("t", case, source), "bad_filter")
    assert str(err.value).count("scen2.xlsx, sheet 'scenario_changes', row 9") == 1


def test_cli_runs_a_batch_and_reports_failures(tiny, tmp_path, capsys):
    from model.cli import main
    code = main(["run", str(tiny), "--scenarios", "cheap_b,bad_filter", "--workers", "1",
                 "--out", str(tmp_path / "out")])
    assert code == 3  # a scenario failed; the batch folder is still written
    out = capsys.readouterr()
    assert "failed: bad_filter" in out.out and "batch: 3/3 done, 1 failed" in out.err
    assert main(["run", str(tiny), "--scenarios", "nope", "--out", str(tmp_path / "out")]) == 2
    assert "unknown scenario" in capsys.readouterr().err


# --- re-solving in place -------------------------------------------------------------

def reserve_sheets() -> dict:
    """Two years, no discounting; fa (200 t/yr at 10) runs in 2025 only; demand 100 t a
    year. A stockpile (capacity 60, holding 2 USD/t-yr) carries oxide into 2026:
    2025 makes 160 (1600), holds 60 (120), 2026 releases 60 and 40 t go unserved (40000).
    Objective 41720. Capacity x 1.5 (90): 1900 + 180 + 10000 = 12080. Buys capped at
    50 t/yr: 1500 + 100 + 50000 = 51600."""
    return {
        "periods": [{"period": "2025", "start_year": 2025, "duration_yr": 1},
                    {"period": "2026", "start_year": 2026, "duration_yr": 1}],
        "countries": [{"country": "A"}],
        "products": [product("ox", "oxide", "NdPr")],
        "processes": [proc("sep", "separation")],
        "recipes": [rec("sep", "ox", 1)],
        "facilities": [fac("fa", "A", 200, last_year=2025)],
        "facility_processes": [fp("fa", "sep", 10)],
        "demand": [dem("A", "ox", 100, "2025", penalty=1000), dem("A", "ox", 100, "2026", penalty=1000)],
        "stockpiles": [{"stockpile": "h", "holder": "A", "product": "ox", "capacity_t": 60,
                        "holding_cost_usd_per_t_yr": 2, "terminal_rule": "free"}],
        "scenarios": [{"scenario": s} for s in ("bigger", "buy_cap", "dearer_hold", "more_demand")],
        "scenario_changes": [
            change("bigger", "stockpiles", "stockpile=h", "capacity_t", "scale", "1.5"),
            change("buy_cap", "stockpiles", "stockpile=h", "buy_max_t_per_yr", "set", "50"),
            change("dearer_hold", "stockpiles", "stockpile=h", "holding_cost_usd_per_t_yr", "set", "3"),
            change("more_demand", "demand", "period=2026", "quantity_t_per_yr", "add", "10"),
        ],
    }


def test_resolved_objectives_equal_rebuilt_ones(tiny, tmp_path):
    """Several data-only scenarios, re-solved on one model in sequence, give the
    objectives of models rebuilt from scratch (1e-7 relative) and the hand-solved ones."""
    names = ["cheap_b", "big_a", "more_demand", "child", "grandchild"]
    fast = run(tiny, names, tmp_path).objectives()
    slow = run(tiny, names, tmp_path, resolve=False).objectives()
    for n in [BASELINE] + names:
        assert fast[n] == pytest.approx(slow[n], rel=REL)
        assert fast[n] == pytest.approx(EXPECTED[n][0], rel=REL)
    path = write_case(tmp_path / "reserve.xlsx", reserve_sheets(), {"base_year": 2025, "discount_rate": 0.0})
    res = run(path, ["bigger", "buy_cap", "dearer_hold", "more_demand"], tmp_path)
    table = res.comparison.set_index("scenario")
    hand = {BASELINE: 41720.0, "bigger": 12080.0, "buy_cap": 51600.0, "dearer_hold": 41780.0}
    for n, v in hand.items():
        assert table.at[n, "objective_usd"] == pytest.approx(v, rel=REL), n
        assert table.at[n, "solve_mode"] == "resolve"
    assert table.at["bigger", "stockpile_release_t"] == pytest.approx(90.0, rel=REL)
    # demand feeds stockpile cover, which the resolver does not recompute: rebuilt
    assert table.at["more_demand", "solve_mode"] == "rebuild"
    assert table.at["more_demand", "objective_usd"] == pytest.approx(41720.0 + 10000.0, rel=REL)


def test_resolver_model_equals_a_rebuilt_model_on_the_example():
    """After each data-only scenario of the shipped case the HiGHS model's costs and
    bounds are those of the scenario's model built from scratch."""
    from model.lp.build import build_model
    from model.lp.data import build_model_data
    from model.lp.handoff import compile_lp
    from model.runs.resolve import Resolver
    from model.cli import ROOT
    case, source = load_inputs(str(ROOT / "inputs" / "example.xlsx"))
    job = BatchJob("t", case, source)
    res = Resolver(case)
    for name in ["high_demand", "mp_expansion", "china_quota_cut", None]:
        scen = scenario_case(job, name)
        why, data = res.check(scen)
        assert why is None, why
        sol, tables, _ = res.resolve(scen, data)
        got = res.lp_arrays()
        lp = compile_lp(build_model(build_model_data(scen)).model)
        for key, want in (("col_cost", lp.c), ("col_lower", lp.col_lower), ("col_upper", lp.col_upper),
                          ("row_lower", lp.row_lower), ("row_upper", lp.row_upper)):
            np.testing.assert_allclose(got[key], want, rtol=1e-12, err_msg=f"{name}: {key}")
        costs = tables["costs"]
        assert costs.loc[costs["in_objective"], "pv_usd"].sum() == pytest.approx(sol.objective, rel=REL)
        # a sweep's lean tables give the comparison row of the full tables
        _, lean, _ = res.resolve(scen, data, lean=True)
        assert comparison_row(lean) == pytest.approx(comparison_row(tables), rel=1e-9, abs=1e-6)
    why, _ = res.check(scenario_case(job, "cn_ban_us_only"))  # a ban to one country needs origin classes
    assert why.startswith("export controls other than bans to every destination")


# --- bans as bounds --------------------------------------------------------------------

def ban_sheets() -> dict:
    """Three countries, one period, freight 5 USD/t on every lane. Demand: A 120 t
    (penalty 1000), B 10 t (1000), C 50 t (2000). Plants: fa in A (100 t/yr at 10), fb in
    B (100 at 30), fc in C (30 at 50). Base: fa 100 -> A, fb 10 -> B, 20 -> A and 50 -> C:
    1000 + 300 + 70 x 35 = 3750 (prices: B 30, A and C 35)."""
    def ban(name, exporter, dest="*"):
        return change(name, "export_controls", "*", "", "append",
                      f"control=ban_{exporter}; exporter={exporter}; product=ox; destinations={dest}; kind=ban")
    return {
        "periods": one_period(),
        "countries": [{"country": c} for c in "ABC"],
        "products": [product("ox", "oxide", "NdPr")],
        "processes": [proc("sep", "separation")],
        "recipes": [rec("sep", "ox", 1)],
        "facilities": [fac("fa", "A", 100), fac("fb", "B", 100), fac("fc", "C", 30)],
        "facility_processes": [fp("fa", "sep", 10), fp("fb", "sep", 30), fp("fc", "sep", 50)],
        "transport": [{"from_country": "*", "to_country": "*", "product": "*", "cost_usd_per_t": 5}],
        "demand": [dem("A", "ox", 120, penalty=1000), dem("B", "ox", 10, penalty=1000),
                   dem("C", "ox", 50, penalty=2000)],
        "scenarios": [{"scenario": s} for s in ("ban_b", "cheap_b", "ban_a_b", "ban_a", "ban_b_freight",
                                                 "ban_b_to_a")],
        "scenario_changes": [
            ban("ban_b", "B"),
            change("cheap_b", "facility_processes", "facility=fb", "unit_cost_usd_per_t", "set", "8"),
            ban("ban_a_b", "A"), ban("ban_a_b", "B"),
            ban("ban_a", "A"),
            ban("ban_b_freight", "B"),
            change("ban_b_freight", "transport", "*", "cost_usd_per_t", "set", "10"),
            ban("ban_b_to_a", "B", "A"),
        ],
    }


# Scenario -> (objective, unserved t, the ban's shadow value per control) by hand.
BAN_EXPECTED = {
    # fb serves B only (300); fa 80 -> A, 20 -> C (1000 + 100); fc 30 (1500); A short 40
    # (40000). Prices A 1000, C 1005, B 30: ban_B is worth max(1000, 1005) - 30 - 5 = 970.
    "ban_b": (42900.0, 40.0, {"ban_B": 970.0}),
    # bounds released: fb at 8 lands at 13: 1000 + 80 + 70 x 13
    "cheap_b": (1990.0, 0.0, {}),
    # fa 100 in A (1000), fb 10 (300), fc 30 (1500); A short 20 (20000), C short 20 (40000).
    # Prices A 1000, B 30, C 2000: ban_A 2000 - 1000 - 5, ban_B 2000 - 30 - 5.
    "ban_a_b": (62800.0, 40.0, {"ban_A": 995.0, "ban_B": 1965.0}),
    # A exports nothing in the base case: the ban does not bind (prices A 35, C 35, B 30)
    "ban_a": (3750.0, 0.0, {"ban_A": 0.0}),
    # ban_b with freight 10: fa's 20 t to C cost 200; ban value 1010 - 30 - 10
    "ban_b_freight": (43000.0, 40.0, {"ban_B": 970.0}),
    # B-origin oxide may not reach A, not even through C (an origin class): fb 50 -> C
    # (1750) and 10 in B (300), fa 100 in A (1000), fc 20 -> A at 55 (1100). Rebuilt.
    "ban_b_to_a": (4150.0, 0.0, None),
}


def _highs_matrix(res):
    """The constraint matrix of the resolver's HiGHS model (column-wise)."""
    import scipy.sparse as sp
    lp = res.h.getLp()
    m = lp.a_matrix_
    return sp.csc_array((np.asarray(m.value_), np.asarray(m.index_), np.asarray(m.start_)),
                        shape=(lp.num_row_, lp.num_col_))


def check_ban_resolve(res, scen, name, tables_to_compare=("flows", "controls", "ban_lane_values")):
    """Re-solve `scen` on `res` and rebuild it: the LP is the rebuilt one with the
    forbidden flows as extra columns bounded to 0, the objectives agree to 1e-7 and the
    named tables are equal. Returns the re-solve's (solution, tables)."""
    from model.lp.build import build_model
    from model.lp.data import build_model_data
    from model.lp.handoff import compile_lp
    from model.runs.pipeline import solve_case
    why, data = res.check(scen)
    assert why is None, f"{name}: {why}"
    sol, tables, _ = res.resolve(scen, data)
    rebuilt = solve_case(scen, name)
    assert sol.objective == pytest.approx(rebuilt.solve.objective, rel=REL), name
    # the model's LP, forbidden columns removed, is the rebuilt LP
    got = res.lp_arrays()
    _, ban = res._ban_plan(data)
    drop = np.zeros(len(got["col_cost"]), bool)
    drop[res.pos.flow_cols[ban]] = True
    assert (got["col_upper"][drop] == 0).all()
    lp = compile_lp(build_model(build_model_data(scen)).model)
    keep = np.flatnonzero(~drop)
    for key, want in (("col_cost", lp.c), ("col_lower", lp.col_lower), ("col_upper", lp.col_upper),
                      ("row_lower", lp.row_lower), ("row_upper", lp.row_upper)):
        mine = got[key][keep] if key.startswith("col") else got[key]
        np.testing.assert_allclose(mine, want, rtol=1e-12, err_msg=f"{name}: {key}")
    a = _highs_matrix(res)[:, keep]
    assert a.shape == lp.A.shape and abs(a - lp.A).sum() == 0.0, f"{name}: constraint matrix"
    for t in tables_to_compare:
        assert (t in tables) == (t in rebuilt.tables), f"{name}: {t}"
        if t in tables:
            pd.testing.assert_frame_equal(tables[t].reset_index(drop=True), rebuilt.tables[t].reset_index(drop=True),
                                          check_dtype=False, rtol=1e-9, atol=1e-6, obj=f"{name}: {t}")
    return sol, tables


def test_bans_are_bounds_on_one_model(tmp_path):
    """Bans to every destination are re-solved as zero bounds on the model's flow
    columns: objectives, flows and controls tables of a rebuilt model, hand-solved
    objectives and ban values; a scenario without the ban after one with it gets the
    bounds back; a ban to one country (origin classes) is rebuilt."""
    from model.runs.resolve import Resolver
    path = write_case(tmp_path / "bans.xlsx", ban_sheets(), {"base_year": 2025})
    case, source = load_inputs(str(path))
    job = BatchJob("t", case, source)
    res = Resolver(case)
    base_arrays = res.lp_arrays()
    order = ["ban_b", "cheap_b", "ban_a_b", "ban_a", "ban_b_freight", None, "ban_b"]
    for name in order:
        sol, tables = check_ban_resolve(res, scenario_case(job, name), name)
        if name is None:
            assert sol.objective == pytest.approx(3750.0, rel=REL)
            for k, v in res.lp_arrays().items():  # every bound and cost back to the base model's
                np.testing.assert_array_equal(v, base_arrays[k], err_msg=k)
            continue
        obj, unserved, values = BAN_EXPECTED[name]
        assert sol.objective == pytest.approx(obj, rel=REL), name
        assert tables["demand"]["unserved_t"].sum() == pytest.approx(unserved, abs=1e-6), name
        ctl = tables.get("controls")
        assert (ctl is None) == (not values)
        if values:
            got = ctl.set_index("control")
            for control, v in values.items():
                assert got.at[control, "shadow_value_usd_per_t"] == pytest.approx(v, rel=REL), (name, control)
                assert got.at[control, "binding"] == (v > 0)
            exporters = [c[-1] for c in values]  # ban_A -> A: every flow from A is an export
            assert not tables["flows"]["from_country"].isin(exporters).any(), name
    why, _ = res.check(scenario_case(job, "ban_b_to_a"))
    assert why.startswith("export controls other than bans to every destination")
    # the same through a batch: every ban scenario re-solved, the other rebuilt
    names = list(BAN_EXPECTED)
    table = run(path, names, tmp_path).comparison.set_index("scenario")
    slow = run(path, names, tmp_path, resolve=False).objectives()
    for n, (obj, unserved, _) in BAN_EXPECTED.items():
        assert table.at[n, "objective_usd"] == pytest.approx(obj, rel=REL), n
        assert table.at[n, "objective_usd"] == pytest.approx(slow[n], rel=REL), n
        assert table.at[n, "unserved_t"] == pytest.approx(unserved, abs=1e-6), n
        assert table.at[n, "solve_mode"] == ("rebuild" if n == "ban_b_to_a" else "resolve"), n


def test_a_base_case_ban_is_a_bound_too(tmp_path):
    """A ban in the base case itself: the model is built without it, so the base case
    re-solves with the ban as bounds (ban_b's 42900) and a scenario dropping the ban
    re-solves too (the unbanned optimum 3750), in either order."""
    from model.runs.resolve import Resolver
    sheets = ban_sheets()
    sheets["export_controls"] = [{"control": "ban_B", "exporter": "B", "product": "ox", "destinations": "*",
                                  "kind": "ban"}]
    sheets["scenarios"] = [{"scenario": "lifted"}]
    sheets["scenario_changes"] = [change("lifted", "export_controls", "control=ban_B", "", "drop", "")]
    path = write_case(tmp_path / "base_ban.xlsx", sheets, {"base_year": 2025})
    case, source = load_inputs(str(path))
    job = BatchJob("t", case, source)
    res = Resolver(case)
    for name, obj in ((None, 42900.0), ("lifted", 3750.0), (None, 42900.0)):
        sol, _ = check_ban_resolve(res, scenario_case(job, name), name)
        assert sol.objective == pytest.approx(obj, rel=REL), name


def test_a_ban_on_tariffed_flows_is_a_bound_too(tmp_path):
    """The tariffs table lists every tariffed flow: a ban forbidding one of them re-solves
    with the tariffs module rebound to the allowed flows, so its table is the rebuilt
    model's (the forbidden flow has no row), and the objective is ban_b's plus the duty on
    nothing (42900)."""
    from model.runs.resolve import Resolver
    sheets = ban_sheets()
    sheets["tariffs"] = [{"importer": "A", "exporter": "B", "product": "ox", "specific_usd_per_t": 1}]
    path = write_case(tmp_path / "tariffed.xlsx", sheets, {"base_year": 2025})
    case, source = load_inputs(str(path))
    job = BatchJob("t", case, source)
    res = Resolver(case)
    sol, tables = check_ban_resolve(res, scenario_case(job, "ban_b"), "ban_b", ("flows", "controls", "tariffs"))
    assert sol.objective == pytest.approx(42900.0, rel=REL)
    assert not (tables["tariffs"]["exporter"] == "B").any()  # B's tariffed flow is forbidden: no row
    sol, tables = check_ban_resolve(res, scenario_case(job, None), "base", ("flows", "tariffs"))
    assert (tables["tariffs"]["exporter"] == "B").any()  # back again for the next case
    table = run(path, ["ban_b"], tmp_path).comparison.set_index("scenario")
    assert table.at["ban_b", "solve_mode"] == "resolve"
    assert table.at["ban_b", "objective_usd"] == pytest.approx(42900.0, rel=REL)


def test_quota_rows_of_other_cases_are_numbers(tmp_path):
    """A resolver carrying another case's quota (a tree's node) as a row: where a case
    lacks it the row has no limit (the base's 3750), where it has it the row holds (B may
    send A 10 t: A's other 10 t come from fc at 50 + 5; 1000 + 70 x 30 + 60 x 5 + 10 x 55 =
    3950), each equal to a rebuild, its controls table the rebuilt one's, in either order."""
    from model.runs.pipeline import solve_case
    from model.runs.resolve import Resolver, data_control_rows
    sheets = ban_sheets()
    sheets["scenarios"].append({"scenario": "quota_b"})
    sheets["scenario_changes"].append(change(
        "quota_b", "export_controls", "*", "", "append",
        "control=quota_B; exporter=B; product=ox; destinations=A; kind=quota; quota_t_per_yr=10"))
    path = write_case(tmp_path / "quota.xlsx", sheets, {"base_year": 2025})
    case, source = load_inputs(str(path))
    job = BatchJob("t", case, source)
    quota = scenario_case(job, "quota_b")
    res = Resolver(case, controls=data_control_rows(quota))
    for name, want in ((None, 3750.0), ("quota_b", 3950.0), (None, 3750.0)):
        scen = scenario_case(job, name)
        why, data = res.check(scen)
        assert why is None, name
        sol, tables, _ = res.resolve(scen, data)
        rebuilt = solve_case(scen, name or "base", classes=res.classes)  # a tree's nodes share classes
        assert sol.objective == pytest.approx(want, rel=REL), name
        assert rebuilt.solve.objective == pytest.approx(want, rel=REL), name
        assert ("controls" in tables) == (name == "quota_b")
        if name == "quota_b":
            got = tables["controls"].set_index("control")
            assert got.at["quota_B", "used_t_per_yr"] == pytest.approx(10.0)
            pd.testing.assert_frame_equal(tables["controls"], rebuilt.tables["controls"], rtol=1e-9)
        pd.testing.assert_frame_equal(tables["flows"].reset_index(drop=True),
                                      rebuilt.tables["flows"].reset_index(drop=True), rtol=1e-9, atol=1e-9)


def test_lane_capacity_shared_by_origin_classes_is_kept(tmp_path):
    """A tariff on B-origin oxide gives oxide origin classes, whose flows share a lane's
    capacity in a lane_capacity row (model.lp.modules.trade), not a column bound: a re-solve
    leaves those columns unbounded, and a capacity change rebuilds. Duty 1 USD/t on
    B-origin oxide into A. Base: 3750 + 20 t duty = 3770; fb at 8: 1000 + 80 (B) + 20 x 14
    (A) + 50 x 13 (C) = 2010; every lane's 1000 t/yr capacity x 0.99 binds nowhere: 3770."""
    from model.lp.build import build_model
    from model.lp.data import build_model_data
    from model.lp.handoff import compile_lp
    from model.runs.resolve import Resolver
    sheets = ban_sheets()
    sheets["tariffs"] = [{"importer": "A", "exporter": "B", "product": "ox", "specific_usd_per_t": 1}]
    sheets["transport"][0]["max_flow_t_per_yr"] = 1000
    sheets["scenarios"] = [{"scenario": "cheap_b"}, {"scenario": "tight_lanes"}]
    sheets["scenario_changes"] = [
        change("cheap_b", "facility_processes", "facility=fb", "unit_cost_usd_per_t", "set", "8"),
        change("tight_lanes", "transport", "*", "max_flow_t_per_yr", "scale", "0.99")]
    path = write_case(tmp_path / "classed.xlsx", sheets, {"base_year": 2025})
    case, source = load_inputs(str(path))
    job = BatchJob("t", case, source)
    res = Resolver(case)
    scen = scenario_case(job, "cheap_b")
    why, data = res.check(scen)
    assert why is None
    sol, _, _ = res.resolve(scen, data)
    assert sol.objective == pytest.approx(2010.0, rel=REL)
    lp = compile_lp(build_model(build_model_data(scen)).model)
    np.testing.assert_array_equal(res.lp_arrays()["col_upper"], lp.col_upper)
    why, _ = res.check(scenario_case(job, "tight_lanes"))
    assert why == "lane capacity changed and origin classes share it in lane_capacity rows"
    table = run(path, ["cheap_b", "tight_lanes"], tmp_path).comparison.set_index("scenario")
    for n, obj, mode in ((BASELINE, 3770.0, "resolve"), ("cheap_b", 2010.0, "resolve"),
                         ("tight_lanes", 3770.0, "rebuild")):
        assert table.at[n, "objective_usd"] == pytest.approx(obj, rel=REL), n
        assert table.at[n, "solve_mode"] == mode, n


def test_the_example_ban_is_re_solved_as_bounds():
    """inputs/example.xlsx's cn_heavy_ban re-solved on the base case's model: the
    rebuilt objective (1e-7), flows and controls tables; back to the base case the model
    is the base model again; and the ban again gives the rebuilt objective. (Once the
    warm start comes from another optimum, flows and prices may be another of the
    example's alternative optima: the objective is what must agree.)"""
    from model.lp.build import build_model
    from model.lp.data import build_model_data
    from model.lp.handoff import compile_lp
    from model.runs.pipeline import solve_case
    from model.runs.resolve import Resolver
    from model.cli import ROOT
    case, source = load_inputs(str(ROOT / "inputs" / "example.xlsx"))
    job = BatchJob("t", case, source)
    res = Resolver(case)
    ban = scenario_case(job, "cn_heavy_ban")
    sol, tables = check_ban_resolve(res, ban, "cn_heavy_ban")
    assert set(tables["controls"]["control"]) == {"hree_ban"}
    assert (tables["controls"]["shadow_value_usd_per_t"] > 0).any()  # the ban binds
    why, data = res.check(case)
    assert why is None
    sol, _, _ = res.resolve(case, data)
    assert sol.objective == pytest.approx(solve_case(case).solve.objective, rel=REL)
    lp = compile_lp(build_model(build_model_data(case)).model)
    got = res.lp_arrays()
    np.testing.assert_array_equal(got["col_upper"], lp.col_upper)
    np.testing.assert_array_equal(got["col_cost"], lp.c)
    check_ban_resolve(res, ban, "cn_heavy_ban again", tables_to_compare=())


# --- Dask --------------------------------------------------------------------------------

def test_dask_cluster_gives_the_process_pool_objectives(tiny, tmp_path):
    import distributed  # the [test] extra installs it
    names = ["cheap_b", "no_b", "child"]
    pool = run(tiny, names, tmp_path, workers=2).objectives()
    with distributed.LocalCluster(n_workers=1, processes=False, threads_per_worker=1,
                                  dashboard_address=None) as cluster:
        res = run(tiny, names, tmp_path, scheduler=cluster.scheduler_address, reports=True)
    got = res.objectives()
    assert set(got) == set(pool) == {BASELINE, *names}
    for n in got:
        assert got[n] == pytest.approx(pool[n], rel=REL)
    assert (res.folder / "child" / "report.xlsx").exists()  # written by the client
    assert manifest(res.folder)["execution"]["scheduler"].startswith("inproc://")
