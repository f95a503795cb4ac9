"""Nothing silently wrong, nothing lost: numbers read one way (no misreads), the same
rules after scenario changes, a model the solver refuses never called optimal, run
folders that two same-second runs cannot share, unfinished folders of killed runs
cleaned up or reported."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import highspy
import numpy as np
import openpyxl
import pytest

from conftest import ROOT
from model.case.casewriter import write_case
from model.case.schema import InputError
from model.cli import main
from model.lp.highs import pass_model, quiet_highs
from model.lp.solve import run_highs
from model.reports.files import OWNER, claim_name, new_run_dir, write_run
from model.runs.pipeline import load_case, run_case
from test_validation import SETTINGS, valid_sheets

EXAMPLE = ROOT / "inputs" / "example.xlsx"


def problems_of(path: Path, scenario: str | None = None) -> list:
    with pytest.raises(InputError) as err:
        load_case(str(path), scenario)
    return err.value.problems


def one(problems: list, sheet: str, row: int, column: str):
    hits = [p for p in problems if (p.sheet, p.row, p.column) == (sheet, row, column)]
    assert len(hits) == 1, [str(p) for p in problems]
    return hits[0]


# --------------------------------------------------------------------------- numbers

@pytest.mark.parametrize("text, words", [
    ("3,5", "a comma in a number"), ("1,000", "a comma in a number"), ("1_000", "not a number"),
    ("\u0663", "not a number"), ("\uff13", "not a number"), ("nan", "not a number"), ("inf", "not a number"),
    ("0x1A", "not a number"), ("1e", "not a number"), ("2e15", "beyond what the solver accepts"),
])
def test_a_number_typed_as_text_is_read_one_way_or_named(tmp_path, text, words):
    sheets = valid_sheets()
    sheets["facilities"][0]["capacity_t_per_yr"] = text
    sheets["demand"][0]["quantity_t_per_yr"] = "12,5"  # a second problem: both are reported
    path = write_case(tmp_path / "c.xlsx", sheets, SETTINGS)
    problems = problems_of(path)
    p = one(problems, "facilities", 2, "capacity_t_per_yr")
    assert words in p.message and p.value == text
    assert "a comma in a number" in one(problems, "demand", 2, "quantity_t_per_yr").message


def test_a_number_beyond_the_solvers_limit_is_named_at_its_cell(tmp_path):
    sheets = valid_sheets()
    sheets["recipes"][2]["coefficient"] = 1e15
    p = one(problems_of(write_case(tmp_path / "c.xlsx", sheets, SETTINGS)), "recipes", 4, "coefficient")
    assert p.message == "beyond what the solver accepts (magnitude below 1e15)"


@pytest.mark.parametrize("op, value, words", [
    ("scale", "nan", "not a number"), ("scale", "inf", "not a number"), ("set", "nan", "not a number"),
    ("add", "1e300", "beyond what the solver accepts"), ("scale", "1e14", "scale gives 1e+16: beyond"),
    ("scale", "-1", "scale gives -100: out of range"),
    ("scale", "2,5", "a comma in a number"),
])
def test_scenario_numbers_follow_the_same_rules_as_cells(tmp_path, op, value, words):
    sheets = valid_sheets()
    sheets["scenario_changes"][0].update(op=op, value=value)
    path = write_case(tmp_path / "c.xlsx", sheets, SETTINGS)
    p = one(problems_of(path, "high_demand"), "scenario_changes", 2, "value")
    assert words in p.message and "scenario 'high_demand'" in p.message


def test_a_setting_made_nan_by_a_scenario_is_an_error_not_a_traceback(tmp_path, capsys):
    sheets = valid_sheets()
    sheets["scenario_changes"].append({"scenario": "high_demand", "sheet": "settings", "filter": "key=discount_rate",
                                       "column": "value", "op": "scale", "value": "nan"})
    path = write_case(tmp_path / "c.xlsx", sheets, SETTINGS)
    assert main(["run", str(path), "--scenario", "high_demand", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "sheet 'scenario_changes', row 3, column 'value'" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_validate_without_a_scenario_checks_every_scenario(tmp_path, capsys):
    sheets = valid_sheets()
    sheets["scenario_changes"][0].update(value="nan")
    path = write_case(tmp_path / "c.xlsx", sheets, SETTINGS)
    assert main(["validate", str(path)]) == 2
    assert "sheet 'scenario_changes', row 2, column 'value'" in capsys.readouterr().err
    assert main(["validate", str(EXAMPLE)]) == 0
    assert "all 15 scenarios apply cleanly" in capsys.readouterr().out


def _rewrite(path: Path, member: str, change) -> None:
    """Rewrite one part of an .xlsx (a zip) through change(text) -> text."""
    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    parts[member] = change(parts[member].decode()).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for n, data in parts.items():
            z.writestr(n, data)


def _sheet_part(path: Path, sheet: str) -> str:
    wb = openpyxl.load_workbook(path)
    index = wb.sheetnames.index(sheet) + 1
    return f"xl/worksheets/sheet{index}.xml"


@pytest.mark.parametrize("stored", ["NaN", "INF", "1e", "0x1A"])
def test_a_numeric_cell_whose_stored_value_is_not_a_number_is_that_cells_problem(tmp_path, stored):
    sheets = valid_sheets()
    sheets["facilities"][1]["capacity_t_per_yr"] = 4321
    sheets["demand"][0]["quantity_t_per_yr"] = -5  # another problem, reported with it
    path = write_case(tmp_path / "c.xlsx", sheets, SETTINGS)
    _rewrite(path, _sheet_part(path, "facilities"), lambda x: x.replace("<v>4321</v>", f"<v>{stored}</v>"))
    problems = problems_of(path)
    p = one(problems, "facilities", 3, "capacity_t_per_yr")
    assert p.value == stored and "number" in p.message
    one(problems, "demand", 2, "quantity_t_per_yr")


def test_a_stale_sheet_dimension_does_not_cut_rows(tmp_path):
    sheets = valid_sheets()
    sheets["demand"] += [{"country": "JPN", "product": "Nd_ox", "period": p, "quantity_t_per_yr": 7,
                          "shortfall_penalty_usd_per_t": 1e5} for p in ("2025", "2026")]
    path = write_case(tmp_path / "c.xlsx", sheets, SETTINGS)
    _rewrite(path, _sheet_part(path, "demand"), lambda x: re.sub(r'<dimension ref="[^"]+"/>',
                                                                '<dimension ref="A1:E2"/>', x))
    case = load_case(str(path))
    assert list(case.tables["demand"]["quantity_t_per_yr"]) == [100, 7, 7]


def test_an_excel_error_value_in_a_text_column_is_named(tmp_path):
    sheets = valid_sheets()
    sheets["facilities"][0]["country"] = "#DIV/0!"
    path = write_case(tmp_path / "c.xlsx", sheets, SETTINGS)
    p = one(problems_of(path), "facilities", 2, "country")
    assert p.message.startswith("an Excel error value (#DIV/0!)")


# --------------------------------------------------------------------------- solver status

def _tiny_lp(coefficient: float) -> highspy.HighsLp:
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = 1, 1
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = np.array([1.0]), np.array([0.0]), np.array([10.0])
    lp.row_lower_, lp.row_upper_ = np.array([1.0]), np.array([np.inf])
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_ = np.array([0, 1], np.int32), np.array([0], np.int32)
    lp.a_matrix_.value_ = np.array([coefficient])
    return lp


def test_a_model_the_solver_refuses_is_an_error_naming_the_coefficient_never_optimal():
    h = quiet_highs()
    refused = pass_model(h, _tiny_lp(3e15))
    assert refused == ("the solver refused the model: a constraint coefficient of 3e+15 "
                       "(HiGHS takes magnitudes below 1e15)")
    sol = run_highs(h, [object()], [object()], {"refused": refused})
    assert sol.status == "error" and not sol.optimal and sol.message == refused
    ok = quiet_highs()
    assert pass_model(ok, _tiny_lp(2.0)) is None
    sol = run_highs(ok, [object()], [object()], {}, {"canonical_plan": False})
    assert sol.optimal and sol.objective == pytest.approx(0.5, abs=1e-12)


def test_cases_asking_for_different_thread_counts_solve_one_after_another(tmp_path):
    """HiGHS keeps one thread scheduler per process and refuses a solve asking for another
    count: each case's solver_threads is honoured in turn (the scheduler restarted)."""
    sheets = valid_sheets()
    costs = []
    for threads in (2, 1, 2):
        path = write_case(tmp_path / f"t{len(costs)}.xlsx", sheets, dict(SETTINGS, solver_threads=threads))
        r = run_case(str(path))
        assert r.optimal, r.solve.message
        costs.append(r.solve.objective)
    assert costs[0] == costs[1] == costs[2]


