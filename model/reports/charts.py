"""The summary figures of a run, as data shared by the workbook, the HTML page and the
PNG charts for slides (drawn by model.reports.png). Reads result tables only."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

# the drawing's colours and scales, here too for the page's plotly charts (model.reports.html)
from model.reports.png import OTHER_COLOUR, PALETTE, TARGET, draw, money_scale, series_colours, step_xy  # noqa: F401
from model.reports.sheet import market_prices

# Process stages of the rare-earth chain, upstream first ('other' inputs such as
# iron-boron are not part of it).
CHAIN_STAGES = ("mining", "cracking", "separation", "reduction", "magnet", "recycling", "substitution")
MAX_PRICE_SERIES = 8
MAX_CONTENT_BARS = 15
MAX_SERIES = 12       # series per chart; the rest are summed into 'other'
MAX_SHORT_COUNTRIES = 20
CONTENT_NOTE = ("content share by proportional mixing through the chain; not the export "
                "control's taint rule")


@dataclass
class Figure:
    """One summary chart: a wide table (rows = categories, columns = series) and how to
    draw it. kind: bar (clustered), stacked, percent (100 % stacked), line."""

    name: str
    title: str
    data: pd.DataFrame
    kind: str
    value_label: str
    horizontal: bool = False
    log_scale: bool = False
    note: str = ""
    spans: dict[str, tuple[float, float]] | None = None  # period -> (start, end) year: a time axis


def period_spans(tables: dict[str, pd.DataFrame]) -> dict[str, tuple[float, float]]:
    """Each period's (start, end) in years, from the periods table."""
    per = tables.get("periods")
    if per is None or per.empty or not {"start_year", "duration_yr"} <= set(per.columns):
        return {}
    return {str(t): (float(a), float(a) + float(d)) for t, a, d in zip(per["period"], per["start_year"],
                                                                       per["duration_yr"])}


def top_columns(wide: pd.DataFrame, n: int = MAX_SERIES, by_abs: bool = True) -> pd.DataFrame:
    """The n largest columns (by total), the rest summed into 'other' (a chart stays
    readable however many countries or products a case has)."""
    if wide.shape[1] <= n:
        return wide
    total = (wide.abs() if by_abs else wide).sum().sort_values(ascending=False)
    keep = list(total.index[: n - 1])
    out = wide[keep].copy()
    out["other"] = wide.drop(columns=keep).sum(axis=1)
    return out


def period_order(tables: dict[str, pd.DataFrame]) -> list[str]:
    """Periods in model order: the periods table by start year, else first seen in demand,
    production, then prices."""
    per = tables.get("periods")
    if per is not None and {"period", "start_year"} <= set(per.columns) and not per.empty:
        return [str(t) for t in per.sort_values("start_year", kind="mergesort")["period"]]
    seen: dict[str, None] = {}
    for name in ("demand", "production", "prices", "stockpiles"):
        t = tables.get(name)
        if t is not None and "period" in t:
            seen.update(dict.fromkeys(t["period"].astype(str)))
    return list(seen)


