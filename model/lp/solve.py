"""Hand the Pyomo model to HiGHS (highspy) and read back values and duals.

The model is compiled to matrix form (model.lp.handoff) and passed to HiGHS as one LP,
which measured several times faster than writing files or the stock solver interface
(benchmarks/README.md).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import highspy
import numpy as np
import scipy.sparse as sp
from pyomo.common.gc_manager import PauseGC

from model.lp.canonical import LPArrays, canonical_solution
from model.lp.columns import ColumnMap
from model.lp.handoff import compile_lp
from model.lp.highs import (basic_columns, highs_lp, pass_model, quiet_highs, run_logged, status_name,
                            use_threads, warm_copy)

LOG = logging.getLogger(__name__)
# A row whose largest coefficient is this many times its smallest strains the solver's
# tolerances (HiGHS's feasibility tolerance is 1e-7): usually a unit slip in a cell.
BAD_SCALE = 1e9

# HiGHS model status -> (short status, plain words for a planner)
_STATUS = {
    "kOptimal": ("optimal", "optimal: the least-cost plan was found"),
    "kModelEmpty": ("optimal", "optimal: the model is empty"),
    "kInfeasible": ("infeasible", "infeasible: no plan meets every constraint"),
    "kUnbounded": ("unbounded", "unbounded: cost can fall without limit (a cost or bound is missing)"),
    "kUnboundedOrInfeasible": ("infeasible_or_unbounded",
                               "infeasible or unbounded: HiGHS could not tell which"),
    "kTimeLimit": ("time_limit", "stopped at the time limit before proving optimality"),
    "kIterationLimit": ("iteration_limit", "stopped at the iteration limit before proving optimality"),
    "kInterrupt": ("interrupted", "interrupted before proving optimality"),
    "kMemoryLimit": ("memory_limit", "ran out of memory"),
    "kNotset": ("error", "the solver did not start (HiGHS refused an option; its words are in run.log)"),
}


@dataclass
class SolveResult:
    """Solver outcome; values and duals are looked up by Pyomo component data."""

    status: str
    message: str
    objective: float
    x: np.ndarray
    row_dual: np.ndarray
    col_pos: ColumnMap | dict
    row_pos: dict[int, int]
    stats: dict = field(default_factory=dict)
    # The kept HiGHS model (at its optimal basis) for one-tonne re-solves (model.lp.sensitivity).
    highs: highspy.Highs | None = None
    # Per row: the dual is proven unique (the basis stays optimal for a small move of the
    # row's bound either way, so the value function is linear there).
    row_unique: np.ndarray | None = None
    # Per row, at the LP's optimal vertex: activity, and HiGHS's ranging (the bound values
    # up to which that basis stays optimal), for model.lp.sensitivity.
    row_activity: np.ndarray | None = None
    range_up: np.ndarray | None = None
    range_dn: np.ndarray | None = None
    vertex_dual: np.ndarray | None = None  # the LP vertex's duals (row_dual may be canonical)
    vertex_x: np.ndarray | None = None     # the LP vertex's plan (x may be canonical)
    # The arrays of the LP as handed to the kept HiGHS model (not read back from it).
    lp: LPArrays | None = field(default=None, repr=False)
    released: bool = field(default=False, repr=False)  # release() was called: no lookups into the model

    @property
    def optimal(self) -> bool:
        return self.status == "optimal"

    def release(self) -> None:
        """Drop the solver's model and the lookups into the Pyomo model once nothing will
        re-solve or read them (reports read the tables only): their memory goes back
        before the reports are written."""
        self.highs, self.lp, self.col_pos, self.row_pos = None, None, {}, {}
        self.released = True

    def _check_held(self) -> None:
        if self.released:
            raise RuntimeError("this run's solver model was released once its tables were made (its reports "
                               "read the tables): read result.tables, or solve with model.runs.pipeline.run_case")

    def values(self, vars: list) -> np.ndarray:
        """Values of variables, in the order given (0 for a column never used)."""
        self._check_held()
        pos = self.col_pos
        if isinstance(pos, ColumnMap):
            idx = pos.positions(vars)
        else:
            idx = np.fromiter((pos.get(id(v), -1) for v in vars), np.int64, len(vars))
        out = np.zeros(len(vars))
        hit = idx >= 0
        out[hit] = self.x[idx[hit]]
        return out

    def rows_of(self, cons: list) -> np.ndarray:
        """Row positions of constraints (-1 for a row not in the model)."""
        self._check_held()
        pos = self.row_pos
        return np.fromiter((pos.get(id(c), -1) for c in cons), np.int64, len(cons))

    def duals(self, cons: list) -> np.ndarray:
        """Duals (d objective / d right-hand side) of constraints, in the order given."""
        idx = self.rows_of(cons)
        out = np.zeros(len(cons))
        hit = idx >= 0
        out[hit] = self.row_dual[idx[hit]]
        return out

    def duals_unique(self, cons: list) -> np.ndarray:
        """Whether each constraint's dual is proven unique (True for a row not in the model)."""
        idx = self.rows_of(cons)
        out = np.ones(len(cons), bool)
        if self.row_unique is not None:
            hit = idx >= 0
            out[hit] = self.row_unique[idx[hit]]
        return out


