"""Facilities running processes: activity, shared capacity, recipes, running cost."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyomo.core as pyo
from pyomo.core.expr.numeric_expr import LinearExpression

from model.lp.core import RESOURCE, ActivityTerm, BalanceTerm, CostTerm, Registry, Solution, keyed
from model.lp.origin import activity_nodes
from model.lp.sensitivity import limit_values


class Production:
    """Sets ACTIVITIES (facility, process, period, mode) and FACILITY_PERIODS; variable
    activity_t_per_yr; constraint capacity_limit. `mode` is '' except where an
    extraterritorial control makes a process run clean or tainted (model.lp.origin)."""

    name = "production"

    def declare(self, m: pyo.ConcreteModel, data, reg: Registry) -> None:
        acts = data.activities
        self.acts = acts
        m.ACTIVITIES = pyo.Set(initialize=keyed(acts, ["facility", "process", "period", "mode"]),
                               dimen=4, ordered=True)
        m.activity_t_per_yr = pyo.Var(m.ACTIVITIES, within=pyo.NonNegativeReals)
        self.vars = list(m.activity_t_per_yr.values())
        reg.activities.append(ActivityTerm("production", acts[["facility", "country", "process", "period", "mode"]]
                                           .rename(columns={"facility": "unit"}), self.vars))

        # Every recipe line of every activity enters the balance of its country's node
        # (its origin-class node where a control tracks the product).
        j = activity_nodes(acts, data.recipes, data.origin)
        reg.add_balance(BalanceTerm("production", list(zip(j["country"], j["node_product"], j["period"])),
                                    j["coefficient"].to_numpy(float),
                                    [self.vars[i] for i in j["index"]]))
        reg.add_cost(CostTerm("running", RESOURCE, acts["period"].tolist(),
                              acts["unit_cost_usd_per_t"].to_numpy(float), self.vars))

        groups = acts.groupby(["facility", "period"], sort=False).indices
        self.fp_keys = list(groups)
        self.fp_cap = acts.groupby(["facility", "period"], sort=False)["capacity_t_per_yr"].first()
        members = {k: [self.vars[i] for i in idx] for k, idx in groups.items()}
        cap = self.fp_cap.to_dict()
        m.FACILITY_PERIODS = pyo.Set(initialize=self.fp_keys, dimen=2, ordered=True)

        def capacity_limit(m, f, t):
            """sum_k activity[f,k,t] <= capacity[f]: processes share one capacity."""
            vs = members[f, t]
            return LinearExpression(constant=0.0, linear_coefs=[1.0] * len(vs), linear_vars=vs) <= cap[f, t]
        m.capacity_limit = pyo.Constraint(m.FACILITY_PERIODS, rule=capacity_limit)
        self.cons = list(m.capacity_limit.values())

    def extract(self, sol: Solution, data) -> dict[str, pd.DataFrame]:
        per = data.periods
        acts = self.acts
        x = sol.values(self.vars)
        prod = acts[["facility", "country", "process", "period", "mode", "unit_cost_usd_per_t",
                     "capacity_t_per_yr"]].copy()
        prod["activity_t_per_yr"] = x
        dur = prod["period"].map(per["duration_yr"]).to_numpy()
        prod["activity_t"] = x * dur
        used = prod.groupby(["facility", "period"])["activity_t_per_yr"].transform("sum")
        prod["facility_utilisation"] = np.where(prod["capacity_t_per_yr"] > 0,
                                                used / prod["capacity_t_per_yr"], 0.0)
        prod["running_cost_usd"] = prod["activity_t"] * prod["unit_cost_usd_per_t"]

        keys = pd.DataFrame(self.fp_keys, columns=["facility", "period"])
        cap = keys.merge(data.facilities[["country"]], left_on="facility", right_index=True)
        cap["capacity_t_per_yr"] = self.fp_cap.to_numpy()
        cap["used_t_per_yr"] = cap.set_index(["facility", "period"]).index.map(
            prod.groupby(["facility", "period"])["activity_t_per_yr"].sum()).to_numpy()
        cap["utilisation"] = np.where(cap["capacity_t_per_yr"] > 0,
                                      cap["used_t_per_yr"] / cap["capacity_t_per_yr"], 0.0)
        # What one more (one less) t/yr of capacity saves (costs), per t/yr-year, measured
        # by moving the limit (model.lp.sensitivity), so it does not depend on the vertex.
        w = cap["period"].map(per["weight"]).to_numpy()
        more, less = limit_values(sol, self.cons, w)
        cap["capacity_value_usd_per_t_per_yr"] = more
        cap["capacity_value_one_less_usd_per_t_per_yr"] = less
        return {"production": prod, "capacity_values": cap}
