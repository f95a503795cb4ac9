"""The shipped base case (inputs/base.xlsx, built by inputs/build_base.py): it validates
and solves, every data row names its source, and each named scenario of issue 5 runs
optimal and moves the way its expected_effects say.

Each case is solved once per module (a cached runner). Where a direction cannot be met
honestly before the calibration step, the test is a strict expected failure naming why;
no unsourced number is tuned to make it pass.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd
import pytest

from model.analysis.tracing import content_shares
from model.case.schema import SHEETS_BY_NAME
from model.case.workbook import read_case
from model.runs.pipeline import load_case, run_case

BASE = Path(__file__).resolve().parent.parent / "inputs" / "base.xlsx"
NAMED = ["apr2025_licensing", "apr2025_monthly", "oct2025_controls", "busan_suspension", "us_tariff_100", "vault_45_days",
         "vault_60_days", "dod_ndpr_floor", "us_australia_framework", "myanmar_kachin_shift", "eu_crma_65",
         "lynas_heavy_separation"]
HELPERS = ["licence_freeze_2027"]  # parent crisis of the vault scenarios
EX_CHINA = ["JPN", "USA", "EUR"]   # ex-China price points (Japan, the US and Rotterdam's EU)
NDFEB = ["magnet_std", "magnet_ht"]
MAGNETS = NDFEB + ["smco"]


@lru_cache(maxsize=None)
def solved(scenario: str | None = None):
    result = run_case(str(BASE), scenario)
    assert result.optimal, f"{scenario or 'base'}: {result.solve.message}"
    return result


# ---------------------------------------------------------------- figures read from result tables
def unserved_t(result, countries: list[str] | None = None, periods: list[str] | None = None,
               exclude: list[str] | None = None) -> float:
    """Unserved tonnes (rate x duration) over the rows that match."""
    d = result.tables["demand"]
    if countries is not None:
        d = d[d["country"].isin(countries)]
    if exclude is not None:
        d = d[~d["country"].isin(exclude)]
    if periods is not None:
        d = d[d["period"].isin(periods)]
    return float(d["unserved_t"].sum())


def price(result, product: str, country: str, period: str) -> float:
    """Model price of the country's use pool (origin classes aside), USD/t."""
    p = result.tables["prices"]
    p = p[(p["product"] == product) & (p["country"] == country) & (p["period"] == period)
          & (p["origin_class"].fillna("") == "")]
    assert len(p) == 1, (product, country, period)
    return float(p["price_usd_per_t"].iloc[0])


def china_exports(result, products: list[str], period: str) -> float:
    f = result.tables["flows"]
    return float(f[(f["from_country"] == "CHN") & (f["period"] == period) & f["product"].isin(products)]
                 ["flow_t_per_yr"].sum())


def oxide_output(result, products: list[str], periods: list[str], china: bool) -> float:
    """t/yr of the products made by separation (activity x recipe output), in China or outside it."""
    prod = result.tables["production"]
    prod = prod[prod["period"].isin(periods) & ((prod["country"] == "CHN") == china)]
    rec = result.case.tables["recipes"]
    rec = rec[rec["product"].isin(products) & (rec["coefficient"] > 0)]
    made = prod.merge(rec[["process", "coefficient"]], on="process")
    made = made[made["process"].str.startswith(("sep", "hsep"))]
    return float((made["activity_t_per_yr"] * made["coefficient"]).sum())


def magnets_made(result, country: str, periods: list[str]) -> float:
    """t/yr of magnets made (substitutes excluded) in the country, summed over the periods."""
    p = result.tables["production"]
    p = p[(p["country"] == country) & p["period"].isin(periods) & p["process"].str.startswith("make_")]
    return float(p["activity_t_per_yr"].sum())


def money(result, category: str) -> float:
    c = result.tables["costs"]
    return float(c.loc[c["category"] == category, "pv_usd"].sum())


