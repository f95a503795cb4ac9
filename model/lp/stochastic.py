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
from model.lp.columns import ColumnMap
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
    n = len(lp.columns)
    keys: list = [None] * n
    per = np.full(n, -1, np.int64)
    flows, fvars = built.registry.flow_table()
    if len(fvars):  # a flow by its lane, read from the flow table (its VarData need not exist)
        at = (lp.col_pos if lp.col_pos is not None else ColumnMap(lp.columns)).positions(fvars)
        if (at < 0).any():
            raise ValueError("a trade flow is not a column of the model")
        cls = flows["cls"].tolist() if "cls" in flows else [""] * len(flows)
        for j, a, b, p, c, t in zip(at.tolist(), flows["from_country"].tolist(), flows["to_country"].tolist(),
                                    flows["product"].tolist(), cls, flows["period"].tolist()):
            keys[j] = ("flow_t_per_yr", a, b, p, c, t)
            per[j] = pos[t]
    for j in np.flatnonzero(per < 0).tolist():
        v = lp.columns[j]
        idx = v.index()
        parts = idx if isinstance(idx, tuple) else (idx,)
        hits = [pos[e] for e in parts if isinstance(e, str) and e in pos]
        if len(hits) > 1:
            raise ValueError(f"variable {v.name} names more than one period: its decision period is unclear")
        keys[j] = (v.parent_component().local_name,) + tuple(parts)
        per[j] = hits[0] if hits else HORIZON
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
    # per node, per column of its model: the global column of that decision (its owner's),
    # -1 where a later node decides it or its owner's model lacks it (held at 0)
    node_cols: dict[str, np.ndarray]
    cvar: dict | None = None             # eta and u columns when a CVaR term is in
    row_index: dict = field(default_factory=dict)  # (owner, row key) -> global row, where the row has a key
    with_leaves: bool = True             # False: only the nodes before the last reveals (a decomposition's master)

    def column(self, owner: str, key: tuple) -> int | None:
        """The global column of (owner, key), or None."""
        for g in np.flatnonzero(np.asarray(self.col_owner, object) == owner):
            if self.col_key[g] == key:
                return int(g)
        return None


def _same(a: float, b: float) -> bool:
    return a == b or abs(a - b) <= REL_TOL * max(1.0, abs(a), abs(b))


class _Assembler:
    """Column by column: nodes may be models of their own (their keys line them up)."""

    def __init__(self, tree: Tree, models: dict[str, NodeModel], leaves: bool = True):
        self.tree, self.models, self.with_leaves = tree, models, leaves
        self.depth = {n: len(tree.path(n)) for n in tree.nodes}
        self.leaf_set = set(tree.leaves())
        self.rows: dict = {"rows": [], "lo": [], "hi": [], "meta": []}
        self.node_cols: dict[str, np.ndarray] = {}
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

    def assemble(self) -> None:
        order = sorted(self.tree.nodes, key=lambda n: self.depth[n])  # owners' columns before their children's
        self._owners_cache = {n: self.owners(n) for n in order}
        for n in order:
            self.add_columns(n, self._owners_cache[n], n not in self.leaf_set or self.with_leaves)
        for n in order:
            own = self._owners_cache[n]
            keys = self.models[n].col_keys
            self.node_cols[n] = np.fromiter((self.cols.get((o, k), -1) if o is not None else -1
                                             for o, k in zip(own, keys)), np.int64, len(keys))
            if n not in self.leaf_set or self.with_leaves:
                self.add_rows(n, own, self.rows)

    def matrix(self, n: int) -> sp.csc_array:
        rows = self.rows["rows"]
        indptr = np.zeros(len(rows) + 1, np.int64)
        indptr[1:] = np.cumsum([len(r[0]) for r in rows])
        idx = np.concatenate([r[0] for r in rows]) if rows else np.zeros(0, np.int64)
        val = np.concatenate([r[1] for r in rows]) if rows else np.zeros(0)
        A = sp.csr_array((val, idx, indptr), shape=(len(rows), n)).tocsc()
        A.sum_duplicates()
        return A

    def row_index(self) -> dict:
        return {meta: i for i, meta in enumerate(self.rows["meta"]) if meta[1] is not None}

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
    def add_columns(self, node: str, owners: list[str | None], add: bool = True) -> None:
        m = self.models[node]
        prob = self.tree.probability(node)
        for j, own in enumerate(owners):
            if own == node:
                if not add:
                    continue
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


