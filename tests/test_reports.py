"""The run folder a planner reads: report.xlsx (summary sheet with native charts, table
sheets), formula-looking text kept as text, PNG charts, and the console summary."""

from __future__ import annotations

import io
import re
import struct
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from model.reports.charts import summary_figures
from model.reports.console import show_summary
from model.reports.files import with_derived_tables, write_run, write_xlsx
from model.runs.pipeline import run_case
from test_cli import EXAMPLE


@pytest.fixture(scope="module")
def vault():
    """The example with a US NdPr reserve (so every summary chart has data)."""
    return run_case(str(EXAMPLE), "vault_60_days")


@pytest.fixture(scope="module")
def vault_folder(vault, tmp_path_factory):
    return write_run(vault, tmp_path_factory.mktemp("runs"))


def chart_xml(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n).decode() for n in z.namelist() if re.match(r"xl/charts/chart\d+\.xml$", n)}


def chart_titled(charts: dict[str, str], words: str) -> str:
    hit = [x for x in charts.values() if words in x]
    assert len(hit) == 1, f"one chart titled '{words}'"
    return hit[0]


def cells(ws, ref: str) -> list:
    """Values of a range like summary!$B$40:$B$43."""
    rng = ref.split("!")[1].replace("$", "")
    return [c.value for row in ws[rng] for c in row]


def test_summary_sheet_after_the_briefing_with_a_native_chart_per_figure(vault, vault_folder):
    tables = with_derived_tables(vault.tables)
    figs = summary_figures(tables)
    assert [f.name for f in figs] == ["cost_breakdown", "shortfall_by_country", "production_shares",
                                      "price_paths", "stockpile_cover", "content_shares"]
    book = vault_folder / "report.xlsx"
    charts = chart_xml(book)
    assert len(charts) == len(figs) + 2  # the briefing's two
    with zipfile.ZipFile(book) as z:
        rels = z.read("xl/worksheets/_rels/sheet2.xml.rels").decode()
        drawing = re.search(r"drawing(\d+)\.xml", rels).group(1)
        drawn = z.read(f"xl/drawings/_rels/drawing{drawing}.xml.rels").decode()
    assert drawn.count("../charts/chart") == len(figs)  # the summary's charts sit on the second sheet
    wb = openpyxl.load_workbook(book)
    assert wb.sheetnames[:2] == ["briefing", "summary"]
    assert set(tables) - {"summary"} <= set(wb.sheetnames)
    ws = wb["summary"]
    assert ws.freeze_panes == "A2"
    # Chart kinds: clustered bars for costs, 100 % stacked bars for production and
    # content shares, lines (log axis for prices) for prices and stockpile levels.
    assert "<c:barChart>" in chart_titled(charts, "Cost by component")
    prod = chart_titled(charts, "Production by chain stage")
    assert '<c:grouping val="percentStacked"/>' in prod
    assert '<c:logBase val="10"/>' in chart_titled(charts, "Model prices")
    assert "<c:lineChart>" in chart_titled(charts, "Stockpile cover")
    # Shortfall in time: the share of each period's demand left unserved, one cluster per period.
    short = chart_titled(charts, "Share of each period's demand left unserved")
    assert '<c:grouping val="clustered"/>' in short
    # Each chart plots cells of the summary sheet that hold the table's numbers.
    cost = chart_titled(charts, "Cost by component")
    ref = re.search(r"<c:val><c:numRef><c:f>([^<]+)</c:f>", cost).group(1)
    by = tables["costs"].groupby(["category", "component"], sort=False)["pv_usd"].sum()
    assert cells(ws, ref) == pytest.approx(list(by.sort_index(level=0, key=lambda s: s.map(
        {"resource": 0, "transfer": 1, "penalty": 2}), sort_remaining=False).to_numpy()), rel=1e-12)
    cover = chart_titled(charts, "Stockpile cover")
    refs = re.findall(r"<c:val><c:numRef><c:f>([^<]+)</c:f>", cover)
    st = tables["stockpiles"]
    assert len(refs) == 2  # the reserve's days of cover, and its target
    assert cells(ws, refs[0]) == pytest.approx(list(st["days_of_cover"]), rel=1e-12)
    assert cells(ws, refs[1]) == pytest.approx(list(st["target_t"] / st["final_demand_t_per_yr"] * 365), rel=1e-12)