def eu_magnet_bill(result, periods: list[str]) -> float:
    """EU spending on NdFeB magnets: served tonnes at the EU model price plus unserved tonnes
    at their penalty, undiscounted USD over the periods."""
    d = result.tables["demand"]
    d = d[(d["country"] == "EUR") & d["product"].isin(NDFEB) & d["period"].isin(periods)]
    dur = result.case.tables["periods"].set_index("period")["duration_yr"]
    total = 0.0
    for r in d.itertuples():
        total += dur[r.period] * (r.served_t_per_yr * price(result, r.product, "EUR", r.period)
                                  + r.unserved_t_per_yr * r.shortfall_penalty_usd_per_t)
    return total


# ---------------------------------------------------------------- the base case
def test_base_case_validates_and_solves_with_every_demand_served():
    case = load_case(str(BASE))
    assert {"facilities", "demand", "scenarios"} <= {k for k, v in case.tables.items() if len(v)}
    base = solved()
    assert base.solve.status == "optimal"
    assert unserved_t(base) == pytest.approx(0.0, abs=1e-6)
    # China makes ~94 % of the world's magnets (IEA) and mines 270 kt REO (USGS): the uncalibrated
    # base is in that region, calibration tightens it.
    made = base.tables["production"]
    made = made[made["process"].str.startswith("make_") & (made["period"] == "2025Q1")]
    cn_share = made.loc[made["country"] == "CHN", "activity_t_per_yr"].sum() / made["activity_t_per_yr"].sum()
    assert cn_share > 0.9


def test_every_row_of_every_data_sheet_names_its_source():
    case = read_case(BASE)
    missing = []
    for name, df in case.tables.items():
        sheet = SHEETS_BY_NAME[name]
        if not sheet.has_source or df.empty:
            continue
        blank = df["source"].fillna("").astype(str).str.strip() == ""
        missing += [f"{name} row {int(r)}" for r in df.loc[blank, "_row"]]
    assert not missing, missing


def test_observed_outputs_cover_every_country_mining_above_5_kt():
    fac = read_case(BASE).tables["facilities"]
    mines = fac[fac["facility"].isin(["cn_bayan_obo", "cn_ionic_clay", "us_mountain_pass", "au_mt_weld",
                                      "mm_kachin"])]
    by_country = mines.groupby("country")["observed_output_t_per_yr"].sum()
    usgs_2025 = {"CHN": 270000, "USA": 51000, "AUS": 29000, "MMR": 22000}  # USGS MCS 2026
    for country, q in usgs_2025.items():
        assert by_country[country] == pytest.approx(q, rel=0.01)


# ---------------------------------------------------------------- named scenarios
@pytest.mark.parametrize("scenario", NAMED + HELPERS)
def test_named_scenario_exists_and_runs_optimal(scenario):
    scen = read_case(BASE).tables["scenarios"]
    row = scen[scen["scenario"] == scenario]
    assert len(row) == 1
    assert row["expected_effects"].iloc[0].strip()
    assert solved(scenario).solve.status == "optimal"


def test_apr2025_licensing_cuts_china_magnet_exports_by_more_than_half_in_the_crisis_quarter():
    base, apr = solved(), solved("apr2025_licensing")
    assert china_exports(apr, MAGNETS, "2025Q2") < 0.5 * china_exports(base, MAGNETS, "2025Q2")
    assert unserved_t(apr, exclude=["CHN"], periods=["2025Q2"]) > 0
    assert unserved_t(apr, countries=["CHN"]) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("oxide", ["Dy_ox", "Tb_ox"])
def test_apr2025_licensing_lifts_ex_china_oxide_above_twice_a_positive_china_price(oxide):
    apr = solved("apr2025_licensing")
    cn = price(apr, oxide, "CHN", "2025Q2")
    assert cn > 0
    for c in EX_CHINA:
        assert price(apr, oxide, c, "2025Q2") > 2 * cn


