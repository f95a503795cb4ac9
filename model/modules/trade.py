"""Trade lanes: flows between countries, freight cost and lane capacity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from model.core import RESOURCE, BalanceTerm, CostTerm, FlowTerm, Registry, Solution, keyed


class Trade:
    """Set LANE_PERIODS (from, to, product, period) built from allowed lanes only;
    variable flow_t_per_yr bounded by the lane's max_flow_t_per_yr."""

    name = "trade"

    def declare(self, m: pyo.ConcreteModel, data, reg: Registry) -> None:
        lanes = data.lanes.merge(pd.DataFrame({"period": data.period_list}), how="cross")
        self.lanes = lanes
        keys = keyed(lanes, ["from_country", "to_country", "product", "period"])
        cap = lanes["max_flow_t_per_yr"].to_numpy(float)
        bounds = {k: (0.0, None if np.isnan(c) else float(c)) for k, c in zip(keys, cap)}
        m.LANE_PERIODS = pyo.Set(initialize=keys, dimen=4, ordered=True)
        m.flow_t_per_yr = pyo.Var(m.LANE_PERIODS, within=pyo.NonNegativeReals,
                                  bounds=lambda m, *k: bounds[k])
        self.vars = list(m.flow_t_per_yr.values())
        reg.flows.append(FlowTerm("trade", lanes[["from_country", "to_country", "product", "period"]], self.vars))
        n = len(keys)
        reg.add_balance(BalanceTerm(
            "trade",
            list(zip(lanes["from_country"], lanes["product"], lanes["period"]))
            + list(zip(lanes["to_country"], lanes["product"], lanes["period"])),
            np.concatenate([-np.ones(n), np.ones(n)]), self.vars + self.vars))
        reg.add_cost(CostTerm("transport", RESOURCE, list(lanes["period"]),
                              lanes["cost_usd_per_t"].to_numpy(float), self.vars))

    def extract(self, sol: Solution, data) -> dict[str, pd.DataFrame]:
        flows = self.lanes.copy()
        flows["flow_t_per_yr"] = sol.values(self.vars)
        flows["flow_t"] = flows["flow_t_per_yr"] * flows["period"].map(data.periods["duration_yr"]).to_numpy()
        flows["transport_cost_usd"] = flows["flow_t"] * flows["cost_usd_per_t"]
        # A lane at its limit has a negative reduced cost: that is its capacity value.
        flows = flows[flows["flow_t_per_yr"] > 1e-9].reset_index(drop=True)
        return {"flows": flows}