def summary_value(ws, label: str, col: int = 2):
    for row in ws.iter_rows(values_only=True):
        if row[0] == label:
            return row[col - 1]
    raise AssertionError(f"no row '{label}' on the summary sheet")


def test_summary_sheet_headline_figures(vault, vault_folder):
    ws = openpyxl.load_workbook(vault_folder / "report.xlsx")["summary"]
    costs = vault.tables["costs"]
    res = costs[costs["category"] == "resource"]
    assert summary_value(ws, "total resource cost") == pytest.approx(res["pv_usd"].sum(), rel=1e-12)
    assert summary_value(ws, "total resource cost", 3) == pytest.approx(res["cost_usd"].sum(), rel=1e-12)
    assert summary_value(ws, "unserved tonnes (t over the horizon)") == pytest.approx(
        vault.tables["shortfall"]["unserved_t"].sum(), rel=1e-12)
    pen = costs[costs["category"] == "penalty"]
    assert summary_value(ws, "penalty value (USD)") == pytest.approx(pen["pv_usd"].sum(), rel=1e-12)
    # The reserve's purchases are a transfer, reported apart from the resource cost.
    buy = costs[costs["component"] == "stock_purchases"]
    assert summary_value(ws, "stockpile spending (purchases at reference price)", 3) == pytest.approx(
        buy["cost_usd"].sum(), rel=1e-12)
    assert buy["cost_usd"].sum() > 0


def tariff_and_floor_case(tmp_path):
    """A imports 100 t/yr of oxide from B with a 12 USD/t duty; B's plant has a 30 USD/t
    contract for difference indexed on B's price."""
    from conftest import solve
    from rows import dem, fac, fp, proc, product, rec
    return solve(tmp_path, {
        "periods": [{"period": "2025", "start_year": 2025, "duration_yr": 1}],
        "countries": [{"country": "A"}, {"country": "B"}],
        "products": [product("ox", "oxide", "NdPr")], "processes": [proc("sep", "separation")],
        "recipes": [rec("sep", "ox", 1)], "facilities": [fac("fa", "A", 100), fac("fb", "B", 200)],
        "facility_processes": [fp("fa", "sep", 40), fp("fb", "sep", 10)], "demand": [dem("A", "ox", 100)],
        "transport": [{"from_country": "B", "to_country": "A", "product": "ox", "cost_usd_per_t": 5}],
        "tariffs": [{"importer": "A", "exporter": "B", "product": "ox", "specific_usd_per_t": 12}],
        "price_floors": [{"floor": "g", "product": "ox", "facilities": "fb", "floor_price_usd_per_t": 30,
                          "mechanism": "cfd", "index_zone": "B"}]})


def test_transfers_on_the_summary_sheet(tmp_path):
    """A imports 100 t/yr of oxide from B (cost 10 + freight 5 + duty 12 beats its own
    40) and pays a 12 USD/t duty: tariff revenue 1,200 USD a year. B's plant is under a
    contract for difference at 30 USD/t against B's price (10, its running cost): the
    payment is 100 x (30 - 10) = 2,000. Both are transfers, apart from the resource cost
    100 x (10 + 5) = 1,500."""
    r = tariff_and_floor_case(tmp_path)
    write_xlsx(tmp_path / "tariff.xlsx", r.tables)
    ws = openpyxl.load_workbook(tmp_path / "tariff.xlsx")["summary"]
    assert summary_value(ws, "tariff revenue") == pytest.approx(1200.0)
    assert summary_value(ws, "total resource cost") == pytest.approx(100 * (10 + 5))
    assert summary_value(ws, "price-floor payments (contracts for difference)", 3) == pytest.approx(2000.0)


