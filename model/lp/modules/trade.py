"""Trade lanes: flows between countries, freight cost and lane capacity; export bans
remove the flows they forbid (by origin class where one is tracked)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyomo.core as pyo
from pyomo.core.expr.numeric_expr import LinearExpression

from model.lp.columns import Columns, column_block
from model.lp.core import RESOURCE, BalanceTerm, CostTerm, FlowTerm, Registry, Solution
from model.lp.origin import controlled_mask, labels


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
    (from, to, product, origin class, period), built from allowed lanes only. A lane's
    max_flow_t_per_yr bounds an unclassed flow directly; where a product carries origin
    classes the classes share it (constraint lane_capacity: sum over classes <= cap).
    The flows are indexed by row number rather than by a Pyomo Set of 5-tuples (at
    600 k flows the tuple Set alone cost about 1.5 s to build), and are a column block
    (model.lp.columns): `self.vars` is a Columns run, a flow's VarData made only when
    something names it."""

    name = "trade"

    def declare(self, m: pyo.ConcreteModel, data, reg: Registry) -> None:
        lanes = lane_periods(data)
        self.lanes = lanes
        n = len(lanes)
        # indexed by a RangeSet, which holds no members (a Set over range(n) held 35 MB at 600 k)
        m.FLOWS = pyo.RangeSet(0, n - 1)
        cap = lanes["max_flow_t_per_yr"].to_numpy(float)
        classed = (lanes["cls"] != "").to_numpy()
        # a column block (model.lp.columns): bounds in arrays, a flow's VarData made only
        # if something names it (most of 600 k flows are never a Python object)
        m.flow_t_per_yr = column_block(np.zeros(n), np.where(np.isnan(cap) | classed, np.inf, cap), m.FLOWS,
                                       doc="flow on a lane in a period, t/yr")
        self.vars = Columns.block(m.flow_t_per_yr)
        self._shared_capacity(m, lanes, cap, classed)
        reg.flows.append(FlowTerm("trade", lanes[["from_country", "to_country", "product", "cls", "period"]],
                                  self.vars))
        node = labels(lanes["product"], lanes["cls"])
        period = lanes["period"].to_numpy(object)
        reg.add_balance(BalanceTerm(
            "trade",
            pd.DataFrame({"country": np.concatenate([lanes["from_country"].to_numpy(object),
                                                     lanes["to_country"].to_numpy(object)]),
                          "product": np.concatenate([node, node]), "period": np.concatenate([period, period])}),
            np.concatenate([-np.ones(n), np.ones(n)]), self.vars + self.vars))
        reg.add_cost(CostTerm("transport", RESOURCE, lanes["period"].tolist(),
                              lanes["cost_usd_per_t"].to_numpy(float), self.vars))

    def _shared_capacity(self, m: pyo.ConcreteModel, lanes: pd.DataFrame, cap: np.ndarray,
                         classed: np.ndarray) -> None:
        sub = lanes[classed & ~np.isnan(cap)]
        groups = sub.groupby(["from_country", "to_country", "product", "period"], sort=False).indices
        keys = list(groups)
        members = [[self.vars[sub.index[i]] for i in idx] for idx in groups.values()]
        limit = [float(cap[sub.index[idx[0]]]) for idx in groups.values()]

        def lane_capacity(m, k):
            """sum over origin classes of flow[lane, class, t] <= max_flow_t_per_yr."""
            vs = members[k]
            return LinearExpression(constant=0.0, linear_coefs=[1.0] * len(vs), linear_vars=vs) <= limit[k]
        m.lane_capacity = pyo.Constraint(range(len(keys)), rule=lane_capacity)

    def extract(self, sol: Solution, data) -> dict[str, pd.DataFrame]:
        q = sol.values(self.vars)
        moving = q > 1e-9  # the table holds the flows that move (a few thousand of 600 k lanes)
        flows = self.lanes[moving].rename(columns={"cls": "origin_class"}).reset_index(drop=True)
        flows["flow_t_per_yr"] = q[moving]
        flows["flow_t"] = flows["flow_t_per_yr"] * flows["period"].map(data.periods["duration_yr"]).to_numpy()
        flows["transport_cost_usd"] = flows["flow_t"] * flows["cost_usd_per_t"]
        return {"flows": flows}
