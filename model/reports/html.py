"""report.html: one self-contained page (plotly.js inline, nothing fetched from the
network): a Sankey of the chain by country for a chosen period, the summary charts and
the headline tables. Reads result tables only."""

from __future__ import annotations

import functools
import html
import importlib.util
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from model.analysis.tracing import TOL, Tracer
from model.reports.briefing import WATCHED
from model.reports.charts import (
    CONTENT_NOTE,
    OTHER_COLOUR,
    TARGET,
    Figure,
    money_scale,
    period_order,
    series_colours,
    summary_figures,
)
from model.reports.sheet import market_prices

if TYPE_CHECKING:
    import plotly.graph_objects as go

# Sankey columns: (process stage whose country labels the material, column name).
SANKEY_STAGES = (("mining", "mine"), ("separation", "separation"), ("reduction", "metal"), ("magnet", "magnet"))
USE = "use"
MAX_TABLE_ROWS = 60


@dataclass
class Sankey:
    """Nodes 'column: country' and links (source, target, t REO content per year)."""

    period: str
    nodes: list[str]
    links: pd.DataFrame  # source, target (node positions), value_t_per_yr


def _inputs_by_stage(pf, chain: pd.DataFrame) -> pd.DataFrame:
    """Rare-earth inputs of each process stage by country: country, stage, product, w
    (t REO content per year)."""
    lines = pf.made.merge(chain, on="process")
    lines = lines[(lines["coefficient"] < 0) & (lines["re_content_t_per_t"] > 0)]
    w = -lines["activity_t_per_yr"] * lines["coefficient"] * lines["re_content_t_per_t"]
    return lines.assign(w=w).groupby(["country", "process_stage", "product"], as_index=False)["w"].sum()


def sankey_data(tables: dict[str, pd.DataFrame], period: str, tracer: Tracer | None = None) -> Sankey:
    """Links between consecutive columns mine -> separation -> metal -> magnet -> use
    (columns of stages that did not run in the period are skipped): what the downstream
    stage in country b consumed (t rare-earth content per year) that last passed the
    upstream stage in country a (proportional mixing, model.analysis.tracing). The use column is
    magnets served to demand in each country. Material from stockpiles or with no
    upstream step is not drawn. tracer: one made on the same tables (shares its traces)."""
    chain = tables["chain"]
    tracer = tracer or Tracer(tables)
    pf = tracer.flows(period)
    used = _inputs_by_stage(pf, chain)
    links: list[tuple[str, str, float]] = []
    # Columns of stages that ran in the period (a chain without metal-making links
    # separation straight to magnets).
    ran = set(pf.made["process"].map(chain.drop_duplicates("process").set_index("process")["process_stage"]))
    stages = [s for s in SANKEY_STAGES if s[0] in ran]
    for (up, up_name), (down, down_name) in zip(stages, stages[1:]):
        shares, _ = tracer.trace(period, up)
        feed = used[used["process_stage"] == down]
        links += _links(feed, shares, up_name, down_name)
    magnets = set(chain.loc[(chain["process_stage"] == "magnet") & (chain["coefficient"] > 0), "product"])
    dem = tables.get("demand")
    if dem is not None and magnets and "magnet" in ran:
        served = dem[(dem["period"] == period) & dem["product"].isin(magnets)]
        content = chain.drop_duplicates("product").set_index("product")["re_content_t_per_t"]
        served = served.assign(w=served["served_t_per_yr"] * served["product"].map(content).fillna(0.0))
        served = served.groupby(["country", "product"], as_index=False)["w"].sum()
        shares, _ = tracer.trace(period, "magnet")
        links += _links(served, shares, "magnet", USE)
    frame = pd.DataFrame(links, columns=["source_name", "target_name", "value_t_per_yr"])
    frame = frame.groupby(["source_name", "target_name"], as_index=False, sort=False)["value_t_per_yr"].sum()
    frame = frame[frame["value_t_per_yr"] > 1e-6]
    order = [name for _, name in SANKEY_STAGES] + [USE]
    names = sorted(set(frame["source_name"]) | set(frame["target_name"]),
                   key=lambda n: (order.index(n.split(": ")[0]), n))
    pos = {n: i for i, n in enumerate(names)}
    frame = frame.assign(source=frame["source_name"].map(pos), target=frame["target_name"].map(pos))
    return Sankey(period, names, frame.reset_index(drop=True))


