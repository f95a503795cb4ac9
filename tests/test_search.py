"""The most damaging control (model.runs.search), hand-solved on a three-country case.

The case (one year, 2025, weight 1, so present values are the year's USD):
    CHN makes `mag` at 10 USD/t (capacity 1000), the USA at 100 USD/t (capacity 30),
    JPN makes none. Demand: USA 100 t (penalty 1 000 USD/t), JPN 50 t (penalty 2 000 USD/t).
    Lanes CHN->USA, CHN->JPN, USA->JPN at 5 USD/t.
No control: CHN ships 100 to the USA and 50 to JPN: cost 150 x (10 + 5) = 2 250, nothing
short; CHN's export revenue at its own price (10, spare capacity) = 150 x 10 = 1 500.

Candidates (exporter CHN), harm = the USA's unserved penalty value:
    ban_CHN_mag_USA   USA makes its 30, 70 short: harm 70 000; CHN exports 50 (to JPN):
                      lost revenue 1 500 - 500 = 1 000; cost 50 x 15 + 30 x 100 + 70 000 = 73 750.
    ban_CHN_mag_JPN   JPN may not take Chinese-origin magnets (nor through the USA); the USA
                      ships its own 30 to JPN (105 < 2 000), JPN 20 short: USA harm 0;
                      lost revenue 500; cost 100 x 15 + 30 x 105 + 20 x 2 000 = 44 650.
    licence50_CHN_mag_USA  50 % of the no-control flow (100 t) passes: the USA gets 50 + its
                      own 30, 20 short: harm 20 000; lost revenue 500; cost 1 500 + 3 000 + 20 000 = 24 500.
    ban_CHN_mag_all   nothing leaves CHN; the USA's 30 go to JPN (2 000 - 5 > 1 000): the USA
                      100 short: harm 100 000; JPN 20 short; lost revenue 1 500;
                      cost 30 x 105 + 100 000 + 40 000 = 143 150.
Ranking (k = 1, exhaustive): ban all 100 000 > ban USA 70 000 > licence 50 % 20 000 > ban JPN 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from model.case.casewriter import write_case
from model.case.schema import InputError
from model.case.validate import validate_case
from model.case.workbook import read_case
from model.runs import search as S

APPROX = dict(rel=1e-6, abs=1e-4)


def sheets(jpn_penalty: float = 2000.0) -> dict:
    return {
        "periods": [{"period": "2025", "start_year": 2025, "duration_yr": 1}],
        "countries": [{"country": "CHN", "blocs": ""}, {"country": "USA", "blocs": "ALLY"},
                      {"country": "JPN", "blocs": "ALLY"}],
        "products": [{"product": "mag", "stage": "magnet", "element": "", "unit": "t_magnet"}],
        "processes": [{"process": "make", "stage": "magnet"}],
        "recipes": [{"process": "make", "product": "mag", "coefficient": 1}],
        "facilities": [{"facility": "cn", "country": "CHN", "capacity_t_per_yr": 1000},
                       {"facility": "us", "country": "USA", "capacity_t_per_yr": 30}],
        "facility_processes": [{"facility": "cn", "process": "make", "unit_cost_usd_per_t": 10},
                               {"facility": "us", "process": "make", "unit_cost_usd_per_t": 100}],
        "demand": [{"country": "USA", "product": "mag", "period": "2025", "quantity_t_per_yr": 100,
                    "shortfall_penalty_usd_per_t": 1000},
                   {"country": "JPN", "product": "mag", "period": "2025", "quantity_t_per_yr": 50,
                    "shortfall_penalty_usd_per_t": jpn_penalty}],
        "transport": [{"from_country": f, "to_country": t, "product": "*", "cost_usd_per_t": 5}
                      for f, t in (("CHN", "USA"), ("CHN", "JPN"), ("USA", "JPN"))],
    }


GEN = {"exporter": "CHN", "products": ["mag"], "destinations": ["USA", "JPN", "*"], "periods": "2025",
       "kinds": ["ban", "licence"], "licence_shares": [0.5]}


def setup(tmp_path: Path, spec: dict, jpn_penalty: float = 2000.0):
    wb = write_case(tmp_path / "tiny.xlsx", sheets(jpn_penalty), {"base_year": 2025}, overwrite=True)
    case = validate_case(read_case(str(wb)))
    path = tmp_path / "spec.yaml"
    import yaml
    path.write_text(yaml.safe_dump(spec))
    return case, S.read_spec(path, case), path


def by_control(ranking: pd.DataFrame) -> pd.DataFrame:
    return ranking.set_index("controls")


def test_exhaustive_ranking_harm_revenue_and_cost_known_on_paper(tmp_path):
    case, spec, _ = setup(tmp_path, {"harm": {"kind": "penalty", "countries": ["USA"]},
                                     "candidates": [dict(GEN, destinations=["USA", "JPN", "*"])]})
    res = S.search(case, spec, workers=1)
    r = by_control(res.ranking)
    assert res.baseline["objective_usd"] == pytest.approx(2250.0, **APPROX)
    assert res.baseline["harm_usd"] == pytest.approx(0.0, abs=1e-6)
    assert res.baseline["revenue_CHN_usd"] == pytest.approx(1500.0, **APPROX)
    # the ranking on paper, largest harm first; ties (0 USD) by name
    assert list(res.ranking["controls"]) == ["ban_CHN_mag_all", "ban_CHN_mag_USA", "licence50_CHN_mag_all",
                                             "licence50_CHN_mag_USA", "ban_CHN_mag_JPN", "licence50_CHN_mag_JPN"]
    want = {  # harm, lost revenue, objective, USA unserved t
        "ban_CHN_mag_all": (100_000, 1500, 143_150, 100),
        "ban_CHN_mag_USA": (70_000, 1000, 73_750, 70),
        # licence 50 % of CHN's 150 t of exports = 75 t; JPN (2 000/t) takes 50, the USA 25 + its 30
        "licence50_CHN_mag_all": (45_000, 750, 75 * 15 + 3000 + 45_000, 45),
        "licence50_CHN_mag_USA": (20_000, 500, 24_500, 20),
        "ban_CHN_mag_JPN": (0, 500, 44_650, 0),
        # 25 t may go to JPN; the USA takes 100 from CHN and ships 25 of its own to JPN
        "licence50_CHN_mag_JPN": (0, 250, 125 * 15 + 25 * 105, 0),
    }
    for name, (harm, lost, cost, short) in want.items():
        row = r.loc[name]
        assert row["harm_usd"] == pytest.approx(harm, **APPROX), name
        assert row["harm_max_usd"] == pytest.approx(harm, **APPROX), name  # unique here
        assert row["lost_export_revenue_usd"] == pytest.approx(lost, **APPROX), name
        assert row["objective_usd"] == pytest.approx(cost, **APPROX), name
        assert row.get("unserved_2025_t", 0.0) == pytest.approx(short, **APPROX) or short == 0, name
        assert row["solve_mode"] == "resolve"
    assert r.loc["ban_CHN_mag_USA", "unserved_2025_share"] == pytest.approx(0.7, **APPROX)  # 70 of 100 t
    assert r.loc["ban_CHN_mag_USA", "harm_USA_2025_usd"] == pytest.approx(70_000, **APPROX)
    # a licence's reference is what its flows carried in the no-control plan: 100 t to the USA
    lic = {c.name: c for c in spec.candidates}["licence50_CHN_mag_USA"]
    assert [row["reference_flow_t_per_yr"] for row in lic.rows] == pytest.approx([100.0], **APPROX)
    assert "exhaustive" in res.method


def test_greedy_k2_adds_the_best_marginal_control(tmp_path):
    """Harm = USA + JPN penalty, candidates without the ban to all. Round 1: ban USA
    (70 000) beats ban JPN (40 000: JPN 20 t short x 2 000) and licence 50 % USA (20 000).
    Round 2 given the ban on the USA: + ban JPN leaves CHN no market: USA 100 + JPN 20
    short = 140 000 (marginal 70 000); + licence USA changes nothing (70 000); + licence
    JPN 95 000 (below)."""
    gen = dict(GEN, destinations=["USA", "JPN"])
    gen["licence_shares"] = [0.5]
    case, spec, _ = setup(tmp_path, {"harm": {"kind": "penalty", "countries": ["USA", "JPN"]}, "k": 2,
                                     "candidates": [gen]})
    res = S.search(case, spec, workers=1)
    assert "greedy" in res.method and "heuristic" in res.method
    assert list(res.ranking["added_control"]) == ["ban_CHN_mag_USA", "ban_CHN_mag_JPN"]
    assert list(res.ranking["harm_usd"]) == pytest.approx([70_000, 140_000], **APPROX)
    assert list(res.ranking["marginal_harm_usd"]) == pytest.approx([70_000, 70_000], **APPROX)
    assert list(res.ranking["lost_export_revenue_usd"]) == pytest.approx([1000, 1500], **APPROX)
    round2 = {tuple(e["controls"]): e["harm_usd"] for e in res.evaluations if e["round"] == 2}
    assert round2[("ban_CHN_mag_USA", "licence50_CHN_mag_USA")] == pytest.approx(70_000, **APPROX)
    # + licence 50 % JPN: 25 t of Chinese magnets reach JPN, the USA sends 25 of its own 30
    # there too (2 000 > 1 000 + 5) and keeps 5: USA 95 t short = 95 000, JPN none
    assert round2[("ban_CHN_mag_USA", "licence50_CHN_mag_JPN")] == pytest.approx(95_000, **APPROX)
    check = S.recheck(case, spec, res)  # the final pair, as two plain bans
    assert check["controls"] == "ban_CHN_mag_USA + ban_CHN_mag_JPN"
    assert check["agrees"] and check["harm_usd_plain_run"] == pytest.approx(140_000, rel=1e-6)


def test_harm_is_the_least_over_least_cost_plans_and_a_plain_run_agrees(tmp_path):
    """JPN's penalty 1 005 = the USA's 1 000 + the 5 USD/t lane: under a ban to all, the
    USA's own 30 t serve the USA or JPN at the same total cost, so the USA's shortfall is
    anywhere from 70 t to 100 t. harm_usd is the least (70 000, what the controller can
    guarantee), harm_max_usd the most (100 000); a plain run (the ban as a ban, no other
    candidate rows in the model) gives the same least harm."""
    case, spec, _ = setup(tmp_path, {"harm": {"kind": "penalty", "countries": ["USA"]},
                                     "candidates": [dict(GEN, destinations=["*", "JPN"], kinds=["ban"])]},
                          jpn_penalty=1005.0)
    res = S.search(case, spec, workers=1)
    top = res.ranking.iloc[0]
    assert top["controls"] == "ban_CHN_mag_all"
    assert top["harm_usd"] == pytest.approx(70_000, **APPROX)
    assert top["harm_max_usd"] == pytest.approx(100_000, **APPROX)
    assert 70_000 - 1e-6 <= top["harm_least_norm_usd"] <= 100_000 + 1e-6
    check = S.recheck(case, spec, res)
    assert check["agrees"] and check["harm_usd_plain_run"] == pytest.approx(70_000, rel=1e-6)


def test_recheck_plain_run_and_folder(tmp_path):
    """The winner re-run as an ordinary case reproduces its harm; the folder holds the ranking."""
    _, _, path = setup(tmp_path, {"harm": {"kind": "penalty", "countries": ["ALLY"]}, "workbook": "tiny.xlsx",
                                  "candidates": [dict(GEN, destinations=["USA"], kinds=["ban"])],
                                  "controls": [{"control": "q_usa_40", "exporter": "CHN", "product": "mag",
                                                "destinations": "USA", "periods": "2025", "kind": "quota",
                                                "quota_t_per_yr": 40}]})
    res = S.run_search(str(path), out=tmp_path / "out")
    # ban USA: USA 70 short = 70 000; quota 40 t: USA short 100 - 40 - 30 = 30 t = 30 000
    assert list(res.ranking["controls"]) == ["ban_CHN_mag_USA", "q_usa_40"]
    assert list(res.ranking["harm_usd"]) == pytest.approx([70_000, 30_000], **APPROX)
    assert res.recheck["agrees"] and res.recheck["harm_usd_plain_run"] == pytest.approx(70_000, rel=1e-6)
    assert res.recheck["lost_export_revenue_usd_plain_run"] == pytest.approx(1000, **APPROX)
    ranking = pd.read_csv(res.folder / "ranking.csv")
    assert list(ranking["controls"]) == ["ban_CHN_mag_USA", "q_usa_40"]
    assert (res.folder / "ranking.xlsx").exists() and (res.folder / "breakdown.csv").exists()
    rows = pd.read_csv(res.folder / "candidates.csv")
    assert list(rows["candidate"]) == ["ban_CHN_mag_USA", "q_usa_40"] and list(rows["kind"]) == ["ban", "quota"]
    manifest = json.loads((res.folder / "manifest.json").read_text())
    assert manifest["candidates"] == 2 and manifest["recheck"]["agrees"]


def test_spending_harm_is_served_tonnes_at_the_price(tmp_path):
    """Harm = JPN's spending on mag. No control: JPN buys 50 t at CHN's 10 + 5 = 15: 750.
    Ban JPN: JPN's price is its penalty (2 000/t, 20 t short), served 30 t: 60 000."""
    case, spec, _ = setup(tmp_path, {"harm": {"kind": "spending", "countries": ["JPN"], "products": ["mag"]},
                                     "candidates": [dict(GEN, destinations=["JPN"], kinds=["ban"])]})
    res = S.search(case, spec, workers=1)
    assert res.baseline["harm_usd"] == pytest.approx(750.0, **APPROX)
    assert res.ranking.iloc[0]["harm_usd"] == pytest.approx(60_000.0, **APPROX)
    assert "harm_prices_unique" in res.ranking.columns
    lines = S.summary_lines(res, spec, 3)
    assert not any("nan" in line for line in lines)


