"""Strategic stockpiles: buys, releases and the level they leave.

Sets
  STOCK_PERIODS (stockpile, period): every period of every stockpile (a level is a trajectory).
  STOCK_TARGETS (stockpile, period): `normal` periods of stockpiles with a target.
  STOCK_KEEP: stockpiles whose terminal rule is `keep`;  STOCK_BUDGETS: those with a budget.
Variables (>= 0)
  stock_buy_t_per_yr[h,t] <= buy_max,  stock_release_t_per_yr[h,t] <= release_max (rates),
  stock_level_t[h,t] <= capacity_t: the level at the END of period t.
Constraints
  stock_level_balance[h,t]: L[h,t] = L[h,t-1] + d_t (buy - release + inflows), L[h,t0-1] = initial_t.
  stock_target[h,t]:        L[h,t] >= target[h,t] in normal periods only (crisis periods may draw down).
  stock_committed_build[h,t]: buy - release >= build_min[h,t] in build_min_periods (a net
                            build: buying and releasing the same tonnes cannot meet it).
  stock_terminal[h]:        L[h,T] >= initial_t when terminal_rule is keep.
  stock_budget[h]:          sum_t d_t x buy[h,t] x reference_price <= budget_usd.
  stock_initial_origin[h]:  sum_t d_t release_own[h,t] <= initial_t (origin-tracked products held
                            outside the controlling country: only the initial stock leaves as the
                            holder's origin).
  stock_release_limit[h,t]: release + release_own <= release_max (where both exist).
Balance: release enters and buys leave the holder's node (holder, product, t); where the product
  carries origin classes a release enters the controlling country's class (a store keeps no
  origin, so bought tonnes cannot be re-labelled) and release_own the holder's class (`other`).
Costs: holding (resource) = holding_cost x L[h,t] per year of period t, i.e. holding x L x d_t
  undiscounted: the end-of-period level stands for the whole period's stock (a period that
  fills the store pays for the full level; one that empties it pays for what is left).
  Purchases at the reference price are a transfer reported, never optimised
  (in_objective=False): the plan buys because tonnes are worth it, not because money moves.

Targets. target_t, or target_days_of_cover = days/365 x the holder's final demand in t
measured in the stockpiled product's element: sum over the holder's demand rows of
quantity x content[demanded product, e] / content[stockpiled product, e]. An NdPr-oxide
reserve thus counts magnet demand through the magnets' NdPr content. A product without a
single element (a magnet, `mix`) is measured against the holder's demand for itself.

Extra inflows. Another module (price floors' offtake) may pour tonnes into a stockpile: it
appends a `StockInflow` to `reg.stockpile_inflows` BEFORE this module declares (the build
order puts PriceFloors before Stockpiles), and the level balance adds them.

Usable cover (table `stockpile_cover`, computed after the solve from the production table).
How much of the stock could become the holder's final products (magnets) in period t given
the capacity NOT in the controlling country (column controlling_country; blank counts every
country). Downstream stages are the processes on a recipe path from the stockpiled product
to a final product the holder demands (e.g. reduction, magnet making), grouped by process
stage. For each stage, spare capacity = capacity - activity (in the solution) of every
facility outside the controlling country that runs a process of the stage on the path,
times the element it can pass per unit of activity (input coefficient x content; the
largest if a facility runs several such processes). Then
  usable element t = min(level x content, min over stages of spare element rate x d_t),
  usable final t = usable element / the holder's demand-weighted element content of its
  final products, usable days = usable element / (daily final demand in element terms).
Limits, stated plainly: it ignores other inputs (Dy metal, FeB), lanes between the holder
and the plants, built capacity from expansion modules (only existing facilities count),
and assumes the period's spare capacity is all there is to use; it is an upper bound on
the conversion, not a plan. A stockpile of a final product counts as usable as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyomo.core as pyo
from pyomo.core.expr.numeric_expr import LinearExpression

from model.case.codes import periods_in
from model.case.derived import NO_ELEMENT
from model.lp.core import RESOURCE, TRANSFER, BalanceTerm, CostTerm, Registry, Solution, keyed
from model.lp.origin import OTHER, label
from model.lp.sensitivity import limit_values


@dataclass
class StockInflow:
    """Rates (t/yr) that enter stockpile `stockpiles[i]` in `periods[i]` via `vars[i]`,
    registered by another module (an offtake)."""

    name: str
    stockpiles: list[str]
    periods: list[str]
    vars: list


def _one(var) -> LinearExpression:
    """1 x var as a linear expression (every constraint body here is one)."""
    return LinearExpression(constant=0.0, linear_coefs=[1.0], linear_vars=[var])


def element_of(data, product: str) -> str | None:
    """The single element a product is measured in, or None (mix, blank, no content)."""
    e = data.products.at[product, "element"]
    if e in NO_ELEMENT or e not in data.content.columns or data.content.at[product, e] <= 0:
        return None
    return e


def cover_demand(data, sp: pd.DataFrame) -> pd.DataFrame:
    """Per (stockpile, period): the holder's final demand in stockpiled-product tonnes
    per year (element content / the product's own content), and in element tonnes."""
    per = pd.DataFrame({"period": data.period_list})
    parts = []
    dem = data.demand
    for rec in sp[["stockpile", "holder", "product"]].to_dict("records"):
        mine = dem[dem["country"] == rec["holder"]]
        e = element_of(data, rec["product"])
        if e is None:  # measured against the holder's demand for the product itself
            mine = mine[mine["product"] == rec["product"]]
            q_e, unit = mine["quantity_t_per_yr"].to_numpy(float), 1.0
        else:
            q_e = mine["quantity_t_per_yr"].to_numpy(float) * mine["product"].map(data.content[e]).to_numpy(float)
            unit = float(data.content.at[rec["product"], e])
        by = pd.Series(q_e, index=mine["period"].to_numpy()).groupby(level=0).sum()
        out = per.assign(stockpile=rec["stockpile"])
        out["final_demand_element_t_per_yr"] = out["period"].map(by).fillna(0.0).to_numpy(float)
        out["final_demand_t_per_yr"] = out["final_demand_element_t_per_yr"] / unit
        out["element"] = e or ""
        out["content_per_t"] = unit
        parts.append(out)
    return pd.concat(parts, ignore_index=True)


class Stockpiles:
    """Stockpile buys, releases and levels; see the module docstring for the formulation."""

    name = "stockpiles"

    def declare(self, m: pyo.ConcreteModel, data, reg: Registry) -> None:
        sp = data.tables["stockpiles"]
        self.empty = sp.empty
        if self.empty:
            return
        sp = sp.reset_index(drop=True)
        self.sp = sp.set_index("stockpile")
        per = data.periods
        plist = data.period_list
        keys = sp[["stockpile", "holder", "product", "initial_t", "capacity_t", "target_t",
                   "target_days_of_cover", "build_min_t_per_yr", "buy_max_t_per_yr", "release_max_t_per_yr",
                   "holding_cost_usd_per_t_yr"]].merge(pd.DataFrame({"period": plist}), how="cross")
        committed = {(h, t) for h, text in zip(sp["stockpile"], sp["build_min_periods"])
                     for t in periods_in(text, plist)}
        on = np.array([k in committed for k in zip(keys["stockpile"], keys["period"])], dtype=bool)
        keys["build_min_t_per_yr"] = np.where(on, keys["build_min_t_per_yr"].fillna(0.0).to_numpy(float), 0.0)
        keys["duration_yr"] = keys["period"].map(per["duration_yr"]).to_numpy(float)
        keys["regime"] = keys["period"].map(per["regime"]).to_numpy()
        keys["reference_price_usd_per_t"] = keys["product"].map(
            data.products["reference_price_usd_per_t"]).to_numpy(float)
        cover = cover_demand(data, sp)
        keys = keys.merge(cover, on=["stockpile", "period"], how="left", sort=False)
        keys["target_level_t"] = np.where(
            keys["target_t"].notna(), keys["target_t"],
            keys["target_days_of_cover"] / 365.0 * keys["final_demand_t_per_yr"])
        self.keys = keys
        idx = keyed(keys, ["stockpile", "period"])

        def bounds_of(col: str) -> dict:
            return {k: (0.0, None if np.isnan(v) else float(v))
                    for k, v in zip(idx, keys[col].to_numpy(float))}
        buy_b, rel_b, cap_b = (bounds_of(c) for c in ("buy_max_t_per_yr", "release_max_t_per_yr", "capacity_t"))
        m.STOCK_PERIODS = pyo.Set(initialize=idx, dimen=2, ordered=True)
        m.stock_buy_t_per_yr = pyo.Var(m.STOCK_PERIODS, within=pyo.NonNegativeReals, bounds=lambda m, *k: buy_b[k])
        m.stock_release_t_per_yr = pyo.Var(m.STOCK_PERIODS, within=pyo.NonNegativeReals,
                                           bounds=lambda m, *k: rel_b[k])
        m.stock_level_t = pyo.Var(m.STOCK_PERIODS, within=pyo.NonNegativeReals, bounds=lambda m, *k: cap_b[k])
        self.buy = list(m.stock_buy_t_per_yr.values())
        self.release = list(m.stock_release_t_per_yr.values())
        self.level = list(m.stock_level_t.values())

        nodes = list(zip(keys["holder"], keys["product"], keys["period"]))
        # Buys come from the holder's use pool, where material of every origin mixes. Where
        # a product carries origin classes, bought tonnes are released into the controlling
        # country's class: the store does not record their origin, and counting them as
        # the holder's would let a reserve turn controlled material into uncontrolled within
        # one period (buy Chinese magnets, release them as EU-origin, re-export past a ban,
        # a licence or an origin tariff). The initial stock is the holder's own (it was
        # there before the horizon): up to initial_t in all may be released as the holder's
        # origin (variable stock_release_own_t_per_yr), so a standing reserve can still ship
        # to allies under a ban. A reserve serves its holder freely (the pool takes every class).
        x = keys["product"].map(data.origin.controller)
        release_at = [label(p, "" if pd.isna(c) else c) for p, c in zip(keys["product"], x)]
        release_nodes = list(zip(keys["holder"], release_at, keys["period"]))
        reg.add_balance(BalanceTerm("stock_release", release_nodes, np.ones(len(nodes)), self.release))
        split = (x.notna() & (keys["holder"] != x) & (keys["initial_t"].fillna(0.0) > 0)).to_numpy(bool)
        own_idx = [idx[i] for i in np.flatnonzero(split)]
        m.STOCK_OWN_RELEASES = pyo.Set(initialize=own_idx, dimen=2, ordered=True)
        m.stock_release_own_t_per_yr = pyo.Var(m.STOCK_OWN_RELEASES, within=pyo.NonNegativeReals,
                                               bounds=lambda m, *k: rel_b[k])
        self.own = [None] * len(idx)
        for i, v in zip(np.flatnonzero(split), m.stock_release_own_t_per_yr.values()):
            self.own[i] = v
        if own_idx:
            own_nodes = [(keys["holder"].iat[i], label(keys["product"].iat[i], OTHER), keys["period"].iat[i])
                         for i in np.flatnonzero(split)]
            reg.add_balance(BalanceTerm("stock_release_own", own_nodes, np.ones(len(own_idx)),
                                        list(m.stock_release_own_t_per_yr.values())))
        self._own_origin_constraints(m, keys, idx, split)
        reg.add_balance(BalanceTerm("stock_buy", nodes, -np.ones(len(nodes)), self.buy))
        reg.add_cost(CostTerm("stock_holding", RESOURCE, list(keys["period"]),
                              keys["holding_cost_usd_per_t_yr"].fillna(0.0).to_numpy(float), self.level))
        priced = keys["reference_price_usd_per_t"].notna().to_numpy()
        reg.add_cost(CostTerm("stock_purchases", TRANSFER, list(keys.loc[priced, "period"]),
                              keys.loc[priced, "reference_price_usd_per_t"].to_numpy(float),
                              [v for v, ok in zip(self.buy, priced) if ok], in_objective=False))

        # Inflows other modules registered (offtakes), by (stockpile, period).
        self.inflow: dict[tuple, list] = {}
        for term in reg.stockpile_inflows:
            for h, t, v in zip(term.stockpiles, term.periods, term.vars):
                self.inflow.setdefault((h, t), []).append(v)
        self._level_constraints(m, keys, idx)
        self._target_constraints(m, keys, idx)
        self._build_constraints(m, keys, idx)
        self._terminal_and_budget(m, sp, keys, idx, plist)

    def _releases(self, i: int) -> list:
        """The release variables of row i: the release, and its own-origin part if any."""
        return [self.release[i]] + ([self.own[i]] if self.own[i] is not None else [])

    def _own_origin_constraints(self, m, keys: pd.DataFrame, idx: list[tuple], split: np.ndarray) -> None:
        held = sorted(set(keys.loc[split, "stockpile"]), key=list(keys["stockpile"]).index)
        rows = {h: np.flatnonzero(split & (keys["stockpile"] == h).to_numpy()) for h in held}
        dur = keys["duration_yr"].to_numpy(float)
        init = keys["initial_t"].fillna(0.0).to_numpy(float)
        m.STOCK_OWN = pyo.Set(initialize=held, ordered=True)

        def stock_initial_origin(m, h):
            """sum_t d_t release_own[h,t] <= initial_t: only the initial stock leaves as the holder's origin."""
            r = rows[h]
            return LinearExpression(constant=0.0, linear_coefs=[float(dur[i]) for i in r],
                                    linear_vars=[self.own[i] for i in r]) <= float(init[r[0]])
        m.stock_initial_origin = pyo.Constraint(m.STOCK_OWN, rule=stock_initial_origin)
        cap = keys["release_max_t_per_yr"].to_numpy(float)
        lim = [idx[i] for i in np.flatnonzero(split & ~np.isnan(cap))]
        pos = {k: i for i, k in enumerate(idx)}
        m.STOCK_RELEASE_LIMITS = pyo.Set(initialize=lim, dimen=2, ordered=True)

        def stock_release_limit(m, h, t):
            """release[h,t] + release_own[h,t] <= release_max[h,t]."""
            i = pos[h, t]
            return LinearExpression(constant=0.0, linear_coefs=[1.0, 1.0],
                                    linear_vars=self._releases(i)) <= float(cap[i])
        m.stock_release_limit = pyo.Constraint(m.STOCK_RELEASE_LIMITS, rule=stock_release_limit)

    def _level_constraints(self, m, keys: pd.DataFrame, idx: list[tuple]) -> None:
        pos = {k: i for i, k in enumerate(idx)}
        dur = keys["duration_yr"].to_numpy(float)
        first = ~keys["stockpile"].duplicated().to_numpy()
        init = keys["initial_t"].fillna(0.0).to_numpy(float)

        def stock_level_balance(m, h, t):
            """L[h,t] - L[h,t-1] - d_t (buy - release + inflows) == initial (first period) or 0."""
            i = pos[h, t]
            d = dur[i]
            ins = self.inflow.get((h, t), [])
            rel = self._releases(i)
            vs = [self.level[i], self.buy[i]] + rel + ins
            cs = [1.0, -d] + [d] * len(rel) + [-d] * len(ins)
            if not first[i]:
                vs.append(self.level[i - 1])
                cs.append(-1.0)
            return LinearExpression(constant=0.0, linear_coefs=cs, linear_vars=vs) == (init[i] if first[i] else 0.0)
        m.stock_level_balance = pyo.Constraint(m.STOCK_PERIODS, rule=stock_level_balance)

    def _target_constraints(self, m, keys: pd.DataFrame, idx: list[tuple]) -> None:
        on = (keys["regime"] == "normal").to_numpy() & keys["target_level_t"].notna().to_numpy()
        self.target_idx = np.flatnonzero(on)
        tkeys = [idx[i] for i in self.target_idx]
        target = dict(zip(tkeys, keys["target_level_t"].to_numpy(float)[self.target_idx]))
        pos = {k: i for i, k in enumerate(idx)}
        m.STOCK_TARGETS = pyo.Set(initialize=tkeys, dimen=2, ordered=True)

        def stock_target(m, h, t):
            """L[h,t] >= target[h,t] (normal periods only)."""
            return _one(self.level[pos[h, t]]) >= target[h, t]
        m.stock_target = pyo.Constraint(m.STOCK_TARGETS, rule=stock_target)
        self.target_cons = list(m.stock_target.values())

    def _build_constraints(self, m, keys: pd.DataFrame, idx: list[tuple]) -> None:
        low = keys["build_min_t_per_yr"].to_numpy(float)
        self.build_idx = np.flatnonzero(low > 0)
        bkeys = [idx[i] for i in self.build_idx]
        pos = {k: i for i, k in enumerate(idx)}
        m.STOCK_BUILDS = pyo.Set(initialize=bkeys, dimen=2, ordered=True)

        def stock_committed_build(m, h, t):
            """buy[h,t] - release[h,t] (own-origin part included) >= build_min[h,t]."""
            i = pos[h, t]
            rel = self._releases(i)
            return LinearExpression(constant=0.0, linear_coefs=[1.0] + [-1.0] * len(rel),
                                    linear_vars=[self.buy[i]] + rel) >= float(low[i])
        m.stock_committed_build = pyo.Constraint(m.STOCK_BUILDS, rule=stock_committed_build)
        self.build_cons = list(m.stock_committed_build.values())

    def _terminal_and_budget(self, m, sp: pd.DataFrame, keys: pd.DataFrame, idx: list[tuple],
                             plist: list[str]) -> None:
        pos = {k: i for i, k in enumerate(idx)}
        keep = sp[(sp["terminal_rule"] == "keep") & (sp["initial_t"].fillna(0.0) > 0)]
        init = dict(zip(keep["stockpile"], keep["initial_t"].astype(float)))
        m.STOCK_KEEP = pyo.Set(initialize=list(keep["stockpile"]), ordered=True)

        def stock_terminal(m, h):
            """L[h,T] >= initial_t (terminal rule keep)."""
            return _one(self.level[pos[h, plist[-1]]]) >= init[h]
        m.stock_terminal = pyo.Constraint(m.STOCK_KEEP, rule=stock_terminal)

        budgets = sp[sp["budget_usd"].notna()]
        limit = dict(zip(budgets["stockpile"], budgets["budget_usd"].astype(float)))
        spend = (keys["duration_yr"] * keys["reference_price_usd_per_t"]).to_numpy(float)
        m.STOCK_BUDGETS = pyo.Set(initialize=list(budgets["stockpile"]), ordered=True)

        def stock_budget(m, h):
            """sum_t d_t x buy[h,t] x reference_price <= budget_usd."""
            ii = [pos[h, t] for t in plist]
            return LinearExpression(constant=0.0, linear_coefs=[float(spend[i]) for i in ii],
                                    linear_vars=[self.buy[i] for i in ii]) <= limit[h]
        m.stock_budget = pyo.Constraint(m.STOCK_BUDGETS, rule=stock_budget)

    def extract(self, sol: Solution, data) -> dict[str, pd.DataFrame]:
        if self.empty:
            return {}
        k = self.keys
        out = k[["stockpile", "holder", "product", "period", "regime", "duration_yr"]].copy()
        level = sol.values(self.level)
        out["level_t"] = level
        later = k["stockpile"].duplicated().to_numpy()
        out["level_start_t"] = np.where(later, np.roll(level, 1), k["initial_t"].fillna(0.0).to_numpy(float))
        out["buy_t_per_yr"] = sol.values(self.buy)
        out["build_min_t_per_yr"] = k["build_min_t_per_yr"].to_numpy(float)
        own = [v for v in self.own if v is not None]
        rel = sol.values(self.release)
        if own:
            rel = rel + np.array([float(sol.values([v])[0]) if v is not None else 0.0 for v in self.own])
        out["release_t_per_yr"] = rel
        inflow = [float(sol.values(self.inflow.get((h, t), [])).sum()) for h, t in zip(k["stockpile"], k["period"])]
        out["inflow_t_per_yr"] = inflow
        d = out["duration_yr"].to_numpy(float)
        for col in ("buy", "release", "inflow"):
            out[f"{col}_t"] = out[f"{col}_t_per_yr"] * d
        out["target_t"] = k["target_level_t"].to_numpy(float)
        out["target_enforced"] = False
        out.loc[self.target_idx, "target_enforced"] = True
        # L >= target: what the last tonne of target costs (USD/t, undiscounted): the
        # saving when the target is one tonne lower (model.lp.sensitivity).
        w = k["period"].map(data.periods["weight"]).to_numpy(float)
        val = np.full(len(out), np.nan)
        val[self.target_idx] = limit_values(sol, self.target_cons, w[self.target_idx], upper=False)[0]
        out["target_cost_usd_per_t"] = val
        # buy - release >= build_min: what the last committed tonne costs.
        val = np.full(len(out), np.nan)
        val[self.build_idx] = limit_values(sol, self.build_cons, w[self.build_idx], upper=False)[0]
        out["build_cost_usd_per_t"] = val
        out["capacity_t"] = k["capacity_t"].to_numpy(float)
        out["final_demand_t_per_yr"] = k["final_demand_t_per_yr"].to_numpy(float)
        daily = out["final_demand_t_per_yr"].to_numpy(float) / 365.0
        out["days_of_cover"] = np.divide(level, daily, out=np.full(len(out), np.nan), where=daily > 0)
        price = k["reference_price_usd_per_t"].to_numpy(float)
        out["purchase_value_usd"] = out["buy_t"] * price
        out["budget_usd"] = k["stockpile"].map(self.sp["budget_usd"]).to_numpy(float)
        out["budget_used_usd"] = out.groupby("stockpile", sort=False)["purchase_value_usd"].cumsum()
        out["budget_used_share"] = out["budget_used_usd"] / out["budget_usd"]
        out["holding_cost_usd"] = k["holding_cost_usd_per_t_yr"].fillna(0.0).to_numpy(float) * level * d
        self.trajectory = out
        return {"stockpiles": out}

    def post_extract(self, tables: dict[str, pd.DataFrame], data) -> dict[str, pd.DataFrame]:
        if self.empty:
            return {}
        return {"stockpile_cover": usable_cover(tables["stockpiles"], tables["production"], self.sp,
                                                self.keys, data)}


def downstream_path(data, product: str, element: str, finals: set[str]) -> list[str]:
    """Processes on some recipe path from `product` to one of `finals` carrying `element`."""
    rec = data.recipes
    content = data.content[element]
    ins = rec[rec["coefficient"] < 0]
    outs = rec[(rec["coefficient"] > 0) & (rec["product"].map(content).fillna(0.0) > 0)]
    reached, frontier, procs = {product}, [product], set()
    while frontier:
        q = frontier.pop()
        for k in ins.loc[ins["product"] == q, "process"]:
            procs.add(k)
            for r in outs.loc[outs["process"] == k, "product"]:
                if r not in reached:
                    reached.add(r)
                    frontier.append(r)
    # Keep processes whose outputs lead on to a final product.
    useful = set(finals)
    changed = True
    while changed:
        changed = False
        for k in procs:
            if set(outs.loc[outs["process"] == k, "product"]) & useful:
                new = set(ins.loc[ins["process"] == k, "product"]) - useful
                if new:
                    useful |= new
                    changed = True
    return sorted(k for k in procs if set(outs.loc[outs["process"] == k, "product"]) & useful)


def stage_spare_element_t(production: pd.DataFrame, path: list[str], stage: pd.Series,
                          throughput: pd.Series, controller: str, period: str, duration_yr: float) -> dict[str, float]:
    """Per downstream stage: tonnes of element the spare capacity (capacity - activity)
    of plants outside the controlling country could pass in the period."""
    now = production[production["period"] == period]
    used = now.groupby("facility")["activity_t_per_yr"].sum()
    mine = now[now["process"].isin(path) & (now["country"] != controller)]
    spare_e = {}
    for s in sorted({stage[k] for k in path}):
        ps = mine[mine["process"].map(stage) == s]
        fac = ps.groupby("facility").agg(cap=("capacity_t_per_yr", "first"),
                                         thr=("process", lambda ks: max(throughput.get(k, 0.0) for k in ks)))
        spare = (fac["cap"] - fac.index.map(used).fillna(0.0)).clip(lower=0.0)
        spare_e[s] = float((spare * fac["thr"]).sum()) * duration_yr
    return spare_e


def usable_cover(traj: pd.DataFrame, production: pd.DataFrame, sp: pd.DataFrame, keys: pd.DataFrame,
                 data) -> pd.DataFrame:
    """Per (stockpile, period): how much of the stock could become the holder's final
    products with spare capacity outside the controlling country (module docstring)."""
    rows = []
    stage = data.tables["processes"].set_index("process")["stage"]
    daily_e = keys.set_index(["stockpile", "period"])["final_demand_element_t_per_yr"] / 365.0
    for h, g in traj.groupby("stockpile", sort=False):
        p, holder, controller = sp.at[h, "product"], sp.at[h, "holder"], sp.at[h, "controlling_country"] or ""
        e = element_of(data, p)
        finals = data.demand[data.demand["country"] == holder]
        if e is not None:
            finals = finals[(finals["product"] != p) & (finals["product"].map(data.content[e]).fillna(0.0) > 0)]
        path = downstream_path(data, p, e, set(finals["product"])) if e is not None and len(finals) else []
        ins = data.recipes[data.recipes["process"].isin(path) & (data.recipes["coefficient"] < 0)]
        throughput = (-ins["coefficient"] * ins["product"].map(data.content[e] if e else {}).fillna(0.0)
                      ).groupby(ins["process"]).sum()
        for r in g.to_dict("records"):
            t = r["period"]
            stock_e = r["level_t"] * (float(data.content.at[p, e]) if e is not None else 1.0)
            out = {"stockpile": h, "holder": holder, "product": p, "period": t, "controlling_country": controller,
                   "level_t": r["level_t"], "element": e or "", "stock_element_t": stock_e,
                   "downstream_stages": ",".join(sorted({stage[k] for k in path}))}
            fin = finals[finals["period"] == t]
            if not path or fin.empty:
                out.update(bottleneck_stage="", spare_element_t=np.nan, usable_element_t=stock_e,
                           usable_final_t=r["level_t"], usable_days=r["days_of_cover"],
                           note="stock counts as it is (no downstream conversion to a final product)")
                rows.append(out)
                continue
            spare = stage_spare_element_t(production, path, stage, throughput, controller, t, r["duration_yr"])
            neck = min(spare, key=spare.get)
            usable_e = min(stock_e, spare[neck])
            # Tonnes of final product per tonne of element: the holder's demand-weighted mix.
            content_e = float((fin["quantity_t_per_yr"] * fin["product"].map(data.content[e])).sum()
                              / fin["quantity_t_per_yr"].sum())
            day = float(daily_e[h, t])
            out.update(bottleneck_stage=neck, spare_element_t=spare[neck], usable_element_t=usable_e,
                       usable_final_t=usable_e / content_e, usable_days=usable_e / day if day > 0 else np.nan,
                       note="upper bound: spare capacity outside the controlling country in the period; "
                            "other inputs and lanes ignored")
            rows.append(out)
    return pd.DataFrame(rows)
