"""report.html: the figure data in the page (the Sankey's nodes and links match the
production and flow tables), self-containment, and a render in headless Chromium with
no network (.ci/run installs Debian's chromium)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import solve
from model.reports.charts import summary_figures
from model.reports.files import with_derived_tables
from model.reports.html import write_html
from test_tracing import three_country_case

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def plotly_figures(page: str) -> dict[str, list[dict]]:
    """div id -> traces, parsed from each Plotly.newPlot("id", [traces], ...) call."""
    out = {}
    dec = json.JSONDecoder()
    for m in re.finditer(r'Plotly\.newPlot\(\s*"([^"]+)",\s*', page):
        traces, _ = dec.raw_decode(page, m.end())
        out[m.group(1)] = traces
    return out


def hand_page(tmp_path: Path) -> tuple[str, dict]:
    r = solve(tmp_path, three_country_case())
    tables = with_derived_tables(r.tables)
    path = write_html(tmp_path / "report.html", tables, "hand case")
    return path.read_text(encoding="utf-8"), tables


def test_sankey_nodes_and_links_of_the_hand_case(tmp_path):
    """In t rare-earth content per year: mine A 60 (30 to A's separator, 30 to C's),
    mine B 40 (to C); the separators send 15 and 35 t of NdPr oxide to B's magnet plant
    (no metal stage runs, so separation links to magnets); B's 100 t of magnets
    (0.5 t REO each) serve B 60 and A 40: 30 and 20 t."""
    page, _ = hand_page(tmp_path)
    figs = plotly_figures(page)
    sankey = figs["fig-sankey"]
    assert len(sankey) == 1 and sankey[0]["type"] == "sankey"
    nodes = sankey[0]["node"]["label"]
    assert sorted(nodes) == sorted(["mine: A", "mine: B", "separation: A", "separation: C", "magnet: B",
                                    "use: A", "use: B"])
    link = sankey[0]["link"]
    got = {(nodes[s], nodes[t]): v for s, t, v in zip(link["source"], link["target"], link["value"])}
    assert got == pytest.approx({("mine: A", "separation: A"): 30.0, ("mine: A", "separation: C"): 30.0,
                                 ("mine: B", "separation: C"): 40.0, ("separation: A", "magnet: B"): 15.0,
                                 ("separation: C", "magnet: B"): 35.0, ("magnet: B", "use: A"): 20.0,
                                 ("magnet: B", "use: B"): 30.0}, rel=1e-9)


def test_sankey_of_the_example_matches_production_and_flows(tmp_path):
    """Per period: a node for every country that ran a stage (mining, separation,
    reduction, magnet), no other; every link between two countries is backed by a flow
    from the first to the second in the flows table; one trace per period, the worst
    period's visible (the first when nothing is short)."""
    from test_cli import EXAMPLE
    from model.runs.pipeline import run_case
    r = run_case(str(EXAMPLE))
    tables = with_derived_tables(r.tables)
    page = write_html(tmp_path / "report.html", tables, "example").read_text(encoding="utf-8")
    traces = plotly_figures(page)["fig-sankey"]
    periods = list(dict.fromkeys(tables["production"]["period"]))
    assert [t["name"] for t in traces] == periods
    worst = tables["shortfall"].iloc[0]["period"] if len(tables["shortfall"]) else periods[0]
    assert [t.get("visible", True) for t in traces] == [t == worst for t in periods]  # opens on the worst period
    column = {"mining": "mine", "separation": "separation", "reduction": "metal", "magnet": "magnet"}
    stage = tables["chain"].drop_duplicates("process").set_index("process")["process_stage"]
    prod = tables["production"]
    flows = tables["flows"]
    for tr in traces:
        t = tr["name"]
        ran = prod[(prod["period"] == t) & (prod["activity_t_per_yr"] > 1e-9)]
        expected = {f"{column[s]}: {c}" for c, s in zip(ran["country"], ran["process"].map(stage)) if s in column}
        nodes = tr["node"]["label"]
        assert {n for n in nodes if not n.startswith("use: ")} == expected
        lanes = set(zip(flows.loc[flows["period"] == t, "from_country"], flows.loc[flows["period"] == t, "to_country"]))
        for s, d in zip(tr["link"]["source"], tr["link"]["target"]):
            a, b = nodes[s].split(": ")[1], nodes[d].split(": ")[1]
            assert a == b or (a, b) in lanes, f"link {nodes[s]} -> {nodes[d]} has no flow"
    # The summary charts are in the page too.
    names = set(plotly_figures(page))
    assert {f"fig-{f.name}" for f in summary_figures(tables)} <= names


