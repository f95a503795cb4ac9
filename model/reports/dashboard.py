"""dashboard.html of a batch or sweep: one self-contained page comparing the scenarios
(changes of resource cost and unserved demand against the base case, unserved tonnes by
scenario and period and by scenario and country, the key oxide prices), plotly.js inlined
once. Reads the comparison table and, where the batch wrote them, each scenario's
shortfall table."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from model.reports.html import CSS, table_html

BASELINE = "base case"


def _solved(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["status"] == "optimal"].set_index("scenario")


def overview(table: pd.DataFrame) -> pd.DataFrame:
    """The scenarios in plain words, money in M USD (present value)."""
    ok = _solved(table)
    cols = {"parent": "builds on", "resource_cost_pv_usd": "resource cost (M USD)",
            "vs_base_resource_cost_pv_usd": "against the base (M USD)", "unserved_t": "unserved (t)",
            "vs_base_unserved_t": "unserved against the base (t)",
            "unserved_penalty_pv_usd": "value of lost use (M USD)"}
    out = ok[[c for c in cols if c in ok.columns]].copy()
    for c in out.columns:
        if c.endswith("_usd"):
            out[c] = out[c] / 1e6
    return out.rename(columns=cols).reset_index()


def unserved_grid(shortfalls: dict[str, pd.DataFrame], by: str, order: list[str]) -> pd.DataFrame:
    """Unserved tonnes: rows scenario, columns period or country."""
    rows = {}
    for name, s in shortfalls.items():
        rows[name] = s.groupby(by)["unserved_t"].sum() if not s.empty else pd.Series(dtype=float)
    grid = pd.DataFrame(rows).T.fillna(0.0)
    cols = [c for c in order if c in grid.columns] + [c for c in grid.columns if c not in order]
    return grid.reindex(columns=cols)


def price_columns(table: pd.DataFrame) -> list[str]:
    """Key price columns (price_<product>_<country>_usd_per_t) for China and the importers."""
    keep = ("_CHN_", "_EUR_", "_USA_", "_JPN_")
    return [c for c in table.columns if c.startswith("price_") and any(k in c for k in keep)]


def figures(table: pd.DataFrame, shortfalls: dict[str, pd.DataFrame], periods: list[str]) -> list[tuple]:
    import plotly.graph_objects as go
    ok = _solved(table)
    names = list(ok.index)
    figs = []
    if "vs_base_resource_cost_pv_usd" in ok:
        f = go.Figure(go.Bar(x=ok["vs_base_resource_cost_pv_usd"] / 1e6, y=names, orientation="h",
                             marker_color="#4E79A7"))
        f.update_layout(title="Resource cost against the base case (M USD, present value)",
                        yaxis={"autorange": "reversed"}, height=max(300, 28 * len(names) + 120))
        figs.append(("cost_delta", "Cost against the base", f))
    if "vs_base_unserved_t" in ok:
        f = go.Figure(go.Bar(x=ok["vs_base_unserved_t"], y=names, orientation="h", marker_color="#E15759"))
        f.update_layout(title="Unserved demand against the base case (t over the horizon)",
                        yaxis={"autorange": "reversed"}, height=max(300, 28 * len(names) + 120))
        figs.append(("unserved_delta", "Unserved against the base", f))
    for by, label in (("period", "period"), ("country", "country")):
        grid = unserved_grid(shortfalls, by, periods if by == "period" else [])
        if grid.empty or not grid.to_numpy().any():
            continue
        grid = grid.reindex([n for n in names if n in grid.index])
        f = go.Figure(go.Heatmap(z=grid.to_numpy(), x=[str(c) for c in grid.columns], y=list(grid.index),
                                 colorscale="Reds", colorbar={"title": "t"},
                                 hovertemplate="%{y}, %{x}: %{z:,.0f} t<extra></extra>"))
        f.update_layout(title=f"Unserved tonnes by scenario and {label}", yaxis={"autorange": "reversed"},
                        xaxis={"type": "category"}, height=max(300, 28 * len(grid) + 140))
        figs.append((f"unserved_by_{by}", f"Unserved by {label}", f))
    prices = price_columns(ok)
    if prices:
        f = go.Figure()
        for c in prices:
            f.add_trace(go.Bar(name=c[len("price_"):-len("_usd_per_t")].replace("_", " ", 1).replace("_", ", "),
                               x=names, y=ok[c] / 1000.0))
        f.update_layout(title="Key oxide prices, mean over the periods (USD/kg)", barmode="group",
                        xaxis={"type": "category"},
                        yaxis={"type": "log", "title": "USD/kg"}, height=460)
        figs.append(("prices", "Key prices", f))
    return figs


def write_dashboard(path: Path, table: pd.DataFrame, shortfalls: dict[str, pd.DataFrame],
                    periods: list[str], title: str) -> Path:
    parts = [f"<h1>{html.escape(title)}</h1>",
             "<p class='note'>Each scenario against the base case (present value; changes = scenario minus the "
             "base). Every figure: comparison.xlsx and comparison.csv; each scenario's own report: its folder."
             "</p>", "<h2>Scenarios</h2>" + table_html(overview(table))]
    first = True
    for name, heading, fig in figures(table, shortfalls, periods):
        div = fig.to_html(full_html=False, include_plotlyjs=first, div_id=f"fig-{name}",
                          config={"displaylogo": False, "responsive": True})
        first = False
        parts.append(f"<h2>{html.escape(heading)}</h2>{div}")
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>")
    path.write_text(page, encoding="utf-8")
    return path
