"""Plans under uncertainty on a scenario tree, hand-solved.

The two-branch case: the USA needs 100 t/yr of oxide in P1 (2025) and P2 (2026), one year
each, penalty P = 1,000 USD/t unserved; China makes it at 10 USD/t (up to 1,000 t/yr) and
ships it free. A US reserve may buy in P1 and hold at h = 50 USD/t/yr (charged on the
end-of-period level). In P2 China bans exports to the USA with probability p, which is
known only in P2. A tonne bought in P1 costs 10 + 50 and in P2 is worth P (ban: it serves
a tonne that would go unserved) or 10 (calm: it replaces a tonne made). So the reserve is
the crisis need, 100 t, when p x 1,000 + (1 - p) x 10 > 60, i.e. p x 990 > 50, and 0
below. With p = 0.2 (discount rate 0):

    plan: buy 100 t in P1: 2 x 100 x 10 + 100 x 50 = 7,000 in P1, nothing in P2 in either branch
    RP  = 7,000
    WS  = 0.8 x 2,000 (calm: 100 t made each year) + 0.2 x 7,000 (ban: the reserve) = 3,000
    EVPI = 4,000 (the calm branch's wasted holding cost, 0.8 x 5,000)
    EEV = 0.8 x 2,000 + 0.2 x (1,000 + 100 x 1,000) = 21,800 (the no-crisis plan holds nothing)
    VSS = 14,800
    no reserve allowed: 1,000 + 0.8 x 1,000 + 0.2 x 100,000 = 21,800: the reserve is worth
    14,800 and avoids 0.2 x 100 = 20 t of expected shortfall for 7,000 - 1,800 = 5,200 of
    resource cost: 260 USD per avoided tonne.

With p = 0.03 the reserve is 0 and RP = 1,000 + 0.97 x 1,000 + 0.03 x 100,000 = 4,970.
"""

from __future__ import annotations

import pandas as pd
import pytest

from model.case.casewriter import write_case
from model.case.schema import InputError
from model.runs.tree import run_tree

APPROX = dict(rel=1e-9, abs=1e-7)


def sheets(p_ban: float = 0.2, holding: float = 50.0) -> dict:
    return {
        "periods": [{"period": "P1", "start_year": 2025, "duration_yr": 1},
                    {"period": "P2", "start_year": 2026, "duration_yr": 1}],
        "countries": [{"country": "CHN"}, {"country": "USA"}],
        "products": [{"product": "ox", "stage": "oxide", "element": "Nd", "unit": "t_REO"}],
        "processes": [{"process": "make", "stage": "separation"}],
        "recipes": [{"process": "make", "product": "ox", "coefficient": 1}],
        "facilities": [{"facility": "cn", "country": "CHN", "capacity_t_per_yr": 1000}],
        "facility_processes": [{"facility": "cn", "process": "make", "unit_cost_usd_per_t": 10}],
        "demand": [{"country": "USA", "product": "ox", "period": t, "quantity_t_per_yr": 100,
                    "shortfall_penalty_usd_per_t": 1000} for t in ("P1", "P2")],
        "transport": [{"from_country": "CHN", "to_country": "USA", "product": "*", "cost_usd_per_t": 0}],
        "stockpiles": [{"stockpile": "vault", "holder": "USA", "product": "ox", "holding_cost_usd_per_t_yr": holding,
                        "terminal_rule": "free"}],
        "scenarios": [{"scenario": "ban", "description": "China bans oxide exports to the USA in P2"}],
        "scenario_changes": [
            {"scenario": "ban", "sheet": "export_controls", "filter": "*", "column": "*", "op": "append",
             "value": "control=ban; exporter=CHN; product=ox; destinations=USA; periods=P2; kind=ban"}],
        "branches": [{"tree": "t", "branch": "calm", "probability": 1 - p_ban, "reveal_period": "P2"},
                     {"tree": "t", "branch": "ban", "probability": p_ban, "reveal_period": "P2", "scenario": "ban"}],
    }


