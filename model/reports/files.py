"""Write a run's tables: a new folder per run, built under a temporary name and
renamed when complete. Reads result tables only, never the model."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from model.analysis.tracing import Tracer, content_shares
from model.reports.aside import PngsAside
from model.reports.charts import Figure, solve_figures, summary_figures, traced_figures, write_pngs
from model.reports.sheet import SheetWriter, header_format

LOG = logging.getLogger(__name__)

# Units shown in report headers, by column-name suffix.
_FORMATS = {"_usd": "#,##0", "_usd_per_t": "#,##0.00", "_share": "0.0%", "utilisation": "0.0%",
            "_t_per_yr": "#,##0.00", "_t": "#,##0.00"}
# How transfer components read on the summary sheet.
_TRANSFER_NAMES = {"tariffs": "tariff revenue", "floor_duty": "price-floor import duties",
                   "floor_offtake_payment": "price-floor offtake payments",
                   "floor_payment_cfd": "price-floor payments (contracts for difference)",
                   "floor_payment_must_run": "price-floor payments (guaranteed buyer's loss)",
                   "stock_purchases": "stockpile spending (purchases at reference price)"}


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("pyomo", "highspy", "pandas", "numpy", "openpyxl", "xlsxwriter", "plotly", "matplotlib",
                "rare-earth-model"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


SLUG_MAX = 60  # characters of a name in a folder name (file systems allow 255 bytes in all)
OWNER = ".owner"  # in a folder being written: who writes it (removed when it is complete)
TMP_PREFIX = ".tmp_"


def slug(text: str) -> str:
    """A name safe in a folder name: other characters become '-', and a long name is
    cut, with a short hash of the whole so two long names stay apart."""
    s = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "case"
    if len(s) > SLUG_MAX:
        s = s[:SLUG_MAX - 9].rstrip("-.") + "-" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return s


def new_run_dir(out_root: Path, case_name: str, scenario: str | None) -> tuple[Path, Path]:
    """(temporary folder to write in, the name it should get: claim_name() makes sure).
    Unfinished folders left by killed runs are cleaned up or reported first."""
    out_root.mkdir(parents=True, exist_ok=True)
    sweep_stale(out_root)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}_{slug(case_name)}" + (f"_{slug(scenario)}" if scenario else "")
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{base}_", dir=out_root))
    (tmp / OWNER).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                         "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}))
    return tmp, out_root / base


def claim_name(final: Path) -> Path:
    """Make the run's folder name ours: an empty folder made atomically (so two runs in
    the same second never take one name), `_2`, `_3`... when taken."""
    base, n = final, 1
    while True:
        try:
            final.mkdir()
            return final
        except FileExistsError:
            n += 1
            final = base.with_name(f"{base.name}_{n}")


def commit_run_dir(tmp: Path, final: Path) -> None:
    """Make a complete folder visible under its claimed name (a rename onto the empty
    folder claim_name made, which POSIX does atomically)."""
    (tmp / OWNER).unlink(missing_ok=True)
    os.replace(tmp, final)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def sweep_stale(out_root: Path) -> None:
    """Unfinished run folders (.tmp_*) whose writer is gone: removed when it ran on this
    machine and its process no longer exists, else reported (a warning naming them)."""
    host = socket.gethostname()
    for tmp in sorted(out_root.glob(f"{TMP_PREFIX}*")):
        if not tmp.is_dir():
            continue
        try:
            owner = json.loads((tmp / OWNER).read_text())
        except (OSError, ValueError):
            owner = None
        if owner and owner.get("host") == host and isinstance(owner.get("pid"), int) and not _alive(owner["pid"]):
            shutil.rmtree(tmp, ignore_errors=True)
            LOG.warning(f"removed {tmp}: an unfinished run folder left by a run that was killed "
                        f"(process {owner['pid']}, started {owner.get('started')})")
        elif owner is None and time.time() - tmp.stat().st_mtime > 86400:
            LOG.warning(f"{tmp} is an unfinished run folder more than a day old whose writer is unknown: "
                        "delete it if no run is writing there")


# A text cell that a spreadsheet opening the CSV would run as a formula starts with one of
# these; it is written with a leading apostrophe (' stays visible as text; to undo,
# drop one leading apostrophe before any of these characters). Numbers are untouched.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(df: pd.DataFrame) -> pd.DataFrame:
    """The table with text cells that would be read as formulas prefixed by an apostrophe."""
    text_cols = [c for c in df.columns if df[c].dtype == object or pd.api.types.is_string_dtype(df[c])]
    if not text_cols:
        return df
    out = df.copy()
    for c in text_cols:
        col = out[c]
        risky = col.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_STARTS))
        if risky.any():
            out[c] = col.where(~risky, "'" + col.astype(str))
    return out


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """A table as CSV, safe to open in a spreadsheet (see FORMULA_STARTS)."""
    neutralise(df).to_csv(path, index=False)


def _number_format(col: str) -> str | None:
    if col == "value":  # figure/value/unit tables (summaries): thousands separated
        return "#,##0.00"
    for suffix, fmt in _FORMATS.items():
        if col.endswith(suffix):
            return fmt
    return None


EXCEL_MAX_ROWS = 1_048_576  # rows in one Excel sheet, header included
PRINT_MAX_ROWS = 200  # rows of a table sheet that are printed (the sheet holds them all)


def print_setup(ws) -> None:
    """Landscape, every column on one page width, the header row on every page."""
    ws.set_landscape()
    ws.set_paper(9)  # A4
    ws.fit_to_pages(1, 0)
    ws.repeat_rows(0)


def write_cells(ws, df: pd.DataFrame) -> None:
    """The table's cells below its header row, column by column with the writer's typed
    calls (numbers as numbers, text as text, blanks left empty): several times faster than
    pandas' to_excel, which formats every cell on the way."""
    for j, col in enumerate(df.columns):
        s = df[col]
        if pd.api.types.is_bool_dtype(s):
            for i, v in enumerate(s.tolist(), start=1):
                ws.write_boolean(i, j, bool(v))
        elif pd.api.types.is_numeric_dtype(s):
            for i, v in enumerate(s.to_numpy(dtype=float, na_value=np.nan).tolist(), start=1):
                if v == v:  # NaN stays blank; inf is written (an error cell: nan_inf_to_errors)
                    ws.write_number(i, j, v)
        else:
            for i, v in enumerate(s.tolist(), start=1):
                if v is None or (isinstance(v, float) and v != v):
                    continue
                if isinstance(v, (bool, np.bool_)):
                    ws.write_boolean(i, j, bool(v))
                elif isinstance(v, (int, float, np.integer, np.floating)):
                    ws.write_number(i, j, float(v))
                else:
                    ws.write_string(i, j, str(v))


