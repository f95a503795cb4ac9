"""Sweeps: seeded samples are reproducible and every sample's objective is the one
worked out by hand; a grid's summary statistics; spec errors name the file and the
parameter; the shipped spec runs.

The case is test_batch's: oxide demand q in A, plant fa in A (100 t/yr at c USD/t),
fb in B (100 t/yr at 30 USD/t), freight f on every lane. For 100 < q <= 200 the cheaper
landed plant runs full and the other makes the rest:
    objective = 100 x min(c, 30 + f) + (q - 100) x max(c, 30 + f).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from test_batch import tiny_sheets
from model.case.casewriter import write_case
from model.case.schema import InputError
from model.cli import ROOT, main
from model.runs.sweep import read_spec, run_sweep

REL = 1e-7

PARAMS = [
    {"name": "fa_cost", "sheet": "facility_processes", "filter": "facility=fa", "column": "unit_cost_usd_per_t",
     "op": "set", "uniform": {"low": 5, "high": 60}},
    {"name": "demand", "sheet": "demand", "filter": "country=A", "column": "quantity_t_per_yr",
     "op": "scale", "triangular": {"low": 0.9, "mode": 1.0, "high": 1.5}},
    {"name": "freight", "sheet": "transport", "filter": "*", "column": "cost_usd_per_t", "op": "set",
     "discrete": {"values": [2, 5, 20], "probabilities": [0.2, 0.5, 0.3]}},
]


@pytest.fixture
def case_path(tmp_path):
    return write_case(tmp_path / "tiny.xlsx", tiny_sheets(with_scenarios=False), {"base_year": 2025})


def spec_file(tmp_path: Path, case_path, **spec) -> str:
    spec = {"workbook": str(case_path), **spec}
    path = tmp_path / f"sweep_{len(list(tmp_path.glob('sweep_*')))}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return str(path)


def sweep(path: str, tmp_path: Path, **kw):
    kw.setdefault("workers", 1)
    kw.setdefault("charts", False)
    return run_sweep(path, out=tmp_path / "out", stream=open("/dev/null", "w"), **kw)


def by_hand(c: float, q: float, f: float) -> float:
    return 100 * min(c, 30 + f) + (q - 100) * max(c, 30 + f)


def test_a_seeded_sweep_is_reproducible_and_right(case_path, tmp_path):
    path = spec_file(tmp_path, case_path, samples=6, seed=7, parameters=PARAMS)
    first = sweep(path, tmp_path)
    again = sweep(path, tmp_path)
    cols = ["scenario", "param_fa_cost", "param_demand", "param_freight", "objective_usd", "unserved_t"]
    a, b = first.comparison[cols], again.comparison[cols]
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(pd.read_csv(first.folder / "sweep_summary.csv"),
                                  pd.read_csv(again.folder / "sweep_summary.csv"))
    # the draws are numpy's default_rng(seed), parameter by parameter in spec order
    rng = np.random.default_rng(7)
    u = rng.uniform(5, 60, 6)
    t = rng.triangular(0.9, 1.0, 1.5, 6)
    d = np.array([2, 5, 20])[rng.choice(3, size=6, p=[0.2, 0.5, 0.3])]
    s = a[a["scenario"] != "base case"]
    np.testing.assert_array_equal(s["param_fa_cost"], u)
    np.testing.assert_array_equal(s["param_demand"], t)
    np.testing.assert_array_equal(s["param_freight"], d)
    for r in s.itertuples():
        assert r.objective_usd == pytest.approx(by_hand(r.param_fa_cost, 120 * r.param_demand, r.param_freight),
                                                rel=REL)
    assert set(first.comparison["solve_mode"]) == {"resolve"}
    other = sweep(spec_file(tmp_path, case_path, samples=6, seed=8, parameters=PARAMS), tmp_path)
    assert not np.array_equal(other.comparison["param_fa_cost"].to_numpy()[1:], u)


def test_a_grid_sweep_summary_by_hand(case_path, tmp_path):
    """fa at 10, 20 and 40 USD/t: objectives 1700, 2700 and 4300 (at 40 fb runs first:
    100 x 35 + 20 x 40). Mean 2900; percentiles by linear interpolation: p5 = 1700 +
    0.1 x 1000 = 1800, p50 = 2700, p95 = 2700 + 0.9 x 1600 = 4140."""
    path = spec_file(tmp_path, case_path, parameters=[
        {"name": "fa_cost", "sheet": "facility_processes", "filter": "facility=fa",
         "column": "unit_cost_usd_per_t", "op": "set", "values": [10, 20, 40]}])
    res = sweep(path, tmp_path, charts=True)
    objs = res.comparison.set_index("scenario")["objective_usd"]
    assert list(objs[["sample_1", "sample_2", "sample_3"]]) == pytest.approx([1700, 2700, 4300], rel=REL)
    summary = pd.read_csv(res.folder / "sweep_summary.csv").set_index("metric")
    row = summary.loc["objective_usd"]
    assert (row["samples"], row["solved"], row["failed"]) == (3, 3, 0)
    assert row["mean"] == pytest.approx(2900.0, rel=REL)
    assert row["p5"] == pytest.approx(1800.0, rel=REL)
    assert row["p50"] == pytest.approx(2700.0, rel=REL)
    assert row["p95"] == pytest.approx(4140.0, rel=REL)
    assert row["std"] == pytest.approx(np.std([1700, 2700, 4300], ddof=1), rel=REL)
    assert summary.loc["unserved_t", "max"] == 0.0
    assert (res.folder / "sweep_summary.xlsx").exists() and (res.folder / "spec.yaml").exists()
    charts = json.loads((res.folder / "manifest.json").read_text())["sweep"]["charts"]
    assert charts == ["charts/sweep_resource_cost.png", "charts/sweep_unserved.png"]


def test_spec_errors_name_the_file_and_the_parameter(case_path, tmp_path):
    bad = [dict(PARAMS[0], uniform={"low": 5, "high": 1}),
           dict(PARAMS[2], discrete={"values": [2, 5], "probabilities": [0.5, 0.6]}),
           {"name": "odd", "sheet": "demand", "column": "quantity_t_per_yr", "op": "scale", "normal": {}}]
    path = spec_file(tmp_path, case_path, samples=3, seed=1, parameters=bad)
    with pytest.raises(InputError) as err:
        read_spec(path)
    text = str(err.value)
    name = Path(path).name
    assert f"{name}, sheet 'parameter 'fa_cost'', column 'uniform'" in text and "low must be below high" in text
    assert "parameter 'freight'" in text and "not a distribution" in text
    assert "parameter 'odd'" in text and "one distribution or value list" in text
    # a change that matches no row is found before anything runs, named by parameter
    nowhere = [dict(PARAMS[0], filter="facility=zz")]
    path = spec_file(tmp_path, case_path, samples=2, seed=1, parameters=nowhere)
    with pytest.raises(InputError) as err:
        sweep(path, tmp_path)
    assert f"{Path(path).name}, sheet 'parameter 'fa_cost'', column 'filter'" in str(err.value)
    assert "the filter matches no row" in str(err.value)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_the_shipped_sweep_spec_runs(tmp_path, capsys):
    spec = yaml.safe_load((ROOT / "inputs" / "example_sweep.yaml").read_text())
    spec.update(samples=3, workbook=str(ROOT / "inputs" / "example.xlsx"))
    path = tmp_path / "example_sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["sweep", str(path), "--workers", "1", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "sweep: 3 samples, 3 solved" in out
    folder = next((tmp_path / "out").iterdir())
    table = pd.read_csv(folder / "comparison.csv")
    assert len(table) == 4 and set(table["status"]) == {"optimal"}
    assert set(table["solve_mode"]) == {"resolve"}  # every parameter is a number the resolver changes


def test_a_sweep_on_top_of_a_scenario_resolves_from_it(tmp_path):
    """Samples build on scenario big_a (fa 150 t/yr): at 10 USD/t fa serves all 120 t
    (1200); at 40 fb runs first (100 x 35) and fa makes 20 (800): 4300. The workers'
    model is built from big_a, so its samples are re-solved in place."""
    path = write_case(tmp_path / "tiny.xlsx", tiny_sheets(), {"base_year": 2025})
    spec = spec_file(tmp_path, path, scenario="big_a", parameters=[
        {"name": "fa_cost", "sheet": "facility_processes", "filter": "facility=fa",
         "column": "unit_cost_usd_per_t", "op": "set", "values": [10, 40]}])
    table = sweep(spec, tmp_path).comparison.set_index("scenario")
    assert list(table.loc[["sample_1", "sample_2"], "objective_usd"]) == pytest.approx([1200, 4300], rel=REL)
    assert list(table.loc[["sample_1", "sample_2"], "parent"]) == ["big_a", "big_a"]
    assert set(table["solve_mode"]) == {"resolve"}
    assert table.at["base case", "objective_usd"] == pytest.approx(1700.0, rel=REL)
