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
from model.batch import BASELINE, BatchJob, comparison_row, load_inputs, run_batch, scenario_case
from model.casewriter import write_case
from model.schema import InputError

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
    from model.build import build_model
    from model.data import build_model_data
    from model.handoff import compile_lp
    from model.resolve import Resolver
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
    why, _ = res.check(scenario_case(job, "cn_heavy_ban"))
    assert why == "rows of sheet export_controls were dropped or appended"


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