def write_table_sheet(xw, book, name: str, df: pd.DataFrame) -> None:
    """One table (an Excel table): frozen header, filters, widths, number formats by unit suffix. Text is
    written as text (the workbook never turns strings into formulas). A table longer
    than an Excel sheet gets a sheet that points to its CSV twin instead."""
    head = header_format(book)
    sheet_name = name[:31]
    if len(df) + 1 > EXCEL_MAX_ROWS:
        ws = book.add_worksheet(sheet_name)
        ws.write_string(0, 0, f"{name}: {len(df):,} rows, more than an Excel sheet holds; "
                              f"the whole table is in {name}.csv beside this workbook")
        return
    ws = book.add_worksheet(sheet_name)
    write_cells(ws, df)
    ws.freeze_panes(1, 0)
    print_setup(ws)
    if len(df) > PRINT_MAX_ROWS:  # a printout of thousands of rows helps no one: print the top, say so
        ws.print_area(0, 0, PRINT_MAX_ROWS, max(len(df.columns) - 1, 0))
        ws.set_footer(f"&L{name}: the first {PRINT_MAX_ROWS:,} of {len(df):,} rows are printed; every row is in "
                      f"this sheet and in {name}.csv&R&P of &N")
    else:
        ws.set_footer(f"&L{name}&R&P of &N")
    if len(df.columns) and len(df):  # an Excel table: filters, banded rows, structured references
        ws.add_table(0, 0, len(df), len(df.columns) - 1, {
            "name": "t_" + re.sub(r"\W", "_", sheet_name), "style": "Table Style Light 9",
            "columns": [{"header": str(c)} for c in df.columns]})
    elif len(df.columns):
        ws.autofilter(0, 0, 1, len(df.columns) - 1)
    for j, col in enumerate(df.columns):
        ws.write_string(0, j, str(col), head)
        lengths = [len(str(v)) for v in df[col].head(200)]
        width = min(max([len(str(col))] + lengths) + 2, 60)
        fmt = _number_format(str(col))
        ws.set_column(j, j, width, book.add_format({"num_format": fmt}) if fmt else None)


