"""The extensive form of a scenario tree: one LP whose decisions are shared where the future
cannot yet be told apart (non-anticipativity by shared variables).

Every node of the tree (model.case.tree) has its own model, built by the ordinary modules
from its scenario's data. A column of a node's model is a decision of one period; the
period's owner on the node's path is the deepest node revealed by then
(`Tree.owner`). The extensive form has one column per (owner, key): a decision taken
before a branch is revealed is one column for every branch below its owner, so a reserve
bought in 2025 is the same reserve in the calm and the ban branch, and a build decided
before the reveal comes online in every branch. Each row is taken once, from the model of
the deepest owner among its columns (a 2027 balance row of the ban branch references the
2026 stock level the root owns). Costs are weighted by the owner's probability, so the
objective is the expected cost; with `cvar_weight` > 0 it is

    (1 - lambda) E[cost] + lambda (eta + sum_l p_l u_l / (1 - alpha)),
    u_l >= cost_l - eta, u_l >= 0                       (Rockafellar and Uryasev, 2000)

where cost_l is a leaf's total cost (or only its unserved-demand penalty value).

A branch's scenario may change only the periods from its reveal on: a column or row of an
earlier period whose numbers differ from its owner's model is an error naming the branch,
the element and its period. Elements the owner's model lacks (a lane that exists only
because the branch adds a plant) are left out of those periods.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from pyomo.core.base.matrix_constraint import MatrixConstraint

from model.case.schema import InputError, Problem
from model.case.tree import Tree
from model.lp.build import BuiltModel
from model.lp.handoff import MatrixLP

HORIZON = 10**9          # period index of a column with no period (a horizon-wide decision)
REL_TOL = 1e-9           # numbers equal within this (relative) are the same data


@dataclass
class NodeModel:
    """A tree node's model as matrices, with stable keys and the period of each column."""

    name: str
    built: BuiltModel
    lp: MatrixLP
    col_keys: list[tuple]
    col_period: np.ndarray   # index into Tree.periods; HORIZON when the column has none
    row_keys: list[tuple | None] = field(default_factory=list)
    # (kept model, case, data) when the node is a kept model's numbers: its modules must
    # read this node's data again before its tables are extracted (model.runs.tree)
    source: tuple | None = None


def column_keys(built: BuiltModel, lp: MatrixLP, periods: list[str]) -> tuple[list[tuple], np.ndarray]:
    """(key, period index) of each column: a variable's name and index, or for a trade flow
    its lane (from, to, product, origin class, period); the period is the index's period
    element (exactly one, or none for a horizon-wide decision)."""
    pos = {p: i for i, p in enumerate(periods)}
    flows, fvars = built.registry.flow_table()
    flow_key = {}
    if len(fvars):
        cls = flows["cls"].tolist() if "cls" in flows else [""] * len(flows)
        for v, a, b, p, c, t in zip(fvars, flows["from_country"].tolist(), flows["to_country"].tolist(),
                                    flows["product"].tolist(), cls, flows["period"].tolist()):
            flow_key[id(v)] = (("flow_t_per_yr", a, b, p, c, t), pos[t])
    keys: list[tuple] = []
    per = np.empty(len(lp.columns), np.int64)
    for j, v in enumerate(lp.columns):
        got = flow_key.get(id(v))
        if got is None:
            idx = v.index()
            parts = idx if isinstance(idx, tuple) else (idx,)
            hits = [pos[e] for e in parts if isinstance(e, str) and e in pos]
            if len(hits) > 1:
                raise ValueError(f"variable {v.name} names more than one period: its decision period is unclear")
            got = ((v.parent_component().local_name,) + tuple(parts), hits[0] if hits else HORIZON)
        keys.append(got[0])
        per[j] = got[1]
    return keys, per


