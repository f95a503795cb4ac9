"""End to end: run.py on the shipped example, report folders, exit codes, template, docs."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import openpyxl
import pandas as pd
import pytest

from conftest import ROOT, TOL
from model.case.casewriter import write_case
from model.case.template import docs_markdown
from model.case.workbook import file_hash
from model.cli import main
from model.reports.files import write_run
from model.runs.pipeline import run_case

EXAMPLE = ROOT / "inputs" / "example.xlsx"
BASE = ROOT / "inputs" / "base.xlsx"


def test_bare_run_py_solves_the_shipped_base_case_and_writes_a_report(tmp_path):
    before = file_hash(BASE)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "run.py", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "status: optimal" in proc.stdout
    assert "resource cost (present value)" in proc.stdout
    folders = list(out.iterdir())
    assert len(folders) == 1 and folders[0].name.endswith("_base")
    assert f"report: {folders[0]}" in proc.stdout
    run = folders[0]
    expected = {"summary", "production", "capacity_values", "flows", "demand", "disposal",
                "prices", "shortfall", "costs", "content"}
    assert expected <= {p.stem for p in run.glob("*.csv")}
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "optimal"
    assert manifest["input_sha256"] == before
    assert manifest["package_versions"]["pyomo"] != "not installed"
    costs = pd.read_csv(run / "costs.csv")
    # The objective is the present value of every cost term, penalties included.
    assert costs.loc[costs["in_objective"], "pv_usd"].sum() == pytest.approx(manifest["objective_usd"], rel=1e-9)
    wb = openpyxl.load_workbook(run / "report.xlsx")
    assert expected <= set(wb.sheetnames)
    assert wb["summary"].freeze_panes == "A2"
    (table,) = wb["production"].tables.values()  # an Excel table over every row (filters come with it)
    assert table.ref == f"A1:{openpyxl.utils.get_column_letter(wb['production'].max_column)}{wb['production'].max_row}"
    # The shipped workbook is only ever read.
    assert file_hash(BASE) == before
    assert not list(out.glob(".tmp_*"))


def test_report_tables_match_the_run(tmp_path):
    result = run_case(str(EXAMPLE))
    folder = write_run(result, tmp_path)
    prod = pd.read_csv(folder / "production.csv")
    assert prod["activity_t_per_yr"].sum() == pytest.approx(
        result.tables["production"]["activity_t_per_yr"].sum(), rel=1e-12)
    # Same-second runs never overwrite each other.
    second = write_run(result, tmp_path)
    assert second != folder and second.exists() and folder.exists()


def test_scenario_run_differs_from_base_and_names_its_folder(tmp_path, capsys):
    assert main(["run", str(EXAMPLE), "--scenario", "high_demand", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "scenario: high_demand" in out
    assert "against the base case:" in out and "unserved demand (t)" in out
    folder = next(tmp_path.iterdir())
    assert folder.name.endswith("_example_high_demand")
    vs = pd.read_csv(folder / "versus_base.csv").set_index("figure")
    assert vs.loc["unserved demand (t)", "change"] == pytest.approx(
        vs.loc["unserved demand (t)", "scenario_value"] - vs.loc["unserved demand (t)", "reference_value"])
    assert vs.loc["unserved demand (t)", "change"] > 0
    base = run_case(str(EXAMPLE))
    high = run_case(str(EXAMPLE), "high_demand")
    assert high.tables["demand"]["demand_t_per_yr"].sum() > base.tables["demand"]["demand_t_per_yr"].sum()
    assert high.tables["shortfall"]["unserved_t"].sum() > base.tables["shortfall"]["unserved_t"].sum() + 1.0


def test_scenario_banning_chinese_heavy_exports_leaves_japan_short_of_ht_magnets():
    """With no Dy or high-temperature magnets leaving China, Japan (whose only Dy
    source is Chinese oxide or Australian monazite through Malaysia) cannot meet EV
    demand for high-temperature magnets."""
    base = run_case(str(EXAMPLE))
    cut = run_case(str(EXAMPLE), "cn_heavy_ban")
    flows = cut.tables["flows"]
    assert flows[(flows["from_country"] == "CHN") & flows["product"].isin(["Dy_ox", "Dy_metal", "magnet_ht"])].empty
    short = cut.tables["demand"]
    jp = short[(short["country"] == "JPN") & (short["product"] == "magnet_ht")]
    assert jp["unserved_t"].sum() > 0
    assert cut.tables["shortfall"]["unserved_t"].sum() > base.tables["shortfall"]["unserved_t"].sum()


def test_time_limit_is_not_reported_as_an_answer(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("build_example", ROOT / "inputs" / "build_example.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    path = write_case(tmp_path / "tl.xlsx", mod.build(), {"base_year": 2025, "solver_time_limit_s": 1e-7})
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 3
    captured = capsys.readouterr()
    assert "time limit" in captured.out
    assert "no report was written" in captured.err
    assert not out.exists() or not list(out.iterdir())


def test_template_lacks_only_base_year_and_periods_and_never_overwrites(tmp_path, capsys):
    path = tmp_path / "t.xlsx"
    assert main(["template", str(path)]) == 0
    assert main(["template", str(path)]) == 2
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "2 problems" in err and "base_year" in err and "no periods" in err
    wb = openpyxl.load_workbook(path)
    assert "_columns" in wb.sheetnames and "demand" in wb.sheetnames
    assert [c.value for c in wb["demand"][1]][:3] == ["country", "product", "segment"]


def test_input_docs_are_generated_from_the_schema():
    assert (ROOT / "inputs" / "README.md").read_text() == docs_markdown(), \
        "inputs/README.md is stale: run `python run.py docs`"


def test_example_solution_satisfies_every_constraint():
    from conftest import assert_feasible
    result = run_case(str(EXAMPLE))
    assert_feasible(result)
    prices = result.tables["prices"]
    assert set(prices["tag"]) <= {"cost", "penalty", "disposal"}
    assert (result.tables["capacity_values"]["utilisation"] <= 1 + TOL).all()


def test_list_scenarios_names_each_with_its_parent_and_description(capsys):
    assert main(["list-scenarios", str(BASE)]) == 0
    out = capsys.readouterr().out.splitlines()
    scen = pd.read_excel(BASE, sheet_name="scenarios")
    assert out[0].startswith(f"{BASE}: {len(scen)} scenarios")
    assert len(out) == 1 + len(scen)
    monthly = next(ln for ln in out if ln.strip().startswith("apr2025_monthly "))
    assert "(child of apr2025_licensing)" in monthly and "split into April, May and June" in monthly


def test_run_writes_under_outputs_of_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["-q", "run", str(EXAMPLE), "--no-explain"]) == 0
    (folder,) = (tmp_path / "outputs").iterdir()
    assert (folder / "report.xlsx").exists()


def test_a_single_run_says_each_step_and_its_time_on_standard_error(tmp_path, capsys):
    assert main(["run", str(EXAMPLE), "--scenario", "vault_60_days", "--out", str(tmp_path)]) == 0
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("run: ")]
    assert err[0] == "run: solving example.xlsx, scenario vault_60_days ..."
    assert any("took" in ln and "solving base case to compare ..." in ln for ln in err)
    assert err[-1].startswith("run: writing the report took ") and err[-1].endswith(" s in all")
