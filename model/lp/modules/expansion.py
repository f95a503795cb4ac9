"""Capacity expansion: investable options, builds with lead time and lifetime, capex as
annuities inside the horizon, fixed O&M, and the activity of the new capacity.

Timing. A build decided in period t (only periods starting at or after the option's
earliest_year) comes online in the first period t' whose start is at or after
start_t + lead_time_yr; its online year is start_t'. It serves every period starting
before online year + lifetime_yr (a period that starts inside the lifetime counts whole).
Builds that could never come online inside the horizon are not variables at all
(validation rejects an option with no such build).

Money. Capex is paid as an annuity: capex x CRF(r, lifetime) per year, with
CRF = r / (1 - (1 + r)^-lifetime) (1 / lifetime when r = 0), r being the option's
discount_rate or else the case's. Annuity and fixed O&M are charged in every in-service
period inside the horizon (weighted like any annual cost); payments after the horizon
fall outside the model, as do the capacity's services there.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyomo.core as pyo
from pyomo.core.expr.numeric_expr import LinearExpression

from model.case.derived import build_schedule
from model.lp.core import RESOURCE, ActivityTerm, BalanceTerm, CostTerm, Registry, Solution, keyed
from model.lp.origin import activity_nodes, split_modes
from model.lp.sensitivity import limit_values

def capital_recovery_factor(rate, lifetime_yr) -> np.ndarray:
    """CRF(r, n) = r / (1 - (1 + r)^-n), and 1 / n where r = 0 (element-wise)."""
    r = np.asarray(rate, float)
    n = np.asarray(lifetime_yr, float)
    safe = np.where(r > 0, r, 1.0)
    return np.where(r > 0, safe / (1.0 - (1.0 + safe) ** -n), 1.0 / n)


def option_table(data) -> pd.DataFrame:
    """Options with their annuity per t/yr (discount_rate blank takes the case's)."""
    opts = data.tables["expansion"].copy()
    rate = opts["discount_rate"].fillna(float(data.settings.get("discount_rate") or 0.0))
    opts["rate"] = rate.astype(float)
    opts["annuity_usd_per_t_per_yr"] = opts["capex_usd_per_t_per_yr"].astype(float) * \
        capital_recovery_factor(opts["rate"], opts["lifetime_yr"])
    opts["fixed_om_usd_per_t_per_yr"] = opts["fixed_om_usd_per_t_per_yr"].fillna(0.0).astype(float)
    opts["unit_cost_usd_per_t"] = opts["unit_cost_usd_per_t"].fillna(0.0).astype(float)
    return opts.set_index("option", drop=False)


class Expansion:
    """Sets BUILDS (option, build period), EXPANSION_PERIODS (option, period where some
    build can be in service) and NEW_ACTIVITIES (option, period, mode: '' unless an
    extraterritorial control splits the process into clean and tainted runs, as for
    facilities); variables build_t_per_yr and new_activity_t_per_yr; constraints
    expansion_capacity_limit and max_build."""

    name = "expansion"

    def declare(self, m: pyo.ConcreteModel, data, reg: Registry) -> None:
        opts = option_table(data)
        sched = build_schedule(opts, data.periods.reset_index())
        self.opts, self.sched = opts, sched
        builds = sched[["option", "build_period"]].drop_duplicates().reset_index(drop=True)
        periods = sched[["option", "period"]].drop_duplicates().reset_index(drop=True)
        acts = periods.join(opts[["country", "process", "unit_cost_usd_per_t"]], on="option")
        acts = split_modes(acts, data.recipes, data.origin)
        self.builds, self.periods, self.acts = builds, periods, acts

        m.BUILDS = pyo.Set(initialize=keyed(builds, ["option", "build_period"]), dimen=2, ordered=True)
        m.EXPANSION_PERIODS = pyo.Set(initialize=keyed(periods, ["option", "period"]), dimen=2, ordered=True)
        m.NEW_ACTIVITIES = pyo.Set(initialize=keyed(acts, ["option", "period", "mode"]), dimen=3, ordered=True)
        m.build_t_per_yr = pyo.Var(m.BUILDS, within=pyo.NonNegativeReals)
        m.new_activity_t_per_yr = pyo.Var(m.NEW_ACTIVITIES, within=pyo.NonNegativeReals)
        self.build_vars = list(m.build_t_per_yr.values())
        self.act_vars = list(m.new_activity_t_per_yr.values())

        # The new capacity runs its process like a facility: recipe lines (into origin-class
        # nodes where a control tracks classes) and running cost.
        reg.activities.append(ActivityTerm(
            "expansion", acts[["option", "country", "process", "period", "mode"]].rename(columns={"option": "unit"}),
            self.act_vars))
        j = activity_nodes(acts, data.recipes, data.origin)
        reg.add_balance(BalanceTerm("expansion", list(zip(j["country"], j["node_product"], j["period"])),
                                    j["coefficient"].to_numpy(float), [self.act_vars[i] for i in j["index"]]))
        reg.add_cost(CostTerm("running", RESOURCE, acts["period"].tolist(),
                              acts["unit_cost_usd_per_t"].to_numpy(float), self.act_vars))

        # One cost entry per (build, in-service period): a build pays in every period it serves.
        b_pos = {k: i for i, k in enumerate(keyed(builds, ["option", "build_period"]))}
        s_vars = [self.build_vars[b_pos[k]] for k in keyed(sched, ["option", "build_period"])]
        s_opt = opts.loc[sched["option"]]
        reg.add_cost(CostTerm("capex", RESOURCE, list(sched["period"]),
                              s_opt["annuity_usd_per_t_per_yr"].to_numpy(float), s_vars))
        reg.add_cost(CostTerm("fixed_om", RESOURCE, list(sched["period"]),
                              s_opt["fixed_om_usd_per_t_per_yr"].to_numpy(float), s_vars))

        online: dict[tuple, list] = {}
        for k, v in zip(keyed(sched, ["option", "period"]), s_vars):
            online.setdefault(k, []).append(v)
        running: dict[tuple, list] = {}
        for k, v in zip(keyed(acts, ["option", "period"]), self.act_vars):
            running.setdefault(k, []).append(v)

        def expansion_capacity_limit(m, o, t):
            """sum_mode new_activity[o,t,mode] - sum_{b: built in b, in service in t}
            build[o,b] <= 0."""
            xs, bs = running[o, t], online[o, t]
            return LinearExpression(constant=0.0, linear_coefs=[1.0] * len(xs) + [-1.0] * len(bs),
                                    linear_vars=xs + bs) <= 0.0
        m.expansion_capacity_limit = pyo.Constraint(m.EXPANSION_PERIODS, rule=expansion_capacity_limit)
        self.cap_cons = list(m.expansion_capacity_limit.values())

        by_opt: dict[str, list] = {}
        for o, v in zip(builds["option"], self.build_vars):
            by_opt.setdefault(o, []).append(v)
        self.opt_keys = list(by_opt)
        m.EXPANSION_OPTIONS = pyo.Set(initialize=self.opt_keys, ordered=True)
        limit = opts["max_build_t_per_yr"].astype(float).to_dict()

        def max_build(m, o):
            """sum_b build[o,b] <= max_build[o] (t/yr over the horizon)."""
            vs = by_opt[o]
            return LinearExpression(constant=0.0, linear_coefs=[1.0] * len(vs), linear_vars=vs) <= limit[o]
        m.max_build = pyo.Constraint(m.EXPANSION_OPTIONS, rule=max_build)
        self.max_cons = list(m.max_build.values())

    def extract(self, sol: Solution, data) -> dict[str, pd.DataFrame]:
        per = data.periods
        opts, sched = self.opts, self.sched
        built = self.builds.copy()
        built["build_t_per_yr"] = sol.values(self.build_vars)
        s = sched.merge(built, on=["option", "build_period"])

        # Per (option, period): capacity online, activity (all modes), its value.
        cap = self.periods.join(opts[["country", "process", "unit_cost_usd_per_t"]], on="option")
        key = ["option", "period"]
        act = self.acts[key].assign(a=sol.values(self.act_vars)).groupby(key)["a"].sum()
        idx = cap.set_index(key).index
        cap["capacity_online_t_per_yr"] = idx.map(s.groupby(key)["build_t_per_yr"].sum()).to_numpy(float)
        cap["activity_t_per_yr"] = idx.map(act).to_numpy(float)
        online = cap["capacity_online_t_per_yr"]
        cap["utilisation"] = np.where(online > 1e-9, cap["activity_t_per_yr"] / online.where(online > 1e-9, 1.0), 0.0)
        cap["activity_t"] = cap["activity_t_per_yr"] * cap["period"].map(per["duration_yr"]).to_numpy(float)
        cap["running_cost_usd"] = cap["activity_t"] * cap["unit_cost_usd_per_t"]
        # What one more t/yr in service in t saves, USD per t/yr-year (model.lp.sensitivity);
        # dual: the same in present value.
        wt = cap["period"].map(per["weight"]).to_numpy(float)
        cap["capacity_value_usd_per_t_per_yr"], _ = limit_values(sol, self.cap_cons, wt)
        dual = cap["capacity_value_usd_per_t_per_yr"].to_numpy(float) * wt

        # Per build: service periods, money, and the value of its capacity over its service.
        s = s.assign(w=s["period"].map(per["weight"]).to_numpy(float),
                     d=s["period"].map(per["duration_yr"]).to_numpy(float))
        s = s.merge(cap[key].assign(dual=dual), on=key)
        g = s.groupby(["option", "build_period"], sort=False).agg(
            in_service_periods=("period", ",".join), service_yr=("d", "sum"), w=("w", "sum"),
            dual=("dual", "sum"), online_period=("online_period", "first"),
            online_year=("online_year", "first"))
        b = built.join(g, on=["option", "build_period"]).join(
            opts[["country", "process", "capex_usd_per_t_per_yr", "annuity_usd_per_t_per_yr",
                  "fixed_om_usd_per_t_per_yr", "lifetime_yr", "lead_time_yr", "rate"]], on="option")
        b = b.rename(columns={"rate": "discount_rate"})
        x = b["build_t_per_yr"]
        b["annuity_usd_per_yr"] = x * b["annuity_usd_per_t_per_yr"]
        b["capex_usd"] = x * b["capex_usd_per_t_per_yr"]
        b["annuities_in_horizon_usd"] = b["annuity_usd_per_yr"] * b["service_yr"]
        b["fixed_om_in_horizon_usd"] = x * b["fixed_om_usd_per_t_per_yr"] * b["service_yr"]
        # Equivalent annual value of one more t/yr of this build: PV of the capacity duals
        # over its service / PV of its service years. It equals annuity + fixed O&M for a
        # build the LP chooses while max_build is slack.
        b["capacity_value_usd_per_t_per_yr"] = b["dual"] / b["w"]
        b["max_build_value_pv_usd_per_t_per_yr"] = b["option"].map(
            dict(zip(self.opt_keys, limit_values(sol, self.max_cons, np.ones(len(self.max_cons)))[0])))
        cols = ["option", "country", "process", "build_period", "build_t_per_yr", "online_period",
                "online_year", "in_service_periods", "lead_time_yr", "lifetime_yr", "discount_rate",
                "capex_usd_per_t_per_yr", "annuity_usd_per_t_per_yr", "annuity_usd_per_yr", "capex_usd",
                "annuities_in_horizon_usd", "fixed_om_in_horizon_usd", "capacity_value_usd_per_t_per_yr",
                "max_build_value_pv_usd_per_t_per_yr"]
        cap_cols = ["option", "country", "process", "period", "capacity_online_t_per_yr", "activity_t_per_yr",
                    "activity_t", "utilisation", "unit_cost_usd_per_t", "running_cost_usd",
                    "capacity_value_usd_per_t_per_yr"]
        return {"builds": b.loc[x > 1e-9, cols].reset_index(drop=True), "expansion_capacity": cap[cap_cols]}