def test_page_is_self_contained(tmp_path):
    """No script, style or image from elsewhere; plotly.js inline (the Chromium test below
    opens it with the network blocked)."""
    page, _ = hand_page(tmp_path)
    assert page.count("<script") >= 2
    assert not re.search(r"<script[^>]+src=", page), "a script is loaded from elsewhere"
    assert not re.search(r"<link[^>]+href=", page)
    assert not re.search(r"<img[^>]+src=", page)
    assert len(page) > 1_000_000  # plotly.js is inline


def run_chromium(page: Path, tmp_path: Path) -> tuple[str, str]:
    """Open a copy of the page headless, with no network, after injecting a script that
    records errors (uncaught, console.error, failed loads) into <pre id=page-errors>.
    Returns (rendered DOM, Chromium's log)."""
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed: .ci/run installs it"
    hook = """<script>window.__errors=[];
window.addEventListener('error',function(e){window.__errors.push(String(e.message||(e.target&&(e.target.src||e.target.href))||'error'));},true);
var __ce=console.error;console.error=function(){window.__errors.push(Array.prototype.join.call(arguments,' '));__ce.apply(console,arguments);};
window.addEventListener('load',function(){setTimeout(function(){var p=document.createElement('pre');p.id='page-errors';
p.textContent=JSON.stringify(window.__errors);document.body.appendChild(p);},300);});</script>"""
    text = page.read_text(encoding="utf-8")
    probe = tmp_path / "probe.html"
    probe.write_text(text.replace("<head>", "<head>" + hook, 1), encoding="utf-8")
    profile = tmp_path / "profile"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
           "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, proc.stderr


def page_errors(dom: str, log: str) -> list[str]:
    m = re.search(r'<pre id="page-errors">(.*?)</pre>', dom, re.S)
    assert m, "the error probe did not run (the page did not finish loading)"
    errors = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    console = [line for line in log.splitlines() if ":CONSOLE" in line and re.search(r"Uncaught|Error|Failed", line)]
    return errors + console


def test_page_renders_in_headless_chromium_without_errors(tmp_path):
    page, _ = hand_page(tmp_path)
    path = tmp_path / "report.html"
    dom, log = run_chromium(path, tmp_path)
    assert page_errors(dom, log) == []
    # The Sankey's SVG nodes are drawn: one per node of the visible trace.
    assert len(re.findall(r'class="sankey-node"', dom)) == 7
    assert 'class="main-svg"' in dom