def test_transfers_by_who_pays_and_who_receives(tmp_path):
    """The case above: A's buyers pay A's government 100 t x 12 USD/t = 1,200 USD of duty;
    the floor's guarantor pays B's producers 100 x (30 - 10) = 2,000 USD."""
    r = tariff_and_floor_case(tmp_path)
    t = r.tables["transfers"].set_index("component")
    assert t.at["tariff", "payer"] == "buyers in A" and t.at["tariff", "receiver"] == "government of A"
    assert t.at["tariff", "usd"] == pytest.approx(1200.0, rel=1e-12)
    assert (t.at["floor_cfd", "payer"], t.at["floor_cfd", "receiver"]) == ("guarantor of floor g",
                                                                          "producers under floor g")
    assert t.at["floor_cfd", "usd"] == pytest.approx(2000.0, rel=1e-12)
    # The importer's consumers pay B's price (10) + freight (5) + duty (12) = 27 USD/t.
    w = r.tables["who_pays"].set_index(["country", "product", "period"])
    assert w.at[("A", "ox", "2025"), "prices_unique"]  # the only valid price: the figures are unique
    assert w.at[("A", "ox", "2025"), "consumer_spending_usd"] == pytest.approx(2700.0, rel=1e-9)
    assert w.at[("A", "ox", "2025"), "import_bill_usd"] == pytest.approx(2700.0, rel=1e-9)
    assert w.at[("B", "ox", "2025"), "export_revenue_usd"] == pytest.approx(1000.0, rel=1e-9)


def test_text_that_looks_like_a_formula_stays_text(tmp_path):
    nasty = ["=1+2", "+SUM(A1:A3)", "-A1", "@HYPERLINK(\"http://x\")", "=cmd|' /C calc'!A0", "plain"]
    summary = pd.DataFrame({"section": ["status"] * len(nasty), "item": nasty, "value": nasty, "unit": [""] * len(nasty)})
    tables = {"summary": summary, "facilities": pd.DataFrame({"facility": nasty, "capacity_t_per_yr": range(len(nasty))})}
    path = tmp_path / "r.xlsx"
    write_xlsx(path, tables)
    wb = openpyxl.load_workbook(path)
    got = [c.value for c in wb["facilities"]["A"][1:]]
    assert got == nasty
    assert all(c.data_type == "s" for c in wb["facilities"]["A"][1:])
    assert [c.value for c in wb["facilities"]["B"][1:]] == list(range(len(nasty)))
    status = [r for r in wb["summary"].iter_rows(values_only=True) if r[0] in nasty]
    assert [r[0] for r in status] == nasty and [r[1] for r in status] == nasty
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/sheet"):
                assert "<f>" not in z.read(name).decode(), f"a formula in {name}"


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_png_charts_for_slides(vault, vault_folder):
    figs = summary_figures(with_derived_tables(vault.tables))
    pngs = sorted((vault_folder / "charts").glob("*.png"))
    assert [p.stem for p in pngs] == sorted(f.name for f in figs)
    for p in pngs:
        w, h = png_size(p)
        assert w >= 1000 and h >= 300


