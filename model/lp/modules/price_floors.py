"""Price floors: four mechanisms, kept apart, because a guarantee is mostly money.

Covered output[g,t] = sum over the covered facilities' activities in t of activity x the
recipe's output coefficient of the floor's product (t/yr). Each floor applies in its
`periods` (blank or * for all).

- cfd: no constraint. Payment = covered output x d_t x max(0, floor - index price), the
  index being the model price (balance dual / weight) of the product in `index_zone`; for
  a bloc, the members' prices weighted by their demand for the product in t (the simple
  mean where no member demands it). Computed after the solve (`post_extract`), so it
  changes no flow and no cost.
- must_run: constraint floor_must_run[g,t]: covered output >= quantity (a guaranteed
  buyer keeps the plants running). Payment (reported, when index_zone is given) is the
  guaranteed buyer's loss on resale: min(covered output, quantity) x d_t x max(0, floor -
  index price).
- offtake: a buyer takes the covered output, up to the quantity, at the floor, into the
  named stockpile. Variables floor_offtake_t_per_yr[g,c,t] per country c of the covered
  facilities; constraints
    floor_offtake_within_output[g,c,t]: offtake[g,c,t] <= covered output in c
        (covered output = offtake + surplus, the surplus goes to the market);
    floor_offtake_volume[g,t]: sum_c offtake[g,c,t] + unmet[g,t] == min(quantity, potential[g,t]),
        potential = sum over covered facilities active in t of capacity x their largest
        output coefficient of the product; unmet (plants without feed) costs the default
        shortfall penalty, so a contract the plants cannot fill never makes the case
        infeasible and is reported (offtake_unmet_t_per_yr).
  Why the equality: "the buyer takes min(output, quantity)" is not convex, and
  `offtake <= quantity` alone is an option the plan would never use. A take-or-pay
  contract makes the plants run (the floor pays them), so the contracted volume is what
  covered capacity can make, up to the quantity. The offtake leaves the balance at the
  facilities' country and enters the stockpile's level (a `StockInflow`; freight to the
  holder is the buyer's, not modelled). Payment floor x offtake is a transfer reported,
  not optimised (in_objective=False).
- floor_duty: imports of the product into the zone (a country or bloc) from outside it, in
  the floor's periods, pay a specific duty max(0, floor - reference price) per t: a
  transfer IN the objective (it steers trade like a tariff). `floor_landed_costs` reports
  each lane into the zone: exporter's model price + freight + duty.

Build order: PriceFloors declares before Stockpiles (which reads the inflows) and after
Production and Trade (whose activities and flows it constrains).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyomo.core as pyo
from pyomo.core.expr.numeric_expr import LinearExpression

from model.case.codes import expand, periods_in
from model.lp.core import PENALTY, TRANSFER, BalanceTerm, CostTerm, Registry, Solution, keyed
from model.lp.modules.stockpiles import StockInflow


def floor_periods(pf: pd.DataFrame, plist: list[str]) -> pd.DataFrame:
    """One row per (floor, period) the floor applies in."""
    rows = [(g, t) for g, text in zip(pf["floor"], pf["periods"]) for t in periods_in(text, plist)]
    return pd.DataFrame(rows, columns=["floor", "period"])


def covered_units(pf: pd.DataFrame) -> pd.DataFrame:
    """(floor, facility) pairs."""
    rows = [(g, f) for g, text in zip(pf["floor"], pf["facilities"].fillna("")) for f in str(text).split(",") if f]
    return pd.DataFrame(rows, columns=["floor", "facility"])


def potential_output(data, pf: pd.DataFrame, fp: pd.DataFrame) -> pd.DataFrame:
    """Per (floor, country, period): capacity x largest output coefficient of the product,
    summed over covered facilities active in the period."""
    rec = data.recipes[data.recipes["coefficient"] > 0]
    acts = data.activities.merge(covered_units(pf), on="facility").merge(pf[["floor", "product"]], on="floor")
    acts = acts.merge(rec, on=["process", "product"])
    best = acts.groupby(["floor", "facility", "country", "period"], as_index=False).agg(
        cap=("capacity_t_per_yr", "first"), coef=("coefficient", "max"))
    best["potential_t_per_yr"] = best["cap"] * best["coef"]
    out = best.groupby(["floor", "country", "period"], as_index=False)["potential_t_per_yr"].sum()
    return out.merge(fp, on=["floor", "period"])


class PriceFloors:
    """Price guarantees; see the module docstring for each mechanism's formulation."""

    name = "price_floors"

    def declare(self, m: pyo.ConcreteModel, data, reg: Registry) -> None:
        pf = data.tables["price_floors"]
        self.empty = pf.empty
        self.unmet_keys: list = []
        self.unmet_vars: list = []
        if self.empty:
            return
        self.pf = pf.set_index("floor")
        fp = floor_periods(pf, data.period_list)
        self.fp = fp
        # Covered output terms: (floor, country, period, coef, var), one per activity making the product.
        keys, vars_ = reg.activity_table()
        acts = keys.reset_index().rename(columns={"unit": "facility"}).merge(covered_units(pf), on="facility")
        acts = acts.merge(pf[["floor", "product"]], on="floor").merge(fp, on=["floor", "period"])
        rec = data.recipes[data.recipes["coefficient"] > 0]
        acts = acts.merge(rec, on=["process", "product"])
        self.covered = acts[["floor", "country", "period", "facility", "process", "coefficient"]].reset_index(drop=True)
        self.covered_vars = [vars_[i] for i in acts["index"]]
        self.potential = potential_output(data, pf, fp)
        self._must_run(m)
        self._offtake(m, data, reg)
        self._floor_duty(m, data, reg)

    def _output_terms(self, by: list[str]) -> dict[tuple, tuple[list, list]]:
        """(coefs, vars) of covered output grouped by `by`."""
        out: dict[tuple, tuple[list, list]] = {}
        cov = self.covered
        for key, c, v in zip(keyed(cov, by), cov["coefficient"].to_numpy(float), self.covered_vars):
            cs, vs = out.setdefault(key, ([], []))
            cs.append(float(c))
            vs.append(v)
        return out

    def _must_run(self, m) -> None:
        mech = self.pf["mechanism"]
        rows = self.fp[self.fp["floor"].map(mech) == "must_run"]
        qty = self.pf["quantity_t_per_yr"]
        terms = self._output_terms(["floor", "period"])
        # Periods without covered activity need no row (validation rejects a quantity > 0 there).
        idx = [k for k in keyed(rows, ["floor", "period"]) if k in terms]
        m.MUST_RUN = pyo.Set(initialize=idx, dimen=2, ordered=True)

        def floor_must_run(m, g, t):
            """sum covered activity x output coefficient >= quantity_t_per_yr."""
            cs, vs = terms.get((g, t), ([], []))
            return LinearExpression(constant=0.0, linear_coefs=cs, linear_vars=vs) >= float(qty[g])
        m.floor_must_run = pyo.Constraint(m.MUST_RUN, rule=floor_must_run)

    def _offtake(self, m, data, reg: Registry) -> None:
        mech = self.pf["mechanism"]
        pot = self.potential[self.potential["floor"].map(mech) == "offtake"].reset_index(drop=True)
        self.offtake_keys = pot
        idx = keyed(pot, ["floor", "country", "period"])
        m.OFFTAKES = pyo.Set(initialize=idx, dimen=3, ordered=True)
        m.floor_offtake_t_per_yr = pyo.Var(m.OFFTAKES, within=pyo.NonNegativeReals)
        self.offtake_vars = list(m.floor_offtake_t_per_yr.values())
        terms = self._output_terms(["floor", "country", "period"])
        pos = {k: i for i, k in enumerate(idx)}

        def floor_offtake_within_output(m, g, c, t):
            """offtake[g,c,t] <= covered output of the product in c (the rest is surplus)."""
            cs, vs = terms.get((g, c, t), ([], []))
            return LinearExpression(constant=0.0, linear_coefs=[1.0] + [-x for x in cs],
                                    linear_vars=[self.offtake_vars[pos[g, c, t]]] + vs) <= 0.0
        m.floor_offtake_within_output = pyo.Constraint(m.OFFTAKES, rule=floor_offtake_within_output)

        per = pot.groupby(["floor", "period"], sort=False)
        volume = {k: min(float(self.pf.at[k[0], "quantity_t_per_yr"]), float(g["potential_t_per_yr"].sum()))
                  for k, g in per}
        members = {k: [self.offtake_vars[i] for i in ii] for k, ii in per.indices.items()}
        self.offtake_volume = volume
        m.OFFTAKE_PERIODS = pyo.Set(initialize=list(volume), dimen=2, ordered=True)
        # Plants that cannot get feed (under a ban, say) leave part of the contract
        # unmet at a penalty instead of making the case infeasible.
        m.floor_offtake_unmet_t_per_yr = pyo.Var(m.OFFTAKE_PERIODS, within=pyo.NonNegativeReals)
        self.unmet_keys = list(volume)
        self.unmet_vars = list(m.floor_offtake_unmet_t_per_yr.values())

        def floor_offtake_volume(m, g, t):
            """sum_c offtake[g,c,t] + unmet[g,t] == min(quantity, potential covered output):
            take-or-pay, with what the plants cannot make left unmet at a penalty."""
            vs = members[g, t] + [m.floor_offtake_unmet_t_per_yr[g, t]]
            return LinearExpression(constant=0.0, linear_coefs=[1.0] * len(vs), linear_vars=vs) == volume[g, t]
        m.floor_offtake_volume = pyo.Constraint(m.OFFTAKE_PERIODS, rule=floor_offtake_volume)
        penalty = float(data.settings["default_shortfall_penalty_usd_per_t"])
        reg.add_cost(CostTerm("floor_offtake_unmet", PENALTY, [t for _, t in self.unmet_keys],
                              np.full(len(self.unmet_vars), penalty), self.unmet_vars))

        product = pot["floor"].map(self.pf["product"])
        nodes = list(zip(pot["country"], product, pot["period"]))
        reg.add_balance(BalanceTerm("floor_offtake", nodes, -np.ones(len(nodes)), self.offtake_vars))
        reg.stockpile_inflows.append(StockInflow("floor_offtake", list(pot["floor"].map(self.pf["offtake_stockpile"])),
                                                  list(pot["period"]), self.offtake_vars))
        reg.add_cost(CostTerm("floor_offtake_payment", TRANSFER, list(pot["period"]),
                              pot["floor"].map(self.pf["floor_price_usd_per_t"]).to_numpy(float),
                              self.offtake_vars, in_objective=False))

    def _floor_duty(self, m, data, reg: Registry) -> None:
        keys, vars_ = reg.flow_table()
        parts = []
        ref = data.products["reference_price_usd_per_t"]
        for g, rec in self.pf[self.pf["mechanism"] == "floor_duty"].iterrows():
            zone = set(expand(rec["index_zone"], data.blocs, list(data.countries.index)))
            periods = set(self.fp.loc[self.fp["floor"] == g, "period"])
            hit = (keys["product"] == rec["product"]) & keys["to_country"].isin(zone) \
                & ~keys["from_country"].isin(zone) & keys["period"].isin(periods)
            lanes = keys[hit].reset_index()
            lanes["floor"] = g
            lanes["duty_usd_per_t"] = max(0.0, float(rec["floor_price_usd_per_t"]) - float(ref[rec["product"]]))
            parts.append(lanes)
        cols = ["index", "floor", "from_country", "to_country", "product", "cls", "period", "duty_usd_per_t"]
        lanes = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
        if "cls" not in lanes.columns:  # origin classes: '' where a product carries none
            lanes["cls"] = ""
        self.duty_lanes = lanes[cols]
        self.duty_vars = vars_.take(self.duty_lanes["index"].to_numpy(np.int64))
        reg.add_cost(CostTerm("floor_duty", TRANSFER, list(self.duty_lanes["period"]),
                              self.duty_lanes["duty_usd_per_t"].to_numpy(float), self.duty_vars))

    def extract(self, sol: Solution, data) -> dict[str, pd.DataFrame]:
        if self.empty:
            return {}
        pf = self.pf
        out = self.fp.copy()
        out["mechanism"] = out["floor"].map(pf["mechanism"])
        out["product"] = out["floor"].map(pf["product"])
        out["floor_price_usd_per_t"] = out["floor"].map(pf["floor_price_usd_per_t"]).astype(float)
        out["quantity_t_per_yr"] = out["floor"].map(pf["quantity_t_per_yr"]).astype(float)
        out["duration_yr"] = out["period"].map(data.periods["duration_yr"]).to_numpy(float)
        key = ["floor", "period"]
        cov = self.covered.assign(q=self.covered["coefficient"] * sol.values(self.covered_vars))
        out["covered_output_t_per_yr"] = out.set_index(key).index.map(cov.groupby(key)["q"].sum()).fillna(0.0)
        off = self.offtake_keys.assign(q=sol.values(self.offtake_vars))
        out["offtake_t_per_yr"] = out.set_index(key).index.map(off.groupby(key)["q"].sum()).fillna(0.0)
        unmet = dict(zip(self.unmet_keys, sol.values(self.unmet_vars)))
        out["offtake_unmet_t_per_yr"] = [unmet.get(k, 0.0) for k in zip(out["floor"], out["period"])]
        duty = self.duty_lanes.assign(q=sol.values(self.duty_vars))
        out["imports_t_per_yr"] = out.set_index(key).index.map(duty.groupby(key)["q"].sum()).fillna(0.0)
        ref = out["product"].map(data.products["reference_price_usd_per_t"]).astype(float)
        out["duty_usd_per_t"] = np.where(out["mechanism"] == "floor_duty",
                                         (out["floor_price_usd_per_t"] - ref).clip(lower=0.0), np.nan)
        for col in ("covered_output_t_per_yr", "offtake_t_per_yr", "imports_t_per_yr"):
            out[col] = out[col].clip(lower=0.0) + 0.0  # solver noise: -0.0 and -1e-12 read as 0
        d = out["duration_yr"]
        out["covered_output_t"] = out["covered_output_t_per_yr"] * d
        out["offtake_t"] = out["offtake_t_per_yr"] * d
        out["imports_t"] = out["imports_t_per_yr"] * d
        # Offtake and duty money is known now; cfd and must_run need prices (post_extract).
        pay = np.full(len(out), np.nan)
        is_off = (out["mechanism"] == "offtake").to_numpy()
        pay[is_off] = (out["offtake_t"] * out["floor_price_usd_per_t"]).to_numpy()[is_off]
        is_duty = (out["mechanism"] == "floor_duty").to_numpy()
        pay[is_duty] = (out["imports_t"] * out["duty_usd_per_t"]).to_numpy()[is_duty]
        out["payment_usd"] = pay
        self.lane_flows = duty
        return {"price_floors": out}

    def post_extract(self, tables: dict[str, pd.DataFrame], data) -> dict[str, pd.DataFrame]:
        if self.empty:
            return {}
        out = tables["price_floors"].copy()
        prices = tables["prices"]
        zone = out["floor"].map(self.pf["index_zone"]).fillna("")
        out["index_zone"] = zone
        out["index_price_usd_per_t"] = [index_price(data, prices, z, p, t) if z else np.nan
                                        for z, p, t in zip(zone, out["product"], out["period"])]
        # A payment read from a price that is not proven unique is one valid figure, not
        # the only one (model.lp.canonical, canonical_prices): the table says so.
        out["index_price_unique"] = [index_price(data, prices, z, p, t, unique=True) if z else True
                                     for z, p, t in zip(zone, out["product"], out["period"])]
        gap = (out["floor_price_usd_per_t"] - out["index_price_usd_per_t"]).clip(lower=0.0)
        cfd = (out["mechanism"] == "cfd").to_numpy()
        must = (out["mechanism"] == "must_run").to_numpy()
        pay = out["payment_usd"].to_numpy(float).copy()
        pay[cfd] = (out["covered_output_t"] * gap).to_numpy()[cfd]
        guaranteed = np.minimum(out["covered_output_t_per_yr"], out["quantity_t_per_yr"]) * out["duration_yr"]
        pay[must] = (guaranteed * gap).to_numpy()[must]
        out["payment_usd"] = pay
        # Contract-for-difference and must-run payments are known only now: hand them to
        # the cost table as transfers (reported, never optimised).
        paid = out[(cfd | must) & (out["payment_usd"].fillna(0.0) > 0)]
        extra = pd.DataFrame({
            "component": "floor_payment_" + paid["mechanism"], "category": TRANSFER, "in_objective": False,
            "period": paid["period"], "cost_usd": paid["payment_usd"].to_numpy(float)})
        extra = extra.groupby(["component", "category", "in_objective", "period"], as_index=False, sort=False).sum()
        extra["pv_usd"] = extra["cost_usd"] * extra["period"].map(data.periods["pv_factor"]).to_numpy(float)
        return {"price_floors": out, "floor_landed_costs": self._landed(prices, data), "post_solve_costs": extra}

    def _landed(self, prices: pd.DataFrame, data) -> pd.DataFrame:
        """Each floor_duty lane into the zone: exporter's model price + freight + duty."""
        lanes = self.lane_flows.drop(columns=["index"]).rename(columns={"q": "flow_t_per_yr", "cls": "origin_class"})
        price = price_lookup(prices)
        lanes["exporter_price_usd_per_t"] = [price.get((c, p, k, t), np.nan) for c, p, k, t in zip(
            lanes["from_country"], lanes["product"], lanes["origin_class"], lanes["period"])]
        key = ["from_country", "to_country", "product"]  # one freight per lane, whatever the class
        freight = data.lanes.drop_duplicates(key).set_index(key)["cost_usd_per_t"]
        lanes["freight_usd_per_t"] = [freight.get((f, to, p), np.nan) for f, to, p in
                                      zip(lanes["from_country"], lanes["to_country"], lanes["product"])]
        lanes["landed_cost_usd_per_t"] = (lanes["exporter_price_usd_per_t"] + lanes["freight_usd_per_t"]
                                          + lanes["duty_usd_per_t"])
        lanes["importer_price_usd_per_t"] = [price.get((c, p, "", t), np.nan) for c, p, t in
                                             zip(lanes["to_country"], lanes["product"], lanes["period"])]
        return lanes