def test_oct2025_controls_leave_more_shortfall_outside_china_than_april():
    """Measured: 16,302 t against 5,849 t, the October rules adding 10,453 t of standard magnets
    unserved in 2026. (Before substitution was bounded to 5 points of demand a year, the rules
    were absorbed inside 2026 by 14 kt/yr of substitution and this was an expected failure.)"""
    assert unserved_t(solved("oct2025_controls"), exclude=["CHN"]) > \
        unserved_t(solved("apr2025_licensing"), exclude=["CHN"]) + 1.0


def test_oct2025_controls_cost_more_than_april():
    """Resource cost plus the value of lost use: where demand goes unserved the resource cost
    falls (0.281 bn USD PV less than April's) and the penalty rises."""
    def loss(r):
        return money(r, "resource") + money(r, "penalty")
    assert loss(solved("oct2025_controls")) > loss(solved("apr2025_licensing"))


def test_oct2025_controls_move_magnet_making_out_of_china():
    apr, octo = solved("apr2025_licensing"), solved("oct2025_controls")
    ex_cn_made = sum(magnets_made(octo, c, ["2026"]) for c in ("JPN", "KOR", "VNM", "USA", "EUR"))
    assert ex_cn_made > sum(magnets_made(apr, c, ["2026"]) for c in ("JPN", "KOR", "VNM", "USA", "EUR")) + 1000


def test_busan_suspension_is_back_near_base_from_2026():
    base, busan = solved(), solved("busan_suspension")
    later = ["2026", "2027", "2028-30", "2031-35"]
    assert unserved_t(busan, periods=later) == pytest.approx(unserved_t(base, periods=later), abs=1.0)
    assert money(busan, "resource") == pytest.approx(money(base, "resource"), rel=0.01)
    assert unserved_t(busan) < unserved_t(solved("oct2025_controls")) + 1e-6


TARIFF_OUTPUT = ("US magnet plants already run at capacity in the base (4,200 t/yr in 2026-27, 7,800 t/yr from "
                 "2028: Noveon, MP Independence, USA Rare Earth), and the case's option to build more (at MP 10X's "
                 "capex, 125,000 USD per t/yr, an annuity of 10,030 USD per t/yr) is not taken: its capacity is worth "
                 "139-173 USD per t/yr under the duty against 184-216 in the base, because allied magnets reshuffle to "
                 "the US duty-free and the duty also raises the cost of the Chinese metal US plants use. US output is "
                 "the same under the duty; duty revenue rises (transfers 0.166 -> 0.201 bn USD PV; re-measured with "
                 "the fitted splits of issue 16)")


@pytest.mark.xfail(strict=True, reason=TARIFF_OUTPUT)
def test_us_tariff_100_raises_us_magnet_output():
    later = ["2026", "2027", "2028-30", "2031-35"]
    assert magnets_made(solved("us_tariff_100"), "USA", later) > magnets_made(solved(), "USA", later) + 100


@pytest.mark.parametrize("scenario", ["vault_45_days", "vault_60_days"])
def test_vault_cuts_us_shortfall_in_the_crisis_and_shows_purchases(scenario):
    crisis, vault = solved("licence_freeze_2027"), solved(scenario)
    assert unserved_t(crisis, countries=["USA"], periods=["2027"]) > 1000
    assert unserved_t(vault, countries=["USA"], periods=["2027"]) < \
        unserved_t(crisis, countries=["USA"], periods=["2027"]) - 100
    costs = vault.tables["costs"]
    assert costs.loc[costs["component"] == "stock_purchases", "cost_usd"].sum() > 0
    st = vault.tables["stockpiles"]
    assert st.loc[st["period"] == "2027", "release_t_per_yr"].sum() > 0


def test_vault_60_days_cuts_us_shortfall_more_than_45_days():
    assert unserved_t(solved("vault_60_days"), countries=["USA"], periods=["2027"]) < \
        unserved_t(solved("vault_45_days"), countries=["USA"], periods=["2027"])