def case(tmp_path, name="tree.xlsx", **kw):
    return str(write_case(tmp_path / name, sheets(**kw), {"base_year": 2025, "discount_rate": 0.0}))


def figure(r, words: str) -> float:
    s = r.tables["tree_summary"].set_index("figure")["value"]
    return float(s[next(k for k in s.index if k.startswith(words))])


def test_the_reserve_is_the_crisis_need_when_the_ban_is_likely_enough(tmp_path):
    r = run_tree(case(tmp_path), "t")
    assert r.optimal, r.message
    assert r.objective == pytest.approx(7000.0, **APPROX)
    plan = r.tables["tree_plan"].set_index(["decided_in", "decision", "period"])["value"]
    assert plan[("here and now", "stockpile buy (t/yr)", "P1")] == pytest.approx(100.0, **APPROX)
    assert plan[("here and now", "stockpile level at the end of the period (t)", "P1")] == pytest.approx(100.0, **APPROX)
    b = r.tables["tree_branches"].set_index("branch")
    assert b.at["calm", "objective_usd"] == pytest.approx(7000.0, **APPROX)  # 2,000 + 5,000 in P1, 0 in P2
    assert b.at["ban", "objective_usd"] == pytest.approx(7000.0, **APPROX)
    assert b.at["ban", "unserved_t"] == pytest.approx(0.0, abs=1e-7)
    assert b.at["calm", "wait_and_see_objective_usd"] == pytest.approx(2000.0, **APPROX)
    assert b.at["ban", "no_crisis_plan_objective_usd"] == pytest.approx(101000.0, **APPROX)
    assert figure(r, "expected cost of the plan") == pytest.approx(7000.0, **APPROX)
    assert figure(r, "expected cost with perfect foresight") == pytest.approx(3000.0, **APPROX)
    assert figure(r, "value of perfect information") == pytest.approx(4000.0, **APPROX)
    assert figure(r, "expected cost of the no-crisis plan") == pytest.approx(21800.0, **APPROX)
    assert figure(r, "value of the stochastic solution") == pytest.approx(14800.0, **APPROX)
    assert figure(r, "expected cost without the reserves valued (vault)") == pytest.approx(21800.0, **APPROX)
    assert figure(r, "value of the reserve") == pytest.approx(14800.0, **APPROX)
    assert figure(r, "expected unserved demand avoided") == pytest.approx(20.0, **APPROX)
    assert figure(r, "resource cost per tonne of avoided") == pytest.approx(260.0, **APPROX)
    # Each branch's own tables: the calm branch releases the reserve in P2 and makes nothing.
    stock = r.tables["tree_stockpiles"].set_index(["branch", "period"])
    assert stock.at[("calm", "P2"), "release_t"] == pytest.approx(100.0, **APPROX)
    assert stock.at[("ban", "P2"), "release_t"] == pytest.approx(100.0, **APPROX)


def test_no_reserve_when_the_ban_is_unlikely(tmp_path):
    r = run_tree(case(tmp_path, p_ban=0.03), "t")
    assert r.objective == pytest.approx(4970.0, **APPROX)
    plan = r.tables["tree_plan"].set_index(["decided_in", "decision", "period"])["value"]
    assert plan[("here and now", "stockpile buy (t/yr)", "P1")] == pytest.approx(0.0, abs=1e-7)
    b = r.tables["tree_branches"].set_index("branch")
    assert b.at["ban", "unserved_t"] == pytest.approx(100.0, **APPROX)
    short = r.tables["tree_shortfall"].set_index(["branch", "period"])
    assert short.at[("ban", "P2"), "unserved_share"] == pytest.approx(1.0, **APPROX)