XLSX_MAX_ROWS = 100_000  # longer tables are left to their CSV (Excel stops at 1,048,576 rows)


def xlsx_writer(path: Path) -> pd.ExcelWriter:
    """An xlsxwriter workbook that never turns text into formulas, links or numbers."""
    return pd.ExcelWriter(path, engine="xlsxwriter",
                          engine_kwargs={"options": {"strings_to_formulas": False, "strings_to_urls": False,
                                                     "strings_to_numbers": False, "nan_inf_to_errors": True}})


def write_xlsx(path: Path, tables: dict[str, pd.DataFrame], title: str = "",
               figs: list[Figure] | None = None) -> None:
    """A one-page briefing sheet first, then the summary sheet (headline figures and native
    charts), then one sheet per table. Text that looks like a formula (=, +, -, @) is written as text.
    figs: the summary figures when the caller has made them (else made here)."""
    from model.reports.briefing import BriefingSheet  # here: a single run needs it only once its figures are sent
    with xlsx_writer(path) as xw:
        book = xw.book
        if "summary" in tables:
            BriefingSheet(book, tables, title).write()
            SummarySheet(book, tables, title, figs=figs).write()
        elif "tree_summary" in tables:
            TreeSummarySheet(book, tables, title).write()
        big = {n: len(df) for n, df in tables.items() if len(df) > XLSX_MAX_ROWS}
        for name, df in tables.items():
            if name != "summary" and name not in big:
                write_table_sheet(xw, book, name, df)
        if big:  # a table too long to read in a sheet (a large tree's prices) stays in its CSV
            write_table_sheet(xw, book, "csv_only", pd.DataFrame(
                [(n, rows, f"{n}.csv", f"more than {XLSX_MAX_ROWS:,} rows: read it from the CSV (or filter it "
                  "in a pivot table)") for n, rows in big.items()], columns=["table", "rows", "file", "why"]))


def write_comparison_xlsx(path: Path, table: pd.DataFrame, deltas: pd.DataFrame, title: str = "") -> None:
    """comparison.xlsx: the overview sheet first (plain labels, M/bn USD, delta charts), then
    every column ('comparison') and the deltas against the base ('deltas_vs_base')."""
    from model.reports.briefing import ComparisonSheet
    with xlsx_writer(path) as xw:
        ComparisonSheet(xw.book, table, title).write()
        write_table_sheet(xw, xw.book, "comparison", table)
        write_table_sheet(xw, xw.book, "deltas_vs_base", deltas)


