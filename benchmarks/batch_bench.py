#!/usr/bin/env python
"""Time per scenario of a batch: rebuilding each scenario's model vs re-solving the
base model in place (model.runs.resolve), on the shipped example and on synthetic cases.

    python benchmarks/batch_bench.py [--sizes example,tiny,small] [--samples 5] [--seed 1] [--bans]

Scenarios are sweep samples (model.runs.sweep) of data-only parameters, so every one
qualifies for the re-solve: demand, running costs, capacity, freight and shortfall
penalties. Both routes run in this process, one after the other, on one core; each
scenario's time covers applying and validating the scenario, the model (rebuilt, or
updated in place), the solve and the result tables with the comparison row (no report
files: their writing is the same on both routes). The re-solve is timed twice: with
every result table (as a report needs) and with only the tables of a comparison row (a
sweep without per-sample reports). The objectives must agree to 1e-7 relative. Results go to benchmarks/results/batch_<timestamp>.csv.

With --bans, every second sample also appends an export ban to every destination
(`BAN_ROWS`: China's heavy rare earths on the example, C00's on synthetic cases), which
the re-solve expresses as zero bounds on the forbidden flows; samples with and without
the ban alternate, so each re-solve also releases or sets those bounds. The figures for
the ban samples alone are reported as well (`*_ban` columns).
"""

from __future__ import annotations

