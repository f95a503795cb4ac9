"""A plan under uncertainty: `run.py run WORKBOOK --tree NAME`.

Steps: the tree (model.case.tree) -> one case per node (its scenario applied and
validated) -> one model per node, all with the same origin classes -> the extensive form
(model.lp.stochastic) solved by HiGHS -> each leaf's model re-solved with the decisions of
its earlier nodes fixed at the plan's values (the leaf's own recourse: its tables are the
ordinary result tables, so shortfall, prices and stocks read as in any run) -> the figures
of a plan under uncertainty:

    RP    expected cost of the recourse plan (the extensive form's objective)
    WS    expected cost of the wait-and-see plans (each leaf solved with foresight)
    EVPI  = RP - WS: what knowing the future in advance would be worth
    EEV   expected cost of the no-crisis plan's here-and-now decisions (the base case
          solved alone) followed by the best recourse in each branch
    VSS   = EEV - RP: what planning for the tree is worth over planning for calm
    value of the reserve = RP of the same tree without the reserves its scenarios add - RP

With a CVaR weight the objective mixes expected cost and CVaR (model.lp.stochastic) and
RP is that objective; the expected cost of the plan is reported beside it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np
import pandas as pd
from pyomo.common.gc_manager import PauseGC

from model.analysis.results import cost_table, extract_tables
from model.case.scenario import apply_scenario
from model.case.schema import InputError, Problem
from model.case.tree import ROOT, Tree, read_tree
from model.case.validate import validate_case
from model.case.workbook import Case
from model.lp.build import build_model
from model.lp.canonical import LPArrays
from model.lp.data import build_model_data, case_classes
from model.lp.handoff import MatrixLP, compile_lp
from model.lp.solve import SolveResult, load_arrays, run_highs, solve_loaded
from model.lp.decompose import LeafPool, l_shaped
from model.lp.stochastic import HORIZON, ExtensiveLP, NodeModel, extensive_form, node_model
from model.runs.pipeline import load_case
from model.runs.resolve import comparison_tables, shortfall_tables

LOG = logging.getLogger(__name__)


@dataclass
class Leaf:
    """One leaf's outcome under a plan: its tables (ordinary result tables) and objective."""

    name: str
    probability: float
    path: list[str]
    solve: SolveResult
    tables: dict[str, pd.DataFrame]


@dataclass
class TreeResult:
    case: Case
    tree: Tree
    status: str
    message: str
    objective: float = float("nan")
    leaves: dict[str, Leaf] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def optimal(self) -> bool:
        return self.status == "optimal"


# --------------------------------------------------------------------------- models

def node_cases(case: Case, tree: Tree) -> dict[str, Case]:
    """Each node's case: its scenario applied to the base case and validated (problems
    name the branch)."""
    out: dict[str, Case] = {}
    problems = []
    for name, node in tree.nodes.items():
        scenario = tree.data_scenario(name)
        if scenario is None:
            out[name] = case
            continue
        if node.scenario is None and name != ROOT:  # its parent's data (the parent comes first)
            out[name] = out[node.parent]
            continue
        try:
            out[name] = validate_case(apply_scenario(case, scenario))
        except InputError as exc:
            for p in exc.problems:
                p.message += f" (in branch {name or 'here and now'} of tree {tree.name}, scenario '{scenario}')"
            problems += exc.problems
    if problems:
        raise InputError(problems)
    return out