class SummarySheet(SheetWriter):
    """The summary sheet: headline blocks in columns A-H, charts to their right, the data
    each chart plots in a block of its own (so a planner sees the numbers)."""

    def __init__(self, book, tables: dict[str, pd.DataFrame], title: str, sheet: str = "summary",
                 figs: list[Figure] | None = None) -> None:
        super().__init__(book, tables, title, sheet)
        self.figs = figs

    def write(self) -> None:
        self.ws.set_column(0, 0, 48)
        self.ws.set_column(1, 7, 16)
        self.start("Run summary")
        summ = self.tables["summary"]
        self.status_block(summ)
        self.cost_block()
        self.unserved_block(summ)
        self.transfer_block()
        self.policy_block()
        self.who_pays_block()
        self.objective_block(summ)
        self.shortfall_block()
        self.explanation_block()
        self.price_block()
        self.chart_blocks(self.figs)
        self.heading("All headline figures (the summary table)")
        self.block(["section", "item", "value", "unit"],
                   summ[["section", "item", "value", "unit"]].values.tolist(), [None, None, "num", None])

    def objective_block(self, summ: pd.DataFrame) -> None:
        """How the objective adds up, and what each word means (the summary's glossary)."""
        add = summ[summ["section"] == "how the objective adds up"]
        if not add.empty:
            self.heading("How the objective adds up (present value, USD)")
            self.block(["part", "present value (USD)"], add[["item", "value"]].values.tolist(), [None, "usd"])
        words = summ[summ["section"] == "glossary"]
        if not words.empty:
            self.heading("Glossary")
            self.block(["word", "meaning"], words[["item", "value"]].values.tolist(), [None, None])

    def status_block(self, summ: pd.DataFrame) -> None:
        self.heading("Status")
        st = summ[summ["section"] == "status"]
        self.block(["item", "value", "unit"], st[["item", "value", "unit"]].values.tolist(), [None, "usd", None])

    def _costs(self, category: str) -> pd.DataFrame:
        c = self.tables.get("costs")
        if c is None or c.empty:
            return pd.DataFrame(columns=["component", "pv_usd", "cost_usd"])
        return c[c["category"] == category].groupby("component", sort=False)[["pv_usd", "cost_usd"]].sum().reset_index()

    def cost_block(self) -> None:
        self.heading("Resource cost by component (the headline; USD)")
        c = self._costs("resource")
        rows = c[["component", "pv_usd", "cost_usd"]].values.tolist()
        rows.append(["total resource cost", float(c["pv_usd"].sum()), float(c["cost_usd"].sum())])
        self.block(["component", "present value (USD)", "undiscounted (USD)"], rows, [None, "usd", "usd"])

    def unserved_block(self, summ: pd.DataFrame) -> None:
        self.heading("Unserved demand (not in the resource cost)")
        pen = self._costs("penalty")
        u = summ[summ["section"] == "unserved demand"].set_index("item")["value"]
        short = self.tables.get("shortfall")
        worst = []
        if short is not None and not short.empty:  # the table is sorted worst share first
            w = short.iloc[0]
            worst = [(f"worst: {w['country']} {w['product']} ({w['segment']}) in {w['period']}, share of "
                      "that period's demand", float(w["unserved_share"]), None, "share")]
        rows = worst + [
                ("unserved tonnes (t over the horizon)", u.get("unserved tonnes", 0.0), None, "t"),
                ("share of demand unserved over the horizon", u.get("share of demand unserved", 0.0), None, "share"),
                ("penalty value (USD)", float(pen["pv_usd"].sum()), float(pen["cost_usd"].sum()), "usd")]
        self.block(["item", "value (present value for money)", "undiscounted"], [], [])
        for item, v, undiscounted, fmt in rows:
            self.put(self.row, 0, item)
            self.put(self.row, 1, v, fmt)
            self.put(self.row, 2, undiscounted, "usd")
            self.row += 1

    def transfer_block(self) -> None:
        self.heading("Transfers (money changing hands; not in the resource cost; USD)")
        c = self._costs("transfer")
        rows = [[_TRANSFER_NAMES.get(k, k), pv, un] for k, pv, un in c[["component", "pv_usd", "cost_usd"]].values]
        if not rows:
            rows = [["none in this run", 0.0, 0.0]]
        self.block(["transfer", "present value (USD)", "undiscounted (USD)"], rows, [None, "usd", "usd"])

    WHO_PAYS = ["consumer_spending_usd", "import_bill_usd", "export_revenue_usd", "producer_revenue_usd"]

    def who_pays_block(self, limit: int = 15) -> None:
        """Per country over the horizon (undiscounted USD at the model's prices), largest
        spending first; then the controlling country's ledger where a control acts."""
        w = self.tables.get("who_pays")
        if w is None or w.empty:
            return
        by = w.groupby("country")[self.WHO_PAYS].sum()
        by = by.reindex(by["consumer_spending_usd"].abs().sort_values(ascending=False, kind="mergesort").index)
        self.heading(f"Who pays, by country over the horizon (undiscounted USD; {min(limit, len(by))} of "
                     f"{len(by)} countries, largest spending first; by product and period: who_pays sheet)")
        self.block(["country", "consumers' spending", "import bill", "export revenue", "producers' revenue"],
                   [[c] + list(r) for c, r in by.head(limit).iterrows()], [None, "usd", "usd", "usd", "usd"])
        led = self.tables.get("coercer")
        if led is not None and not led.empty:
            g = led.groupby(["exporter", "product"], sort=False)[
                ["exported_t", "world_exported_t", "export_revenue_usd", "world_export_revenue_usd"]].sum()
            g = g[g["exported_t"] > 1e-9].sort_values("export_revenue_usd", ascending=False).head(limit)
            self.heading("The controlling country's exports and market share over the horizon (by period: "
                         "coercer sheet; licence rents: transfers sheet)")
            self.block(["exporter", "product", "exported (t)", "share of world tonnes", "export revenue (USD)",
                        "share of world export revenue"],
                       [[e, p, r["exported_t"], r["exported_t"] / r["world_exported_t"], r["export_revenue_usd"],
                         r["export_revenue_usd"] / r["world_export_revenue_usd"]
                         if abs(r["world_export_revenue_usd"]) > 1e-9 else None] for (e, p), r in g.iterrows()],
                       [None, None, "t", "share", "usd", "share"])

    def policy_block(self) -> None:
        """What the scenario buys against its first reference, per period and over the horizon."""
        v = self.tables.get("policy_value")
        if v is None or v.empty:
            return
        name = v["reference"].iloc[0]
        self.heading(f"What the scenario buys against {name} (present value; avoided = reference minus scenario)")
        cols = ["period", "avoided_unserved_t", "avoided_penalty_value_pv_usd", "resource_cost_change_pv_usd",
                "transfers_change_pv_usd", "resource_cost_per_avoided_t_usd"]
        self.block(["period", "avoided unserved (t)", "avoided penalty value (USD)", "resource cost change (USD)",
                    "transfers change (USD)", "resource cost per avoided t (USD)"],
                   v[cols].values.tolist(), [None, "t", "usd", "usd", "usd", "usd"])

    def shortfall_block(self) -> None:
        self.heading("Shortfall by period: share of that period's demand, worst first (t in the period)")
        s = self.tables.get("shortfall")
        if s is None or s.empty:
            self.put(self.row, 0, "none: all demand is served")
            self.row += 1
            return
        cols = ["country", "product", "segment", "period", "demand_t", "unserved_t", "unserved_share",
                "penalty_value_usd"]
        self.block(cols, s[cols].values.tolist(), [None, None, None, None, "t", "t", "share", "usd"])
        h = self.tables.get("shortfall_horizon")
        if h is not None and not h.empty:
            self.heading("Over the horizon, beside the worst period")
            cols = ["country", "product", "segment", "worst_period", "worst_period_share", "demand_t",
                    "unserved_t", "unserved_share"]
            self.block(cols, h[cols].values.tolist(), [None, None, None, None, "share", "t", "t", "share"])

    def explanation_block(self) -> None:
        ex = self.tables.get("explanations")
        if ex is None or ex.empty:
            return
        self.heading("Why short: limits ranked by how much shortfall falls when each is relaxed by 10 %")
        top = ex.drop_duplicates(["country", "product", "segment"])
        for text in top["text"]:
            self.ws.set_row(self.row, 45)
            self.ws.merge_range(self.row, 0, self.row, 7, "", self.f["wrap"])
            self.ws.write_string(self.row, 0, str(text), self.f["wrap"])
            self.row += 1

    def price_block(self) -> None:
        from model.reports.charts import key_prices, period_order
        kp = key_prices(self.tables)
        if kp.empty:
            return
        self.heading("Key model prices (USD/t; tag: cost, penalty = rationing, disposal = glut)")
        periods = [t for t in period_order(self.tables) if t in set(kp["period"])][:6]
        rows = []
        for (p, c), g in kp.groupby(["product", "country"], sort=False):
            by = g.set_index("period")
            rows.append([p, c] + [by["price_usd_per_t"].get(t) for t in periods]
                        + [", ".join(dict.fromkeys(g["tag"]))])
        self.block(["product", "country"] + [f"{t} (USD/t)" for t in periods] + ["tags"], rows,
                   [None, None] + ["num"] * len(periods) + [None])
        self.put(self.row, 0, "Prices are balance duals / period weight; prices of joint products and of "
                 "nodes linked by parallel lanes are often not unique.", "note")
        self.row += 1

    # -- charts ---------------------------------------------------------------
    def chart_blocks(self, figs: list[Figure] | None = None) -> None:
        figs = summary_figures(self.tables) if figs is None else figs
        if not figs:
            return
        self.heading("Chart data (each chart on the right plots one of these blocks)")
        anchor = 1
        for fig in figs:
            self.row += 1
            self.put(self.row, 0, fig.title, "note")
            self.row += 1
            first, last, ncol = self.figure_block(fig)
            chart = self.chart(fig, first, last, ncol)
            self.ws.insert_chart(anchor, self.CHART_COL, chart, {"x_offset": 5, "y_offset": 5})
            anchor += 22 if not fig.horizontal else max(22, 2 * len(fig.data) + 8)

    def figure_block(self, fig: Figure) -> tuple[int, int, int]:
        data = fig.data
        fmt = {"percent": "share", "bar": "usd"}.get(fig.kind, "num")
        header = [str(data.index.name or "")] + [str(c) for c in data.columns]
        rows = [[str(i)] + [None if pd.isna(v) else float(v) for v in r] for i, r in zip(data.index, data.values)]
        first, last = self.block(header, rows, [None] + [fmt] * data.shape[1])
        return first, last, data.shape[1]

    def chart(self, fig: Figure, first: int, last: int, ncol: int):
        kind = {"bar": ("bar" if fig.horizontal else "column", None),
                "stacked": ("bar" if fig.horizontal else "column", "stacked"),
                "percent": ("bar" if fig.horizontal else "column", "percent_stacked"),
                "line": ("line", None)}[fig.kind]
        spec = {"type": kind[0]} | ({"subtype": kind[1]} if kind[1] else {})
        chart = self.book.add_chart(spec)
        name = self.ws.get_name()
        for j in range(1, ncol + 1):
            series = {"name": [name, first - 1, j], "categories": [name, first, 0, last, 0],
                      "values": [name, first, j, last, j]}
            if fig.kind == "line":
                series["marker"] = {"type": "circle", "size": 5}
            chart.add_series(series)
        chart.set_title({"name": fig.title[:120], "name_font": {"size": 10}})
        value_axis = {"name": fig.value_label}
        if fig.log_scale:
            value_axis["log_base"] = 10
        elif fig.kind in ("bar", "stacked") and bool((fig.data.fillna(0.0) >= 0).all().all()):
            value_axis["min"] = 0  # bars start at zero: a cut axis makes small parts look large
        if fig.kind == "percent":
            value_axis["num_format"] = "0%"
        if fig.horizontal:
            chart.set_x_axis(value_axis)
            chart.set_y_axis({"reverse": True})
        else:
            chart.set_y_axis(value_axis)
        if ncol == 1 and fig.kind == "bar":
            chart.set_legend({"none": True})
        else:
            chart.set_legend({"position": "right"})
        height = 320 if not fig.horizontal else max(320, 28 * (last - first + 1) + 120)
        chart.set_size({"width": 760, "height": height})
        return chart


