"""Sweeps: sample parameters, turn each sample into a scenario, run them as a batch
and summarise the distribution of cost and shortfall.

    python run.py sweep inputs/example_sweep.yaml [--workers N | --scheduler ADDRESS]

The spec (YAML):

    workbook: example.xlsx        # relative to the spec; optional (CLI --workbook, else the shipped case)
    scenario: cn_heavy_ban        # optional: every sample builds on this scenario
    samples: 200                  # number of random samples
    seed: 42                      # the same seed gives the same samples and results
    parameters:
      - name: china_quota_share   # a column name of the comparison (param_<name>)
        sheet: supply_caps        # the scenario change the parameter drives:
        filter: cap=cn_mining_quota
        column: cap_t_per_yr
        op: scale                 # set, scale or add
        uniform: {low: 0.6, high: 1.0}
      - name: magnet_demand
        sheet: demand
        filter: product=magnet_std
        column: quantity_t_per_yr
        op: scale
        triangular: {low: 0.9, mode: 1.0, high: 1.3}
      - name: freight
        ...
        discrete: {values: [200, 250, 400], probabilities: [0.25, 0.5, 0.25]}
      - name: ban_periods
        ...
        values: ["2026,2027,2028", "2027,2028"]   # equally likely

With `samples` left out and every parameter a `values` list, the sweep runs the full
grid of combinations instead. Draws are made parameter by parameter in spec order
from numpy's default_rng(seed). Output (one batch folder `<timestamp>_<case>_sweep`):
comparison.csv/xlsx (one row per sample with its parameter values), sweep_summary.csv/xlsx
(mean, standard deviation, p5, p50, p95 of cost and shortfall over the solved samples),
PNG charts in charts/ (the distributions of resource cost and unserved tonnes over
the samples), the spec as run, and manifest.json.
"""

from __future__ import annotations

import itertools
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from model.case.schema import SHEETS_BY_NAME, InputError, Problem
from model.case.workbook import ROW, Case, parse_number, typed_frame
from model.reports.console import sweep_lines
from model.reports.files import write_csv, write_xlsx
from model.runs.batch import BASELINE, BatchResult, load_inputs, run_batch, write_charts

KINDS = ("values", "uniform", "triangular", "discrete")
OPS = ("set", "scale", "add")
SUMMARY_METRICS = (("resource_cost_pv_usd", "USD"), ("unserved_t", "t"), ("unserved_penalty_pv_usd", "USD"),
                   ("transfers_pv_usd", "USD"), ("objective_usd", "USD"))
PERCENTILES = (5, 50, 95)
# Most samples (or grid points) a sweep may have: each is a solve and a comparison row,
# and a runaway grid would exhaust memory before the first solve. Raise it with the
# environment variable RARE_EARTH_MAX_SAMPLES.
MAX_SAMPLES = 100_000


def max_samples() -> int:
    try:
        return max(1, int(os.environ.get("RARE_EARTH_MAX_SAMPLES", MAX_SAMPLES)))
    except ValueError:
        return MAX_SAMPLES


@dataclass
class Parameter:
    name: str
    sheet: str
    filter: str
    column: str
    op: str
    kind: str
    values: list = field(default_factory=list)
    probabilities: list[float] | None = None
    low: float = 0.0
    mode: float = 0.0
    high: float = 0.0


@dataclass
class SweepSpec:
    path: str
    workbook: str | None
    scenario: str | None
    samples: int | None
    seed: int
    parameters: list[Parameter]


# --------------------------------------------------------------------------- the spec

def _number(x, what: str, errs: list[str]) -> float:
    v, err = parse_number(x)
    if err:
        errs.append(f"{what}: {x!r} is {err}" if err.startswith(("not", "beyond")) else f"{what}: {x!r}: {err}")
        return 0.0
    return v