def build_nodes(cases: dict[str, Case], tree: Tree) -> dict[str, NodeModel]:
    """One model per node, all carrying the origin classes any node needs. The root's
    model is built once and kept (model.runs.resolve.Resolver); a node whose case differs
    from the root's in numbers only (capacities, costs, demand, simple bans, quota and
    licence amounts, reserve limits) is the root's model with its numbers (arrays only),
    any other node gets a model of its own."""
    controller: dict[str, str] = {}
    modal: set[str] = set()
    for c in {id(c): c for c in cases.values()}.values():
        ctrl, mod = case_classes(c)
        for p, x in ctrl.items():
            controller.setdefault(p, x)
        modal |= mod
    classes = (controller, modal)
    from model.runs.resolve import Resolver, data_control_rows
    # every node's quotas and licences are rows of the kept model (no limit where a node lacks one)
    controls = pd.concat([data_control_rows(c) for c in cases.values()], ignore_index=True)
    res = Resolver(cases[ROOT], classes=classes, controls=controls)
    matrix = LPArrays.from_highs(res.h).A
    models: dict[str, NodeModel] = {}
    like = None  # the first node on the kept model: the others share its keys
    for n, c in cases.items():
        why, data = res.check(c)
        if why is None:
            res.apply(c, data)
            lp = MatrixLP(res.cost.copy(), 0.0, matrix, res.row_lo.copy(), res.row_hi.copy(), res.col_lo.copy(),
                          res.col_hi.copy(), res.cols, res.rows, "resolve", res.col_pos)
            models[n] = node_model(n, res.built, lp, tree.periods, like)
            models[n].source = (res, c, data)
            like = like or models[n]
            continue
        LOG.debug("tree node %s gets a model of its own: %s", n or "here and now", why)
        d = build_model_data(c, classes)
        with PauseGC():
            built = build_model(d)
            lp = compile_lp(built.model)
        models[n] = node_model(n, built, lp, tree.periods)
    return models


# --------------------------------------------------------------------------- solves

def solve_arrays(ef: ExtensiveLP, settings: dict) -> tuple[str, str, np.ndarray, float]:
    status, words, x, _, obj = solve_arrays_duals(ef, settings)
    return status, words, x, obj


def solve_arrays_duals(ef: ExtensiveLP, settings: dict) -> tuple[str, str, np.ndarray, np.ndarray, float]:
    """(status, words, x, objective) of the extensive form; x is its least-norm optimal
    plan (model.lp.canonical), so the here-and-now decisions do not depend on the vertex
    the solver stops at."""
    h, refused = load_arrays(ef.c, ef.offset, ef.A, ef.col_lower, ef.col_upper, ef.row_lower, ef.row_upper,
                             settings)
    if refused is not None:
        return "error", refused, np.zeros(0), np.zeros(0), float("nan")
    status, words, x, dual, obj, stats = solve_loaded(h, settings)
    if stats.get("canonical", "").startswith("vertex"):
        LOG.warning("the plan of the tree is the solver's vertex: its canonical step did not finish (%s)",
                    stats["canonical"])
    return status, words, x, dual, obj


def solve_leaf(m: NodeModel, settings: dict, fixed: dict[int, float] | None = None, tables: str = "full"
               ) -> tuple[SolveResult, dict[str, pd.DataFrame]]:
    """The leaf's own model with `fixed` columns (position -> value) held, solved and read
    (tables: full, lean (what a comparison reads), figures (costs and shortfall) or none)."""
    lo, hi = m.lp.col_lower.copy(), m.lp.col_upper.copy()
    if fixed:
        j = np.fromiter(fixed.keys(), np.int64, len(fixed))
        v = np.fromiter(fixed.values(), float, len(fixed))
        v = np.clip(v, lo[j], hi[j])  # a solver's value within its tolerance of a bound
        lo[j], hi[j] = v, v
    h, refused = load_arrays(m.lp.c, m.lp.offset, m.lp.A, lo, hi, m.lp.row_lower, m.lp.row_upper, settings)
    stats = {"refused": refused, "col_pos": m.lp.col_pos, "rows": m.lp.A.shape[0], "columns": m.lp.A.shape[1]}
    sol = run_highs(h, m.lp.columns, m.lp.rows, stats, settings if tables == "full" else
                    dict(settings, canonical_plan=tables != "none"))
    if not sol.optimal or tables == "none":
        return sol, {}
    if m.source is not None:  # the kept model's modules read this node's numbers
        res, case, data = m.source
        res.apply(case, data)
    if tables == "full":
        return sol, extract_tables(m.built, sol)
    if tables == "figures":  # what a branch's figures read: costs and shortfall
        return sol, {"costs": cost_table(m.built, sol), **shortfall_tables(m.built, sol)}
    out = comparison_tables(m.built, sol)
    out["periods"] = m.built.data.periods.reset_index()[["period", "start_year", "duration_yr", "discount_factor",
                                                         "weight", "pv_factor"]]
    return sol, out


