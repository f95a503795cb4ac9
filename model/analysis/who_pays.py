"""Who pays: money by country, product and period at the model's prices (reads tables only).

    consumer_spending_usd  = price at the country's node x tonnes served
    import_bill_usd        = destination price x tonnes imported (the landed value: at an
                             optimum a used lane's destination price is the origin price
                             plus freight and duty)
    export_revenue_usd     = origin price x tonnes exported (what the exporter is paid)
    producer_revenue_usd   = price x tonnes made (each recipe output at its maker's node)

Undiscounted USD of each period (tonnes in the period x USD/t). Prices are balance duals
divided by the period weight; where a price is not proven unique (`prices_unique` FALSE)
the figure is one valid reading, not the only one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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
    d = dem.assign(origin_class="")
    per_len = tables["periods"].set_index("period")["duration_yr"]
    d["served_t"] = d["served_t_per_yr"] * d["period"].map(per_len).to_numpy(float)
    v, u = _at(price, d)
    d["consumer_spending_usd"], d["prices_unique"] = d["served_t"] * v, u
    parts.append(d[KEY + ["served_t", "consumer_spending_usd", "prices_unique"]])
    fl = tables.get("flows")
    if fl is not None and not fl.empty:
        f = fl[fl["from_country"] != fl["to_country"]].assign(origin_class=lambda x: x["origin_class"].fillna(""))
        into = f.rename(columns={"to_country": "country"})
        v, u = _at(price, into)
        parts.append(into.assign(imported_t=into["flow_t"], import_bill_usd=into["flow_t"] * v, prices_unique=u)[
            KEY + ["imported_t", "import_bill_usd", "prices_unique"]])
        out = f.rename(columns={"from_country": "country"})
        v, u = _at(price, out)
        parts.append(out.assign(exported_t=out["flow_t"], export_revenue_usd=out["flow_t"] * v, prices_unique=u)[
            KEY + ["exported_t", "export_revenue_usd", "prices_unique"]])
    made = _made(tables)
    if not made.empty:
        v, u = _at(price, made)
        parts.append(made.assign(producer_revenue_usd=made["made_t"] * v, prices_unique=u)[
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
    """Tonnes of each product made per country and period (recipe outputs x activity)."""
    prod, chain = tables.get("production"), tables.get("chain")
    if prod is None or chain is None or prod.empty:
        return pd.DataFrame(columns=KEY + ["origin_class", "made_t"])
    outs = chain[chain["coefficient"] > 0][["process", "product", "coefficient"]]
    m = prod[["country", "process", "period", "activity_t"]].merge(outs, on="process")
    m["made_t"] = m["activity_t"] * m["coefficient"]
    m = m.groupby(KEY, as_index=False)["made_t"].sum()
    return m.assign(origin_class="")


TRANSFER_COLS = ["component", "payer", "receiver", "product", "period", "usd"]


def transfers_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Money that changes hands without using resources, by who pays and who receives
    (undiscounted USD per period): tariffs (the importing country's buyers to its
    government), price-floor payments (the floor's guarantor to the producers it covers;
    a floor's import duty the other way round), stockpile purchases (the holder to the
    sellers, at the model price)."""
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
    out = pd.DataFrame(rows, columns=TRANSFER_COLS)
    return out[out["usd"].abs() > 1e-9].reset_index(drop=True)
