"""What a run says: the compact story on the console, -q and -v, run.log in every run
folder (the same lines plus timings, the solver's log and warnings), the console script
and --version."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import warnings
from importlib import metadata

import pytest

from conftest import ROOT
from model import __version__
from model.cli import main
from model.logs import recording

EXAMPLE = ROOT / "inputs" / "example.xlsx"


def only_folder(out):
    folders = [p for p in out.iterdir() if p.is_dir()]
    assert len(folders) == 1
    return folders[0]


def test_run_log_holds_the_story_the_timings_and_the_solver_log(tmp_path, capsys):
    assert main(["run", str(EXAMPLE), "--scenario", "high_demand", "--no-explain", "--out", str(tmp_path)]) == 0
    said = capsys.readouterr().out
    log = (only_folder(tmp_path) / "run.log").read_text()
    for line in ("status: optimal: the least-cost plan was found", "resource cost (present value):",
                 "against the base case:", f"report: {only_folder(tmp_path)}"):
        assert line in said and line in log
    # The record has what the console leaves out: each step's seconds, the model's size,
    # HiGHS's own log of the main solve (two: the scenario and the base it is set against).
    assert log.count("HiGHS log of the solve:") == 2 and "Model status        : Optimal" in log
    assert "DEBUG   model.runs.pipeline: seconds: model_data" in log and " rows, " in log
    assert "INFO    model.reports.console: case: example  scenario: high_demand" in log
    assert "HiGHS log" not in said and "seconds:" not in said


def test_quiet_says_nothing_but_still_records_and_verbose_says_everything(tmp_path, capsys):
    assert main(["-q", "run", str(EXAMPLE), "--no-explain", "--out", str(tmp_path / "q")]) == 0
    quiet = capsys.readouterr()
    assert quiet.out == "" and quiet.err == ""
    assert "status: optimal" in (only_folder(tmp_path / "q") / "run.log").read_text()
    assert main(["run", str(EXAMPLE), "-v", "--out", str(tmp_path / "v")]) == 0
    loud = capsys.readouterr().out
    assert "status: optimal" in loud and "seconds: model_data" in loud and "HiGHS log of the solve:" in loud


def test_errors_go_to_stderr_even_when_quiet(tmp_path, capsys):
    assert main(["-q", "run", str(EXAMPLE), "--scenario", "no_such", "--out", str(tmp_path)]) == 2
    said = capsys.readouterr()
    assert said.out == "" and "unknown scenario" in said.err and "nothing was written." in said.err
    assert list(tmp_path.iterdir()) == []


def test_a_batch_folder_and_each_scenario_folder_get_their_run_log(tmp_path, capsys):
    assert main(["run", str(EXAMPLE), "--scenarios", "high_demand", "--workers", "1",
                 "--out", str(tmp_path)]) == 0
    said = capsys.readouterr()
    batch = only_folder(tmp_path)
    log = (batch / "run.log").read_text()
    assert "batch: 2 run, 0 failed, 0 not finished" in said.out and "batch: 2 run, 0 failed" in log
    assert "batch: 2/2 done" in said.err and "batch: 2/2 done" in log  # progress: stderr and the record
    for sub in ("base_case", "high_demand"):
        sub_log = (batch / sub / "run.log").read_text()
        assert "HiGHS log of the solve:" in sub_log and "seconds: " in sub_log


def test_python_warnings_are_recorded():
    with recording() as record:
        warnings.warn("a planner should see this", UserWarning)
        logging.getLogger("model.test").debug("a debug line")
    assert "WARNING py.warnings:" in record.text() and "a planner should see this" in record.text()
    assert "DEBUG   model.test: a debug line" in record.text()
    assert not logging.getLogger().handlers or all(type(h).__name__ != "RunLog" for h in logging.getLogger().handlers)


def test_a_fresh_process_prints_no_solver_banner_when_quiet(tmp_path):
    proc = subprocess.run([sys.executable, "run.py", "-q", "run", str(EXAMPLE), "--no-explain", "--out",
                           str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""  # highspy 1.16 prints a banner on its first Highs()
    assert "HiGHS log of the solve:" in (only_folder(tmp_path) / "run.log").read_text()  # kept, in the record


def test_console_script_and_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"rare-earth {__version__} ") and f"highspy {metadata.version('highspy')}" in text
    assert metadata.version("rare-earth-model") == __version__  # pyproject reads model.__version__
    script = shutil.which("rare-earth")
    assert script is not None, "pip install -e . puts the rare-earth command on PATH"
    proc = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == text.strip()
