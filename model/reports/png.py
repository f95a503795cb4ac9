"""PNG charts from plain chart data (numpy and matplotlib's Agg canvas only: no pandas,
nothing from `model`), so the helper process that draws a run's PNGs
(model.reports.aside) loads this file alone. model.reports.charts turns its Figures into
this data (charts.png_chart). A chart is a dict: name, title, kind (bar, stacked,
percent, line), value_label, horizontal, log_scale, note, spans (period -> (start, end)
year, or None), index and columns (labels), index_name, values (rows x columns, float,
NaN where missing)."""

from __future__ import annotations

import gc
import io
import pickle
import sys
import textwrap
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np

# Distinct colours for up to 20 series (Tableau 10, then its lighter pairs); 'other' is grey.
PALETTE = ["#4E79A7", "#F28E2B", "#E15759", "#76B7B2", "#59A14F", "#EDC948", "#B07AA1", "#FF9DA7",
           "#9C755F", "#BAB0AC", "#1F3A5F", "#A0CBE8", "#FFBE7D", "#8CD17D", "#B6992D", "#F1CE63",
           "#499894", "#86BCB6", "#D37295", "#FABFD2"]
OTHER_COLOUR = "#9E9E9E"
TARGET = " target"  # suffix of a target series (drawn dashed in its stockpile's colour)
PNG_WIDTH_IN, PNG_DPI = 10, 120  # 1200 pixels wide: a slide's width
PNG_COMPRESSION = 1  # zlib level: level 6 (the default) spends more time for files a tenth smaller


def series_colours(columns: list[str]) -> list[str]:
    """One colour per series, none repeated up to len(PALETTE) series; 'other' grey."""
    out, k = [], 0
    for c in columns:
        if str(c) == "other":
            out.append(OTHER_COLOUR)
        else:
            out.append(PALETTE[k % len(PALETTE)])
            k += 1
    return out


def step_xy(spans: dict[str, tuple[float, float]], periods: list[str], values: list[float]
            ) -> tuple[list[float], list[float]]:
    """A step line: each value held across its period, as wide as the period lasts."""
    x, y = [], []
    for t, v in zip(periods, values):
        a, b = spans[t]
        x += [a, b]
        y += [v, v]
    return x, y


def money_scale(values: np.ndarray, label: str) -> tuple[float, str]:
    """(divisor, axis label): USD shown in M or bn, never with a '1e11' offset."""
    if "USD" not in label:
        return 1.0, label
    top = float(np.nanmax(np.abs(values))) if values.size and np.isfinite(values).any() else 0.0
    if top >= 1e9:
        return 1e9, label.replace("USD", "bn USD", 1)
    if top >= 1e6:
        return 1e6, label.replace("USD", "M USD", 1)
    return 1.0, label


def png_figure(height: float):
    """A bare Agg figure: no pyplot (no figure manager, no backend switch for the caller)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure
    f = MplFigure(figsize=(PNG_WIDTH_IN, height), dpi=PNG_DPI)
    FigureCanvasAgg(f)
    return f


def _plot_bars(ax, chart: dict, values: np.ndarray, colours: list[str]) -> None:
    """Bars at 0..n-1 with each category's name: a 'bar' chart draws its columns side by
    side (one series: width 0.5, in the first colour), the stacked kinds every column on
    top of the last (width 0.8; negative parts below zero)."""
    n, k = values.shape
    pos = np.arange(n)
    stacked = chart["kind"] != "bar"
    width = 0.8 if stacked or k > 1 else 0.5
    each = width if stacked else width / max(k, 1)
    up, down = np.zeros(n), np.zeros(n)
    bar = ax.barh if chart["horizontal"] else ax.bar
    for j, colour in enumerate(colours if k > 1 or stacked else [PALETTE[0]]):
        y = values[:, j]
        base = np.where(y >= 0, up, down) if stacked else 0.0
        at = pos if stacked else pos - width / 2 + each * (j + 0.5)
        bar(at, y, each, base, color=colour, label=chart["columns"][j])
        up, down = up + np.where(y >= 0, y, 0.0), down + np.where(y >= 0, 0.0, y)
    edge = 0.25 + width / 2
    if chart["horizontal"]:
        ax.set_ylim(-edge, n - 1 + edge)
        ax.set_yticks(pos, chart["index"])
        ax.set_ylabel(chart["index_name"])
    else:
        ax.set_xlim(-edge, n - 1 + edge)
        ax.set_xticks(pos, chart["index"], rotation=90)
        ax.set_xlabel(chart["index_name"])


def _plot_lines(ax, chart: dict, values: np.ndarray, colours: list[str]) -> None:
    """Lines: on a time axis of years, each value held across its period, where the
    chart has the periods' spans; else one point per category, joined."""
    cats, spans = chart["index"], chart["spans"]
    timed = spans and all(t in spans for t in cats)
    for j, (col, colour) in enumerate(zip(chart["columns"], colours)):
        if timed:
            x, y = step_xy(spans, cats, values[:, j].tolist())
            ax.plot(x, y, color=colour, label=col, linewidth=1.8, linestyle="--" if col.endswith(TARGET) else "-")
        else:
            ax.plot(np.arange(len(cats)), values[:, j], marker="o", color=colour, label=col)
    if chart["log_scale"] and bool((values > 0).any()):
        ax.set_yscale("log")
    elif timed and bool((np.where(np.isnan(values), 0.0, values) >= 0).all()):
        ax.set_ylim(bottom=0)  # levels and days from zero: a cut axis exaggerates
    if timed:
        ax.set_xlabel("year (each value spans its period)")
    else:
        ax.set_xticks(np.arange(len(cats)), cats)
        ax.set_xlabel(chart["index_name"])


