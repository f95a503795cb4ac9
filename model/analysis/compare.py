"""Compare a scenario's result tables with a reference run's (its parent, the base case,
or any other): reads tables only."""

from __future__ import annotations

import pandas as pd

HEADLINE = ("resource cost (PV, USD)", "transfers (PV, USD)", "unserved demand penalty value (PV, USD)",
            "unserved demand (t)")


def headline(tables: dict[str, pd.DataFrame]) -> dict[str, float]:
    """Resource cost, transfers and penalty value (present value), unserved tonnes."""
    costs = tables["costs"]
    by = costs.groupby("category")["pv_usd"].sum()
    out = {HEADLINE[0]: float(by.get("resource", 0.0)),
           HEADLINE[1]: float(by.get("transfer", 0.0)),
           HEADLINE[2]: float(by.get("penalty", 0.0)),
           HEADLINE[3]: float(tables["shortfall"]["unserved_t"].sum())}
    for comp, v in costs.groupby("component")["pv_usd"].sum().items():
        out[f"{comp} (PV, USD)"] = float(v)
    return out


MONEY = (("consumer_spending_usd", "consumer spending in {c} (USD)"),
         ("import_bill_usd", "import bill of {c} (USD)"),
         ("export_revenue_usd", "export revenue of {c} (USD)"),
         ("producer_revenue_usd", "producer revenue in {c} (USD)"))


def country_money(tables: dict[str, pd.DataFrame]) -> dict[str, float]:
    """Per country over the horizon (undiscounted USD): consumers' spending, import bill,
    export revenue, producers' revenue, and its share of the world's export revenue."""
    w = tables.get("who_pays")
    if w is None or w.empty:
        return {}
    by = w.groupby("country")[[c for c, _ in MONEY]].sum()
    out = {words.format(c=c): float(by.at[c, col]) for c in by.index for col, words in MONEY}
    world = float(by["export_revenue_usd"].sum())
    if world > 0:
        out.update({f"share of world export revenue from {c}": float(by.at[c, "export_revenue_usd"] / world)
                    for c in by.index})
    return out


def ledger(tables: dict[str, pd.DataFrame], exporters: list[str]) -> dict[str, float]:
    """The coercer's ledger over the horizon for each of `exporters`, per product anyone
    exports: its tonnes exported and its share of the world's exports of that product."""
    w = tables.get("who_pays")
    if w is None or w.empty or not exporters:
        return {}
    world = w.groupby("product")["exported_t"].sum()
    world = world[world > 1e-9]
    own = w[w["country"].isin(exporters)].groupby(["country", "product"])["exported_t"].sum()
    out: dict[str, float] = {}
    for e in exporters:
        for p, total in world.items():
            t = float(own.get((e, p), 0.0))
            out[f"exports of {p} from {e} (t)"] = t
            out[f"share of world {p} exports from {e}"] = t / float(total)
    return out


def transfers_by_party(tables: dict[str, pd.DataFrame]) -> dict[str, float]:
    """Each transfer over the horizon (undiscounted USD) by kind, payer and receiver."""
    t = tables.get("transfers")
    if t is None or t.empty:
        return {}
    by = t.groupby(["component", "payer", "receiver"], sort=False)["usd"].sum()
    return {f"transfer {k}: {a} to {b} (USD)": float(v) for (k, a, b), v in by.items()}


def _exporters(*runs: dict[str, pd.DataFrame]) -> list[str]:
    got: list[str] = []
    for t in runs:
        c = t.get("controls")
        if c is not None and not c.empty:
            got += list(c["exporter"])
    return list(dict.fromkeys(got))


def _pairs(a: dict[str, float], b: dict[str, float]) -> list[tuple]:
    return [(k, a.get(k, 0.0), b.get(k, 0.0), "", "") for k in dict.fromkeys(list(a) + list(b))]


