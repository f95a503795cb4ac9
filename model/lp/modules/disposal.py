"""Disposal (or storage) of surplus co-products, so a glut never makes the model infeasible."""

from __future__ import annotations

import pandas as pd
import pyomo.core as pyo

from model.lp.core import RESOURCE, BalanceTerm, CostTerm, Registry, Solution
from model.lp.origin import split_labels


class Disposal:
    """Set DISPOSAL_NODES: every (country, product, period) where something can arrive;
    variable disposal_t_per_yr at the product's disposal cost."""

    name = "disposal"

    def declare(self, m: pyo.ConcreteModel, data, reg: Registry) -> None:
        order = {p: i for i, p in enumerate(data.period_list)}
        nodes = sorted(reg.supply_nodes(), key=lambda n: (n[0], n[1], order[n[2]]))
        self.keys = pd.DataFrame(nodes, columns=["country", "product", "period"])
        m.DISPOSAL_NODES = pyo.Set(initialize=nodes, dimen=3, ordered=True)
        m.disposal_t_per_yr = pyo.Var(m.DISPOSAL_NODES, within=pyo.NonNegativeReals)
        self.vars = list(m.disposal_t_per_yr.values())
        base, _ = split_labels(self.keys["product"])
        cost = base.map(data.products["disposal_cost_usd_per_t"]).to_numpy(float)
        self.cost = cost
        reg.add_balance(BalanceTerm("disposal", nodes, [-1.0] * len(nodes), self.vars))
        reg.add_cost(CostTerm("disposal", RESOURCE, self.keys["period"].tolist(), cost, self.vars))

    def extract(self, sol: Solution, data) -> dict[str, pd.DataFrame]:
        out = self.keys.copy()
        out["product"], out["origin_class"] = split_labels(out["product"])
        out["disposal_t_per_yr"] = sol.values(self.vars)
        out["disposal_t"] = out["disposal_t_per_yr"] * out["period"].map(data.periods["duration_yr"]).to_numpy()
        out["disposal_cost_usd_per_t"] = self.cost
        out["disposal_cost_usd"] = out["disposal_t"] * self.cost
        return {"disposal": out[out["disposal_t_per_yr"] > 1e-9].reset_index(drop=True)}
