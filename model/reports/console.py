"""What a run says on the console (and in run.log): the compact story of its headline
figures, a scenario against the base case, a batch's and a sweep's results. Each is
one log record of plain lines; on a terminal the run summary is drawn as rich tables
instead (model.logs.ConsoleHandler). Reads result tables only."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from model.logs import is_tty

LOG = logging.getLogger(__name__)
MAX_SHORT_ROWS = 12


def money(x: float) -> str:
    return f"{x / 1e9:,.3f} bn USD" if abs(x) >= 1e8 else f"{x / 1e6:,.3f} M USD"


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


def summary_lines(result, folder: Path | None) -> list[str]:
    """Status, resource cost by component, shortfall by country and product, the
    limits behind the largest shortfalls, report path: plain lines."""
    out = [f"case: {result.case.name}" + (f"  scenario: {result.scenario}" if result.scenario else ""),
           f"status: {result.solve.message}"]
    if result.optimal:
        by = result.tables["costs"].groupby(["category", "component"])["pv_usd"].sum()
        cats = set(by.index.get_level_values(0))
        out.append("resource cost (present value):")
        if "resource" in cats:
            out += [f"  {comp:<20} {money(v):>22}" for comp, v in by.loc["resource"].items()]
            out.append(f"  {'total':<20} {money(by.loc['resource'].sum()):>22}")
        if "transfer" in cats:
            out.append(f"transfers (present value): {money(by.loc['transfer'].sum())}")
        short = result.tables["shortfall"]
        if short.empty:
            out.append("shortfall: none; all demand is served")
        else:
            pen = by.loc["penalty"].sum() if "penalty" in cats else 0.0
            out.append(f"shortfall: {short['unserved_t'].sum():,.1f} t unserved "
                       f"(penalty value {money(pen)} PV, not in resource cost)")
            show = short.groupby(["country", "product"], as_index=False)[["unserved_t", "demand_t"]].sum()
            show["unserved_share"] = show["unserved_t"] / show["demand_t"]
            for r in show.sort_values("unserved_t", ascending=False).head(15).itertuples():
                out.append(f"  {r.country:<8} {r.product:<20} {r.unserved_t:>12,.1f} t  "
                           f"({r.unserved_share:.1%} of demand)")
        why = why_lines(result.tables)
        if why:
            out.append("why short (limits relaxed by 10 %, re-solved):")
            out += [f"  {line}" for line in why]
    if folder is not None:
        out.append(f"report: {folder}")
    return out


def headline_rows(tables: dict[str, pd.DataFrame]) -> list[tuple[str, str, str]]:
    """(group, item, value) rows: resource cost by component and total, transfers,
    unserved demand; the three never summed together."""
    costs = tables["costs"]
    by = costs.groupby(["category", "component"], sort=False)["pv_usd"].sum()
    rows: list[tuple[str, str, str]] = []
    cats = set(by.index.get_level_values(0))
    if "resource" in cats:
        for comp, v in by.loc["resource"].items():
            rows.append(("resource cost (PV)", comp, money(v)))
        rows.append(("resource cost (PV)", "total", money(by.loc["resource"].sum())))
    if "transfer" in cats:
        for comp, v in by.loc["transfer"].items():
            rows.append(("transfers (PV)", comp, money(v)))
    short = tables.get("shortfall")
    unserved = float(short["unserved_t"].sum()) if short is not None and not short.empty else 0.0
    rows.append(("unserved demand", "tonnes over the horizon", f"{unserved:,.1f} t"))
    if "penalty" in cats:
        rows.append(("unserved demand", "penalty value (PV)", money(by.loc["penalty"].sum())))
    return rows


def rich_summary(result, folder: Path | None):
    """The same story as rich tables (a renderable for a terminal)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text
    title = f"case {result.case.name}" + (f", scenario {result.scenario}" if result.scenario else "")
    parts: list = [Text.from_markup(f"[bold]{title}[/bold]  status: ") + Text(result.solve.message)]
    if result.optimal:
        t = Table(title="Headline figures", show_lines=False)
        for col, just in (("", "left"), ("item", "left"), ("value", "right")):
            t.add_column(col, justify=just)
        last = None
        for group, item, value in headline_rows(result.tables):
            t.add_row(group if group != last else "", item, value)
            last = group
        parts.append(t)
        short = result.tables["shortfall"]
        if short.empty:
            parts.append(Text("shortfall: none; all demand is served"))
        else:
            s = Table(title="Who is short of what (t over the horizon)")
            for col in ("country", "product", "segment", "unserved t", "share of demand"):
                s.add_column(col, justify="right" if col[0] in "us" and col != "segment" else "left")
            for r in short.sort_values("unserved_t", ascending=False).head(MAX_SHORT_ROWS).itertuples():
                s.add_row(r.country, r.product, r.segment, f"{r.unserved_t:,.1f}", f"{r.unserved_share:.1%}")
            parts.append(s)
        lines = why_lines(result.tables)
        if lines:
            parts.append(Text.from_markup("[bold]why short[/bold] (limits relaxed by 10 %, re-solved):"))
            parts += [Text(f"  {line}") for line in lines]
    if folder is not None:
        parts.append(Text(f"report: {folder}"))
    return Group(*parts)


