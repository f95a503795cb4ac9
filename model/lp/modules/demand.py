"""Demand blocks by segment, and shortfall rationed by each segment's penalty."""

from __future__ import annotations

import pandas as pd
import pyomo.core as pyo

from model.lp.core import PENALTY, BalanceTerm, CostTerm, Registry, Solution, keyed


class Demand:
    """Set DEMANDS (country, product, segment, period); variable shortfall_t_per_yr in
    [0, demand]: unserved demand supplies the balance at the segment's penalty. A row an
    end-use control denies (data.demand `denied_by`) is a demand at the product's `other`
    origin class node, so only material not of the controller's origin can serve it."""

    name = "demand"

    def declare(self, m: pyo.ConcreteModel, data, reg: Registry) -> None:
        dem = data.demand
        self.demand = dem
        keys = keyed(dem, ["country", "product", "segment", "period"])
        qty = dict(zip(keys, dem["quantity_t_per_yr"].astype(float)))
        m.DEMANDS = pyo.Set(initialize=keys, dimen=4, ordered=True)
        m.shortfall_t_per_yr = pyo.Var(m.DEMANDS, within=pyo.NonNegativeReals,
                                       bounds=lambda m, *k: (0.0, qty[k]))
        self.vars = list(m.shortfall_t_per_yr.values())
        # A segment an end-use control denies draws from the product's `other` class node.
        nodes = list(zip(dem["country"], dem["node_product"], dem["period"]))
        for node, q in zip(nodes, dem["quantity_t_per_yr"]):
            reg.demand_t_per_yr[node] = reg.demand_t_per_yr.get(node, 0.0) + float(q)
        reg.add_balance(BalanceTerm("shortfall", nodes, [1.0] * len(nodes), self.vars))
        reg.add_cost(CostTerm("shortfall_penalty", PENALTY, dem["period"].tolist(),
                              dem["shortfall_penalty_usd_per_t"].to_numpy(float), self.vars))

    def extract(self, sol: Solution, data) -> dict[str, pd.DataFrame]:
        out = self.demand[["country", "product", "segment", "period", "quantity_t_per_yr",
                           "shortfall_penalty_usd_per_t"]].copy()
        out = out.rename(columns={"quantity_t_per_yr": "demand_t_per_yr"})
        out["unserved_t_per_yr"] = sol.values(self.vars)
        out["served_t_per_yr"] = out["demand_t_per_yr"] - out["unserved_t_per_yr"]
        out["unserved_share"] = out["unserved_t_per_yr"] / out["demand_t_per_yr"]
        out["unserved_t"] = out["unserved_t_per_yr"] * out["period"].map(data.periods["duration_yr"]).to_numpy()
        out["penalty_value_usd"] = out["unserved_t"] * out["shortfall_penalty_usd_per_t"]
        if (self.demand["denied_by"] != "").any():
            out["denied_by"] = self.demand["denied_by"].to_numpy()
        return {"demand": out}