def test_a_case_where_no_facility_runs_is_all_shortfall_and_reports(tmp_path):
    """Every capacity zero: nothing can be made, so the 100 t of Nd oxide demand goes
    unserved at its 100,000 USD/t penalty in 2025 (the base year, weight 1): 1e7 USD."""
    sheets = valid_sheets()
    for f in sheets["facilities"]:
        f["capacity_t_per_yr"] = 0
    path = write_case(tmp_path / "c.xlsx", sheets, SETTINGS)
    r = run_case(str(path))
    assert r.optimal and r.solve.objective == pytest.approx(1e7, rel=1e-12)
    assert r.tables["production"].empty or r.tables["production"]["activity_t_per_yr"].abs().sum() == 0
    short = r.tables["shortfall"]
    assert list(short["unserved_t"]) == [pytest.approx(100.0)] and list(short["unserved_share"]) == [1.0]
    assert main(["-q", "run", str(path), "--out", str(tmp_path / "out")]) == 0


def test_badly_scaled_rows_are_warned_of_by_name(tmp_path, caplog):
    sheets = valid_sheets()
    sheets["recipes"][3]["coefficient"] = 1e-10  # La oxide per t of concentrate: a unit slip
    path = write_case(tmp_path / "c.xlsx", sheets, SETTINGS)
    with caplog.at_level("WARNING"):
        assert run_case(str(path)).optimal
    assert ("2 constraint row(s) badly scaled (coefficients spanning more than 1e9; results may be inaccurate, "
            "often a unit slip in a cell): product_balance of La_ox in CHN, 2025 (1e-10 to 1), "
            "product_balance of La_ox in CHN, 2026 (1e-10 to 1)") in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert run_case(str(EXAMPLE)).optimal
    assert "badly scaled" not in caplog.text


