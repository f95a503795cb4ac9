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
A leaf's rows whose every column is fixed are the master's rows: in the subproblem they
are free, so the cuts carry only the decisions that reach the leaf's own periods.

The leaves are solved by a `LeafPool`: in this process, in worker processes that each
own a share of the leaves, or on a Dask cluster (one actor per cluster worker). A worker keeps one HiGHS model per matrix (every leaf of a tree
on one kept model shares one), writes a leaf's numbers into it (only those that differ
from the leaf solved before) and starts from that leaf's last optimal basis, so a leaf's
re-solve is a warm start however many leaves share the model.

Demand can go unserved, so a leaf has a recourse for most master plans; where it has none
(a reserve's committed build that its capacity cannot take after the master's buys, say),
its elastic form (each row with a pair of slacks costing 1, nothing else costing) gives the
least total violation w(x^k) > 0 and a subgradient g, and the feasibility cut

    w(x^k) + g (x - x^k) <= 0

keeps every later master plan out of the region where that leaf has no recourse (w is
convex and 0 exactly where it has one). A leaf infeasible with no violation to cut stops
the method with that leaf named.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from model.case.tree import ROOT, Tree
from model.lp.canonical import LPArrays, least_norm_point, primal_face
from model.lp.solve import load_arrays, solve_loaded, status_words
from model.lp.stochastic import ExtensiveLP, NodeModel

LOG = logging.getLogger(__name__)
SUBGRADIENT_TOL = 1e-7  # HiGHS's dual feasibility tolerance
FEASIBILITY_TOL = 1e-7  # a leaf's least total violation below this is no violation (HiGHS's tolerance)


@dataclass
class Decomposition:
    status: str
    message: str
    objective: float                      # the best upper bound (the expected cost of the plan)
    lower_bound: float
    iterations: int
    x: np.ndarray | None = None           # the master's columns of the extensive-form layout (`ef`)
    history: list[tuple[int, float, float, float]] = field(default_factory=list)  # (iteration, lower, upper, s)
    workers: int = 1
    feasibility_cuts: int = 0             # cuts that kept a leaf's recourse feasible
    canonical_rounds: int = 0             # rounds of the least-norm step
    canonical: bool = False               # the plan is the least-norm plan of the optimal face

    @property
    def gap(self) -> float:
        return max(0.0, self.objective - self.lower_bound) / max(1.0, abs(self.objective))


@dataclass
class LeafArrays:
    """A leaf's numbers, which of its columns earlier nodes decide, and where those are."""

    name: str
    matrix: int                # key of its matrix in the pool's matrices
    c: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    fixed: np.ndarray          # positions of the columns earlier nodes decide
    master: np.ndarray         # their global columns (-1: the owner lacks it, held at 0)
    by_root: np.ndarray        # which of them the root decides
    master_rows: np.ndarray    # rows whose every column is fixed (the master holds them)
    offset: float = 0.0        # the objective's constant


def leaf_arrays(tree: Tree, models: dict[str, NodeModel], ef: ExtensiveLP) -> tuple[dict[int, sp.csc_array],
                                                                                 list[LeafArrays]]:
    """(matrices by key, each leaf's arrays) for a pool."""
    mats: dict[int, sp.csc_array] = {}
    out = []
    for leaf in tree.leaves():
        m = models[leaf]
        key = id(m.lp.A)
        if key not in mats:
            mats[key] = sp.csc_array(m.lp.A)
        per = np.asarray(m.col_period, np.int64)
        owner = np.full(len(per), leaf, object)
        for p in np.unique(per):
            if p < len(tree.periods):
                owner[per == p] = tree.owner(leaf, tree.periods[int(p)])
        fixed = np.flatnonzero(owner != leaf)
        free = np.ones(len(per), bool)
        free[fixed] = False
        A = sp.csr_array(mats[key])
        nz = np.diff(A.indptr) > 0
        unfixed = sp.csr_array((np.ones(len(A.indices)), A.indices, A.indptr), shape=A.shape) @ free.astype(float)
        out.append(LeafArrays(leaf, key, m.lp.c, m.lp.col_lower, m.lp.col_upper, m.lp.row_lower, m.lp.row_upper,
                              fixed, ef.node_cols[leaf][fixed], owner[fixed] == ROOT,
                              np.flatnonzero(nz & (unfixed == 0)), float(m.lp.offset)))
    return mats, out


