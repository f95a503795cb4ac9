"""The summary figures of a run, as data (shared by the workbook, the HTML page and the
PNGs) and as PNG charts (matplotlib's Agg canvas) for slides. Reads result tables only."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

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


# Distinct colours for up to 20 series (Tableau 10, then its lighter pairs); 'other' is grey.
PALETTE = ["#4E79A7", "#F28E2B", "#E15759", "#76B7B2", "#59A14F", "#EDC948", "#B07AA1", "#FF9DA7",
           "#9C755F", "#BAB0AC", "#1F3A5F", "#A0CBE8", "#FFBE7D", "#8CD17D", "#B6992D", "#F1CE63",
           "#499894", "#86BCB6", "#D37295", "#FABFD2"]
OTHER_COLOUR = "#9E9E9E"


def series_colours(columns: list[str]) -> list[str]:
    """One colour per series, none repeated up to len(PALETTE) series; 'other' grey."""
    out, k = [], 0
    for c in columns:
        if str(c) == "other":
            out.append(OTHER_COLOUR)
        else:
            out.append(PALETTE[k % len(PALETTE)])
            k += 1
    return out


def period_spans(tables: dict[str, pd.DataFrame]) -> dict[str, tuple[float, float]]:
    """Each period's (start, end) in years, from the periods table."""
    per = tables.get("periods")
    if per is None or per.empty or not {"start_year", "duration_yr"} <= set(per.columns):
        return {}
    return {str(t): (float(a), float(a) + float(d)) for t, a, d in zip(per["period"], per["start_year"],
                                                                       per["duration_yr"])}


def step_xy(spans: dict[str, tuple[float, float]], periods: list[str], values: list[float]
            ) -> tuple[list[float], list[float]]:
    """A step line: each value held across its period, as wide as the period lasts."""
    x, y = [], []
    for t, v in zip(periods, values):
        a, b = spans[t]
        x += [a, b]
        y += [v, v]
    return x, y


def money_scale(values: np.ndarray, label: str) -> tuple[float, str]:
    """(divisor, axis label): USD shown in M or bn, never with a '1e11' offset."""
    if "USD" not in label:
        return 1.0, label
    top = float(np.nanmax(np.abs(values))) if values.size and np.isfinite(values).any() else 0.0
    if top >= 1e9:
        return 1e9, label.replace("USD", "bn USD", 1)
    if top >= 1e6:
        return 1e6, label.replace("USD", "M USD", 1)
    return 1.0, label


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


TARGET = " target"  # suffix of a target series (drawn dashed in its stockpile's colour)


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
    periods = period_order(tables)
    first = periods[0] if periods else ""
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
        Figure("content_shares", f"Where supply was mined, {first}: content share (not the taint rule)",
               content_chart_data(tables), "percent", "content share", horizontal=True, note=CONTENT_NOTE),
    ]
    return [f for f in figs if not f.data.empty and np.isfinite(f.data.to_numpy(float)).any()]


PNG_WIDTH_IN, PNG_DPI = 10, 120  # 1200 pixels wide: a slide's width
PNG_COMPRESSION = 1  # zlib level: level 6 (the default) spends more time for files a tenth smaller