def draw(chart: dict, path: Path | IO[bytes]) -> Path | IO[bytes]:
    """One chart as a PNG (a file, or a binary stream)."""
    render(chart).savefig(path, pil_kwargs={"compress_level": PNG_COMPRESSION})
    return path


def render(chart: dict):
    """One chart on a laid-out matplotlib figure."""
    values = np.asarray(chart["values"], float)
    if chart["kind"] != "line":
        values = np.where(np.isnan(values), 0.0, values)
    scale, label = money_scale(values, chart["value_label"])
    values = values / scale
    cols = chart["columns"]
    base_cols = [c for c in cols if not c.endswith(TARGET)]
    colour_of = dict(zip(base_cols, series_colours(base_cols)))
    colours = [colour_of.get(c[: -len(TARGET)] if c.endswith(TARGET) else c, OTHER_COLOUR) for c in cols]
    f = png_figure(4.5 if not chart["horizontal"] else max(3.0, 0.35 * len(values) + 1.8))
    ax = f.add_subplot()
    (_plot_lines if chart["kind"] == "line" else _plot_bars)(ax, chart, values, colours)
    # The title over the whole figure from its left edge: over the axes, a long title
    # beside long category labels ran off the right edge.
    f.suptitle(textwrap.fill(chart["title"], 110), x=0.01, ha="left", fontsize=10)
    (ax.set_xlabel if chart["horizontal"] else ax.set_ylabel)(label)
    if chart["kind"] == "percent":
        ax.set_xlim(0, 1) if chart["horizontal"] else ax.set_ylim(0, 1)
    if chart["horizontal"]:
        ax.invert_yaxis()
    if len(cols) > 1 or chart["kind"] != "bar":
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    if chart["note"]:
        f.text(0.01, 0.01, chart["note"], fontsize=7, color="#555555")
    f.tight_layout()
    f.set_layout_engine(None)  # laid out: left in place, savefig would lay it out again in a dry-run draw
    return f


def _warm() -> None:
    """Draw a small chart to memory: matplotlib imported, fonts found, text laid out and
    the PNG encoder loaded before the run's charts arrive."""
    draw({"name": "warm", "title": "warm", "kind": "bar", "value_label": "t", "horizontal": True,
          "log_scale": False, "note": "", "spans": None, "index": ["x", "y"], "index_name": "i",
          "columns": ["a"], "values": np.array([[1.0], [2.0]])}, io.BytesIO())


def _batches(stream: IO[bytes]) -> Iterator[list[dict]]:
    """The lists of charts the run sends, one pickle each, until it closes the pipe."""
    while True:
        try:
            yield pickle.load(stream)
        except EOFError:
            return


def serve() -> None:
    """The helper (model.reports.aside): warm up, read the charts on standard input (in
    batches, each drawn as it arrives), draw them, and answer on standard output once the
    run closes it ('ok', [(name, PNG bytes)], [(warning category, message)]) or ('error',
    traceback)."""
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but the answer on the answer's pipe
    try:
        _warm()
    except Exception:
        pass  # drawing the charts will say what is wrong
    received = False
    with warnings.catch_warnings(record=True) as caught:
        try:
            pngs = []
            for charts in _batches(sys.stdin.buffer):
                received = True
                for chart in charts:
                    buf = io.BytesIO()
                    draw(chart, buf)
                    pngs.append((chart["name"], buf.getvalue()))
            answer: tuple = ("ok", pngs, [(w.category.__name__, str(w.message)) for w in caught])
        except Exception:
            answer = ("error", traceback.format_exc())
    if not received and answer[0] == "ok":
        return  # no charts: the run writes no report
    pickle.dump(answer, out, protocol=pickle.HIGHEST_PROTOCOL)
    out.flush()
    # The helper ends now and the run waits for that: its objects are frozen so that the
    # interpreter's teardown skips collecting them (0.1 s; the system frees the memory).
    gc.freeze()