def _links(feed: pd.DataFrame, shares: pd.DataFrame, up: str, down: str) -> list[tuple[str, str, float]]:
    """feed: country, product, w; shares: (country, product) x label."""
    out = []
    if feed.empty or shares.empty:
        return out
    idx = pd.MultiIndex.from_frame(feed[["country", "product"]])
    mix = shares.reindex(idx).fillna(0.0)
    for label in mix.columns:
        if label.startswith("(") or label == "stockpile":
            continue
        vals = mix[label].to_numpy(float) * feed["w"].to_numpy(float)
        for b, v in zip(feed["country"], vals):
            if v > TOL:
                out.append((f"{up}: {label}", f"{down}: {b}", float(v)))
    return out


# -- plotly figures ---------------------------------------------------------------

def worst_period(tables: dict[str, pd.DataFrame]) -> str | None:
    """The period of the worst shortfall (its share of that period's demand), if any."""
    short = tables.get("shortfall")
    return None if short is None or short.empty else str(short.iloc[0]["period"])


def sankey_spec(tables: dict[str, pd.DataFrame], tracer: Tracer | None = None) -> dict | None:
    """One Sankey trace per period and a menu to choose the period; it opens on the worst
    period of shortfall (the crisis), else on the first. A plain figure (PLAIN_FIGURES)."""
    tracer = tracer or Tracer(tables)
    periods = [t for t in period_order(tables) if t in set(tables["production"]["period"])]
    kept, data = [], []
    for t in periods:
        s = sankey_data(tables, t, tracer)
        if not s.links.empty:
            kept.append(t)
            data.append(s)
    if not kept:
        return None
    start = kept.index(worst_period(tables)) if worst_period(tables) in kept else 0
    traces = [{"type": "sankey", "name": t, "visible": i == start, "valueformat": ",.0f", "valuesuffix": " t/yr",
               "node": {"label": s.nodes, "pad": 14, "thickness": 16},
               "link": {"source": s.links["source"].tolist(), "target": s.links["target"].tolist(),
                        "value": s.links["value_t_per_yr"].round(3).tolist()}}
              for i, (t, s) in enumerate(zip(kept, data))]
    buttons = [{"args": [{"visible": [j == i for j in range(len(kept))]}, {"title.text": _sankey_title(t)}],
                "label": t, "method": "update"} for i, t in enumerate(kept)]
    layout = {"title": {"text": _sankey_title(kept[start])}, "height": 560, "font": {"size": 11}}
    if len(kept) > 1:  # (keys by name, as plotly writes a menu)
        layout["updatemenus"] = [{"active": start, "buttons": buttons, "direction": "down", "showactive": True,
                                  "x": 1.0, "xanchor": "right", "y": 1.12, "yanchor": "top"}]
    return {"data": traces, "layout": layout}


def sankey_figure(tables: dict[str, pd.DataFrame], tracer: Tracer | None = None) -> "go.Figure | None":
    """sankey_spec as a plotly Figure."""
    return as_plotly(sankey_spec(tables, tracer))


HEAVY_PRICE_SERIES = WATCHED[:3]  # the briefing's watched oxides: NdPr, Dy, Tb
HEAVY_PRICE_ZONES = [("CHN", "China"), ("EUR", "EU"), ("USA", "US"), ("JPN", "Japan")]