def test_dod_ndpr_floor_pays_when_the_us_index_is_below_the_floor():
    dod = solved("dod_ndpr_floor")
    pf = dod.tables["price_floors"]
    cfd = pf[pf["mechanism"] == "cfd"]
    below = cfd[(cfd["index_price_usd_per_t"] < cfd["floor_price_usd_per_t"]) & (cfd["covered_output_t"] > 0)]
    assert len(below) > 0
    expected = below["covered_output_t"] * (below["floor_price_usd_per_t"] - below["index_price_usd_per_t"])
    assert below["payment_usd"].to_numpy() == pytest.approx(expected.to_numpy(), rel=1e-6)
    above = cfd[cfd["index_price_usd_per_t"] >= cfd["floor_price_usd_per_t"]]
    assert (above["payment_usd"].abs() < 1e-6).all()
    off = pf[pf["mechanism"] == "offtake"]
    assert off["offtake_t_per_yr"].to_numpy() == pytest.approx(10000.0)
    later = ["2028-30", "2031-35"]
    assert magnets_made(dod, "USA", later) > magnets_made(solved(), "USA", later) + 2 * 9000 - 1


def _china_mined_share_of_us_magnets(result, period: str) -> float:
    cs = content_shares(result.tables)
    us = cs[(cs["country"] == "USA") & cs["product"].isin(NDFEB) & (cs["period"] == period)
            & (cs["basis"] == "mined_in")]
    return float(us.loc[us["origin_country"] == "CHN", "origin_t_per_yr"].sum() / us
                 .drop_duplicates(["product"])["supply_t_per_yr"].sum())


@pytest.mark.xfail(strict=True, reason="with the canonical plan (least-norm among least-cost plans, "
                   "model.lp.canonical) the framework leaves the China-mined share of US magnets where it was: "
                   "0.2732 -> 0.2735 in 2027 and 0.2201 -> 0.2196 in 2028-30 (base case of issue 16). The cuts measured before (0.258 -> "
                   "0.177, 0.164 -> 0.135) were the solver's choice among equally cheap routings of allied "
                   "magnets and metal (equal freight), not a finding: under the least-norm rule the allied "
                   "supply is spread evenly and the framework's offtake does not change where US magnets' "
                   "content was mined")
@pytest.mark.parametrize("period", ["2027", "2028-30"])
def test_us_australia_framework_cuts_the_china_mined_share_of_us_magnets(period):
    """The framework should cut the share of US magnets' rare earths mined in China."""
    assert _china_mined_share_of_us_magnets(solved("us_australia_framework"), period) < \
        _china_mined_share_of_us_magnets(solved(), period) - 0.005


def test_myanmar_kachin_shift_cuts_china_heavy_output_and_moves_dy_tb_prices():
    """Measured with the fitted splits of issue 16: China's Dy+Tb oxide output falls from 10,409
    to 6,516 t/yr (summed over 2026-35's periods), India's new plant makes 1,760; China's Dy
    oxide price rises from 277,772 to 451,549 USD/t in 2026, 2.05 M in 2027 and 4.56 M in
    2028-30, Tb from 431,752 to 777,088, 3.94 M and 8.89 M (substitution grows at most 5 points
    of demand a year). By 2031-35 the lost Kachin carbonate leaves 97,823 t of standard magnets
    unserved, so the heavy oxides' shadow prices reach the magnets' value of lost supply
    through their content (Dy 12.0 M, Tb 23.4 M USD/t): a price of scarcity, not a market
    quote."""
    base, shift = solved(), solved("myanmar_kachin_shift")
    later = ["2026", "2027", "2028-30", "2031-35"]
    heavy = ["Dy_ox", "Tb_ox"]
    assert oxide_output(shift, heavy, later, china=True) < oxide_output(base, heavy, later, china=True) - 10
    assert oxide_output(shift, heavy, later, china=False) > oxide_output(base, heavy, later, china=False)
    moved = [abs(price(shift, p, "CHN", t) - price(base, p, "CHN", t)) for p in heavy for t in later]
    assert max(moved) > 1000


