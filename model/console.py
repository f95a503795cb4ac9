"""The console summary of a run: a compact rich table of the headline figures on a
terminal; the plain lines of model.cli.print_summary when output is piped or captured
(so logs and scripts read stable text). Reads result tables only."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

MAX_SHORT_ROWS = 12


def _money(x: float) -> str:
    return f"{x / 1e9:,.3f} bn USD" if abs(x) >= 1e8 else f"{x / 1e6:,.3f} M USD"


def _is_tty(out) -> bool:
    try:
        return bool(out.isatty())
    except (AttributeError, ValueError):
        return False


def why_lines(tables: dict[str, pd.DataFrame], limit: int = 5) -> list[str]:
    """One line per explained shortfall (largest first): its top limit and cut."""
    ex = tables.get("explanations")
    if ex is None or ex.empty:
        return []
    top = ex.sort_values(["unserved_t", "rank"], ascending=[False, True]).drop_duplicates(
        ["country", "product", "segment"]).head(limit)
    lines = []
    for r in top.to_dict("records"):
        head = f"{r['country']} {r['product']} ({r['segment']}): "
        if r["rank"] == 0:
            lines.append(head + "no tested limit reduces it (see explanations)")
        else:
            lines.append(head + f"{r['limit']} [{r['sheet']} {r['sheet_row']}: {r['relaxation']}] cuts "
                         f"{r['shortfall_reduction_t']:,.0f} of {r['unserved_t']:,.0f} t")
    return lines


def show_summary(result, folder: Path | None, out=None) -> None:
    """Rich tables on a terminal, plain lines otherwise."""
    out = out or sys.stdout
    if not _is_tty(out):
        from model.cli import print_summary
        print_summary(result, folder, out)
        lines = why_lines(result.tables) if result.optimal else []
        if lines:
            print("why short (limits relaxed by 10 %, re-solved):", file=out)
            for line in lines:
                print(f"  {line}", file=out)
        return
    rich_summary(result, folder, out)


def headline_rows(tables: dict[str, pd.DataFrame]) -> list[tuple[str, str, str]]:
    """(group, item, value) rows: resource cost by component and total, transfers,
    unserved demand; the three never summed together."""
    costs = tables["costs"]
    by = costs.groupby(["category", "component"], sort=False)["pv_usd"].sum()
    rows: list[tuple[str, str, str]] = []
    cats = set(by.index.get_level_values(0))
    if "resource" in cats:
        for comp, v in by.loc["resource"].items():
            rows.append(("resource cost (PV)", comp, _money(v)))
        rows.append(("resource cost (PV)", "total", _money(by.loc["resource"].sum())))
    if "transfer" in cats:
        for comp, v in by.loc["transfer"].items():
            rows.append(("transfers (PV)", comp, _money(v)))
    short = tables.get("shortfall")
    unserved = float(short["unserved_t"].sum()) if short is not None and not short.empty else 0.0
    rows.append(("unserved demand", "tonnes over the horizon", f"{unserved:,.1f} t"))
    if "penalty" in cats:
        rows.append(("unserved demand", "penalty value (PV)", _money(by.loc["penalty"].sum())))
    return rows


def rich_summary(result, folder: Path | None, out) -> None:
    from rich.console import Console
    from rich.table import Table
    con = Console(file=out, highlight=False)
    title = f"case {result.case.name}" + (f", scenario {result.scenario}" if result.scenario else "")
    con.print(f"[bold]{title}[/bold]  status: {result.solve.message}")
    if result.optimal:
        t = Table(title="Headline figures", show_lines=False)
        for col, just in (("", "left"), ("item", "left"), ("value", "right")):
            t.add_column(col, justify=just)
        last = None
        for group, item, value in headline_rows(result.tables):
            t.add_row(group if group != last else "", item, value)
            last = group
        con.print(t)
        short = result.tables["shortfall"]
        if short.empty:
            con.print("shortfall: none; all demand is served")
        else:
            s = Table(title="Who is short of what (t over the horizon)")
            for col in ("country", "product", "segment", "unserved t", "share of demand"):
                s.add_column(col, justify="right" if col[0] in "us" and col != "segment" else "left")
            for r in short.sort_values("unserved_t", ascending=False).head(MAX_SHORT_ROWS).itertuples():
                s.add_row(r.country, r.product, r.segment, f"{r.unserved_t:,.1f}", f"{r.unserved_share:.1%}")
            con.print(s)
        lines = why_lines(result.tables)
        if lines:
            con.print("[bold]why short[/bold] (limits relaxed by 10 %, re-solved):")
            for line in lines:
                con.print(f"  {line}", markup=False)
    if folder is not None:
        con.print(f"report: {folder}", markup=False, soft_wrap=True)
