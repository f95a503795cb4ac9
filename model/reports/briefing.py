"""The briefing sheet: the first page of report.xlsx, one landscape A4 page a ministry can
paste into a briefing. Headline figures, shortfall by period (the worst row of each, as a
share of that period's demand), what the scenario buys against its reference, who pays, and
the prices planners watch, with two native charts. Money in M or bn USD (cells hold USD;
the number format scales them, so a copied cell keeps its exact value); prices in USD/kg.
Reads result tables only."""

from __future__ import annotations

import pandas as pd

from model.reports.charts import period_order
from model.reports.sheet import SheetWriter, market_prices

WATCHED = [("NdPr_ox", "NdPr oxide"), ("Dy_ox", "Dy oxide"), ("Tb_ox", "Tb oxide"),
           ("magnet_std", "standard NdFeB"), ("magnet_ht", "high-temperature NdFeB")]
WATCHED_ZONES = [("CHN", "China"), ("EUR", "EU"), ("USA", "US")]
M_USD, BN_USD = '#,##0.0,,', '#,##0.00,,,'  # USD shown in millions / billions


class BriefingSheet(SheetWriter):
    """Blocks in columns A-F, two charts from column H; printed on one page."""

    CHART_COL = 7  # column H
    LAST_COL = 17  # the print area ends at column R (the charts' right edge)

    def __init__(self, book, tables: dict[str, pd.DataFrame], title: str) -> None:
        super().__init__(book, tables, title, "briefing")
        f = book.add_format
        self.f |= {"musd": f({"num_format": M_USD}), "bnusd": f({"num_format": BN_USD}),
                   "kg": f({"num_format": "#,##0.0"})}
        self.periods = period_order(tables)

    def write(self) -> None:
        ws = self.ws
        ws.set_column(0, 0, 46)
        ws.set_column(1, 5, 14)
        self.start("Briefing")
        ws.fit_to_pages(1, 1)
        self.headline_block()
        short = self.shortfall_block()
        self.reference_block()
        self.targets_block()
        self.who_pays_block_brief()
        series = self.price_block_brief()
        self.shortfall_chart(short)
        self.price_chart(series, anchor_row=1 if short is None else 17)
        ws.print_area(0, 0, max(self.row, 40), self.LAST_COL)
        ws.hide_gridlines(2)

    # -- blocks -----------------------------------------------------------------
    def figures(self, header: list[str], rows: list[tuple]) -> None:
        """A figure/value/unit block whose value cells each take their row's format
        (label, value, unit, format)."""
        first, _ = self.block(header, [], [])
        self.row = first
        for label, value, unit, fmt in rows:
            self.put(self.row, 0, label)
            self.put(self.row, 1, value, fmt)
            self.put(self.row, 2, unit)
            self.row += 1

    def _cost(self, category: str, component: str | None = None, other: bool = False) -> float:
        """Present value of a category (of one component, or of every other component)."""
        c = self.tables.get("costs")
        if c is None or c.empty:
            return 0.0
        hit = c["category"] == category
        if component is not None:
            hit &= (c["component"] != component) if other else (c["component"] == component)
        return float(c.loc[hit, "pv_usd"].sum())

    def headline_block(self) -> None:
        summ = self.tables["summary"]
        status = summ.loc[summ["item"] == "solver status", "value"]
        unserved = summ[summ["section"] == "unserved demand"].set_index("item")["value"]
        short = self.tables.get("shortfall")
        if short is not None and not short.empty:  # sorted worst share first
            w = short.iloc[0]
            worst = (f"{w['unserved_share']:.1%} of {w['country']} {w['product']} ({w['segment']}) demand in "
                     f"{w['period']} ({w['unserved_t']:,.0f} t)")
        else:
            worst = "none: all demand is served"
        self.heading("Headline")
        self.figures(["figure", "value", "unit"], [
            ("solver status", status.iloc[0] if len(status) else "", "", None),
            ("resource cost, present value", self._cost("resource"), "bn USD", "bnusd"),
            ("worst shortfall (share of that period's demand)", worst, "", None),
            ("unserved over the horizon", float(unserved.get("unserved tonnes", 0.0)), "t", "t"),
            ("value of lost use (penalty), present value", self._cost("penalty", "shortfall_penalty"), "M USD",
             "musd")]
            + ([("missed targets (benchmark gaps, unmet offtakes; penalty), present value",
                 self._cost("penalty", "shortfall_penalty", other=True), "M USD", "musd")]
               if self._cost("penalty", "shortfall_penalty", other=True) else [])
            + [("transfers (duties, rents, floor payments), present value", self._cost("transfer"), "M USD", "musd")])

    def shortfall_block(self) -> tuple[int, int] | None:
        """Per period with a shortfall: tonnes unserved and the worst row's share; returns
        the block's first and last data rows (the shortfall chart plots them)."""
        self.heading("Shortfall by period (worst row: share of that period's demand)")
        s = self.tables.get("shortfall")
        if s is None or s.empty:
            self.put(self.row, 0, "none: all demand is served")
            self.row += 1
            return None
        rows = []
        for t in [p for p in self.periods if p in set(s["period"])]:
            g = s[s["period"] == t]
            w = g.iloc[0]  # sorted worst share first
            rows.append([t, float(g["unserved_t"].sum()), float(w["unserved_share"]),
                         f"{w['country']} {w['product']} ({w['segment']})"])
        return self.block(["period", "unserved (t)", "worst share", "worst row"], rows, [None, "t", "share", None])

    def reference_block(self) -> None:
        """This run minus its reference over the horizon (present value for money)."""
        v = self.tables.get("policy_value")
        if v is None or v.empty:
            return
        h = v[v["period"] == "horizon"].iloc[0]
        self.heading(f"Change against {h['reference']} over the horizon (this run minus the reference)")
        per = h["resource_cost_per_avoided_t_usd"]
        rows = [("unserved", -float(h["avoided_unserved_t"]), "t", "t"),
                ("penalty value (lost use, missed targets), present value", -float(h["avoided_penalty_value_pv_usd"]),
                 "M USD", "musd"),
                ("resource cost, present value", float(h["resource_cost_change_pv_usd"]), "M USD", "musd"),
                ("transfers, present value", float(h["transfers_change_pv_usd"]), "M USD", "musd")]
        if pd.notna(per):
            rows.append(("resource cost per tonne of shortfall avoided", float(per), "USD/t", "usd"))
        self.figures(["figure", "change", "unit"], rows)

    def targets_block(self) -> None:
        """Benchmarks (last period: share made in the bloc, gap, price of one more point)
        and end-use denials (share of the denied demand unserved in the worst period),
        where the run has them."""
        rows = []
        b = self.tables.get("benchmarks")
        if b is not None and not b.empty:
            for name, g in b.groupby("benchmark", sort=False):
                r = g.iloc[-1]
                rows.append([f"{name} ({r['bloc']} {r['stage']} >= {r['min_share']:.0%})",
                             r["period"], float(r["share_made_in_bloc"]), float(r["gap_t_per_yr"]),
                             float(r["cost_of_one_more_point_usd_pv"])])
        e = self.tables.get("end_use")
        if e is not None and not e.empty:
            for name, g in e.groupby("control", sort=False):
                per = g.groupby("period", sort=False)[["unserved_t_per_yr", "demand_t_per_yr"]].sum()
                share = per["unserved_t_per_yr"] / per["demand_t_per_yr"]
                t = share.idxmax()
                rows.append([f"{name}: denied demand unserved", t, float(share[t]), None, None])
        if rows:
            self.heading("Policy targets and end-use denials")
            self.block(["target", "period", "share (made in bloc; unserved)", "gap (t/yr)", "1 point more (M USD PV)"], rows,
                       [None, None, "share", "t", "musd"])

    def who_pays_block_brief(self, limit: int = 6) -> None:
        w = self.tables.get("who_pays")
        if w is None or w.empty:
            return
        by = w.groupby("country")[["consumer_spending_usd", "import_bill_usd", "export_revenue_usd"]].sum()
        by = by.reindex(by["consumer_spending_usd"].abs().sort_values(ascending=False, kind="mergesort").index)
        self.heading(f"Who pays: the {min(limit, len(by))} largest buyers over the horizon (consumers' spending, "
                     "import bill, export revenue; undiscounted)")
        self.block(["country", "spending (bn USD)", "imports (bn USD)", "exports (bn USD)"],
                   [[c] + list(r) for c, r in by.head(limit).iterrows()], [None, "bnusd", "bnusd", "bnusd"])

    def _watched(self) -> pd.DataFrame:
        p = self.tables.get("prices")
        if p is None or p.empty:
            return pd.DataFrame(columns=["product", "country", "period", "price_usd_per_t"])
        p = market_prices(p)
        return p[p["product"].isin([k for k, _ in WATCHED]) & p["country"].isin([k for k, _ in WATCHED_ZONES])]

    def _key_periods(self) -> list[str]:
        """The first period and the worst one (the last when nothing is short)."""
        s = self.tables.get("shortfall")
        worst = s.iloc[0]["period"] if s is not None and not s.empty else self.periods[-1]
        return list(dict.fromkeys([self.periods[0], worst]))

    def price_block_brief(self) -> list[tuple[str, list]]:
        """The watched prices in the first and the worst period; returns the oxide paths
        (China and the EU) the price chart plots."""
        p = self._watched()
        if p.empty:
            return []
        keys = self._key_periods()
        self.heading("Prices planners watch (USD/kg)")
        by = p.set_index(["product", "country", "period"])["price_usd_per_t"]
        rows = []
        for prod, pname in WATCHED:
            for zone, zname in WATCHED_ZONES:
                vals = [by.get((prod, zone, t)) for t in keys]
                if all(v is None or pd.isna(v) for v in vals):
                    continue
                vals = [None if v is None or pd.isna(v) else float(v) / 1000.0 for v in vals]
                rows.append([f"{pname}, {zname}"] + vals)
        self.block(["price"] + [f"{t} (USD/kg)" for t in keys], rows, [None] + ["kg"] * len(keys))
        series = []
        for prod, pname in WATCHED[:3]:
            for zone, zname in WATCHED_ZONES[:2]:
                path = [by.get((prod, zone, t)) for t in self.periods]
                if any(v is not None and pd.notna(v) for v in path):
                    series.append((f"{pname}, {zname}",
                                   [None if v is None or pd.isna(v) else float(v) / 1000.0 for v in path]))
        return series

    # -- charts -------------------------------------------------------------------
    def shortfall_chart(self, block: tuple[int, int] | None) -> None:
        """A column per period with a shortfall: the worst row's share (the block's column C)."""
        if block is None:
            return
        first, last = block
        name = self.ws.get_name()
        chart = self.book.add_chart({"type": "column"})
        chart.add_series({"name": "worst share of the period's demand unserved",
                          "categories": [name, first, 0, last, 0], "values": [name, first, 2, last, 2],
                          "data_labels": {"value": True, "num_format": "0%"}})
        chart.set_title({"name": "Shortfall: worst share of each period's demand", "name_font": {"size": 10}})
        chart.set_y_axis({"num_format": "0%", "min": 0, "name": "share of the period's demand"})
        chart.set_legend({"none": True})
        chart.set_size({"width": 620, "height": 300})
        self.ws.insert_chart(1, self.CHART_COL, chart, {"x_offset": 5, "y_offset": 5})

    def price_chart(self, series: list[tuple[str, list]], anchor_row: int) -> None:
        """Oxide prices by period, China and the EU; its data right of the printed page."""
        if not series:
            return
        ws, name, col = self.ws, self.ws.get_name(), self.LAST_COL + 2
        self.put(0, col, "Chart data: oxide prices by period (USD/kg)", "note")
        for j, h in enumerate(["period"] + [s for s, _ in series]):
            self.put(1, col + j, h, "head")
        for i, t in enumerate(self.periods):
            self.put(2 + i, col, t)
            for j, (_, vals) in enumerate(series, start=1):
                self.put(2 + i, col + j, vals[i], "kg")
        ws.set_column(col, col + len(series), 14)
        first, last = 2, 1 + len(self.periods)
        chart = self.book.add_chart({"type": "line"})
        for j, (label, _) in enumerate(series, start=1):
            chart.add_series({"name": [name, 1, col + j], "categories": [name, first, col, last, col],
                              "values": [name, first, col + j, last, col + j],
                              "marker": {"type": "circle", "size": 4}})
        chart.set_title({"name": "Oxide prices, China and the EU (USD/kg, log scale)", "name_font": {"size": 10}})
        chart.set_y_axis({"log_base": 10, "name": "USD/kg"})
        chart.set_legend({"position": "bottom"})
        chart.set_size({"width": 620, "height": 340})
        ws.insert_chart(anchor_row, self.CHART_COL, chart, {"x_offset": 5, "y_offset": 5})


