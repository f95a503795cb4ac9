"""Batch runs: many scenarios of one case, in a local process pool or on a Dask
cluster, with a comparison table against the base case.

    python run.py run [WORKBOOK] --all-scenarios [--workers N | --scheduler ADDRESS]
    python run.py run [WORKBOOK] --scenarios a,b [--scenario-file FILE]

The base case is always run first, as the baseline of the comparison. Each scenario
is applied and validated in a worker; a scenario whose input is bad or whose solve
is not optimal is reported with its reason and the others go on. Workers keep the
base case's model and re-solve data-only scenarios in place (model.runs.resolve); any
other scenario is rebuilt. Output: one folder `outputs/<timestamp>_<case>_batch/`,
built under a temporary name and renamed when the batch ends (also when it is
interrupted: finished scenarios are kept and `manifest.json` lists the rest as not
finished), holding a sub-folder per solved scenario (written by model.reports.files),
`comparison.xlsx` and `comparison.csv`, and PNG charts of cost and shortfall across
scenarios in `charts/`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from model.case.scenario import apply_scenario
from model.case.schema import InputError, Problem
from model.case.validate import validate_case
from model.case.workbook import Case, file_hash, read_case
from model.logs import is_tty, recording
from model.reports.console import batch_lines, say
from model.reports.files import (claim_name, commit_run_dir, new_run_dir, package_versions, slug, write_csv,
                                 write_comparison_xlsx, write_run)
from model.runs.pipeline import RunResult, solve_case

LOG = logging.getLogger(__name__)
BASELINE = "base case"          # label of the baseline row
BASELINE_FOLDER = "base_case"
KEY_PRICE_PRODUCTS = ("NdPr_ox", "Dy_ox")
NOT_FINISHED = "not_finished"
INPUT_ERROR = "input_error"
ERROR = "error"
# Headline figures that get a vs_base_ delta column in comparison.csv.
HEADLINE = ("objective_usd", "resource_cost_pv_usd", "transfers_pv_usd", "unserved_t",
            "unserved_penalty_pv_usd", "stockpile_buy_t", "stockpile_release_t")


# --------------------------------------------------------------------------- inputs

def read_scenario_file(path: str | Path, base: Case) -> Case:
    """A workbook holding only the scenarios and scenario_changes sheets, validated
    against the base case. Returns the base case with those two sheets replaced and
    its path set to the scenario file, so every problem names that file."""
    from model.case.schema import SHEETS_BY_NAME
    from model.case.workbook import open_workbook, structural, type_sheets
    path = Path(path)
    file = path.name
    cells, uncached = open_workbook(path)
    problems: list[Problem] = []
    for name in cells:
        if name not in ("scenarios", "scenario_changes") and not name.startswith("_"):
            problems.append(Problem(file, name, message="a scenario file holds only the scenarios "
                                    "and scenario_changes sheets", expected="scenarios, scenario_changes"))
    names = ("scenarios", "scenario_changes")
    tables = dict(base.tables)
    # the base's scenario trees name the base's scenarios, which the file replaces; a batch
    # never runs a tree (run --tree takes no scenario file), so they are left out
    if "branches" in tables:
        tables["branches"] = tables["branches"].iloc[0:0]
    tables.update(type_sheets(file, cells, uncached, [SHEETS_BY_NAME[n] for n in names], problems,
                              required=set(names)))
    if structural(problems):
        raise InputError(problems)
    src = Case(str(path), tables, dict(base.settings), file_hash(path), dict(base.settings_rows), problems)
    return validate_case(src)


def load_inputs(workbook: str, scenario_file: str | None = None) -> tuple[Case, Case]:
    """(validated base case, case whose scenario sheets the batch applies)."""
    base = validate_case(read_case(workbook))
    source = read_scenario_file(scenario_file, base) if scenario_file else base
    return base, source


def scenario_names(source: Case) -> list[str]:
    return list(source.tables["scenarios"]["scenario"])


def check_names(source: Case, names: list[str]) -> None:
    """Every requested scenario exists (InputError naming the unknown ones)."""
    from model.case.workbook import unknown_scenario
    known = scenario_names(source)
    bad = [n for n in names if n not in known]
    if bad:
        file = Path(source.path).name
        raise InputError([Problem(file, "scenarios", None, "scenario", n, "a scenario named in the scenarios sheet",
                                  unknown_scenario(n, list(known))) for n in bad])


def with_parents(source: Case, names: list[str]) -> tuple[list[str], list[str]]:
    """`names` with every ancestor not asked for put before its first descendant, so each
    row of the comparison has its parent beside it; and the list of those added."""
    from model.case.scenario import scenario_chain
    out: list[str] = []
    for n in names:
        out += [a for a in scenario_chain(source, n) if a not in out]
    return out, [a for a in out if a not in names]


# --------------------------------------------------------------------------- the job

@dataclass
class BatchJob:
    """What every worker needs: the base case and the scenario source (both small)."""

    token: str
    case: Case                      # validated base case
    source: Case                    # scenario sheets to apply (path: the file they came from)
    resolve: bool = True            # re-solve data-only scenarios on one model per worker
    write_dir: str | None = None    # workers write report sub-folders here (None: the client does)
    reports: bool = True            # write a report sub-folder per solved scenario
    label: str = "scenario"         # how problems call a scenario (scenario, sample)
    charts: bool = True             # PNG charts across scenarios in the batch folder
    resolve_from: str | None = None  # scenario the re-solved model is built from (None: the base case)
    added: tuple[str, ...] = ()      # scenarios run only as a requested one's parent


@dataclass
class Outcome:
    """One scenario's result as the client sees it."""

    scenario: str | None
    status: str
    message: str
    objective: float = float("nan")
    row: dict = field(default_factory=dict)
    mode: str = ""                  # resolve | rebuild
    rebuild_reason: str = ""
    seconds: float = 0.0
    folder: str | None = None
    result: RunResult | None = None  # only when the client writes the report

    @property
    def ok(self) -> bool:
        return self.status == "optimal"

    @property
    def name(self) -> str:
        return BASELINE if self.scenario is None else self.scenario