def _parameter(i: int, p, file: str, problems: list[Problem]) -> Parameter | None:
    where = f"parameters[{i}]"
    if not isinstance(p, dict):
        problems.append(Problem(file, where, message="a parameter is a mapping with name, sheet, filter, "
                                "column, op and one of " + ", ".join(KINDS)))
        return None
    name = str(p.get("name") or f"p{i + 1}")
    where = f"parameter '{name}'"
    errs: list[str] = []

    def bad(col: str, value, expected: str, msg: str) -> None:
        problems.append(Problem(file, where, None, col, value, expected, msg))

    sheet = str(p.get("sheet") or "")
    if sheet not in SHEETS_BY_NAME or sheet in ("scenarios", "scenario_changes"):
        bad("sheet", sheet, "a data sheet of the workbook", "unknown sheet")
    column = str(p.get("column") or "")
    if sheet in SHEETS_BY_NAME and column not in SHEETS_BY_NAME[sheet].column_names and sheet != "settings":
        bad("column", column, f"a column of sheet {sheet}", "unknown column")
    op = str(p.get("op") or "set")
    if op not in OPS:
        bad("op", op, "set, scale or add", "unknown op")
    kinds = [k for k in KINDS if k in p]
    if len(kinds) != 1:
        bad("distribution", ", ".join(kinds) or None, "exactly one of " + ", ".join(KINDS),
            "a parameter needs one distribution or value list")
        return None
    kind = kinds[0]
    spec = p[kind]
    out = Parameter(name, sheet, str(p.get("filter") or "*"), column, op, kind)
    if kind == "values":
        if not isinstance(spec, list) or not spec:
            bad("values", spec, "a non-empty list", "no values")
        out.values = list(spec) if isinstance(spec, list) else []
    elif kind == "discrete":
        if not isinstance(spec, dict) or not isinstance(spec.get("values"), list) or not spec["values"]:
            bad("discrete", spec, "{values: [...], probabilities: [...]}", "no values")
            return None
        out.values = list(spec["values"])
        probs = spec.get("probabilities")
        if probs is not None:
            probs = [_number(x, "probabilities", errs) for x in probs] if isinstance(probs, list) else None
            if probs is None or len(probs) != len(out.values):
                bad("probabilities", spec.get("probabilities"), f"{len(out.values)} probabilities, one per value",
                    "wrong number of probabilities")
            elif any(x < 0 for x in probs) or abs(sum(probs) - 1.0) > 1e-9:
                bad("probabilities", probs, "non-negative numbers adding up to 1", "not a distribution")
        out.probabilities = probs
    else:
        if not isinstance(spec, dict):
            bad(kind, spec, "{low: .., high: ..}" + (" with mode" if kind == "triangular" else ""), "not a mapping")
            return None
        out.low = _number(spec.get("low"), "low", errs)
        out.high = _number(spec.get("high"), "high", errs)
        if kind == "triangular":
            out.mode = _number(spec.get("mode"), "mode", errs)
            if not errs and not out.low <= out.mode <= out.high:
                errs.append("low <= mode <= high does not hold")
        if not errs and not out.low < out.high:
            errs.append("low must be below high")
    for e in errs:
        bad(kind, spec, "numbers", e)
    numeric = kind in ("uniform", "triangular") or op in ("scale", "add")
    if numeric and kind in ("values", "discrete"):
        for v in out.values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                bad(kind, v, "numbers (op is " + op + ")", "not a number")
    return out


def read_spec(path: str | Path) -> SweepSpec:
    """Read and check a sweep spec; InputError names the file and the parameter."""
    import yaml
    path = Path(path)
    file = path.name
    if not path.exists():
        raise InputError([Problem(file, message=f"file not found: {path}")])
    if not path.is_file():
        raise InputError([Problem(file, message=f"{path} is a folder, not a sweep spec file")])
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError([Problem(file, message=f"not UTF-8 text (byte {exc.start}): save the spec as UTF-8",
                                  expected="a YAML file in UTF-8")]) from None
    except yaml.YAMLError as exc:
        raise InputError([Problem(file, message=f"not valid YAML ({exc})")]) from None
    if not isinstance(raw, dict):
        raise InputError([Problem(file, message="a sweep spec is a mapping with parameters, samples and seed")])
    problems: list[Problem] = []
    for key in ("workbook", "scenario"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            problems.append(Problem(file, "", None, key, raw[key], "text (a path or a name)", f"{key} is not text"))
    known = {"workbook", "scenario", "samples", "seed", "parameters", "description"}
    for k in raw:
        if k not in known:
            problems.append(Problem(file, "", None, str(k), None, ", ".join(sorted(known)), "unknown key"))
    params = raw.get("parameters")
    if not isinstance(params, list) or not params:
        problems.append(Problem(file, "", None, "parameters", None, "a list of parameters", "no parameters"))
        params = []
    parsed = [_parameter(i, p, file, problems) for i, p in enumerate(params)]
    names = [p.name for p in parsed if p is not None]
    for n in {n for n in names if names.count(n) > 1}:
        problems.append(Problem(file, f"parameter '{n}'", None, "name", n, "unique names", "duplicate name"))
    samples = raw.get("samples")
    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int) or samples < 1):
        problems.append(Problem(file, "", None, "samples", samples, "a whole number >= 1", "bad sample count"))
    grid = samples is None
    if grid and any(p is not None and p.kind != "values" for p in parsed):
        problems.append(Problem(file, "", None, "samples", None, "a sample count",
                                "distributions need a sample count (only value lists can run as a grid)"))
    cap = max_samples()
    size = samples if not grid else math.prod(len(p.values) for p in parsed if p is not None)
    if isinstance(size, int) and not isinstance(size, bool) and size > cap:
        problems.append(Problem(file, "", None, "samples", size, f"at most {cap:,} samples",
                                ("the grid of value lists has" if grid else "the spec asks for") +
                                f" {size:,} samples, more than the limit (set RARE_EARTH_MAX_SAMPLES to raise it)"))
    seed = raw.get("seed")
    if not grid and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        problems.append(Problem(file, "", None, "seed", seed, "a whole number >= 0",
                                "a random sweep needs a seed (results are reproducible with it)"))
    if problems:
        raise InputError(problems)
    wb = raw.get("workbook")
    wb = str((path.parent / wb).resolve()) if wb else None
    return SweepSpec(str(path), wb, raw.get("scenario") or None, samples, int(seed or 0),
                     [p for p in parsed if p is not None])


