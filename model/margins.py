"""Margins at reference prices: does each running tranche cover its costs at the sourced
prices of what it makes? A check of the cost data against the prices (issue 5's price
check); it reads the case and the production table only.

For a period t, each facility-process pair k with activity > 0 (a tranche) gets, per unit
of activity,
    margin_k = sum_{outputs q} a_kq v_out(q) - sum_{inputs r} |a_kr| v_in(r, country_k) - c_k
with c_k the running cost (facility_processes) and v the product's
reference_price_usd_per_t where it has one. A product without one is valued by where it
comes from or goes to:
- v_in, as the input of a tranche: if every process making it makes nothing else (a
  concentrate, MREC), its FULL COST: the running cost of the cheapest running tranche
  making it in the same country plus the full cost of that tranche's own inputs (mined
  feed -> cracking -> MREC); where the country makes none, the tonne-weighted full cost
  in the countries it imports it from (table `flows`), else the cheapest anywhere. A co-product (SEG+ concentrate) is valued as
  an output (a co-product has no cost of its own).
- v_out, as an output: its NETBACK, the largest margin per t of it that a running tranche
  using it earns (what the next step makes of it); 0 when nothing running uses it.
Tranches that only make full-cost products (mining, cracking) have no margin of their
own: their cost is inside the margin of the tranche that uses their output ("checked
downstream"). A tranche whose outputs have neither a price nor a running user (SmCo
magnets without a reference price) cannot be checked ("no price").
Freight, duties and calibration terms are left out: this is the data's own consistency
at the sourced prices, not the model's prices (table `prices`).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

TOL = 1e-9


def reference_margins(tables: dict[str, pd.DataFrame], production: pd.DataFrame, period: str,
                      flows: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per running tranche in `period`: revenue, input cost, running cost and
    margin in USD per unit of activity at reference prices, with a note where the margin
    is checked downstream or cannot be checked. `tables` are the case's sheets; `flows`
    (the result table) says where imported feed comes from."""
    price = tables["products"].set_index("product")["reference_price_usd_per_t"].astype(float)
    rec = tables["recipes"][["process", "product", "coefficient"]]
    cost = tables["facility_processes"].set_index(["facility", "process"])["unit_cost_usd_per_t"].astype(float)
    run = production.loc[(production["period"] == period) & (production["activity_t_per_yr"] > TOL),
                         ["facility", "process", "country", "activity_t_per_yr"]]
    run = run.groupby(["facility", "process", "country"], as_index=False, sort=False)["activity_t_per_yr"].sum()
    run["running_cost_usd_per_t"] = [float(cost.get((f, k), np.nan)) for f, k in zip(run["facility"], run["process"])]
    outs = {k: list(zip(g["product"], g["coefficient"])) for k, g in rec[rec["coefficient"] > 0].groupby("process")}
    ins = {k: list(zip(g["product"], -g["coefficient"])) for k, g in rec[rec["coefficient"] < 0].groupby("process")}
    joint = {p for k, o in outs.items() if len(o) > 1 for p, _ in o}
    imports: dict[tuple[str, str], pd.Series] = {}
    if flows is not None and not flows.empty:
        f = flows[(flows["period"] == period) & (flows["flow_t_per_yr"] > TOL)]
        for (to, p), g in f.groupby(["to_country", "product"]):
            imports[to, p] = g.groupby("from_country")["flow_t_per_yr"].sum()
    tranches = list(run[["facility", "process", "country", "running_cost_usd_per_t"]].itertuples(index=False,
                                                                                                  name=None))

    def priced(p: str) -> bool:
        return p in price.index and not np.isnan(price[p])

    @lru_cache(maxsize=None)
    def v_out(p: str) -> float:
        if priced(p):
            return float(price[p])
        best = None
        for f, k, c, unit in tranches:
            use = dict(ins.get(k, []))
            if p in use:
                other_in = sum(a * v_in(r, c) for r, a in ins[k] if r != p)
                m = (sum(a * v_out(q) for q, a in outs.get(k, [])) - other_in - unit) / use[p]
                best = m if best is None else max(best, m)
        return 0.0 if best is None else best

    @lru_cache(maxsize=None)
    def v_in(p: str, country: str) -> float:
        if priced(p) or p in joint:
            return v_out(p)
        makers = [(f, k, c, unit) for f, k, c, unit in tranches if p in dict(outs.get(k, []))]
        local = [t for t in makers if t[2] == country]
        if not local and (country, p) in imports:
            src = imports[country, p]
            src = src[[c != country and any(t[2] == c for t in makers) for c in src.index]]
            if src.sum() > TOL:
                return float(sum(q * v_in(p, c) for c, q in src.items()) / src.sum())
        local = local or makers
        if not local:
            return v_out(p)
        return min((unit + sum(a * v_in(r, c) for r, a in ins.get(k, []))) / dict(outs[k])[p]
                   for f, k, c, unit in local)

    rows = []
    for f, k, c, unit in tranches:
        made = outs.get(k, [])
        upstream = made and all(not priced(p) and p not in joint for p, _ in made)
        unpriced_end = made and all(not priced(p) and not _used(p, tranches, ins) for p, _ in made)
        revenue = sum(a * v_out(p) for p, a in made)
        inputs = sum(a * v_in(r, c) for r, a in ins.get(k, []))
        note = "no price" if unpriced_end else ("checked downstream" if upstream else "")
        rows.append({"facility": f, "process": k, "country": c, "period": period,
                     "revenue_usd_per_t": revenue, "input_cost_usd_per_t": inputs,
                     "running_cost_usd_per_t": unit,
                     "margin_usd_per_t": np.nan if note else revenue - inputs - unit, "note": note})
    out = pd.DataFrame(rows, columns=["facility", "process", "country", "period", "revenue_usd_per_t",
                                      "input_cost_usd_per_t", "running_cost_usd_per_t", "margin_usd_per_t", "note"])
    return out.merge(run[["facility", "process", "activity_t_per_yr"]], on=["facility", "process"], how="left")


def _used(product: str, tranches: list[tuple], ins: dict[str, list]) -> bool:
    return any(product in dict(ins.get(k, [])) for _, k, _, _ in tranches)
