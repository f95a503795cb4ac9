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
  in the countries it imports it from (table `flows`), else the cheapest anywhere; 0 where
  nothing running makes it (an input bought in with the running cost, like iron-boron).
  A co-product (SEG+ concentrate) is valued as an output (it has no cost of its own).
- v_out, as an output: its NETBACK, the largest margin per t of it that a running tranche
  using it earns (what the next step makes of it); 0 when nothing running uses it.
Tranches that only make full-cost products (mining, cracking) have no margin of their
own: their cost is inside the margin of the tranche that uses their output ("checked
downstream"). A tranche whose outputs have neither a price nor a running user (SmCo
magnets without a reference price) cannot be checked ("no price"). An unpriced product on a
loop of recipes (made, through unpriced products, from itself) is valued at 0; any
other loop of values is cut at 0 where it closes. A running cost that is missing leaves
that tranche's margin blank and is never the best netback or the cheapest maker.
Freight, duties and calibration terms are left out: this is the data's own consistency
at the sourced prices, not the model's prices (table `prices`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

TOL = 1e-9


def reference_margins(tables: dict[str, pd.DataFrame], production: pd.DataFrame,
                      periods: str | list[str] | None = None, flows: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per running tranche and period: revenue, input cost, running cost and
    margin in USD per unit of activity at reference prices, with a note where the margin
    is checked downstream or cannot be checked. `tables` are the case's sheets; `periods`
    one period, a list, or None for every period of `production`; `flows` (the result
    table) says where imported feed comes from."""
    price = tables["products"].set_index("product")["reference_price_usd_per_t"].astype(float).dropna().to_dict()
    rec = tables["recipes"][["process", "product", "coefficient"]]
    cost = tables["facility_processes"].set_index(["facility", "process"])["unit_cost_usd_per_t"].astype(float)
    outs = {k: list(zip(g["product"], g["coefficient"])) for k, g in rec[rec["coefficient"] > 0].groupby("process")}
    ins = {k: list(zip(g["product"], -g["coefficient"])) for k, g in rec[rec["coefficient"] < 0].groupby("process")}
    joint = {p for k, o in outs.items() if len(o) > 1 for p, _ in o}
    looped = _looped(price, outs, ins)
    if periods is None:
        periods = list(dict.fromkeys(production["period"]))
    elif isinstance(periods, str):
        periods = [periods]
    run = production.loc[production["period"].isin(periods) & (production["activity_t_per_yr"] > TOL),
                         ["facility", "process", "country", "period", "activity_t_per_yr"]]
    run = run.groupby(["period", "facility", "process", "country"], as_index=False, sort=False)[
        "activity_t_per_yr"].sum()
    run["running_cost_usd_per_t"] = [float(cost.get((f, k), np.nan)) for f, k in zip(run["facility"], run["process"])]
    # Imports of the products valued at full cost (unpriced, not co-products), by destination.
    imports: dict[tuple[str, str, str], dict[str, float]] = {}
    if flows is not None and not flows.empty:
        full_cost = [p for made in outs.values() for p, _ in made if p not in joint and p not in price]
        f = flows[flows["product"].isin(full_cost) & (flows["flow_t_per_yr"] > TOL) & flows["period"].isin(periods)]
        agg = f.groupby(["period", "to_country", "product", "from_country"])["flow_t_per_yr"].sum()
        for (t, to, p, frm), q in agg.items():
            imports.setdefault((t, to, p), {})[frm] = float(q)
    keys = ["period", "process", "country", "running_cost_usd_per_t"]
    kinds = run[keys].drop_duplicates()
    rows = []
    for t, g in kinds.groupby("period", sort=False):
        imports_t = {k[1:]: v for k, v in imports.items() if k[0] == t}
        rows += _period_margins(price, outs, ins, joint, looped, g, imports_t, t)
    by_kind = pd.DataFrame(rows, columns=keys + ["revenue_usd_per_t", "input_cost_usd_per_t", "margin_usd_per_t",
                                                 "note"]).astype({"running_cost_usd_per_t": float})
    cols = ["facility", "process", "country", "period", "revenue_usd_per_t", "input_cost_usd_per_t",
            "running_cost_usd_per_t", "margin_usd_per_t", "note", "activity_t_per_yr"]
    out = run.merge(by_kind, on=keys, how="left")[cols]
    return out.sort_values("period", key=lambda t: t.map({p: i for i, p in enumerate(periods)}), kind="stable",
                           ignore_index=True)


def _period_margins(price: dict[str, float], outs: dict, ins: dict, joint: set, looped: set,
                    kinds_df: pd.DataFrame, imports: dict[tuple[str, str], dict[str, float]],
                    period: str) -> list[dict]:
    """Margin rows of one period's running kinds of tranche (process, country, running cost)."""
    # Values depend on (process, country, running cost), not on the facility: work on those kinds.
    kinds = list(kinds_df[["process", "country", "running_cost_usd_per_t"]].itertuples(index=False, name=None))
    in_of = {k: dict(v) for k, v in ins.items()}
    out_of = {k: dict(v) for k, v in outs.items()}
    users: dict[str, list] = {}
    makers: dict[str, list] = {}
    for kind in kinds:
        for r in in_of.get(kind[0], {}):
            users.setdefault(r, []).append(kind)
        for q in out_of.get(kind[0], {}):
            makers.setdefault(q, []).append(kind)

    memo: dict = {}
    stack: dict = {}      # key -> depth of the values being computed
    lowest = [np.inf]     # shallowest depth a loop was cut at, below the current call

    def guarded(fn):
        """Memoise, and cut a loop of values (one that needs itself) at 0 where it closes;
        a value that used a provisional 0 of a caller still being computed is not kept.
        The loops the recipes show are valued at 0 beforehand (`_looped`), so the cut point,
        which follows the order values are asked for, is a last resort."""
        def inner(*key):
            key = (fn.__name__,) + key
            if key in memo:
                return memo[key]
            if key in stack:
                lowest[0] = min(lowest[0], stack[key])
                return 0.0
            depth = len(stack)
            stack[key] = depth
            outer, lowest[0] = lowest[0], np.inf
            try:
                value = fn(*key[1:])
            finally:
                del stack[key]
            if lowest[0] >= depth:  # no loop, or only through this value itself
                memo[key] = value
                lowest[0] = outer
            else:
                lowest[0] = min(outer, lowest[0])
            return value
        return inner

    @guarded
    def v_out(p: str) -> float:
        if p in price:
            return float(price[p])
        if p in looped:
            return 0.0
        best = None
        for k, c, unit in users.get(p, []):
            if np.isnan(unit):
                continue
            other_in = sum(a * v_in(r, c) for r, a in ins[k] if r != p)
            m = (sum(a * v_out(q) for q, a in outs.get(k, [])) - other_in - unit) / in_of[k][p]
            best = m if best is None else max(best, m)
        return 0.0 if best is None else best

    @guarded
    def v_in(p: str, country: str) -> float:
        if p in price or p in joint or p in looped:
            return v_out(p)
        mk = makers.get(p, [])
        local = [t for t in mk if t[1] == country]
        if not local and (country, p) in imports:
            made_in = {t[1] for t in mk}
            src = {c: q for c, q in imports[country, p].items() if c != country and c in made_in}
            total = sum(src.values())
            if total > TOL:
                return sum(q * v_in(p, c) for c, q in src.items()) / total
        local = local or mk
        if not local:
            return 0.0
        costs = [(unit + sum(a * v_in(r, c) for r, a in ins.get(k, []))) / out_of[k][p]
                 for k, c, unit in local if not np.isnan(unit)]
        return min(costs) if costs else 0.0

    rows = []
    for k, c, unit in kinds:
        made = outs.get(k, [])
        upstream = made and all(p not in price and p not in joint for p, _ in made)
        unpriced_end = made and all(p not in price and p not in users for p, _ in made)
        revenue = sum(a * v_out(p) for p, a in made)
        inputs = sum(a * v_in(r, c) for r, a in ins.get(k, []))
        note = "no price" if unpriced_end else ("checked downstream" if upstream else "")
        rows.append({"process": k, "country": c, "running_cost_usd_per_t": unit, "period": period,
                     "revenue_usd_per_t": revenue, "input_cost_usd_per_t": inputs,
                     "margin_usd_per_t": np.nan if note else revenue - inputs - unit, "note": note})
    return rows



def _looped(price: dict[str, float], outs: dict, ins: dict) -> set[str]:
    """Unpriced products on a loop of recipes (made, through unpriced products, from
    themselves, or used together with another unpriced product): valued at 0, so no value
    depends on where a loop is entered."""
    nodes = sorted({p for d in (outs, ins) for v in d.values() for p, _ in v if p not in price})
    pos = {p: i for i, p in enumerate(nodes)}
    edges = [(pos[r], pos[q]) for k in set(outs) & set(ins) for r, _ in ins[k] for q, _ in outs[k]
             if r in pos and q in pos]
    # Two unpriced inputs of one process value each other through its netback: a loop too.
    edges += [(pos[r], pos[q]) for k in ins for r, _ in ins[k] for q, _ in ins[k] if r != q and r in pos and q in pos]
    if not edges:
        return set()
    rows, cols = zip(*edges)
    graph = sp.csr_matrix((np.ones(len(edges)), (rows, cols)), shape=(len(nodes), len(nodes)))
    _, label = connected_components(graph, directed=True, connection="strong")
    size = np.bincount(label)
    return {p for p, i in pos.items() if size[label[i]] > 1}