import argparse
import csv
import gc
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
for p in (str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

from model.case.validate import validate_case  # noqa: E402
from model.case.workbook import read_case  # noqa: E402
from model.runs.batch import BatchJob, comparison_row, scenario_case  # noqa: E402
from model.runs.pipeline import solve_case  # noqa: E402
from model.runs.resolve import Resolver  # noqa: E402
from model.runs.sweep import Parameter, SweepSpec, draw, with_samples  # noqa: E402

OBJ_RTOL = 1e-7
BAN_ROWS = {"example": "control=bench_ban; exporter=CHN; product=HREE; destinations=*; kind=ban",
            "synthetic": "control=bench_ban; exporter=C00; product=HREE; destinations=*; kind=ban"}


def example_params() -> list[Parameter]:
    return [
        Parameter("quota", "supply_caps", "cap=cn_mining_quota", "cap_t_per_yr", "scale", "uniform", low=0.6, high=1.0),
        Parameter("demand", "demand", "product=magnet_std", "quantity_t_per_yr", "scale", "uniform", low=0.9, high=1.3),
        Parameter("freight", "transport", "from_country=*; to_country=*; product=*", "cost_usd_per_t", "set",
                  "uniform", low=150, high=400),
        Parameter("mp_cap", "facilities", "facility=us_mp_separation", "capacity_t_per_yr", "scale", "uniform",
                  low=1.0, high=2.0),
    ]


def synthetic_params() -> list[Parameter]:
    return [
        Parameter("std_demand", "demand", "product=mag_std", "quantity_t_per_yr", "scale", "uniform", low=0.8, high=1.3),
        Parameter("ion_cost", "facility_processes", "process=mine_ion", "unit_cost_usd_per_t", "scale", "uniform",
                  low=0.8, high=1.5),
        Parameter("sep_cap", "facilities", "facility=C00_sep", "capacity_t_per_yr", "scale", "uniform", low=0.5, high=1.5),
        Parameter("freight", "transport", "from_country=C01", "cost_usd_per_t", "scale", "uniform", low=0.8, high=1.5),
        Parameter("defence_penalty", "demand", "segment=defence", "shortfall_penalty_usd_per_t", "scale", "uniform",
                  low=0.5, high=2.0),
    ]


def base_case(size: str):
    if size == "example":
        return validate_case(read_case(ROOT / "inputs" / "example.xlsx")), example_params()
    import bench
    case, _, _ = bench.generate_case(size)
    return validate_case(case), synthetic_params()


def with_bans(source, names: list[str], row: str):
    """The sweep's scenario source with the ban appended to every second sample."""
    import pandas as pd
    from model.case.schema import SHEETS_BY_NAME
    from model.case.workbook import ROW, typed_frame
    out = source.copy()
    extra = pd.DataFrame([{"scenario": n, "sheet": "export_controls", "filter": "*", "column": "", "op": "append",
                           "value": row, "source": "batch_bench --bans", ROW: 99} for n in names[1::2]])
    out.tables["scenario_changes"] = typed_frame(SHEETS_BY_NAME["scenario_changes"], pd.concat(
        [out.tables["scenario_changes"], extra], ignore_index=True))
    return out, set(names[1::2])


def bench_size(size: str, samples: int, seed: int, bans: bool = False) -> dict:
    case, params = base_case(size)
    spec = SweepSpec(f"{size}_bench.yaml", None, None, samples, seed, params)
    draws = draw(spec)
    names = list(draws["scenario"])
    source, banned = with_samples(case, spec, draws), set()
    if bans:
        source, banned = with_bans(source, names, BAN_ROWS["example" if size == "example" else "synthetic"])
    job = BatchJob("bench", case, source, label="sample")

    rebuild, rebuild_solve, objs_rebuild = [], [], {}
    for n in names:
        gc.collect()
        t0 = time.perf_counter()
        res = solve_case(scenario_case(job, n), n)
        comparison_row(res.tables)
        rebuild.append(time.perf_counter() - t0)
        rebuild_solve.append(res.solve.stats["solve_s"])
        objs_rebuild[n] = res.solve.objective
        del res

    gc.collect()
    t0 = time.perf_counter()
    resolver = Resolver(case)
    setup = time.perf_counter() - t0
    runs = {}
    for lean in (False, True):  # full result tables (as for reports), or a sweep's comparison tables only
        total, warm, objs = [], [], {}
        phases = {"apply_validate_s": [], "check_model_data_s": [], "update_s": [], "solve_s": [], "extract_s": []}
        for n in names:
            t0 = time.perf_counter()
            sc = scenario_case(job, n)
            t1 = time.perf_counter()
            why, data = resolver.check(sc)
            assert why is None, f"{n} does not qualify for re-solving: {why}"
            t2 = time.perf_counter()
            sol, tables, secs = resolver.resolve(sc, data, lean=lean)
            comparison_row(tables)
            total.append(time.perf_counter() - t0)
            warm.append(sol.stats["solve_s"])
            objs[n] = sol.objective
            for k, v in (("apply_validate_s", t1 - t0), ("check_model_data_s", t2 - t1),
                         ("update_s", secs["update_s"]), ("solve_s", sol.stats["solve_s"]),
                         ("extract_s", secs["extract_s"])):
                phases[k].append(v)
        runs[lean] = (total, warm, phases, objs)
    resolve, warm, phases, objs = runs[False]
    lean_total, lean_warm, lean_phases, lean_objs = runs[True]
    worst = max(abs(o[n] - objs_rebuild[n]) / max(1.0, abs(objs_rebuild[n])) for o in (objs, lean_objs) for n in names)
    assert worst <= OBJ_RTOL, f"re-solved objectives differ from rebuilt ones by {worst:.2e}"
    med = statistics.median
    out = {"size": size + ("+bans" if bans else ""), "columns": resolver.stats["columns"], "rows": resolver.stats["rows"],
           "samples": samples, "rebuild_s_per_scenario": med(rebuild), "rebuild_cold_solve_s": med(rebuild_solve),
           "resolve_setup_s": setup, "resolve_s_per_scenario": med(resolve), "warm_solve_s": med(warm),
           "speedup": med(rebuild) / med(resolve), "resolve_over_warm_solve": med(resolve) / med(warm),
           "max_rel_objective_diff": worst}
    out.update({f"resolve_{k}": med(v) for k, v in phases.items()})
    out.update(resolve_lean_s_per_scenario=med(lean_total), resolve_lean_extract_s=med(lean_phases["extract_s"]),
               resolve_lean_over_warm_solve=med(lean_total) / med(lean_warm))
    if banned:
        pick = [i for i, n in enumerate(names) if n in banned]

        def ban_med(values: list[float]) -> float:
            return med([values[i] for i in pick])
        out.update(ban_samples=len(pick), rebuild_s_ban=ban_med(rebuild), rebuild_cold_solve_s_ban=ban_med(rebuild_solve),
                   resolve_s_ban=ban_med(resolve), warm_solve_s_ban=ban_med(warm), resolve_lean_s_ban=ban_med(lean_total))
        out["speedup_ban"] = out["rebuild_s_ban"] / out["resolve_s_ban"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="example,tiny,small", help="example and/or synthetic sizes of bench.py")
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bans", action="store_true", help="append an export ban to every second sample")
    args = ap.parse_args(argv)
    rows = []
    for size in args.sizes.split(","):
        r = bench_size(size, args.samples, args.seed, args.bans)
        rows.append(r)
        print(f"{size:>8}: {r['columns']:>7} columns; per scenario (median of {r['samples']}): "
              f"rebuild {r['rebuild_s_per_scenario']:.3f} s (cold solve {r['rebuild_cold_solve_s']:.3f}), "
              f"re-solve {r['resolve_s_per_scenario']:.3f} s (warm solve {r['warm_solve_s']:.3f}; "
              f"apply+validate {r['resolve_apply_validate_s']:.3f}, model data+check "
              f"{r['resolve_check_model_data_s']:.3f}, update {r['resolve_update_s']:.4f}, "
              f"extract {r['resolve_extract_s']:.3f}); speed-up x{r['speedup']:.1f}; re-solve with a sweep's "
              f"lean tables {r['resolve_lean_s_per_scenario']:.3f} s ({r['resolve_lean_over_warm_solve']:.2f}x the "
              f"warm solve); one-off model "
              f"{r['resolve_setup_s']:.2f} s; objectives agree to {r['max_rel_objective_diff']:.1e}", flush=True)
        if "ban_samples" in r:
            print(f"{'':>8}  ban samples ({r['ban_samples']}): rebuild {r['rebuild_s_ban']:.3f} s (cold solve "
                  f"{r['rebuild_cold_solve_s_ban']:.3f}), re-solve {r['resolve_s_ban']:.3f} s (warm solve "
                  f"{r['warm_solve_s_ban']:.3f}; lean {r['resolve_lean_s_ban']:.3f}); speed-up x{r['speedup_ban']:.1f}",
                  flush=True)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"batch_{datetime.now():%Y%m%d-%H%M%S}.csv"
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
