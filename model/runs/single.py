"""`run.py run` on one case or scenario: solve it, set it against its reference runs (its
parent scenario, or the one `--against` names, and the base case), rank what limits each
shortfall, and write the run folder, run.log included. The run's story is logged as it
goes; a plan that is not optimal writes nothing."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd

from model.case.schema import InputError, Problem
from model.case.workbook import did_you_mean
from model.logs import recording
from model.reports.aside import PngsAside
from model.reports.charts import Figure, solve_figures
from model.runs.pipeline import RunResult, return_memory, run_case

LOG = logging.getLogger(__name__)
BASE = "base case"


def references(case, scenario: str | None, against: str | None) -> list[str | None]:
    """The runs a scenario is compared with: `against` (else its parent, if it has one),
    then the base case (None); none for the base case itself."""
    if not scenario:
        if against:
            raise InputError([Problem(Path(case.path).name, "", None, "--against", against, "a scenario to run",
                                      "--against needs --scenario (the base case is compared with nothing)")])
        return []
    scen = case.tables["scenarios"]
    parents = dict(zip(scen["scenario"], scen["parent"].fillna("")))
    if against and against != BASE and against not in parents:
        raise InputError([Problem(Path(case.path).name, "scenarios", None, "scenario", against,
                                  "a scenario of the workbook or 'base case'",
                                  "unknown --against scenario" + did_you_mean(against, list(parents)))])
    first = against if against else (parents.get(scenario) or None)
    first = None if first == BASE else first
    return [first, None] if first else [None]


class Progress:
    """A line per step on standard error, with the time the step before took (on a
    terminal one line rewritten in place; run.log keeps every line)."""

    def __init__(self) -> None:
        self.t0 = self.t = time.perf_counter()
        self.last: str | None = None

    def step(self, label: str) -> None:
        now = time.perf_counter()
        done = f"{self.last} took {now - self.t:.1f} s; " if self.last else ""
        LOG.info(f"run: {done}{label} ...", extra={"progress": True})
        self.t, self.last = now, label

    def done(self) -> None:
        now = time.perf_counter()
        LOG.info(f"run: {self.last} took {now - self.t:.1f} s; {now - self.t0:.1f} s in all",
                 extra={"progress": True})


def run_and_report(path: str, scenario: str | None = None, out: str | Path = "outputs", *,
                   compare: bool = True, explain: bool = True, against: str | None = None,
                   aside: PngsAside | None = None) -> tuple[RunResult, Path | None]:
    """(the run, its folder or None when it is not optimal). Raises InputError, listing
    every problem, before anything is solved or written. aside: a started helper process
    that draws the PNG charts (model.reports.aside; the command line starts one), else
    they are drawn here."""
    with recording() as record:
        progress = Progress()
        progress.step(f"solving {Path(path).name}" + (f", scenario {scenario}" if scenario else ""))
        # The figures read the solve's tables only: the helper draws them while the rest of
        # the tables are made and the references and explanations solved.
        first: list[Figure] = []

        def send_first(tables: dict[str, pd.DataFrame]) -> None:
            first.extend(solve_figures(tables))
            aside.send(first)
        result = run_case(path, scenario, keep=explain, first=send_first if aside is not None else None)
        # imported once the helper has the figures (its drawing is what a run waits for
        # last): the report's files, comparisons, explanations and the console's summary
        from model.analysis.compare import policy_value, price_changes, versus
        from model.reports.console import policy_lines, say, show_summary, versus_lines
        from model.reports.files import ReportPrep, write_run
        from model.runs.explain import conflict_lines, diagnose_infeasible, explain_shortfalls
        prep = ReportPrep(result.tables, aside, first or None) if result.optimal else None
        comparisons: dict[str, pd.DataFrame] = {}
        if result.optimal and compare:
            for ref in references(result.case, scenario, against):
                progress.step(f"solving {ref or BASE} to compare")
                other = run_case(path, ref)
                if other.optimal:
                    name = BASE if ref is None else ref
                    table = versus(other.tables, result.tables, name)
                    comparisons[name] = table
                    result.tables["versus_base" if ref is None else "versus_reference"] = table
                    if "policy_value" not in result.tables:  # against the first reference: parent or --against
                        result.tables["policy_value"] = policy_value(other.tables, result.tables, name)
                        result.tables["price_changes"] = price_changes(other.tables, result.tables, name)
                else:
                    LOG.warning(f"no comparison with {ref or BASE}: its solve was not optimal ({other.solve.message})")
                other.solve.release()
        if result.optimal and explain and not result.tables["shortfall"].empty:
            progress.step("ranking what limits each shortfall (re-solves)")
            result.tables["explanations"] = explain_shortfalls(result)
        result.kept = None  # the explanations were the last to re-solve it
        result.solve.release()
        return_memory(result.solve.stats.get("columns"))  # before the reports: they need none of it
        if not result.optimal:
            show_summary(result, None)
            LOG.error("no report was written: a plan that is not optimal is not an answer.")
            if result.solve.status.startswith("infeasible"):
                lines = conflict_lines(diagnose_infeasible(result.case))
                if lines:
                    LOG.error("\n".join(lines))
            return result, None

        def closing(final: Path) -> str:
            show_summary(result, final)
            if "policy_value" in result.tables:
                say(policy_lines(result.tables["policy_value"], result.tables["price_changes"]))
            for table in comparisons.values():
                say(versus_lines(table))
            return record.text()
        progress.step("writing the report")
        folder = write_run(result, out, log=closing, prep=prep, aside=aside)
        progress.done()
        return result, folder