def heavy_price_spec(tables: dict[str, pd.DataFrame]) -> dict | None:
    """NdPr, Dy and Tb oxide prices by period in China and the main importers (USD/kg, log
    axis): where heavy rare earths are at issue, the gap between China and the rest is the
    story. A plain figure (PLAIN_FIGURES)."""
    p = tables.get("prices")
    if p is None or p.empty:
        return None
    p = market_prices(p)  # each country's use pool, or its class price where the pool is unused
    periods = period_order(tables)
    dash = {"CHN": "solid", "EUR": "dash", "USA": "dot", "JPN": "dashdot"}
    traces = []
    for prod, pname in HEAVY_PRICE_SERIES:
        for zone, zname in HEAVY_PRICE_ZONES:
            q = p[(p["product"] == prod) & (p["country"] == zone)].set_index("period")["price_usd_per_t"]
            if q.empty:
                continue
            traces.append({"type": "scatter", "x": periods,
                           "y": [float(q.get(t, float("nan"))) / 1000.0 for t in periods],
                           "name": f"{pname}, {zname}", "mode": "lines+markers", "line": {"dash": dash[zone]},
                           "legendgroup": prod})
    if not traces:
        return None
    return {"data": traces, "layout": {
        "title": {"text": "Oxide prices by period: China against the EU, US and Japan (USD/kg)"},
        "yaxis": {"type": "log", "title": {"text": "USD/kg"}}, "xaxis": {"type": "category"}, "height": 460,
        "font": {"size": 11}}}


def heavy_price_figure(tables: dict[str, pd.DataFrame]) -> "go.Figure | None":
    """heavy_price_spec as a plotly Figure."""
    return as_plotly(heavy_price_spec(tables))


def _sankey_title(period: str) -> str:
    return (f"The chain by country, {period}: t rare-earth content per year "
            "(mine -> separation -> metal -> magnet -> use)")


def figure_spec(fig: Figure) -> dict:
    """A summary Figure for the page: the PNGs' colours and money scale; a line over
    periods on a time axis of years where each value spans its period. A plain figure
    (PLAIN_FIGURES)."""
    data = fig.data
    scale, label = money_scale(data.to_numpy(float), fig.value_label)
    data = data / scale
    base_cols = [str(c) for c in data.columns if not str(c).endswith(TARGET)]
    colour_of = dict(zip(base_cols, series_colours(base_cols)))
    traces = []
    cats = [str(i) for i in data.index]
    timed = fig.kind == "line" and fig.spans and all(c in fig.spans for c in cats)
    for col in data.columns:
        vals = [None if pd.isna(v) else float(v) for v in data[col]]
        name = str(col)
        colour = colour_of.get(name[: -len(TARGET)] if name.endswith(TARGET) else name, OTHER_COLOUR)
        if timed:  # held across each period: x at the period starts, the last end closing the step
            x = [fig.spans[c][0] for c in cats] + [fig.spans[cats[-1]][1]]
            traces.append({"type": "scatter", "x": x, "y": vals + vals[-1:], "mode": "lines", "name": name,
                           "line": {"color": colour, "dash": "dash" if name.endswith(TARGET) else "solid",
                                    "shape": "hv"}})
        elif fig.kind == "line":
            traces.append({"type": "scatter", "x": cats, "y": vals, "mode": "lines+markers", "name": name,
                           "line": {"color": colour}})
        elif fig.horizontal:
            traces.append({"type": "bar", "y": cats, "x": vals, "name": name, "orientation": "h",
                           "marker": {"color": colour}})
        else:
            traces.append({"type": "bar", "x": cats, "y": vals, "name": name, "marker": {"color": colour}})
    layout = {"title": {"text": fig.title}, "barmode": "stack" if fig.kind in ("stacked", "percent") else "group",
              "height": 420 if not fig.horizontal else max(320, 26 * len(data) + 160),
              "showlegend": data.shape[1] > 1, "margin": {"l": 220 if fig.horizontal else 60}}
    axis = {"title": {"text": label}}
    if fig.log_scale:
        axis["type"] = "log"
    if fig.kind == "percent":
        axis["tickformat"] = ".0%"
    # period codes such as 2025-04 or 2026 are categories, never dates plotly should guess
    if fig.horizontal:
        layout["xaxis"] = axis
        layout["yaxis"] = {"autorange": "reversed", "type": "category"}
    else:
        layout["yaxis"] = axis
        layout["xaxis"] = {"type": "category"}
    if timed:
        layout["xaxis"] = {"title": {"text": "year (each value spans its period)"}, "dtick": 1}
    return {"data": traces, "layout": layout}