class TreeSummarySheet(SummarySheet):
    """The first sheet of a scenario tree's report: the plan's figures, the branches, the
    here-and-now decisions and charts of cost and shortfall by branch (money in M or bn USD)."""

    MAX_BRANCHES = 20  # branches a chart shows (the most likely; every branch is in tree_branches)

    def write(self) -> None:
        self.ws.set_column(0, 0, 60)
        self.ws.set_column(1, 1, 24)  # stockpile names, probabilities
        self.ws.set_column(2, 8, 15)
        self.start("Plan under uncertainty")
        self.figures_block()
        self.branches_block()
        self.decisions_block()
        self.chart_blocks(tree_figures(self.tables, self.MAX_BRANCHES))

    def figures_block(self) -> None:
        self.heading("The plan under uncertainty")
        rows = []
        for fig, v, unit in self.tables["tree_summary"][["figure", "value", "unit"]].itertuples(index=False):
            money = unit == "USD"
            rows.append([fig, float(v) / 1e6 if money and pd.notna(v) else v, "M USD" if money else unit])
        self.block(["figure", "value", "unit"], rows, [None, "num", None])

    def branches_block(self) -> None:
        b = self.tables["tree_branches"]
        self.heading("Branches (costs in present value)")
        cols = [("branch", "branch", None, 1.0), ("probability", "probability", "share", 1.0),
                ("objective_usd", "objective (bn USD)", "num", 1e-9),
                ("resource_cost_pv_usd", "resource cost (bn USD)", "num", 1e-9),
                ("penalty_value_pv_usd", "unserved penalty (M USD)", "num", 1e-6),
                ("unserved_t", "unserved (t)", "t", 1.0), ("worst_period_share", "worst period share", "share", 1.0),
                ("wait_and_see_objective_usd", "with foresight (bn USD)", "num", 1e-9),
                ("no_crisis_plan_objective_usd", "no-crisis plan (bn USD)", "num", 1e-9)]
        cols = [c for c in cols if c[0] in b.columns]
        rows = [[r[k] * f if f != 1.0 and pd.notna(r[k]) else r[k] for k, _, _, f in cols] for _, r in b.iterrows()]
        self.block([c[1] for c in cols], rows, [c[2] for c in cols])

    def decisions_block(self, limit: int = 40) -> None:
        plan = self.tables.get("tree_plan")
        if plan is None or plan.empty:
            return
        first = plan[(plan["decided_in"] == "here and now") & ~plan["committed_build_in_data"]
                     & (plan["value"].abs() > 1e-6)]
        self.heading("Here-and-now decisions (taken before any branch is known; choices, not committed builds)")
        if first.empty:
            self.put(self.row, 0, "none: the plan buys no reserve and builds nothing before the first reveal", "note")
            self.row += 1
            return
        rows = first[["decision", "unit_or_stockpile", "period", "value"]].head(limit).values.tolist()
        self.block(["decision", "stockpile or unit", "period", "value"], rows, [None, None, None, "t"])
        if len(first) > limit:
            self.put(self.row, 0, f"{len(first) - limit} more in the sheet tree_plan", "note")
            self.row += 1


