"""Who pays: money by country, product and period at the model's prices (reads tables only).

    consumer_spending_usd  = price at the country's node x tonnes served
    import_bill_usd        = destination price x tonnes imported (the landed value: at an
                             optimum a used lane's destination price is the origin price
                             plus freight and duty)
    export_revenue_usd     = origin price x tonnes exported (what the exporter is paid)
    producer_revenue_usd   = price x tonnes made (each recipe output at its maker's node)

Undiscounted USD of each period (tonnes in the period x USD/t). Prices are balance duals
divided by the period weight; where a price that multiplies a nonzero quantity is not
proven unique (`prices_unique` FALSE) the figure is one valid reading, not the only one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

OTHER = "other"  # the class of material not of the controller's origin (model.lp.origin.OTHER)

KEY = ["country", "product", "period"]
COLS = KEY + ["price_usd_per_t", "prices_unique", "served_t", "consumer_spending_usd", "imported_t",
              "import_bill_usd", "exported_t", "export_revenue_usd", "made_t", "producer_revenue_usd"]


def _price(prices: pd.DataFrame) -> pd.DataFrame:
    p = prices.assign(origin_class=prices["origin_class"].fillna("").astype(str))
    return p.set_index(KEY + ["origin_class"])[["price_usd_per_t", "price_unique"]]


def _at(prices: pd.DataFrame, keys: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Price and its uniqueness at each (country, product, period, origin_class) row."""
    idx = pd.MultiIndex.from_frame(keys[KEY + ["origin_class"]].astype(str))
    got = prices.reindex(idx)
    return got["price_usd_per_t"].to_numpy(float), got["price_unique"].fillna(False).to_numpy(bool)


def who_pays_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per country, product and period with any served demand, trade or output."""
    prices = tables.get("prices")
    if prices is None or prices.empty:
        return pd.DataFrame(columns=COLS)
    price = _price(prices)
    parts = []
    dem = tables["demand"]
    # A segment an end-use control denies draws from the `other` class node, at its price.
    denied = dem["denied_by"].fillna("") != "" if "denied_by" in dem.columns else pd.Series(False, index=dem.index)
    d = dem.assign(origin_class=np.where(denied.to_numpy(bool), "other", ""))
    per_len = tables["periods"].set_index("period")["duration_yr"]
    d["served_t"] = d["served_t_per_yr"] * d["period"].map(per_len).to_numpy(float)
    v, u = _at(price, d)
    d["consumer_spending_usd"], d["prices_unique"] = d["served_t"] * v, u | (d["served_t"].abs() <= 1e-12)
    parts.append(d[KEY + ["served_t", "consumer_spending_usd", "prices_unique"]])
    fl = tables.get("flows")
    if fl is not None and not fl.empty:
        f = fl[fl["from_country"] != fl["to_country"]].assign(origin_class=lambda x: x["origin_class"].fillna(""))
        into = f.rename(columns={"to_country": "country"})
        v, u = _at(price, into)
        parts.append(into.assign(imported_t=into["flow_t"], import_bill_usd=into["flow_t"] * v, prices_unique=u | (into["flow_t"].abs() <= 1e-12))[
            KEY + ["imported_t", "import_bill_usd", "prices_unique"]])
        out = f.rename(columns={"from_country": "country"})
        v, u = _at(price, out)
        parts.append(out.assign(exported_t=out["flow_t"], export_revenue_usd=out["flow_t"] * v, prices_unique=u | (out["flow_t"].abs() <= 1e-12))[
            KEY + ["exported_t", "export_revenue_usd", "prices_unique"]])
    made = _made(tables)
    if not made.empty:
        v, u = _at(price, made)
        parts.append(made.assign(producer_revenue_usd=made["made_t"] * v,
                                prices_unique=u | (made["made_t"].abs() <= 1e-12))[
            KEY + ["made_t", "producer_revenue_usd", "prices_unique"]])
    allp = pd.concat(parts, ignore_index=True)
    money = [c for c in COLS if c not in KEY + ["price_usd_per_t", "prices_unique"]]
    for c in money:
        allp[c] = allp[c].fillna(0.0) if c in allp else 0.0
    out = allp.groupby(KEY, sort=False).agg({**{c: "sum" for c in money}, "prices_unique": "all"}).reset_index()
    out = out[(out[money].abs() > 1e-9).any(axis=1)]
    base = pd.DataFrame({"origin_class": ""}, index=out.index)
    out["price_usd_per_t"], _ = _at(price, pd.concat([out[KEY], base], axis=1))
    return out[COLS].reset_index(drop=True)


def _made(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Tonnes of each product made per country and period (recipe outputs x activity),
    with the origin class its output enters where the product carries classes (the
    controller's class when made there or by a tainted process, else `other`)."""
    prod, chain = tables.get("production"), tables.get("chain")
    if prod is None or chain is None or prod.empty:
        return pd.DataFrame(columns=KEY + ["origin_class", "made_t"])
    outs = chain[chain["coefficient"] > 0][["process", "product", "coefficient"]]
    mode = prod["mode"].fillna("").astype(str) if "mode" in prod else pd.Series("", index=prod.index)
    m = prod[["country", "process", "period", "activity_t"]].assign(mode=mode).merge(outs, on="process")
    m["made_t"] = m["activity_t"] * m["coefficient"]
    cls = tables["prices"]["origin_class"].fillna("").astype(str)
    ctrl = tables["prices"].loc[~cls.isin(["", OTHER]), "product"].to_frame().assign(x=cls)
    controller = ctrl.drop_duplicates("product").set_index("product")["x"]
    x = m["product"].map(controller)
    m["origin_class"] = np.where(x.isna(), "", np.where((m["country"] == x) | (m["mode"] == "tainted"), x, OTHER))
    return m.groupby(KEY + ["origin_class"], as_index=False)["made_t"].sum()