def test_png_helper_draws_the_same_charts_and_is_replaced_when_it_fails(vault, vault_folder, tmp_path, caplog):
    """The PNGs the helper process draws (model.reports.aside) are the very files drawn in
    the run's own process; a helper that is gone or fails, or figures it was not sent,
    leave the drawing here."""
    import logging

    from model.reports.aside import PngsAside
    from model.reports.files import ReportPrep
    caplog.set_level(logging.DEBUG, logger="model.reports.aside")
    figs = ReportPrep(vault.tables).figs
    here = {p.name: p.read_bytes() for p in (vault_folder / "charts").glob("*.png")}

    def drawn(aside: PngsAside, name: str, sent: list) -> tuple[dict, str]:
        caplog.clear()
        pngs = {p.name: p.read_bytes() for p in aside.write(tmp_path / name, sent)}
        assert aside.proc is None  # answered (or stopped) and ended
        return pngs, caplog.text

    aside = PngsAside().start()
    aside.send(figs)
    assert drawn(aside, "helper", figs)[0] == here and "drawn by the helper process" in caplog.text
    batches = PngsAside().start()  # as a run sends them: the solve's figures, then the traced ones
    batches.send(figs[:2])
    batches.send(figs[2:])
    assert drawn(batches, "batches", figs)[0] == here and "drawn by the helper process" in caplog.text
    gone = PngsAside().start()
    gone.stop()
    gone.send(figs)
    assert drawn(gone, "gone", figs)[0] == here and "drawn here" in caplog.text
    unsent = PngsAside().start()
    unsent.send(figs[:1])
    assert drawn(unsent, "unsent", figs)[0] == here and "drawn here" in caplog.text
    broken = PngsAside().start()
    bad = [f for f in figs if f.name == "cost_breakdown"]
    bad = [type(bad[0])(**{**bad[0].__dict__, "value_label": None})]
    broken.send(bad)  # the helper fails on it
    with pytest.raises(TypeError):  # and so does drawing here, which says why
        broken.write(tmp_path / "broken", bad)
    assert broken.proc is None and "Traceback" in caplog.text  # the helper's, in run.log
    PngsAside().start().stop()  # a run that writes no report ends its helper


def test_run_folder_has_every_report(vault, vault_folder):
    names = {p.name for p in vault_folder.iterdir()}
    assert {"report.xlsx", "report.html", "charts", "manifest.json", "content_shares.csv", "chain.csv"} <= names
    cs = pd.read_csv(vault_folder / "content_shares.csv")
    assert cs.groupby(["country", "product", "period", "basis"])["content_share"].sum().to_numpy() == \
        pytest.approx(1.0, abs=1e-9)


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_console_rich_table_on_a_terminal_plain_lines_otherwise(vault):
    costs = vault.tables["costs"]
    total = costs.loc[costs["category"] == "resource", "pv_usd"].sum()
    tty = FakeTerminal()
    show_summary(vault, Path("/tmp/run-folder"), tty)
    text = tty.getvalue()
    assert "Headline figures" in text and "Who is short of what" in text
    assert "resource cost (PV)" in text and f"{total / 1e9:,.3f} bn USD" in text
    assert "stock_purchases" in text  # transfers on their own lines
    assert "report: /tmp/run-folder" in text
    plain = io.StringIO()
    show_summary(vault, Path("/tmp/run-folder"), plain)
    out = plain.getvalue()
    assert "status: optimal" in out and "resource cost (present value):" in out
    assert "\x1b[" not in out and "┃" not in out
    assert "report: /tmp/run-folder" in out


def test_a_table_longer_than_an_excel_sheet_points_to_its_csv(tmp_path, monkeypatch):
    import model.reports.files as report
    monkeypatch.setattr(report, "EXCEL_MAX_ROWS", 4)
    tables = {"flows": pd.DataFrame({"flow_t_per_yr": [1.0, 2.0, 3.0, 4.0]}),
              "prices": pd.DataFrame({"price_usd_per_t": [5.0]})}
    report.write_xlsx(tmp_path / "r.xlsx", tables)
    wb = openpyxl.load_workbook(tmp_path / "r.xlsx")
    assert "4 rows, more than an Excel sheet holds" in wb["flows"]["A1"].value
    assert "flows.csv" in wb["flows"]["A1"].value
    assert wb["prices"]["A2"].value == 5.0


def test_a_table_too_long_for_a_sheet_stays_in_its_csv(tmp_path, monkeypatch):
    """Tables over XLSX_MAX_ROWS rows (a 200-branch tree's prices: 520,000) get no sheet;
    a csv_only sheet names them and their row counts."""
    import openpyxl

    from model.reports import files
    monkeypatch.setattr(files, "XLSX_MAX_ROWS", 3)
    tables = {"small": pd.DataFrame({"a": [1, 2, 3]}), "long": pd.DataFrame({"a": range(4)})}
    files.write_xlsx(tmp_path / "r.xlsx", tables)
    book = openpyxl.load_workbook(tmp_path / "r.xlsx")
    assert book.sheetnames == ["small", "csv_only"]
    ws = book["csv_only"]
    assert [c.value for c in ws[2]][:3] == ["long", 4, "long.csv"]