def tree_figures(tables: dict[str, pd.DataFrame], max_branches: int = 20) -> list[Figure]:
    """Cost by branch, unserved share by period in the worst branches, and the
    decomposition's bounds by iteration (where it ran)."""
    figs = []
    b = tables["tree_branches"].sort_values("probability", ascending=False, kind="mergesort").head(max_branches)
    parts = {"resource cost": "resource_cost_pv_usd", "transfers": "transfers_pv_usd",
             "unserved penalty": "penalty_value_pv_usd"}
    cost = pd.DataFrame({k: b[v].to_numpy(float) / 1e9 for k, v in parts.items() if v in b},
                        index=pd.Index(b["branch"], name="branch"))
    more = len(tables["tree_branches"]) - len(b)
    which = f", the {len(b)} most likely" if more else ""
    figs.append(Figure("tree_cost", "Cost by branch (present value)" + which, cost, "stacked", "bn USD",
                       horizontal=len(b) > 8))
    # the differences a bn-USD axis from zero hides: each branch against the cheapest shown
    above = (b["objective_usd"] - b["objective_usd"].min()).to_numpy(float) / 1e6
    figs.append(Figure("tree_cost_above", "Each branch's cost above the cheapest branch (present value)" + which,
                       pd.DataFrame({"above the cheapest": above}, index=pd.Index(b["branch"], name="branch")),
                       "bar", "M USD", horizontal=len(b) > 8))
    short = tables.get("tree_shortfall")
    if short is not None and not short.empty:
        # the worst block (country, product, segment) of each period: its unserved share
        share = short.groupby(["period", "branch"], sort=False)["unserved_share"].max().unstack("branch")
        order = tables.get("tree_periods")
        periods = list(order["period"]) if order is not None else list(share.index)
        share = share.reindex(periods).fillna(0.0)
        worst = share.max().sort_values(ascending=False, kind="mergesort").head(8).index
        figs.append(Figure("tree_shortfall", "Worst shortfall in each period (share of that demand), worst branches",
                           share[worst].rename_axis("period"), "line", "share of demand"))
    dec = tables.get("tree_decomposition")
    if dec is not None and not dec.empty:
        d = dec.set_index("iteration")[["lower_bound_usd", "upper_bound_usd"]] / 1e9
        figs.append(Figure("tree_bounds", "Decomposition: bounds on the expected cost by iteration",
                           d.rename(columns={"lower_bound_usd": "lower bound", "upper_bound_usd": "upper bound"}),
                           "line", "bn USD"))
    return figs


