"""The briefing sheet (issue 17): the first sheet of report.xlsx, one landscape A4 page with
the headline, shortfall by period, the change against the reference, who pays and the
watched prices, money in M or bn USD (cells keep USD), two native charts plotting its cells;
and the print setup of the table sheets (the whole base-case workbook prints in under 100
pages: a table sheet prints its first 200 rows and its footer says so)."""

from __future__ import annotations

import re
import zipfile

import openpyxl
import pandas as pd
import pytest

from model.reports.files import PRINT_MAX_ROWS, write_run
from model.runs.pipeline import run_case
from test_cli import EXAMPLE
from test_periods_and_references import SETTINGS, sheets


@pytest.fixture(scope="module")
def vault_book(tmp_path_factory):
    """The example's vault scenario, with a shortfall in its crisis (both charts drawn)."""
    r = run_case(str(EXAMPLE), "vault_60_days")
    return r, write_run(r, tmp_path_factory.mktemp("runs")) / "report.xlsx"


def rows_of(ws) -> dict[str, tuple]:
    return {row[0]: row for row in ws.iter_rows(max_col=6, values_only=True) if isinstance(row[0], str)}


def test_briefing_is_the_first_sheet_and_prints_on_one_landscape_page(vault_book):
    _, book = vault_book
    wb = openpyxl.load_workbook(book)
    assert wb.sheetnames[0] == "briefing"
    ws = wb["briefing"]
    assert ws.page_setup.orientation == "landscape"
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    # fit to one page wide and one tall (1 is the file format's default, so it may be left out)
    assert ws.page_setup.fitToWidth in (None, 1) and ws.page_setup.fitToHeight in (None, 1)
    assert re.fullmatch(r"'?briefing'?!\$A\$1:\$R\$\d+", ws.print_area)


def test_briefing_figures_are_the_run_tables_in_m_and_bn_usd(vault_book):
    r, book = vault_book
    ws = openpyxl.load_workbook(book)["briefing"]
    rows = rows_of(ws)
    costs = r.tables["costs"].groupby("category")["pv_usd"].sum()
    head = rows["resource cost, present value"]
    assert head[1] == pytest.approx(costs["resource"], rel=1e-12) and head[2] == "bn USD"
    assert rows["value of lost use (penalty), present value"][1] == pytest.approx(costs["penalty"], rel=1e-12)
    w = r.tables["shortfall"].iloc[0]
    assert rows["worst shortfall (share of that period's demand)"][1].startswith(f"{w['unserved_share']:.1%} of ")
    # number formats scale USD to M and bn: the cell keeps the exact value
    fmt = {c.coordinate: c.number_format for row in ws.iter_rows() for c in row if c.value is not None}
    cell = next(c for row in ws.iter_rows() for c in row if c.value == "resource cost, present value")
    assert fmt[ws.cell(cell.row, 2).coordinate] == "#,##0.00,,,"
    cell = next(c for row in ws.iter_rows() for c in row if c.value == "value of lost use (penalty), present value")
    assert fmt[ws.cell(cell.row, 2).coordinate] == "#,##0.0,,"


def test_briefing_shortfall_by_period_and_its_chart(vault_book):
    r, book = vault_book
    ws = openpyxl.load_workbook(book)["briefing"]
    s = r.tables["shortfall"]
    rows = rows_of(ws)
    for t, g in s.groupby("period"):
        row = rows[t]
        assert row[1] == pytest.approx(g["unserved_t"].sum(), rel=1e-12)
        assert row[2] == pytest.approx(g["unserved_share"].max(), rel=1e-12)
    with zipfile.ZipFile(book) as z:
        rels = z.read("xl/worksheets/_rels/sheet1.xml.rels").decode()
        drawing = re.search(r"drawing(\d+)\.xml", rels).group(1)
        charts = [n for n in z.read(f"xl/drawings/_rels/drawing{drawing}.xml.rels").decode().split('"')
                  if n.startswith("../charts/")]
        xml = {n: z.read("xl/charts/" + n.split("/")[-1]).decode() for n in charts}
    assert len(xml) == 2
    short = next(x for x in xml.values() if "worst share of each period" in x)
    ref = re.search(r"<c:val><c:numRef><c:f>([^<]+)</c:f>", short).group(1)
    rng = ref.split("!")[1].replace("$", "")
    assert [c.value for row in ws[rng] for c in row] == pytest.approx(
        [s[s["period"] == t]["unserved_share"].max() for t in dict.fromkeys(
            p for p in r.tables["periods"]["period"] if p in set(s["period"]))], rel=1e-12)
    prices = next(x for x in xml.values() if "Oxide prices" in x)
    assert '<c:logBase val="10"/>' in prices


def test_briefing_gives_the_change_against_the_reference(tmp_path):
    """The quarter case of test_periods_and_references: its `crisis` (m2 stopped) leaves all
    25 t of the quarter's demand unserved against 12.5 t in the base: +12.5 t."""
    from model.case.casewriter import write_case
    from model.runs.single import run_and_report
    path = write_case(tmp_path / "q.xlsx", sheets(), SETTINGS)
    _, folder = run_and_report(str(path), "crisis", tmp_path / "out", explain=False)
    ws = openpyxl.load_workbook(folder / "report.xlsx")["briefing"]
    rows = rows_of(ws)
    assert rows["unserved"][1] == pytest.approx(25.0 - 12.5, abs=1e-9)  # crisis 25 t, base 12.5 t
    assert rows["Q"][1] == pytest.approx(25.0, abs=1e-9) and rows["Q"][2] == pytest.approx(1.0)


