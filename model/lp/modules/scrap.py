"""Scrap: products in use return as end-of-life scrap; legacy scrap arises from the stock
put into use before the horizon. Scrap is an ordinary product after that: recipes consume
it (recycling) or make it (swarf), it trades, export controls act on it, and what is not
used is disposed of (model.lp.modules.disposal).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyomo.core as pyo

from model.lp.core import BalanceTerm, Node, Registry, Solution
from model.lp.origin import OTHER, Origin, label, split_labels

KEY = ["country", "scrap_product", "period"]


def scrap_node(country: str, product: str, period: str, origin: Origin) -> Node:
    """The balance node scrap arising in a country enters: its origin-class node where a
    control tracks the product (scrap arising in X is X-origin)."""
    x = origin.controller.get(product)
    if x is None:
        return (country, product, period)
    return (country, label(product, x if country == x else OTHER), period)


class Scrap:
    """No variables of its own. Exogenous supply (the balance's right-hand side) and a
    balance term on the demand module's shortfall variables:

        scrap_collected[c, s, t] = legacy[c, s, t] + sum_i k[i, t] x (D_i - u_i)

    with k[i, t] = share x overlap(served period + lifetime, t) / d_t x yield x collection
    (model.lp.data.scrap_returns) for demand rows i in country c returning as scrap s. The
    constant part (legacy + sum k D) is supply; -k u enters the balance on u_i.
    Served demand counts whatever served it: where substitution (a ferrite motor) meets a
    magnet demand row, end-of-life rows for that product would return it as magnet scrap
    too; the base case has none (its scrap is the legacy figure), so mind it when adding them."""

    name = "scrap"

    def declare(self, m: pyo.ConcreteModel, data, reg: Registry) -> None:
        origin = data.origin
        legacy, ret = data.scrap_supply, data.scrap_returns
        for c, p, t, q in zip(legacy["country"], legacy["scrap_product"], legacy["period"], legacy["legacy_t_per_yr"]):
            n = scrap_node(c, p, t, origin)
            reg.supply_t_per_yr[n] = reg.supply_t_per_yr.get(n, 0.0) + float(q)
        if ret.empty:
            return
        qty = data.demand["quantity_t_per_yr"].to_numpy(float)
        rows = ret["demand_row"].to_numpy(int)
        k = ret["collected_per_served"].to_numpy(float)
        nodes = [scrap_node(c, p, t, origin) for c, p, t in zip(ret["country"], ret["scrap_product"], ret["period"])]
        for n, q in zip(nodes, k * qty[rows]):
            reg.supply_t_per_yr[n] = reg.supply_t_per_yr.get(n, 0.0) + float(q)
        # Unserved demand is never put into use, so it never returns: -k x shortfall.
        short = list(m.shortfall_t_per_yr.values())
        reg.add_balance(BalanceTerm("scrap_returns", nodes, -k, [short[i] for i in rows]))

    def extract(self, sol: Solution, data) -> dict[str, pd.DataFrame]:
        return {}

    def post_extract(self, tables: dict[str, pd.DataFrame], data) -> dict[str, pd.DataFrame]:
        """The `scrap` table (see scrap_table), when the case has scrap."""
        products = data.products
        scrap = set(products.index[products["stage"] == "scrap"])
        if not scrap:
            return {}
        return {"scrap": scrap_table(tables, data, scrap)}


def _by_key(df: pd.DataFrame, country: str, product: str, value: np.ndarray | pd.Series, name: str,
            scrap: set[str]) -> pd.Series:
    """Sum of `value` by (country, scrap product, period), origin classes pooled."""
    if df.empty:
        return pd.Series([], index=pd.MultiIndex.from_tuples([], names=KEY), name=name, dtype=float)
    base, _ = split_labels(df[product].astype(str))
    f = pd.DataFrame({"country": df[country].to_numpy(), "scrap_product": base.to_numpy(),
                      "period": df["period"].to_numpy(), name: np.asarray(value, float)})
    f = f[f["scrap_product"].isin(scrap)]
    return f.groupby(KEY)[name].sum()


def _recipe_use(acts: pd.DataFrame | None, recipes: pd.DataFrame, scrap: set[str]) -> tuple[pd.Series, pd.Series]:
    """(made, consumed) scrap by key from activity rows (production or new capacity)."""
    if acts is None or acts.empty:
        return _by_key(pd.DataFrame(), "", "", [], "", scrap), _by_key(pd.DataFrame(), "", "", [], "", scrap)
    j = acts.merge(recipes, on="process")
    j = j[j["product"].isin(scrap)]
    q = j["activity_t_per_yr"].to_numpy(float) * j["coefficient"].to_numpy(float)
    return (_by_key(j, "country", "product", np.clip(q, 0, None), "made", scrap),
            _by_key(j, "country", "product", np.clip(-q, 0, None), "used", scrap))


COLS = ["returned_t_per_yr", "collected_eol_t_per_yr", "legacy_t_per_yr", "collected_t_per_yr", "made_t_per_yr",
        "imported_t_per_yr", "exported_t_per_yr", "recycled_t_per_yr", "disposed_t_per_yr"]


def scrap_table(tables: dict[str, pd.DataFrame], data, scrap: set[str]) -> pd.DataFrame:
    """Scrap by country, scrap product and period, t/yr (and t over the period):

        collected = in-horizon arising (collected) + legacy
        collected + made (swarf) + imported - exported - recycled - disposed = 0

    returned_t_per_yr is end-of-life scrap before collection; recycled is what recipes
    consume; recycled_share = recycled / (collected + made + imported), the share of the
    scrap a country has that it recycles."""
    parts: dict[str, list[pd.Series]] = {c: [] for c in COLS}
    ret = data.scrap_returns
    if not ret.empty:
        served = tables["demand"]["served_t_per_yr"].to_numpy(float)[ret["demand_row"].to_numpy(int)]
        r = ret.assign(product=ret["scrap_product"])
        for col, per_served in (("returned_t_per_yr", "returned_per_served"), ("collected_eol_t_per_yr", "collected_per_served")):
            parts[col].append(_by_key(r, "country", "product", ret[per_served].to_numpy(float) * served, col, scrap))
    leg = data.scrap_supply.assign(product=data.scrap_supply["scrap_product"])
    parts["legacy_t_per_yr"].append(_by_key(leg, "country", "product", leg["legacy_t_per_yr"], "legacy", scrap))
    for acts in (tables["production"], tables.get("expansion_capacity")):
        made, used = _recipe_use(acts, data.recipes, scrap)
        parts["made_t_per_yr"].append(made)
        parts["recycled_t_per_yr"].append(used)
    flows = tables["flows"]
    if not flows.empty:
        parts["imported_t_per_yr"].append(_by_key(flows, "to_country", "product", flows["flow_t_per_yr"], "in", scrap))
        parts["exported_t_per_yr"].append(_by_key(flows, "from_country", "product", flows["flow_t_per_yr"], "out",
                                                  scrap))
    disp = tables["disposal"]
    if not disp.empty:
        parts["disposed_t_per_yr"].append(_by_key(disp, "country", "product", disp["disposal_t_per_yr"], "d", scrap))
    out = pd.concat({c: pd.concat(v).groupby(level=[0, 1, 2]).sum() for c, v in parts.items() if v}, axis=1)
    out = out.reindex(columns=COLS).fillna(0.0)
    out["collected_t_per_yr"] = out["collected_eol_t_per_yr"] + out["legacy_t_per_yr"]
    out = out.reset_index()
    order = {p: i for i, p in enumerate(data.period_list)}
    out = out.assign(_o=out["period"].map(order)).sort_values(["country", "scrap_product", "_o"]).drop(columns="_o")
    avail = out["collected_t_per_yr"] + out["made_t_per_yr"] + out["imported_t_per_yr"]
    out["recycled_share"] = np.where(avail > 0, out["recycled_t_per_yr"] / avail.where(avail > 0, 1.0), 0.0)
    dur = out["period"].map(data.periods["duration_yr"]).to_numpy(float)
    out["duration_yr"] = dur
    for c in COLS:
        out[c.replace("_t_per_yr", "_t")] = out[c].to_numpy(float) * dur
    keep = (out[COLS].abs() > 1e-9).any(axis=1)
    return out[keep].reset_index(drop=True)
