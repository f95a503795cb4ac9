"""examples/python_api.ipynb runs: its code cells, in order, in one namespace (what a kernel
does), and the figures they show are the ones the tables hold."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import ROOT

NOTEBOOK = ROOT / "examples" / "python_api.ipynb"


@pytest.fixture(scope="module")
def namespace():
    nb = json.loads(NOTEBOOK.read_text())
    assert nb["nbformat"] == 4
    ns: dict = {}
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert not cell["outputs"], "commit the notebook without outputs"
            exec(compile("".join(cell["source"]), str(NOTEBOOK), "exec"), ns)  # noqa: S102 - our own notebook
    return ns


def test_the_notebook_solves_the_base_and_the_scenario(namespace):
    assert namespace["base"].optimal and namespace["apr"].optimal
    costs = namespace["base"].tables["costs"]
    assert namespace["by_category"]["resource"] == pytest.approx(
        costs.loc[costs["category"] == "resource", "pv_usd"].sum() / 1e9, rel=1e-12)


def test_the_notebook_shows_the_scenarios_shortfall_and_its_change(namespace):
    short = namespace["short"]
    assert short["unserved_t"].sum() > 0
    pv = namespace["pv"].set_index("period")
    assert pv.loc["horizon", "avoided_unserved_t"] == pytest.approx(-short["unserved_t"].sum(), rel=1e-9)
    assert isinstance(namespace["watch"], pd.DataFrame) and len(namespace["watch"]) == 4
    assert (namespace["folder"] / "report.xlsx").exists()
