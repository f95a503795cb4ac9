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

A ban is not a row: its forbidden flows are not in the model. Its value is measured the
same way, by adding the forbidden flows as columns with a joint allowance of one tonne
(a 1 t/yr quota in place of the ban), re-solving and removing them again.
"""

from __future__ import annotations

import highspy
import numpy as np

from model.lp.highs import status_name

DELTA = 1.0  # t/yr: "one more tonne"


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
    return float(np.dot(c, x1[:n0] - x0)) + added


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
    lp = h.getLp()
    rl, ru = np.asarray(lp.row_lower_, float), np.asarray(lp.row_upper_, float)
    act, r_up, r_dn = sol.row_activity, sol.range_up, sol.range_dn
    base = float(sol.objective)
    x0, c = sol.vertex_x, np.asarray(lp.col_cost_, float)
    basis = h.getBasis()
    # the vertex's own duals (the canonical prices option may have replaced sol.row_dual)
    vy = getattr(sol, "vertex_dual", None)
    vy = y if vy is None else vy
    sgn = -1.0 if upper else 1.0
    for k, i in enumerate(idx):
        if i < 0:
            continue
        lo, hi = rl[i], ru[i]
        bound = hi if upper else lo
        slack = (hi - act[i]) if upper else (act[i] - lo)
        tight = slack <= 1e-7 * max(1.0, abs(bound))
        room_up = r_up[i] >= bound + DELTA   # the basis stays optimal one unit above
        room_dn = r_dn[i] <= bound - DELTA   # ... and one unit below
        lin_more = tight and (room_up if upper else room_dn)
        lin_less = tight and (room_dn if upper else room_up)
        if not tight:
            more[k] = 0.0
        elif lin_more:
            more[k] = sgn * vy[i] * DELTA
        else:
            more[k] = -_moved(h, i, lo, hi, upper, DELTA, x0, c, basis)
        if slack >= DELTA:
            less[k] = 0.0
        elif lin_less:
            less[k] = sgn * vy[i] * DELTA
        else:
            less[k] = _moved(h, i, lo, hi, upper, -DELTA, x0, c, basis)
    return (_snap(more / DELTA / weights, base, weights), _snap(less / DELTA / weights, base, weights))


def tightening_cost(sol, cons: list, steps: np.ndarray, upper: bool = True) -> np.ndarray:
    """Per constraint: the rise in the optimal cost (objective units) when its limit is
    tightened by steps[k] (a cap lowered, a floor raised), measured: 0 where the slack
    covers the step, the dual times the step where HiGHS's ranging shows the optimal basis
    stays optimal over it, else the kept model re-solved with the limit moved and put back.
    A whole step, not one unit scaled up: the cost is convex in the limit, so a step past
    a breakpoint costs more than its first unit says. NaN where the tightened case is
    infeasible or nothing can be measured."""
    n = len(cons)
    out = np.full(n, np.nan)
    h = getattr(sol, "highs", None)
    if n == 0 or h is None or sol.row_activity is None:
        return out
    idx = sol.rows_of(cons)
    lp = h.getLp()
    rl, ru = np.asarray(lp.row_lower_, float), np.asarray(lp.row_upper_, float)
    act, r_up, r_dn = sol.row_activity, sol.range_up, sol.range_dn
    x0, c = sol.vertex_x, np.asarray(lp.col_cost_, float)
    basis = h.getBasis()
    vy = getattr(sol, "vertex_dual", None)
    vy = np.asarray(sol.row_dual, float) if vy is None else vy
    for k, i in enumerate(idx):
        step = float(steps[k])
        if i < 0 or step <= 0:
            out[k] = 0.0 if step <= 0 else np.nan
            continue
        lo, hi = rl[i], ru[i]
        bound = hi if upper else lo
        slack = (hi - act[i]) if upper else (act[i] - lo)
        if slack >= step:
            out[k] = 0.0
        elif slack <= 1e-7 * max(1.0, abs(bound)) and (r_dn[i] <= bound - step if upper else r_up[i] >= bound + step):
            out[k] = (-vy[i] if upper else vy[i]) * step
        else:
            out[k] = _moved(h, i, lo, hi, upper, -step, x0, c, basis)
    return _snap(out, float(sol.objective), np.ones(n))


def _moved(h: highspy.Highs, i: int, lo: float, hi: float, upper: bool, step: float,
           x0: np.ndarray, c: np.ndarray, basis) -> float:
    """Change in the optimal cost with row i's limit relaxed by `step` (negative: tightened),
    re-solved from the optimal basis and put back to it: each re-solve then moves few
    columns from x0, so c (x1 - x0) keeps its precision (chained re-solves lost 6e-6)."""
    eq = lo == hi
    new_lo, new_hi = lo, hi
    if upper:
        new_hi = hi + step
        if eq:
            new_lo = lo + step
    else:
        new_lo = lo - step
        if eq:
            new_hi = hi - step
    h.changeRowBounds(int(i), float(new_lo), float(new_hi))
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
    c = np.asarray(h.getLp().col_cost_, float)
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
