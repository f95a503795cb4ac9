"""Scrap and end of life, solved by hand on a 2-country case with one demanded product.

Country A makes magnets `mag` (100 USD/t, from nothing) and uses 10 t/yr (segment ev);
B uses 6 t/yr (segment wind) and makes none: it imports from A (freight 50 USD/t) or
recycles scrap `mscrap` (20 USD/t of scrap, 0.5 t mag per t scrap). Only ev magnets
return: half after 1 year, half after 2, collected at 0.8, 0.5 t scrap per t magnet.
A's legacy scrap: 1 t/yr in 2025, 2 t/yr after (a * row with a 2025 row of its own).
Scrap freight A -> B 10 USD/t; disposal 5 USD/t. Periods of unequal length:
P1 = 2025 [2025, 2026), P2 = 2026-27 [2026, 2028), P3 = 2028-30 [2028, 2031); rate 0.

End-of-life magnets from A's served 10 t/yr (tonnes = rate x share x overlap):
    served in P1 (10 t): L=1 -> [2026, 2027), L=2 -> [2027, 2028): 5 + 5 t, both in P2
    served in P2 (20 t): L=1 -> [2027, 2029): 5 t in P2, 5 t in P3; L=2 -> [2028, 2030): 10 t in P3
    served in P3 (30 t): L=1 -> [2029, 2032): 10 t in P3; L=2 -> [2030, 2033): 5 t in P3
    P2: 15 t / 2 yr = 7.5 t/yr; P3: 30 t / 3 yr = 10 t/yr
    returned scrap (x 0.5): P2 3.75, P3 5 t/yr; collected (x 0.8): P2 3, P3 4 t/yr
    collected with legacy: P1 1, P2 5, P3 6 t/yr

B would use 12 t/yr of scrap (6 / 0.5) and recycling saves 0.5 x 150 - 30 = 45 USD per t
of scrap over importing, so all of A's scrap goes to B and is recycled; B imports the rest:
    P1: recycled 1, mag 0.5, imports 5.5;  P2: 5, 2.5, 3.5;  P3: 6, 3, 3
    cost rate: P1 15.5 x 100 + 5.5 x 50 + 1 x 30 = 1,855
               P2 13.5 x 100 + 3.5 x 50 + 5 x 30 = 1,675 (x 2 = 3,350)
               P3 13 x 100 + 3 x 50 + 6 x 30 = 1,630 (x 3 = 4,890)
    objective 1,855 + 3,350 + 4,890 = 10,095
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import solve, value
from model.case.casewriter import write_case
from model.case.schema import InputError
from model.runs.pipeline import load_case

APPROX = dict(rel=1e-7, abs=1e-7)
PERIODS = [{"period": "2025", "start_year": 2025, "duration_yr": 1},
           {"period": "2026-27", "start_year": 2026, "duration_yr": 2},
           {"period": "2028-30", "start_year": 2028, "duration_yr": 3}]
P1, P2, P3 = "2025", "2026-27", "2028-30"
EOL = [{"product": "mag", "segment": "ev", "lifetime_yr": 1, "share": 0.5, "collection_rate": 0.8,
        "scrap_product": "mscrap", "scrap_yield_t_per_t": 0.5},
       {"product": "mag", "segment": "ev", "lifetime_yr": 2, "share": 0.5, "collection_rate": 0.8,
        "scrap_product": "mscrap", "scrap_yield_t_per_t": 0.5}]


def case(a_facilities: list[dict] | None = None, controls: list[dict] | None = None,
         b_penalty: float = 1e4) -> dict:
    facs = a_facilities or [{"facility": "a_make", "country": "A", "capacity_t_per_yr": 100}]
    return {
        "periods": PERIODS,
        "countries": [{"country": "A"}, {"country": "B"}],
        "products": [{"product": "mag", "stage": "magnet", "element": "mix", "unit": "t_magnet"},
                     {"product": "mscrap", "stage": "scrap", "element": "mix", "unit": "t",
                      "disposal_cost_usd_per_t": 5}],
        "processes": [{"process": "make", "stage": "magnet"}, {"process": "recycle", "stage": "recycling"}],
        "recipes": [{"process": "make", "product": "mag", "coefficient": 1},
                    {"process": "recycle", "product": "mscrap", "coefficient": -1},
                    {"process": "recycle", "product": "mag", "coefficient": 0.5}],
        "facilities": facs + [{"facility": "b_recycle", "country": "B", "capacity_t_per_yr": 100}],
        "facility_processes": [{"facility": f["facility"], "process": "make", "unit_cost_usd_per_t": 100}
                               for f in facs] + [{"facility": "b_recycle", "process": "recycle",
                                                  "unit_cost_usd_per_t": 20}],
        "demand": [{"country": "A", "product": "mag", "segment": "ev", "period": p["period"],
                    "quantity_t_per_yr": 10, "shortfall_penalty_usd_per_t": 1e4} for p in PERIODS]
                  + [{"country": "B", "product": "mag", "segment": "wind", "period": p["period"],
                      "quantity_t_per_yr": 6, "shortfall_penalty_usd_per_t": b_penalty} for p in PERIODS],
        "transport": [{"from_country": "A", "to_country": "B", "product": "mag", "cost_usd_per_t": 50},
                      {"from_country": "A", "to_country": "B", "product": "mscrap", "cost_usd_per_t": 10}],
        "end_of_life": EOL,
        "scrap_supply": [{"country": "A", "scrap_product": "mscrap", "period": "*", "quantity_t_per_yr": 2},
                         {"country": "A", "scrap_product": "mscrap", "period": "2025", "quantity_t_per_yr": 1}],
        "export_controls": controls or [],
    }


def run(tmp_path, sheets: dict):
    result = solve(tmp_path, sheets, {"discount_rate": 0.0})
    check_scrap(result, sheets)
    return result


def scrap_row(result, period: str, country: str = "A") -> dict:
    s = result.tables["scrap"]
    rows = s[(s["country"] == country) & (s["period"] == period)]
    assert len(rows) == 1
    return rows.iloc[0].to_dict()


def returns_by_integration(sheets: dict, served: pd.DataFrame, steps_per_yr: int = 1200) -> dict:
    """Collected end-of-life scrap rate by (country, period), integrated on a fine time grid
    (independent of the model's overlap formula): each slice of served demand returns
    share x slice in the slice shifted by the lifetime."""
    per = pd.DataFrame(sheets["periods"]).set_index("period")
    out: dict = {}
    eol = sheets["end_of_life"]
    own = {(e["product"], e["segment"]) for e in eol}
    for r in served.to_dict("records"):
        seg = r["segment"] if (r["product"], r["segment"]) in own else "*"  # a segment's own rows first
        for e in eol:
            if e["product"] != r["product"] or e["segment"] != seg:
                continue
            a, d = per.loc[r["period"], "start_year"], per.loc[r["period"], "duration_yr"]
            n = int(round(d * steps_per_yr))
            mid = a + (np.arange(n) + 0.5) / steps_per_yr + e["lifetime_yr"]
            tonnes = r["served_t_per_yr"] * e["share"] / steps_per_yr * e["collection_rate"] * e.get("scrap_yield_t_per_t", 1.0)
            for t, row in per.iterrows():
                inside = ((mid >= row["start_year"]) & (mid < row["start_year"] + row["duration_yr"])).sum()
                if inside:
                    key = (r["country"], t)
                    out[key] = out.get(key, 0.0) + tonnes * inside / row["duration_yr"]
    return out


def check_scrap(result, sheets: dict) -> None:
    """The scrap table satisfies each new constraint: collected = in-horizon arising (recomputed
    by integration from the demand table's served quantities) + legacy (from the sheet), and the
    scrap balance collected + made + imported - exported - recycled - disposed = 0."""
    s = result.tables["scrap"]
    bal = (s["collected_t_per_yr"] + s["made_t_per_yr"] + s["imported_t_per_yr"] - s["exported_t_per_yr"]
           - s["recycled_t_per_yr"] - s["disposed_t_per_yr"])
    assert bal.abs().max() < 1e-7, "scrap balance broken"
    assert (s["collected_t_per_yr"] - s["collected_eol_t_per_yr"] - s["legacy_t_per_yr"]).abs().max() < 1e-9
    dem = result.tables["demand"]
    expect = returns_by_integration(sheets, dem)
    got = s.set_index(["country", "period"])["collected_eol_t_per_yr"]
    for key in set(expect) | set(got[got > 1e-12].index):
        assert got.get(key, 0.0) == pytest.approx(expect.get(key, 0.0), abs=1e-6), key
    legacy = {(r["country"], r["period"]): r["quantity_t_per_yr"] for r in sheets["scrap_supply"]}
    for (c, t), q in s.set_index(["country", "period"])["legacy_t_per_yr"].items():
        assert q == pytest.approx(legacy.get((c, t), legacy.get((c, "*"), 0.0)))
    # recycling uses no more scrap than the country has (its share is at most 1)
    assert (s["recycled_share"] <= 1 + 1e-9).all()


def test_scrap_returns_and_recycling_by_hand(tmp_path):
    res = run(tmp_path, case())
    assert res.solve.objective == pytest.approx(10095, **APPROX)
    for period, arising, returned, legacy, recycled in ((P1, 0, 0, 1, 1), (P2, 3, 3.75, 2, 5), (P3, 4, 5, 2, 6)):
        row = scrap_row(res, period)
        assert row["collected_eol_t_per_yr"] == pytest.approx(arising, **APPROX)
        assert row["returned_t_per_yr"] == pytest.approx(returned, **APPROX)
        assert row["legacy_t_per_yr"] == pytest.approx(legacy, **APPROX)
        assert row["collected_t_per_yr"] == pytest.approx(arising + legacy, **APPROX)
        assert row["exported_t_per_yr"] == pytest.approx(recycled, **APPROX)
        assert row["disposed_t_per_yr"] == pytest.approx(0, **APPROX)
        assert scrap_row(res, period, "B")["recycled_t_per_yr"] == pytest.approx(recycled, **APPROX)
        assert scrap_row(res, period, "B")["recycled_share"] == pytest.approx(1.0, **APPROX)
        assert scrap_row(res, period)["recycled_share"] == pytest.approx(0.0, abs=1e-9)
    # tonnes over the period: P2's 5 t/yr for 2 years
    assert scrap_row(res, P2)["collected_t"] == pytest.approx(10, **APPROX)
    flows = res.tables["flows"]
    for period, imports in ((P1, 5.5), (P2, 3.5), (P3, 3)):
        assert value(flows, "flow_t_per_yr", product="mag", period=period) == pytest.approx(imports, **APPROX)
    assert res.tables["demand"]["unserved_t_per_yr"].sum() == pytest.approx(0, abs=1e-9)


def test_shortfall_returns_no_scrap(tmp_path):
    """A makes at most 8 t/yr in 2025 (a_make2, 100 t/yr, from 2026). B's penalty is higher,
    so B is served first: B recycles 1 t of legacy scrap (0.5 t mag) and imports 5.5; A keeps
    2.5 t/yr and is short 7.5 t/yr. Unserved magnets never return: P1's returns into P2 fall
    by k x 7.5 with k = 2 lifetimes x 0.5 x (1 yr / 2 yr) x 0.5 x 0.8 = 0.2, so P2's arising is
    3 - 1.5 = 1.5 t/yr (collected 3.5, B imports 6 - 1.75 = 4.25); P3 is as before.
        resource cost: P1 8 x 100 + 5.5 x 50 + 1 x 30 = 1,105
                       P2 (10 + 4.25) x 100 + 4.25 x 50 + 3.5 x 30 = 1,742.5 (x 2 = 3,485)
                       P3 4,890 -> 9,480; penalty 7.5 x 10,000 = 75,000; objective 84,480"""
    facs = [{"facility": "a_make", "country": "A", "capacity_t_per_yr": 8, "last_year": 2025},
            {"facility": "a_make2", "country": "A", "capacity_t_per_yr": 100, "first_year": 2026}]
    res = run(tmp_path, case(facs, b_penalty=2e4))
    assert res.solve.objective == pytest.approx(84480, **APPROX)
    dem = res.tables["demand"]
    assert value(dem, "unserved_t_per_yr", country="A", period=P1) == pytest.approx(7.5, **APPROX)
    assert dem["unserved_t_per_yr"].sum() == pytest.approx(7.5, **APPROX)
    assert scrap_row(res, P2)["collected_eol_t_per_yr"] == pytest.approx(1.5, **APPROX)
    assert scrap_row(res, P2, "B")["recycled_t_per_yr"] == pytest.approx(3.5, **APPROX)
    assert scrap_row(res, P3)["collected_eol_t_per_yr"] == pytest.approx(4, **APPROX)
    assert value(res.tables["flows"], "flow_t_per_yr", product="mag", period=P2) == pytest.approx(4.25, **APPROX)


@pytest.mark.parametrize("destinations", ["*", "B"])
def test_scrap_export_ban(tmp_path, destinations):
    """A bans scrap exports in 2026-27: its 5 t/yr is disposed of (5 USD/t) and B imports all
    6 t/yr of magnets: P2's cost rate 16 x 100 + 6 x 50 + 5 x 5 = 1,925 (x 2 = 3,850), 500 more
    than without the ban; objective 10,595. The other periods are unchanged. A ban to B alone
    tracks origin classes: scrap arising in A enters A's class node (and may not reach B)."""
    ban = [{"control": "scrap_ban", "exporter": "A", "product": "mscrap", "destinations": destinations,
            "periods": P2, "kind": "ban"}]
    sheets = case(controls=ban)
    if destinations == "B":  # a third country makes B not every destination: origin classes
        sheets["countries"] = sheets["countries"] + [{"country": "C"}]
    res = run(tmp_path, sheets)
    if destinations == "B":
        f = res.tables["flows"]
        scrap_flows = f[f["product"] == "mscrap"]
        assert set(scrap_flows["origin_class"]) == {"A"} and set(scrap_flows["period"]) == {P1, P3}
    assert res.solve.objective == pytest.approx(10595, **APPROX)
    row = scrap_row(res, P2)
    assert row["exported_t_per_yr"] == pytest.approx(0, abs=1e-9)
    assert row["disposed_t_per_yr"] == pytest.approx(5, **APPROX)
    assert scrap_row(res, P3)["exported_t_per_yr"] == pytest.approx(6, **APPROX)


def test_swarf_from_magnet_making(tmp_path):
    """One country, one period: making a magnet leaves 0.25 t of swarf; A recycles at most 1 t/yr
    of scrap (0.5 t mag). Demand 10 = make + 0.5 x 1 -> make 9.5, swarf 2.375 t/yr, recycled 1,
    disposed 1.375; cost 9.5 x 100 + 1 x 20 + 1.375 x 5 = 976.875."""
    sheets = case()
    sheets.update(periods=PERIODS[:1], countries=[{"country": "A"}], end_of_life=[], scrap_supply=[],
                  transport=[], demand=[r for r in sheets["demand"] if r["country"] == "A" and r["period"] == P1])
    sheets["recipes"] = sheets["recipes"] + [{"process": "make", "product": "mscrap", "coefficient": 0.25}]
    sheets["facilities"] = [{"facility": "a_make", "country": "A", "capacity_t_per_yr": 100},
                            {"facility": "a_recycle", "country": "A", "capacity_t_per_yr": 1}]
    sheets["facility_processes"] = [{"facility": "a_make", "process": "make", "unit_cost_usd_per_t": 100},
                                    {"facility": "a_recycle", "process": "recycle", "unit_cost_usd_per_t": 20}]
    res = run(tmp_path, sheets)
    assert res.solve.objective == pytest.approx(976.875, **APPROX)
    row = scrap_row(res, P1)
    assert row["made_t_per_yr"] == pytest.approx(2.375, **APPROX)
    assert row["recycled_t_per_yr"] == pytest.approx(1, **APPROX)
    assert row["disposed_t_per_yr"] == pytest.approx(1.375, **APPROX)
    assert row["recycled_share"] == pytest.approx(1 / 2.375, **APPROX)


def test_star_segment_and_no_returns_beyond_horizon(tmp_path):
    """A * row covers B's wind magnets too (A's ev rows are its own); a 10-year lifetime
    returns nothing inside 2025-2030, so B's scrap row stays empty."""
    sheets = case()
    sheets["end_of_life"] = EOL + [{"product": "mag", "segment": "*", "lifetime_yr": 10, "share": 1,
                                    "collection_rate": 1, "scrap_product": "mscrap"}]
    res = run(tmp_path, sheets)
    assert res.solve.objective == pytest.approx(10095, **APPROX)
    assert (res.tables["scrap"]["collected_eol_t_per_yr"].sum()) == pytest.approx(7, **APPROX)


# ---------------------------------------------------------------- validation

def problems(tmp_path, eol: list[dict], supply: list[dict]) -> list:
    sheets = case()
    sheets["end_of_life"], sheets["scrap_supply"] = eol, supply
    path = write_case(tmp_path / "bad.xlsx", sheets, {"base_year": 2025}, overwrite=True)
    with pytest.raises(InputError) as exc:
        load_case(str(path))
    return exc.value.problems


def test_bad_scrap_rows_all_named_at_once(tmp_path):
    eol = [dict(EOL[0], share=0.5), dict(EOL[1], share=0.4, collection_rate=0.7),   # rows 2-3: sum 0.9, rates differ
           dict(EOL[0], segment="evs"),                                              # row 4: unknown segment
           dict(EOL[0], product="mag", segment="wind", scrap_product="mag", share=1),  # row 5: not a scrap product
           dict(EOL[0], segment="wind", lifetime_yr=3, share=1, collection_rate=1.5)]  # row 6: out of range
    supply = [{"country": "C", "scrap_product": "mscrap", "period": "*", "quantity_t_per_yr": 1},  # row 2
              {"country": "A", "scrap_product": "mscrap", "period": "2025", "quantity_t_per_yr": -1}]  # row 3
    ps = problems(tmp_path, eol, supply)
    text = "\n".join(str(p) for p in ps)

    def one(sheet: str, row: int, column: str) -> object:
        hits = [p for p in ps if p.sheet == sheet and p.row == row and p.column == column]
        assert len(hits) == 1, (sheet, row, column, text)
        assert hits[0].file == "bad.xlsx" and hits[0].expected
        return hits[0]

    p = one("end_of_life", 3, "share")
    assert p.value == pytest.approx(0.9) and "summing to 1" in p.expected
    assert one("end_of_life", 3, "collection_rate").value == 0.7
    p = one("end_of_life", 4, "segment")
    assert p.value == "evs" and "did you mean" in p.message
    p = one("end_of_life", 5, "scrap_product")
    assert p.value == "mag" and "stage scrap" in p.expected
    assert one("end_of_life", 6, "collection_rate").value == 1.5
    assert one("scrap_supply", 2, "country").value == "C"
    assert one("scrap_supply", 3, "quantity_t_per_yr").value == -1
    assert "Traceback" not in text


# ---------------------------------------------------------------- re-solves

def test_resolver_keeps_scrap_supply_and_rebuilds_when_demand_moves(tmp_path):
    """A number-only scenario (B's recycling costs 40 USD/t of scrap) re-solves on the kept
    model with the scrap supply still on the balance's right-hand side: recycling saves
    0.5 x 150 - 50 = 25 USD/t, all scrap is still recycled, cost rises 20 x (1 + 2 x 5 + 3 x 6)
    = 580 to 10,675. A demand change rebuilds: end-of-life returns read demand."""
    from model.runs.batch import BatchJob, load_inputs, scenario_case
    from model.runs.resolve import Resolver
    sheets = case()
    sheets["scenarios"] = [{"scenario": "dear_recycling"}, {"scenario": "more_demand"}]
    sheets["scenario_changes"] = [
        {"scenario": "dear_recycling", "sheet": "facility_processes", "filter": "facility=b_recycle",
         "column": "unit_cost_usd_per_t", "op": "set", "value": "40"},
        {"scenario": "more_demand", "sheet": "demand", "filter": "country=A", "column": "quantity_t_per_yr",
         "op": "set", "value": "12"}]
    path = write_case(tmp_path / "r.xlsx", sheets, {"base_year": 2025, "discount_rate": 0.0}, overwrite=True)
    base, source = load_inputs(str(path))
    job = BatchJob("t", base, source)
    res = Resolver(base)
    why, data = res.check(scenario_case(job, "dear_recycling"))
    assert why is None, why
    sol, tables, _ = res.resolve(scenario_case(job, "dear_recycling"), data)
    assert sol.objective == pytest.approx(10675, **APPROX)
    s = tables["scrap"]
    assert s.loc[s["country"] == "B", "recycled_t_per_yr"].tolist() == pytest.approx([1, 5, 6], **APPROX)
    why, _ = res.check(scenario_case(job, "more_demand"))
    assert why is not None and "scrap" in why


def test_validate_command_names_bad_scrap_rows_without_a_traceback(tmp_path):
    """`run.py validate` on a workbook with bad scrap rows: exit status 2, every problem on
    its own line with file, sheet, row and column, no traceback."""
    import subprocess
    import sys

    from conftest import ROOT
    sheets = case()
    sheets["end_of_life"] = [dict(EOL[0], share=0.7), EOL[1]]
    sheets["scrap_supply"] = [{"country": "A", "scrap_product": "mag", "period": "*", "quantity_t_per_yr": 1}]
    path = write_case(tmp_path / "bad.xlsx", sheets, {"base_year": 2025}, overwrite=True)
    proc = subprocess.run([sys.executable, "run.py", "validate", str(path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text
    assert "Traceback" not in text
    assert "bad.xlsx, sheet 'end_of_life', row 3, column 'share'" in text
    assert "bad.xlsx, sheet 'scrap_supply', row 2, column 'scrap_product'" in text


def test_a_control_on_scrap_leaves_other_countries_recycling_their_own(tmp_path):
    """B recycles its 4 t/yr of legacy scrap at home (20 USD per t of scrap for 0.5 t of
    magnet: 40 USD per t of magnet against A's 100 + 50 landed), with no scrap lanes. A ban
    by A on scrap to a third country C gives scrap origin classes; B's scrap arises in its
    `other` class and must still reach B's pool: recycled 4 t/yr in every period and the
    same cost as without the ban (it once went to disposal: the pools were declared before
    the scrap nodes existed)."""
    s = case()
    s["end_of_life"] = []
    s["scrap_supply"] = [{"country": "B", "scrap_product": "mscrap", "period": "*", "quantity_t_per_yr": 4}]
    s["transport"] = [r for r in s["transport"] if r["product"] == "mag"]
    (tmp_path / "free").mkdir()
    (tmp_path / "ban").mkdir()
    free = run(tmp_path / "free", s)
    s["countries"] = s["countries"] + [{"country": "C"}]
    s["export_controls"] = [{"control": "scrap_ban", "exporter": "A", "product": "mscrap", "destinations": "C",
                             "kind": "ban"}]
    banned = run(tmp_path / "ban", s)
    assert banned.solve.objective == pytest.approx(free.solve.objective, rel=1e-12)
    for p in (P1, P2, P3):
        assert scrap_row(banned, p, "B")["recycled_t_per_yr"] == pytest.approx(4.0, rel=1e-9)
        assert scrap_row(banned, p, "B")["disposed_t_per_yr"] == pytest.approx(0.0, abs=1e-9)


def test_a_demand_segment_named_star_returns_once():
    """A demand row whose segment is literally '*' matches the product's * end-of-life rows
    once (it was counted as its own row and again as the * fallback): served in 2025, a
    1-year lifetime, yield and collection 1 returns 1 t per t served in 2026."""
    from model.lp.data import scrap_returns
    per = pd.DataFrame({"start_year": [2025, 2026], "duration_yr": [1, 1]}, index=["a", "b"])
    dem = pd.DataFrame({"country": ["A"], "product": ["mag"], "segment": ["*"], "period": ["a"]})
    eol = pd.DataFrame({"product": ["mag"], "segment": ["*"], "lifetime_yr": [1.0], "share": [1.0],
                        "collection_rate": [1.0], "scrap_product": ["s"], "scrap_yield_t_per_t": [1.0]})
    out = scrap_returns(dem, per, eol)
    assert list(out["period"]) == ["b"]
    assert out["collected_per_served"].tolist() == [pytest.approx(1.0)]