class _SharedAssembler:
    """Every node is one model with its own numbers (the same columns, rows and matrix):
    ownership, checks and the matrix with arrays, a node at a time."""

    BIG = 10**6  # depth of a column a later node decides

    def __init__(self, tree: Tree, models: dict[str, NodeModel], leaves: bool = True):
        self.tree, self.models, self.with_leaves = tree, models, leaves
        first = next(iter(models.values()))
        self.keys_all, self.per = first.col_keys, np.asarray(first.col_period, np.int64)
        self.row_keys = first.row_keys
        self.R = sp.csr_array(first.lp.A)
        self.columns = first.lp.columns
        self.depth = {n: len(tree.path(n)) for n in tree.nodes}
        self.leaf_set = set(tree.leaves())
        self.problems: list[Problem] = []
        self.node_cols: dict[str, np.ndarray] = {}
        self.owned: dict[str, np.ndarray] = {}   # positions of the columns each node decides
        self.c, self.lo, self.hi = [], [], []
        self.owner: list[str] = []
        self.keys: list[tuple] = []
        self.rows: dict = {"rows": [], "lo": [], "hi": [], "meta": []}
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (row ids, col ids, values)
        self._meta: list[tuple[str, np.ndarray]] = []
        self.n_rows = 0

    def owner_codes(self, node: str) -> tuple[np.ndarray, list[str]]:
        """Per column, the index in the node's path of the node that decides it (-1: a
        later node)."""
        t = self.tree
        path = t.path(node)
        kids = t.nodes[node].children
        end = t.start(kids[0]) if kids else HORIZON + 1
        code = np.full(len(self.per), -1, np.int64)
        for p in np.unique(self.per):
            if p >= end:
                continue
            o = node if p == HORIZON else t.owner(node, t.periods[int(p)])
            code[self.per == p] = path.index(o)
        return code, path

    def assemble(self) -> None:
        order = sorted(self.tree.nodes, key=lambda n: self.depth[n])
        n_cols = 0
        for n in order:
            m = self.models[n]
            code, path = self.owner_codes(n)
            me = len(path) - 1
            mine = np.flatnonzero(code == me)
            parent = self.tree.nodes[n].parent
            g = self.node_cols[parent].copy() if parent is not None else np.full(len(code), -1, np.int64)
            g[code < 0] = -1
            add = n not in self.leaf_set or self.with_leaves
            if add:
                g[mine] = np.arange(n_cols, n_cols + len(mine))
                n_cols += len(mine)
                prob = self.tree.probability(n)
                self.c.append(prob * m.lp.c[mine])
                self.lo.append(m.lp.col_lower[mine])
                self.hi.append(m.lp.col_upper[mine])
                self.owner += [n] * len(mine)
                self.keys += [self.keys_all[j] for j in mine]
            else:
                g[mine] = -1
            self.node_cols[n] = g
            self.owned[n] = mine
            for k, anc in enumerate(path[:-1]):  # earlier periods carry their owner's numbers
                self.check_columns(n, anc, np.flatnonzero(code == k))
            self.add_rows(n, code, path, g, add)
        self.c = np.concatenate(self.c) if self.c else np.zeros(0)
        self.lo = np.concatenate(self.lo) if self.lo else np.zeros(0)
        self.hi = np.concatenate(self.hi) if self.hi else np.zeros(0)

    def check_columns(self, node: str, own: str, js: np.ndarray) -> None:
        m, o = self.models[node].lp, self.models[own].lp
        for what, a, b in (("cost", m.c, o.c), ("lower bound", m.col_lower, o.col_lower),
                           ("upper bound", m.col_upper, o.col_upper)):
            bad = _differ(a[js], b[js])
            if bad.any():
                j = int(js[np.flatnonzero(bad)[0]])
                _changed(self, node, f"{what} of {self.columns[j].name}", self.tree.periods[int(self.per[j])],
                         float(b[j]), float(a[j]))
                return

    def add_rows(self, node: str, code: np.ndarray, path: list[str], g: np.ndarray, add: bool) -> None:
        R, m = self.R, self.models[node].lp
        depth = np.where(code < 0, self.BIG, code)
        nz = np.diff(R.indptr) > 0
        starts = R.indptr[:-1][nz]
        row_depth = np.full(R.shape[0], -1, np.int64)
        if len(R.indices):
            row_depth[nz] = np.maximum.reduceat(depth[R.indices], starts)
        me = len(path) - 1
        for k, anc in enumerate(path[:-1]):  # rows an ancestor owns must carry its limits
            rs = np.flatnonzero(row_depth == k)
            o = self.models[anc].lp
            for what, a, b in (("lower limit", m.row_lower, o.row_lower), ("upper limit", m.row_upper, o.row_upper)):
                bad = _differ(a[rs], b[rs])
                if bad.any():
                    i = int(rs[np.flatnonzero(bad)[0]])
                    key = self.row_keys[i] or ()
                    period = next((p for p in key if isinstance(p, str) and p in self.tree.periods), "?")
                    _changed(self, node, f"{what} of {self.models[node].lp.rows[i].name}", period, float(b[i]),
                             float(a[i]))
                    break
        if not add:
            return
        rs = np.flatnonzero(row_depth == me)
        sub = R[rs]
        cols = g[sub.indices]
        rid = np.repeat(np.arange(self.n_rows, self.n_rows + len(rs)), np.diff(sub.indptr))
        self._parts.append((rid, cols, sub.data))
        self._meta.append((node, rs))
        self.rows["lo"].extend(m.row_lower[rs].tolist())
        self.rows["hi"].extend(m.row_upper[rs].tolist())
        self.n_rows += len(rs)

    def matrix(self, n: int) -> sp.csc_array:
        rows = self.rows["rows"]  # a CVaR term's rows, after the nodes'
        r = [p[0] for p in self._parts] + [np.full(len(x[0]), self.n_rows + i, np.int64) for i, x in enumerate(rows)]
        c = [p[1] for p in self._parts] + [x[0] for x in rows]
        v = [p[2] for p in self._parts] + [x[1] for x in rows]
        cat = (lambda xs, t: np.concatenate(xs) if xs else np.zeros(0, t))
        A = sp.coo_array((cat(v, float), (cat(r, np.int64), cat(c, np.int64))),
                         shape=(self.n_rows + len(rows), n)).tocsc()
        A.sum_duplicates()
        return A

    def row_index(self) -> dict:
        """(owner, row key) -> global row, for the nodes before the last reveals (whose
        rows price the periods branches share)."""
        out, start = {}, 0
        for node, rs in self._meta:
            if node not in self.leaf_set:
                for k, i in enumerate(rs):
                    key = self.row_keys[i]
                    if key is not None:
                        out[(node, key)] = start + k
            start += len(rs)
        return out

    def leaf_cost(self, leaf: str, penalty_only: bool) -> tuple[np.ndarray, np.ndarray]:
        cols, costs = [], []
        short = None
        if penalty_only:
            short = np.array([v.parent_component().local_name == "shortfall_t_per_yr" for v in self.columns], bool)
        for n in self.tree.path(leaf):
            js = self.owned[n]
            cj = self.models[n].lp.c[js]
            keep = cj != 0
            if short is not None:
                keep &= short[js]
            cols.append(self.node_cols[n][js[keep]])
            costs.append(cj[keep])
        return np.concatenate(cols), np.concatenate(costs)