def scenario_case(job: BatchJob, name: str | None) -> Case:
    """The base case with the scenario (and its ancestors) applied and validated."""
    if name is None:
        return job.case
    applied = apply_scenario(job.source, name)
    applied.path = job.case.path
    applied.input_hash = job.case.input_hash
    try:
        return validate_case(applied)
    except InputError as exc:
        where = "" if job.source is job.case else f" from {Path(job.source.path).name}"
        for p in exc.problems:
            p.message += f" (after applying {job.label} '{name}'{where})"
        raise


_LOCAL = threading.local()


def _resolver(job: BatchJob):
    """This worker's model of the base case (built on first use, one per job)."""
    cache = getattr(_LOCAL, "resolvers", None)
    if cache is None:
        cache = _LOCAL.resolvers = {}
    if job.token not in cache:
        cache.clear()  # one job at a time per worker
        from model.runs.resolve import Resolver
        cache[job.token] = Resolver(scenario_case(job, job.resolve_from))
    return cache[job.token]


def _solve(job: BatchJob, case: Case, name: str | None) -> tuple[RunResult, str, str]:
    """(result, mode, why it was rebuilt)."""
    why = "re-solving is off"
    if job.resolve:
        res = _resolver(job)
        why, data = res.check(case)
        if why is None:
            sol, tables, secs = res.resolve(case, data, lean=not job.reports)
            if sol.optimal:
                return RunResult(case, name, sol, tables, secs), "resolve", ""
            why = f"the re-solve was not optimal ({sol.status}): confirmed by a rebuild"
    return solve_case(case, name), "rebuild", why


