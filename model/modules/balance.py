"""The product balance at every node, and model prices from its duals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyomo.environ as pyo
from pyomo.core.expr.numeric_expr import LinearExpression

from model.core import Registry, Solution
from model.origin import split_labels


class Balance:
    """Set NODES (country, product, period); constraint product_balance."""

    name = "balance"

    def declare(self, m: pyo.ConcreteModel, data, reg: Registry) -> None:
        coefs: dict = {}
        vars_: dict = {}
        for term in reg.balance:
            for node, c, v in zip(term.nodes, term.coefs, term.vars):
                if node in coefs:
                    coefs[node].append(float(c))
                    vars_[node].append(v)
                else:
                    coefs[node] = [float(c)]
                    vars_[node] = [v]
        nodes = reg.nodes()
        rhs = reg.demand_t_per_yr
        self.keys = pd.DataFrame(nodes, columns=["country", "product", "period"])
        m.NODES = pyo.Set(initialize=nodes, dimen=3, ordered=True)

        def product_balance(m, c, p, t):
            """production + imports - exports - disposal + shortfall (+ releases - buys)
            == demand, at rates in t/yr."""
            node = (c, p, t)
            return LinearExpression(constant=0.0, linear_coefs=coefs.get(node, []),
                                    linear_vars=vars_.get(node, [])) == rhs.get(node, 0.0)
        m.product_balance = pyo.Constraint(m.NODES, rule=product_balance)
        self.cons = list(m.product_balance.values())

    def extract(self, sol: Solution, data, tables: dict[str, pd.DataFrame], tol: float) -> dict[str, pd.DataFrame]:
        out = self.keys.copy()
        out["product"], out["origin_class"] = split_labels(out["product"])
        w = out["period"].map(data.periods["weight"]).to_numpy()
        out["price_usd_per_t"] = sol.duals(self.cons) / w
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
