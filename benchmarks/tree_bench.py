"""Time a scenario tree on the shipped base case with N branches (a script, not a test).

    python benchmarks/tree_bench.py [--branches 10,50,200] [--workers 1,2] [--ef-max 50]

The tree is the shipped reserve_2027 tree widened: its four branches (calm, licensing
freeze, Dy/Tb ban, magnet ban) plus N - 4 licensing branches revealed in 2027 whose
approval share runs evenly from 5 % to 95 %, all equally likely with the calm branch
keeping 40 %. For each size it times the extensive form (one process: the extensive form
is one HiGHS solve; skipped above --ef-max branches, where its LP of N x 55,700 columns
outgrows the time goal) and the L-shaped decomposition on each worker count. Each run is
a fresh process (`run.py run --tree`, report folder written), timed end to end, with the
phases from its manifest (each as a ratio of the solve) and the process tree's peak
memory. The units: the deterministic base case run the same way (`run.py run
--no-explain`, reports written) and its solve alone. The machine's own ceiling for two
processes (a pure-Python loop on 1 and 2 processes) is measured too, since "2 workers at
least 1.6x faster" cannot beat it. Results: benchmarks/results/tree_<stamp>.csv.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(ROOT))


def tree_workbook(n: int, folder: Path) -> Path:
    """base.xlsx with a tree `bench` of n branches (n >= 4)."""
    from model.case.casewriter import write_case
    from model.case.workbook import read_case
    case = read_case(str(ROOT / "inputs" / "base.xlsx"))
    t = {k: v.drop(columns=[c for c in v.columns if c.startswith("_")]).to_dict("records")
         for k, v in case.tables.items() if k != "settings"}
    lic = next(r for r in t["scenario_changes"] if r["scenario"] == "licence_2027")
    extra = n - 4
    branches = [dict(r, tree="bench") for r in t["branches"] if r["tree"] == "reserve_2027"]
    probs = {"calm": 0.4, "licence_2027": 0.6 / (n - 1), "hree_ban_2027": 0.6 / (n - 1),
             "magnet_ban_2027": 0.6 / (n - 1)}
    for b in branches:
        b["probability"] = probs[b["branch"]]
    for i in range(extra):
        share = 0.05 + 0.9 * i / max(1, extra - 1)
        name = f"licence_{i:03d}"
        t["scenarios"].append({"scenario": name, "parent": "reserve_options",
                               "description": f"2027 licensing at {share:.0%}", "source": "benchmark"})
        row = dict(part.split("=", 1) for part in lic["value"].split("; "))
        row.update(control=name, licence_approval_share=f"{share:.4f}")
        t["scenario_changes"].append(dict(lic, scenario=name, value="; ".join(f"{k}={v}" for k, v in row.items())))
        branches.append({"tree": "bench", "branch": name, "probability": 0.6 / (n - 1), "reveal_period": "2027",
                         "scenario": name, "base_scenario": "reserve_options", "source": "benchmark"})
    total = sum(b["probability"] for b in branches)
    branches[0]["probability"] += 1.0 - total  # rounding
    t["branches"] = branches
    settings = dict(case.settings)
    return write_case(folder / f"tree_{n}.xlsx", t, settings)


def timed(cmd: list[str]) -> tuple[float, float, int]:
    """(seconds, peak resident MB of the process and its children, exit code) via GNU time."""
    with tempfile.NamedTemporaryFile(suffix=".time") as f:
        t0 = time.perf_counter()
        rc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", f.name] + cmd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL).returncode
        secs = time.perf_counter() - t0
        lines = [x for x in Path(f.name).read_text().splitlines() if x.strip().isdigit()]
    return secs, (int(lines[-1]) / 1024 if lines else float("nan")), rc


def _spin(n: int) -> int:
    s = 0
    for i in range(n):
        s += i * i
    return s


def parallel_ceiling(n: int = 15_000_000) -> float:
    """Seconds of two equal CPU-bound tasks in turn over the same on two processes."""
    t0 = time.perf_counter()
    _spin(n), _spin(n)
    one = time.perf_counter() - t0
    with mp.get_context("fork").Pool(2) as pool:
        t0 = time.perf_counter()
        pool.map(_spin, [n, n])
        two = time.perf_counter() - t0
    return one / two


def run_one(book: Path, n: int, method: str, workers: int, out: Path, unit: dict) -> dict:
    cmd = [sys.executable, str(ROOT / "run.py"), "-q", "run", str(book), "--tree", "bench", "--method", method,
           "--workers", str(workers), "--out", str(out)]
    secs, peak, rc = timed(cmd)
    row = {"branches": n, "method": method, "workers": workers, "seconds": secs, "peak_rss_mb": peak,
           "exit_code": rc, "unit_run_seconds": unit["run"], "unit_solve_seconds": unit["solve"],
           "ratio_to_deterministic_run": secs / unit["run"]}
    folder = next(out.glob("*/manifest.json"), None)
    if folder is None:
        print(f"{n} branches, {method}, {workers} worker(s): exit {rc} after {secs:.1f} s, no report", flush=True)
        return row
    man = json.loads(folder.read_text())
    ph = man["seconds"]
    solve = ph.get("solve_s", float("nan"))
    row.update({k: v for k, v in ph.items()})
    row["report_s"] = secs - sum(ph.values())  # imports, reading the workbook's tree, writing the folder
    row.update({f"{k[:-2]}_per_solve": v / solve for k, v in ph.items() if k != "solve_s"})
    row["report_per_solve"] = row["report_s"] / solve
    row["objective_usd"] = man["objective_usd"]
    dec = folder.parent / "tree_decomposition.csv"
    if dec.exists():
        d = pd.read_csv(dec)
        row["iterations"] = len(d)
        last = d.iloc[-1]
        row["relative_gap"] = (last["upper_bound_usd"] - last["lower_bound_usd"]) / abs(last["upper_bound_usd"])
    print(f"{n} branches, {method}, {workers} worker(s): {secs:.1f} s ({secs / unit['run']:.1f}x the deterministic "
          f"run), peak {peak:,.0f} MB, objective {man['objective_usd']:,.2f}; phases "
          + ", ".join(f"{k} {v:.1f}" for k, v in ph.items()) + f", report {row['report_s']:.1f}", flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--branches", default="10,50,200")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--ef-max", type=int, default=50, help="largest tree to time as an extensive form")
    a = ap.parse_args(argv)
    rows = []
    ceiling = parallel_ceiling()
    print(f"this machine runs two CPU-bound processes {ceiling:.2f}x faster than one after the other", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        secs, _, _ = timed([sys.executable, str(ROOT / "run.py"), "-q", "run", "--no-explain", "--out",
                            str(tmp / "o")])
        man = json.loads(next((tmp / "o").glob("*/manifest.json")).read_text())
        unit = {"run": secs, "solve": float(man.get("seconds", {}).get("solve_s", float("nan")))}
        print(f"deterministic base-case run: {secs:.1f} s (solve {unit['solve']:.1f} s)", flush=True)
        for n in [int(x) for x in a.branches.split(",")]:
            book = tree_workbook(n, tmp)
            plans = ([("extensive", 1)] if n <= a.ef_max else []) + \
                [("decomposition", int(w)) for w in a.workers.split(",")]
            if n > a.ef_max:
                rows.append({"branches": n, "method": "extensive", "workers": 1,
                             "note": f"not run: above --ef-max {a.ef_max}"})
            for method, w in plans:
                rows.append(run_one(book, n, method, w, tmp / f"out_{n}_{method}_{w}", unit))
                rows[-1]["parallel_ceiling"] = ceiling
    RESULTS.mkdir(exist_ok=True)
    df = pd.DataFrame(rows)
    df.to_csv(RESULTS / f"tree_{time.strftime('%Y%m%d-%H%M%S')}.csv", index=False)
    dec = df[df["method"] == "decomposition"].dropna(subset=["seconds"])
    for n, g in dec.groupby("branches"):
        by = g.set_index("workers")["seconds"]
        if 1 in by and 2 in by:
            print(f"{n} branches: 2 workers {by[1] / by[2]:.2f}x faster than 1 (machine ceiling {ceiling:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