def _unserved(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    s = tables["shortfall"]
    return s.set_index(["country", "product", "segment", "period"])[["unserved_t", "demand_t"]]


def versus(reference: dict[str, pd.DataFrame], scen: dict[str, pd.DataFrame], name: str = "base case"
           ) -> pd.DataFrame:
    """One row per figure: the reference run's value, the scenario's, the change (and
    `reference` naming the run compared with). The headline four first, then cost components by size of change,
    then unserved tonnes by country, product, segment and period wherever either run has
    some (every one, largest change first), each with its share of that period's demand,
    then who pays: each country's consumer spending, import bill, export revenue and
    producer revenue (undiscounted USD over the horizon) and its share of world export
    revenue, then the ledger of each country imposing an export control in either run (its
    exports and share of world exports per product), then transfers by payer and receiver."""
    b, s = headline(reference), headline(scen)
    head = [(k, b.get(k, 0.0), s.get(k, 0.0), "", "") for k in HEADLINE]
    comps = [(k, b.get(k, 0.0), s.get(k, 0.0), "", "") for k in dict.fromkeys(list(b) + list(s)) if k not in HEADLINE]
    money = _pairs(country_money(reference), country_money(scen))
    who = _exporters(reference, scen)
    coercer = _pairs(ledger(reference, who), ledger(scen, who))
    transfers = _pairs(transfers_by_party(reference), transfers_by_party(scen))
    ub, us = _unserved(reference), _unserved(scen)
    both = pd.concat([ub["unserved_t"].rename("ref"), us["unserved_t"].rename("scen")], axis=1).fillna(0.0)
    demand = us["demand_t"].combine_first(ub["demand_t"])
    short = [(f"unserved {p} in {c} ({seg}), {per} (t)", float(r["ref"]), float(r["scen"]),
              float(r["ref"] / demand[(c, p, seg, per)]), float(r["scen"] / demand[(c, p, seg, per)]))
             for (c, p, seg, per), r in both.iterrows()]
    cols = ["figure", "reference_value", "scenario_value", "reference_share_of_period_demand",
            "scenario_share_of_period_demand"]

    def by_change(rows: list) -> list:
        return sorted(rows, key=lambda r: (-abs(r[2] - r[1]), r[0]))
    out = pd.DataFrame(head + by_change(comps) + by_change(short) + by_change(money) + by_change(coercer)
                       + by_change(transfers), columns=cols)
    out["change"] = out["scenario_value"] - out["reference_value"]
    out.insert(0, "reference", name)
    for c in cols[3:]:
        out[c] = pd.to_numeric(out[c].replace("", float("nan")))
    return out[["reference", "figure", "reference_value", "scenario_value", "change"] + cols[3:]]


WATCHED_OXIDES = ("NdPr_ox", "Dy_ox", "Tb_ox")


def _by_period(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per period: unserved tonnes, penalty value, resource cost and transfers (PV USD)."""
    c = tables["costs"]
    money = c.pivot_table(index="period", columns="category", values="pv_usd", aggfunc="sum").reindex(
        columns=["resource", "transfer", "penalty"]).fillna(0.0)
    short = tables["shortfall"].groupby("period")["unserved_t"].sum()
    out = money.join(short.rename("unserved_t"), how="outer").fillna(0.0)
    order = tables["periods"].set_index("period")["start_year"] if "periods" in tables else None
    return out if order is None else out.reindex(order.sort_values().index).fillna(0.0)


def policy_value(reference: dict[str, pd.DataFrame], scen: dict[str, pd.DataFrame], name: str) -> pd.DataFrame:
    """What a scenario buys against `name` (the crisis it adds a reserve, floor, tariff,
    build or cap to), per period and over the horizon: avoided unserved tonnes and their
    penalty value, the change in resource cost and transfers (present value), and the
    resource cost per avoided tonne (blank where nothing is avoided)."""
    r, s = _by_period(reference), _by_period(scen)
    idx = r.index.union(s.index, sort=False)
    r, s = r.reindex(idx).fillna(0.0), s.reindex(idx).fillna(0.0)
    out = pd.DataFrame({"reference": name, "period": list(idx),
                        "avoided_unserved_t": (r["unserved_t"] - s["unserved_t"]).to_numpy(),
                        "avoided_penalty_value_pv_usd": (r["penalty"] - s["penalty"]).to_numpy(),
                        "resource_cost_change_pv_usd": (s["resource"] - r["resource"]).to_numpy(),
                        "transfers_change_pv_usd": (s["transfer"] - r["transfer"]).to_numpy()})
    total = out.drop(columns=["reference", "period"]).sum()
    out = pd.concat([out, pd.DataFrame([{"reference": name, "period": "horizon", **total}])], ignore_index=True)
    avoided = out["avoided_unserved_t"]
    out["resource_cost_per_avoided_t_usd"] = (out["resource_cost_change_pv_usd"] / avoided).where(avoided > 1e-9)
    return out


def price_changes(reference: dict[str, pd.DataFrame], scen: dict[str, pd.DataFrame], name: str) -> pd.DataFrame:
    """The prices planners watch (every demanded product where it is demanded, and NdPr,
    Dy and Tb oxide everywhere), per period, where the scenario moves them: both prices,
    the change and whether each is proven unique."""
    def watched(t: dict[str, pd.DataFrame]) -> pd.DataFrame:
        p = t["prices"]
        p = p[p["origin_class"].fillna("") == ""]
        zones = set(zip(t["demand"]["country"], t["demand"]["product"]))
        keep = [(c, q) in zones or q in WATCHED_OXIDES for c, q in zip(p["country"], p["product"])]
        return p[keep].set_index(["country", "product", "period"])[["price_usd_per_t", "price_unique"]]
    a, b = watched(reference), watched(scen)
    both = a.add_suffix("_ref").join(b.add_suffix("_scen"), how="outer")
    out = pd.DataFrame({"reference": name,
                        "reference_price_usd_per_t": both["price_usd_per_t_ref"],
                        "scenario_price_usd_per_t": both["price_usd_per_t_scen"],
                        "reference_price_unique": both["price_unique_ref"],
                        "scenario_price_unique": both["price_unique_scen"]})
    out["change_usd_per_t"] = out["scenario_price_usd_per_t"] - out["reference_price_usd_per_t"]
    out["change_share"] = out["change_usd_per_t"] / out["reference_price_usd_per_t"].abs().where(
        out["reference_price_usd_per_t"].abs() > 1e-9)
    moved = out["change_usd_per_t"].abs() > 1e-6 * out["reference_price_usd_per_t"].abs().clip(lower=1.0)
    out = out[moved].reset_index()
    return out.sort_values("change_usd_per_t", key=lambda v: -v.abs(), kind="mergesort").reset_index(drop=True)