def read_leaf(models: dict[str, NodeModel], settings: dict, leaf: str, js: np.ndarray, vals: np.ndarray,
              tables: str) -> tuple[SolveResult, dict[str, pd.DataFrame]]:
    """solve_leaf with columns `js` fixed at `vals`, its result stripped of what only this
    process can use (the HiGHS model, lookups by object), so a worker can send it back."""
    sol, out = solve_leaf(models[leaf], settings, dict(zip(js.tolist(), vals.tolist())), tables)
    return replace(sol, highs=None, col_pos={}, row_pos={}, row_dual=np.zeros(0), row_unique=None,
                   row_activity=None, range_up=None, range_dn=None, vertex_dual=None, vertex_x=None), out


def read_leaves(pool: LeafPool, tree: Tree, models: dict[str, NodeModel], ef: ExtensiveLP, x: np.ndarray,
                tables: str) -> dict[str, tuple[SolveResult, dict[str, pd.DataFrame]]]:
    """Every leaf re-solved with the plan's earlier decisions fixed, and read (on the pool's workers)."""
    jobs = []
    for leaf in tree.leaves():
        fixed = fixed_values(tree, models[leaf], ef, x)
        jobs.append((leaf, np.fromiter(fixed.keys(), np.int64, len(fixed)),
                     np.fromiter(fixed.values(), float, len(fixed)), tables))
    return pool.read(jobs)


def owners_of(tree: Tree, m: NodeModel) -> np.ndarray:
    """Per column of a node's model: the node on its path that decides it (None: a later node)."""
    per = np.asarray(m.col_period, np.int64)
    kids = tree.nodes[m.name].children
    end = tree.start(kids[0]) if kids else HORIZON + 1
    out = np.full(len(per), None, object)
    for p in np.unique(per):
        if p < end:
            out[per == p] = m.name if p == HORIZON else tree.owner(m.name, tree.periods[int(p)])
    return out


def fixed_values(tree: Tree, leaf: NodeModel, ef: ExtensiveLP, x: np.ndarray, upto: set[str] | None = None
                 ) -> dict[int, float]:
    """The leaf's columns owned by earlier nodes (or only by the nodes in `upto`), at the
    plan's values; a column its owner lacks is 0 (it exists only in the branch's data)."""
    own = owners_of(tree, leaf)
    on = (own != leaf.name) & (own != None)  # noqa: E711 - an object array
    if upto is not None:
        on &= np.isin(own, list(upto))
    js = np.flatnonzero(on)
    g = ef.node_cols[leaf.name][js]
    vals = np.where(g >= 0, x[np.maximum(g, 0)] if len(x) else 0.0, 0.0)
    return dict(zip(js.tolist(), vals.tolist()))


def root_plan(tree: Tree, models: dict[str, NodeModel], settings: dict) -> dict[tuple, float] | None:
    """The base case's own plan (the root's model solved alone): value by column key."""
    m = models[ROOT]
    sol, _ = solve_leaf(m, settings, tables="none")
    if not sol.optimal:
        return None
    return dict(zip(m.col_keys, sol.x))


# --------------------------------------------------------------------------- the run

def run_tree_and_report(path: str, name: str, out: str = "outputs", method: str = "extensive", workers: int = 1,
                        scheduler=None) -> tuple[TreeResult, object]:
    """Solve the tree and write its folder (None when the plan is not optimal)."""
    from model.logs import recording
    from model.reports.console import say, tree_lines
    from model.reports.files import write_tree_run
    with recording() as record:
        res = run_tree(path, name, method=method, workers=workers, scheduler=scheduler)
        if not res.optimal:
            LOG.error(f"tree {name}: {res.message}; no report was written: a plan that is not optimal is not an answer.")
            return res, None

        def closing(final) -> str:
            say(tree_lines(res.tables, name, str(final)))
            return record.text()
        manifest = {"status": res.status, "objective_usd": res.objective, "seconds": res.seconds, "method": method,
                    "workers": workers, "scheduler": scheduler if isinstance(scheduler, str) else None,
                    "branches": {lf: {"probability": x.probability, "scenario": res.tree.nodes[lf].scenario}
                                 for lf, x in res.leaves.items()}}
        return res, write_tree_run(res.case, name, res.tables, manifest, out, log=closing)