def _differ(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Numbers that differ beyond REL_TOL (infinities equal to themselves)."""
    with np.errstate(invalid="ignore"):  # inf - inf: equal infinities are caught by a == b
        same = (a == b) | (np.abs(a - b) <= REL_TOL * np.maximum(1.0, np.maximum(np.abs(a), np.abs(b))))
    return ~same


def _changed(a, node: str, element: str, period: str, before: float, after: float) -> None:
    _Assembler.changed(a, node, element, period, before, after)


def shares_structure(models: dict[str, NodeModel]) -> bool:
    """Every node is the same model with its own numbers (model.runs.tree: one kept model)."""
    first = next(iter(models.values()))
    return all(m.col_keys is first.col_keys and m.lp.A is first.lp.A for m in models.values())


def extensive_form(tree: Tree, models: dict[str, NodeModel], cvar_weight: float = 0.0, cvar_alpha: float = 0.9,
                   penalty_only: bool = False, file: str = "", leaves: bool = True) -> ExtensiveLP:
    """Assemble the extensive form (InputError when a branch's scenario changes an
    earlier period). leaves=False: only the nodes before the last reveals, with every
    node's column map (the master of a decomposition; every node is still checked).
    Nodes that are one model with their own numbers are assembled with arrays
    (_SharedAssembler), others column by column."""
    if cvar_weight > 0 and not leaves:
        raise ValueError("a CVaR term needs the leaves")
    a = _SharedAssembler(tree, models, leaves) if shares_structure(models) else _Assembler(tree, models, leaves)
    a.assemble()
    if a.problems:
        for p in a.problems:
            p.file = file
        raise InputError(a.problems)
    rows = a.rows
    leaf_names = tree.leaves()
    offset = sum(tree.probability(leaf) * models[leaf].lp.offset for leaf in leaf_names)
    c = np.asarray(a.c, float)
    lo, hi = list(a.lo), list(a.hi)
    leaves = leaf_names
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
    A = a.matrix(n)
    return ExtensiveLP(c, offset, A, np.asarray(rows["lo"], float), np.asarray(rows["hi"], float),
                       np.asarray(lo, float), np.asarray(hi, float), a.owner, a.keys, a.node_cols, cvar,
                       a.row_index(), with_leaves=a.with_leaves)