def test_eu_crma_65_raises_eu_magnet_cost():
    """The cap binds: EU imports of Chinese magnets fall (2028-30: 25,300 -> 16,445 t/yr) and
    magnets made outside China rise (27,480 -> 31,480 t/yr; 35,246 in 2031-35), partly
    diverted from Japan, Korea and Vietnam whose home markets take Chinese magnets instead;
    the EU pays the reshuffling in its prices: the bill rises 0.11 % (17.430 -> 17.449 bn
    USD over 2028-35)."""
    later = ["2028-30", "2031-35"]
    base, crma = solved(), solved("eu_crma_65")
    assert eu_magnet_bill(crma, later) > eu_magnet_bill(base, later) * (1 + 1e-4)
    f = {name: r.tables["flows"] for name, r in (("base", base), ("crma", crma))}
    into_eu = {k: v[(v["to_country"] == "EUR") & v["product"].isin(NDFEB) & v["period"].isin(later)] for k, v in f.items()}
    from_cn = {k: float(v.loc[v["from_country"] == "CHN", "flow_t_per_yr"].sum()) for k, v in into_eu.items()}
    assert from_cn["crma"] < from_cn["base"] - 1000
    caps = solved("eu_crma_65").tables["supply_caps"]
    share = caps[(caps["kind"] == "share") & (caps["supplier"] == "CHN")]
    assert (share["share"] <= 0.65 + 1e-6).all()


@pytest.mark.parametrize("period", ["2025Q2", "2025H2"])
def test_lynas_heavy_separation_makes_dy_and_tb_oxide_outside_china_in_2025(period):
    lynas, parent = solved("lynas_heavy_separation"), solved("apr2025_licensing")
    out = oxide_output(lynas, ["Dy_ox", "Tb_ox"], [period], china=False)
    assert out > 0
    assert out > oxide_output(parent, ["Dy_ox", "Tb_ox"], [period], china=False)


# --- calibration (DESIGN section 4; issue 5) ---------------------------------------------

# USGS Mineral Commodity Summaries 2026, 2025 mine production, t REO (countries above 5 kt).
USGS_2025_MINING_T = {"CHN": 270000, "USA": 51000, "AUS": 29000, "MMR": 22000}
# Sourced shares (reference_figures.csv): China 91 % of world separation/refining (2024; the set derives world
# separated output as 254 kt / 0.91 in t REO of products, ex-China ~25 kt: Lynas, US, Estonia, India, France);
# China ~94 % of sintered NdFeB (world 319 kt less 19 kt ex-China, 2024, derived).
CHINA_SEPARATION_SHARE = 0.91
CHINA_MAGNET_SHARE = 300.0 / 319.0


def _first_period_output(result, stage: str, products_stage: str | None = None) -> pd.Series:
    t0 = result.case.tables["periods"]["period"].iloc[0]
    prod = result.tables["production"]
    stages = result.case.tables["processes"].set_index("process")["stage"]
    p0 = prod[(prod["period"] == t0) & (prod["process"].map(stages) == stage)]
    if products_stage is None:
        return p0.groupby("country")["activity_t_per_yr"].sum()
    rec = result.case.tables["recipes"]
    out = p0.merge(rec[rec["coefficient"] > 0], on="process")
    pst = result.case.tables["products"].set_index("product")["stage"]
    out = out[out["product"].map(pst) == products_stage]
    return (out["activity_t_per_yr"] * out["coefficient"]).groupby(out["country"]).sum()


def test_shipped_calibration_terms_are_re_derived_from_the_case():
    from model.analysis.calibration import calibration_table
    shipped = load_case(str(BASE)).tables["calibration"].set_index("facility")
    again = calibration_table(load_case(str(BASE))).set_index("facility")
    assert list(again.index) == list(shipped.index)
    for col in ("observed_output_t_per_yr", "below_observed_usd_per_t", "above_observed_usd_per_t"):
        assert again[col].to_numpy() == pytest.approx(shipped[col].to_numpy(), rel=1e-6, abs=1e-6)
    assert shipped["source"].str.startswith("derived: calibration dual of run").all()