def with_derived_tables(tables: dict[str, pd.DataFrame], tracer: Tracer | None = None) -> dict[str, pd.DataFrame]:
    """The result tables plus what reports derive from them (content shares). tracer: one
    made on `tables`, kept by the caller to reuse its traces (the HTML Sankey)."""
    out = dict(tables)
    if "content_shares" not in out and "production" in out and "chain" in out:
        out["content_shares"] = content_shares(out, tracer=tracer)
    return out


def run_title(result) -> str:
    scen = f", scenario {result.scenario}" if result.scenario else ""
    return f"Rare-earth supply chain: case {result.case.name}{scen} ({result.solve.status})"


def write_folder(out_root: str | Path, case_name: str, label: str | None, fill: Callable[[Path], None],
                 log: Callable[[Path], str] | None = None) -> Path:
    """A new run folder: `fill(tmp)` writes the files into a temporary folder, which gets
    its name claimed, run.log (`log(final)`, called last with the final path, returns its
    text) and is renamed into place; on any failure nothing is left behind."""
    tmp, final = new_run_dir(Path(out_root), case_name, label)
    try:
        fill(tmp)
        final = claim_name(final)
        if log is not None:
            (tmp / "run.log").write_text(log(final))
        commit_run_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if final.exists() and final.is_dir() and not any(final.iterdir()):
            final.rmdir()  # a claimed name never filled
        raise
    return final


