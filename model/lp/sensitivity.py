"""What one more (or one less) tonne of a limit is worth, measured, not read off a vertex.

The dual of a capacity, quota or cap is "what one more tonne would save" only where the
optimal cost is linear in that limit; at a degenerate optimum the LP has several valid
duals and HiGHS returns one of them, so the figure would change with the solver build.
Here every value of a limit is the change in the optimal cost when the limit moves by
one unit (`DELTA`, 1 t/yr of the row's rate):

    value_more = (V(b) - V(b + 1)) / w_t      value_less = (V(b - 1) - V(b)) / w_t

for a <= limit (signs mirrored for >=), with w_t the period weight, so both are
undiscounted USD per tonne. Where HiGHS's ranging shows the optimal basis stays optimal
for the bound moved one unit either way, V is linear there and the value is the dual
itself (no re-solve); elsewhere the kept HiGHS model is re-solved warm with the bound
moved and then put back (bounds and basis restored), so later re-solves start where
they would have.

A warm re-solve is a pivot or two, but HiGHS sets up the whole LP for each (0.2-0.3 s at
600k columns), so re-solves run on a copy cut down to the columns that can move (see
`_CutDown`); where the cut-down answer is not proven optimal for the whole LP the row is
re-solved in the kept model as above. Both give the optimal cost at the moved limit.

A ban is not a row: its forbidden flows are not in the model. Its value is measured the
same way, by adding the forbidden flows as columns with a joint allowance of one tonne
(a 1 t/yr quota in place of the ban), re-solving and removing them again.
"""

from __future__ import annotations

import highspy
import numpy as np
import scipy.sparse as sp

from model.lp.canonical import LPArrays
from model.lp.highs import basic_columns, status_name, warm_copy

DELTA = 1.0  # t/yr: "one more tonne"
# Columns a cut-down re-solve keeps besides the basic and non-zero ones, per row of the LP,
# cheapest reduced cost first (2 per row: 13 re-solves at 600k columns took no fallback).
KEEP_PER_ROW = 2


def _resolve_change(h: highspy.Highs, x0: np.ndarray, c: np.ndarray,
                    new_costs: np.ndarray | None = None) -> float:
    """Change in the optimal cost after a re-solve, c (x1 - x0) over the original columns
    plus new_costs x1 over columns added after them (so it keeps the precision of the few
    tonnes that moved, not the rounding of a 1e11 objective); NaN if not optimal."""
    v = _resolve_objective(h)
    if np.isnan(v):
        return v
    x1 = np.asarray(h.getSolution().col_value, float)
    n0 = len(x0)
    added = float(np.dot(new_costs, x1[n0:])) if new_costs is not None else 0.0
    return _cost_change(c, x1[:n0], x0) + added


def _cost_change(c: np.ndarray, x1: np.ndarray, x0: np.ndarray) -> float:
    """c (x1 - x0) over the few columns that moved (a dot over all of them cost 15 ms a
    re-solve at 600k columns, and woke BLAS threads that then spun on a shared core)."""
    d = x1 - x0
    moved = np.flatnonzero(d)
    return float(np.dot(c[moved], d[moved]))


def _resolve_objective(h: highspy.Highs) -> float:
    """Re-solve warm by the dual simplex (an interior-point case setting would ignore the
    basis), the case's own method restored afterwards."""
    method = h.getOptionValue("solver")
    method = method[1] if isinstance(method, tuple) else method  # (status, value) in highspy
    presolve = h.getOptionValue("presolve")
    presolve = presolve[1] if isinstance(presolve, tuple) else presolve
    h.setOptionValue("solver", "simplex")
    h.setOptionValue("presolve", "off")  # a warm start from the kept basis needs none
    try:
        h.run()
    finally:
        h.setOptionValue("solver", method)
        h.setOptionValue("presolve", presolve)
    if status_name(h) != "kOptimal":
        return float("nan")  # e.g. tightening a limit makes the case infeasible
    return float(h.getInfo().objective_function_value)


def _snap(values: np.ndarray, objective: float, weights: np.ndarray) -> np.ndarray:
    """Values within 1e-13 of the objective are 0: below what a re-solve's tolerances let
    one tell from nothing."""
    floor = 1e-13 * max(1.0, abs(objective)) / np.asarray(weights, float)
    return np.where(np.abs(values) < floor, 0.0, values) + 0.0