def run_tree(path: str, name: str, value_of_reserve: bool = True, method: str = "extensive",
             workers: int = 1, scheduler=None) -> TreeResult:
    """Solve the tree (its extensive form, or by decomposition: model.lp.decompose, its
    leaves on `workers` processes or on the Dask cluster at `scheduler`) and read the
    plan, each branch and the value of information, of the stochastic solution and of the
    reserve."""
    t0 = time.perf_counter()
    case = load_case(path)
    tree = read_tree(case, name)
    cases = node_cases(case, tree)
    file = case.path.split("/")[-1]
    models = build_nodes(cases, tree)
    s = case.settings
    weight = float(s.get("risk_cvar_weight") or 0.0)
    alpha = float(s.get("risk_cvar_alpha") if s.get("risk_cvar_alpha") is not None else 0.9)
    penalty = s.get("risk_measure") == "penalty"
    if method == "decomposition" and weight > 0:
        raise InputError([Problem(file, "settings", None, "risk_cvar_weight", weight, "0 with --method decomposition",
                                  "the decomposition solves risk-neutral trees; use the extensive form for CVaR")])
    decomposing = method == "decomposition"
    ef = extensive_form(tree, models, weight, alpha, penalty, file, leaves=not decomposing)
    t1 = time.perf_counter()
    with LeafPool(tree, models, ef, s, workers, partial(read_leaf, models, s), scheduler) as pool:
        dual = None
        decomposition = None
        if decomposing:
            decomposition = l_shaped(tree, models, ef, s, pool=pool)
            status, words, obj, x = (decomposition.status, decomposition.message, decomposition.objective,
                                     decomposition.x)
        else:
            status, words, x, dual, obj = solve_arrays_duals(ef, s)
        t2 = time.perf_counter()
        res = TreeResult(case, tree, status, words, obj, seconds={"build_s": t1 - t0, "solve_s": t2 - t1})
        LOG.debug("tree %s: %d nodes, %d leaves; %s %s rows, %s columns; %s", name, len(tree.nodes),
                  len(tree.leaves()), "master" if decomposing else "extensive form", f"{ef.A.shape[0]:,}",
                  f"{ef.A.shape[1]:,}", words)
        if not res.optimal:
            return res
        leaf_x = {}
        # what a branch is read for (shortfall, stocks, prices, costs): the tables a comparison reads
        read = read_leaves(pool, tree, models, ef, x, "lean")
        for leaf in tree.leaves():
            sol, tables = read[leaf]
            if not sol.optimal:
                res.status, res.message = "error", (f"branch {leaf}: re-solving it with the plan's earlier decisions "
                                                    f"fixed was not optimal ({sol.message})")
                return res
            res.leaves[leaf] = Leaf(leaf, tree.probability(leaf), tree.path(leaf)[1:], sol, tables)
            leaf_x[leaf] = sol.x
        t3 = time.perf_counter()
        shared_prices(res, ef, dual)
        res.tables = tree_tables(res, models, ef, x, leaf_x, value_of_reserve, cases, method, pool,
                                 (workers, scheduler))
    if decomposition is not None:
        res.tables["tree_summary"] = pd.concat([res.tables["tree_summary"], pd.DataFrame(
            [("decomposition: iterations", float(decomposition.iterations), ""),
             ("decomposition: lower bound", decomposition.lower_bound, "USD"),
             ("decomposition: relative gap", decomposition.gap, ""),
             ("decomposition: worker processes", float(decomposition.workers), ""),
             ("decomposition: feasibility cuts", float(decomposition.feasibility_cuts), ""),
             ("decomposition: least-norm plan (1 yes, 0: the solver's among ties)", float(decomposition.canonical),
              ""),
             ("decomposition: rounds of the least-norm step", float(decomposition.canonical_rounds), "")],
            columns=["figure", "value", "unit"])], ignore_index=True)
        res.tables["tree_decomposition"] = pd.DataFrame(decomposition.history, columns=[
            "iteration", "lower_bound_usd", "upper_bound_usd", "seconds"])
    res.seconds.update({"branches_s": t3 - t2, "figures_s": time.perf_counter() - t3})
    return res