class ReportPrep:
    """What a run's report derives from the solve's tables, made once and as soon as they
    exist (a single run sends the figures to the PNG helper before its explanations):
    the tracer (the content shares and the Sankey share its traces), the content shares
    and the summary figures. The figures read the solve's tables only, never the
    explanations or comparisons added later. aside: the PNG helper, sent the figures as
    they are made: those of the solve's tables first, drawn while the tracing runs, then
    the content shares' (the PNGs were the last part of a teaching-case run to finish)."""

    def __init__(self, tables: dict[str, pd.DataFrame], aside: PngsAside | None = None,
                 figs: list[Figure] | None = None) -> None:
        """figs: solve_figures of the tables when the caller has made (and sent) them."""
        if figs is None:
            figs = solve_figures(tables) if tables else []
            if aside is not None:
                aside.send(figs)
        self.tracer = Tracer(tables)
        self.derived = with_derived_tables(tables, self.tracer)
        traced = traced_figures(self.derived) if self.derived else []
        if aside is not None:
            aside.send(traced)
        self.figs = figs + traced

    def tables(self, tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        """The report's tables: the run's as they are now, then the derived ones."""
        out = dict(tables)
        out.update({k: v for k, v in self.derived.items() if k not in out})
        return out


def write_run(result, out_root: str | Path = "outputs", extra: dict | None = None,
              log: Callable[[Path], str] | None = None, prep: ReportPrep | None = None,
              aside: PngsAside | None = None) -> Path:
    """Write report.xlsx, report.html, PNG charts (charts/), one CSV per table,
    manifest.json and (when `log` is given) run.log into a new folder. Derived tables
    (content shares) are added here from the result tables (or taken from `prep`, made
    from them earlier). `log(final)` is called last, with the folder's final path, and
    returns run.log's text (so the caller can say its closing lines, the path included,
    before the record is taken). aside: the helper process prep's figures were sent to
    (model.reports.aside), which draws the PNGs; else they are drawn here."""
    from model.reports.html import write_html

    def fill(tmp: Path) -> None:
        t0 = time.perf_counter()
        p = prep or ReportPrep(result.tables)
        tables = p.tables(result.tables)
        for name, df in tables.items():
            write_csv(df, tmp / f"{name}.csv")
        if tables:
            title = run_title(result)
            write_xlsx(tmp / "report.xlsx", tables, title, p.figs)
            write_html(tmp / "report.html", tables, title, p.figs, p.tracer)
            if aside is not None:
                aside.write(tmp / "charts", p.figs)
            else:
                write_pngs(tables, tmp / "charts", p.figs)
        manifest = {
            "case": result.case.path,
            "input_sha256": result.case.input_hash,
            "scenario": result.scenario,
            "status": result.solve.status,
            "status_message": result.solve.message,
            "objective_usd": result.solve.objective if result.optimal else None,
            "seconds": result.seconds,
            "solver": {k: v for k, v in result.solve.stats.items() if not k.endswith("_s")},
            "package_versions": package_versions(),
            "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "tables": sorted(tables),
        }
        if extra:
            manifest.update(extra)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
        LOG.debug("report files written in %.2f s", time.perf_counter() - t0)
    return write_folder(out_root, result.case.name, result.scenario, fill, log)


def write_tree_run(case, tree: str, tables: dict[str, pd.DataFrame], manifest: dict, out_root: str | Path = "outputs",
                   log: Callable[[Path], str] | None = None) -> Path:
    """A scenario tree's run folder: one CSV per table, report.xlsx (the summary, the
    branches and the here-and-now plan first), report.html, manifest.json and run.log."""
    from model.reports.html import write_tree_html

    def fill(tmp: Path) -> None:
        for name, df in tables.items():
            write_csv(df, tmp / f"{name}.csv")
        title = f"{case.name}: plan under uncertainty (tree {tree})"
        write_xlsx(tmp / "report.xlsx", tables, title)
        write_tree_html(tmp / "report.html", tables, title)
        (tmp / "manifest.json").write_text(json.dumps(
            {"case": case.path, "input_sha256": case.input_hash, "tree": tree, **manifest,
             "package_versions": package_versions(),
             "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
             "tables": sorted(tables)}, indent=2, default=str))
    return write_folder(out_root, case.name, f"tree_{tree}", fill, log)
