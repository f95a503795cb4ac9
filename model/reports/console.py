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


def worst_line(tables: dict[str, pd.DataFrame]) -> str:
    """The worst shortfall in one line: the largest share of a period's demand unserved."""
    short = tables.get("shortfall")
    if short is None or short.empty:
        return "shortfall: none; all demand is served"
    w = short.iloc[0]  # the table is sorted worst share first
    return (f"shortfall: worst {w['unserved_share']:.1%} of {w['country']} {w['product']} ({w['segment']}) "
            f"demand unserved in {w['period']} ({w['unserved_t']:,.1f} t)")


def shortfall_lines(tables: dict[str, pd.DataFrame], limit: int = 15) -> list[str]:
    """Shortfall by period, worst share of the period's demand first, the horizon total beside."""
    short = tables.get("shortfall")
    if short is None or short.empty:
        return []
    horizon = tables.get("shortfall_horizon")
    total = {} if horizon is None else {tuple(k): (s, u) for k, s, u in zip(
        horizon[["country", "product", "segment"]].itertuples(index=False), horizon["unserved_share"],
        horizon["unserved_t"])}
    out = [f"shortfall by period ({short['unserved_t'].sum():,.1f} t in all; share of the period's demand, "
           "horizon beside):"]
    show = short.head(limit)
    w = {c: max(len(str(v)) for v in show[c]) for c in ("country", "product", "segment", "period")}
    for r in show.itertuples():
        s, u = total.get((r.country, r.product, r.segment), (float("nan"), float("nan")))
        out.append(f"  {r.country:<{w['country']}}  {r.product:<{w['product']}}  {r.segment:<{w['segment']}}  "
                   f"{r.period:<{w['period']}}  {r.unserved_share:>6.1%}  {r.unserved_t:>11,.1f} t   "
                   f"horizon {s:.1%} ({u:,.1f} t)")
    if len(short) > limit:
        out.append(f"  ... {len(short) - limit} more rows in shortfall.csv")
    return out


def objective_line(costs: pd.DataFrame, objective: float) -> str:
    """The objective and its parts in one line (the summary's glossary says what each is)."""
    inside = costs[costs["in_objective"].astype(bool)].groupby("category")["pv_usd"].sum()
    parts = [("resource", "resource"), ("transfer", "transfers"), ("penalty", "penalty value"),
             ("calibration", "calibration terms")]
    return (f"objective {money(objective)} = " + " + ".join(f"{label} {money(inside.get(cat, 0.0))}"
                                                           for cat, label in parts if cat in inside.index)
            + " (present value; resource cost falls when demand goes unserved: read shortfall beside it)")