@pytest.mark.parametrize("country", ["CHN", "USA", "AUS", "MMR"])
def test_free_base_period_reproduces_usgs_mining_within_5_percent(country):
    mined = _first_period_output(solved(), "mining")
    assert mined.get(country, 0.0) == pytest.approx(USGS_2025_MINING_T[country], rel=0.05)


@pytest.mark.parametrize("country, usgs_2025_t", [("THA", 4800), ("IND", 2900)])
def test_free_base_period_reproduces_usgs_mining_of_thailand_and_india_within_10_percent(country, usgs_2025_t):
    """USGS MCS 2026 (2025 estimates); the case's capacities were MCS 2025's, 11.0 and 4.5 kt."""
    mined = _first_period_output(solved(), "mining")
    assert mined.get(country, 0.0) == pytest.approx(usgs_2025_t, rel=0.10)


def test_free_base_period_reproduces_every_observed_output():
    """Every calibrated facility makes its observed output in the free base-period solve:
    every mined tonne of 2025 has a use in the case (separated, exported, or stocked), so no
    below-observed term had to be capped at the running cost."""
    r = solved()
    t0 = r.case.tables["periods"]["period"].iloc[0]
    cal = r.case.tables["calibration"].set_index("facility")
    assert not cal["source"].str.contains("capped at the running cost").any()
    obs = cal["observed_output_t_per_yr"]
    prod = r.tables["production"]
    act = prod[prod["period"] == t0].groupby("facility")["activity_t_per_yr"].sum().reindex(obs.index).fillna(0.0)
    assert act.to_numpy() == pytest.approx(obs.to_numpy(), rel=1e-6, abs=1e-6)


def test_mp_concentrate_stock_takes_what_was_neither_separated_nor_exported():
    """50,692 t mined - 17,610 t separated (NdPr-derived) - 14,000 t exported = 19,082 t/yr
    stocked in each 2025 period, and the 14,000 t/yr no longer exported from 2025Q2; in 2025Q1
    the exports go to China, before MP's April halt."""
    r = solved()
    st = r.tables["stockpiles"]
    st = st[st["stockpile"] == "mp_concentrate_stock"].set_index("period")
    for t in ("2025Q1", "2025Q2", "2025H2"):
        assert st.at[t, "buy_t_per_yr"] - st.at[t, "release_t_per_yr"] >= 19082 - 1e-6
    after = r.tables["stockpiles"]
    after = after[after["stockpile"] == "mp_concentrate_stock_after_halt"].set_index("period")
    for t in ("2025Q2", "2025H2"):
        assert after.at[t, "buy_t_per_yr"] - after.at[t, "release_t_per_yr"] >= 14000 - 1e-6
    f = r.tables["flows"]
    q1 = f[(f["from_country"] == "USA") & (f["to_country"] == "CHN") & (f["product"] == "bast_conc")
           & (f["period"] == "2025Q1")]
    assert q1["flow_t_per_yr"].sum() == pytest.approx(14000, rel=1e-6)
    # MP separates its observed feed all year, before and after the halt; from 2025H2 it also
    # takes Vietnam's 150 t/yr of bastnaesite concentrate (Dong Pao), which went to China before.
    p = r.tables["production"]
    mp = p[p["facility"] == "us_mp_separation"].groupby("period")["activity_t_per_yr"].sum()
    assert mp[["2025Q1", "2025Q2", "2025H2"]].to_numpy() == pytest.approx([17610.0, 17610.0, 17760.0], rel=1e-6)
    h2 = f[(f["product"] == "bast_conc") & (f["period"] == "2025H2") & (f["to_country"] == "USA")]
    assert h2.set_index("from_country")["flow_t_per_yr"].to_dict() == pytest.approx({"VNM": 150.0})


# China's share of rare-earth metal making, ~90 % (2023; low-confidence secondary source in the set).
CHINA_METAL_SHARE = 0.90