def plotly_figure(fig: Figure) -> "go.Figure":
    """figure_spec as a plotly Figure."""
    return as_plotly(figure_spec(fig))


# -- plain figures ----------------------------------------------------------------
# PLAIN_FIGURES: the page's figures are dicts of what plotly.js reads ({"data": traces,
# "layout": layout}) written into the page the way plotly's to_html writes a Figure (its
# markup, its default "plotly" template, plotly.js inlined once from the plotly package's
# own file), without plotly's Python Figure objects: importing and validating those was
# 0.2 s of a teaching-case run. as_plotly() makes the Figure of one (tests check the two
# agree). The template is plotly's default one whatever plotly.io.templates.default says.

PAGE_CONFIG = {"displaylogo": False, "responsive": True}
# what plotly's JSON writer escapes in a page: markup and the line separators JavaScript refuses
_JSON_SWAPS = (("<", "\\u003c"), (">", "\\u003e"), ("/", "\\u002f"), ("\u2028", "\\u2028"),
               ("\u2029", "\\u2029"))


def as_plotly(spec: dict | None) -> "go.Figure | None":
    """A plain figure as a plotly Figure (validated by plotly), None for None."""
    if spec is None:
        return None
    import plotly.graph_objects as go
    return go.Figure(spec)


def _plotly_file(name: str) -> Path:
    """A file of the plotly package's data, found without importing plotly."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:
        raise ImportError("report.html needs plotly (pip install plotly)")
    return Path(spec.origin).parent / "package_data" / name


@functools.cache
def plotly_template() -> dict:
    """plotly's default template as a Figure's layout holds it (its data, then its layout)."""
    raw = json.loads(_plotly_file("templates/plotly.json").read_text(encoding="utf-8"))
    return {"data": raw["data"], "layout": raw["layout"]}


def _finite(value):
    """NaN and infinities as null, as plotly writes them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _json(value) -> str:
    out = json.dumps(_finite(value), separators=(",", ":"), ensure_ascii=False)
    for unsafe, safe in _JSON_SWAPS:
        out = out.replace(unsafe, safe)
    return out


def _ordered_layout(layout: dict) -> dict:
    """The layout in the order plotly writes it: the template, the object-valued
    properties, then the others (each in the order given)."""
    out = {"template": plotly_template()}
    out.update((k, v) for k, v in layout.items() if isinstance(v, dict))
    out.update((k, v) for k, v in layout.items() if not isinstance(v, dict))
    return out


def _ordered_trace(trace: dict) -> dict:
    """A trace in the order plotly writes it: its properties by name, its type last."""
    return {**{k: trace[k] for k in sorted(trace) if k != "type"}, "type": trace["type"]}


def plotly_div(spec: dict, div_id: str, with_plotlyjs: bool, config: dict = PAGE_CONFIG) -> str:
    """The figure's <div>, as plotly's to_html(full_html=False) writes it (plotly.js
    inlined when with_plotlyjs)."""
    height = spec["layout"].get("height")
    load = ("        <script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>\n        <script>"
            + _plotly_file("plotly.min.js").read_text(encoding="utf-8") + "</script>    ") if with_plotlyjs else ""
    script = (f'                if (document.getElementById("{div_id}")) {{'
              f'                    Plotly.newPlot('
              f'                        "{div_id}",'
              f'                        {_json([_ordered_trace(t) for t in spec["data"]])},'
              f'                        {_json(_ordered_layout(spec["layout"]))},'
              f'                        {json.dumps(config)}'
              f'                    )'
              f'                }}')
    return (f'<div style="height:{"100%" if height is None else f"{height}px"}; width:100%;">'
            f'                {load}'
            f'            <div id="{div_id}" class="plotly-graph-div" style="height:100%; width:100%;"></div>'
            f'            <script>'
            f'                window.PLOTLYENV=window.PLOTLYENV || {{}};'
            f'                {script};'
            f'            </script>'
            f'        </div>')