def summary_lines(result, folder: Path | None) -> list[str]:
    """Status, the worst shortfall, resource cost by component, shortfall by period, the
    limits behind the largest shortfalls, report path: plain lines."""
    out = [f"case: {result.case.name}" + (f"  scenario: {result.scenario}" if result.scenario else ""),
           f"status: {result.solve.message}"]
    if result.optimal:
        out.append(worst_line(result.tables))
        by = result.tables["costs"].groupby(["category", "component"])["pv_usd"].sum()
        cats = set(by.index.get_level_values(0))
        if not result.tables["shortfall"].empty:
            pen = by.loc["penalty"].sum() if "penalty" in cats else 0.0
            out += shortfall_lines(result.tables)
            out.append(f"  penalty value of the unserved tonnes {money(pen)} PV (not in resource cost)")
        out.append("resource cost (present value):")
        if "resource" in cats:
            out += [f"  {comp:<20} {money(v):>22}" for comp, v in by.loc["resource"].items()]
            out.append(f"  {'total':<20} {money(by.loc['resource'].sum()):>22}")
        if "transfer" in cats:
            out.append(f"transfers (present value): {money(by.loc['transfer'].sum())}")
        out.append(objective_line(result.tables["costs"], result.solve.objective))
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
    if unserved > 0:
        w = short.iloc[0]
        rows.append(("unserved demand", f"worst: {w['country']} {w['product']} ({w['segment']}), {w['period']}",
                     f"{w['unserved_share']:.1%} of the period's demand"))
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
            s = Table(title="Who is short of what, by period (worst share of the period's demand first)")
            for col in ("country", "product", "segment", "period", "share of period demand", "unserved t",
                        "horizon share"):
                s.add_column(col, justify="left" if col in ("country", "product", "segment", "period") else "right")
            horizon = result.tables.get("shortfall_horizon")
            hs = {} if horizon is None else dict(zip(zip(horizon["country"], horizon["product"], horizon["segment"]),
                                                     horizon["unserved_share"]))
            for r in short.head(MAX_SHORT_ROWS).itertuples():
                s.add_row(r.country, r.product, r.segment, r.period, f"{r.unserved_share:.1%}",
                          f"{r.unserved_t:,.1f}", f"{hs.get((r.country, r.product, r.segment), float('nan')):.1%}")
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
        LOG.info(plain, extra={"rich": lambda: rich_summary(result, folder)})
    elif is_tty(out):
        from rich.console import Console
        Console(file=out, highlight=False, soft_wrap=True).print(rich_summary(result, folder))
    else:
        out.write(plain + "\n")


MAX_COST_LINES = 8


def versus_lines(table: pd.DataFrame) -> list[str]:
    """The scenario against its reference: the headline four, the cost components that
    moved most, every shortfall that changed (none dropped), largest change first, then who
    pays, the controlling country's ledger and the transfers that moved most."""
    name = table["reference"].iloc[0] if len(table) else "base case"
    out = [f"against {'the base case' if name == 'base case' else repr(name)}:"]
    scale = table[["reference_value", "scenario_value"]].abs().max(axis=1).clip(lower=1.0)
    moved = table["change"].abs() > 1e-6 * scale
    is_short = table["reference_share_of_period_demand"].notna()
    head = table.index[:4]
    costs = table[~is_short & moved & ~table.index.isin(head) & table["figure"].str.endswith("(PV, USD)")
                  ].head(MAX_COST_LINES)
    short = table[is_short & moved]

    def fmt(r) -> str:
        f = ((lambda v: f"{v:,.1f} t") if r.figure.endswith("(t)") else
             (lambda v: f"{v:.1%}") if r.figure.startswith("share of") else money)
        sign = "+" if r.change >= 0 else "-"
        line = f"  {r.figure:<56} {f(r.reference_value):>16} -> {f(r.scenario_value):>16} ({sign}{f(abs(r.change))})"
        if r.reference_share_of_period_demand == r.reference_share_of_period_demand:
            line += f"  [{r.reference_share_of_period_demand:.1%} -> {r.scenario_share_of_period_demand:.1%} of the period's demand]"
        return line
    out += [fmt(r) for r in table.loc[head].itertuples()]
    out += [fmt(r) for r in costs.itertuples()]
    if len(short):
        out.append(f"  shortfall changes ({len(short)}, largest first):")
        out += ["  " + fmt(r) for r in short.itertuples()]
    pays = table[~is_short & moved & ~table.index.isin(head) & table["figure"].str.contains(
        "consumer spending|import bill|export revenue of|share of world export", regex=True)].head(MAX_COST_LINES)
    if len(pays):
        out.append("  who pays (undiscounted USD over the horizon, largest change first):")
        out += ["  " + fmt(r) for r in pays.itertuples()]
    rest = table[~is_short & moved & ~table.index.isin(head)]
    for title, pattern in (("the controlling country's exports and market share (over the horizon)",
                            r"^exports of |^share of world \S+ exports from "),
                           ("transfers by who pays and who receives (undiscounted USD)", r"^transfer ")):
        part = rest[rest["figure"].str.contains(pattern, regex=True)].head(MAX_COST_LINES)
        if len(part):
            out.append(f"  {title}:")
            out += ["  " + fmt(r) for r in part.itertuples()]
    if not moved.any():
        out.append("  no change")
    return out