# --------------------------------------------------------------------------- run folders

def test_two_runs_in_the_same_second_never_share_a_folder(tmp_path, monkeypatch):
    result = run_case(str(EXAMPLE))
    import model.reports.files as files

    class Frozen:
        @staticmethod
        def now(tz=None):
            import datetime as dt
            return dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=tz)
    monkeypatch.setattr(files, "datetime", Frozen)
    first = write_run(result, tmp_path)
    # A second run chose the same name before the first claimed it: it takes the next one.
    tmp, final = new_run_dir(tmp_path, "example", None)
    assert final == first
    assert claim_name(final) == first.with_name(first.name + "_2")
    second = write_run(result, tmp_path)
    assert first.name == "20260102-030405_example" and second.name == "20260102-030405_example_3"
    for f in (first, second):
        assert (f / "manifest.json").exists() and not (f / OWNER).exists()


def test_unfinished_folders_of_killed_runs_are_removed_or_reported(tmp_path, caplog):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = tmp_path / ".tmp_20260101-000000_example_abc"
    left.mkdir()
    (left / OWNER).write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename, "started": "x"}))
    unknown = tmp_path / ".tmp_20250101-000000_example_def"
    unknown.mkdir()
    os.utime(unknown, (0, 0))
    live = tmp_path / ".tmp_20260101-000000_example_ghi"
    live.mkdir()
    (live / OWNER).write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename}))
    with caplog.at_level("WARNING"):
        new_run_dir(tmp_path, "example", None)
    assert not left.exists() and unknown.exists() and live.exists()
    said = caplog.text
    assert f"removed {left}" in said and f"{unknown} is an unfinished run folder" in said and str(live) not in said


# --------------------------------------------------------------------------- files and faults

def test_csv_cells_that_would_run_as_formulas_are_written_as_text(tmp_path):
    import pandas as pd
    from model.reports.files import write_csv
    df = pd.DataFrame({"code": ["=HYPERLINK(\"x\")", "+1", "-A", "@SUM(A1)", "\tx", "CHN"], "t": [-1.5, 2, 3, 4, 5, 6]})
    write_csv(df, tmp_path / "x.csv")
    back = pd.read_csv(tmp_path / "x.csv", keep_default_na=False)
    assert list(back["code"]) == ["'=HYPERLINK(\"x\")", "'+1", "'-A", "'@SUM(A1)", "'\tx", "CHN"]
    assert list(back["t"]) == [-1.5, 2, 3, 4, 5, 6]  # numbers untouched