def test_bad_rows_are_all_reported_with_file_sheet_row_column_value(tmp_path):
    case, _, _ = setup(tmp_path, {"harm": {"kind": "penalty", "countries": ["USA"]}, "candidates": [GEN]})
    bad = {"harm": {"kind": "pain", "countries": ["USB"]}, "k": 0, "colour": "red",
           "candidates": [GEN, {"exporter": "CHX", "products": ["mags"], "destinations": ["USA", "MARS"],
                                "periods": "2026", "kinds": ["ban", "embargo"], "licence_shares": [1.5]}],
           "controls": [{"control": "q", "exporter": "CHN", "product": "mag", "kind": "quota",
                         "quota_t_per_yr": -5},
                        {"control": "l", "exporter": "CHN", "product": "mag", "kind": "licence",
                         "licence_approval_share": 0.5},
                        {"control": "e", "exporter": "CHN", "product": "mag", "kind": "ban",
                         "segments": "defence"}]}
    path = tmp_path / "bad.yaml"
    import yaml
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(InputError) as err:
        S.read_spec(path, case)
    got = {(p.sheet, p.row, p.column, str(p.value)) for p in err.value.problems}
    assert all(p.file == "bad.yaml" for p in err.value.problems)
    for want in [("harm", None, "kind", "pain"), ("harm", None, "countries", "USB"), ("", None, "k", "0"),
                 ("", None, "colour", "None"),
                 ("candidates", 2, "exporter", "CHX"), ("candidates", 2, "products", "mags"),
                 ("candidates", 2, "destinations", "MARS"), ("candidates", 2, "periods", "2026"),
                 ("candidates", 2, "kinds", "embargo"), ("candidates", 2, "licence_shares", "1.5"),
                 ("controls", 1, "quota_t_per_yr", "-5"),
                 ("controls", 2, "licence_approval_share", "0.5"), ("controls", 3, "segments", "defence")]:
        assert want in got, want
    text = str(err.value)
    assert "bad.yaml, sheet 'candidates', row 2, column 'exporter'" in text and "found 'CHX'" in text
    assert "expected a country of the case" in text