# -- page ---------------------------------------------------------------------

def _fmt(v, col: str) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return ""
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        if col.endswith("share"):
            return f"{float(v):.1%}"
        return f"{float(v):,.0f}" if abs(float(v)) >= 100 else f"{float(v):,.2f}"
    return html.escape(str(v))


def _cell(v, col: str) -> str:
    """Numbers right-aligned, text left (class t)."""
    number = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
    return f"<td>{_fmt(v, col)}</td>" if number else f"<td class='t'>{_fmt(v, col)}</td>"


def table_html(df: pd.DataFrame, limit: int = MAX_TABLE_ROWS) -> str:
    """A plain HTML table (text escaped), the first `limit` rows."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(_cell(v, str(c)) for c, v in zip(df.columns, row)) + "</tr>"
                   for row in df.head(limit).itertuples(index=False))
    more = f"<p class='note'>{len(df) - limit} more rows in the workbook.</p>" if len(df) > limit else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def targets_html(tables: dict[str, pd.DataFrame]) -> str:
    """Benchmarks (share made in the bloc, gap and the price of one more point, by period),
    end-use denials (denied demand served and unserved by period, and whose material
    serves it) and scrap (collected, recycled and disposed by period), where the run has
    them."""
    out = ""
    b = tables.get("benchmarks")
    if b is not None and not b.empty:
        cols = ["benchmark", "bloc", "stage", "period", "min_share", "consumption_t_per_yr", "output_t_per_yr",
                "gap_t_per_yr", "share_made_in_bloc", "cost_of_one_more_point_usd_pv"]
        out += ("<h2>Benchmarks: made inside the bloc, and what one more point costs</h2><p class='note'>t REO "
                "per year; a point is 1 % of the period's consumption; its cost is measured by moving the "
                "requirement and re-solving (present value, USD). Where a gap remains, the point costs the gap's "
                "price: the benchmark cannot be met that period.</p>" + table_html(b[cols]))
    e = tables.get("end_use")
    if e is not None and not e.empty:
        cols = ["control", "country", "product", "segment", "period", "demand_t_per_yr", "served_t_per_yr",
                "unserved_share"]
        out += ("<h2>End-use denials: the denied segments</h2><p class='note'>Demand the control denies material "
                "of the controller's origin; the share is of that period's demand.</p>" + table_html(e[cols]))
        sup = tables.get("end_use_supply")
        if sup is not None and not sup.empty:
            by = sup.groupby(["control", "product", "supplier"], as_index=False, sort=False)["serves_denied_t"].sum()
            by = by.sort_values(["control", "product", "serves_denied_t"], ascending=[True, True, False])
            out += ("<h3>Whose material serves them (t over the horizon, pro rata at each node)</h3>"
                    + table_html(by))
    sc = tables.get("scrap")
    if sc is not None and not sc.empty:
        cols = ["collected_t_per_yr", "made_t_per_yr", "recycled_t_per_yr", "exported_t_per_yr", "disposed_t_per_yr"]
        by = sc.groupby(["scrap_product", "period"], as_index=False, sort=False)[cols].sum()
        out += ("<h2>Scrap by period (all countries, t/yr)</h2><p class='note'>Collected end-of-life and legacy "
                "scrap, swarf made, recycled, exported and disposed; by country in the workbook's scrap sheet.</p>"
                + table_html(by))
    return out


def policy_html(tables: dict[str, pd.DataFrame]) -> str:
    """What a scenario buys against its reference, and the watched prices it moves."""
    value = tables.get("policy_value")
    if value is None or value.empty:
        return ""
    name = str(value["reference"].iloc[0])
    out = (f"<h2>What the scenario buys against {html.escape(name)}</h2><p class='note'>Present value; avoided = "
           "the reference's unserved tonnes minus the scenario's (negative: the scenario adds shortfall).</p>"
           + table_html(value.drop(columns=["reference"])))
    prices = tables.get("price_changes")
    if prices is not None and not prices.empty:
        out += "<h3>Watched prices that move (largest change first)</h3>" + table_html(
            prices.drop(columns=["reference"]).head(30))
    return out


def who_pays_html(tables: dict[str, pd.DataFrame]) -> str:
    """Who pays, by country and period (undiscounted USD; the full table is who_pays.csv)."""
    w = tables.get("who_pays")
    if w is None or w.empty:
        return ""
    money = ["consumer_spending_usd", "import_bill_usd", "export_revenue_usd", "producer_revenue_usd"]
    by = w.groupby(["country", "period"], sort=False)[money].sum().reset_index()
    start = tables["periods"].set_index("period")["start_year"] if "periods" in tables else None
    by = by[(by[money].abs() > 0.5).any(axis=1)]
    by = by.assign(_t=by["period"].map(start) if start is not None else 0).sort_values(
        ["country", "_t"], kind="mergesort").drop(columns="_t")
    return ("<h2>Who pays, by country and period</h2><p class='note'>Undiscounted USD at the model's prices "
            "(consumers' spending = price x tonnes served; import bill = landed value of imports; export revenue "
            "= origin price x exports; producers' revenue = price x tonnes made). By product: who_pays.csv.</p>"
            + table_html(by))


def ledger_html(tables: dict[str, pd.DataFrame], limit: int = 15) -> str:
    """The controlling country's exports and market share over the horizon, and the
    transfers by who pays and who receives."""
    out = ""
    led = tables.get("coercer")
    if led is not None and not led.empty:
        g = led.groupby(["exporter", "product"], sort=False)[
            ["exported_t", "world_exported_t", "export_revenue_usd", "world_export_revenue_usd"]].sum()
        g = g[g["exported_t"] > 1e-9].sort_values("export_revenue_usd", ascending=False).reset_index()
        g["world_tonnes_share"] = g["exported_t"] / g["world_exported_t"]
        rev = g["world_export_revenue_usd"]
        g["world_revenue_share"] = (g["export_revenue_usd"] / rev).where(rev.abs() > 1e-9)
        out += ("<h2>The controlling country's ledger</h2><p class='note'>Over the horizon, undiscounted USD at "
                "the exporter's own price; by period in coercer.csv. A binding licence or quota also earns its "
                "holders a rent (the transfers below).</p>" + table_html(g.drop(
                    columns=["world_exported_t", "world_export_revenue_usd"]), limit))
    tr = tables.get("transfers")
    if tr is not None and not tr.empty:
        by = tr.groupby(["component", "payer", "receiver"], sort=False)["usd"].sum().reset_index()
        by = by.reindex(by["usd"].abs().sort_values(ascending=False, kind="mergesort").index)
        out += ("<h2>Transfers: who pays whom</h2><p class='note'>Over the horizon, undiscounted USD; by product "
                "and period in transfers.csv. Transfers move money between parties and use no resources.</p>"
                + table_html(by.rename(columns={"usd": "usd_over_horizon"}), limit))
    return out


def glossary_html(tables: dict[str, pd.DataFrame]) -> str:
    """How the objective adds up, and the glossary, from the summary table."""
    summ = tables.get("summary")
    if summ is None or summ.empty:
        return ""
    add = summ[summ["section"] == "how the objective adds up"][["item", "value"]]
    words = summ[summ["section"] == "glossary"]
    items = "".join(f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>"
                    for k, v in zip(words["item"], words["value"]))
    return ("<h3>How the objective adds up (present value, USD)</h3>" + table_html(add.rename(
        columns={"item": "part", "value": "present_value_usd"})) if not add.empty else "") + (
        f"<h3>Glossary</h3><dl class='glossary'>{items}</dl>" if items else "")


def headline_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Resource cost by component, unserved demand and transfers on their own lines."""
    costs = tables.get("costs")
    rows = []
    if costs is not None and not costs.empty:
        by = costs.groupby(["category", "component"], sort=False)[["pv_usd", "cost_usd"]].sum()
        for cat, label in (("resource", "resource cost"), ("penalty", "penalty value (unserved demand, missed targets)"),
                           ("transfer", "transfer")):
            if cat in by.index.get_level_values(0):
                part = by.loc[cat]
                rows += [(label, comp, r["pv_usd"], r["cost_usd"]) for comp, r in part.iterrows()]
                rows.append((label, "total", part["pv_usd"].sum(), part["cost_usd"].sum()))
    dem = tables.get("shortfall")
    unserved = float(dem["unserved_t"].sum()) if dem is not None and not dem.empty else 0.0
    out = pd.DataFrame(rows, columns=["line", "component", "present_value_usd", "undiscounted_usd"])
    return pd.concat([out, pd.DataFrame([("unserved demand", "tonnes over the horizon (t)", np.nan, unserved)],
                                        columns=out.columns)], ignore_index=True)