def test_a_scenario_named_like_a_formula_reaches_the_comparison_csv_as_text(tmp_path):
    sheets = valid_sheets()
    sheets["scenarios"] = [{"scenario": "+risk", "description": "a formula-like name"}]
    sheets["scenario_changes"][0]["scenario"] = "+risk"
    path = write_case(tmp_path / "c.xlsx", sheets, SETTINGS)
    assert main(["-q", "run", str(path), "--all-scenarios", "--workers", "1", "--out", str(tmp_path / "out")]) == 0
    text = next((tmp_path / "out").iterdir()).joinpath("comparison.csv").read_text()
    assert "\n'+risk," in text and "\n+risk," not in text


@pytest.mark.parametrize("content, words", [
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "it is encrypted (password-protected) or an old .xls file"),
    (b"country,product\nCHN,Nd_ox\n", "it is not a zip package (a CSV or another file renamed .xlsx?)"),
])
def test_an_encrypted_workbook_and_a_renamed_csv_are_told_apart(tmp_path, content, words):
    path = tmp_path / "c.xlsx"
    path.write_bytes(content)
    (p,) = problems_of(path)
    assert p.message == "cannot be read as an .xlsx workbook: " + words + (
        "; save it from Excel without a password as .xlsx" if "encrypted" in words else "")


def test_workbook_size_limits_are_checked_before_parsing_and_can_be_raised(tmp_path, monkeypatch):
    path = write_case(tmp_path / "c.xlsx", valid_sheets(), SETTINGS)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as z:  # 3 MB unpacked, a few kB packed
        z.writestr("xl/media/padding.bin", b"\0" * 3_000_000)
    assert path.stat().st_size < 100_000
    monkeypatch.setenv("RARE_EARTH_MAX_UNPACKED_MB", "2")
    (p,) = problems_of(path)
    assert p.message.startswith("unpacks to 3 MB, more than the 2 MB limit") and "RARE_EARTH_MAX_UNPACKED_MB" in p.message
    monkeypatch.setenv("RARE_EARTH_MAX_UNPACKED_MB", "10")
    assert load_case(str(path)).tables["facilities"].shape[0] == 2
    monkeypatch.setenv("RARE_EARTH_MAX_ROWS", "3")  # recipes has 4 data rows
    (p,) = problems_of(path)
    assert (p.sheet, p.message) == ("recipes", "more than 3 rows (set RARE_EARTH_MAX_ROWS to raise the limit)")
    monkeypatch.delenv("RARE_EARTH_MAX_ROWS")
    monkeypatch.setenv("RARE_EARTH_MAX_CELLS", "40")  # settings, periods and countries fill 37 cells
    (p,) = problems_of(path)
    assert p.message == "the workbook has more than 40 cells (set RARE_EARTH_MAX_CELLS to raise the limit)"


def test_an_output_folder_that_is_a_file_stops_before_the_solve(tmp_path, capsys):
    out = tmp_path / "a_file"
    out.write_text("x")
    assert main(["run", str(EXAMPLE), "--out", str(out)]) == 4
    err = capsys.readouterr().err
    assert f"cannot use {out}: a path that must be a folder is a file: --out must name a folder" in err
    assert "Traceback" not in err and out.read_text() == "x"


@pytest.mark.parametrize("code, words", [
    (13, "permission denied: choose a folder you can write to (--out) or ask for access"),
    (30, "the file system is read-only: choose another folder (--out)"),
    (28, "no space (or no free inodes) left on that disk: free some or choose another folder (--out)"),
])
def test_a_read_only_or_full_output_folder_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch, code, words):
    import pandas as pd
    real = pd.DataFrame.to_csv

    def failing(self, path=None, *a, **k):
        if str(path).endswith("costs.csv"):
            raise OSError(code, os.strerror(code), str(path))
        return real(self, path, *a, **k)
    monkeypatch.setattr(pd.DataFrame, "to_csv", failing)
    out = tmp_path / "out"
    assert main(["run", str(EXAMPLE), "--no-explain", "--out", str(out)]) == 4
    err = capsys.readouterr().err
    assert f"cannot use {out}" in err and words in err and "Traceback" not in err
    assert list(out.iterdir()) == []  # no run folder, no temporary folder