def test_the_probe_catches_console_errors_and_blocked_network(tmp_path):
    """The harness itself: a page that logs an error and loads a script from the
    network reports both (so an empty list above means something)."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><head><script src='https://cdn.plot.ly/plotly-2.0.0.min.js'></script>"
                   "</head><body><script>console.error('boom')</script></body></html>", encoding="utf-8")
    dom, log = run_chromium(bad, tmp_path)
    errors = page_errors(dom, log)
    assert any("boom" in e for e in errors)
    assert any("cdn.plot.ly" in e for e in errors)


def test_the_sankey_opens_on_the_worst_period_and_heavy_prices_are_charted():
    """The example's vault scenario is short in one period: the Sankey shows that period
    first (its menu marks it), and NdPr, Dy and Tb oxide prices are drawn in China and
    the importers, in USD/kg."""
    from model.reports.html import heavy_price_figure, sankey_figure, worst_period
    from model.runs.pipeline import run_case
    from test_cli import EXAMPLE
    r = run_case(str(EXAMPLE), "vault_60_days")
    tables = with_derived_tables(r.tables)
    worst = worst_period(tables)
    assert worst == r.tables["shortfall"].iloc[0]["period"]
    fig = sankey_figure(tables)
    visible = [t.name for t in fig.data if t.visible]
    assert visible == [worst]
    menu = fig.layout.updatemenus[0]
    assert menu.buttons[menu.active].label == worst
    heavy = heavy_price_figure(tables)
    names = {t.name for t in heavy.data}
    assert "Dy oxide, China" in names and heavy.layout.yaxis.type == "log"
    p = r.tables["prices"]
    dy = p[(p["product"] == "Dy_ox") & (p["country"] == "CHN") & (p["origin_class"].fillna("") == "")]
    trace = next(t for t in heavy.data if t.name == "Dy oxide, China")
    by = dict(zip(trace.x, trace.y))
    for t, v in zip(dy["period"], dy["price_usd_per_t"]):
        assert by[t] == pytest.approx(v / 1000.0, rel=1e-12)


def test_page_charts_use_the_palette_money_scale_and_a_time_axis():
    """Lines over periods are steps on a year axis (a quarter a quarter wide), money in M/bn."""
    import pandas as pd
    from model.reports.charts import PALETTE, Figure
    from model.reports.html import plotly_figure
    data = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}, index=pd.Index(["Q", "R"], name="period"))
    fig = plotly_figure(Figure("x", "x", data, "line", "t", spans={"Q": (2025.0, 2025.25), "R": (2025.25, 2026.0)}))
    a = fig.data[0]
    assert list(a.x) == [2025.0, 2025.25, 2026.0] and list(a.y) == [1.0, 2.0, 2.0] and a.line.shape == "hv"
    assert [t.line.color for t in fig.data] == PALETTE[:2]
    cost = plotly_figure(Figure("c", "c", pd.DataFrame({"v": [1.3e11, 2e9]}, index=["a", "b"]), "bar", "USD"))
    assert cost.layout.yaxis.title.text == "bn USD" and list(cost.data[0].y) == [130.0, 2.0]


def test_period_codes_are_categories_not_dates():
    """'2025-04' or '2026' would be read as dates by plotly and the other periods dropped."""
    import pandas as pd
    from model.reports.charts import Figure
    from model.reports.html import plotly_figure
    data = pd.DataFrame({"a": [1.0, 2.0, 3.0]}, index=["2025Q1", "2025-04", "2026"])
    assert plotly_figure(Figure("x", "x", data, "bar", "t")).layout.xaxis.type == "category"
    assert plotly_figure(Figure("x", "x", data, "bar", "t", horizontal=True)).layout.yaxis.type == "category"


def test_plain_figures_are_what_plotly_writes():
    """The page's figures are written without plotly's Figure objects (PLAIN_FIGURES):
    each div hands plotly.js what plotly's own to_html hands it for the Figure of the same
    data (the traces, layout, template and config equal; plotly validates every figure on
    the way), into a div of the same id, with plotly.js inlined in the first only. The
    markup around it is compared without its white space: a plotly release that lays its
    page out differently is no defect of ours."""
    import plotly.graph_objects as go
    from model.reports.html import PAGE_CONFIG, figure_spec, heavy_price_spec, plotly_div, sankey_spec
    from model.runs.pipeline import run_case
    from test_cli import EXAMPLE
    tables = with_derived_tables(run_case(str(EXAMPLE), "vault_60_days").tables)
    specs = [sankey_spec(tables), heavy_price_spec(tables)] + [figure_spec(f) for f in summary_figures(tables)]
    dec = json.JSONDecoder()

    def parts(div: str) -> tuple[str, list]:
        m = re.search(r'Plotly\.newPlot\(\s*"[^"]+",\s*', div)
        data, i = dec.raw_decode(div, m.end())
        i = div.index(",", i) + 1
        layout, _ = dec.raw_decode(div, len(div[i:]) - len(div[i:].lstrip()) + i)
        markup = re.sub(r"\[\{.*\}\],\s*\{.*\},", "FIGURE,", div, flags=re.S)
        # plotly.js when inlined (plotly's own file) as one token
        markup = re.sub(r"<script>window.PlotlyConfig.*?</script>\s*<script>.*?</script>", "PLOTLYJS", markup,
                        flags=re.S)
        return re.sub(r"\s+", "", markup), [data, layout]

    for i, spec in enumerate(specs):
        ours = plotly_div(spec, f"fig-{i}", with_plotlyjs=i == 0)
        theirs = go.Figure(spec).to_html(full_html=False, include_plotlyjs=i == 0, div_id=f"fig-{i}",
                                         config=dict(PAGE_CONFIG))
        assert parts(ours) == parts(theirs)
        assert ("PLOTLYJS" in parts(ours)[0]) == (i == 0) and f'id="fig-{i}"' in ours