def run_scenario(job: BatchJob, name: str | None) -> Outcome:
    """Apply, solve, extract, write (when the job says so): never raises for a bad
    scenario, it reports it. What the scenario says is recorded for its run.log."""
    with recording() as record:
        return _run_scenario(job, name, record)


def _run_scenario(job: BatchJob, name: str | None, record) -> Outcome:
    t0 = time.perf_counter()
    try:
        case = scenario_case(job, name)
    except InputError as exc:
        return Outcome(name, INPUT_ERROR, str(exc), seconds=time.perf_counter() - t0)
    try:
        try:
            result, mode, why = _solve(job, case, name)
        except InputError as exc:  # found while deriving model data (e.g. clashing lane rows)
            return Outcome(name, INPUT_ERROR, str(exc), seconds=time.perf_counter() - t0)
        out = Outcome(name, result.solve.status, result.solve.message, result.solve.objective,
                      comparison_row(result.tables) if result.optimal else {}, mode, why)
        if result.optimal and job.reports:
            result.log = record.text()
            if job.write_dir is not None:
                out.folder = write_scenario(result, Path(job.write_dir))
            else:
                out.result = result
    except Exception as exc:  # a bug or a solver failure must not stop the batch
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        return Outcome(name, ERROR, f"{type(exc).__name__}: {exc} (at {Path(tb.filename).name}:{tb.lineno})",
                       seconds=time.perf_counter() - t0)
    out.seconds = time.perf_counter() - t0
    return out


def write_scenario(result: RunResult, batch_dir: Path) -> str:
    """model.reports.files's run folder inside the batch folder, renamed to the scenario."""
    folder = write_run(result, batch_dir, log=lambda final: result.log)
    want = batch_dir / (BASELINE_FOLDER if result.scenario is None else slug(result.scenario))
    try:
        os.rename(folder, want)  # fails if taken (two names with the same slug): keep the run name
        folder = want
    except OSError:
        pass
    return folder.name


# --------------------------------------------------------------------------- comparison

def _price_means(prices: pd.DataFrame) -> dict[str, float]:
    """Mean over periods of the price of each key product in each country; where origin
    classes split a node, the cheapest class (what one more tonne costs there)."""
    out: dict[str, float] = {}
    p = prices[prices["product"].isin(KEY_PRICE_PRODUCTS)]
    if p.empty:
        return out
    node = p.groupby(["product", "country", "period"])["price_usd_per_t"].min()
    for (prod, country), v in node.groupby(level=[0, 1]).mean().items():
        out[f"price_{prod}_{country}_usd_per_t"] = float(v)
    return out


def comparison_row(tables: dict[str, pd.DataFrame]) -> dict[str, float]:
    """One scenario's figures for the comparison (present values, tonnes over the horizon)."""
    costs = tables["costs"]
    row: dict[str, float] = {}
    by = costs.groupby(["category", "component"])["pv_usd"].sum()
    cat = costs.groupby("category")["pv_usd"].sum()
    row["resource_cost_pv_usd"] = float(cat.get("resource", 0.0))
    if "resource" in by.index.get_level_values(0):
        for comp, v in by.loc["resource"].items():
            row[f"resource_{comp}_pv_usd"] = float(v)
    row["transfers_pv_usd"] = float(cat.get("transfer", 0.0))
    if "transfer" in by.index.get_level_values(0):
        for comp, v in by.loc["transfer"].items():
            row[f"transfer_{comp}_pv_usd"] = float(v)
    for other in sorted(set(cat.index) - {"resource", "transfer", "penalty"}):
        row[f"{other}_pv_usd"] = float(cat[other])
    short = tables["shortfall"]
    row["unserved_t"] = float(short["unserved_t"].sum())
    row["unserved_penalty_pv_usd"] = float(cat.get("penalty", 0.0))
    for (c, s), v in short.groupby(["country", "segment"])["unserved_t"].sum().items():
        row[f"unserved_{c}_{s}_t"] = float(v)
    if not short.empty:  # the worst period's share of demand beside each horizon total
        d = tables["demand"].groupby(["country", "segment", "period"])[["unserved_t_per_yr", "demand_t_per_yr"]].sum()
        share = (d["unserved_t_per_yr"] / d["demand_t_per_yr"]).groupby(level=[0, 1]).max()
        for (c, s), v in share[share > 0].items():
            row[f"unserved_{c}_{s}_worst_period_share"] = float(v)
    row.update(_price_means(tables["prices"]))
    stock = tables.get("stockpiles")
    if stock is not None and not stock.empty:
        row["stockpile_buy_t"] = float(stock["buy_t"].sum())
        row["stockpile_release_t"] = float(stock["release_t"].sum())
        row["stockpile_inflow_t"] = float(stock["inflow_t"].sum()) if "inflow_t" in stock else 0.0
        last = stock.groupby("stockpile", sort=False).tail(1)
        row["stockpile_end_level_t"] = float(last["level_t"].sum())
    else:
        row["stockpile_buy_t"] = row["stockpile_release_t"] = row["stockpile_inflow_t"] = 0.0
        row["stockpile_end_level_t"] = 0.0
    return row