def row_keys(built: BuiltModel, lp: MatrixLP) -> list[tuple | None]:
    """A stable key per row where one exists (a product balance by its node, an indexed
    constraint by its index), else None (such rows are not compared across branches)."""
    m = built.model
    out: list[tuple | None] = []
    for con in lp.rows:
        comp = con.parent_component()
        name = comp.local_name
        idx = con.index()
        if isinstance(comp, MatrixConstraint):
            out.append(("product_balance",) + tuple(m.NODES.at(idx + 1)) if name == "product_balance" else None)
        elif isinstance(idx, int) or idx is None:
            out.append(None if isinstance(idx, int) else (name,))
        else:
            out.append((name,) + (idx if isinstance(idx, tuple) else (idx,)))
    return out


def node_model(name: str, built: BuiltModel, lp: MatrixLP, periods: list[str], like: NodeModel | None = None
               ) -> NodeModel:
    """like: a node of the same model (the same columns and rows), whose keys are shared."""
    if like is not None:
        return NodeModel(name, built, lp, like.col_keys, like.col_period, like.row_keys)
    keys, per = column_keys(built, lp, periods)
    return NodeModel(name, built, lp, keys, per, row_keys(built, lp))


@dataclass
class ExtensiveLP:
    """The assembled LP and where each node's columns went."""

    c: np.ndarray
    offset: float
    A: sp.csc_array
    row_lower: np.ndarray
    row_upper: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    col_owner: list[str]                 # owning node of each global column
    col_key: list[tuple]
    index: dict[tuple[str, tuple], int]  # (owner, key) -> global column
    cvar: dict | None = None             # eta and u columns when a CVaR term is in
    row_index: dict = field(default_factory=dict)  # (owner, row key) -> global row, where the row has a key


def _same(a: float, b: float) -> bool:
    return a == b or abs(a - b) <= REL_TOL * max(1.0, abs(a), abs(b))