def png_figure(height: float):
    """A bare Agg figure: no pyplot (no figure manager, no backend switch for the caller)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure
    f = MplFigure(figsize=(PNG_WIDTH_IN, height), dpi=PNG_DPI)
    FigureCanvasAgg(f)
    return f


def _plot_bars(ax, data: pd.DataFrame, fig: Figure, colours: list[str]) -> None:
    """Bars at 0..n-1 with each category's name: a 'bar' figure draws its first column
    (width 0.5), the stacked kinds every column (width 0.8; negative parts below zero)."""
    n = len(data)
    pos = np.arange(n)
    stacked = fig.kind != "bar"
    width = 0.8 if stacked else 0.5
    series = list(zip(data.columns, colours)) if stacked else [(data.columns[0], PALETTE[0])]
    up, down = np.zeros(n), np.zeros(n)
    bar = ax.barh if fig.horizontal else ax.bar
    for col, colour in series:
        y = data[col].to_numpy(float)
        base = np.where(y >= 0, up, down) if stacked else 0.0
        bar(pos, y, width, base, color=colour, label=str(col))
        up, down = up + np.where(y >= 0, y, 0.0), down + np.where(y >= 0, 0.0, y)
    edge = 0.25 + width / 2
    cats, name = [str(i) for i in data.index], str(data.index.name or "")
    if fig.horizontal:
        ax.set_ylim(-edge, n - 1 + edge)
        ax.set_yticks(pos, cats)
        ax.set_ylabel(name)
    else:
        ax.set_xlim(-edge, n - 1 + edge)
        ax.set_xticks(pos, cats, rotation=90)
        ax.set_xlabel(name)


def _plot_lines(ax, data: pd.DataFrame, fig: Figure, colours: list[str]) -> None:
    """Lines: on a time axis of years, each value held across its period, where the
    figure has the periods' spans; else one point per category, joined."""
    cats = [str(t) for t in data.index]
    timed = fig.spans and all(t in fig.spans for t in cats)
    for col, colour in zip(data.columns, colours):
        if timed:
            x, y = step_xy(fig.spans, cats, list(data[col]))
            ax.plot(x, y, color=colour, label=str(col), linewidth=1.8,
                    linestyle="--" if str(col).endswith(TARGET) else "-")
        else:
            ax.plot(np.arange(len(cats)), data[col].to_numpy(float), marker="o", color=colour, label=str(col))
    if fig.log_scale and bool((data > 0).any().any()):
        ax.set_yscale("log")
    elif timed and bool((data.fillna(0.0) >= 0).all().all()):
        ax.set_ylim(bottom=0)  # levels and days from zero: a cut axis exaggerates
    if timed:
        ax.set_xlabel("year (each value spans its period)")
    else:
        ax.set_xticks(np.arange(len(cats)), cats)
        ax.set_xlabel(str(data.index.name or ""))


def draw_png(fig: Figure, path: Path) -> Path:
    """One figure as a PNG, drawn with matplotlib's Agg canvas (no display needed)."""
    import textwrap
    data = fig.data.fillna(0.0) if fig.kind != "line" else fig.data
    scale, label = money_scale(data.to_numpy(float), fig.value_label)
    data = data / scale
    base_cols = [str(c) for c in data.columns if not str(c).endswith(TARGET)]
    colour_of = dict(zip(base_cols, series_colours(base_cols)))
    colours = [colour_of.get(str(c)[: -len(TARGET)] if str(c).endswith(TARGET) else str(c), OTHER_COLOUR)
               for c in data.columns]
    f = png_figure(4.5 if not fig.horizontal else max(3.0, 0.35 * len(data) + 1.8))
    ax = f.add_subplot()
    (_plot_lines if fig.kind == "line" else _plot_bars)(ax, data, fig, colours)
    ax.set_title(textwrap.fill(fig.title, 80), fontsize=10)
    (ax.set_xlabel if fig.horizontal else ax.set_ylabel)(label)
    if fig.kind == "percent":
        ax.set_xlim(0, 1) if fig.horizontal else ax.set_ylim(0, 1)
    if fig.horizontal:
        ax.invert_yaxis()
    if data.shape[1] > 1 or fig.kind != "bar":
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    if fig.note:
        f.text(0.01, 0.01, fig.note, fontsize=7, color="#555555")
    f.tight_layout()
    f.set_layout_engine(None)  # laid out: left in place, savefig would lay it out again in a dry-run draw
    f.savefig(path, pil_kwargs={"compress_level": PNG_COMPRESSION})
    return path


def write_pngs(tables: dict[str, pd.DataFrame], folder: Path, figs: list[Figure] | None = None) -> list[Path]:
    """Every summary figure as folder/<name>.png."""
    folder.mkdir(parents=True, exist_ok=True)
    return [draw_png(fig, folder / f"{fig.name}.png") for fig in (figs or summary_figures(tables))]