def test_command_line_reports_bad_spec_without_a_traceback(tmp_path, capsys):
    from model.cli import main
    path = tmp_path / "x.yaml"
    path.write_text("harm: [1, 2\n")
    assert main(["search", str(path), "--out", str(tmp_path / "o")]) == 2
    path.write_text("harm: {kind: penalty, countries: [ATLANTIS]}\ncandidates: []\n")
    assert main(["search", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr()
    assert "Traceback" not in err.out + err.err
    assert "ATLANTIS" in err.out + err.err
    path.write_text("harm: {kind: penalty, countries: [USA]}\n"
                    "candidates: [{exporter: CHN, products: [mag], destinations: [USA]}]\n")
    wb = tmp_path / "tiny.xlsx"
    write_case(wb, sheets(), {"base_year": 2025}, overwrite=True)
    for k in ("0", "2"):  # one candidate: --k must be 1
        assert main(["search", str(path), "--workbook", str(wb), "--k", k, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr()
    assert "column 'k'" in err.out + err.err and "Traceback" not in err.out + err.err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_two_exporters_on_one_product_is_a_spec_problem(tmp_path):
    """Candidates by CHN and by the USA on `mag`: one product carries one foreign origin
    class, so the spec is refused, naming the product and both exporters' candidates."""
    case, _, _ = setup(tmp_path, {"harm": {"kind": "penalty", "countries": ["JPN"]}, "candidates": [GEN]})
    path = tmp_path / "two.yaml"
    import yaml
    path.write_text(yaml.safe_dump({"harm": {"kind": "penalty", "countries": ["JPN"]},
                                    "candidates": [dict(GEN, destinations=["JPN"], kinds=["ban"]),
                                                   dict(GEN, exporter="USA", destinations=["JPN"], kinds=["ban"])]}))
    with pytest.raises(InputError) as err:
        S.read_spec(path, case)
    (p,) = err.value.problems
    assert (p.file, p.sheet, p.column, p.value) == ("two.yaml", "candidates", "product", "mag")
    assert "ban_USA_mag_JPN" in p.message and "ban_CHN_mag_JPN" in p.expected


def test_worker_pool_gives_the_serial_ranking(tmp_path):
    """Two worker processes, each with its own kept model: the same harms as in-process."""
    case, spec, _ = setup(tmp_path, {"harm": {"kind": "penalty", "countries": ["USA"]},
                                     "candidates": [dict(GEN, destinations=["USA", "*"])]})
    res = S.search(case, spec, workers=2)
    assert list(res.ranking["controls"]) == ["ban_CHN_mag_all", "ban_CHN_mag_USA", "licence50_CHN_mag_all",
                                             "licence50_CHN_mag_USA"]
    assert list(res.ranking["harm_usd"]) == pytest.approx([100_000, 70_000, 45_000, 20_000], **APPROX)
    assert set(res.ranking["plan"]) == {"least-norm"}  # every row shown (top 10) is re-solved least-norm


def test_case_with_an_end_use_denial_keeps_licence_references(tmp_path):
    """The case itself denies Chinese magnets to defence users everywhere (an end-use
    control to *, which is structure, not a simple ban). US defence (10 t) is made at home
    (cap 30); US civil demand (100 t, penalty 1,000) buys Chinese. A ban to the USA leaves
    30 - 10 = 20 t for civil use: 80 t short, harm 80,000. A 50 % licence keeps 50 of the
    no-control 100 t: 30 t short, harm 30,000 (it was scored as a ban when the no-control
    run was rebuilt and its reference read as 0)."""
    sh = sheets()
    for r in sh["demand"]:
        r["segment"] = "civil"
    sh["demand"].append({"country": "USA", "product": "mag", "segment": "defence", "period": "2025",
                         "quantity_t_per_yr": 10, "shortfall_penalty_usd_per_t": 5000})
    sh["export_controls"] = [{"control": "deny_def", "exporter": "CHN", "product": "mag", "destinations": "*",
                              "kind": "ban", "segments": "defence"}]
    wb = write_case(tmp_path / "seg.xlsx", sh, {"base_year": 2025}, overwrite=True)
    case = validate_case(read_case(str(wb)))
    import yaml
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({"harm": {"kind": "penalty", "countries": ["USA"]},
                                    "candidates": [{"exporter": "CHN", "products": ["mag"], "destinations": ["USA"],
                                                    "kinds": ["ban", "licence"], "licence_shares": [0.5]}]}))
    spec = S.read_spec(path, case)
    res = S.search(case, spec, workers=1)
    got = by_control(res.ranking)
    assert got.loc["ban_CHN_mag_USA", "harm_usd"] == pytest.approx(80000.0, rel=1e-9)
    assert got.loc["licence50_CHN_mag_USA", "harm_usd"] == pytest.approx(30000.0, rel=1e-9)
    assert res.baseline["mode"] == "resolve"
