"""Time a scenario tree on the shipped base case with N branches (a script, not a test).

    python benchmarks/tree_bench.py --branches 4,10 [--repeats 1]

The tree is the shipped reserve_2027 tree widened: its four branches (calm, licensing
freeze, Dy/Tb ban, magnet ban) plus N - 4 licensing branches revealed in 2027 whose
approval share runs evenly from 5 % to 95 %, all equally likely with the calm branch
keeping 40 %. Each run is a fresh process (`run.py run --tree`, folder written), timed end
to end, with the phases from its manifest and peak memory; the deterministic base-case
solve (`run.py run --no-explain`) is timed as the unit. Results go to
benchmarks/results/tree_<stamp>.csv.
"""

from __future__ import annotations

import argparse
import json
import resource
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


def timed(cmd: list[str]) -> tuple[float, float]:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return time.perf_counter() - t0, peak


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--branches", default="4,10")
    ap.add_argument("--repeats", type=int, default=1)
    a = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        unit, _ = timed([sys.executable, str(ROOT / "run.py"), "-q", "run", "--no-explain", "--out", str(tmp / "o")])
        print(f"deterministic base-case run: {unit:.1f} s", flush=True)
        for n in [int(x) for x in a.branches.split(",")]:
            book = tree_workbook(n, tmp)
            for rep in range(a.repeats):
                out = tmp / f"out_{n}_{rep}"
                secs, peak = timed([sys.executable, str(ROOT / "run.py"), "-q", "run", str(book), "--tree", "bench",
                                    "--out", str(out)])
                man = json.loads(next(out.glob("*/manifest.json")).read_text())
                rows.append({"branches": n, "repeat": rep + 1, "seconds": secs, "unit_seconds": unit,
                             "ratio_to_deterministic": secs / unit, "peak_rss_mb_max_so_far": peak,
                             **{k: v for k, v in man["seconds"].items()}, "objective_usd": man["objective_usd"]})
                print(f"{n} branches: {secs:.1f} s ({secs / unit:.1f}x the deterministic run), phases "
                      + ", ".join(f"{k} {v:.1f}" for k, v in man["seconds"].items()), flush=True)
    RESULTS.mkdir(exist_ok=True)
    pd.DataFrame(rows).to_csv(RESULTS / f"tree_{time.strftime('%Y%m%d-%H%M%S')}.csv", index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