def limit_values(sol, cons: list, weights: np.ndarray, upper: bool = True
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per constraint: (value of one unit more room, value of one unit less room), in
    objective units divided by `weights` (the period weight of each row). `upper`: the
    rows are caps (<=; more room raises the bound), else floors (>=; more room lowers
    it). A row that is not tight is worth 0 for one more unit, and for one less where
    its slack is at least one unit. NaN where tightening makes the case infeasible."""
    n = len(cons)
    more, less = np.zeros(n), np.zeros(n)
    if n == 0:
        return more, less
    h = getattr(sol, "highs", None)
    idx = sol.rows_of(cons)
    y = np.asarray(sol.row_dual, float)
    if h is None or sol.row_activity is None:
        return -y[idx] / weights if upper else y[idx] / weights, np.full(n, np.nan)
    lp = solved_lp(sol)
    rl, ru = lp.rl, lp.ru
    # the vertex's own duals (the canonical prices option may have replaced sol.row_dual)
    vy = getattr(sol, "vertex_dual", None)
    vy = y if vy is None else vy
    ks = np.flatnonzero(idx >= 0)
    i = idx[ks]
    bound = ru[i] if upper else rl[i]
    slack = (ru[i] - sol.row_activity[i]) if upper else (sol.row_activity[i] - rl[i])
    tight = slack <= 1e-7 * np.maximum(1.0, np.abs(bound))
    room_up = sol.range_up[i] >= bound + DELTA  # the basis stays optimal one unit above
    room_dn = sol.range_dn[i] <= bound - DELTA  # ... and one unit below
    lin_more = tight & (room_up if upper else room_dn)
    lin_less = tight & (room_dn if upper else room_up)
    dual = (-1.0 if upper else 1.0) * vy[i] * DELTA
    # not tight: one more unit is worth 0; slack of a unit or more: one less is worth 0 too
    more[ks] = np.where(lin_more, dual, 0.0)
    less[ks] = np.where(lin_less & (slack < DELTA), dual, 0.0)
    todo_more = ks[tight & ~lin_more]
    todo_less = ks[(slack < DELTA) & ~lin_less]
    if len(todo_more) or len(todo_less):
        solver = _LimitMoves(sol, lp, vy)
        for k in todo_more:
            more[k] = -solver.change(idx[k], rl[idx[k]], ru[idx[k]], upper, DELTA)
        for k in todo_less:
            less[k] = solver.change(idx[k], rl[idx[k]], ru[idx[k]], upper, -DELTA)
    base = float(sol.objective)
    return (_snap(more / DELTA / weights, base, weights), _snap(less / DELTA / weights, base, weights))


def tightening_cost(sol, cons: list, steps: np.ndarray, upper: bool = True) -> np.ndarray:
    """Per constraint: the rise in the optimal cost (objective units) when its limit is
    tightened by steps[k] (a cap lowered, a floor raised), measured: 0 where the slack
    covers the step, the dual times the step where HiGHS's ranging shows the optimal basis
    stays optimal over it, else re-solved with the limit moved (_LimitMoves). A whole
    step, not one unit scaled up: the cost is convex in the limit, so a step past a
    breakpoint costs more than its first unit says. NaN where the tightened case is
    infeasible or nothing can be measured."""
    n = len(cons)
    out = np.full(n, np.nan)
    h = getattr(sol, "highs", None)
    if n == 0 or h is None or sol.row_activity is None:
        return out
    idx = sol.rows_of(cons)
    lp = solved_lp(sol)
    rl, ru = lp.rl, lp.ru
    vy = getattr(sol, "vertex_dual", None)
    vy = np.asarray(sol.row_dual, float) if vy is None else vy
    solver = None
    for k, i in enumerate(idx):
        step = float(steps[k])
        if step <= 0 or i < 0:
            out[k] = 0.0 if step <= 0 else np.nan
            continue
        bound = ru[i] if upper else rl[i]
        slack = (ru[i] - sol.row_activity[i]) if upper else (sol.row_activity[i] - rl[i])
        linear = sol.range_dn[i] <= bound - step if upper else sol.range_up[i] >= bound + step
        if slack >= step:
            out[k] = 0.0
        elif slack <= 1e-7 * max(1.0, abs(bound)) and linear:
            out[k] = (-vy[i] if upper else vy[i]) * step
        else:
            solver = solver or _LimitMoves(sol, lp, vy)
            out[k] = solver.change(i, rl[i], ru[i], upper, -step)
    return _snap(out, float(sol.objective), np.ones(n))


def solved_lp(sol) -> LPArrays:
    """The arrays of the LP the kept HiGHS model was solved as: those handed to it, kept
    by the solve (reading them back from HiGHS copies the whole LP)."""
    lp = getattr(sol, "lp", None)
    return lp if lp is not None else LPArrays.from_highs(sol.highs)


def _moved_bounds(lo: float, hi: float, upper: bool, step: float) -> tuple[float, float]:
    """A row's bounds with its limit relaxed by `step` (an equality moves as a whole)."""
    eq = lo == hi
    if upper:
        return (lo + step if eq else lo), hi + step
    return lo - step, (hi - step if eq else hi)


class _LimitMoves:
    """Re-solves of the solved LP with one row's limit moved, each from the optimal basis:
    on the cut-down copy where that proves the optimum, else in the kept model."""

    def __init__(self, sol, lp: LPArrays, y0: np.ndarray):
        self.h = sol.highs
        self.x0, self.c = sol.vertex_x, lp.c
        self.basis = self.h.getBasis()
        self.cut = _CutDown.build(self.h, lp, self.x0, y0, float(sol.objective))
        self.stats = {"cut": 0, "whole": 0}  # re-solves answered on each (for benchmarks)

    def change(self, i: int, lo: float, hi: float, upper: bool, step: float) -> float:
        """Change in the optimal cost with row i's limit relaxed by `step` (NaN: infeasible)."""
        new_lo, new_hi = _moved_bounds(lo, hi, upper, step)
        if self.cut is not None:
            value = self.cut.change(int(i), (lo, hi), (new_lo, new_hi))
            if value is not None:
                self.stats["cut"] += 1
                return value
        self.stats["whole"] += 1
        return _moved(self.h, i, lo, hi, upper, step, self.x0, self.c, self.basis)


class _CutDown:
    """The LP with only the columns that can plausibly move in a one-unit re-solve: those
    basic or away from zero at the optimum (so every column left out sits at a lower
    bound of 0) and the KEEP_PER_ROW x rows others with the smallest reduced costs. Its
    optimum at a moved limit is the whole LP's when no column left out has a negative
    reduced cost at its duals: checked over all columns after every re-solve, else the
    answer is not used. Costs are differenced against its own optimum at the limits as
    they are (the whole LP's, from the same basis), not against another model's rounding."""

    def __init__(self, h: highspy.Highs, A: sp.csc_array, c: np.ndarray, up: np.ndarray,
                 cols: np.ndarray, tol: float):
        self.h, self.cost, self.tol = h, c[cols], tol
        out = np.ones(len(c), bool)
        out[cols] = False
        out &= up > 0  # a column fixed at 0 may have any reduced cost
        # for pricing them: the whole matrix as held (A^T y over every column, then the
        # columns left out; a CSR copy of them took 20 MB at 600 k columns)
        self.A, self.out, self.out_cost = A, out, c[out]
        self.x0 = np.asarray(h.getSolution().col_value, float)
        self.basis = h.getBasis()

    @classmethod
    def build(cls, whole: highspy.Highs, lp: LPArrays, x0: np.ndarray, y0: np.ndarray,
              v0: float) -> "_CutDown | None":
        """The cut-down copy, or None where it cannot stand in (nothing to cut, a start
        that is not the whole LP's optimum)."""
        m, n = lp.A.shape
        A, c, lo, up = lp.A, lp.c, lp.lo, lp.up
        basic = basic_columns(whole, n)
        cols = _kept_columns(A, c, lo, x0, y0, basic, KEEP_PER_ROW * m)
        if len(cols) == n:
            return None
        h, refused = warm_copy(whole, A[:, cols], c[cols], lo[cols], up[cols], lp.rl, lp.ru)
        if refused is not None:
            return None
        h.setBasis(_sub_basis(whole.getBasis(), basic[cols], x0[cols], lo[cols], up[cols]))
        h.run()
        if status_name(h) != "kOptimal" or abs(h.getInfo().objective_function_value - v0) > 1e-9 * max(1.0, abs(v0)):
            return None  # not the whole LP's optimum: nothing it says would be about that LP
        return cls(h, A, c, up, cols, _option(whole, "dual_feasibility_tolerance"))

    def change(self, i: int, bounds: tuple[float, float], moved: tuple[float, float]) -> float | None:
        """Change in the optimal cost with row i's bounds moved, or None where the
        cut-down optimum is not proven the whole LP's (or the copy is infeasible)."""
        h = self.h
        h.changeRowBounds(i, *moved)
        try:
            h.run()
            if status_name(h) != "kOptimal":
                return None  # the columns left out may restore feasibility: ask the whole LP
            s = h.getSolution()
            reduced = self.out_cost - (self.A.T @ np.asarray(s.row_dual, float))[self.out]
            if reduced.size and reduced.min() < -self.tol:
                return None  # a column left out would enter: not the whole LP's optimum
            return _cost_change(self.cost, np.asarray(s.col_value, float), self.x0)
        finally:
            h.changeRowBounds(i, *bounds)
            h.setBasis(self.basis)


def _kept_columns(A: sp.csc_array, c: np.ndarray, lo: np.ndarray, x0: np.ndarray, y0: np.ndarray,
                  basic: np.ndarray, extra: int) -> np.ndarray:
    """Columns of the cut-down LP: basic, non-zero or with a non-zero lower bound at the
    optimum x0, and the `extra` others with the smallest reduced costs at the duals y0."""
    must = basic | (x0 != 0) | (lo != 0)
    rest = np.flatnonzero(~must)
    if len(rest) > extra:
        reduced = c[rest] - A[:, rest].T @ y0
        rest = rest[np.argpartition(reduced, extra)[:extra]]
    return np.sort(np.concatenate([np.flatnonzero(must), rest]))


def _sub_basis(basis: highspy.HighsBasis, basic: np.ndarray, x: np.ndarray, lo: np.ndarray,
               up: np.ndarray) -> highspy.HighsBasis:
    """The optimal basis on the kept columns: their basic ones basic, the others at the
    bound where x0 sits (every row as it was)."""
    S = highspy.HighsBasisStatus
    code = np.where(basic, 1, np.where((x == up) & (up != lo), 2, np.where(x == lo, 0, 3)))
    table = [S.kLower, S.kBasic, S.kUpper, S.kZero]
    out = highspy.HighsBasis()
    out.col_status = [table[k] for k in code]
    out.row_status = list(basis.row_status)
    out.valid = True
    out.alien = False
    return out


def _option(h: highspy.Highs, name: str):
    """An option's value (highspy gives (status, value))."""
    v = h.getOptionValue(name)
    return v[1] if isinstance(v, tuple) else v


def _moved(h: highspy.Highs, i: int, lo: float, hi: float, upper: bool, step: float,
           x0: np.ndarray, c: np.ndarray, basis) -> float:
    """Change in the optimal cost with row i's limit relaxed by `step` (negative: tightened),
    re-solved from the optimal basis and put back to it: each re-solve then moves few
    columns from x0, so c (x1 - x0) keeps its precision (chained re-solves lost 6e-6)."""
    h.changeRowBounds(int(i), *_moved_bounds(lo, hi, upper, step))
    value = _resolve_change(h, x0, c)
    h.changeRowBounds(int(i), float(lo), float(hi))
    h.setBasis(basis)
    return value


def allowance_value(sol, entries: list[list[tuple[int, float]]], costs: np.ndarray,
                    weight: float, counts: np.ndarray | None = None) -> float:
    """Value of allowing DELTA in total over new columns (a ban relaxed to a quota):
    column j enters rows entries[j] (row position, coefficient) at objective cost
    costs[j] and counts counts[j] (default 1) against the allowance.
    (V(ban) - V(quota of DELTA)) / DELTA / weight; NaN when it cannot be measured."""
    h = getattr(sol, "highs", None)
    if h is None or not entries:
        return float("nan")
    basis = h.getBasis()
    n0, m0 = h.getNumCol(), h.getNumRow()
    c = solved_lp(sol).c
    k = len(entries)
    starts, index, value = [], [], []
    for ent in entries:
        starts.append(len(index))
        for r, a in ent:
            index.append(int(r))
            value.append(float(a))
    h.addCols(k, np.asarray(costs, float), np.zeros(k), np.full(k, highspy.kHighsInf), len(index),
              np.asarray(starts, np.int32), np.asarray(index, np.int32), np.asarray(value, float))
    counts = np.ones(k) if counts is None else np.asarray(counts, float)
    h.addRow(-highspy.kHighsInf, DELTA, k, np.arange(n0, n0 + k, dtype=np.int32), counts)
    change = _resolve_change(h, sol.vertex_x, c, np.asarray(costs, float))
    h.deleteRows(1, np.array([m0], np.int32))
    h.deleteCols(k, np.arange(n0, n0 + k, dtype=np.int32))
    h.setBasis(basis)
    value = -change / DELTA / weight
    return float(_snap(np.array([value]), float(sol.objective), np.array([weight]))[0])