class LeafSolver:
    """Solves leaves on one HiGHS model per matrix, a leaf's numbers written in and its last
    basis restored (in this process or a worker's)."""

    def __init__(self, mats: dict[int, sp.csc_array], leaves: list[LeafArrays], settings: dict):
        self.leaves = {x.name: x for x in leaves}
        self.settings = dict(settings, canonical_plan=False)
        self.mats = mats
        self.models: dict[int, list] = {}   # matrix key -> [highs, c, lo, hi, rlo, rhi]
        self.basis: dict[tuple[str, str], object] = {}

    def _matrix(self, key) -> sp.csc_array:
        """The leaf's matrix, or for ("elastic", m) the matrix with a slack pair per row."""
        if isinstance(key, tuple):
            A = self.mats[key[1]]
            eye = sp.identity(A.shape[0], format="csc")
            return sp.hstack([A, eye, -eye], format="csc")
        return self.mats[key]

    def _load(self, x: LeafArrays, c, lo, hi, rlo, rhi, key=None):
        key = x.matrix if key is None else key
        got = self.models.get(key)
        if got is None:
            h, refused = load_arrays(c, 0.0, self._matrix(key), lo, hi, rlo, rhi, self.settings)
            if refused is not None:
                raise ValueError(f"leaf {x.name}: {refused}")
            self.models[key] = [h, c.copy(), lo.copy(), hi.copy(), rlo.copy(), rhi.copy()]
            return h
        h, c0, lo0, hi0, rlo0, rhi0 = got
        j = np.flatnonzero(c != c0).astype(np.int32)
        if len(j):
            h.changeColsCost(len(j), j, c[j])
        j = np.flatnonzero((lo != lo0) | (hi != hi0)).astype(np.int32)
        if len(j):
            h.changeColsBounds(len(j), j, lo[j], hi[j])
        i = np.flatnonzero((rlo != rlo0) | (rhi != rhi0)).astype(np.int32)
        if len(i):
            h.changeRowsBounds(len(i), i, rlo[i], rhi[i])
        got[1:] = [c.copy(), lo.copy(), hi.copy(), rlo.copy(), rhi.copy()]
        return h

    def solve(self, name: str, values: np.ndarray | None, mode: str) -> tuple[str, float, np.ndarray]:
        """(status words or "optimal", objective (with the leaf's constant in "full" mode),
        reduced costs of the fixed columns).
        mode "recourse": fixed columns at `values`, costless, the master's rows free (the
        subproblem of the L-shaped method); "elastic": the same rows, each with a pair of
        slacks costing 1, and no other cost (its optimum is the least total violation: 0
        where the recourse is feasible); "full": the leaf's own costs and rows, columns
        fixed where `values` is not NaN (None: nothing fixed)."""
        x = self.leaves[name]
        lo, hi = x.col_lower.copy(), x.col_upper.copy()
        c, rlo, rhi = x.c, x.row_lower, x.row_upper
        if values is not None:
            on = ~np.isnan(values)
            j = x.fixed[on]
            v = np.clip(values[on], lo[j], hi[j])  # a solver's value within its tolerance of a bound
            lo[j], hi[j] = v, v
        key = None
        if mode in ("recourse", "elastic"):
            c = c.copy()
            c[x.fixed] = 0.0
            rlo, rhi = rlo.copy(), rhi.copy()
            rlo[x.master_rows], rhi[x.master_rows] = -np.inf, np.inf
        if mode == "elastic":  # least total violation of the leaf's rows: its costs are 0, each slack's 1
            m = len(rlo)
            c = np.concatenate([np.zeros(len(c)), np.ones(2 * m)])
            lo = np.concatenate([lo, np.zeros(2 * m)])
            hi = np.concatenate([hi, np.full(2 * m, np.inf)])
            key = ("elastic", x.matrix)
        h = self._load(x, c, lo, hi, rlo, rhi, key)
        b = self.basis.get((name, mode))
        if b is not None:
            h.setBasis(b)
        h.run()
        status, words = status_words(h)
        if status != "optimal":
            self.basis.pop((name, mode), None)
            return words, np.nan, np.zeros(len(x.fixed))
        self.basis[(name, mode)] = h.getBasis()
        rc = np.asarray(h.getSolution().col_dual, float)[x.fixed]
        obj = float(h.getInfo().objective_function_value) + (x.offset if mode == "full" else 0.0)
        return "optimal", obj, rc