def test_bad_trees_name_sheet_row_and_column(tmp_path):
    s = sheets()
    s["branches"] = [
        {"tree": "t", "branch": "calm", "probability": 0.7, "reveal_period": "P2"},
        {"tree": "t", "branch": "ban", "probability": 0.2, "reveal_period": "P2", "scenario": "nope"},
        {"tree": "t", "branch": "later", "parent": "ghost", "probability": 1, "reveal_period": "P2"},
        {"tree": "u", "branch": "early", "probability": 1, "reveal_period": "P1"},
        {"tree": "v", "branch": "a", "parent": "b", "probability": 1, "reveal_period": "P2"},
        {"tree": "v", "branch": "b", "parent": "a", "probability": 1, "reveal_period": "P2"}]
    path = write_case(tmp_path / "bad.xlsx", s, {"base_year": 2025})
    with pytest.raises(InputError) as err:
        run_tree(str(path), "t")
    text = str(err.value)
    assert "unknown parent branch" in text and "ghost" in text
    assert "sum to 0.9" in text
    assert "nope" in text  # the unknown scenario
    assert "revealed in the first period" in text
    assert "cycle" in text
    rows = {(p.sheet, p.row, p.column) for p in err.value.problems}
    assert ("branches", 4, "parent") in rows  # the ghost parent, on Excel row 4
    assert ("branches", 3, "scenario") in rows


def test_a_branch_may_not_change_the_periods_before_its_reveal(tmp_path):
    s = sheets()
    s["scenario_changes"].append({"scenario": "ban", "sheet": "facility_processes", "filter": "facility=cn",
                                  "column": "unit_cost_usd_per_t", "op": "set", "value": "12"})
    assert_early_change_named(write_case(tmp_path / "early.xlsx", s, {"base_year": 2025}))


def assert_early_change_named(path) -> None:
    """The ban branch's scenario sets the plant's P1 cost to 12: an error naming its row."""
    with pytest.raises(InputError) as err:
        run_tree(str(path), "t")
    p = err.value.problems[0]
    assert (p.sheet, p.row, p.column, p.value) == ("branches", 3, "scenario", "ban")
    assert "in P1, before the branch is revealed" in p.message and "10 -> 12" in p.message


def three_level(tmp_path) -> str:
    """P1, P2, P3. In P2 a threat (0.4) or calm (0.6) is revealed; under the threat, in P3,
    a ban (0.5) or its lifting (0.5). The threat node buys 100 t in P2 for P3, once for
    both its branches (it cannot tell them apart in P2): 0.5 x 990 > 50. P1 buys nothing (a
    tonne bought in P2 is as good and 50 cheaper). RP = 1,000 + 0.6 x 2,000 + 0.4 x
    (2,000 + 5,000) = 5,000; WS = 0.6 x 3,000 + 0.4 x (0.5 x 8,000 + 0.5 x 3,000) = 4,000."""
    s = sheets()
    s["periods"].append({"period": "P3", "start_year": 2027, "duration_yr": 1})
    s["demand"].append({"country": "USA", "product": "ox", "period": "P3", "quantity_t_per_yr": 100,
                        "shortfall_penalty_usd_per_t": 1000})
    s["scenario_changes"][0]["value"] = s["scenario_changes"][0]["value"].replace("periods=P2", "periods=P3")
    s["branches"] = [{"tree": "t3", "branch": "calm", "probability": 0.6, "reveal_period": "P2"},
                     {"tree": "t3", "branch": "threat", "probability": 0.4, "reveal_period": "P2"},
                     {"tree": "t3", "branch": "ban", "parent": "threat", "probability": 0.5, "reveal_period": "P3",
                      "scenario": "ban"},
                     {"tree": "t3", "branch": "lifted", "parent": "threat", "probability": 0.5,
                      "reveal_period": "P3"}]
    return str(write_case(tmp_path / "three.xlsx", s, {"base_year": 2025, "discount_rate": 0.0}))


