"""Calibration terms (positive mathematical programming in LP form).

For a facility f with observed output X_f and calibration terms (b_f below, a_f above
the observed output; see model/analysis/calibration.py for how they are derived), running cost
rises in two steps: activity up to X_f costs b_f more per t, activity beyond X_f costs
a_f more. The activity counted is that of f and of the tranches `calibrated_as` f
(G_f: new capacity of the same industry is on the same cost curve). Linear form, for
every period t where a member of G_f runs:

    excess_t_per_yr[f,t] >= sum_{g in G_f, k} activity[g,k,t] - X_f     (calibration_excess)
    cost += b_f x sum_{g,k} activity[g,k,t] + (a_f - b_f) x excess[f,t]

With a_f >= b_f the solver sets excess = max(0, activity - X_f). The terms are their
own cost category (`calibration`): they steer the plan but are not resource cost.
"""

from __future__ import annotations

import pandas as pd
import pyomo.core as pyo
from pyomo.core.expr.numeric_expr import LinearExpression

from model.lp.core import CALIBRATION, CostTerm, Registry, Solution


def calibration_group(units: pd.Series, facilities: pd.DataFrame) -> pd.Series:
    """The facility whose calibration terms each unit's activity counts against: the one
    it is `calibrated_as`, else itself (units that are not facilities stay as they are)."""
    parent = facilities["calibrated_as"].fillna("") if "calibrated_as" in facilities else pd.Series(dtype=str)
    parent = parent[parent != ""]
    out = units.astype(object).copy()
    hit = units.isin(parent.index).to_numpy()
    out[hit] = units[hit].map(parent).to_numpy()
    return out


class Calibration:
    """Set CALIBRATED (facility, period); variable calibration_excess_t_per_yr;
    constraint calibration_excess."""

    name = "calibration"

    def declare(self, m: pyo.ConcreteModel, data, reg: Registry) -> None:
        cal = data.tables["calibration"]
        self.keys = pd.DataFrame(columns=["facility", "period"])
        self.vars: list = []
        if cal.empty:
            return
        cal = cal.set_index("facility")
        acts, avars = reg.activity_table()
        acts = acts.assign(group=calibration_group(acts["unit"], data.facilities))
        mine = acts[acts["group"].isin(cal.index)]
        if mine.empty:
            return
        groups = mine.groupby(["group", "period"], sort=False).indices
        keys = list(groups)
        self.keys = pd.DataFrame(keys, columns=["facility", "period"])
        m.CALIBRATED = pyo.Set(initialize=keys, dimen=2, ordered=True)
        m.calibration_excess_t_per_yr = pyo.Var(m.CALIBRATED, within=pyo.NonNegativeReals)
        self.vars = list(m.calibration_excess_t_per_yr.values())
        pos = mine.index.to_numpy()
        members = {k: [avars[pos[i]] for i in idx] for k, idx in groups.items()}
        observed = cal["observed_output_t_per_yr"].to_dict()

        def calibration_excess(m, f, t):
            """excess[f,t] - sum_k activity[f,k,t] >= -X_f."""
            vs = members[f, t]
            return LinearExpression(constant=0.0, linear_coefs=[1.0] + [-1.0] * len(vs),
                                    linear_vars=[m.calibration_excess_t_per_yr[f, t]] + vs) >= -observed[f]
        m.calibration_excess = pyo.Constraint(m.CALIBRATED, rule=calibration_excess)

        below = mine["group"].map(cal["below_observed_usd_per_t"]).to_numpy(float)
        reg.add_cost(CostTerm("calibration_below_observed", CALIBRATION, list(mine["period"]), below,
                              [avars[i] for i in pos]))
        step = (self.keys["facility"].map(cal["above_observed_usd_per_t"])
                - self.keys["facility"].map(cal["below_observed_usd_per_t"])).to_numpy(float)
        reg.add_cost(CostTerm("calibration_above_observed", CALIBRATION, self.keys["period"].tolist(),
                              step, self.vars))

    def extract(self, sol: Solution, data) -> dict[str, pd.DataFrame]:
        if not self.vars:
            return {}
        out = self.keys.copy()
        out["above_observed_t_per_yr"] = sol.values(self.vars)
        return {"calibration_excess": out}