def show_summary(result, folder: Path | None, out=None) -> None:
    """Say the run's story: logged (console and run.log), or written to `out` when
    given (rich tables if it is a terminal, plain lines otherwise)."""
    plain = "\n".join(summary_lines(result, folder))
    if out is None:
        LOG.info(plain, extra={"rich": rich_summary(result, folder)})
    elif is_tty(out):
        from rich.console import Console
        Console(file=out, highlight=False, soft_wrap=True).print(rich_summary(result, folder))
    else:
        out.write(plain + "\n")


def versus_base_lines(table: pd.DataFrame) -> list[str]:
    """The scenario's effect against the base case, biggest changes first."""
    out = ["against the base case:"]
    moved = table[table["change"].abs() > 1e-6 * table[["base", "scenario"]].abs().max(axis=1).clip(lower=1.0)]
    if moved.empty:
        out.append("  no change")
    for r in moved.head(12).itertuples():
        fmt = (lambda v: f"{v:,.1f} t") if r.figure.endswith("(t)") else money
        sign = "+" if r.change >= 0 else "-"
        out.append(f"  {r.figure:<48} {fmt(r.base):>18} -> {fmt(r.scenario):>18} ({sign}{fmt(abs(r.change))})")
    return out


def batch_lines(result) -> list[str]:
    """What ran, what failed and why, the headline figures against the baseline."""
    t = result.comparison
    out = [f"batch: {len(result.outcomes)} run, {len(result.failed)} failed, "
           f"{len(result.not_finished)} not finished" + (" (interrupted)" if result.interrupted else "")]
    show = t[t["status"] == "optimal"]
    if not show.empty:
        out.append(f"  {'scenario':<26} {'resource cost PV':>18} {'vs base':>14} {'unserved t':>12} {'vs base':>12}")
        for r in show.itertuples():
            out.append(f"  {r.scenario:<26} {r.resource_cost_pv_usd / 1e9:>15,.3f} bn "
                       f"{r.vs_base_resource_cost_pv_usd / 1e6:>+11,.1f} M "
                       f"{r.unserved_t:>12,.1f} {r.vs_base_unserved_t:>+12,.1f}")
    out += [f"  failed: {o.name}: {o.message}" for o in result.failed]
    if result.not_finished:
        out.append(f"  not finished: {', '.join(result.not_finished)}")
    out.append(f"report: {result.folder}")
    return out


def sweep_lines(summary: pd.DataFrame, result) -> list[str]:
    """A sweep's distributions (mean, p5, p50, p95 of each headline figure), failures, folder."""
    out = [f"sweep: {int(summary['samples'].iloc[0])} samples, {int(summary['solved'].iloc[0])} solved",
           f"  {'figure':<26} {'mean':>14} {'p5':>14} {'p50':>14} {'p95':>14}"]
    for r in summary.itertuples():
        scale, unit = (1e9, "bn USD") if r.unit == "USD" else (1.0, "t")
        vals = [getattr(r, k) / scale for k in ("mean", "p5", "p50", "p95")]
        out.append(f"  {r.metric:<26} " + " ".join(f"{v:>14,.3f}" if v == v else f"{'':>14}" for v in vals)
                   + f"  {unit}")
    for o in result.failed[:10]:
        out.append(f"  failed: {o.name}: {o.message.splitlines()[0] if o.message else ''}")
    if result.not_finished:
        out.append(f"  not finished: {len(result.not_finished)} samples")
    out.append(f"report: {result.folder}")
    return out


def say(lines: list[str]) -> None:
    """Log a block of plain lines as one record."""
    LOG.info("\n".join(lines))