def test_a_decision_before_the_second_reveal_is_shared(tmp_path):
    r = run_tree(three_level(tmp_path), "t3")
    assert r.objective == pytest.approx(5000.0, **APPROX)
    plan = r.tables["tree_plan"]
    buys = plan[plan["decision"] == "stockpile buy (t/yr)"].set_index(["decided_in", "period"])["value"]
    assert buys[("here and now", "P1")] == pytest.approx(0.0, abs=1e-7)
    assert buys[("threat", "P2")] == pytest.approx(100.0, **APPROX)  # one decision for ban and lifted
    assert buys[("calm", "P2")] == pytest.approx(0.0, abs=1e-7)
    assert ("ban", "P2") not in buys.index and ("lifted", "P2") not in buys.index
    stock = r.tables["tree_stockpiles"].set_index(["branch", "period"])
    assert stock.at[("ban", "P2"), "buy_t"] == stock.at[("lifted", "P2"), "buy_t"] == pytest.approx(100.0, **APPROX)
    b = r.tables["tree_branches"].set_index("branch")
    assert list(b.index) == ["calm", "ban", "lifted"]
    assert b.at["ban", "probability"] == pytest.approx(0.2) and b.at["ban", "path"] == "threat > ban"
    assert b.at["ban", "objective_usd"] == b.at["lifted", "objective_usd"] == pytest.approx(8000.0, **APPROX)
    assert b.at["calm", "objective_usd"] == pytest.approx(3000.0, **APPROX)
    assert figure(r, "expected cost with perfect foresight") == pytest.approx(4000.0, **APPROX)
    assert figure(r, "value of perfect information") == pytest.approx(1000.0, **APPROX)


@pytest.mark.parametrize("weight, reserve, objective, cvar", [(0.05, 0.0, 6306.5, 31700.0),
                                                              (0.1, 100.0, 7000.0, 7000.0)])
def test_risk_aversion_buys_the_reserve_a_neutral_plan_skips(tmp_path, weight, reserve, objective, cvar):
    """p = 0.03: risk-neutral, no reserve (4,970). CVaR at 0.9 is the mean of the worst 10 %:
    the ban (3 %) and 7 % of calm. Without a reserve: (0.03 x 101,000 + 0.07 x 2,000) / 0.1
    = 31,700; with 100 t both branches cost 7,000. (1 - w) x 4,970 + w x 31,700 against
    7,000: below w = 2,030 / 26,730 = 0.0759 no reserve (w = 0.05: 6,306.5), above it the
    full reserve (w = 0.1: 7,000)."""
    path = write_case(tmp_path / "risk.xlsx", sheets(p_ban=0.03),
                      {"base_year": 2025, "discount_rate": 0.0, "risk_cvar_weight": weight, "risk_cvar_alpha": 0.9})
    r = run_tree(str(path), "t")
    assert r.objective == pytest.approx(objective, **APPROX)
    plan = r.tables["tree_plan"].set_index(["decided_in", "decision", "period"])["value"]
    assert plan[("here and now", "stockpile buy (t/yr)", "P1")] == pytest.approx(reserve, abs=1e-6)
    assert figure(r, "CVaR at 0.9 of total cost") == pytest.approx(cvar, **APPROX)