def _expected(res: TreeResult, objectives: dict[str, float]) -> float:
    return float(sum(res.tree.probability(leaf) * v for leaf, v in objectives.items()))


def _leaf_figures(tables: dict[str, pd.DataFrame]) -> dict[str, float]:
    costs = tables["costs"]
    by = costs.groupby("category")["pv_usd"].sum()
    short = tables["shortfall"]
    return {"resource_cost_pv_usd": float(by.get("resource", 0.0)), "transfers_pv_usd": float(by.get("transfer", 0.0)),
            "penalty_value_pv_usd": float(by.get("penalty", 0.0)),
            "unserved_t": float(short["unserved_t"].sum()) if not short.empty else 0.0,
            "worst_period_share": float(short["unserved_share"].max()) if not short.empty else 0.0}


def tree_tables(res: TreeResult, models: dict[str, NodeModel], ef: ExtensiveLP, x: np.ndarray,
                leaf_x: dict[str, np.ndarray], value_of_reserve: bool, cases: dict[str, Case],
                method: str, pool: LeafPool, execution: tuple = (1, None)) -> dict[str, pd.DataFrame]:
    """execution: (worker processes, Dask scheduler or None) for the tree the value of the
    reserve solves."""
    tree, s = res.tree, res.case.settings
    leaves = tree.leaves()
    branch_rows = []
    for leaf in leaves:
        lf = res.leaves[leaf]
        branch_rows.append({"branch": leaf, "path": " > ".join(lf.path), "probability": lf.probability,
                            "scenario": tree.data_scenario(leaf) or "", "objective_usd": lf.solve.objective,
                            **_leaf_figures(lf.tables)})
    branches = pd.DataFrame(branch_rows)
    expected = _expected(res, {lf: res.leaves[lf].solve.objective for lf in leaves})
    got = pool.solve([(leaf, None, "full") for leaf in leaves])  # each leaf with foresight
    ws = {leaf: got[leaf][1] if got[leaf][0] == "optimal" else float("nan") for leaf in leaves}
    branches["wait_and_see_objective_usd"] = [ws[lf] for lf in leaves]
    plan = root_plan(tree, models, s)
    eev = float("nan")
    if plan is not None:
        jobs = []
        for leaf in leaves:  # the no-crisis plan's here-and-now decisions, then the best recourse
            a = pool.arrays[leaf]
            keys = models[leaf].col_keys
            vals = np.array([plan.get(keys[j], 0.0) for j in a.fixed[a.by_root]])
            values = np.full(len(a.fixed), np.nan)
            values[a.by_root] = vals
            jobs.append((leaf, values, "full"))
        got = pool.solve(jobs)
        eevs = {leaf: got[leaf][1] if got[leaf][0] == "optimal" else float("nan") for leaf in leaves}
        eev = _expected(res, eevs)
        branches["no_crisis_plan_objective_usd"] = [eevs[lf] for lf in leaves]
    ws_exp = _expected(res, ws)
    summary = [("expected cost of the plan (present value)", expected, "USD"),
               ("objective of the plan (expected cost, or its mix with CVaR)", res.objective, "USD"),
               ("expected cost with perfect foresight (wait-and-see)", ws_exp, "USD"),
               ("value of perfect information (EVPI)", expected - ws_exp, "USD"),
               ("expected cost of the no-crisis plan's here-and-now decisions (EEV)", eev, "USD"),
               ("value of the stochastic solution (VSS = EEV - expected cost)", eev - expected, "USD"),
               ("expected unserved demand", float((branches["probability"] * branches["unserved_t"]).sum()), "t"),
               ("expected resource cost (present value)",
                float((branches["probability"] * branches["resource_cost_pv_usd"]).sum()), "USD")]
    if ef.cvar is not None:
        eta = float(x[ef.cvar["eta"]])
        tail = sum(tree.probability(lf) * x[u] for lf, u in ef.cvar["u"].items()) / (1.0 - ef.cvar["alpha"])
        summary += [(f"CVaR at {ef.cvar['alpha']:g} of {ef.cvar['measure'].replace('_', ' ')}", eta + tail, "USD"),
                    ("CVaR weight", ef.cvar["weight"], "")]
    reserves = planned_reserves(res.case, cases)
    if value_of_reserve and reserves:
        summary += _reserve_value(res, branches, cases, reserves, method, execution, models)
    tables = {"tree_summary": pd.DataFrame(summary, columns=["figure", "value", "unit"]),
              "tree_branches": branches,
              "tree_plan": here_and_now(res, models, ef, x, leaf_x),
              "tree_periods": res.leaves[leaves[0]].tables["periods"]}
    first = first_shortfalls(res)
    if not first.empty:
        tables["tree_first_shortfall"] = first
    for kind in ("shortfall", "stockpiles", "prices"):
        parts = [res.leaves[lf].tables[kind].assign(branch=lf) for lf in leaves
                 if kind in res.leaves[lf].tables and not res.leaves[lf].tables[kind].empty]
        if parts:
            t = pd.concat(parts, ignore_index=True)
            tables[f"tree_{kind}"] = t[["branch"] + [c for c in t.columns if c != "branch"]]
    return tables