def test_ctrl_c_during_a_run_says_so_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    import model.runs.single as single

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(single, "run_case", interrupted)
    assert main(["run", str(EXAMPLE), "--out", str(tmp_path)]) == 130
    assert "interrupted: nothing more was written" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_long_scenario_name_makes_a_folder_name_the_file_system_takes(tmp_path):
    from model.reports.files import slug
    long = "a" * 300
    s = slug(long)
    assert len(s) == 60 and s.startswith("a" * 51 + "-") and slug("a" * 299 + "b") != s
    tmp, final = new_run_dir(tmp_path, long, long)
    assert claim_name(final).exists() and len(final.name) < 255


@pytest.mark.parametrize("spec, words", [
    (None, "is a folder, not a sweep spec file"),
    (b"\xff\xfe bad", "not UTF-8 text"),
    (b"workbook: 5\nsamples: 2\nseed: 1\nparameters:\n  - {sheet: demand, column: quantity_t_per_yr, op: scale, "
     b"uniform: {low: 1, high: 2}}\n", "workbook is not text"),
    (b"parameters:\n" + b"".join(b"  - {name: p%d, sheet: demand, column: quantity_t_per_yr, op: scale, "
                                  b"values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}\n" % i for i in range(6)),
     "the grid of value lists has 1,000,000 samples, more than the limit"),
])
def test_sweep_specs_that_cannot_run_are_named(tmp_path, capsys, spec, words):
    path = tmp_path / "spec.yaml"
    if spec is None:
        path.mkdir()
    else:
        path.write_bytes(spec)
    assert main(["sweep", str(path), "--workbook", str(EXAMPLE), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


# --------------------------------------------------------------------------- killed batches

def _children(pid: int) -> set[int]:
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.add(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start_batch(out: Path) -> tuple[subprocess.Popen, Path, set[int]]:
    """A 16-scenario batch on two workers, once two scenarios are done: (process, its
    temporary folder, its worker processes)."""
    import time
    proc = subprocess.Popen([sys.executable, "run.py", "-q", "run", str(EXAMPLE), "--all-scenarios", "--workers", "2",
                             "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline:
        tmps = list(out.glob(".tmp_*_batch_*"))
        done = [d for d in tmps[0].iterdir() if d.is_dir() and not d.name.startswith(".")] if tmps else []
        if len(done) >= 2:
            return proc, tmps[0], _children(proc.pid)
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the batch did not finish two scenarios in time")


def test_sigterm_to_a_batch_keeps_its_finished_scenarios_and_leaves_no_process(tmp_path):
    import signal
    import time
    proc, tmp, workers = _start_batch(tmp_path)
    assert len(workers) == 2
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    (folder,) = [d for d in tmp_path.iterdir()]
    assert not folder.name.startswith(".tmp") and not tmp.exists()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    kept = [s for s in manifest["scenarios"] if s["folder"]]
    assert len(kept) >= 2 and len(manifest["not_finished"]) >= 1
    assert len(kept) + len(manifest["not_finished"]) + len(manifest["failed"]) == 16
    for s in kept:  # every finished scenario is whole
        assert json.loads((folder / s["folder"] / "manifest.json").read_text())["status"] == "optimal"
    assert sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name != "charts") == sorted(
        s["folder"] for s in kept)
    time.sleep(0.5)
    assert [w for w in workers if _alive(w)] == []


def test_a_batch_killed_outright_takes_its_workers_with_it_and_the_next_run_cleans_up(tmp_path):
    import signal
    import time
    proc, tmp, workers = _start_batch(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    deadline = time.time() + 10
    while time.time() < deadline and [w for w in workers if _alive(w)]:
        time.sleep(0.1)
    assert [w for w in workers if _alive(w)] == []  # none computing on, orphaned
    assert tmp.exists()  # nothing could tidy up after SIGKILL...
    new_run_dir(tmp_path, "example", None)
    assert not tmp.exists()  # ...but the next run does