class _Assembler:
    def __init__(self, tree: Tree, models: dict[str, NodeModel]):
        self.tree, self.models = tree, models
        self.depth = {n: len(tree.path(n)) for n in tree.nodes}
        self.cols: dict[tuple[str, tuple], int] = {}
        self.c: list[float] = []
        self.lo: list[float] = []
        self.hi: list[float] = []
        self.owner: list[str] = []
        self.keys: list[tuple] = []
        self.problems: list[Problem] = []
        self.key_pos = {n: {k: j for j, k in enumerate(m.col_keys)} for n, m in models.items()}
        self.row_pos: dict[str, dict] = {}
        self.csr: dict[str, sp.csr_array] = {}
        self._owners_cache: dict[str, list[str | None]] = {}

    # -- ownership ------------------------------------------------------------
    def owners(self, node: str) -> list[str | None]:
        """Owner of each column of the node's model; None where a later node decides it."""
        t, m = self.tree, self.models[node]
        kids = t.nodes[node].children
        end = t.start(kids[0]) if kids else HORIZON + 1
        by_period = {}
        out: list[str | None] = []
        for p in m.col_period:
            p = int(p)
            if p >= end:
                out.append(None)
                continue
            if p not in by_period:
                by_period[p] = node if p == HORIZON else t.owner(node, t.periods[p])
            out.append(by_period[p])
        return out

    # -- columns --------------------------------------------------------------
    def add_columns(self, node: str, owners: list[str | None]) -> None:
        m = self.models[node]
        prob = self.tree.probability(node)
        for j, own in enumerate(owners):
            if own == node:
                self.cols[(node, m.col_keys[j])] = len(self.c)
                self.c.append(prob * float(m.lp.c[j]))
                self.lo.append(float(m.lp.col_lower[j]))
                self.hi.append(float(m.lp.col_upper[j]))
                self.owner.append(node)
                self.keys.append(m.col_keys[j])
            elif own is not None:
                self.check_column(node, own, j)

    def check_column(self, node: str, own: str, j: int) -> None:
        """An earlier-period column must carry its owner's numbers."""
        m, o = self.models[node], self.models[own]
        k = self.key_pos[own].get(m.col_keys[j])
        if k is None:
            return  # the owner has no such column: left out of those periods
        for what, a, b in (("cost", m.lp.c[j], o.lp.c[k]), ("lower bound", m.lp.col_lower[j], o.lp.col_lower[k]),
                           ("upper bound", m.lp.col_upper[j], o.lp.col_upper[k])):
            if not _same(float(a), float(b)):
                self.changed(node, f"{what} of {m.lp.columns[j].name}", self.tree.periods[int(m.col_period[j])],
                             float(b), float(a))
                return

    def changed(self, node: str, element: str, period: str, before: float, after: float) -> None:
        n = self.tree.nodes[node]
        if any(p.row == n.row and p.column == "scenario" for p in self.problems):
            return  # one problem per branch
        self.problems.append(Problem(
            "", "branches", n.row, "scenario", n.scenario or "",
            f"a scenario that changes only periods from {n.reveal_period} on",
            f"branch {node} of tree {self.tree.name}: its scenario changes the {element} in {period}, before the "
            f"branch is revealed ({before:.6g} -> {after:.6g}); limit the change to periods from "
            f"{n.reveal_period} on (a row with a period, such as demand or a supply cap, or a control's periods)"))

    # -- rows -----------------------------------------------------------------
    def add_rows(self, node: str, owners: list[str | None], out: dict) -> None:
        m = self.models[node]
        R = sp.csr_array(m.lp.A)
        depth = self.depth
        for i in range(R.shape[0]):
            js = R.indices[R.indptr[i]:R.indptr[i + 1]]
            if not len(js):
                continue
            own = [owners[j] for j in js]
            if any(o is None for o in own):
                continue  # a later node's row
            deepest = max(own, key=lambda o: depth[o])
            if deepest != node:
                self.check_row(node, deepest, i, js, R.data[R.indptr[i]:R.indptr[i + 1]])
                continue
            gcols = []
            for j, o in zip(js, own):
                g = self.cols.get((o, m.col_keys[j]))
                if g is None:
                    self.missing(node, o, m.lp.columns[j].name)
                    g = -1
                gcols.append(g)
            out["rows"].append((np.asarray(gcols, np.int64), R.data[R.indptr[i]:R.indptr[i + 1]].copy()))
            out["meta"].append((node, m.row_keys[i]))
            out["lo"].append(float(m.lp.row_lower[i]))
            out["hi"].append(float(m.lp.row_upper[i]))

    def missing(self, node: str, own: str, var: str) -> None:
        n = self.tree.nodes[node]
        self.problems.append(Problem(
            "", "branches", n.row, "scenario", n.scenario or "", "a scenario that adds nothing before its reveal period",
            f"branch {node} of tree {self.tree.name}: its model has {var}, a decision of a period before the branch "
            f"is revealed that the model of {own or 'the here-and-now periods'} does not have"))

    def check_row(self, node: str, own: str, i: int, js: np.ndarray, vals: np.ndarray) -> None:
        """An earlier-period row must be its owner's row (where both have a key)."""
        m, o = self.models[node], self.models[own]
        key = m.row_keys[i]
        if key is None:
            return
        pos = self.row_pos.setdefault(own, {k: r for r, k in enumerate(o.row_keys) if k is not None})
        r = pos.get(key)
        if r is None:
            return
        for what, a, b in (("lower limit", m.lp.row_lower[i], o.lp.row_lower[r]),
                           ("upper limit", m.lp.row_upper[i], o.lp.row_upper[r])):
            if not _same(float(a), float(b)):
                period = next((p for p in key if isinstance(p, str) and p in self.tree.periods), "?")
                self.changed(node, f"{what} of {m.lp.rows[i].name}", period, float(b), float(a))
                return
        if own not in self.csr:
            self.csr[own] = sp.csr_array(o.lp.A)
        O = self.csr[own]
        lo_, hi_ = O.indptr[r], O.indptr[r + 1]
        theirs = {o.col_keys[j]: v for j, v in zip(O.indices[lo_:hi_], O.data[lo_:hi_])}
        for j, v in zip(js, vals):
            w = theirs.get(m.col_keys[j])
            if w is not None and not _same(float(v), float(w)):
                period = next((p for p in key if isinstance(p, str) and p in self.tree.periods), "?")
                self.changed(node, f"coefficient of {m.lp.columns[j].name} in {m.lp.rows[i].name}", period,
                             float(w), float(v))
                return

    # -- leaf costs (for CVaR and reports) -------------------------------------
    def leaf_cost(self, leaf: str, penalty_only: bool) -> tuple[np.ndarray, np.ndarray]:
        """Global columns and undiscounted-weighted cost coefficients of a leaf's total cost
        (each column's cost from its owner's model)."""
        cols: list[int] = []
        costs: list[float] = []
        for n in self.tree.path(leaf):
            m = self.models[n]
            for j, own in enumerate(self._owners_cache[n]):
                if own != n or m.lp.c[j] == 0:
                    continue
                if penalty_only and m.lp.columns[j].parent_component().local_name != "shortfall_t_per_yr":
                    continue
                cols.append(self.cols[(n, m.col_keys[j])])
                costs.append(float(m.lp.c[j]))
        return np.asarray(cols, np.int64), np.asarray(costs, float)