def cost_breakdown(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Present value by component; resource costs, transfers and unserved demand kept
    apart (never summed). Calibration terms are left out: they make the base case meet
    observed outputs and are no one's cost (the summary's glossary says so)."""
    costs = tables.get("costs")
    if costs is not None:
        costs = costs[costs["category"] != "calibration"]
    if costs is None or costs.empty:
        return pd.DataFrame(columns=["pv_usd"])
    labels = {"resource": "resource", "transfer": "transfer", "penalty": "penalty value (unserved, missed targets)"}
    by = costs.groupby(["category", "component"], sort=False)["pv_usd"].sum().reset_index()
    by["rank"] = by["category"].map({"resource": 0, "transfer": 1, "penalty": 2}).fillna(3)
    by = by.sort_values(["rank"], kind="stable")
    by["item"] = [f"{labels.get(c, c)}: {k}" for c, k in zip(by["category"], by["component"])]
    return by.set_index("item")[["pv_usd"]]


def shortfall_by_country(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The share of each period's demand left unserved: rows period (in time order; only
    periods with a shortfall), columns country and product (the worst few), values the
    share of that country's demand for that product in the period."""
    short = tables.get("shortfall")
    if short is None or short.empty:
        return pd.DataFrame()
    s = short.groupby(["period", "country", "product"], as_index=False)[["unserved_t", "demand_t"]].sum()
    s["share"] = s["unserved_t"] / s["demand_t"]
    s["series"] = s["country"] + " " + s["product"]
    wide = s.pivot_table(index="period", columns="series", values="share", aggfunc="sum", fill_value=0.0)
    order = [p for p in period_order(tables) if p in wide.index]
    wide = wide.loc[order]
    keep = wide.max().sort_values(ascending=False).index[:MAX_SHORT_COUNTRIES]
    return wide[keep]


