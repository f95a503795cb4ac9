"""docs/tutorial.md stays true: its two sheets are read from its tables into a scenario
workbook, its commands run as written (with the run folders in a temporary folder), and the
figures it quotes are checked against the run."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT
from model.cli import main

TUTORIAL = ROOT / "docs" / "tutorial.md"


def markdown_table(text: str, heading: str) -> pd.DataFrame:
    """The first table after a heading (header row, separator, rows; cells stripped)."""
    block: list[str] = []
    for ln in text.split(heading, 1)[1].splitlines()[1:]:
        if ln.startswith("|"):
            block.append(ln)
        elif block:
            break
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in block]
    return pd.DataFrame(rows[2:], columns=rows[0])


def commands(text: str) -> list[list[str]]:
    """Every `rare-earth ...` line of the console blocks, as arguments."""
    out = []
    for blk in re.findall(r"```console\n(.*?)```", text, flags=re.S):
        out += [shlex.split(ln)[1:] for ln in blk.splitlines() if ln.startswith("rare-earth ")]
    return out


@pytest.fixture(scope="module")
def tutorial_run(tmp_path_factory):
    text = TUTORIAL.read_text()
    tmp = tmp_path_factory.mktemp("tutorial")
    book = tmp / "my_scenarios.xlsx"
    with pd.ExcelWriter(book) as xw:
        for sheet in ("scenarios", "scenario_changes"):
            markdown_table(text, f"### Sheet `{sheet}`").to_excel(xw, sheet_name=sheet, index=False)
    cmds = commands(text)
    assert [c[0] for c in cmds] == ["list-scenarios", "run"]
    for args in cmds:
        args = [str(ROOT / a) if a.startswith("inputs/") else str(book) if a == "my_scenarios.xlsx" else a
                for a in args]
        if args[0] == "run":
            args += ["--out", str(tmp / "outputs")]
        assert main(["-q", *args]) == 0, args
    (folder,) = (tmp / "outputs").iterdir()
    return text, folder


def spending_2027(folder: Path, scenario: str) -> float:
    w = pd.read_csv(folder / scenario / "who_pays.csv")
    return float(w.loc[(w["country"] == "EUR") & (w["period"] == "2027"), "consumer_spending_usd"].sum())


def test_the_tutorials_table_of_results_is_what_the_run_gives(tutorial_run):
    text, folder = tutorial_run
    comp = pd.read_csv(folder / "comparison.csv").set_index("scenario")
    quoted = markdown_table(text, "same, with every figure as a column. For the shipped base case:")
    base = comp.loc["base case", "resource_cost_pv_usd"]
    for row in quoted.itertuples():
        m = re.fullmatch(r"\+(\d+) M USD", row[2])
        assert comp.loc[row.scenario, "resource_cost_pv_usd"] - base == pytest.approx(float(m.group(1)) * 1e6,
                                                                                        abs=0.5e6)
        assert comp.loc[row.scenario, "unserved_t"] == pytest.approx(float(row.unserved.split()[0]), abs=0.5)


def test_the_tutorials_who_pays_and_reserve_figures(tutorial_run):
    text, folder = tutorial_run
    base, ban, res = (spending_2027(folder, s) for s in ("base_case", "eu_dytb_ban_2027", "eu_dytb_ban_2027_reserve"))
    assert (round(base / 1e9, 2), round(ban / 1e9, 2), round(res / 1e9, 2)) == (1.67, 1.98, 1.94)
    flat = " ".join(text.split())
    assert "from 1.67 bn USD (base) to 1.98 bn USD (the ban, +19 %); with the reserve it is 1.94 bn USD" in flat
    assert "Japan (10,728 t), Vietnam (4,983 t) and Korea (2,770 t)" in flat
    assert round(100 * (ban / base - 1)) == 19
    st = pd.read_csv(folder / "eu_dytb_ban_2027_reserve" / "stockpiles.csv")
    st = st[st["stockpile"] == "eu_dy_reserve"].set_index("period")
    assert st.loc["2026", "level_t"] == pytest.approx(500.0) and st.loc["2027", "release_t_per_yr"] == pytest.approx(500.0)
    flows = pd.read_csv(folder / "eu_dytb_ban_2027" / "flows.csv")
    into_eu = flows[(flows["to_country"] == "EUR") & (flows["period"] == "2027")
                    & flows["product"].isin(["magnet_std", "magnet_ht"])].groupby("from_country")["flow_t_per_yr"].sum()
    assert into_eu.get("CHN", 0.0) == pytest.approx(0.0, abs=1e-6)
    assert into_eu.round(0).to_dict() == {"JPN": 10728.0, "KOR": 2770.0, "VNM": 4983.0}
