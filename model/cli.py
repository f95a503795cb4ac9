"""The command line: run, sweep, search, validate, list-scenarios, calibrate, template, docs. Bare `rare-earth`
(or `python run.py`) runs the shipped case. Everything a command says goes through
logging (model.logs): the compact story on the console, -q for warnings and errors
only, -v for timings and the solver's log; every run folder keeps all of it in run.log."""

from __future__ import annotations

import argparse
import errno
import gc
import logging
import tempfile
import platform
import sys
from importlib import metadata
from pathlib import Path

from pyomo.common.gc_manager import PauseGC

from model import __version__
from model.case.schema import InputError
from model.logs import console

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CASE = ROOT / "inputs" / "base.xlsx"
# Exit status (README): 0 done; 2 the input has problems; 3 the solve was not optimal;
# 4 the system stopped it (a folder not writable, a full disk, memory); 130 interrupted.
EXIT_OK, EXIT_INPUT, EXIT_NOT_OPTIMAL, EXIT_SYSTEM, EXIT_INTERRUPTED = 0, 2, 3, 4, 130
NOTHING_WRITTEN = "nothing was written."
LOG = logging.getLogger(__name__)


def version_text() -> str:
    """This tool's version and the solver-side versions it runs on (for bug reports)."""
    def v(pkg: str) -> str:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "not installed"
    return (f"rare-earth {__version__} (python {platform.python_version()}, pyomo {v('pyomo')}, "
            f"highspy {v('highspy')}, pandas {v('pandas')})")


_WHAT_TO_DO = {
    errno.EACCES: "permission denied: choose a folder you can write to (--out) or ask for access",
    errno.EPERM: "not permitted: choose a folder you can write to (--out) or ask for access",
    errno.EROFS: "the file system is read-only: choose another folder (--out)",
    errno.ENOSPC: "no space (or no free inodes) left on that disk: free some or choose another folder (--out)",
    errno.EDQUOT: "your disk quota is used up: free some space or choose another folder (--out)",
    errno.ENAMETOOLONG: "a name is too long for the file system: use a shorter folder, case or scenario name",
    errno.ENOTDIR: "a path that must be a folder is a file: --out must name a folder",
    errno.EEXIST: "a path that must be a folder is a file: --out must name a folder",
    errno.ENOENT: "not found: check the path",
    errno.EISDIR: "a folder where a file belongs: name the file itself",
}


def os_error_words(exc: OSError) -> str:
    """An operating-system error as one line: the path, what happened, what to do."""
    path = exc.filename if exc.filename is not None else ""
    what = _WHAT_TO_DO.get(exc.errno, f"{exc.strerror or exc}")
    return f"cannot use {path}: {what}" if path else f"stopped by the system: {what}"