def policy_lines(value: pd.DataFrame, prices: pd.DataFrame, limit: int = 6) -> list[str]:
    """What the scenario buys against its reference: avoided shortfall and its penalty
    value, resource cost and transfers, per period where anything moved, and the watched
    prices that moved most."""
    name = value["reference"].iloc[0]
    out = [f"what the scenario buys against {'the base case' if name == 'base case' else repr(name)} "
           "(present value; avoided = reference minus scenario):"]
    for r in value.itertuples():
        if r.period != "horizon" and max(abs(r.avoided_unserved_t), abs(r.resource_cost_change_pv_usd),
                                         abs(r.transfers_change_pv_usd)) < 1e-6:
            continue
        per_t = (f", {r.resource_cost_per_avoided_t_usd:,.0f} USD of resource cost per avoided t"
                 if r.resource_cost_per_avoided_t_usd == r.resource_cost_per_avoided_t_usd else "")
        out.append(f"  {r.period:<10} avoided {r.avoided_unserved_t:,.1f} t (penalty value "
                   f"{money(r.avoided_penalty_value_pv_usd)}), resource cost {money(r.resource_cost_change_pv_usd)}, "
                   f"transfers {money(r.transfers_change_pv_usd)}{per_t}")
    if not prices.empty:
        out.append("  prices that moved most:")
        for r in prices.head(limit).itertuples():
            share = f" ({r.change_share:+.1%})" if r.change_share == r.change_share else ""
            out.append(f"    {r.product} in {r.country}, {r.period}: {r.reference_price_usd_per_t:,.0f} -> "
                       f"{r.scenario_price_usd_per_t:,.0f} USD/t{share}")
    return out


def batch_lines(result) -> list[str]:
    """What ran, what failed and why, the headline figures against the baseline."""
    t = result.comparison
    out = [f"batch: {len(result.outcomes)} run, {len(result.failed)} failed, "
           f"{len(result.not_finished)} not finished" + (" (interrupted)" if result.interrupted else "")]
    show = t[t["status"] == "optimal"]
    if not show.empty:
        worst_cols = [c for c in show.columns if c.endswith("_worst_period_share")]
        worst = show[worst_cols].max(axis=1).fillna(0.0) if worst_cols else pd.Series(0.0, index=show.index)
        out.append(f"  {'scenario':<26} {'resource cost PV':>18} {'vs base':>14} {'unserved t':>12} {'vs base':>12}"
                   f" {'vs parent':>12} {'worst period share':>19}")
        for r, w in zip(show.itertuples(), worst):
            name = r.scenario + (" *" if getattr(r, "role", "") == "parent of a requested scenario" else "")
            vp = getattr(r, "vs_parent_unserved_t", float("nan"))
            out.append(f"  {name:<26} {r.resource_cost_pv_usd / 1e9:>15,.3f} bn "
                       f"{r.vs_base_resource_cost_pv_usd / 1e6:>+11,.1f} M "
                       f"{r.unserved_t:>12,.1f} {r.vs_base_unserved_t:>+12,.1f} "
                       + (f"{vp:>+12,.1f}" if vp == vp else f"{'':>12}") + f" {w:>19.1%}")
        if "role" in show and (show["role"] == "parent of a requested scenario").any():
            out.append("  * run as the parent of a requested scenario (its deltas are against its own parent)")
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


def usd(x: float) -> str:
    """Money at a readable scale: bn or M USD, plain USD below 100,000."""
    if x != x:
        return "n/a"
    return money(x) if abs(x) >= 1e5 else f"{x:,.0f} USD"


