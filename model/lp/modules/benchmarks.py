"""Benchmarks: minimum shares of a bloc's consumption made inside the bloc, by stage (the
EU Critical Raw Materials Act's 10 % extraction, 40 % processing, 25 % recycling).

Measured in tonnes of rare-earth content (t REO, a product counted in t_REO holding
one tonne whatever its split; one element's content where a row names it), per
covered period, in t/yr:
    consumption of B = sum over B's members' demand rows of quantity x content of the product
    output of B at s = sum over activities of processes of stage s in B's members (existing
                       facilities and new capacity alike) of activity x the content of the
                       stage's final outputs per unit of activity
A stage's final outputs are the products its processes make that no process of the same
stage takes in: separation counts the oxides, not the heavy concentrate one separation
process passes to another (which would count that content twice). Consumption is the
demand the case states, not what is served: a shortfall must not make a benchmark easier.

    benchmark_share[b, t]:  output of B at s (+ gap[b, t]) >= min_share x consumption of B
The gap exists only where the row prices it (gap_penalty_usd_per_t, a penalty); without
it the benchmark must be met. What one more percentage point costs is measured by raising
the requirement by the point (1 % of consumption) and re-solving, and one more t/yr by
moving it one unit (model.lp.sensitivity), so neither depends on which dual solution
the solver returns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyomo.core as pyo
from pyomo.core.expr.numeric_expr import LinearExpression

from model.case.codes import expand
from model.lp.core import PENALTY, CostTerm, Registry, Solution
from model.lp.sensitivity import limit_values, tightening_cost


def content_per_t(products: pd.DataFrame, content: pd.DataFrame, element: str) -> pd.Series:
    """Product -> t of content per unit: `element`'s (model.case.derived), or every
    element's, where a product counted in t_REO holds one tonne of REO whatever its split
    (a concentrate whose split the recipes do not reveal still counts in full)."""
    if element:
        return content[element]
    total = content.sum(axis=1)
    reo = products["unit"].reindex(total.index) == "t_REO"
    return total.where(~reo, 1.0)


def stage_output_content(recipes: pd.DataFrame, processes: pd.DataFrame, per_t: pd.Series,
                         stage: str) -> pd.Series:
    """Process -> t of content in the stage's final outputs per unit of activity, for the
    processes of `stage` (per_t: content per unit of each product)."""
    procs = set(processes.loc[processes["stage"] == stage, "process"])
    lines = recipes[recipes["process"].isin(procs)]
    inner = set(lines.loc[lines["coefficient"] < 0, "product"])  # passed within the stage
    out = lines[(lines["coefficient"] > 0) & ~lines["product"].isin(inner)]
    k = out["coefficient"].to_numpy(float) * out["product"].map(per_t).fillna(0.0).to_numpy(float)
    return pd.Series(k, index=out["process"].to_numpy()).groupby(level=0).sum()


def consumption_content(demand: pd.DataFrame, members: list[str], per_t: pd.Series) -> pd.Series:
    """Period -> the members' stated final demand in t/yr of content."""
    dem = demand[demand["country"].isin(members)]
    q = dem["quantity_t_per_yr"].to_numpy(float) * dem["product"].map(per_t).fillna(0.0).to_numpy(float)
    return pd.Series(q, index=dem["period"].to_numpy()).groupby(level=0).sum()