def test_china_metal_share_within_two_points():
    made = _first_period_output(solved(), "reduction", "metal")
    assert made.get("CHN", 0.0) / made.sum() == pytest.approx(CHINA_METAL_SHARE, abs=0.02)


def test_china_magnet_share_within_two_points():
    made = _first_period_output(solved(), "magnet", "magnet")
    assert made.get("CHN", 0.0) / made.sum() == pytest.approx(CHINA_MAGNET_SHARE, abs=0.02)


SEPARATION_SHARE = ("the model's separators recover all the La/Ce their feed holds (a fixed split), while MP and Lynas "
                    "separate NdPr from all their feed but recover only part of the La/Ce as products: the 2025Q1 base makes "
                    "16,255 t of oxides in the US and 25,478 t in Malaysia against 8,900 t REO of US separated products "
                    "(USGS) and Lynas's 10,462 t, so China's share of separated oxide is 86.6 % against the sourced 91 %. "
                    "Counting only what ex-China separators recover (their output less their disposal) is not determinate: "
                    "whether Lynas's or China's surplus La/Ce is disposed of is a tie at equal freight and disposal cost. "
                    "Reading observed separation from tonnes of products instead met the share (92.2 %) but understated "
                    "ex-China NdPr 2.5-fold and left 45 kt of US and Australian concentrate unused. A La-Ce splitting "
                    "step of its own (tried, not adopted: light separation makes a La-Ce stream, split where it pays, "
                    "MP's and Lynas's splitting calibrated to their 6,003 and 2,122 t of La-Ce products) overshoots to "
                    "93.8 %: with La and Ce in glut China leaves part of its own stream unsplit too, and Lynas's La-Ce "
                    "finds no buyer, so its calibration term is capped. Re-measured with the fitted splits of issue 16: "
                    "86.6 % again (the splits move element tonnes, not the feed each country separates). The missing "
                    "figure is the tonnes of La and Ce that MP and Lynas recover as products from the feed they "
                    "separate (their La-Ce recovery rate)")


@pytest.mark.xfail(strict=True, reason=SEPARATION_SHARE)
def test_china_separation_share_within_two_points():
    out = _first_period_output(solved(), "separation", "oxide")
    assert out.get("CHN", 0.0) / out.sum() == pytest.approx(CHINA_SEPARATION_SHARE, abs=0.02)


# --- price check (issue 5): margins at the sourced 2025 prices (model/analysis/margins.py) ------------

# magnet_ht's reference price is assumed equal to the standard grades' (no sourced price for
# Dy/Tb-bearing grades), so its tranches' margins are not a check of the data.
UNSOURCED_PRICES = {"magnet_ht"}
CONVERSION_AT_SOURCED_PRICES = ("sep", "hsep", "reduce")


def _margins_at_sourced_prices() -> pd.DataFrame:
    r = solved()
    t0 = r.case.tables["periods"]["period"].iloc[0]
    m = r.tables["reference_margins"]  # the run's own table (model/analysis/margins.py)
    m = m[m["period"] == t0]
    rec = r.case.tables["recipes"]
    unsourced = set(rec.loc[rec["product"].isin(UNSOURCED_PRICES) & (rec["coefficient"] > 0), "process"])
    return m[(m["note"] == "") & ~m["process"].isin(unsourced)]