TRANSFER_COLS = ["component", "payer", "receiver", "product", "period", "usd"]


def transfers_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Money that changes hands without using resources, by who pays and who receives
    (undiscounted USD per period): tariffs (the importing country's buyers to its
    government), price-floor payments (the floor's guarantor to the producers it covers;
    a floor's import duty the other way round), stockpile purchases (the holder to the
    sellers, at the model price) and the rent of a binding quota or licence (the buyers of
    the licensed exports to the controlling country's exporters)."""
    rows = []
    tar = tables.get("tariffs")
    if tar is not None and not tar.empty:
        t = tar.groupby(["importer", "product", "period"], as_index=False, sort=False)["revenue_usd"].sum()
        rows += [("tariff", f"buyers in {i}", f"government of {i}", p, per, u)
                 for i, p, per, u in zip(t["importer"], t["product"], t["period"], t["revenue_usd"])]
    floors = tables.get("price_floors")
    if floors is not None and not floors.empty:
        for r in floors[floors["payment_usd"].fillna(0.0) != 0].itertuples():
            guarantor, producers = f"guarantor of floor {r.floor}", f"producers under floor {r.floor}"
            payer, receiver = ((f"importers of {r.product}", guarantor) if r.mechanism == "floor_duty"
                               else (guarantor, producers))
            rows.append((f"floor_{r.mechanism}", payer, receiver, r.product, r.period, float(r.payment_usd)))
    stock = tables.get("stockpiles")
    if stock is not None and not stock.empty and "purchase_value_usd" in stock:
        s = stock[stock["purchase_value_usd"].fillna(0.0) != 0]
        rows += [("stock_purchases", f"stockpile {k} ({h})", "sellers", p, per, float(u))
                 for k, h, p, per, u in zip(s["stockpile"], s["holder"], s["product"], s["period"],
                                           s["purchase_value_usd"])]
    rows += _control_rents(tables)
    out = pd.DataFrame(rows, columns=TRANSFER_COLS)
    return out[out["usd"].abs() > 1e-9].reset_index(drop=True)


def _control_rents(tables: dict[str, pd.DataFrame]) -> list[tuple]:
    """A binding quota or licence makes its flows scarce: a licensed tonne is worth its
    shadow value (what one more tonne allowed would save) above its cost of supply. That
    rent is paid by the buyers of the licensed exports to whoever holds the licences, here
    the controlling country's exporters: shadow value x tonnes used x period length."""
    ctl, per = tables.get("controls"), tables.get("periods")
    if ctl is None or ctl.empty or per is None or "shadow_value_usd_per_t" not in ctl:
        return []
    c = ctl[ctl["kind"].isin(["quota", "licence"])]
    years = c["period"].map(per.set_index("period")["duration_yr"]).to_numpy(float)
    usd = c["shadow_value_usd_per_t"].to_numpy(float) * c["used_t_per_yr"].to_numpy(float) * years
    return [("control_rent", f"buyers of {e}'s exports under {k}", f"licensed exporters in {e}",
             p, t, float(u))
            for k, e, p, t, u in zip(c["control"], c["exporter"], c["products"], c["period"], usd) if np.isfinite(u)]


LEDGER_COLS = ["exporter", "product", "period", "exported_t", "world_exported_t", "world_tonnes_share",
               "export_revenue_usd", "world_export_revenue_usd", "world_revenue_share"]


def coercer_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The controlling country's ledger, for each country that imposes an export control
    in the run: per product it or anyone exports and per period, its exports (t and
    revenue at its own price) beside the world's, and its shares of both. Licence and
    quota rents are in the transfers table (component control_rent)."""
    ctl, w = tables.get("controls"), tables.get("who_pays")
    if ctl is None or ctl.empty or w is None or w.empty:
        return pd.DataFrame(columns=LEDGER_COLS)
    world = w.groupby(["product", "period"], sort=False)[["exported_t", "export_revenue_usd"]].sum()
    world = world[world["exported_t"] > 1e-9]
    parts = []
    for e in dict.fromkeys(ctl["exporter"]):
        own = w[w["country"] == e].set_index(["product", "period"])[["exported_t", "export_revenue_usd"]]
        g = world.join(own.add_suffix("_own")).fillna(0.0)
        parts.append(pd.DataFrame({
            "exporter": e, "product": g.index.get_level_values(0), "period": g.index.get_level_values(1),
            "exported_t": g["exported_t_own"].to_numpy(), "world_exported_t": g["exported_t"].to_numpy(),
            "export_revenue_usd": g["export_revenue_usd_own"].to_numpy(),
            "world_export_revenue_usd": g["export_revenue_usd"].to_numpy()}))
    out = pd.concat(parts, ignore_index=True)
    out["world_tonnes_share"] = out["exported_t"] / out["world_exported_t"]
    rev = out["world_export_revenue_usd"]
    out["world_revenue_share"] = (out["export_revenue_usd"] / rev).where(rev.abs() > 1e-9)
    return out[LEDGER_COLS]
