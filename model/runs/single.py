"""`run.py run` on one case or scenario: solve it, set it against the base case (for a
scenario), rank what limits each shortfall, and write the run folder, run.log included.
The run's story is logged as it goes; a plan that is not optimal writes nothing."""

from __future__ import annotations

import logging
from pathlib import Path

from model.analysis.compare import versus_base
from model.logs import recording
from model.reports.console import say, show_summary, versus_base_lines
from model.reports.files import write_run
from model.runs.explain import conflict_lines, diagnose_infeasible, explain_shortfalls
from model.runs.pipeline import RunResult, run_case

LOG = logging.getLogger(__name__)


def run_and_report(path: str, scenario: str | None = None, out: str | Path = "outputs", *,
                   compare: bool = True, explain: bool = True) -> tuple[RunResult, Path | None]:
    """(the run, its folder or None when it is not optimal). Raises InputError, listing
    every problem, before anything is solved or written."""
    with recording() as record:
        result = run_case(path, scenario)
        versus = None
        if result.optimal and scenario and compare:
            base = run_case(path)
            if base.optimal:
                versus = versus_base(base.tables, result.tables)
                result.tables["versus_base"] = versus
        if result.optimal and explain and not result.tables["shortfall"].empty:
            result.tables["explanations"] = explain_shortfalls(result)
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
            if versus is not None:
                say(versus_base_lines(versus))
            return record.text()
        return result, write_run(result, out, log=closing)