def _answers(solver: LeafSolver, batch: list[tuple]) -> list[tuple]:
    """(leaf, status, objective, positions and values of the non-zero reduced costs) per job."""
    out = []
    for name, values, mode in batch:
        st, q, g = solver.solve(name, values, mode)
        nz = np.flatnonzero(g)
        out.append((name, st, q, nz, g[nz]))
    return out


class LeafActor:
    """A Dask actor holding a share of the leaves (model.lp.decompose.LeafPool on a cluster)."""

    def __init__(self, mats, leaves, settings):
        self.solver = LeafSolver(mats, leaves, settings)

    def solve(self, batch: list[tuple]) -> list[tuple]:
        return _answers(self.solver, batch)


def _serve(conn, mats, leaves, settings, reader) -> None:
    """A worker: answers batches of (leaf, values, mode) solves, or of reader jobs, until
    told to stop."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops its workers
    solver = LeafSolver(mats, leaves, settings)
    while True:
        msg = conn.recv()
        if msg is None:
            break
        kind, batch = msg
        out = []
        try:
            for job in batch:
                if kind == "read":
                    out.append((job[0], reader(*job)))
                    continue
                out += _answers(solver, [job])
        except Exception as exc:  # the parent says which leaf and what went wrong
            out = exc
        conn.send(out)


class LeafPool:
    """The tree's leaves on `workers` processes (1: this process), each leaf always on the
    same worker so its model and basis stay warm. `reader(leaf, *args)`: reads a leaf's
    result tables (the caller's function, with the node models it holds); workers run it
    where they are forked from this process (they hold the same models), else it runs here."""

    def __init__(self, tree: Tree, models: dict[str, NodeModel], ef: ExtensiveLP, settings: dict, workers: int = 1,
                 reader=None, scheduler=None):
        """scheduler: a Dask scheduler address or distributed.Client: the leaves' solves go
        to one actor per cluster worker (reading a leaf's tables needs this process's
        models, so it stays here)."""
        mats, leaves = leaf_arrays(tree, models, ef)
        self.arrays = {x.name: x for x in leaves}
        self.reader = reader
        self.local: LeafSolver | None = None
        self.procs, self.conns, self.actors = [], [], []
        self.client, self.own_client = None, False
        self.home: dict[str, int] = {}
        self.forked = False
        if scheduler is not None:
            self._start_actors(mats, leaves, settings, scheduler)
            return
        self.workers = max(1, min(int(workers), len(leaves)))
        if self.workers == 1:
            self.local = LeafSolver(mats, leaves, settings)
            return
        self.forked = "fork" in mp.get_all_start_methods()
        ctx = mp.get_context("fork" if self.forked else "spawn")
        share = [leaves[k::self.workers] for k in range(self.workers)]  # round robin: alike leaves spread
        for k, part in enumerate(share):
            parent, child = ctx.Pipe()
            used = {x.matrix for x in part}
            proc = ctx.Process(target=_serve, args=(child, {m: a for m, a in mats.items() if m in used}, part,
                                                    settings, reader if self.forked else None), daemon=True)
            proc.start()
            child.close()
            self.procs.append(proc)
            self.conns.append(parent)
            for x in part:
                self.home[x.name] = k

    def _start_actors(self, mats, leaves, settings, scheduler) -> None:
        from distributed import Client
        self.own_client = isinstance(scheduler, str)
        self.client = Client(scheduler) if self.own_client else scheduler
        addresses = sorted(self.client.scheduler_info()["workers"])
        self.workers = max(1, min(len(addresses), len(leaves)))
        share = [leaves[k::self.workers] for k in range(self.workers)]
        for k, part in enumerate(share):
            used = {x.matrix for x in part}
            fut = self.client.submit(LeafActor, {m: a for m, a in mats.items() if m in used}, part, settings,
                                     actor=True, workers=[addresses[k]], pure=False)
            self.actors.append(fut.result())
            for x in part:
                self.home[x.name] = k

    def _scatter(self, kind: str, jobs: list[tuple]) -> list:
        """Send each job to its leaf's worker; every worker's answers, in turn."""
        batches: list[list] = [[] for _ in self.conns]
        for job in jobs:
            batches[self.home[job[0]]].append(job)
        for conn, batch in zip(self.conns, batches):
            if batch:
                conn.send((kind, batch))
        out, error = [], None
        for conn, batch in zip(self.conns, batches):
            if not batch:
                continue
            got = conn.recv()
            if isinstance(got, Exception):
                error = error or got
            else:
                out += got
        if error is not None:
            raise error
        return out

    def solve(self, jobs: list[tuple[str, np.ndarray | None, str]]) -> dict[str, tuple[str, float, np.ndarray]]:
        """leaf -> (status, objective, reduced costs of its fixed columns) for each job."""
        if self.local is not None:
            return {n: self.local.solve(n, v, mode) for n, v, mode in jobs}
        if self.actors:
            batches: list[list] = [[] for _ in self.actors]
            for job in jobs:
                batches[self.home[job[0]]].append(job)
            pending = [a.solve(b) for a, b in zip(self.actors, batches) if b]
            answers = [x for f in pending for x in f.result()]
        else:
            answers = self._scatter("solve", jobs)
        out = {}
        for name, st, q, nz, gv in answers:
            g = np.zeros(len(self.arrays[name].fixed))
            g[nz] = gv
            out[name] = (st, q, g)
        return out

    def read(self, jobs: list[tuple]) -> dict[str, object]:
        """leaf -> reader(leaf, *args) for each job (leaf, *args)."""
        if self.local is not None or not self.forked:
            return {job[0]: self.reader(*job) for job in jobs}
        return dict(self._scatter("read", jobs))

    def close(self) -> None:
        self.actors = []
        if self.own_client and self.client is not None:
            self.client.close()
        self.client = None
        for conn in self.conns:
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
        self.procs, self.conns = [], []

    def __enter__(self) -> LeafPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def l_shaped(tree: Tree, models: dict[str, NodeModel], ef: ExtensiveLP, settings: dict, gap: float = 1e-8,
             max_iterations: int = 200, pool: LeafPool | None = None, workers: int = 1, scheduler=None
             ) -> Decomposition:
    """Solve the tree by the multi-cut L-shaped method; `ef` supplies the column and row
    layout of the non-leaf nodes (extensive_form(..., leaves=False) holds only those);
    `pool` solves the leaves (made here with `workers` when not given)."""
    t0 = time.perf_counter()
    if ef.cvar is not None:
        raise ValueError("the decomposition solves risk-neutral trees; a CVaR term needs the extensive form")
    leaves = tree.leaves()
    leaf_set = set(leaves)
    first = np.array([o not in leaf_set for o in ef.col_owner], bool)
    cols = np.flatnonzero(first)
    pos = np.full(len(first), -1, np.int64)
    pos[cols] = np.arange(len(cols))
    A = sp.csr_array(ef.A)
    counts = np.diff(A.indptr)
    leaf_nnz = np.diff(sp.csr_array(A[:, ~first]).indptr)  # rows whose every column is a master column
    keep = np.flatnonzero((counts > 0) & (leaf_nnz == 0))
    Am = sp.csr_array(A[keep][:, cols])
    own_pool = pool is None
    pool = pool or LeafPool(tree, models, ef, settings, workers, scheduler=scheduler)
    try:
        return _iterate(tree, ef, settings, pool, leaves, cols, pos, Am, keep, first, gap, max_iterations, t0)
    finally:
        if own_pool:
            pool.close()


def _iterate(tree, ef, settings, pool, leaves, cols, pos, Am, keep, first, gap, max_iterations, t0) -> Decomposition:
    probs = np.array([tree.probability(leaf) for leaf in leaves])
    got = pool.solve([(leaf, None, "recourse") for leaf in leaves])
    bounds = np.array([got[leaf][1] if got[leaf][0] == "optimal" else -np.inf for leaf in leaves])
    n1, L = len(cols), len(leaves)
    # theta_l is held as theta_l - base_l >= 0: near 1e8 rather than 1e11, so the master is well scaled
    base = np.where(np.isfinite(bounds), bounds, 0.0)
    shift = float(probs @ base)
    c = np.concatenate([ef.c[cols], probs])
    lo = np.concatenate([ef.col_lower[cols], np.where(np.isfinite(bounds), 0.0, -1e15)])
    hi = np.concatenate([ef.col_upper[cols], np.full(L, np.inf)])
    A0 = sp.hstack([Am, sp.csr_array((Am.shape[0], L))], format="csc")
    h, refused = load_arrays(c, 0.0, A0, lo, hi, ef.row_lower[keep], ef.row_upper[keep],
                             dict(settings, canonical_plan=False))
    if refused is not None:
        return Decomposition("error", refused, np.nan, np.nan, 0, workers=pool.workers)
    best, best_x, lower = np.inf, None, -np.inf
    history = []
    feasibility_cuts = 0
    for it in range(1, max_iterations + 1):
        h, status, words, xm, obj = _solve_master(h, settings)
        if status != "optimal":
            return Decomposition(status, f"master: {words}", np.nan, lower, it, history=history, workers=pool.workers)
        lower = max(lower, obj + shift)
        x1 = xm[:n1]
        xfull = np.zeros(len(first))
        xfull[cols] = x1
        upper = float(ef.c[cols] @ x1)
        jobs = []
        for leaf in leaves:
            a = pool.arrays[leaf]
            jobs.append((leaf, np.where(a.master >= 0, xfull[np.maximum(a.master, 0)], 0.0), "recourse"))
        got = pool.solve(jobs)
        rows = []
        infeasible = [leaf for leaf in leaves if got[leaf][0] != "optimal"]
        if infeasible:  # feasibility cuts: the master's plan must leave these leaves a recourse
            elastic = pool.solve([job[:2] + ("elastic",) for job in jobs if job[0] in infeasible])
            for leaf in infeasible:
                st, w, g = elastic[leaf]
                g = _clean(g)
                if st != "optimal" or w <= FEASIBILITY_TOL:
                    return Decomposition("error", f"leaf {leaf} has no optimal recourse for the master's plan "
                                         f"({got[leaf][0]}) and no cut was found; solve this tree as an extensive form",
                                         np.nan, lower, it, history=history, workers=pool.workers)
                # w(x) >= w + g (x - x_hat) and w(x) = 0 where the leaf has a recourse: g . x <= g . x_hat - w
                a = pool.arrays[leaf]
                on = (a.master >= 0) & (g != 0)
                rows.append((pos[a.master[on]], g[on], -np.inf, float(g[on] @ xfull[a.master[on]]) - w))
            feasibility_cuts += len(infeasible)
            upper = np.inf
        for k, leaf in enumerate(leaves):
            if infeasible:
                break
            st, q, g = got[leaf]
            upper += probs[k] * q
            rows.append(_optimality_cut(pool.arrays[leaf], k, q - base[k], _clean(g), xfull, pos, n1))
        if upper < best:
            best, best_x = upper, xfull.copy()
        history.append((it, lower, best, time.perf_counter() - t0))
        LOG.debug("decomposition iteration %d: lower bound %.6f, upper bound %.6f, %d feasibility cuts, %.1f s",
                  it, lower, best, feasibility_cuts, history[-1][3])
        if best - lower <= gap * max(1.0, abs(best)):
            break
        for idx, val, rlo, rhi in rows:
            _add_cut(h, idx, val, rlo, rhi)
    else:
        return Decomposition("time limit", f"not converged in {max_iterations} iterations (gap "
                             f"{(best - lower) / max(1.0, abs(best)):.2e})", best, lower, max_iterations,
                             history=history, workers=pool.workers)
    plan, rounds, words = _least_norm_plan(h, pool, leaves, probs, ef, cols, pos, first, best, lower, gap, n1, L,
                                           settings, base)
    return Decomposition("optimal", f"converged in {it} iterations; {words}", best + ef.offset, lower + ef.offset,
                         it, plan if plan is not None else best_x, history, workers=pool.workers,
                         feasibility_cuts=feasibility_cuts, canonical_rounds=rounds,
                         canonical=plan is not None)


def _optimality_cut(a: LeafArrays, k: int, q: float, g: np.ndarray, xfull: np.ndarray, pos: np.ndarray, n1: int
                    ) -> tuple[np.ndarray, np.ndarray, float, float]:
    """theta_k - g . x >= q - g . x_hat over the master columns the leaf fixes (theta_k is
    master column n1 + k): (columns, coefficients, lower, upper) of the row."""
    on = (a.master >= 0) & (g != 0)
    return (np.concatenate([pos[a.master[on]], [n1 + k]]), np.concatenate([-g[on], [1.0]]),
            q - float(g[on] @ xfull[a.master[on]]), np.inf)


def _add_cut(h, idx: np.ndarray, val: np.ndarray, lo: float, hi: float) -> None:
    """A cut row scaled to a largest coefficient of 1: its right-hand side (a leaf's cost,
    ~1e9 USD) would otherwise leave residuals of 1e-5 that an exact face of the master
    (the least-norm step) cannot meet within HiGHS's 1e-7."""
    scale = float(np.abs(val).max()) if len(val) else 1.0
    scale = scale if scale > 0 else 1.0
    h.addRow(lo / scale, hi / scale, len(idx), np.asarray(idx, np.int32), np.asarray(val, float) / scale)


def _clean(g: np.ndarray) -> np.ndarray:
    """A subgradient without the solver's noise: reduced costs below HiGHS's dual
    feasibility tolerance are 0 (they would spread the master's coefficients over 15
    orders of magnitude for a change of the cut below 1e-7 USD per tonne moved)."""
    return np.where(np.abs(g) < SUBGRADIENT_TOL, 0.0, g)


def _solve_master(h, settings: dict):
    """(highs, status, words, plan, objective) of the master. Where HiGHS's warm simplex
    stops unsure (status unknown: a badly scaled cut leaves residual infeasibilities after
    its clean-up), the master is loaded afresh and solved from scratch, then by interior
    point: the highs returned is the one that solved it (its cuts are the same)."""
    run = dict(settings, canonical_plan=False)
    status, words, x, _, obj, _ = solve_loaded(h, run)
    if status == "optimal":
        return h, status, words, x, obj
    lp = LPArrays.from_highs(h)
    for method in ("choose", "ipm"):
        LOG.debug("decomposition master: %s; loaded afresh and solved by %s", words, method)
        fresh, refused = load_arrays(lp.c, 0.0, lp.A, lp.lo, lp.up, lp.rl, lp.ru, dict(run, solver_method=method))
        if refused is not None:
            return h, "error", refused, np.zeros(0), float("nan")
        status, words, x, _, obj, _ = solve_loaded(fresh, run)
        if status == "optimal":
            if method != "choose":
                fresh.setOptionValue("solver", "choose")
            return fresh, status, words, x, obj
    return h, status, words, x, obj


def _evaluate(pool: LeafPool, leaves: list[str], xfull: np.ndarray) -> dict:
    jobs = []
    for leaf in leaves:
        a = pool.arrays[leaf]
        jobs.append((leaf, np.where(a.master >= 0, xfull[np.maximum(a.master, 0)], 0.0), "recourse"))
    return pool.solve(jobs)


def _least_norm_plan(h, pool, leaves, probs, ef, cols, pos, first, best, lower, gap, n1, L, settings, base,
                     max_rounds: int = 30) -> tuple[np.ndarray | None, int, str]:
    """One answer among tied here-and-now plans: the least-norm point (sum of squared master
    decisions; model.lp.canonical) of the master's optimal face, checked in every leaf. Where
    the leaves cost more there than the master's cuts said, their cuts are added and the
    master re-solved, until the least-norm point costs what the master says (within the
    gap). Returns (plan, rounds, words); plan None where it did not settle."""
    tol = gap * max(1.0, abs(best))
    weight = np.concatenate([np.ones(n1), np.zeros(L)])  # the plan's norm: its decisions, not the thetas
    for r in range(1, max_rounds + 1):
        h, status, _, _, obj = _solve_master(h, settings)
        obj += float(probs @ base)
        row_dual = np.asarray(h.getSolution().row_dual, float)
        if status != "optimal":
            return None, r, f"the least-norm plan was not found (master {status}); the plan is the solver's"
        lp = LPArrays.from_highs(h)
        xv = np.asarray(h.getSolution().col_value, float)
        col_dual = np.asarray(h.getSolution().col_dual, float)
        lo, up, rl, ru = primal_face(lp, col_dual, row_dual)
        xq, st = least_norm_point(lp.A, rl, ru, lo, up, weight, xv)
        if st.get("status", "optimal") != "optimal":
            return None, r, f"the least-norm plan was not found (QP {st['status']}); the plan is the solver's"
        xfull = np.zeros(len(first))
        xfull[cols] = xq[:n1]
        got = _evaluate(pool, leaves, xfull)
        if any(got[leaf][0] != "optimal" for leaf in leaves):
            return None, r, "the least-norm point left a leaf without recourse; the plan is the solver's"
        true = float(ef.c[cols] @ xq[:n1]) + float(sum(p * got[leaf][1] for p, leaf in zip(probs, leaves)))
        if true <= max(lower, obj) + tol:
            return xfull, r, f"the least-norm plan of the optimal face after {r} round(s)"
        for k, leaf in enumerate(leaves):  # the leaves cost more here than the cuts said: tell the master
            _, q, g = got[leaf]
            _add_cut(h, *_optimality_cut(pool.arrays[leaf], k, q - base[k], _clean(g), xfull, pos, n1))
    return None, max_rounds, f"the least-norm plan did not settle in {max_rounds} rounds; the plan is the solver's"