# --------------------------------------------------------------------------- samples

def draw(spec: SweepSpec) -> pd.DataFrame:
    """One row per sample: `scenario` and one column per parameter."""
    if spec.samples is None:
        combos = list(itertools.product(*(p.values for p in spec.parameters)))
        cols = {p.name: [c[i] for c in combos] for i, p in enumerate(spec.parameters)}
        n = len(combos)
    else:
        n = spec.samples
        rng = np.random.default_rng(spec.seed)
        cols = {}
        for p in spec.parameters:
            if p.kind == "uniform":
                cols[p.name] = rng.uniform(p.low, p.high, n).tolist()
            elif p.kind == "triangular":
                cols[p.name] = rng.triangular(p.low, p.mode, p.high, n).tolist()
            else:
                idx = rng.choice(len(p.values), size=n, p=p.probabilities)
                cols[p.name] = [p.values[i] for i in idx]
    width = len(str(n))
    return pd.DataFrame({"scenario": [f"sample_{i + 1:0{width}d}" for i in range(n)], **cols})


def _text(v) -> str:
    """A value as the scenario_changes sheet holds it (numbers round-trip exactly)."""
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    return str(v)


def with_samples(source: Case, spec: SweepSpec, draws: pd.DataFrame) -> Case:
    """The scenario source with one scenario per sample (its parameter changes on top
    of spec.scenario). A change's row number is its parameter's position (1-based)."""
    out = source.copy()
    scen_sheet, change_sheet = SHEETS_BY_NAME["scenarios"], SHEETS_BY_NAME["scenario_changes"]
    taken = set(out.tables["scenarios"]["scenario"]) & set(draws["scenario"])
    if taken:
        raise InputError([Problem(Path(spec.path).name, "", None, "samples", sorted(taken)[0],
                                  "sample names not used by the workbook's scenarios",
                                  "the workbook already has a scenario with this name")])
    desc = [", ".join(f"{p.name}={_text(v)}" for p, v in zip(spec.parameters, vals))
            for vals in draws[[p.name for p in spec.parameters]].itertuples(index=False)]
    scen = pd.DataFrame({"scenario": draws["scenario"], "parent": spec.scenario or "",
                         "description": desc, "expected_effects": "", "source": f"sweep {Path(spec.path).name}",
                         ROW: 0})
    rows = []
    for s, vals in zip(draws["scenario"], draws[[p.name for p in spec.parameters]].itertuples(index=False)):
        for i, (p, v) in enumerate(zip(spec.parameters, vals)):
            rows.append({"scenario": s, "sheet": p.sheet, "filter": p.filter, "column": p.column, "op": p.op,
                         "value": _text(v), "source": f"sweep parameter {p.name}", ROW: i + 1})
    out.tables["scenarios"] = typed_frame(scen_sheet, pd.concat([out.tables["scenarios"], scen], ignore_index=True))
    out.tables["scenario_changes"] = typed_frame(change_sheet, pd.concat(
        [out.tables["scenario_changes"], pd.DataFrame(rows)], ignore_index=True))
    return out


def check_first_sample(case: Case, source: Case, spec: SweepSpec, first: str) -> None:
    """Apply one sample before running any: a change that cannot apply (a filter matching
    no row, a value out of range) is an error naming the spec and the parameter."""
    from model.runs.batch import BatchJob, scenario_case
    try:
        scenario_case(BatchJob("check", case, source, label="sample"), first)
    except InputError as exc:
        file = Path(spec.path).name
        for p in exc.problems:
            if p.sheet == "scenario_changes" and p.row is not None and 1 <= p.row <= len(spec.parameters):
                par = spec.parameters[int(p.row) - 1]
                p.file, p.sheet, p.row = file, f"parameter '{par.name}'", None
                p.column = {"value": par.kind}.get(p.column, p.column)
        raise


