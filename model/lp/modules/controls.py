"""Export controls: origin-class pools, quotas and licences (bans act in model.lp.modules.trade
by removing the flows they forbid; see model.lp.origin for the rules)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyomo.core as pyo
from pyomo.core.expr.numeric_expr import LinearExpression

from model.lp.columns import Columns
from model.lp.core import RESOURCE, BalanceTerm, CostTerm, Registry, Solution
from model.lp.origin import OTHER, SEP, controlled_mask
from model.lp.sensitivity import allowance_value, limit_values


class OriginPools:
    """Set CLASS_NODES (country, class label, period) with variable absorb_t_per_yr moving
    each origin class into the country's use pool, where processes and demand draw from
    either class. Declared after every module that can register a class node (trade,
    production, stockpile releases, floor offtakes, denied demand, scrap arising) and
    before disposal, so every class node reaches its pool."""

    name = "origin_pools"

    def declare(self, m: pyo.ConcreteModel, data, reg: Registry) -> None:
        nodes = [n for n in reg.nodes() if SEP in n[1]]
        self.pool_keys = pd.DataFrame(nodes, columns=["country", "label", "period"])
        m.CLASS_NODES = pyo.Set(initialize=nodes, dimen=3, ordered=True)
        m.absorb_t_per_yr = pyo.Var(m.CLASS_NODES, within=pyo.NonNegativeReals)
        self.absorb = list(m.absorb_t_per_yr.values())
        n = len(nodes)
        use = [(c, lab.split(SEP, 1)[0], t) for c, lab, t in nodes]
        reg.add_balance(BalanceTerm("origin_pool", nodes + use,
                                    np.concatenate([-np.ones(n), np.ones(n)]), self.absorb + self.absorb))

    def extract(self, sol: Solution, data) -> dict[str, pd.DataFrame]:
        pools = self.pool_keys.copy()
        if pools.empty:
            return {}
        pools["absorbed_t_per_yr"] = sol.values(self.absorb)
        return {"origin_pools": pools[pools["absorbed_t_per_yr"] > 1e-9].reset_index(drop=True)}


class Controls:
    """Set CONTROL_PERIODS with constraint export_quota; licence cost on licensed flows
    (origin-class pools: OriginPools)."""

    name = "controls"

    def declare(self, m: pyo.ConcreteModel, data, reg: Registry) -> None:
        self.controls = data.origin.controls
        self.banned = banned_flows(data)
        self.reg = reg  # its node_rows are filled when the balance is assembled
        self._declare_caps(m, data, reg)

    def _declare_caps(self, m: pyo.ConcreteModel, data, reg: Registry) -> None:
        flows, fvars = reg.flow_table()
        rows: list[tuple[str, str]] = []
        terms: dict[tuple[str, str], tuple[list, list]] = {}
        caps: dict[tuple[str, str], float] = {}
        licence_vars: list = []  # Columns of each licence's flows
        licence_cost: list[float] = []
        licence_periods: list[str] = []
        self.licence_segments: list[tuple[str, int]] = []  # (licence, its flows in the licence term)
        for ctrl in self.controls:
            if ctrl.kind not in ("quota", "licence"):
                continue
            mask = controlled_mask(flows, ctrl)
            if ctrl.classes:  # X-origin moving on between two destinations was counted on entry
                mask = mask & ~flows["from_country"].isin(ctrl.destinations).to_numpy()
            sub = flows[mask]
            idx = np.flatnonzero(mask)
            if ctrl.element:
                weight = sub["product"].map(data.content[ctrl.element]).to_numpy(float)
            else:
                weight = np.ones(len(sub))
            for t in ctrl.periods:
                sel = (sub["period"] == t).to_numpy()
                key = (ctrl.name, t)
                rows.append(key)
                caps[key] = ctrl.cap_t_per_yr
                terms[key] = (fvars.take(idx[sel]), weight[sel].tolist())
            if ctrl.kind == "licence" and ctrl.licence_cost_usd_per_t > 0:
                licence_vars.append(fvars.take(idx))
                licence_cost += [ctrl.licence_cost_usd_per_t] * len(idx)
                licence_periods += list(sub["period"])
                self.licence_segments.append((ctrl.name, len(idx)))
        self.licence_vars = licence_vars = Columns.join(licence_vars)
        self.cap_keys = rows
        self.caps = caps
        self.terms = terms
        m.CONTROL_PERIODS = pyo.Set(initialize=rows, dimen=2, ordered=True)

        def export_quota(m, name, t):
            """sum over controlled flows of content[p, element] (or 1) x flow <= cap
            (the quota, or the licensed share of the reference flow), in t/yr."""
            vs, ws = terms[name, t]
            return LinearExpression(constant=0.0, linear_coefs=ws, linear_vars=vs) <= caps[name, t]
        m.export_quota = pyo.Constraint(m.CONTROL_PERIODS, rule=export_quota)
        self.cons = [m.export_quota[k] for k in rows]
        reg.add_cost(CostTerm("licence", RESOURCE, licence_periods, np.asarray(licence_cost, float),
                              licence_vars))

    def extract(self, sol: Solution, data) -> dict[str, pd.DataFrame]:
        per = data.periods
        out = []
        # What one more tonne allowed saves, USD per t (model.lp.sensitivity: measured).
        w = per.loc[[t for _, t in self.cap_keys], "weight"].to_numpy(float) if self.cap_keys else np.zeros(0)
        values = dict(zip(self.cap_keys, limit_values(sol, self.cons, w)[0]))
        for ctrl in self.controls:
            for t in ctrl.periods:
                rec = {"control": ctrl.name, "kind": ctrl.kind, "exporter": ctrl.exporter,
                       "products": ", ".join(ctrl.products), "period": t, "origin_classes": ctrl.classes,
                       "extraterritorial": ctrl.extraterritorial, "element": ctrl.element,
                       "reference_flow_t_per_yr": ctrl.reference_flow_t_per_yr,
                       "allowed_t_per_yr": ctrl.cap_t_per_yr if ctrl.kind != "ban" else 0.0}
                if ctrl.segments:
                    rec["segments"] = ", ".join(ctrl.segments)
                if (ctrl.name, t) in self.terms:
                    vs, ws = self.terms[ctrl.name, t]
                    used = float(np.dot(sol.values(vs), ws)) if vs else 0.0
                    rec["used_t_per_yr"] = used
                    rec["shadow_value_usd_per_t"] = values[ctrl.name, t]
                    rec["binding"] = used >= ctrl.cap_t_per_yr - 1e-6 * max(1.0, ctrl.cap_t_per_yr)
                else:  # a ban: valued by allowing one tonne of its flows (ban_value)
                    rec["used_t_per_yr"] = 0.0
                    value = self.ban_value if ctrl.on_flows else self.denial_value
                    rec["shadow_value_usd_per_t"] = value(sol, data, ctrl, t, per.loc[t, "weight"])
                    rec["binding"] = bool(rec["shadow_value_usd_per_t"] > 1e-6)
                ref = ctrl.reference_flow_t_per_yr
                rec["refused_t_per_yr"] = (max(0.0, ref - rec["used_t_per_yr"]) if ref is not None else np.nan)
                out.append(rec)
        return {"controls": pd.DataFrame(out)} if out else {}

    def ban_value(self, sol: Solution, data, ctrl, period: str, weight: float) -> float:
        """What allowing one tonne of the ban's flows in `period` would save, USD per t:
        the ban replaced by a 1 t/yr quota over every flow it forbids, counted as a quota
        counts (tonnes of product, or of the element's content for an element control),
        freight charged and no duty, and the kept model re-solved
        (model.lp.sensitivity.allowance_value). A flow from a node the model does not hold
        (the country never has the product of that origin) cannot carry anything and is
        left out."""
        fb = self.banned[(self.banned["control"] == ctrl.name) & (self.banned["period"] == period)]
        rows = self.reg.node_rows
        entries, costs, counts = [], [], []
        for f, to, p, cls, c in zip(fb["from_country"], fb["to_country"], fb["product"], fb["cls"],
                                    fb["cost_usd_per_t"]):
            lab = f"{p}{SEP}{cls}" if cls else p
            src = rows.get((f, lab, period))
            dst = rows.get((to, lab, period)) or rows.get((to, p, period))
            if src is None or dst is None:
                continue
            r = sol.rows_of([src, dst])
            if (r < 0).any():
                continue
            entries.append([(int(r[0]), -1.0), (int(r[1]), 1.0)])
            costs.append(float(c) * weight)
            counts.append(float(data.content[ctrl.element].get(p, 0.0)) if ctrl.element else 1.0)
        if not entries:
            return 0.0
        value = allowance_value(sol, entries, np.asarray(costs), weight, np.asarray(counts))
        return value if np.isnan(value) else max(0.0, value)

    def denial_value(self, sol: Solution, data, ctrl, period: str, weight: float) -> float:
        """What letting one tonne of any origin serve the denied segments in `period` would
        save, USD per t: a 1 t/yr allowance over columns that move material from each
        destination's use pool into the `other` class node its denied demand draws from
        (free, like the pool's own absorption), the kept model re-solved."""
        dem = data.demand
        hit = dem[(dem["denied_by"] == ctrl.name) & (dem["period"] == period)]
        rows = self.reg.node_rows
        entries = []
        for c, p, node in dict.fromkeys(zip(hit["country"], hit["product"], hit["node_product"])):
            src, dst = rows.get((c, p, period)), rows.get((c, node, period))
            if src is None or dst is None:
                continue
            r = sol.rows_of([src, dst])
            if (r >= 0).all():
                entries.append([(int(r[0]), -1.0), (int(r[1]), 1.0)])
        if not entries:
            return 0.0
        value = allowance_value(sol, entries, np.zeros(len(entries)), weight)
        return value if np.isnan(value) else max(0.0, value)

    def post_extract(self, tables: dict[str, pd.DataFrame], data) -> dict[str, pd.DataFrame]:
        out = end_use_tables(tables, data)
        out.update(self._ban_lanes(tables))
        return out

    def _ban_lanes(self, tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        """Per forbidden lane: the reduced cost the flow would have at the model prices,
        price at destination - price at origin - freight, and whether both prices are
        proven unique (where not, the figure is one valid value, not the only one). The
        ban's own value (controls table) is measured by re-solving, not read from here."""
        if "controls" not in tables or self.banned.empty:
            return {}
        values = ban_values(self.banned, tables["prices"])
        top = values[values["value_usd_per_t"] > 1e-6].sort_values(
            ["value_usd_per_t", "control", "from_country", "to_country", "product", "cls", "period"],
            ascending=[False, True, True, True, True, True, True])
        return {"ban_lane_values": top.reset_index(drop=True)} if not top.empty else {}


def banned_flows(data) -> pd.DataFrame:
    """The (lane, class, period) rows each ban forbids, with the lane's freight."""
    from model.lp.modules.trade import all_lane_periods
    flows = all_lane_periods(data)
    parts = [flows[controlled_mask(flows, c)].assign(control=c.name)
             for c in data.origin.controls if c.kind == "ban"]
    cols = ["control", "from_country", "to_country", "product", "cls", "period", "cost_usd_per_t"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


def ban_values(banned: pd.DataFrame, prices: pd.DataFrame) -> pd.DataFrame:
    """Per forbidden flow: what one tonne would save, from the node prices. The origin is
    the class node it would leave; the destination the class node if it exists, else
    the use pool (absorbing into the pool is free)."""
    p = prices[["country", "product", "origin_class", "period", "price_usd_per_t"]].assign(
        _u=prices["price_unique"] if "price_unique" in prices else True)
    origin = banned.merge(p.rename(columns={"country": "from_country", "origin_class": "cls",
                                            "price_usd_per_t": "origin_price", "_u": "_uo"}),
                          on=["from_country", "product", "cls", "period"], how="left")
    dest_cls = p.rename(columns={"country": "to_country", "origin_class": "cls", "price_usd_per_t": "_dc",
                                 "_u": "_udc"})
    dest_pool = p[p["origin_class"] == ""].drop(columns="origin_class").rename(
        columns={"country": "to_country", "price_usd_per_t": "_dp", "_u": "_udp"})
    out = origin.merge(dest_cls, on=["to_country", "product", "cls", "period"], how="left").merge(
        dest_pool, on=["to_country", "product", "period"], how="left")
    out["destination_price"] = out["_dc"].fillna(out["_dp"])
    out["value_usd_per_t"] = out["destination_price"] - out["origin_price"] - out["cost_usd_per_t"]
    dest_unique = out["_udc"].where(out["_dc"].notna(), out["_udp"])
    out["prices_unique"] = out["_uo"].fillna(False).astype(bool) & dest_unique.fillna(False).astype(bool)
    return out.drop(columns=["_dc", "_dp", "_uo", "_udc", "_udp"])


def end_use_tables(tables: dict[str, pd.DataFrame], data) -> dict[str, pd.DataFrame]:
    """For end-use controls: `end_use` (per denied demand row: demand, served, unserved
    and its share of the row's demand, tonnes in the period) and `end_use_supply` (per
    control, destination, product, period and supplier: the tonnes not of the
    controller's origin reaching the node the denied segments draw from). A supplier is
    the shipping country for imports, or the destination itself for its own output and
    reserve releases (the node's balance: denied demand served + exports + absorbed into
    the general pool + disposed - imports). The node also feeds the destination's other
    segments through the pool, and may serve the segments of several controls, so each
    control's served tonnes are split among the node's suppliers pro rata to what each
    brings (a convention: material of one class is interchangeable at the node)."""
    dem = tables.get("demand")
    if dem is None or "denied_by" not in dem.columns:
        return {}
    rows = dem[dem["denied_by"] != ""]
    cols = ["denied_by", "country", "product", "segment", "period", "demand_t_per_yr", "served_t_per_yr",
            "unserved_t_per_yr", "unserved_share", "unserved_t", "penalty_value_usd"]
    end_use = rows[cols].rename(columns={"denied_by": "control"}).reset_index(drop=True)
    sup = _node_suppliers(tables, end_use)
    key = ["control", "country", "product", "period"]
    mine = end_use.groupby(key, sort=False)["served_t_per_yr"].sum().rename("denied_served_t_per_yr").reset_index()
    sup = mine.merge(sup, on=["country", "product", "period"])
    sup["serves_denied_t_per_yr"] = sup["denied_served_t_per_yr"] * sup["supply_share"]
    sup["serves_denied_t"] = sup["serves_denied_t_per_yr"] * sup["period"].map(data.periods["duration_yr"]).to_numpy()
    order = {p: i for i, p in enumerate(data.period_list)}
    sup = sup.sort_values(key + ["supply_t_per_yr", "supplier"], key=lambda c: c.map(order) if c.name == "period" else c,
                          ascending=[True, True, True, True, False, True])
    cols = key + ["supplier", "supply_t_per_yr", "supply_share", "denied_served_t_per_yr", "serves_denied_t_per_yr",
                  "serves_denied_t"]
    return {"end_use": end_use, "end_use_supply": sup[cols].reset_index(drop=True)}


def _node_suppliers(tables: dict[str, pd.DataFrame], end_use: pd.DataFrame) -> pd.DataFrame:
    """Per denied node (country, product's `other` class, period) and supplier: the t/yr
    it brings and its share of the node's supply."""
    node_key = ["country", "product", "period"]
    node = end_use.groupby(node_key, sort=False)["served_t_per_yr"].sum().rename("served").reset_index()
    flows = tables.get("flows", pd.DataFrame(columns=["from_country", "to_country", "product", "origin_class",
                                                      "period", "flow_t_per_yr"]))
    other = flows[flows["origin_class"] == OTHER]
    imports = node.merge(other.rename(columns={"to_country": "country", "from_country": "supplier"}),
                         on=node_key)[node_key + ["supplier", "flow_t_per_yr"]]
    out_of = other.groupby(["from_country", "product", "period"])["flow_t_per_yr"].sum()
    pools = tables.get("origin_pools", pd.DataFrame(columns=["country", "label", "period", "absorbed_t_per_yr"]))
    absorbed = pools.set_index(["country", "label", "period"])["absorbed_t_per_yr"]
    disp = tables.get("disposal")
    disposed = (disp[disp["origin_class"].fillna("") == OTHER].groupby(node_key)["disposal_t_per_yr"].sum()
                if disp is not None and not disp.empty and "origin_class" in disp.columns else pd.Series(dtype=float))
    imp = imports.groupby(node_key, sort=False)["flow_t_per_yr"].sum()
    k3 = list(zip(node["country"], node["product"], node["period"]))
    own = node.assign(supplier=node["country"])
    own["flow_t_per_yr"] = (node["served"].to_numpy(float)
                            + np.array([out_of.get(k, 0.0) for k in k3], float)
                            + np.array([absorbed.get((c, p + SEP + OTHER, t), 0.0) for c, p, t in k3], float)
                            + np.array([disposed.get(k, 0.0) for k in k3], float)
                            - np.array([imp.get(k, 0.0) for k in k3], float))
    own["flow_t_per_yr"] = own["flow_t_per_yr"].clip(lower=0.0)  # rounding of a node that balances
    sup = pd.concat([imports, own[node_key + ["supplier", "flow_t_per_yr"]]], ignore_index=True)
    sup = sup[sup["flow_t_per_yr"] > 1e-9].rename(columns={"flow_t_per_yr": "supply_t_per_yr"})
    sup["supply_share"] = sup["supply_t_per_yr"] / sup.groupby(node_key, sort=False)["supply_t_per_yr"].transform("sum")
    return sup