def comparison_table(outcomes: list[Outcome], source: Case, params: pd.DataFrame | None = None,
                     added: tuple[str, ...] | list[str] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per scenario with headline deltas, every figure's delta against the
    baseline). Figures missing in a solved scenario are 0 (no shortfall there). `added`
    names the scenarios run only as a requested one's parent (their role says so)."""
    scen = source.tables["scenarios"].set_index("scenario")
    recs = []
    for o in outcomes:
        known = o.scenario is not None and o.scenario in scen.index
        recs.append({"scenario": o.name,
                     "role": ("baseline" if o.scenario is None else
                              "parent of a requested scenario" if o.scenario in added else "requested"),
                     "parent": (scen.at[o.scenario, "parent"] or BASELINE) if known else "",
                     "description": scen.at[o.scenario, "description"] if known else "",
                     "status": o.status, "message": "" if o.ok else o.message,
                     "solve_mode": o.mode, "seconds": o.seconds, "folder": o.folder or "",
                     "objective_usd": o.objective if o.ok else np.nan})
    head = pd.DataFrame(recs)
    figs = pd.DataFrame([o.row for o in outcomes])
    figs = figs.reindex(columns=_order(list(figs.columns)))
    ok = np.array([o.ok for o in outcomes], bool)
    figs.loc[ok] = figs.loc[ok].fillna(0.0)
    table = pd.concat([head, figs], axis=1)
    if params is not None and not params.empty:
        table = table.merge(params, how="left", on="scenario")
    numeric = ["objective_usd"] + list(figs.columns)
    base = table.loc[(table["scenario"] == BASELINE) & (table["status"] == "optimal"), numeric]
    ref = base.iloc[0] if len(base) else pd.Series(np.nan, index=numeric)
    deltas = table[["scenario", "status"]].copy()
    for col in numeric:
        deltas[col] = table[col] - ref[col]
    for col in HEADLINE:
        if col in table.columns:
            table[f"vs_base_{col}"] = deltas[col]
    # Against each row's parent too (what the scenario adds to the crisis it builds on);
    # the command line runs every parent (with_parents), so blank only where it failed.
    solved = table[table["status"] == "optimal"].set_index("scenario")
    parent_of = table["parent"].where(table["parent"] != "", None)
    for col in HEADLINE:
        if col in table.columns:
            ref = parent_of.map(lambda p, c=col: solved[c].get(p, np.nan) if p is not None else np.nan)
            table[f"vs_parent_{col}"] = table[col] - ref.astype(float)
    if "vs_parent_unserved_t" in table:  # the value of a policy against the crisis it answers
        avoided = -table["vs_parent_unserved_t"]
        table["vs_parent_avoided_unserved_t"] = avoided
        table["vs_parent_resource_cost_per_avoided_t_usd"] = (
            table["vs_parent_resource_cost_pv_usd"] / avoided).where(avoided > 1e-9)
    return table, deltas