# --------------------------------------------------------------------------- summary

def summarise(comparison: pd.DataFrame) -> pd.DataFrame:
    """Distribution of cost and shortfall over the solved samples (the baseline excluded)."""
    s = comparison[comparison["scenario"] != BASELINE]
    ok = s[s["status"] == "optimal"]
    rows = []
    for col, unit in SUMMARY_METRICS:
        v = ok[col].to_numpy(float) if col in ok.columns else np.zeros(0)
        rec = {"metric": col, "unit": unit, "samples": len(s), "solved": len(v), "failed": len(s) - len(v)}
        if len(v):
            rec.update(mean=float(v.mean()), std=float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                       min=float(v.min()), **{f"p{q}": float(np.percentile(v, q)) for q in PERCENTILES},
                       max=float(v.max()))
        rows.append(rec)
    cols = ["metric", "unit", "samples", "solved", "failed", "mean", "std", "min"] + \
        [f"p{q}" for q in PERCENTILES] + ["max"]
    return pd.DataFrame(rows).reindex(columns=cols)


def _histogram(v: np.ndarray, scale: float, unit: str) -> pd.DataFrame:
    """Counts per bin, labelled by the bin's range (in the chart's unit)."""
    bins = int(min(20, max(5, round(math.sqrt(len(v))))))
    if len(v) and np.ptp(v) <= 1e-9 * max(1.0, abs(float(v.max()))):
        counts, edges = np.array([len(v)]), np.array([v.min(), v.max()])
    else:
        counts, edges = np.histogram(v, bins=bins)
    labels = [f"{a / scale:,.2f}-{b / scale:,.2f}" for a, b in zip(edges[:-1], edges[1:])]
    return pd.DataFrame({"samples": counts}, index=pd.Index(labels, name=unit))


def sweep_figures(table: pd.DataFrame) -> list:
    """Distribution of resource cost and of unserved tonnes over the solved samples."""
    from model.reports.charts import Figure
    ok = table[(table["scenario"] != BASELINE) & (table["status"] == "optimal")]
    if ok.empty:
        return []
    return [Figure("sweep_resource_cost", "Resource cost over the samples (present value)",
                   _histogram(ok["resource_cost_pv_usd"].to_numpy(float), 1e9, "bn USD"), "bar", "samples"),
            Figure("sweep_unserved", "Unserved demand over the samples",
                   _histogram(ok["unserved_t"].to_numpy(float), 1.0, "t"), "bar", "samples")]


def run_sweep(spec_path: str, workbook: str | None = None, *, default_case: str | None = None, **batch) -> BatchResult:
    """Read the spec and the case, check the first sample, run every sample as a batch."""
    spec = read_spec(spec_path)
    wb = workbook or spec.workbook or default_case
    if wb is None:
        raise InputError([Problem(Path(spec_path).name, "", None, "workbook", None, "a workbook",
                                  "no workbook given (spec key workbook or --workbook)")])
    case, source = load_inputs(wb)
    if spec.scenario not in (None, *source.tables["scenarios"]["scenario"]):
        from model.case.workbook import unknown_scenario
        raise InputError([Problem(Path(spec_path).name, "", None, "scenario", spec.scenario,
                                  f"a scenario of {Path(wb).name}", unknown_scenario(
                                      spec.scenario, list(source.tables["scenarios"]["scenario"])))])
    draws = draw(spec)
    source = with_samples(source, spec, draws)
    check_first_sample(case, source, spec, draws["scenario"].iloc[0])
    params = draws.rename(columns={p.name: f"param_{p.name}" for p in spec.parameters})

    def extra(folder: Path, table: pd.DataFrame) -> dict:
        summary = summarise(table)
        write_csv(summary, folder / "sweep_summary.csv")
        write_xlsx(folder / "sweep_summary.xlsx", {"sweep_summary": summary, "samples": params})
        shutil.copyfile(spec_path, folder / f"spec{Path(spec_path).suffix or '.yaml'}")
        charts = write_charts(folder, sweep_figures(table)) if batch.get("charts", True) else []
        return {"sweep": {"spec": str(spec_path), "seed": spec.seed, "samples": len(draws),
                          "grid": spec.samples is None, "base_scenario": spec.scenario,
                          "parameters": [p.__dict__ for p in spec.parameters], "charts": charts}}
    batch.setdefault("reports", False)
    return run_batch(case, source, list(draws["scenario"]), kind="sweep", params=params, label="sample",
                     resolve_from=spec.scenario, extra_files=extra,
                     closing=lambda result: sweep_lines(summarise(result.comparison), result), **batch)


__all__ = ["read_spec", "draw", "with_samples", "summarise", "run_sweep"]