def shared_prices(res: TreeResult, ef: ExtensiveLP, dual: np.ndarray | None) -> None:
    """In each branch's prices table, the periods it shares with other branches (decided
    before it is revealed) get the extensive form's price there: the balance row's dual /
    (probability of the node that owns the period x the period's weight), the expected
    value of one more tonne over the branches that cannot yet be told apart (risk-weighted
    with a CVaR term). The branch's own re-solve cannot price them: its decisions there are
    fixed. These are marked as not proven unique."""
    tree = res.tree
    for leaf, lf in res.leaves.items():
        p = lf.tables.get("prices")
        if p is None or p.empty:
            continue
        weight = lf.tables["periods"].set_index("period")["weight"]
        owner = p["period"].map(lambda t, leaf=leaf: tree.owner(leaf, t))
        basis = np.where(owner == leaf, "this branch", "shared: expected over the branches of " +
                         owner.replace({ROOT: "here and now"}))
        cls = p["origin_class"].fillna("").astype(str)
        labels = np.where(cls == "", p["product"], p["product"] + "@" + cls)
        prices = p["price_usd_per_t"].to_numpy(float).copy()
        unique = p["price_unique"].to_numpy(bool).copy()
        for i in np.flatnonzero((owner != leaf).to_numpy()):
            o, t = owner.iat[i], p["period"].iat[i]
            r = ef.row_index.get((o, ("product_balance", p["country"].iat[i], labels[i], t)))
            ok = r is not None and dual is not None  # the decomposition gives no extensive-form duals
            prices[i] = dual[r] / (tree.probability(o) * float(weight[t])) if ok else np.nan
            unique[i] = False
        lf.tables["prices"] = p.assign(price_usd_per_t=prices, price_unique=unique, price_basis=basis)


