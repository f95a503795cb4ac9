"""Command line: run, validate, template, docs. Bare `python run.py` runs the shipped case."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CASE = ROOT / "inputs" / "base.xlsx"
EXIT_OK, EXIT_INPUT, EXIT_NOT_OPTIMAL = 0, 2, 3


def _money(x: float) -> str:
    return f"{x / 1e9:,.3f} bn USD" if abs(x) >= 1e8 else f"{x / 1e6:,.3f} M USD"


def print_summary(result, folder: Path | None, out=None) -> None:
    """Status, resource cost by component, shortfall by country and product, report path."""
    out = out or sys.stdout
    print(f"case: {result.case.name}" + (f"  scenario: {result.scenario}" if result.scenario else ""), file=out)
    print(f"status: {result.solve.message}", file=out)
    if result.optimal:
        costs = result.tables["costs"]
        by = costs.groupby(["category", "component"])["pv_usd"].sum()
        print("resource cost (present value):", file=out)
        if "resource" in by.index.get_level_values(0):
            for comp, v in by.loc["resource"].items():
                print(f"  {comp:<20} {_money(v):>22}", file=out)
            print(f"  {'total':<20} {_money(by.loc['resource'].sum()):>22}", file=out)
        if "transfer" in by.index.get_level_values(0):
            print(f"transfers (present value): {_money(by.loc['transfer'].sum())}", file=out)
        short = result.tables["shortfall"]
        if short.empty:
            print("shortfall: none; all demand is served", file=out)
        else:
            pen = by.loc["penalty"].sum() if "penalty" in by.index.get_level_values(0) else 0.0
            print(f"shortfall: {short['unserved_t'].sum():,.1f} t unserved "
                  f"(penalty value {_money(pen)} PV, not in resource cost)", file=out)
            show = short.groupby(["country", "product"], as_index=False)[["unserved_t", "demand_t"]].sum()
            show["unserved_share"] = show["unserved_t"] / show["demand_t"]
            show = show.sort_values("unserved_t", ascending=False).head(15)
            for r in show.itertuples():
                print(f"  {r.country:<8} {r.product:<20} {r.unserved_t:>12,.1f} t  "
                      f"({r.unserved_share:.1%} of demand)", file=out)
    if folder is not None:
        print(f"report: {folder}", file=out)


def print_versus_base(table: pd.DataFrame, out=None) -> None:
    """The scenario's effect against the base case, biggest changes first."""
    out = out or sys.stdout
    print("against the base case:", file=out)
    moved = table[table["change"].abs() > 1e-6 * table[["base", "scenario"]].abs().max(axis=1).clip(lower=1.0)]
    if moved.empty:
        print("  no change", file=out)
    for r in moved.head(12).itertuples():
        unit = "t" if r.figure.endswith("(t)") else "USD"
        fmt = (lambda v: f"{v:,.1f} t") if unit == "t" else _money
        sign = "+" if r.change >= 0 else "-"
        print(f"  {r.figure:<48} {fmt(r.base):>18} -> {fmt(r.scenario):>18} ({sign}{fmt(abs(r.change))})", file=out)


def cmd_run(args) -> int:
    if args.all_scenarios or args.scenarios or args.scenario_file:
        from model.batch import main_batch
        return main_batch(args, str(DEFAULT_CASE))
    from model.pipeline import run_case
    from model.report import write_run
    from model.schema import InputError
    case = args.workbook or str(DEFAULT_CASE)
    try:
        result = run_case(case, args.scenario)
    except InputError as exc:
        print(exc, file=sys.stderr)
        print("nothing was written.", file=sys.stderr)
        return EXIT_INPUT
    compare = None
    if result.optimal and args.scenario and not args.no_compare:
        from model.compare import versus_base
        base = run_case(case)
        if base.optimal:
            compare = versus_base(base.tables, result.tables)
            result.tables["versus_base"] = compare
    if result.optimal and not getattr(args, "no_explain", False) and not result.tables["shortfall"].empty:
        from model.explain import explain_shortfalls
        result.tables["explanations"] = explain_shortfalls(result)
    folder = write_run(result, args.out) if result.optimal else None
    from model.console import show_summary
    show_summary(result, folder)
    if compare is not None:
        print_versus_base(compare)
    if not result.optimal:
        print("no report was written: a plan that is not optimal is not an answer.", file=sys.stderr)
        if result.solve.status.startswith("infeasible"):
            from model.explain import conflict_lines, diagnose_infeasible
            for line in conflict_lines(diagnose_infeasible(result.case)):
                print(line, file=sys.stderr)
        return EXIT_NOT_OPTIMAL
    return EXIT_OK


