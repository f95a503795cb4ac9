"""A scenario tree solved by decomposition: the L-shaped method (Benders, multi-cut).

The decisions of every non-leaf node (the periods before the last reveal on each path) are
the master's columns, with the rows that hold only them; each leaf is a subproblem: its own
model with those decisions fixed at the master's values and their costs left out, so its
optimum Q_l(x) is the leaf's recourse cost. The fixed columns' reduced costs are a
subgradient of Q_l, so each iteration adds one cut per leaf,

    theta_l >= Q_l(x^k) + sum_j g_lj (x_j - x_j^k),

and the master min c x + sum_l p_l theta_l gives a lower bound; c x^k + sum_l p_l Q_l(x^k)
an upper bound. It stops when they meet within `gap` (relative). theta_l starts bounded
below by the leaf's cost with nothing fixed (a valid bound: fixing can only cost more).

Each leaf keeps its HiGHS model between iterations and re-solves warm with the new bounds.
The method needs every leaf to have an optimal recourse for any master plan (demand can go
unserved, so this holds unless a reserve's committed build or target cannot be met); a
leaf that is infeasible for a master plan stops it with that leaf named.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from model.case.tree import Tree
from model.lp.solve import load_arrays, solve_loaded, status_words
from model.lp.stochastic import ExtensiveLP, NodeModel


@dataclass
class Decomposition:
    status: str
    message: str
    objective: float                      # the best upper bound (the expected cost of the plan)
    lower_bound: float
    iterations: int
    master_x: dict[tuple[str, tuple], float] = field(default_factory=dict)  # (owner, key) -> value
    history: list[tuple[int, float, float, float]] = field(default_factory=list)  # (iteration, lower, upper, s)

    @property
    def gap(self) -> float:
        return max(0.0, self.objective - self.lower_bound) / max(1.0, abs(self.objective))


class _Leaf:
    """A leaf's subproblem: its model with the master's columns fixed and costless."""

    def __init__(self, tree: Tree, m: NodeModel, ef: ExtensiveLP, settings: dict):
        self.name = m.name
        fixed, g = [], []
        for j, (key, p) in enumerate(zip(m.col_keys, m.col_period)):
            if p >= len(tree.periods):
                continue
            own = tree.owner(m.name, tree.periods[int(p)])
            if own == m.name:
                continue
            fixed.append(j)
            g.append(ef.index.get((own, key), -1))
        self.fixed = np.asarray(fixed, np.int64)
        self.master_col = np.asarray(g, np.int64)  # -1: the owner lacks it (held at 0)
        c = m.lp.c.copy()
        c[self.fixed] = 0.0
        self.lo, self.hi = m.lp.col_lower, m.lp.col_upper
        self.h, refused = load_arrays(c, 0.0, m.lp.A, m.lp.col_lower, m.lp.col_upper, m.lp.row_lower,
                                      m.lp.row_upper, dict(settings, canonical_plan=False))
        if refused is not None:
            raise ValueError(f"leaf {m.name}: {refused}")

    def bound(self) -> float:
        """Q_l with nothing fixed: a lower bound on the recourse for any master plan."""
        self.h.run()
        status, _ = status_words(self.h)
        return float(self.h.getInfo().objective_function_value) if status == "optimal" else -np.inf

    def solve(self, x: np.ndarray) -> tuple[str, float, np.ndarray]:
        """(status, Q_l(x), subgradient on the fixed columns)."""
        v = np.where(self.master_col >= 0, x[np.maximum(self.master_col, 0)], 0.0)
        v = np.clip(v, self.lo[self.fixed], self.hi[self.fixed])
        idx = self.fixed.astype(np.int32)
        if len(idx):
            self.h.changeColsBounds(len(idx), idx, v, v)
        self.h.run()
        status, words = status_words(self.h)
        if status != "optimal":
            return words, np.nan, np.zeros(len(idx))
        rc = np.asarray(self.h.getSolution().col_dual, float)[self.fixed]
        return "optimal", float(self.h.getInfo().objective_function_value), rc


def l_shaped(tree: Tree, models: dict[str, NodeModel], ef: ExtensiveLP, settings: dict, gap: float = 1e-8,
             max_iterations: int = 200) -> Decomposition:
    """Solve the tree by the multi-cut L-shaped method; `ef` supplies the column and row
    layout of the non-leaf nodes (its leaf parts are not solved)."""
    t0 = time.perf_counter()
    if ef.cvar is not None:
        raise ValueError("the decomposition solves risk-neutral trees; a CVaR term needs the extensive form")
    leaves = tree.leaves()
    first = np.array([o not in set(leaves) for o in ef.col_owner], bool)
    cols = np.flatnonzero(first)
    pos = np.full(len(first), -1, np.int64)
    pos[cols] = np.arange(len(cols))
    A = sp.csr_array(ef.A)
    counts = np.diff(A.indptr)
    leaf_nnz = np.diff(sp.csr_array(A[:, ~first]).indptr)  # rows whose every column is a master column
    keep = np.flatnonzero((counts > 0) & (leaf_nnz == 0))
    Am = sp.csr_array(A[keep][:, cols])
    subs = [_Leaf(tree, models[leaf], ef, settings) for leaf in leaves]
    probs = np.array([tree.probability(leaf) for leaf in leaves])
    bounds = np.array([s.bound() for s in subs])
    n1, L = len(cols), len(leaves)
    c = np.concatenate([ef.c[cols], probs])
    lo = np.concatenate([ef.col_lower[cols], np.where(np.isfinite(bounds), bounds, -1e15)])
    hi = np.concatenate([ef.col_upper[cols], np.full(L, np.inf)])
    A0 = sp.hstack([Am, sp.csr_array((Am.shape[0], L))], format="csc")
    h, refused = load_arrays(c, 0.0, A0, lo, hi, ef.row_lower[keep], ef.row_upper[keep],
                             dict(settings, canonical_plan=False))
    if refused is not None:
        return Decomposition("error", refused, np.nan, np.nan, 0)
    best, best_x, lower = np.inf, None, -np.inf
    history = []
    for it in range(1, max_iterations + 1):
        status, words, xm, _, obj, _ = solve_loaded(h, dict(settings, canonical_plan=False))
        if status != "optimal":
            return Decomposition(status, f"master: {words}", np.nan, lower, it, history=history)
        lower = max(lower, obj)
        x1 = xm[:n1]
        xfull = np.zeros(len(first))
        xfull[cols] = x1
        upper = float(ef.c[cols] @ x1)
        rows = []
        for k, s in enumerate(subs):
            st, q, g = s.solve(xfull)
            if st != "optimal":
                return Decomposition("error", f"leaf {s.name} has no optimal recourse for the master's plan "
                                     f"({st}); solve this tree as an extensive form", np.nan, lower, it,
                                     history=history)
            upper += probs[k] * q
            # theta_k - g . x >= q - g . x_hat  (over the master columns the leaf fixes)
            mc = pos[s.master_col[s.master_col >= 0]]
            gk = g[s.master_col >= 0]
            xk = xfull[s.master_col[s.master_col >= 0]]
            rows.append((np.concatenate([mc, [n1 + k]]), np.concatenate([-gk, [1.0]]), q - float(gk @ xk)))
        if upper < best:
            best, best_x = upper, xfull.copy()
        history.append((it, lower, best, time.perf_counter() - t0))
        if best - lower <= gap * max(1.0, abs(best)):
            break
        for idx, val, rhs in rows:
            keep_nz = val != 0
            h.addRow(rhs, np.inf, int(keep_nz.sum()), idx[keep_nz].astype(np.int32), val[keep_nz])
    else:
        return Decomposition("time limit", f"not converged in {max_iterations} iterations (gap "
                             f"{(best - lower) / max(1.0, abs(best)):.2e})", best, lower, max_iterations,
                             history=history)
    master_x = {(ef.col_owner[g], ef.col_key[g]): float(best_x[g]) for g in cols}
    return Decomposition("optimal", f"converged in {it} iterations", best + ef.offset, lower + ef.offset, it,
                         master_x, history)