def extensive_form(tree: Tree, models: dict[str, NodeModel], cvar_weight: float = 0.0, cvar_alpha: float = 0.9,
                   penalty_only: bool = False, file: str = "") -> ExtensiveLP:
    """Assemble the extensive form (InputError when a branch's scenario changes an
    earlier period)."""
    a = _Assembler(tree, models)
    order = sorted(tree.nodes, key=lambda n: a.depth[n])  # owners' columns before their children's
    a._owners_cache = {n: a.owners(n) for n in order}
    for n in order:
        a.add_columns(n, a._owners_cache[n])
    rows: dict = {"rows": [], "lo": [], "hi": [], "meta": []}
    for n in order:
        a.add_rows(n, a._owners_cache[n], rows)
    if a.problems:
        for p in a.problems:
            p.file = file
        raise InputError(a.problems)
    leaves = tree.leaves()
    offset = sum(tree.probability(leaf) * models[leaf].lp.offset for leaf in leaves)
    c = np.asarray(a.c, float)
    lo, hi = list(a.lo), list(a.hi)
    cvar = None
    if cvar_weight > 0:
        c *= 1.0 - cvar_weight
        n0 = len(c)
        eta, us = n0, list(range(n0 + 1, n0 + 1 + len(leaves)))
        probs = np.array([tree.probability(leaf) for leaf in leaves])
        c = np.concatenate([c, [cvar_weight], cvar_weight * probs / (1.0 - cvar_alpha)])
        lo += [-np.inf] + [0.0] * len(leaves)
        hi += [np.inf] * (1 + len(leaves))
        for leaf, u in zip(leaves, us):  # cost_l - eta - u_l <= -offset_l
            cols, costs = a.leaf_cost(leaf, penalty_only)
            rows["rows"].append((np.concatenate([cols, [eta, u]]), np.concatenate([costs, [-1.0, -1.0]])))
            rows["lo"].append(-np.inf)
            rows["hi"].append(-models[leaf].lp.offset if not penalty_only else 0.0)
            rows["meta"].append((leaf, ("cvar_excess",)))
        cvar = {"eta": eta, "u": dict(zip(leaves, us)), "weight": cvar_weight, "alpha": cvar_alpha,
                "measure": "penalty" if penalty_only else "total_cost"}
        offset *= 1.0 - cvar_weight
    n = len(c)
    indptr = np.zeros(len(rows["rows"]) + 1, np.int64)
    indptr[1:] = np.cumsum([len(r[0]) for r in rows["rows"]])
    idx = np.concatenate([r[0] for r in rows["rows"]]) if rows["rows"] else np.zeros(0, np.int64)
    val = np.concatenate([r[1] for r in rows["rows"]]) if rows["rows"] else np.zeros(0)
    A = sp.csr_array((val, idx, indptr), shape=(len(rows["rows"]), n)).tocsc()
    A.sum_duplicates()
    return ExtensiveLP(c, offset, A, np.asarray(rows["lo"], float), np.asarray(rows["hi"], float),
                       np.asarray(lo, float), np.asarray(hi, float), a.owner, a.keys, a.cols, cvar,
                       {meta: i for i, meta in enumerate(rows["meta"]) if meta[1] is not None})