def _order(cols: list[str]) -> list[str]:
    first = ["resource_cost_pv_usd"] + sorted(c for c in cols if c.startswith("resource_") and c != "resource_cost_pv_usd")
    first += ["transfers_pv_usd"] + sorted(c for c in cols if c.startswith("transfer_"))
    first += ["unserved_t", "unserved_penalty_pv_usd"] + sorted(
        c for c in cols if c.startswith("unserved_") and c not in ("unserved_t", "unserved_penalty_pv_usd"))
    first += sorted(c for c in cols if c.startswith("price_"))
    first += ["stockpile_buy_t", "stockpile_release_t", "stockpile_inflow_t", "stockpile_end_level_t"]
    return [c for c in first if c in cols] + sorted(c for c in cols if c not in first)


# --------------------------------------------------------------------------- charts

def batch_figures(table: pd.DataFrame) -> list:
    """Resource cost by component and unserved tonnes by country and segment, one bar
    per solved scenario (model.reports.charts draws them). Reads the comparison table only."""
    from model.reports.charts import Figure, top_columns
    ok = table[table["status"] == "optimal"].set_index("scenario")
    if ok.empty:
        return []
    comp = [c for c in ok.columns if c.startswith("resource_") and c.endswith("_pv_usd")
            and c != "resource_cost_pv_usd"]
    # changes against the base case: every scenario costs about the same in total, so levels
    # would hide what differs
    base = ok.loc[BASELINE, comp] if BASELINE in ok.index else ok[comp].iloc[0]
    cost = (ok[comp] - base).rename(columns=lambda c: c[len("resource_"):-len("_pv_usd")])
    cost = cost.loc[:, cost.abs().sum() > 1e-6] if (cost.abs().sum() > 1e-6).any() else cost.iloc[:, :1]
    short = [c for c in ok.columns if c.startswith("unserved_") and c.endswith("_t") and c != "unserved_t"]
    unserved = ok[short].rename(columns=lambda c: c[len("unserved_"):-len("_t")].replace("_", " / ", 1))
    unserved = unserved.loc[:, unserved.abs().sum() > 1e-9] if len(unserved.columns) else unserved
    figs = [Figure("batch_resource_cost", "Resource cost against the base case, by component (present value; "
                   "transfers and unserved demand excluded)", cost, "stacked", "USD (present value)",
                   horizontal=True)]
    if unserved.shape[1]:
        figs.append(Figure("batch_unserved", "Unserved demand over the horizon by country / segment",
                           top_columns(unserved), "stacked", "t", horizontal=True))
    else:
        figs.append(Figure("batch_unserved", "Unserved demand over the horizon (none in any scenario)",
                           ok[["unserved_t"]], "bar", "t", horizontal=True))
    return figs


def write_charts(folder: Path, figures: list) -> list[str]:
    """PNGs in folder/charts/; names relative to the batch folder."""
    from model.reports.charts import draw_png
    if not figures:
        return []
    (folder / "charts").mkdir(exist_ok=True)
    return [str(draw_png(f, folder / "charts" / f"{f.name}.png").relative_to(folder)) for f in figures]


# --------------------------------------------------------------------------- progress