def tree_lines(tables: dict[str, pd.DataFrame], name: str, folder: str) -> list[str]:
    """A plan under uncertainty in a few lines: its expected cost and the values of
    information and of planning for the tree, the here-and-now decisions, each branch's
    worst period, the value of the reserve."""
    s = tables["tree_summary"].set_index("figure")["value"]

    def get(start: str) -> float:
        k = next((k for k in s.index if k.startswith(start)), None)
        return float(s[k]) if k is not None else float("nan")
    b = tables["tree_branches"]
    likely = b if len(b) <= MAX_BRANCH_LINES else b.sort_values("probability", ascending=False,
                                                                 kind="mergesort").head(5)
    listed = ", ".join(f"{r.branch} {r.probability:.0%}" for r in likely.itertuples())
    if len(likely) < len(b):
        listed = f"the most likely: {listed}, and {len(b) - len(likely)} more"
    out = [f"tree {name}: {len(b)} branches ({listed}); the plan is optimal",
           f"expected cost {usd(get('expected cost of the plan'))}; with perfect foresight "
           f"{usd(get('expected cost with perfect foresight'))} (value of information {usd(get('value of perfect'))}); "
           f"the no-crisis plan's first decisions {usd(get('expected cost of the no-crisis'))} "
           f"(value of planning for the tree {usd(get('value of the stochastic'))})"]
    if "tree_decomposition" in tables:
        canonical = get("decomposition: least-norm plan") == 1.0
        out.append(f"solved by decomposition: {int(get('decomposition: iterations'))} iterations, relative gap "
                   f"{get('decomposition: relative gap'):.1e}; the here-and-now plan is "
                   + ("the least-norm plan of the optimal face (one answer where plans tie)" if canonical else
                      "one least-cost plan: the least-norm step did not settle, so where plans tie it is the "
                      "solver's choice"))
    cvar = [k for k in s.index if k.startswith("CVaR at")]
    if cvar:
        out.append(f"risk: {cvar[0]} {usd(float(s[cvar[0]]))} (weight {get('CVaR weight'):g})")
    plan = tables["tree_plan"]
    moves = plan[(plan["value"].abs() > 1e-6) & plan["decision"].str.startswith(("stockpile buy", "capacity build"))]
    if "committed_build_in_data" in moves:
        data_driven = moves[moves["committed_build_in_data"]]
        moves = moves[~moves["committed_build_in_data"]]
        if len(data_driven):
            out.append(f"  ({len(data_driven)} stock buys of reserves with a committed build in the data are in "
                       "tree_plan, not listed here)")
    for r in moves.head(8).itertuples():
        out.append(f"  decided {r.decided_in}: {r.decision} {r.unit_or_stockpile} in {r.period}: {r.value:,.1f}")
    if moves.empty:
        out.append("  decided here and now: no stockpile buy and no build")
    shown = b if len(b) <= MAX_BRANCH_LINES else b.sort_values(
        ["worst_period_share", "unserved_t", "probability"], ascending=False, kind="mergesort").head(MAX_BRANCH_LINES)
    if len(shown) < len(b):
        out.append(f"  the {len(shown)} branches with the worst shortfall of {len(b)} (all in tree_branches):")
    for r in shown.itertuples():
        out.append(f"  branch {r.branch} ({r.probability:.0%}): unserved {r.unserved_t:,.1f} t, worst period "
                   f"{r.worst_period_share:.1%} of its demand; cost {usd(r.objective_usd)}")
    if "value of the reserve (expected cost without it - with it)" in s.index:
        out.append(f"value of the reserve {usd(get('value of the reserve'))}: it avoids "
                   f"{get('expected unserved demand avoided'):,.1f} t of expected shortfall at "
                   f"{usd(get('resource cost per tonne'))} of resource cost per tonne")
    out.append(f"report: {folder}")
    return out


MAX_BRANCH_LINES = 12  # branches a tree's console story lists one by one


def say(lines: list[str]) -> None:
    """Log a block of plain lines as one record."""
    LOG.info("\n".join(lines))