CSS = """body{font-family:system-ui,Arial,sans-serif;margin:24px;color:#222;max-width:1280px}
h1{font-size:22px}h2{font-size:17px;color:#1F3864;border-bottom:1px solid #ccd;margin-top:32px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border:1px solid #ccd;padding:3px 8px}
th{background:#DDE6F0;text-align:left}td{text-align:right}td.t{text-align:left}
.note{color:#555;font-size:12px;font-style:italic}"""


def write_html(path: Path, tables: dict[str, pd.DataFrame], title: str,
               figs: list[Figure] | None = None, tracer: Tracer | None = None) -> Path:
    """Write the page; plotly.js is inlined once (in the first figure's div) so the file
    opens offline. tracer: the one the content shares were traced with (the Sankey reuses
    its traces)."""
    figs = summary_figures(tables) if figs is None else figs
    parts = [f"<h1>{html.escape(title)}</h1>"]
    plots: list[tuple[str, str, dict]] = []
    sank = sankey_spec(tables, tracer) if "chain" in tables and "production" in tables else None
    if sank is not None:
        plots.append(("sankey", "The chain by country", sank))
    heavy = heavy_price_spec(tables)
    if heavy is not None:
        plots.append(("heavy_prices", "NdPr, Dy and Tb oxide prices", heavy))
    for fig in figs:
        plots.append((fig.name, fig.title, figure_spec(fig)))
    parts.append("<h2>Headline figures</h2>" + table_html(headline_table(tables))
                 + "<p class='note'>Resource cost is the headline; the penalty value (unserved demand, missed "
                   "targets) and transfers are reported on their own lines and never added to it.</p>"
                 + glossary_html(tables))
    short = tables.get("shortfall")
    horizon = tables.get("shortfall_horizon")
    parts.append("<h2>Who is short of what, by period</h2>" + (
        "<p class='note'>Each row is one period: the share is of that period's demand (a quarter-long cut "
        "reads as what it is in its quarter). Worst share first.</p>" + table_html(short)
        + ("<h3>Over the horizon, beside the worst period</h3>" + table_html(horizon)
           if horizon is not None and not horizon.empty else "")
        if short is not None and not short.empty else "<p>No shortfall: all demand is served.</p>"))
    ex = tables.get("explanations")
    if ex is not None and not ex.empty:
        items = "".join(f"<li>{html.escape(str(t))}</li>" for t in ex.drop_duplicates(
            ["country", "product", "segment"])["text"])
        parts.append(f"<h2>Why short</h2><ul>{items}</ul>")
    parts.append(targets_html(tables) + policy_html(tables) + who_pays_html(tables) + ledger_html(tables))
    for i, (name, heading, spec) in enumerate(plots):
        div = plotly_div(spec, f"fig-{name}", with_plotlyjs=i == 0)
        note = f"<p class='note'>{html.escape(CONTENT_NOTE)}.</p>" if name == "content_shares" else ""
        parts.append(f"<h2>{html.escape(heading)}</h2>{div}{note}")
    if name_in(tables, "content_shares"):
        cs = tables["content_shares"]
        parts.append("<h2>Content shares (proportional mixing; not the taint rule)</h2>"
                     + table_html(cs[cs["period"] == cs["period"].iloc[0]]))
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>")
    path.write_text(page, encoding="utf-8")
    return path