def prepare_out(out: str) -> None:
    """Fail before any solve if the output folder cannot be written (a file, read-only,
    permission denied): make it, and make and remove a folder in it."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(folder))
    folder.mkdir(parents=True, exist_ok=True)
    tempfile.TemporaryDirectory(dir=folder, prefix=".probe_").cleanup()


def input_error(exc: Exception) -> int:
    LOG.error(str(exc))
    LOG.error(NOTHING_WRITTEN)
    return EXIT_INPUT


def pandas_display() -> None:
    """Tables said on the console wrap at 120 characters. Imports pandas (0.4 s): a
    single run starts its PNG helper first."""
    import pandas as pd
    pd.set_option("display.width", 120)


def cmd_run(args) -> int:
    if args.tree or args.all_scenarios or args.scenarios or args.scenario_file:
        pandas_display()
        return cmd_tree(args) if args.tree else cmd_batch(args)
    from model.reports.aside import PngsAside
    aside = PngsAside().start()  # first: it imports matplotlib while this process imports the model and solves
    try:
        # The imports make some 100 k objects that live as long as the process: the
        # collector would only scan them again and again meanwhile (0.13 s).
        with PauseGC():
            pandas_display()
            from model.runs.single import run_and_report
        # ... and then frozen, out of the young generations' sight: those scanned them twice
        # more (0.08 s); the solve's gc.unfreeze() (model.runs.pipeline) hands them to the
        # oldest, as does the end of this command (a caller's objects are not left frozen)
        gc.freeze()
        prepare_out(args.out)
        result, _ = run_and_report(args.workbook or str(DEFAULT_CASE), args.scenario, args.out,
                                   compare=not args.no_compare, explain=not args.no_explain,
                                   against=args.against, aside=aside)
    except InputError as exc:
        return input_error(exc)
    finally:
        gc.unfreeze()
        aside.stop()
    return EXIT_OK if result.optimal else EXIT_NOT_OPTIMAL


def cmd_tree(args) -> int:
    """`run --tree NAME`: the plan under uncertainty on a scenario tree."""
    from model.runs.tree import run_tree_and_report
    if args.scenario or args.scenarios or args.all_scenarios or args.scenario_file:
        LOG.error("--tree plans over the tree's own scenarios: give it without --scenario, --scenarios, "
                  "--all-scenarios or --scenario-file")
        return EXIT_INPUT
    prepare_out(args.out)
    try:
        from model.runs.batch import default_workers
        # the decomposition's branches on every core by default; the extensive form is one solve
        workers = args.workers or (default_workers() if args.method == "decomposition" else 1)
        if args.scheduler and args.method != "decomposition":
            LOG.error("--scheduler with --tree runs the decomposition's branches on a Dask cluster: add "
                      "--method decomposition")
            return EXIT_INPUT
        res, folder = run_tree_and_report(args.workbook or str(DEFAULT_CASE), args.tree, args.out, args.method,
                                          workers, args.scheduler)
    except InputError as exc:
        return input_error(exc)
    return EXIT_OK if folder is not None else EXIT_NOT_OPTIMAL


def cluster_error(exc: Exception, scheduler: str | None) -> int:
    """A missing Dask install or an unreachable scheduler, said plainly (nothing written)."""
    if isinstance(exc, ImportError) and scheduler:
        LOG.error(f"--scheduler needs Dask: pip install -e '.[cluster]' ({exc})")
    elif scheduler:
        LOG.error(f"cannot use the Dask scheduler at {scheduler}: {exc}")
    else:
        raise exc
    LOG.error(NOTHING_WRITTEN)
    return EXIT_INPUT


def cmd_batch(args) -> int:
    """`run` with --all-scenarios, --scenarios or --scenario-file."""
    from model.runs.batch import check_names, exit_code, load_inputs, run_batch, scenario_names
    prepare_out(args.out)
    try:
        case, source = load_inputs(args.workbook or str(DEFAULT_CASE), args.scenario_file)
        if args.all_scenarios:
            names = scenario_names(source)
        else:
            names = [n.strip() for n in (args.scenarios or args.scenario or "").split(",") if n.strip()]
            if args.scenarios is None and args.scenario is None:
                names = scenario_names(source)  # a scenario file alone: all of its scenarios
            check_names(source, names)
    except InputError as exc:
        return input_error(exc)
    try:
        result = run_batch(case, source, names, workers=args.workers, scheduler=args.scheduler,
                           out=args.out, resolve=not args.no_resolve, parents=True)
    except (ImportError, OSError) as exc:
        return cluster_error(exc, args.scheduler)
    return exit_code(result)


def cmd_sweep(args) -> int:
    from model.runs.batch import exit_code
    from model.runs.sweep import run_sweep
    prepare_out(args.out)
    try:
        result = run_sweep(args.spec, args.workbook, default_case=str(DEFAULT_CASE), workers=args.workers,
                           scheduler=args.scheduler, out=args.out, resolve=not args.no_resolve,
                           reports=args.reports)
    except InputError as exc:
        return input_error(exc)
    except (ImportError, OSError) as exc:
        return cluster_error(exc, args.scheduler)
    return exit_code(result)


def cmd_search(args) -> int:
    """`search SPEC`: the most damaging export control(s) of a candidate set."""
    from model.runs.batch import default_workers
    from model.runs.search import SearchError, run_search
    prepare_out(args.out)
    try:
        result = run_search(args.spec, args.workbook, default_case=str(DEFAULT_CASE),
                            workers=args.workers or default_workers(), k=args.k, out=args.out,
                            check=not args.no_check)
    except InputError as exc:
        return input_error(exc)
    except SearchError as exc:
        LOG.error(str(exc))
        LOG.error(NOTHING_WRITTEN)
        return EXIT_NOT_OPTIMAL
    if result.recheck is not None and not result.recheck["agrees"]:
        LOG.error("the plain run of the top result does not reproduce its harm (see manifest.json)")
        return EXIT_NOT_OPTIMAL
    return EXIT_OK


def cmd_validate(args) -> int:
    from model.runs.pipeline import load_case, scenario_problems
    try:
        case = load_case(args.workbook, args.scenario)
        if not args.scenario and (problems := scenario_problems(case)):
            raise InputError(problems)
    except InputError as exc:
        LOG.error(str(exc))
        return EXIT_INPUT
    rows = {k: len(v) for k, v in case.tables.items() if len(v)}
    n = len(case.tables["scenarios"])
    LOG.info(f"{args.workbook}: valid ({', '.join(f'{k} {n}' for k, n in rows.items())})"
             + (f"; all {n} scenarios apply cleanly" if n and not args.scenario else ""))
    return EXIT_OK


def cmd_list_scenarios(args) -> int:
    """Each scenario of the workbook with its parent and description, in sheet order."""
    from model.case.workbook import read_case
    path = args.workbook or str(DEFAULT_CASE)
    try:
        case = read_case(path)
    except InputError as exc:
        LOG.error(str(exc))
        return EXIT_INPUT
    scen = case.tables["scenarios"]
    if scen.empty:
        LOG.info(f"{path}: no scenarios (add rows to the scenarios and scenario_changes sheets)")
        return EXIT_OK
    lines = [f"{path}: {len(scen)} scenarios (run one: rare-earth run {path} --scenario NAME)"]
    for r in scen.itertuples():
        parent = f" (child of {r.parent})" if isinstance(r.parent, str) and r.parent else ""
        lines.append(f"  {r.scenario}{parent}: {r.description}")
    LOG.info("\n".join(lines))
    return EXIT_OK


def cmd_calibrate(args) -> int:
    """Derive calibration terms and write them, with the rest of the case, to a new workbook."""
    from model.analysis.calibration import calibration_table, write_calibrated
    from model.runs.pipeline import load_case
    try:
        case = load_case(args.workbook)
        table = calibration_table(case)
        path = write_calibrated(args.workbook, args.out_workbook, table)
    except (InputError, FileExistsError) as exc:
        LOG.error(str(exc))
        return EXIT_INPUT
    LOG.info(f"calibrated {len(table)} facilities; written {path}\n" + table[
        ["facility", "observed_output_t_per_yr", "below_observed_usd_per_t", "above_observed_usd_per_t"]
    ].to_string(index=False))
    return EXIT_OK


def cmd_template(args) -> int:
    from model.case.template import write_template
    try:
        path = write_template(args.path)
    except FileExistsError as exc:
        LOG.error(str(exc))
        return EXIT_INPUT
    LOG.info(f"template written: {path}")
    return EXIT_OK


def cmd_docs(args) -> int:
    from model.case.template import write_docs
    LOG.info(f"input reference written: {write_docs(args.path)}")
    return EXIT_OK


def _batch_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, help="local worker processes (default: all cores)")
    p.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786) instead of local workers")
    p.add_argument("--no-resolve", action="store_true", help="rebuild every scenario's model "
                   "(default: re-solve data-only scenarios on one model per worker)")


def _talk_options(p: argparse.ArgumentParser) -> None:
    """-q / -v on every command (and before it)."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("-q", "--quiet", action="store_const", const=-1, dest="verbosity", default=argparse.SUPPRESS,
                   help="say only warnings and errors (run.log still records everything)")
    g.add_argument("-v", "--verbose", action="store_const", const=1, dest="verbosity", default=argparse.SUPPRESS,
                   help="also say each step's time and the solver's log")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rare-earth", description="Rare-earth supply-chain optimizer "
                                "(also: python run.py ...)")
    p.add_argument("--version", action="version", version=version_text())
    _talk_options(p)
    sub = p.add_subparsers(dest="command")
    r = sub.add_parser("run", help="solve a case (default: the shipped case) and write a report")
    r.add_argument("workbook", nargs="?", help=f"case workbook (default {DEFAULT_CASE.relative_to(ROOT)})")
    r.add_argument("--scenario", help="scenario name from the scenarios sheet (list them: rare-earth "
                   "list-scenarios WORKBOOK)")
    r.add_argument("--out", default="outputs", help="folder for run folders (default: outputs/ under the "
                   "current folder)")
    r.add_argument("--against", help="with --scenario, compare with this scenario (or 'base case') "
                   "instead of the scenario's parent; the base case is always compared too")
    r.add_argument("--no-compare", action="store_true", help="with --scenario, skip the reference solves "
                   "(parent, base case) that show the scenario's effect")
    r.add_argument("--no-explain", action="store_true", help="skip the re-solves that rank what limits "
                   "each shortfall (five extra solves when something is short)")
    r.add_argument("--all-scenarios", action="store_true", help="run every scenario as a batch (base case included)")
    r.add_argument("--scenarios", help="run these scenarios (comma-separated) as a batch (base case included)")
    r.add_argument("--scenario-file", help="workbook holding only scenarios and scenario_changes sheets")
    r.add_argument("--tree", help="plan under uncertainty on this scenario tree (sheet branches): decisions "
                   "before a branch is known are shared by its branches; expected cost, EVPI, VSS")
    r.add_argument("--method", choices=("extensive", "decomposition"), default="extensive",
                   help="with --tree: one LP of every branch (default; its plan is the least-norm optimal plan), "
                        "or the L-shaped decomposition (for large trees: branches solved warm on --workers "
                        "processes, default all cores; its plan is the least-norm plan of the master's optimal "
                        "face, checked in every branch)")
    _batch_options(r)
    r.set_defaults(func=cmd_run)
    s = sub.add_parser("sweep", help="sample parameters from a YAML spec and run every sample")
    s.add_argument("spec", help="sweep spec (YAML), e.g. inputs/example_sweep.yaml")
    s.add_argument("--workbook", help="case workbook (default: the spec's workbook, else the shipped case)")
    s.add_argument("--out", default="outputs", help="folder for run folders (default: outputs/ under the "
                   "current folder)")
    s.add_argument("--reports", action="store_true", help="also write a report folder per sample")
    _batch_options(s)
    s.set_defaults(func=cmd_sweep)
    se = sub.add_parser("search", help="find the export control (or k controls) of a candidate set that "
                        "does the most harm to named countries, with the controller's lost export revenue")
    se.add_argument("spec", help="search spec (YAML), e.g. inputs/control_search.yaml")
    se.add_argument("--workbook", help="case workbook (default: the spec's workbook, else the shipped case)")
    se.add_argument("--k", type=int, help="controls imposed together (default: the spec's k; 1 is exhaustive "
                    "and exact over the set, more is greedy, a heuristic)")
    se.add_argument("--out", default="outputs", help="folder for run folders (default: outputs/ under the "
                    "current folder)")
    se.add_argument("--workers", type=int, help="local worker processes (default: all cores)")
    se.add_argument("--no-check", action="store_true", help="skip the plain re-run of the top result")
    se.set_defaults(func=cmd_search)
    v = sub.add_parser("validate", help="check a workbook and list every problem")
    v.add_argument("workbook")
    v.add_argument("--scenario")
    v.set_defaults(func=cmd_validate)
    ls = sub.add_parser("list-scenarios", help="list a workbook's scenarios: name, parent, what it changes")
    ls.add_argument("workbook", nargs="?", help=f"case workbook (default {DEFAULT_CASE.relative_to(ROOT)})")
    ls.set_defaults(func=cmd_list_scenarios)
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
    for command in (r, s, se, v, ls, c, t, d):
        _talk_options(command)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if a not in ("-q", "--quiet", "-v", "--verbose")), None)
    if first is None or first.startswith("-") and first not in ("-h", "--help", "--version"):
        at = argv.index(first) if first is not None else len(argv)
        argv = argv[:at] + ["run"] + argv[at:]
    args = parser().parse_args(argv)
    if args.func is not cmd_run:
        pandas_display()
    with console(getattr(args, "verbosity", 0)):
        try:
            return args.func(args)
        except KeyboardInterrupt:
            LOG.error("interrupted: nothing more was written (a run folder appears only when complete)")
            return EXIT_INTERRUPTED
        except OSError as exc:
            LOG.error(os_error_words(exc))
            LOG.error("no run folder was left half-written.")
            return EXIT_SYSTEM
        except MemoryError:
            LOG.error("out of memory: run a smaller case or batch (--workers 1), or on a larger machine")
            return EXIT_SYSTEM