def new_highs(settings: dict) -> highspy.Highs:
    """A quiet Highs object with the case's solver settings."""
    h = quiet_highs()
    h.setOptionValue("time_limit", float(settings.get("solver_time_limit_s", 600.0)))
    use_threads(h, int(settings.get("solver_threads", 1)))
    h.setOptionValue("solver", settings.get("solver_method", "choose"))
    return h


def status_words(h: highspy.Highs) -> tuple[str, str]:
    """(optimal | infeasible | unbounded | time limit | error ..., plain words) of a solve."""
    name = status_name(h)
    return _STATUS.get(name, ("error", f"solver stopped: {h.modelStatusToString(h.getModelStatus())}"))


def load_arrays(c: np.ndarray, offset: float, A, col_lower: np.ndarray, col_upper: np.ndarray,
                row_lower: np.ndarray, row_upper: np.ndarray, settings: dict) -> tuple[highspy.Highs, str | None]:
    """min c x + offset s.t. row bounds on A x (a scipy CSC array) and column bounds, in a
    new Highs object with the case's solver settings: (highs, None) or what it refused."""
    hl = highs_lp(A, c, col_lower, col_upper, row_lower, row_upper, offset)
    h = new_highs(settings)
    return h, pass_model(h, hl)


def to_highs(model, settings: dict) -> tuple[highspy.Highs, list, list, dict]:
    """Compile the model to matrices (model.lp.handoff) and load it into a new Highs object."""
    t0 = time.perf_counter()
    lp = compile_lp(model)
    t1 = time.perf_counter()
    warn_bad_scaling(lp.A, lp.rows)
    n_row, n_col = lp.A.shape
    h, refused = load_arrays(lp.c, lp.offset, lp.A, lp.col_lower, lp.col_upper, lp.row_lower, lp.row_upper,
                             settings)
    t2 = time.perf_counter()
    arrays = LPArrays(lp.c, lp.A, lp.row_lower, lp.row_upper, lp.col_lower, lp.col_upper)
    return h, lp.columns, lp.rows, {"refused": refused, "compile_s": t1 - t0, "pass_s": t2 - t1, "rows": n_row,
                                    "columns": n_col, "nonzeros": int(lp.A.nnz), "handoff_route": lp.route,
                                    "col_pos": lp.col_pos, "lp": arrays}


def row_name(con) -> str:
    """A constraint in words: its name, and for a product balance row its node."""
    try:
        if con.parent_component().local_name == "product_balance":
            country, product, period = con.model().NODES.at(con.index() + 1)
            return f"product_balance of {product} in {country}, {period}"
        return con.name
    except (AttributeError, IndexError, TypeError, ValueError):
        return str(con)


def warn_bad_scaling(A, rows: list, show: int = 5) -> int:
    """Warn (naming up to `show` constraints) about rows whose coefficients span more
    than BAD_SCALE; returns how many there are."""
    R = A.tocsr()
    if not R.nnz:
        return 0
    mags = np.abs(R.data)
    counts = np.diff(R.indptr)
    has = counts > 0
    big = np.zeros(R.shape[0])
    small = np.full(R.shape[0], np.inf)
    big[has] = np.maximum.reduceat(mags, R.indptr[:-1][has])
    small[has] = np.minimum.reduceat(mags, R.indptr[:-1][has])
    bad = np.flatnonzero(has & (big > BAD_SCALE * small))
    if len(bad):
        names = ", ".join(f"{row_name(rows[i])} ({small[i]:.3g} to {big[i]:.3g})" for i in bad[:show])
        LOG.warning(f"{len(bad):,} constraint row(s) badly scaled (coefficients spanning more than "
                    f"1e{int(np.log10(BAD_SCALE))}; results may be inaccurate, often a unit slip in a cell): {names}"
                    + (" ..." if len(bad) > show else ""))
    return len(bad)