def name_in(tables: dict[str, pd.DataFrame], name: str) -> bool:
    return name in tables and not tables[name].empty


def shortfall_fan(tables: dict[str, pd.DataFrame]) -> "go.Figure | None":
    """Share of demand unserved over time, one line per branch (the worst row of each
    period: the largest share of a country, product and segment's demand)."""
    import plotly.graph_objects as go
    s = tables.get("tree_shortfall")
    b = tables.get("tree_branches")
    if b is None or b.empty:
        return None
    periods = tables.get("tree_periods")
    if s is None or s.empty or float(s["unserved_share"].max()) <= 0:
        return None
    fig = go.Figure()
    order = list(periods["period"]) if periods is not None else None
    for r in b.itertuples():
        g = s[s["branch"] == r.branch] if s is not None else pd.DataFrame(columns=["period", "unserved_share"])
        worst = g.groupby("period")["unserved_share"].max() if not g.empty else pd.Series(dtype=float)
        xs = order or list(worst.index)
        fig.add_trace(go.Scatter(x=xs, y=[float(worst.get(t, 0.0)) for t in xs], mode="lines+markers",
                                 name=f"{r.branch} ({r.probability:.0%})"))
    fig.update_layout(title="Worst share of a period's demand unserved, by branch", yaxis_tickformat=".0%",
                      yaxis_rangemode="tozero",
                      height=420, margin={"l": 60, "r": 20, "t": 50, "b": 40}, legend_title_text="branch")
    return fig