class Progress:
    """One line: done, failed, remaining, estimated time left. Logged (standard error,
    rewritten in place on a terminal: model.logs.ConsoleHandler) or written to `stream`
    when one is given; a new line at most every `every_s` seconds (and for every failure
    and the last scenario) except on a terminal stream given, which gets every one."""

    def __init__(self, total: int, stream=None, every_s: float = 2.0):
        self.total, self.done, self.failed = total, 0, 0
        self.stream = stream
        self.start = time.perf_counter()
        self.tty = stream is not None and is_tty(stream)
        self.every_s, self.last = every_s, -float("inf")

    def update(self, outcome: Outcome) -> None:
        self.done += 1
        self.failed += 0 if outcome.ok else 1
        left = self.total - self.done
        elapsed = time.perf_counter() - self.start
        if not self.tty and outcome.ok and left and elapsed - self.last < self.every_s:
            return
        self.last = elapsed
        eta = elapsed / self.done * left
        line = (f"batch: {self.done}/{self.total} done, {self.failed} failed, {left} remaining, "
                f"ETA {_clock(eta)} (last: {outcome.name}, {outcome.status})")
        if self.stream is None:
            LOG.info(line, extra={"progress": True})
            return
        self.stream.write(("\r" + line.ljust(100)) if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.stream is not None:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


# --------------------------------------------------------------------------- executors

_JOB: BatchJob | None = None


def _die_with_parent() -> None:
    """Linux: this process gets SIGTERM when the batch's process dies, however it dies
    (even SIGKILL), so no worker computes on, orphaned, into an abandoned folder."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return
    if os.getppid() != _PARENT:  # the parent died before the line above
        os._exit(1)


_PARENT = os.getpid()


def _init_pool_worker(job: BatchJob, parent: int) -> None:
    """Ctrl-C and SIGTERM are the client's to handle: workers ignore SIGINT, are stopped
    by the client, and die with it."""
    global _JOB, _PARENT
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _PARENT = parent
    _die_with_parent()
    _JOB = job


def _pool_task(name: str | None) -> Outcome:
    return run_scenario(_JOB, name)


class _Serial:
    def __init__(self, job: BatchJob):
        self.job = job

    def run(self, names: list) -> Iterator[Outcome]:
        for n in names:
            yield run_scenario(self.job, n)

    def stop(self) -> None:
        pass


class _Pool:
    def __init__(self, job: BatchJob, workers: int):
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        self.ex = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_pool_worker,
                                      initargs=(job, os.getpid()))
        self.futures: list = []

    def run(self, names: list) -> Iterator[Outcome]:
        from concurrent.futures import as_completed
        self.futures = [self.ex.submit(_pool_task, n) for n in names]
        which = {f: n for f, n in zip(self.futures, names)}
        for f in as_completed(self.futures):
            try:
                yield f.result()
            except Exception as exc:  # the worker process died (memory, a signal)
                yield Outcome(which[f], ERROR, f"worker failed: {type(exc).__name__}: {exc}")
        self.ex.shutdown(wait=True)

    def stop(self) -> None:
        for f in self.futures:
            f.cancel()
        procs = list((getattr(self.ex, "_processes", None) or {}).values())
        for p in procs:  # scenarios still running are abandoned, not waited for
            p.terminate()
        self.ex.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            p.join(timeout=5)


class _Dask:
    def __init__(self, job: BatchJob, scheduler):
        from distributed import Client
        self.own = isinstance(scheduler, str)
        self.client = Client(scheduler) if self.own else scheduler
        # Report sub-folders are written by the client: cluster workers may not share its disk.
        self.job = job
        self.futures: list = []

    def run(self, names: list) -> Iterator[Outcome]:
        from distributed import as_completed
        job_f = self.client.scatter(self.job, broadcast=True)
        self.futures = [self.client.submit(run_scenario, job_f, n, pure=False, key=f"scenario-{i}-{self.job.token}")
                        for i, n in enumerate(names)]
        which = {f.key: n for f, n in zip(self.futures, names)}
        for f in as_completed(self.futures):
            try:
                yield f.result()
            except Exception as exc:
                yield Outcome(which[f.key], ERROR, f"worker failed: {type(exc).__name__}: {exc}")
        self.close()

    def stop(self) -> None:
        if self.futures:
            self.client.cancel(self.futures)
        self.close()

    def close(self) -> None:
        if self.own:
            self.client.close()


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


# --------------------------------------------------------------------------- the batch

@dataclass
class BatchResult:
    folder: Path
    outcomes: list[Outcome]
    not_finished: list[str]
    comparison: pd.DataFrame
    interrupted: bool

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    def objectives(self) -> dict[str, float]:
        return {o.name: o.objective for o in self.outcomes if o.ok}


def run_batch(case: Case, source: Case, names: list[str], *, workers: int | None = None,
              scheduler=None, out: str | Path = "outputs", resolve: bool = True, reports: bool = True,
              kind: str = "batch", params: pd.DataFrame | None = None, label: str = "scenario",
              charts: bool = True, resolve_from: str | None = None,
              extra_files: Callable[[Path, pd.DataFrame], dict] | None = None,
              on_outcome: Callable[[Outcome], None] | None = None, stream=None,
              closing: Callable[[BatchResult], list[str]] = batch_lines, parents: bool = False) -> BatchResult:
    """Run the baseline and `names`; write the batch folder; return what happened.

    workers: local processes (default all cores; 1 runs in this process);
    scheduler: a Dask scheduler address (or a distributed.Client) instead of the pool.
    resolve_from: build each worker's re-solved model from this scenario (a sweep on top
    of a scenario: its samples differ from it in data only).
    on_outcome is called in this process after each scenario (a test hook).
    closing(result) gives the lines the batch says when it ends (the batch folder's
    run.log records them, with everything said before).
    extra_files(folder, comparison) may write more tables (and charts) and returns
    manifest entries; charts=False leaves out the PNG charts.
    parents=True also runs each scenario's ancestors not in `names` (with_parents), so
    every row has its parent's deltas.
    """
    added: list[str] = []
    if parents:
        names, added = with_parents(source, list(names))
    with recording() as record, _terminate_as_interrupt():
        return _run_batch(case, source, names, workers, scheduler, out, resolve, reports, kind, params, label,
                          charts, resolve_from, extra_files, on_outcome, stream, closing, record, tuple(added))


@contextmanager
def _terminate_as_interrupt():
    """While a batch runs, SIGTERM (a scheduler's or an administrator's kill) stops it as
    Ctrl-C does: finished scenarios are kept in a complete folder marked interrupted."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the folder's writing
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_batch(case, source, names, workers, scheduler, out, resolve, reports, kind, params, label, charts,
               resolve_from, extra_files, on_outcome, stream, closing, record, added=()) -> BatchResult:
    t0 = time.perf_counter()
    if added:
        LOG.info("also running %s: the parent%s of a requested scenario", ", ".join(added),
                 "s" if len(added) > 1 else "")
    tmp, final = new_run_dir(Path(out), case.name, kind)
    order: list[str | None] = [None] + list(names)
    workers = workers or default_workers()
    job = BatchJob(uuid.uuid4().hex, case, source, resolve, None if scheduler is not None else str(tmp),
                   reports, label, charts, resolve_from, added)
    outcomes: dict[str | None, Outcome] = {}
    progress = Progress(len(order), stream)
    interrupted = False
    try:
        if scheduler is not None:
            runner = _Dask(job, scheduler)
        elif workers <= 1 or len(order) == 1:
            runner = _Serial(job)
        else:
            runner = _Pool(job, min(workers, len(order)))
        try:
            for o in runner.run(order):
                if o.result is not None:  # the client writes what cluster workers solved
                    o.folder = write_scenario(o.result, tmp)
                    o.result = None
                outcomes[o.scenario] = o
                progress.update(o)
                if on_outcome is not None:
                    on_outcome(o)
        except KeyboardInterrupt:
            interrupted = True
            runner.stop()
        progress.close()
        return _finish(job, order, outcomes, tmp, final, interrupted, kind, workers, scheduler, params,
                       extra_files, time.perf_counter() - t0, closing, record)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _finish(job: BatchJob, order: list, outcomes: dict, tmp: Path, final: Path, interrupted: bool, kind: str,
            workers: int, scheduler, params, extra_files, seconds: float, closing, record) -> BatchResult:
    """Comparison, manifest, the closing lines and run.log, and the rename that makes the
    batch folder visible."""
    done = [outcomes[n] for n in order if n in outcomes]
    missing = [n for n in order if n not in outcomes]
    keep = {o.folder for o in done if o.folder}
    for p in tmp.iterdir():  # half-written reports of scenarios stopped mid-way
        if p.is_dir() and p.name not in keep:
            shutil.rmtree(p, ignore_errors=True)
    table, deltas = comparison_table(done + [Outcome(n, NOT_FINISHED, "not finished: the batch was interrupted")
                                             for n in missing], job.source, params, job.added)
    write_csv(table, tmp / "comparison.csv")
    write_comparison_xlsx(tmp / "comparison.xlsx", table, deltas, f"Scenario comparison: {Path(job.case.path).name}")
    manifest = {
        "kind": kind,
        "status": "interrupted" if interrupted else "complete",
        "case": job.case.path,
        "input_sha256": job.case.input_hash,
        "scenario_file": None if job.source is job.case else job.source.path,
        "scenario_file_sha256": None if job.source is job.case else job.source.input_hash,
        "baseline": BASELINE,
        "added_as_parents": list(job.added),
        "scenarios": [{"scenario": o.name, "status": o.status, "message": o.message,
                       "objective_usd": o.objective if o.ok else None, "folder": o.folder,
                       "solve_mode": o.mode, "rebuild_reason": o.rebuild_reason,
                       "seconds": round(o.seconds, 4)} for o in done],
        "failed": [{"scenario": o.name, "status": o.status, "reason": o.message} for o in done if not o.ok],
        "not_finished": [BASELINE if n is None else n for n in missing],
        "execution": {"scheduler": scheduler if isinstance(scheduler, str) else
                      (None if scheduler is None else type(scheduler).__name__),
                      "workers": None if scheduler is not None else workers, "resolve": job.resolve},
        "seconds": round(seconds, 3),
        # a sweep charts distributions instead (model.runs.sweep): a bar per sample reads as noise
        "charts": write_charts(tmp, batch_figures(table)) if job.charts and kind == "batch" else [],
        "dashboard": _dashboard(tmp, table, done, job, kind),
        "package_versions": package_versions(),
        "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if extra_files is not None:
        manifest.update(extra_files(tmp, table))
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    final = claim_name(final)
    try:
        result = BatchResult(final, done, manifest["not_finished"], table, interrupted)
        say(closing(result))
        (tmp / "run.log").write_text(record.text())
        commit_run_dir(tmp, final)
    except BaseException:
        if final.is_dir() and not any(final.iterdir()):
            final.rmdir()  # a claimed name never filled
        raise
    return result


def _dashboard(tmp: Path, table: pd.DataFrame, done: list, job: BatchJob, kind: str) -> str | None:
    """dashboard.html: the scenarios side by side (model.reports.dashboard), with unserved
    tonnes by period and country read from each scenario's shortfall table where its
    report was written."""
    from model.reports.dashboard import write_dashboard
    if not any(o.ok for o in done):
        return None
    shortfalls = {}
    for o in done:
        f = tmp / o.folder / "shortfall.csv" if o.ok and o.folder else None
        if f is not None and f.exists():
            shortfalls[o.name] = pd.read_csv(f)
    per = job.case.tables["periods"].sort_values("start_year", kind="mergesort")
    title = f"{'Sweep' if kind != 'batch' else 'Scenario'} comparison: {Path(job.case.path).name}"
    write_dashboard(tmp / "dashboard.html", table, shortfalls, [str(t) for t in per["period"]], title)
    return "dashboard.html"


# --------------------------------------------------------------------------- exit code

def exit_code(result: BatchResult) -> int:
    if result.interrupted:
        return 130
    return 0 if not result.failed else 3
