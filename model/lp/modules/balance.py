"""The product balance at every node, and model prices from its duals."""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd
import pyomo.core as pyo
import scipy.sparse as sp
from pyomo.core.base.matrix_constraint import MatrixConstraint, _MatrixConstraintData
from pyomo.core.expr.relational_expr import EqualityExpression, InequalityExpression, RangedExpression

from model.lp.columns import Columns
from model.lp.core import Registry, Solution
from model.lp.origin import split_labels


class _BalanceRow(_MatrixConstraintData):
    """A row of BalanceRows, with the bounded expression Pyomo's writers and solver
    interfaces ask a constraint for (Pyomo 6.10's MatrixConstraint rows lack it)."""

    __slots__ = ()

    def to_bounded_expression(self, evaluate_bounds: bool = False):
        return self.lower, self.body, self.upper

    @property
    def expr(self):
        lo, body, up = self.to_bounded_expression()
        if lo is not None and up is not None:
            return EqualityExpression((body, up)) if lo == up else RangedExpression((lo, body, up), (False, False))
        return InequalityExpression((body, up), False) if lo is None else InequalityExpression((lo, body), False)


class BalanceRows(MatrixConstraint):
    """lb <= A x <= ub as Pyomo's MatrixConstraint holds it (CSR arrays, read as they are
    by the hand-off), with x a Columns sequence (MatrixConstraint copies x into a tuple,
    which would make every trade flow's VarData) and rows that Pyomo's LP writer and
    solver interfaces can read (`model.write("case.lp")`)."""

    def __init__(self, A_data, A_indices, A_indptr, lb, ub, x: Columns) -> None:
        super().__init__(A_data, A_indices, A_indptr, lb, ub, ())
        self._x = x

    def construct(self, data=None) -> None:
        if self._constructed:
            return
        self._constructed = True
        ref = weakref.ref(self)
        self._data = tuple(_BalanceRow(i, ref) for i in range(len(self._lower)))

    # Pyomo's block iteration passes a sort flag, which Mapping's methods do not take
    def keys(self, sort=None):
        return iter(range(len(self._data)))

    def values(self, sort=None):
        return iter(self._data)

    def items(self, sort=None):
        return enumerate(self._data)


class Balance:
    """Set NODES (country, product, period); constraint product_balance, one row per
    node in the order of NODES.

    product_balance is a Pyomo MatrixConstraint assembled in bulk from every registered
    BalanceTerm (rows = nodes, columns = variables), which skips Pyomo's expression
    system: at 600 k columns that is seconds faster than one expression per node.
    """

    name = "balance"

    def declare(self, m: pyo.ConcreteModel, data, reg: Registry) -> None:
        nodes, rows = reg.node_index()
        coefs = np.concatenate([np.asarray(t.coefs, float) for t in reg.balance]) if reg.balance else np.zeros(0)
        # One local column per term entry (a variable in two terms appears twice): the
        # hand-off maps local columns to the model's and sums duplicates, which is
        # cheaper than de-duplicating a million entries here.
        x = Columns.join(term.vars for term in reg.balance)
        cols = np.arange(len(x), dtype=np.int64)
        A = sp.csr_array((coefs, (rows, cols)), shape=(len(nodes), len(x)))
        A.sum_duplicates()
        rhs = reg.rhs_t_per_yr(nodes)
        self.keys = pd.DataFrame(nodes, columns=["country", "product", "period"])
        m.NODES = pyo.Set(initialize=nodes, dimen=3, ordered=True)
        # product_balance[i] is the balance of the i-th node of NODES:
        # production + imports - exports - disposal + shortfall (+ releases - buys ...)
        # == demand - exogenous supply (scrap arising), at rates in t/yr.
        # The matrix stays in numpy arrays (Pyomo indexes them as it would lists): as
        # Python lists its 1.2 M entries took about 85 MB at 600 k columns.
        m.product_balance = BalanceRows(A.data, A.indices.astype(np.int64), A.indptr.astype(np.int64),
                                        rhs, list(rhs), x)
        self.cons = [m.product_balance[i] for i in range(len(nodes))]
        reg.node_rows.update(zip(nodes, self.cons))
        reg.release_balance()

    def extract(self, sol: Solution, data, tables: dict[str, pd.DataFrame], tol: float) -> dict[str, pd.DataFrame]:
        out = self.keys.copy()
        out["product"], out["origin_class"] = split_labels(out["product"])
        w = out["period"].map(data.periods["weight"]).to_numpy()
        out["price_usd_per_t"] = sol.duals(self.cons) / w
        # False where another price at this node is as valid (nobody makes the product
        # there, parallel lanes): then it is one valid marginal value, not the only one.
        out["price_unique"] = sol.duals_unique(self.cons) if hasattr(sol, "duals_unique") else True
        out["tag"] = tag_prices(out, tables.get("demand"), tables.get("disposal"), tol)
        return {"prices": out}


def tag_prices(prices: pd.DataFrame, demand: pd.DataFrame | None, disposal: pd.DataFrame | None,
               tol: float) -> np.ndarray:
    """'penalty' where some demand at the node is rationed and the price reaches its
    penalty; 'disposal' where surplus is disposed of; else 'cost'."""
    key = ["country", "product", "origin_class", "period"]
    if demand is not None:
        demand = demand.assign(origin_class="")
    tag = np.full(len(prices), "cost", dtype=object)
    if disposal is not None and not disposal.empty:
        disp = prices[key].merge(disposal[key].drop_duplicates().assign(_d=True), on=key, how="left")
        tag[disp["_d"].fillna(False).to_numpy(bool)] = "disposal"
    if demand is not None and not demand.empty:
        short = demand[demand["unserved_t_per_yr"] > 1e-9]
        floor = short.groupby(key)["shortfall_penalty_usd_per_t"].min().rename("_p").reset_index()
        pen = prices[key + ["price_usd_per_t"]].merge(floor, on=key, how="left")
        hit = pen["_p"].notna() & (pen["price_usd_per_t"] >= pen["_p"] - tol - 1e-9 * pen["_p"].abs())
        tag[hit.to_numpy(bool)] = "penalty"
    return tag