def write_tree_html(path: Path, tables: dict[str, pd.DataFrame], title: str) -> Path:
    """A scenario tree's page: the figures of the plan, the branches, the here-and-now
    decisions, shortfall by branch over time."""
    parts = [f"<h1>{html.escape(title)}</h1>"]
    summ = tables.get("tree_summary")
    if summ is not None:
        parts.append("<h2>The plan under uncertainty</h2><p class='note'>Expected cost is over the branches' "
                     "probabilities (present value, USD). EVPI: what foresight would be worth; VSS: what planning "
                     "for the tree is worth over planning for calm.</p>" + table_html(summ))
    b = tables.get("tree_branches")
    if b is not None:
        parts.append("<h2>Branches</h2>" + table_html(b))
    plan = tables.get("tree_plan")
    if plan is not None and not plan.empty:
        parts.append("<h2>Decisions taken before the future is known</h2><p class='note'>Each is one decision for "
                     "every branch below the node it is decided in.</p>" + table_html(plan[plan["value"].abs() > 1e-9]))
    fan = shortfall_fan(tables)
    parts.append("<h2>Shortfall by branch over time</h2>" + (fan.to_html(
        full_html=False, include_plotlyjs=True, div_id="fig-tree-shortfall", config={"displaylogo": False})
        if fan is not None else "<p>No branch is short of anything in any period under this plan.</p>"))
    short = tables.get("tree_shortfall")
    if short is not None and not short.empty:
        parts.append("<h2>Who is short of what, by branch and period</h2>" + table_html(
            short.sort_values("unserved_share", ascending=False, kind="mergesort")))
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>")
    path.write_text(page, encoding="utf-8")
    return path