def price_lookup(prices: pd.DataFrame) -> pd.Series:
    """Model prices by (country, product, origin class, period); class '' is the
    country's use pool (every node when no control tracks classes)."""
    cls = prices["origin_class"] if "origin_class" in prices.columns else pd.Series("", index=prices.index)
    return pd.Series(prices["price_usd_per_t"].to_numpy(float), index=pd.MultiIndex.from_arrays(
        [prices["country"], prices["product"], cls.fillna(""), prices["period"]]))


def index_price(data, prices: pd.DataFrame, zone: str, product: str, period: str,
                unique: bool = False) -> float | bool:
    """Model price of `product` in `zone` in `period`: the country's price, or for a bloc
    the members' prices weighted by their demand for the product (simple mean if none).
    A country's price is where its own output sells: its make node (the class of its own
    origin, or `other`, where model.lp.origin tracks classes on the product), else its
    use pool. With `unique`: whether every price it reads is proven unique instead."""
    members = expand(zone, data.blocs, list(data.countries.index))
    p = prices[(prices["product"] == product) & (prices["period"] == period) & prices["country"].isin(members)]
    if p.empty:
        return True if unique else float("nan")
    cls = p["origin_class"].fillna("") if "origin_class" in p.columns else pd.Series("", index=p.index)
    x = data.origin.controller.get(product)
    make = np.where(p["country"] == x, x, "other") if x else np.full(len(p), "")
    own = p[cls.to_numpy() == make]
    pool = p[cls == ""]
    chosen = pd.concat([own, pool[~pool["country"].isin(own["country"])]])
    dem = data.demand[(data.demand["product"] == product) & (data.demand["period"] == period)]
    w = chosen["country"].map(dem.groupby("country")["quantity_t_per_yr"].sum()).fillna(0.0).to_numpy(float)
    if unique:
        flags = chosen["price_unique"].to_numpy(bool) if "price_unique" in chosen else np.ones(len(chosen), bool)
        return bool(flags[w > 0].all()) if w.sum() > 0 else bool(flags.all())
    v = chosen["price_usd_per_t"].to_numpy(float)
    return float((w * v).sum() / w.sum()) if w.sum() > 0 else float(v.mean())