def first_shortfalls(res: TreeResult) -> pd.DataFrame:
    """Per branch, country, product and segment: the first period with unserved demand, its
    share of that period's demand, and the days from the start of the branch's reveal
    period to the start of that period (0: short in the year the branch is revealed; the
    periods set the resolution)."""
    tree = res.tree
    rows = []
    for leaf, lf in res.leaves.items():
        short = lf.tables.get("shortfall")
        if short is None or short.empty:
            continue
        start = lf.tables["periods"].set_index("period")["start_year"]
        reveal = float(start[tree.nodes[tree.path(leaf)[1]].reveal_period])
        s = short.assign(_t=short["period"].map(start)).sort_values("_t", kind="mergesort")
        for (c, p, seg), g in s.groupby(["country", "product", "segment"], sort=False):
            r = g.iloc[0]
            rows.append({"branch": leaf, "country": c, "product": p, "segment": seg, "first_period": r["period"],
                         "unserved_share": float(r["unserved_share"]),
                         "days_from_first_reveal": max(0.0, (float(r["_t"]) - reveal) * 365.0)})
    return pd.DataFrame(rows, columns=["branch", "country", "product", "segment", "first_period", "unserved_share",
                                       "days_from_first_reveal"])


def planned_reserves(base: Case, cases: dict[str, Case]) -> list[str]:
    """The reserves whose value the tree measures: those its scenarios add to the base
    case; where they add none, the base case's own reserves that carry no committed build
    (a committed build, such as a mine's observed stock build, is data, not a choice)."""
    have = set(base.tables["stockpiles"]["stockpile"])
    added = list(dict.fromkeys(s for c in cases.values() for s in c.tables["stockpiles"]["stockpile"] if s not in have))
    if added:
        return added
    sp = base.tables["stockpiles"]
    return list(sp.loc[sp["build_min_t_per_yr"].isna(), "stockpile"])


def zero_reserves(models: dict[str, NodeModel], cases: dict[str, Case], reserves: list[str]
                  ) -> dict[str, NodeModel] | None:
    """The nodes' models with the reserves' buys, releases and levels held at 0: the tree
    without them, on the same models (None where a reserve starts with stock, has a target
    or a committed build: those cannot be 0, so the reserve's rows must go instead)."""
    for c in cases.values():
        sp = c.tables["stockpiles"]
        sp = sp[sp["stockpile"].isin(reserves)]
        for col in ("initial_t", "target_t", "target_days_of_cover", "build_min_t_per_yr"):
            if col in sp and (sp[col].fillna(0.0).astype(float) != 0.0).any():
                return None
    out, picks = {}, {}
    for n, m in models.items():
        if id(m.col_keys) not in picks:
            picks[id(m.col_keys)] = np.array([j for j, k in enumerate(m.col_keys) if str(k[0]).startswith("stock_")
                                              and len(k) > 1 and k[1] in set(reserves)], np.int64)
        js = picks[id(m.col_keys)]
        lo, hi = m.lp.col_lower.copy(), m.lp.col_upper.copy()
        lo[js], hi[js] = 0.0, 0.0
        out[n] = replace(m, lp=replace(m.lp, col_lower=lo, col_upper=hi))
    return out


