"""The steps of a run, kept apart: read -> validate -> apply scenario -> model data ->
build -> solve -> extract tables. Reporting (model.reports.files) reads the tables only.
Each step's time is logged (DEBUG: run.log and -v)."""

from __future__ import annotations

import ctypes
import gc
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
from pyomo.common.gc_manager import PauseGC

from model.analysis.results import extract_tables
from model.case.scenario import apply_scenario
from model.case.schema import InputError
from model.case.validate import validate_case
from model.case.workbook import Case, read_case
from model.lp.build import build_model
from model.lp.data import build_model_data
from model.lp.solve import SolveResult, run_highs, to_highs

LOG = logging.getLogger(__name__)


@dataclass
class RunResult:
    case: Case
    scenario: str | None
    solve: SolveResult
    tables: dict[str, pd.DataFrame]
    seconds: dict[str, float] = field(default_factory=dict)
    log: str = ""  # what the run said (run.log), when it was recorded away from the client
    # (built, highs, columns, rows, stats) when the run was asked to keep its model (a
    # single run's explanations re-solve it); never sent between processes
    kept: tuple | None = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict:
        return dict(self.__dict__, kept=None)

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


def scenario_problems(case: Case) -> list:
    """Every problem any scenario of a valid case makes (each applied and validated on
    its own), so `validate` without --scenario checks the scenario rows too."""
    problems = []
    for name in case.tables["scenarios"]["scenario"]:
        try:
            validate_case(apply_scenario(case, name))
        except InputError as exc:
            for p in exc.problems:
                if "(after applying scenario" not in p.message and "scenario '" not in p.message:
                    p.message += f" (after applying scenario '{name}')"
                if p not in problems:
                    problems.append(p)
    return problems


# Below this many columns a released model holds a few MB: a full collection (0.05-0.1 s
# over the imported modules' objects alone) costs more than the memory is worth.
RETURN_MEMORY_MIN_COLUMNS = 50_000


def return_memory(columns: int | None = None) -> None:
    """Collect what was released (the model's objects refer to each other, so only a
    collection frees them) and hand the freed heap back to the system: glibc keeps freed
    blocks for reuse, but the reports' Python objects live in arenas of their own, so at
    600 k columns the reports otherwise stacked about 200 MB on top of the model's 500 MB
    still held (glibc's malloc_trim, on Linux). columns: the released model's; a small
    one is left to the collector's own pace (RETURN_MEMORY_MIN_COLUMNS)."""
    if columns is not None and columns < RETURN_MEMORY_MIN_COLUMNS:
        return
    gc.collect()
    if sys.platform.startswith("linux"):  # glibc's call; elsewhere (macOS, Windows) the collection is all
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (AttributeError, OSError):  # another C library (musl)
            pass


def build_and_load(data, settings: dict):
    """Build the model and load it into HiGHS: (built, highs, columns, rows, stats).

    Building makes millions of small objects that live as long as the model, so the
    cyclic garbage collector is paused meanwhile and they are then frozen out of its
    sight (the caller calls gc.unfreeze() when the run is over): at 600 k columns this
    saved about 2 s of build and hand-off (benchmarks/README.md)."""
    with PauseGC():
        t0 = time.perf_counter()
        built = build_model(data)
        t1 = time.perf_counter()
        h, cols, rows, stats = to_highs(built.model, settings)
    gc.freeze()
    stats["build_s"] = t1 - t0
    return built, h, cols, rows, stats


def solve_case(case: Case, scenario: str | None = None, keep: bool = False,
               classes: tuple[dict, set] | None = None, first: Callable | None = None) -> RunResult:
    """Build, solve and extract; tables are empty unless the solve is optimal. keep: the
    result holds the solved model (RunResult.kept) for re-solves. classes: origin classes
    to carry beyond the case's own (model.lp.data.build_model_data). first: given the
    first tables while the others are made (model.analysis.results.extract_tables)."""
    t0 = time.perf_counter()
    data = build_model_data(case, classes)
    t1 = time.perf_counter()
    try:
        built, h, cols, rows, stats = build_and_load(data, case.settings)
        handoff = dict(stats)  # run_highs takes some entries out
        sol = run_highs(h, cols, rows, stats, case.settings)
        t3 = time.perf_counter()
        tables = extract_tables(built, sol, first) if sol.optimal else {}
        t4 = time.perf_counter()
    finally:
        gc.unfreeze()
    secs = {"model_data_s": t1 - t0, "extract_s": t4 - t3}
    secs.update({k: v for k, v in sol.stats.items() if k.endswith("_s")})
    log_solve(case, scenario, sol, secs)
    kept = (built, h, cols, rows, handoff) if keep and sol.optimal else None
    return RunResult(case, scenario, sol, tables, secs, kept=kept)


def run_case(path: str, scenario: str | None = None, keep: bool = False, first: Callable | None = None) -> RunResult:
    """Read, validate, apply the scenario (None: the base case), build, solve and extract:
    the Python API's one call. The result's `optimal` says whether it is an answer (its
    `solve.status` and `solve.message` say what happened otherwise); `tables` holds every
    result table as a DataFrame (costs, shortfall, prices, flows, who_pays ...); `case` the
    data it solved. keep=True keeps the built model for re-solves (explanations). first:
    given the first tables while the others are made (solve_case). Raises InputError
    listing every problem of the workbook before anything is solved."""
    t0 = time.perf_counter()
    case = load_case(path, scenario)
    t1 = time.perf_counter()
    LOG.debug("read and validated %s in %.2f s", path, t1 - t0)
    res = solve_case(case, scenario, keep, first=first)
    res.seconds["read_validate_s"] = t1 - t0
    return res


def log_solve(case: Case, scenario: str | None, sol: SolveResult, secs: dict[str, float]) -> None:
    """The model's size, the solver's outcome and each step's time, for run.log."""
    st = sol.stats
    LOG.debug("case %s%s (input sha256 %s): %s rows, %s columns, %s nonzeros", case.name,
              f", scenario {scenario}" if scenario else "", case.input_hash, f"{st.get('rows', 0):,}",
              f"{st.get('columns', 0):,}", f"{st.get('nonzeros', 0):,}")
    LOG.debug("solver: %s after %s simplex iterations; objective %.6f USD; plan reported: %s",
              sol.message, st.get("iterations"), sol.objective, st.get("canonical", "-"))
    LOG.debug("seconds: %s", ", ".join(f"{k[:-2]} {v:.3f}" for k, v in secs.items()))