def production_shares(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Share of each chain stage's activity (t over the horizon) by country: rows stage in
    chain order, columns country."""
    chain = tables.get("chain")
    parts = [tables[n][["country", "process", "activity_t"]] for n in ("production", "expansion_capacity")
             if n in tables and not tables[n].empty]
    if chain is None or not parts:
        return pd.DataFrame()
    act = pd.concat(parts, ignore_index=True)
    stage = chain.drop_duplicates("process").set_index("process")["process_stage"]
    act["stage"] = act["process"].map(stage)
    act = act[act["stage"].isin(CHAIN_STAGES) & (act["activity_t"] > 1e-9)]
    if act.empty:
        return pd.DataFrame()
    wide = act.pivot_table(index="stage", columns="country", values="activity_t", aggfunc="sum", fill_value=0.0)
    wide = wide.loc[[s for s in CHAIN_STAGES if s in wide.index]]
    wide = top_columns(wide[wide.sum().sort_values(ascending=False).index])
    return wide.div(wide.sum(axis=1), axis=0)


def _mean_of_positive(p: pd.DataFrame) -> pd.Series:
    """Each (product, country)'s mean price, negative prices counted as 0 and NaN left out
    (Series.clip(lower=0).mean() per group, on numpy arrays: a pandas call per group cost
    more than the rest of key_prices)."""
    v = p["price_usd_per_t"].to_numpy(float)
    v = np.where(v < 0.0, 0.0, v)  # NaN stays NaN
    keys, means = [], []
    for k, i in p.groupby(["product", "country"]).indices.items():
        x = v[i]
        n = int((~np.isnan(x)).sum())
        keys.append(k)
        means.append(float(np.where(np.isnan(x), 0.0, x).sum() / n) if n else np.nan)
    index = pd.MultiIndex.from_tuples(keys, names=["product", "country"]) if keys else None
    return pd.Series(means, index=index, dtype=float)


def key_prices(tables: dict[str, pd.DataFrame], limit: int = MAX_PRICE_SERIES) -> pd.DataFrame:
    """Model prices of demanded products where they are demanded (origin pool): the
    `limit` series with the largest demand value (demand x mean positive price), so
    magnets and rationed markets come before glutted co-products.
    Columns: product, country, period, price_usd_per_t, tag."""
    prices, dem = tables.get("prices"), tables.get("demand")
    cols = ["product", "country", "period", "price_usd_per_t", "tag"]
    if prices is None or dem is None or prices.empty or dem.empty:
        return pd.DataFrame(columns=cols)
    p = market_prices(prices)
    vol = dem.groupby(["product", "country"], sort=False)["demand_t_per_yr"].sum()
    level = _mean_of_positive(p)
    value = (vol * level.reindex(vol.index).fillna(0.0)).where(lambda v: v > 0, vol * 1e-12)
    top = value.sort_values(ascending=False, kind="stable").head(limit).index
    p = p.set_index(["product", "country"]).loc[lambda d: d.index.isin(top)].reset_index()
    order = {t: i for i, t in enumerate(period_order(tables))}
    rank = {k: i for i, k in enumerate(top)}
    p = p.assign(_r=[rank[k] for k in zip(p["product"], p["country"])], _t=p["period"].map(order))
    return p.sort_values(["_r", "_t"])[cols].reset_index(drop=True)


def price_paths(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Wide price table: rows period, columns 'product, country'."""
    kp = key_prices(tables)
    if kp.empty:
        return pd.DataFrame()
    kp = kp.assign(series=kp["product"] + ", " + kp["country"])
    wide = kp.pivot_table(index="period", columns="series", values="price_usd_per_t", aggfunc="first",
                          sort=False)
    periods = [t for t in period_order(tables) if t in wide.index]
    return wide.loc[periods, list(dict.fromkeys(kp["series"]))]


def stockpile_levels(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """End-of-period level (t) by stockpile: rows period, columns stockpile."""
    sp = tables.get("stockpiles")
    if sp is None or sp.empty:
        return pd.DataFrame()
    wide = sp.pivot_table(index="period", columns="stockpile", values="level_t", aggfunc="sum", sort=False)
    return top_columns(wide.loc[[t for t in period_order(tables) if t in wide.index]])


def stockpile_cover(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Days of the holder's demand for the product each reserve covers at the end of each
    period, and its target in days (a column '<reserve> target'); reserves of products
    without final demand (a miner's concentrate stock) are left to the levels chart."""
    sp = tables.get("stockpiles")
    if sp is None or sp.empty or "days_of_cover" not in sp:
        return pd.DataFrame()
    sp = sp[np.isfinite(pd.to_numeric(sp["days_of_cover"], errors="coerce")) & (sp["final_demand_t_per_yr"] > 0)]
    if sp.empty:
        return pd.DataFrame()
    sp = sp.assign(series=sp["stockpile"] + " (" + sp["product"] + ")",
                   target_days=sp["target_t"] / sp["final_demand_t_per_yr"] * 365.0)
    days = sp.pivot_table(index="period", columns="series", values="days_of_cover", aggfunc="sum", sort=False)
    target = sp[sp["target_t"].fillna(0) > 0].pivot_table(index="period", columns="series", values="target_days",
                                                          aggfunc="sum", sort=False)
    wide = days.join(target.add_suffix(TARGET), how="left")
    order = [c for s in days.columns for c in (s, s + TARGET) if c in wide.columns]
    return wide.loc[[t for t in period_order(tables) if t in wide.index], order]


def content_chart_data(tables: dict[str, pd.DataFrame], basis: str = "mined_in") -> pd.DataFrame:
    """Content shares of the first period for the largest supplies of magnet-stage
    products (all final products if none): rows 'country product', columns origin."""
    cs = tables.get("content_shares")
    if cs is None or cs.empty:
        return pd.DataFrame()
    first = period_order(tables)[0] if period_order(tables) else cs["period"].iloc[0]
    sub = cs[(cs["basis"] == basis) & (cs["period"] == first)]
    chain = tables.get("chain")
    if chain is not None:
        magnets = set(chain.loc[chain["product_stage"] == "magnet", "product"])
        if sub["product"].isin(magnets).any():
            sub = sub[sub["product"].isin(magnets)]
    sub = sub.assign(row=sub["country"] + " " + sub["product"])  # the supply: country and product
    size = sub.groupby("row", sort=False)["supply_t_per_yr"].first().sort_values(ascending=False)
    sub = sub[sub["row"].isin(size.head(MAX_CONTENT_BARS).index)]
    wide = sub.pivot_table(index="row", columns="origin_country", values="content_share", aggfunc="sum",
                           fill_value=0.0, sort=False)
    wide.index.name = "supply (country, product)"
    return top_columns(wide[wide.sum().sort_values(ascending=False).index])


def positive(wide: pd.DataFrame) -> pd.DataFrame:
    """Values > 0 only (a log axis cannot show the rest)."""
    return wide.where(wide > 0) if not wide.empty else wide


def stockpile_figure(tables: dict[str, pd.DataFrame]) -> Figure:
    """Reserves in days of cover with their targets where the product has demand, else levels."""
    cover = stockpile_cover(tables)
    if not cover.empty:
        return Figure("stockpile_cover", "Stockpile cover: days of the holder's demand for the product, end of "
                      "period (dashed: the target)", cover, "line", "days of demand", spans=period_spans(tables) or None)
    return Figure("stockpile_levels", "Stockpile levels (t, end of period)", stockpile_levels(tables), "line", "t",
                  spans=period_spans(tables) or None)


def summary_figures(tables: dict[str, pd.DataFrame]) -> list[Figure]:
    """The summary charts that have data, in reading order."""
    return solve_figures(tables) + traced_figures(tables)


def solve_figures(tables: dict[str, pd.DataFrame]) -> list[Figure]:
    """The summary charts read from the solve's tables alone: all but the last (the content
    shares, which are traced from them)."""
    figs = [
        Figure("cost_breakdown", "Cost by component (present value; resource, transfers and unserved "
               "demand shown apart, never summed; calibration terms are not costs and not shown)", cost_breakdown(tables), "bar", "USD (present value)",
               horizontal=True),
        Figure("shortfall_by_country", "Share of each period's demand left unserved, by country and product",
               shortfall_by_country(tables), "bar", "share of the period's demand"),
        Figure("production_shares", "Production by chain stage: share of each country",
               production_shares(tables), "percent", "share of stage activity", horizontal=True),
        Figure("price_paths", "Model prices of the most demanded products (USD/t, log scale)",
               positive(price_paths(tables)), "line", "USD/t", log_scale=True,
               note="Balance duals / period weight; prices at a shortfall penalty mark rationing; "
                    "zero or negative prices (gluts) are left out of the log scale (see the prices sheet).",
               spans=period_spans(tables) or None),
        stockpile_figure(tables),
    ]
    return _with_data(figs)


def traced_figures(tables: dict[str, pd.DataFrame]) -> list[Figure]:
    """The last summary chart: where supply was mined (the content_shares table)."""
    periods = period_order(tables)
    first = periods[0] if periods else ""
    return _with_data([Figure("content_shares", f"Where supply was mined, {first}: content share (not the taint rule)",
                              content_chart_data(tables), "percent", "content share", horizontal=True,
                              note=CONTENT_NOTE)])


def _with_data(figs: list[Figure]) -> list[Figure]:
    return [f for f in figs if not f.data.empty and np.isfinite(f.data.to_numpy(float)).any()]


def png_chart(fig: Figure) -> dict:
    """A figure as model.reports.png's plain chart data (labels as text, values as floats)."""
    return {"name": fig.name, "title": fig.title, "kind": fig.kind, "value_label": fig.value_label,
            "horizontal": fig.horizontal, "log_scale": fig.log_scale, "note": fig.note, "spans": fig.spans,
            "index": [str(i) for i in fig.data.index], "index_name": str(fig.data.index.name or ""),
            "columns": [str(c) for c in fig.data.columns], "values": fig.data.to_numpy(float)}


def draw_png(fig: Figure, path: Path | IO[bytes]) -> Path | IO[bytes]:
    """One figure as a PNG (a file, or a binary stream), drawn with matplotlib's Agg
    canvas (no display needed)."""
    return draw(png_chart(fig), path)


def write_pngs(tables: dict[str, pd.DataFrame], folder: Path, figs: list[Figure] | None = None) -> list[Path]:
    """Every summary figure (figs: the ones already made from `tables`) as folder/<name>.png."""
    folder.mkdir(parents=True, exist_ok=True)
    return [draw_png(fig, folder / f"{fig.name}.png") for fig in (summary_figures(tables) if figs is None else figs)]