def cmd_validate(args) -> int:
    from model.pipeline import load_case
    from model.schema import InputError
    try:
        case = load_case(args.workbook, args.scenario)
    except InputError as exc:
        print(exc, file=sys.stderr)
        return EXIT_INPUT
    rows = {k: len(v) for k, v in case.tables.items() if len(v)}
    print(f"{args.workbook}: valid ({', '.join(f'{k} {n}' for k, n in rows.items())})")
    return EXIT_OK


def cmd_calibrate(args) -> int:
    """Derive calibration terms and write them, with the rest of the case, to a new workbook."""
    from model.calibration import calibration_table, write_calibrated
    from model.pipeline import load_case
    from model.schema import InputError
    try:
        case = load_case(args.workbook)
        table = calibration_table(case)
        path = write_calibrated(args.workbook, args.out_workbook, table)
    except InputError as exc:
        print(exc, file=sys.stderr)
        return EXIT_INPUT
    except FileExistsError as exc:
        print(exc, file=sys.stderr)
        return EXIT_INPUT
    print(f"calibrated {len(table)} facilities; written {path}")
    print(table[["facility", "observed_output_t_per_yr", "below_observed_usd_per_t",
                 "above_observed_usd_per_t"]].to_string(index=False))
    return EXIT_OK


def cmd_template(args) -> int:
    from model.template import write_template
    try:
        path = write_template(args.path)
    except FileExistsError as exc:
        print(exc, file=sys.stderr)
        return EXIT_INPUT
    print(f"template written: {path}")
    return EXIT_OK


def cmd_docs(args) -> int:
    from model.template import write_docs
    print(f"input reference written: {write_docs(args.path)}")
    return EXIT_OK


def _batch_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, help="local worker processes (default: all cores)")
    p.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786) instead of local workers")
    p.add_argument("--no-resolve", action="store_true", help="rebuild every scenario's model "
                   "(default: re-solve data-only scenarios on one model per worker)")


def cmd_sweep(args) -> int:
    from model.sweep import main_sweep
    return main_sweep(args, str(DEFAULT_CASE))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="run.py", description="Rare-earth supply-chain optimizer")
    sub = p.add_subparsers(dest="command")
    r = sub.add_parser("run", help="solve a case (default: the shipped case) and write a report")
    r.add_argument("workbook", nargs="?", help=f"case workbook (default {DEFAULT_CASE.relative_to(ROOT)})")
    r.add_argument("--scenario", help="scenario name from the scenarios sheet")
    r.add_argument("--out", default=str(ROOT / "outputs"), help="folder for run folders (default outputs/)")
    r.add_argument("--no-compare", action="store_true", help="with --scenario, skip the base-case solve "
                   "that shows the scenario's effect")
    r.add_argument("--no-explain", action="store_true", help="skip the re-solves that rank what limits "
                   "each shortfall (five extra solves when something is short)")
    r.add_argument("--all-scenarios", action="store_true", help="run every scenario as a batch (base case included)")
    r.add_argument("--scenarios", help="run these scenarios (comma-separated) as a batch (base case included)")
    r.add_argument("--scenario-file", help="workbook holding only scenarios and scenario_changes sheets")
    _batch_options(r)
    r.set_defaults(func=cmd_run)
    s = sub.add_parser("sweep", help="sample parameters from a YAML spec and run every sample")
    s.add_argument("spec", help="sweep spec (YAML), e.g. inputs/example_sweep.yaml")
    s.add_argument("--workbook", help="case workbook (default: the spec's workbook, else the shipped case)")
    s.add_argument("--out", default=str(ROOT / "outputs"), help="folder for run folders (default outputs/)")
    s.add_argument("--reports", action="store_true", help="also write a report folder per sample")
    _batch_options(s)
    s.set_defaults(func=cmd_sweep)
    v = sub.add_parser("validate", help="check a workbook and list every problem")
    v.add_argument("workbook")
    v.add_argument("--scenario")
    v.set_defaults(func=cmd_validate)
    c = sub.add_parser("calibrate", help="derive calibration terms from observed outputs into a new workbook")
    c.add_argument("workbook")
    c.add_argument("out_workbook", help="new workbook to write (never overwritten)")
    c.set_defaults(func=cmd_calibrate)
    t = sub.add_parser("template", help="write an empty documented workbook")
    t.add_argument("path")
    t.set_defaults(func=cmd_template)
    d = sub.add_parser("docs", help="write the input reference (inputs/README.md)")
    d.add_argument("path", nargs="?", default=str(ROOT / "inputs" / "README.md"))
    d.set_defaults(func=cmd_docs)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["run"] + argv
    args = parser().parse_args(argv)
    pd.set_option("display.width", 120)
    return args.func(args)