def test_a_long_table_sheet_prints_its_first_rows_and_says_so(vault_book):
    r, book = vault_book
    wb = openpyxl.load_workbook(book)
    long = [n for n, df in r.tables.items() if len(df) > PRINT_MAX_ROWS and n in wb.sheetnames]
    assert long
    for name in long:
        ws = wb[name]
        assert ws.print_area.endswith(f"${PRINT_MAX_ROWS + 1}")
        assert f"the first {PRINT_MAX_ROWS:,} of {len(r.tables[name]):,} rows are printed" in ws.oddFooter.left.text
        assert ws.page_setup.orientation == "landscape" and ws.print_title_rows == "$1:$1"


def test_comparison_xlsx_opens_on_a_readable_overview_with_delta_charts(tmp_path):
    """The quarter case's batch (base, crisis, relief): the overview's rows are the
    comparison's, in M/bn USD, with the changes against the base charted natively."""
    from model.case.casewriter import write_case
    from model.cli import main
    path = write_case(tmp_path / "q.xlsx", sheets(), SETTINGS)
    assert main(["-q", "run", str(path), "--all-scenarios", "--out", str(tmp_path / "out")]) == 0
    (folder,) = (tmp_path / "out").iterdir()
    book = folder / "comparison.xlsx"
    wb = openpyxl.load_workbook(book)
    assert wb.sheetnames == ["overview", "comparison", "deltas_vs_base"]
    ws = wb["overview"]
    assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.orientation == "landscape"
    rows = rows_of(ws)
    header = rows["scenario"]
    assert header[:4] == ("scenario", "builds on", "status", "resource cost (bn USD, PV)")
    comp = pd.read_csv(folder / "comparison.csv").set_index("scenario")
    for name in ("base case", "crisis", "relief"):
        assert rows[name][3] == pytest.approx(comp.loc[name, "resource_cost_pv_usd"], rel=1e-12)
    assert rows["crisis"][1] == "base case" and rows["relief"][1] == "crisis"
    cell = next(c for row in ws.iter_rows() for c in row if c.value == "relief")
    assert ws.cell(cell.row, 4).number_format == "#,##0.00,,," and ws.cell(cell.row, 5).number_format == "#,##0.0,,"
    with zipfile.ZipFile(book) as z:
        charts = [n for n in z.namelist() if re.match(r"xl/charts/chart\d+\.xml$", n)]
        titles = " ".join(z.read(n).decode() for n in charts)
    assert len(charts) == 2
    assert "Resource cost against the base" in titles and "Unserved demand against the base" in titles


def test_a_batch_writes_one_self_contained_dashboard(tmp_path):
    """dashboard.html of the quarter case's batch: plotly.js inlined once, the changes against
    the base charted, unserved tonnes by scenario and period from each scenario's shortfall
    (crisis: 25 t in Q, relief 18.75 t, the base 12.5 t)."""
    import json as _json
    from model.case.casewriter import write_case
    from model.cli import main
    path = write_case(tmp_path / "q.xlsx", sheets(), SETTINGS)
    assert main(["-q", "run", str(path), "--all-scenarios", "--out", str(tmp_path / "out")]) == 0
    (folder,) = (tmp_path / "out").iterdir()
    page = (folder / "dashboard.html").read_text(encoding="utf-8")
    assert _json.loads((folder / "manifest.json").read_text())["dashboard"] == "dashboard.html"
    assert page.count("plotly.js v") == 1 or page.count("* plotly.js") == 1  # the bundle's banner, once
    assert "<script src=" not in page  # nothing fetched: opens offline
    for div in ("fig-cost_delta", "fig-unserved_delta", "fig-unserved_by_period", "fig-unserved_by_country"):
        assert f'id="{div}"' in page
    from model.reports.dashboard import unserved_grid
    shortfalls = {n: pd.read_csv(folder / d / "shortfall.csv")
                  for n, d in (("base case", "base_case"), ("crisis", "crisis"), ("relief", "relief"))}
    grid = unserved_grid(shortfalls, "period", ["Q", "R"])
    assert list(grid.columns) == ["Q"]
    assert grid["Q"].to_dict() == pytest.approx({"base case": 12.5, "crisis": 25.0, "relief": 18.75})
    heat = page[page.index('id="fig-unserved_by_period"'):]
    heat = heat[:heat.index("</script>")]
    assert '"x":["Q"],"y":["base case","crisis","relief"]' in heat


def test_market_prices_skip_an_unused_pool():
    """A pool nobody uses has an arbitrary dual (0 here, price_unique False): the EU's Dy
    price is then its cheapest unique class price (436,558: non-Chinese oxide, the one
    that moves there; the Chinese class's 427,546 is not unique, nothing of it arrives);
    a unique pool price stands; with no class price unique (Japan) the cheapest class."""
    import pandas as pd

    from model.reports.sheet import market_prices
    prices = pd.DataFrame({
        "country": ["EUR"] * 3 + ["USA"] * 2 + ["JPN"] * 3,
        "product": ["Dy_ox"] * 8,
        "period": ["2031-35"] * 8,
        "origin_class": ["", "other", "CHN", "", "other", "", "other", "CHN"],
        "price_usd_per_t": [0.0, 436_557.7, 427_546.1, 402_242.8, 436_557.7, -50.0, 277_572.4, 277_000.0],
        "price_unique": [False, True, False, True, True, False, False, False]})
    got = market_prices(prices).set_index("country")["price_usd_per_t"]
    assert got.to_dict() == {"EUR": 436_557.7, "USA": 402_242.8, "JPN": 277_000.0}