class Benchmarks:
    """Set BENCHMARK_PERIODS (benchmark, period); variable benchmark_gap_t_per_yr where a
    row prices its gap; constraint benchmark_share."""

    name = "benchmarks"

    def declare(self, m: pyo.ConcreteModel, data, reg: Registry) -> None:
        rows = data.tables.get("benchmarks")
        self.keys = pd.DataFrame(columns=["benchmark", "bloc", "stage", "element", "period", "min_share",
                                          "consumption_t_per_yr", "required_t_per_yr"])
        self.cons, self.terms, self.gaps = [], [], {}
        if rows is None or rows.empty:
            return
        acts, avars = reg.activity_table()
        procs = data.tables["processes"]
        recs, gap_keys, gap_cost = [], [], []
        for r in rows.to_dict("records"):
            members = expand(r["bloc"], data.blocs, list(data.countries.index))
            element = r["element"] or ""
            per_t = content_per_t(data.products, data.content, element)
            k = stage_output_content(data.recipes, procs, per_t, r["stage"])
            use = consumption_content(data.demand, members, per_t)
            start = data.period_list.index(r["from_period"]) if r["from_period"] else 0
            sel = acts["country"].isin(members).to_numpy() & acts["process"].isin(k.index).to_numpy()
            for t in data.period_list[start:]:
                idx = np.flatnonzero(sel & (acts["period"] == t).to_numpy())
                coef = acts["process"].iloc[idx].map(k).to_numpy(float)
                need = float(r["min_share"]) * float(use.get(t, 0.0))
                recs.append({"benchmark": r["benchmark"], "bloc": r["bloc"], "stage": r["stage"],
                             "element": element, "period": t, "min_share": float(r["min_share"]),
                             "consumption_t_per_yr": float(use.get(t, 0.0)), "required_t_per_yr": need})
                self.terms.append(([avars[i] for i in idx], coef.tolist(), idx))
                pen = r["gap_penalty_usd_per_t"]
                if pen is not None and pen == pen:
                    gap_keys.append((r["benchmark"], t))
                    gap_cost.append(float(pen))
        self.keys = pd.DataFrame(recs)
        self.acts = acts
        keys = list(zip(self.keys["benchmark"], self.keys["period"]))
        m.BENCHMARK_PERIODS = pyo.Set(initialize=keys, dimen=2, ordered=True)
        m.BENCHMARK_GAPS = pyo.Set(initialize=gap_keys, dimen=2, ordered=True)
        m.benchmark_gap_t_per_yr = pyo.Var(m.BENCHMARK_GAPS, within=pyo.NonNegativeReals)
        self.gaps = {k: m.benchmark_gap_t_per_yr[k] for k in gap_keys}
        need = dict(zip(keys, self.keys["required_t_per_yr"]))
        pos = {k: i for i, k in enumerate(keys)}

        def benchmark_share(m, b, t):
            """sum_{a in bloc, stage} content of final outputs x activity[a] (+ gap) >= min_share x consumption."""
            vs, ws, _ = self.terms[pos[b, t]]
            gap = self.gaps.get((b, t))
            vs, ws = (vs + [gap], ws + [1.0]) if gap is not None else (vs, ws)
            return LinearExpression(constant=0.0, linear_coefs=ws, linear_vars=vs) >= need[b, t]
        m.benchmark_share = pyo.Constraint(m.BENCHMARK_PERIODS, rule=benchmark_share)
        self.cons = [m.benchmark_share[k] for k in keys]
        reg.add_cost(CostTerm("benchmark_gap", PENALTY, [t for _, t in gap_keys], np.asarray(gap_cost, float),
                              list(self.gaps.values())))

    def extract(self, sol: Solution, data) -> dict[str, pd.DataFrame]:
        if self.keys.empty:
            return {}
        out = self.keys.copy()
        out["output_t_per_yr"] = [float(np.dot(sol.values(vs), ws)) if vs else 0.0 for vs, ws, _ in self.terms]
        gap = [self.gaps.get(k) for k in zip(out["benchmark"], out["period"])]
        out["gap_t_per_yr"] = [float(sol.values([g])[0]) if g is not None else 0.0 for g in gap]
        use = out["consumption_t_per_yr"].to_numpy(float)
        out["share_made_in_bloc"] = np.divide(out["output_t_per_yr"].to_numpy(float), use,
                                              out=np.full(len(out), np.nan), where=use > 0)
        req = out["required_t_per_yr"].to_numpy(float)
        out["binding"] = out["output_t_per_yr"].to_numpy(float) <= req + 1e-6 * np.maximum(1.0, req)
        # One t/yr more required output: the 'less room' value of a >= row (USD per t/yr-year).
        w = out["period"].map(data.periods["weight"]).to_numpy(float)
        _, less = limit_values(sol, self.cons, w, upper=False)
        out["value_usd_per_t"] = less
        # One point more: the requirement raised by 1 % of consumption and re-solved (a step
        # past a breakpoint costs more than its first tonne says).
        pv = tightening_cost(sol, self.cons, 0.01 * use, upper=False)
        out["cost_of_one_more_point_usd_per_yr"] = pv / w
        out["cost_of_one_more_point_usd_pv"] = pv
        return {"benchmarks": out, "benchmark_supply": self._supply(sol, data, out)}

    def _supply(self, sol: Solution, data, out: pd.DataFrame) -> pd.DataFrame:
        """Per benchmark, period and unit (facility or expansion option): the content it
        makes toward the benchmark, and whether it is new capacity."""
        parts = []
        new_units = set(data.tables["expansion"]["option"]) if "expansion" in data.tables else set()
        for (vs, ws, idx), b, t in zip(self.terms, out["benchmark"], out["period"]):
            if not vs:
                continue
            made = sol.values(vs) * np.asarray(ws, float)
            keep = made > 1e-9
            if not keep.any():
                continue
            a = self.acts.iloc[idx[keep]]
            parts.append(pd.DataFrame({"benchmark": b, "period": t, "unit": a["unit"].to_numpy(),
                                       "country": a["country"].to_numpy(), "process": a["process"].to_numpy(),
                                       "output_t_per_yr": made[keep]}))
        cols = ["benchmark", "period", "unit", "country", "process", "output_t_per_yr", "new_capacity"]
        if not parts:
            return pd.DataFrame(columns=cols)
        sup = pd.concat(parts, ignore_index=True).groupby(["benchmark", "period", "unit", "country", "process"],
                                                           sort=False, as_index=False)["output_t_per_yr"].sum()
        sup["new_capacity"] = sup["unit"].isin(new_units)
        return sup[cols]