def test_the_command_line_writes_the_trees_folder(tmp_path, capsys):
    from model.cli import main
    path = case(tmp_path)
    out = tmp_path / "out"
    assert main(["run", path, "--tree", "t", "--out", str(out)]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0] == "tree t: 2 branches (calm 80%, ban 20%); the plan is optimal"
    assert said[1].startswith("expected cost 7,000 USD; with perfect foresight 3,000 USD (value of information 4,000 USD)")
    folder = next(out.iterdir())
    for name in ("tree_summary.csv", "tree_branches.csv", "tree_plan.csv", "report.xlsx", "report.html", "run.log",
                 "manifest.json"):
        assert (folder / name).exists(), name
    assert pd.read_csv(folder / "tree_branches.csv")["branch"].tolist() == ["calm", "ban"]
    # report.xlsx opens on the tree's summary: money in M USD, the branches, the 100 t reserve, charts
    import openpyxl
    book = openpyxl.load_workbook(folder / "report.xlsx")
    assert book.sheetnames[0] == "summary"
    ws = book["summary"]
    cells: dict = {}
    for r in range(1, ws.max_row + 1):  # a label's first row (chart data repeat branch names below)
        cells.setdefault(ws.cell(r, 1).value, [ws.cell(r, c).value for c in range(2, 10)])
    assert cells["expected cost of the plan (present value)"][:2] == [pytest.approx(0.007, rel=1e-9), "M USD"]
    assert cells["value of perfect information (EVPI)"][0] == pytest.approx(0.004, rel=1e-9)
    assert cells["ban"][:2] == [pytest.approx(0.2), pytest.approx(7000 / 1e9, rel=1e-9)]  # probability, bn USD
    assert cells["stockpile buy (t/yr)"][:3] == ["vault", "P1", pytest.approx(100.0, rel=1e-9)]
    import zipfile
    charts = [n for n in zipfile.ZipFile(folder / "report.xlsx").namelist() if n.startswith("xl/charts/chart")]
    assert len(charts) == 2  # cost by branch and above the cheapest (no branch is short: no shortfall chart)
    assert main(["-q", "run", path, "--tree", "nope", "--out", str(out)]) == 2  # unknown tree: nothing written
    assert len(list(out.iterdir())) == 1


def test_the_first_shortfall_of_each_branch(tmp_path):
    """With no reserve (p = 0.03) the ban branch is short from P2, its reveal year: 0 days
    after the reveal, 100 % of that period's demand."""
    r = run_tree(case(tmp_path, p_ban=0.03), "t")
    f = r.tables["tree_first_shortfall"].set_index(["branch", "country", "product"]).loc[("ban", "USA", "ox")]
    assert (f["first_period"], f["days_from_first_reveal"]) == ("P2", 0.0)
    assert f["unserved_share"] == pytest.approx(1.0, **APPROX)
    assert "calm" not in set(r.tables["tree_first_shortfall"]["branch"])


def test_shared_periods_are_priced_from_the_plan_of_the_tree(tmp_path):
    """P1 is decided before the ban is known: its price is the tree's, the expected value of
    one more tonne there, 10 USD/t in the USA (China's plant has room), the same in both
    branches and marked as shared; P2 is each branch's own. In the ban branch the reserve
    meets P2's demand exactly: one tonne more goes unserved (1,000), one tonne less is
    disposed of (0), so any price between is valid and the table says it is not unique."""
    r = run_tree(case(tmp_path), "t")
    p = r.tables["tree_prices"]
    p = p[(p["country"] == "USA") & (p["origin_class"].fillna("") == "")].set_index(["branch", "period"])
    for b in ("calm", "ban"):
        assert p.at[(b, "P1"), "price_usd_per_t"] == pytest.approx(10.0, **APPROX)
        assert p.at[(b, "P1"), "price_basis"] == "shared: expected over the branches of here and now"
    assert p.at[("ban", "P2"), "price_basis"] == "this branch"
    assert not p.at[("ban", "P2"), "price_unique"]
    assert 0.0 <= p.at[("ban", "P2"), "price_usd_per_t"] <= 1000.0


def test_committed_stock_builds_are_marked_as_data(tmp_path, capsys):
    """A Chinese mine's stock build of 5 t/yr in P1 (data, as the base case's Mountain Pass
    stock) is in the plan table marked committed, and the console lists only the choices."""
    from model.cli import main
    s = sheets()
    s["stockpiles"].append({"stockpile": "mine_stock", "holder": "CHN", "product": "ox", "build_min_t_per_yr": 5,
                            "build_min_periods": "P1", "terminal_rule": "free"})
    path = write_case(tmp_path / "committed.xlsx", s, {"base_year": 2025, "discount_rate": 0.0})
    assert main(["run", str(path), "--tree", "t", "--out", str(tmp_path / "out")]) == 0
    said = capsys.readouterr().out
    assert "(1 stock buys of reserves with a committed build in the data are in tree_plan, not listed here)" in said
    assert "stockpile buy (t/yr) vault in P1: 100.0" in said
    plan = pd.read_csv(next((tmp_path / "out").iterdir()) / "tree_plan.csv")
    buys = plan[plan["decision"] == "stockpile buy (t/yr)"].set_index("unit_or_stockpile")
    assert buys.loc[["mine_stock"], "committed_build_in_data"].all()
    assert not buys.loc[["vault"], "committed_build_in_data"].any()


