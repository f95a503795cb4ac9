"""The steps of a run, kept apart: read -> validate -> apply scenario -> model data ->
build -> solve -> extract tables. Reporting (model.report) reads the tables only."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pandas as pd

from model.build import build_model
from model.data import build_model_data
from model.results import extract_tables
from model.scenario import apply_scenario
from model.schema import InputError
from model.solve import SolveResult, solve_model
from model.validate import validate_case
from model.workbook import Case, read_case


@dataclass
class RunResult:
    case: Case
    scenario: str | None
    solve: SolveResult
    tables: dict[str, pd.DataFrame]
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def optimal(self) -> bool:
        return self.solve.optimal


def load_case(path: str, scenario: str | None = None) -> Case:
    """Read, validate and apply a scenario; raises InputError listing every problem."""
    case = validate_case(read_case(path))
    if scenario:
        case = apply_scenario(case, scenario)
        try:
            validate_case(case)
        except InputError as exc:  # the base case was clean: the scenario made these
            for p in exc.problems:
                p.message += f" (after applying scenario '{scenario}')"
            raise
    return case


def solve_case(case: Case, scenario: str | None = None) -> RunResult:
    """Build, solve and extract; tables are empty unless the solve is optimal."""
    t0 = time.perf_counter()
    data = build_model_data(case)
    t1 = time.perf_counter()
    built = build_model(data)
    t2 = time.perf_counter()
    sol = solve_model(built.model, case.settings)
    t3 = time.perf_counter()
    tables = extract_tables(built, sol) if sol.optimal else {}
    t4 = time.perf_counter()
    secs = {"model_data_s": t1 - t0, "build_s": t2 - t1, "handoff_solve_s": t3 - t2,
            "extract_s": t4 - t3}
    secs.update({k: v for k, v in sol.stats.items() if k.endswith("_s")})
    return RunResult(case, scenario, sol, tables, secs)


def run_case(path: str, scenario: str | None = None) -> RunResult:
    t0 = time.perf_counter()
    case = load_case(path, scenario)
    t1 = time.perf_counter()
    res = solve_case(case, scenario)
    res.seconds["read_validate_s"] = t1 - t0
    return res