def _reserve_value(res: TreeResult, branches: pd.DataFrame, cases: dict[str, Case], reserves: list[str],
                   method: str, execution: tuple, models: dict[str, NodeModel]) -> list[tuple]:
    """The same tree without `reserves`, against the plan."""
    models = zero_reserves(models, cases, reserves)
    if models is None:  # a reserve that starts with stock or must hold some: the tree without its rows
        bare = {n: replace(c, tables={**c.tables, "stockpiles": c.tables["stockpiles"][
            ~c.tables["stockpiles"]["stockpile"].isin(reserves)].reset_index(drop=True)}) for n, c in cases.items()}
        try:
            models = build_nodes({n: validate_case(c) for n, c in bare.items()}, res.tree)
        except InputError as exc:
            return [("value of the reserve", float("nan"), f"not measured: without stockpiles the case is not valid "
                     f"({exc.problems[0].message})")]
    s = res.case.settings
    ef = extensive_form(res.tree, models, 0.0, 0.9, False, leaves=method != "decomposition")
    decomposing = method == "decomposition"
    with LeafPool(res.tree, models, ef, s, execution[0] if decomposing else 1, partial(read_leaf, models, s),
                  execution[1] if decomposing else None) as pool:
        if method == "decomposition":
            d = l_shaped(res.tree, models, ef, s, pool=pool)
            status, words, x = d.status, d.message, d.x
        else:
            status, words, x, _ = solve_arrays(ef, s)
        if status != "optimal":
            return [("value of the reserve", float("nan"), f"not measured: the tree without stockpiles is {words}")]
        read = read_leaves(pool, res.tree, models, ef, x, "figures")
    exp_cost, unserved, resource = 0.0, 0.0, 0.0
    for leaf in res.tree.leaves():
        sol, tables = read[leaf]
        if not sol.optimal:
            return [("value of the reserve", float("nan"), f"not measured: branch {leaf} without stockpiles is "
                     f"{sol.message}")]
        p = res.tree.probability(leaf)
        f = _leaf_figures(tables)
        exp_cost += p * sol.objective
        unserved += p * f["unserved_t"]
        resource += p * f["resource_cost_pv_usd"]
    plan_cost = float((branches["probability"] * branches["objective_usd"]).sum())
    plan_unserved = float((branches["probability"] * branches["unserved_t"]).sum())
    plan_resource = float((branches["probability"] * branches["resource_cost_pv_usd"]).sum())
    avoided = unserved - plan_unserved
    return [(f"expected cost without the reserves valued ({', '.join(reserves)})", exp_cost, "USD"),
            ("value of the reserve (expected cost without it - with it)", exp_cost - plan_cost, "USD"),
            ("expected unserved demand avoided by the reserve", avoided, "t"),
            ("resource cost per tonne of avoided shortfall", (plan_resource - resource) / avoided
             if avoided > 1e-9 else float("nan"), "USD/t")]


DECISIONS = {"stock_buy_t_per_yr": "stockpile buy (t/yr)", "stock_release_t_per_yr": "stockpile release (t/yr)",
             "stock_level_t": "stockpile level at the end of the period (t)",
             "build_t_per_yr": "capacity build decided (t/yr)"}


def here_and_now(res: TreeResult, models: dict[str, NodeModel], ef: ExtensiveLP, x: np.ndarray,
                 leaf_x: dict[str, np.ndarray]) -> pd.DataFrame:
    """Stockpile buys, releases and levels and capacity builds of every node's own
    periods: the decisions taken before what follows them is known (a leaf's from its
    re-solve, the plan its tables report)."""
    rows = []
    picks: dict[int, np.ndarray] = {}
    for n in res.tree.nodes:
        m = models[n]
        if id(m.col_keys) not in picks:
            picks[id(m.col_keys)] = np.array([j for j, k in enumerate(m.col_keys) if k[0] in DECISIONS], np.int64)
        js = picks[id(m.col_keys)]
        own = owners_of(res.tree, m)[js]
        js = js[own == n]
        vals = leaf_x[n][js] if n in leaf_x else x[ef.node_cols[n][js]]
        for j, v in zip(js, vals):
            key = m.col_keys[j]
            rows.append({"decided_in": n or "here and now", "decision": DECISIONS[key[0]], "unit_or_stockpile": key[1],
                         "period": key[2], "value": float(v)})
    out = pd.DataFrame(rows, columns=["decided_in", "decision", "unit_or_stockpile", "period", "value"])
    # a reserve with a committed build (a mine's observed stock build) follows the data, not a choice
    sp = res.case.tables["stockpiles"]
    committed = set(sp.loc[sp["build_min_t_per_yr"].notna(), "stockpile"])
    out["committed_build_in_data"] = out["decision"].str.startswith("stockpile") & out["unit_or_stockpile"].isin(
        committed)
    order = {p: i for i, p in enumerate(res.tree.periods)}
    depth = {n: len(res.tree.path(n)) for n in res.tree.nodes}
    out = out.assign(_d=out["decided_in"].map(lambda n: depth.get("" if n == "here and now" else n, 0)),
                     _t=out["period"].map(order))
    return out.sort_values(["_d", "decided_in", "decision", "unit_or_stockpile", "_t"], kind="mergesort").drop(
        columns=["_d", "_t"]).reset_index(drop=True)