def simple_ban(s: dict) -> dict:
    """The ban as a ban to every destination (the USA is China's only buyer): every node is
    then the same kept model with its own numbers (the arrays route of model.lp.stochastic)."""
    s["scenario_changes"][0]["value"] = s["scenario_changes"][0]["value"].replace("destinations=USA",
                                                                                  "destinations=*")
    return s


def test_nodes_on_one_model_assemble_as_arrays_to_the_same_lp(tmp_path, monkeypatch):
    """The same hand-solved tree with the ban as bounds on one kept model: the arrays
    assembly gives the column-by-column assembly's LP (same columns in the same order, same
    numbers, same matrix), the same 7,000 and 100 t reserve, and names a pre-reveal change."""
    from model.case.tree import read_tree
    from model.lp import stochastic
    from model.runs.pipeline import load_case
    from model.runs.tree import build_nodes, node_cases
    path = str(write_case(tmp_path / "simple.xlsx", simple_ban(sheets()), {"base_year": 2025, "discount_rate": 0.0}))
    case = load_case(path)
    tree = read_tree(case, "t")
    models = build_nodes(node_cases(case, tree), tree)
    assert stochastic.shares_structure(models)
    fast = stochastic.extensive_form(tree, models)
    monkeypatch.setattr(stochastic, "shares_structure", lambda m: False)
    slow = stochastic.extensive_form(tree, models)
    monkeypatch.undo()
    assert fast.col_key == slow.col_key and fast.col_owner == slow.col_owner
    for a in ("c", "col_lower", "col_upper", "row_lower", "row_upper"):
        assert (getattr(fast, a) == getattr(slow, a)).all(), a
    assert abs(fast.A - slow.A).sum() == 0.0
    for n in tree.nodes:
        assert (fast.node_cols[n] == slow.node_cols[n]).all(), n
    r = run_tree(path, "t")
    assert r.objective == pytest.approx(7000.0, **APPROX)
    plan = r.tables["tree_plan"].set_index(["decided_in", "decision", "period"])["value"]
    assert plan[("here and now", "stockpile buy (t/yr)", "P1")] == pytest.approx(100.0, **APPROX)
    assert figure(r, "value of the reserve") == pytest.approx(14800.0, **APPROX)
    s = simple_ban(sheets())
    s["scenario_changes"].append({"scenario": "ban", "sheet": "facility_processes", "filter": "facility=cn",
                                  "column": "unit_cost_usd_per_t", "op": "set", "value": "12"})
    assert_early_change_named(write_case(tmp_path / "early.xlsx", s, {"base_year": 2025}))


def test_risk_aversion_on_one_kept_model(tmp_path):
    """The CVaR case with the ban as bounds (the arrays assembly's leaf costs): w = 0.1 buys
    the full reserve, 7,000 (see test_risk_aversion_buys_the_reserve_a_neutral_plan_skips)."""
    path = write_case(tmp_path / "risk.xlsx", simple_ban(sheets(p_ban=0.03)),
                      {"base_year": 2025, "discount_rate": 0.0, "risk_cvar_weight": 0.1, "risk_cvar_alpha": 0.9})
    r = run_tree(str(path), "t")
    assert r.objective == pytest.approx(7000.0, **APPROX)
    assert figure(r, "CVaR at 0.9 of total cost") == pytest.approx(7000.0, **APPROX)