def test_separation_and_metal_making_cover_their_costs_at_sourced_prices():
    """Every running separation and heavy-separation tranche of 2025Q1, and China's metal
    making, with the feed it uses at its full cost (mining, cracking), covers its costs at
    the Argus/USGS 2025 prices: the mining-to-oxide chains of China (Bayan Obo +1,920 USD/t of feed, clays
    +6,286), MP (+2,763), Lynas (+5,172) and the rest (SEG+ valued at its netback with the
    fitted Bayan Obo SEG+ split of issue 16); heavy separation and reduction break
    even by construction (SEG+ at its netback; metal prices derived from the oxides and the
    SMM conversion spreads)."""
    m = _margins_at_sourced_prices()
    conv = m[m["process"].str.startswith(CONVERSION_AT_SOURCED_PRICES)
             & ~(m["process"].str.startswith("reduce") & (m["country"] != "CHN"))]
    assert len(conv) >= 12
    assert (conv["margin_usd_per_t"] >= -1e-6).all(), conv[conv["margin_usd_per_t"] < -1e-6]
    sep = conv.set_index(["facility", "process"])["margin_usd_per_t"]
    assert sep["cn_separation", "sep_bo"] == pytest.approx(1919.6, abs=1.0)
    assert sep["us_mp_separation", "sep_bast"] == pytest.approx(2762.7, abs=1.0)


MARGINS = ("at the sourced 2025 prices (China's magnet export unit value 49 USD/kg, Argus oxides, metals derived "
           "from them) these running tranches of the 2025Q1 base lose money: making metal and magnets outside China "
           "(metal -5,700 USD/t in Japan, Vietnam, the UK and the US; magnets -7,462 in Japan, Korea, the EU and the "
           "US: their cost is twice China's, assumption 26 after CRU's 'hardly economic', and calibration keeps them "
           "at their observed output) and China's end-of-life recycling (-11,387: 0.295 t NdPr oxide and 0.010 t Dy "
           "oxide per t at 34,200 USD/t). Recycling runs because the model's NdPr price is 106.3 USD/kg against "
           "Argus's 69 (standard magnets 65.5 against 49): China's mined NdPr (Bayan Obo at the Araxa prior's 20.7 %) "
           "falls short of the magnets' need with every standard magnet on the Ce-substituted grade, so recycling is "
           "the marginal NdPr source. Re-measured with the fitted splits of issue 16: fitting Bayan Obo's NdPr share to "
           "SMM's PrNd output too (25.3 %, within the published bounds) flips 2025 to a glut that clears at 8.5 USD/kg, "
           "where the Ce-substituted grade (+1,000 USD/t, an assumption) is the marginal use and MP's and Lynas's "
           "observed separation no longer pays. The missing figures are the Ce-substituted grade's cost and the share "
           "of standard magnets that can take it (Adamas: magnets took 18 % of world Ce oxide in a recent year)")


@pytest.mark.xfail(strict=True, reason=MARGINS)
def test_every_running_tranche_has_a_non_negative_margin_at_sourced_prices():
    m = _margins_at_sourced_prices()
    assert (m["margin_usd_per_t"] >= -1e-6).all()


# ---------------------------------------------------------------- one answer on the base case
PLAN_TABLES = ["production", "flows", "shortfall", "demand", "disposal", "stockpiles", "capacity_values",
               "controls", "supply_caps"]


def _plan_tables(result) -> dict[str, pd.DataFrame]:
    tables = {k: result.tables[k] for k in PLAN_TABLES if k in result.tables}
    tables["content_shares"] = content_shares(result.tables)
    return tables


def test_base_case_plan_is_the_same_by_interior_point_and_with_shuffled_rows(tmp_path):
    """The base case has many least-cost plans (HiGHS's simplex and interior point
    return different vertices: Myanmar mined 2,037 or 15,159 t/yr in 2028-30 before the
    canonical rule). The reported plan, its content shares, shortfall and the values of
    its limits are the same, to 1e-6, by interior point and with every sheet's rows
    shuffled."""
    from model.runs.pipeline import solve_case
    from model.analysis.sameness import run_differences, shuffle_workbook

    ref = _plan_tables(solved())
    case = load_case(str(BASE))
    case.settings["solver_method"] = "ipm"
    ipm = solve_case(case)
    assert ipm.solve.objective == pytest.approx(solved().solve.objective, rel=1e-9)
    assert run_differences(ref, _plan_tables(ipm)) == {}
    shuffled = run_case(str(shuffle_workbook(BASE, tmp_path / "shuffled.xlsx", 11)))
    assert run_differences(ref, _plan_tables(shuffled)) == {}
