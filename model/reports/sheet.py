"""The cell-writing base of the workbook's front sheets (briefing, summary): typed cells
that are never formulas, headed blocks, the title row and the print setup."""

from __future__ import annotations

import numpy as np
import pandas as pd


def market_prices(prices: pd.DataFrame) -> pd.DataFrame:
    """One price per country, product and period (origin_class dropped). Where a product
    carries origin classes a country has a use-pool price and one per class; each class
    flows into the pool for free, so the pool's price is at most every class price and
    equals the cheapest used one. A node nobody uses has an arbitrary dual (a pool at 0 or
    minus the disposal cost; a class below its landed price), so: the pool's price where
    it is proven unique, else the cheapest unique class price (material that moves there),
    else the cheapest class price, else the pool's."""
    if "origin_class" not in prices.columns:
        return prices
    cls = prices["origin_class"].fillna("").astype(str)
    unique = prices["price_unique"].astype(bool) if "price_unique" in prices.columns else pd.Series(True, prices.index)
    key = ["country", "product", "period"]
    classes = prices[cls != ""].assign(_u=unique[cls != ""])
    # the cheapest unique class price where one exists, else the cheapest of all
    best = (classes.sort_values(["_u", "price_usd_per_t"], ascending=[False, True], kind="stable")
            .drop_duplicates(key).set_index(key)["price_usd_per_t"])
    pool = prices[cls == ""]
    at = pd.MultiIndex.from_frame(pool[key])
    swap = ~unique[pool.index].to_numpy(bool) & at.isin(best.index)
    out = pool.copy()
    out.loc[swap, "price_usd_per_t"] = at[swap].map(best).to_numpy(float)
    only = best[~best.index.isin(at)].rename("price_usd_per_t").reset_index()  # class rows, no pool row
    return pd.concat([out, only], ignore_index=True).assign(origin_class="")


def header_format(book):
    return book.add_format({"bold": True, "bg_color": "#DDE6F0", "border": 1, "text_wrap": True})


class SheetWriter:
    """A sheet written top down: headline blocks in columns A-H, charts to their right."""

    CHART_COL = 9  # column J

    def __init__(self, book, tables: dict[str, pd.DataFrame], title: str, sheet: str) -> None:
        self.book, self.tables, self.title = book, tables, title
        self.ws = book.add_worksheet(sheet)
        self.row = 0
        f = book.add_format
        self.f = {"title": f({"bold": True, "font_size": 14}), "h": f({"bold": True, "font_size": 12,
                                                                        "font_color": "#1F3864"}),
                  "head": header_format(book), "usd": f({"num_format": "#,##0"}),
                  "t": f({"num_format": "#,##0.0"}), "share": f({"num_format": "0.0%"}),
                  "num": f({"num_format": "#,##0.00"}), "text": f({"text_wrap": False}),
                  "note": f({"italic": True, "font_color": "#555555"}),
                  "wrap": f({"text_wrap": True, "valign": "top"})}

    # -- cells --------------------------------------------------------------
    def put(self, r: int, c: int, v, fmt: str | None = None) -> None:
        """Numbers as numbers (blank if missing), everything else as text, never a formula."""
        ws, f = self.ws, self.f.get(fmt) if fmt else None
        if v is None or (isinstance(v, float) and not np.isfinite(v)):
            ws.write_blank(r, c, None, f)
        elif isinstance(v, (bool, np.bool_)):
            ws.write_string(r, c, str(bool(v)), f)
        elif isinstance(v, (int, float, np.integer, np.floating)):
            ws.write_number(r, c, float(v), f)
        else:
            ws.write_string(r, c, str(v), f)

    def heading(self, text: str) -> None:
        self.row += 1
        self.put(self.row, 0, text, "h")
        self.row += 1

    def block(self, header: list[str], rows: list[list], formats: list[str | None]) -> tuple[int, int]:
        """A small table; returns (first data row, last data row)."""
        for j, h in enumerate(header):
            self.put(self.row, j, h, "head")
        if any(len(str(h)) > 16 for h in header[1:]):  # a wrapped header gets the height of two lines
            self.ws.set_row(self.row, 30)
        first = self.row + 1
        for r in rows:
            self.row += 1
            for j, v in enumerate(r):
                self.put(self.row, j, v, formats[j] if j < len(formats) else None)
        self.row += 1
        return first, self.row - 1

    # -- content ------------------------------------------------------------
    def start(self, default_title: str) -> None:
        """The title, a frozen first row, landscape A4 one page wide; blocks start below."""
        ws = self.ws
        self.put(0, 0, self.title or default_title, "title")
        ws.freeze_panes(1, 0)
        ws.set_landscape()
        ws.set_paper(9)
        ws.fit_to_pages(1, 0)
        self.row = 1