def test_png_charts_read_at_a_glance():
    """Distinct colours for every series up to 20 ('other' grey), money in M or bn USD (no
    '1e11' offset), and time on a real axis where each value spans its period: a quarter
    a quarter wide, 2028-30 three years."""
    import numpy as np
    from model.reports.charts import OTHER_COLOUR, money_scale, series_colours, step_xy
    cols = [f"s{i}" for i in range(19)] + ["other"]
    colours = series_colours(cols)
    assert len(set(colours[:-1])) == 19 and colours[-1] == OTHER_COLOUR
    assert money_scale(np.array([1.3e11, 2e9]), "USD (present value)") == (1e9, "bn USD (present value)")
    assert money_scale(np.array([4.2e7]), "USD") == (1e6, "M USD")
    assert money_scale(np.array([1.3e11]), "t") == (1.0, "t")
    spans = {"2025Q1": (2025.0, 2025.25), "2028-30": (2028.0, 2031.0)}
    x, y = step_xy(spans, ["2025Q1", "2028-30"], [5.0, 7.0])
    assert x == [2025.0, 2025.25, 2028.0, 2031.0] and y == [5.0, 5.0, 7.0, 7.0]


def test_png_bars_show_every_series_and_titles_stay_on_the_figure():
    """A plain bar chart of two series draws both side by side (the shortfall by country
    drew only the first); a long title beside long category labels is wrapped across the
    figure from its left edge instead of running off the right."""
    import numpy as np
    from model.reports.png import render
    chart = {"name": "s", "title": "Share of each period's demand left unserved, by country and product",
             "kind": "bar", "value_label": "share", "horizontal": False, "log_scale": False, "note": "",
             "spans": None, "index": ["2027-29"], "index_name": "period", "columns": ["USA magnet_std", "JPN magnet_std"],
             "values": np.array([[0.301, 0.202]])}
    ax = render(chart).axes[0]
    heights = sorted(round(b.get_height(), 3) for b in ax.patches)
    assert heights == [0.202, 0.301]
    assert [b.get_facecolor()[:3] for b in ax.patches] != [ax.patches[0].get_facecolor()[:3]] * 2
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["USA magnet_std", "JPN magnet_std"]
    one = render(dict(chart, columns=["USA magnet_std"], values=np.array([[0.301]]))).axes[0]
    assert len(one.patches) == 1 and one.patches[0].get_width() == 0.5
    long = dict(chart, horizontal=True, title="Cost by component (present value; resource, transfers and unserved "
                "demand shown apart, never summed; calibration terms are not costs and not shown)",
                index=["penalty value (unserved, missed targets): shortfall_penalty", "resource: running"],
                columns=["USD"], values=np.array([[1.7e9], [2.1e10]]))
    f = render(long)
    f.canvas.draw()
    box = f._suptitle.get_window_extent()
    assert box.x0 >= 0 and box.x1 <= f.bbox.width and "\n" in f._suptitle.get_text()


def test_table_cells_keep_their_types(tmp_path):
    """Numbers stay numbers, booleans booleans, text text (even '=1+1'), blanks blank."""
    import numpy as np
    df = pd.DataFrame({"flag": [True, False], "t": [1.5, np.nan], "n": pd.Series([3, None], dtype="Int64"),
                       "label": ["=1+1", None], "mixed": ["a", 2.0]})
    write_xlsx(tmp_path / "t.xlsx", {"cells": df})
    ws = openpyxl.load_workbook(tmp_path / "t.xlsx")["cells"]
    assert [c.value for c in ws[1]] == ["flag", "t", "n", "label", "mixed"]
    assert [c.value for c in ws[2]] == [True, 1.5, 3, "=1+1", "a"]
    assert [c.value for c in ws[3]] == [False, None, None, None, 2]
    assert ws["D2"].data_type == "s"  # text, not a formula