class ComparisonSheet(SheetWriter):
    """The first sheet of a batch's comparison.xlsx: one row per scenario in plain words,
    money in M or bn USD, the changes against the base and against each scenario's parent,
    and two native charts of the changes against the base. The raw columns follow on the
    next sheets."""

    CHART_COL = 10  # column K
    COLUMNS = [  # (table column, header, format)
        ("scenario", "scenario", None), ("parent", "builds on", None), ("status", "status", None),
        ("resource_cost_pv_usd", "resource cost (bn USD, PV)", "bnusd"),
        ("vs_base_resource_cost_pv_usd", "against the base (M USD)", "musd"),
        ("vs_parent_resource_cost_pv_usd", "against its parent (M USD)", "musd"),
        ("unserved_t", "unserved (t)", "t"),
        ("vs_base_unserved_t", "unserved against the base (t)", "t"),
        ("unserved_penalty_pv_usd", "value of lost use (M USD, PV)", "musd"),
        ("vs_base_transfers_pv_usd", "transfers against the base (M USD)", "musd"),
    ]

    def __init__(self, book, table: pd.DataFrame, title: str) -> None:
        super().__init__(book, {"comparison": table}, title, "overview")
        f = book.add_format
        self.f |= {"musd": f({"num_format": M_USD}), "bnusd": f({"num_format": BN_USD})}

    def write(self) -> None:
        ws, t = self.ws, self.tables["comparison"]
        ws.set_column(0, 1, 28)
        ws.set_column(2, 2, 10)
        ws.set_column(3, 9, 15)
        self.start("Scenario comparison")
        ws.fit_to_pages(1, 1)
        cols = [c for c in self.COLUMNS if c[0] in t.columns]
        self.heading("Each scenario against the base case and its parent (PV: present value)")
        rows = [[None if pd.isna(r[c]) else r[c] for c, _, _ in cols] for _, r in t.iterrows()]
        first, last = self.block([h for _, h, _ in cols], rows, [f for _, _, f in cols])
        ws.set_row(first - 1, 45)  # three-line headers
        anchor = self.delta_chart(first, last, [c for c, _, _ in cols], "vs_base_resource_cost_pv_usd",
                                  "Resource cost against the base (M USD, present value)", 1)
        self.charts_end = self.delta_chart(first, last, [c for c, _, _ in cols], "vs_base_unserved_t",
                                           "Unserved demand against the base (t over the horizon)", anchor)
        self.row += 1
        self.put(self.row, 0, "Every figure of every scenario: sheet 'comparison' (and comparison.csv); the "
                 "change of each against the base: sheet 'deltas_vs_base'.", "note")
        ws.print_area(0, 0, max(self.row, self.charts_end), self.CHART_COL + 9)

    def delta_chart(self, first: int, last: int, cols: list[str], col: str, title: str, anchor: int) -> int:
        """A horizontal bar per scenario; returns the row below the chart."""
        if col not in cols:
            return anchor
        j, name = cols.index(col), self.ws.get_name()
        chart = self.book.add_chart({"type": "bar"})
        chart.add_series({"name": title, "categories": [name, first, 0, last, 0], "values": [name, first, j, last, j],
                          "invert_if_negative": False})
        chart.set_title({"name": title, "name_font": {"size": 10}})
        chart.set_x_axis({"num_format": M_USD if col.endswith("_usd") else "#,##0",
                          "name": "M USD" if col.endswith("_usd") else "t"})
        chart.set_y_axis({"reverse": True, "label_position": "low"})  # names left of the bars, not on them
        chart.set_legend({"none": True})
        height = max(260, 22 * (last - first + 1) + 110)
        chart.set_size({"width": 620, "height": height})
        self.ws.insert_chart(anchor, self.CHART_COL, chart, {"x_offset": 5, "y_offset": 5})
        return anchor + height // 20 + 2