def _ranging(h: highspy.Highs, lp: LPArrays, x: np.ndarray, ax: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row activities and HiGHS's row-bound ranging at the optimal basis. Ranging is
    trusted only for rows whose bound is in the basis (nonbasic): for a row whose slack
    is basic it assumes the slack is positive, which a tight (degenerate) row breaks, so
    such rows (and all, without ranging) get empty ranges and nothing is taken as proven.

    A row bound's range depends only on the basis matrix and the basic values, so it is
    read from a copy holding the basic columns alone (the others fixed where they are,
    their activity moved into the row bounds) solved at the same basis: HiGHS's ranging
    of the whole LP also ranges every column's cost and bound, which at 600 k columns took
    0.5 s and 160 MB for the 19 k row ranges used here."""
    row_status = list(h.getBasis().row_status)
    row_basic = np.array([s == highspy.HighsBasisStatus.kBasic for s in row_status], bool)
    ranged = _basis_ranging(h, lp, x, ax, row_status, row_basic)
    if ranged is None:  # the copy did not stand at the same optimal basis: range the whole LP
        status, rng = h.getRanging()
        if status != highspy.HighsStatus.kOk:
            return ax, ax.copy(), ax.copy()
        ranged = np.asarray(rng.row_bound_up.value_, float), np.asarray(rng.row_bound_dn.value_, float)
    up, dn = ranged
    up[row_basic] = ax[row_basic]
    dn[row_basic] = ax[row_basic]
    return ax, up, dn


def _basis_ranging(h: highspy.Highs, lp: LPArrays, x: np.ndarray, ax: np.ndarray, row_status: list,
                   row_basic: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Row-bound ranges (up, down) from the basic columns' copy; None if it needed a pivot."""
    cols = np.flatnonzero(basic_columns(h, lp.c.size))
    A = sp.csc_array(lp.A[:, cols])
    shift = ax - A @ x[cols]  # the fixed columns' share of each row's activity
    copy, refused = warm_copy(h, A, lp.c[cols], lp.lo[cols], lp.up[cols], lp.rl - shift, lp.ru - shift)
    if refused is not None:
        return None
    S = highspy.HighsBasisStatus
    basis = highspy.HighsBasis()
    basis.col_status = [S.kBasic] * len(cols)
    basis.row_status = row_status
    basis.valid, basis.alien = True, False
    if len(cols) + int(row_basic.sum()) != lp.rl.size or copy.setBasis(basis) != highspy.HighsStatus.kOk:
        return None
    copy.run()
    if status_name(copy) != "kOptimal" or copy.getInfo().simplex_iteration_count != 0:
        return None
    status, rng = copy.getRanging()
    if status != highspy.HighsStatus.kOk:
        return None
    return (np.asarray(rng.row_bound_up.value_, float) + shift, np.asarray(rng.row_bound_dn.value_, float) + shift)


def _row_unique(lp: LPArrays, ax: np.ndarray, up: np.ndarray, dn: np.ndarray) -> np.ndarray:
    """Rows whose dual is proven unique: HiGHS's ranging says the optimal basis stays
    optimal for the row's active bound moved a little either way (then the optimal cost
    is linear in that bound, and its slope, the dual, is the only valid one)."""
    eps = 1e-9 * np.maximum(1.0, np.abs(ax))
    at_up = np.abs(ax - lp.ru) <= eps
    at_lo = np.abs(ax - lp.rl) <= eps
    bound = np.where(at_up, lp.ru, lp.rl)
    slack = ~at_up & ~at_lo  # slack at an optimal plan: every optimal dual is 0
    return slack | ((up > bound + eps) & (dn < bound - eps))


def run_highs(h: highspy.Highs, cols: list, rows: list, stats: dict, settings: dict | None = None
              ) -> SolveResult:
    """Solve the loaded model; when optimal, read the plan by the canonical rule
    (model.lp.canonical) unless the case's `canonical_plan` is FALSE."""
    settings = settings or {}
    refused = stats.pop("refused", None)
    t0 = time.perf_counter()
    if refused is None:
        run_logged(h)
    t1 = time.perf_counter()
    raw = h.modelStatusToString(h.getModelStatus())
    name = status_name(h)
    status, message = _STATUS.get(name, ("error", f"solver stopped: {raw}"))
    if refused is not None:
        status, message = "error", refused
    elif name == "kModelEmpty" and len(cols):  # the model has columns: HiGHS did not hold it
        status, message = "error", (f"the solver holds an empty model though the LP has {len(cols):,} "
                                    "columns: it was not loaded (see run.log)")
    sol = h.getSolution()
    info = h.getInfo()
    optimal = status == "optimal"
    x = np.asarray(sol.col_value, float) if optimal else np.zeros(len(cols))
    dual = np.asarray(sol.row_dual, float) if optimal and sol.dual_valid else np.zeros(len(rows))
    col_pos = stats.pop("col_pos", None) or ColumnMap(cols)
    row_pos = {id(c): i for i, c in enumerate(rows)}
    t2 = time.perf_counter()
    extra: dict = {}
    ax = up = dn = unique = vertex_dual = vertex_x = None
    lp = stats.pop("lp", None)
    if optimal and len(cols):
        lp = lp if lp is not None else LPArrays.from_highs(h)
        ax, up, dn = _ranging(h, lp, x, np.asarray(sol.row_value, float))
        unique = _row_unique(lp, ax, up, dn)
        vertex_dual, vertex_x = dual, x
        x, dual, extra = _canonical(h, lp, x, dual, settings)
    t3 = time.perf_counter()
    stats = dict(stats, solve_s=t1 - t0, load_s=t2 - t1, canonical_s=t3 - t2,
                 iterations=int(info.simplex_iteration_count), highs_status=raw, **extra)
    obj = float(info.objective_function_value) if optimal else float("nan")
    return SolveResult(status, message, obj, x, dual, col_pos, row_pos, stats, h if optimal else None,
                       unique, ax, up, dn, vertex_dual, vertex_x, lp if optimal else None)


def _canonical(h: highspy.Highs, lp: LPArrays, x: np.ndarray, dual: np.ndarray, settings: dict):
    """The plan (and, if asked, the prices) by the canonical rule."""
    plan = bool(settings.get("canonical_plan", True))
    prices = bool(settings.get("canonical_prices", False))
    if not (plan or prices):
        return x, dual, {"canonical": "off"}
    col_dual = np.asarray(h.getSolution().col_dual, float)
    xc, yc, st = canonical_solution(lp, x, col_dual, dual, prices=prices)
    if st["canonical_status"] != "optimal":  # never silently: the table says which plan it is
        st["canonical"] = f"vertex (canonical step {st['canonical_status']})"
        return x, dual, st
    st["canonical"] = "least-norm plan" + (" and prices" if prices else "")
    return (xc if plan else x), (yc if prices else dual), st


def solve_loaded(h: highspy.Highs, settings: dict) -> tuple[str, str, np.ndarray, np.ndarray, float, dict]:
    """Solve an LP loaded from arrays (no Pyomo model behind it, such as a scenario tree's
    extensive form): (status, words, plan by the canonical rule, the vertex's row duals,
    objective, stats)."""
    run_logged(h)
    status, words = status_words(h)
    if status != "optimal":
        return status, words, np.zeros(0), np.zeros(0), float("nan"), {}
    sol = h.getSolution()
    x = np.asarray(sol.col_value, float)
    dual = np.asarray(sol.row_dual, float)
    if len(x):
        x, _, extra = _canonical(h, LPArrays.from_highs(h), x, dual, settings)
    else:
        extra = {}
    return status, words, x, dual, float(h.getInfo().objective_function_value), extra


def solve_model(model, settings: dict) -> SolveResult:
    """Compile, pass, solve; a non-optimal outcome carries no values."""
    with PauseGC():  # the hand-off makes many long-lived objects (model.runs.pipeline)
        h, cols, rows, stats = to_highs(model, settings)
    return run_highs(h, cols, rows, stats, settings)  # an empty model is HiGHS's kModelEmpty: optimal
