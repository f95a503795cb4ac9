"""Trade lanes: flows between countries, freight cost and lane capacity; export bans
remove the flows they forbid (by origin class where one is tracked)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from model.core import RESOURCE, BalanceTerm, CostTerm, FlowTerm, Registry, Solution
from model.origin import controlled_mask, label


def all_lane_periods(data) -> pd.DataFrame:
    """Every (lane, class, period) row before bans."""
    return data.lanes.merge(pd.DataFrame({"period": data.period_list}), how="cross")


def lane_periods(data) -> pd.DataFrame:
    """Allowed (lane, class, period) rows: lanes x periods less what a ban forbids."""
    flows = all_lane_periods(data)
    banned = np.zeros(len(flows), dtype=bool)
    for ctrl in data.origin.controls:
        if ctrl.kind == "ban":
            banned |= controlled_mask(flows, ctrl)
    return flows[~banned].reset_index(drop=True)


class Trade:
    """Variable flow_t_per_yr[i]: the flow on row i of the lane-period table `self.lanes`
    (from, to, product, origin class, period), built from allowed lanes only and bounded
    by the lane's max_flow_t_per_yr. A lane's capacity bounds each origin class's flow
    separately. The flows are indexed by row number rather than by a Pyomo Set of
    5-tuples: at 600 k flows the tuple Set alone cost about 1.5 s to build."""

    name = "trade"

    def declare(self, m: pyo.ConcreteModel, data, reg: Registry) -> None:
        lanes = lane_periods(data)
        self.lanes = lanes
        n = len(lanes)
        m.flow_t_per_yr = pyo.Var(range(n), within=pyo.NonNegativeReals)
        self.vars = list(m.flow_t_per_yr.values())
        cap = lanes["max_flow_t_per_yr"].to_numpy(float)
        for i in np.flatnonzero(~np.isnan(cap)):  # few lanes have a capacity
            self.vars[i].setub(float(cap[i]))
        reg.flows.append(FlowTerm("trade", lanes[["from_country", "to_country", "product", "cls", "period"]],
                                  self.vars))
        node = [label(p, c) for p, c in zip(lanes["product"].tolist(), lanes["cls"].tolist())]
        reg.add_balance(BalanceTerm(
            "trade",
            list(zip(lanes["from_country"].tolist(), node, lanes["period"].tolist()))
            + list(zip(lanes["to_country"].tolist(), node, lanes["period"].tolist())),
            np.concatenate([-np.ones(n), np.ones(n)]), self.vars + self.vars))
        reg.add_cost(CostTerm("transport", RESOURCE, lanes["period"].tolist(),
                              lanes["cost_usd_per_t"].to_numpy(float), self.vars))

    def extract(self, sol: Solution, data) -> dict[str, pd.DataFrame]:
        flows = self.lanes.rename(columns={"cls": "origin_class"})
        flows["flow_t_per_yr"] = sol.values(self.vars)
        flows["flow_t"] = flows["flow_t_per_yr"] * flows["period"].map(data.periods["duration_yr"]).to_numpy()
        flows["transport_cost_usd"] = flows["flow_t"] * flows["cost_usd_per_t"]
        return {"flows": flows[flows["flow_t_per_yr"] > 1e-9].reset_index(drop=True)}
