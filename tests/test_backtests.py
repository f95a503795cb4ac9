"""Back-tests of the shipped base case against sourced 2024-25 figures (issue 16).

Each test states its tolerance before it was run; a miss is a strict expected failure whose
reason gives the measured figure and the figure that is missing, never a tuned number.

- The element splits China separates: Bayan Obo's and the ionic clays' heavy shares are
  fitted (inputs/build_base.py, `fit_china_splits`) to SMM's 2024 output of Dy, Tb, Gd and Ho
  within the published bounds of the deposit types; PrNd is held at the prior and checked.
- The solved base: China's oxide output by element (within 20 % of SMM), its 2025 oxide
  prices (within 25 % of Argus for NdPr, a factor 1.5 for Dy and Tb).
- April-June 2025 by month (scenario apr2025_monthly): China's magnet exports against the
  customs series, in total and by destination.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import pytest

from model.runs.pipeline import run_case

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "inputs" / "base.xlsx"
NDFEB_AND_SMCO = ["magnet_std", "magnet_ht", "smco"]


@lru_cache(maxsize=None)
def build_base():
    """inputs/build_base.py as a module (its fit runs on import)."""
    spec = importlib.util.spec_from_file_location("build_base", ROOT / "inputs" / "build_base.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@lru_cache(maxsize=None)
def solved(scenario: str | None = None):
    result = run_case(str(BASE), scenario)
    assert result.optimal, f"{scenario or 'base'}: {result.solve.message}"
    return result


# ---------------------------------------------------------------- the fitted splits
def test_fit_reproduces_smm_heavy_output_exactly_and_prnd_within_20_percent():
    fit = build_base().fit_china_splits()
    smm = build_base().SMM_2024_T
    for el in ("Dy", "Tb", "Gd", "Ho"):
        assert fit["made"][el] == pytest.approx(smm[el], rel=1e-9)
    # PrNd is not fitted (Bayan Obo's NdPr stays at the Araxa prior): measured 76,812 t against 87,900 (-12.6 %)
    assert fit["made"]["NdPr"] == pytest.approx(smm["NdPr"], rel=0.20)


@pytest.mark.parametrize("ore", ["bo", "clay"])
def test_fitted_splits_are_shares_within_the_published_bounds(ore):
    bb = build_base()
    split = bb.fit_china_splits()[ore]
    assert set(split) == set(bb.FIT_ELEMENTS)
    assert min(split.values()) >= -1e-12
    assert sum(split.values()) == pytest.approx(1.0, abs=1e-9)
    for members, (lo, hi) in (bb.BO_BOUNDS if ore == "bo" else bb.CLAY_BOUNDS).items():
        share = sum(split[e] for e in members)
        assert lo - 1e-9 <= share <= hi + 1e-9, (members, share)
    if ore == "bo":  # PrNd held at the prior
        assert split["NdPr"] == pytest.approx(bb.BO_PRIOR["NdPr"], abs=1e-12)


@pytest.mark.parametrize("process, split_name", [("sep_bo", "BO_SPLIT"), ("sep_clay", "CLAY_SPLIT")])
def test_the_workbook_separates_with_the_fitted_splits(process, split_name):
    """Recipe coefficients = fitted share x the 0.94 recovery, written to 6 decimals (sep_bo
    sends its SEG+ to seg_conc)."""
    bb = build_base()
    split = getattr(bb, split_name)
    rec = solved().case.tables["recipes"]
    out = rec[(rec["process"] == process) & (rec["coefficient"] > 0)].set_index("product")["coefficient"]
    assert out["NdPr_ox"] == pytest.approx(split["NdPr"] * bb.R, abs=1e-6)
    assert out["Ce_ox"] == pytest.approx(split["Ce"] * bb.R, abs=1e-6)
    if process == "sep_clay":
        assert out["Dy_ox"] == pytest.approx(split["Dy"] * bb.R, abs=1e-6)
        assert out["Tb_ox"] == pytest.approx(split["Tb"] * bb.R, abs=1e-6)
    else:
        assert out["seg_conc"] == pytest.approx(bb.SEG_SHARE_BO * bb.R, abs=1e-6)


# ---------------------------------------------------------------- the solved base against SMM and Argus
def china_oxide_made_t_per_yr(result, product: str, period: str = "2025Q1") -> float:
    """China's output of an oxide: separation (light, clay and heavy) and end-of-life recycling."""
    prod = result.tables["production"]
    prod = prod[(prod["country"] == "CHN") & (prod["period"] == period)]
    rec = result.case.tables["recipes"]
    rec = rec[(rec["product"] == product) & (rec["coefficient"] > 0)]
    made = prod.merge(rec[["process", "coefficient"]], on="process")
    return float((made["activity_t_per_yr"] * made["coefficient"]).sum())


@pytest.mark.parametrize("element, product", [("NdPr", "NdPr_ox"), ("Dy", "Dy_ox"), ("Tb", "Tb_ox"), ("Gd", "Gd_ox")])
def test_china_oxide_output_within_20_percent_of_smm(element, product):
    """Model 2025Q1 output plus the oxide SMM counts from magnet swarf (an assumption of the fit,
    SWARF_OXIDE_2024) against SMM's 2024 monthly output x 12. Measured: PrNd 60,198 + 17,095 =
    77,293 t against 87,900 (0.88), Dy 2,051 + 503 = 2,554 against 2,568 (0.99), Tb 485 against
    490 (0.99), Gd 3,902 against 3,587 (1.09)."""
    bb = build_base()
    made = china_oxide_made_t_per_yr(solved(), product) + bb.SWARF_OXIDE_2024.get(element, 0.0)
    assert made == pytest.approx(bb.SMM_2024_T[element], rel=0.20)


ARGUS_2025_USD_PER_T = {"NdPr_ox": 69_000, "Dy_ox": 239_000, "Tb_ox": 1_010_000}  # FOB China, USGS MCS 2026


def china_price_2025(result, product: str) -> float:
    """Duration-weighted 2025 mean of China's model price (use pool), USD/t."""
    p = result.tables["prices"]
    p = p[(p["product"] == product) & (p["country"] == "CHN") & (p["origin_class"].fillna("") == "")]
    dur = result.case.tables["periods"].set_index("period")["duration_yr"]
    p = p[p["period"].isin(["2025Q1", "2025Q2", "2025H2"])]
    w = p["period"].map(dur)
    return float((p["price_usd_per_t"] * w).sum() / w.sum())


NDPR_PRICE = ("China's NdPr oxide is 106.3 USD/kg through 2025 against Argus's 69 (1.54x): with Bayan Obo's NdPr at "
              "the Araxa prior (20.7 % of REO) China's mined NdPr falls short of the magnets' need with every standard "
              "magnet on the Ce-substituted grade, so end-of-life recycling (34,200 USD/t for 0.295 t NdPr) is the "
              "marginal source and sets the price. Fitting Bayan Obo's NdPr to SMM's PrNd output as well (25.3 %, "
              "within the published bounds) flips 2025 to a glut that clears at 8.5 USD/kg, where the Ce-substituted "
              "grade is the marginal use: the price is set by the Ce-substituted grade's cost (+1,000 USD/t, an "
              "assumption) and how many standard magnets can take it. The missing figures are that grade's cost "
              "premium and its share of standard magnets (Adamas: magnets took 18 % of world Ce oxide in a recent "
              "year, which bounds it but does not give it)")
TB_PRICE = ("China's Tb oxide is 432 USD/kg through 2025 against Argus's 1,010 (0.43x; Dy is 278 against 239, 1.16x): "
            "the case has Tb in one use only, grain-boundary diffusion of high-temperature magnets as an alternative "
            "to Dy (7.056 kg Tb oxide or 13.776 kg Dy oxide per t, the Tb grade taking 6 kg more NdPr metal), so "
            "Tb's price is Dy's at that ratio less the extra NdPr: (13.776 x 278 - 6 x 130) / 7.056 = 432 USD/kg, "
            "1.55x Dy where the market pays 4.2x. The missing figure is the use that pays Tb's premium: the share "
            "of magnets whose grade needs Tb (coercivity Dy cannot reach at the same remanence), not in the "
            "reference set")


@pytest.mark.parametrize("product, tolerance", [
    pytest.param("NdPr_ox", 0.25, marks=pytest.mark.xfail(strict=True, reason=NDPR_PRICE)),
    ("Dy_ox", 0.5),
    pytest.param("Tb_ox", 0.5, marks=pytest.mark.xfail(strict=True, reason=TB_PRICE)),
])
def test_china_2025_oxide_price_near_argus(product, tolerance):
    """NdPr within 25 % of Argus, Dy and Tb positive and within a factor 1.5 (issue 16)."""
    model, argus = china_price_2025(solved(), product), ARGUS_2025_USD_PER_T[product]
    assert model > 0
    if tolerance == 0.25:
        assert model == pytest.approx(argus, rel=tolerance)
    else:
        assert argus / 1.5 <= model <= argus * 1.5


# ---------------------------------------------------------------- April-June 2025 by month
MONTHS = ["2025-04", "2025-05", "2025-06"]
# GACC via SMM and econotimes (reference_figures.csv): April derived from May's -52.9 % m/m, June = H1 less Jan-May
CUSTOMS_T = {"2025-04": 2628, "2025-05": 1238.47, "2025-06": 3187}
CUSTOMS_Q1_T = 19132 - 2628 - 1238.47
# customs by destination: May 2025 y/y (Bloomberg/SCMP summaries) and H1 2025 with its y/y (Reuters/Sina)
MAY_YOY = {"USA": 1 - 0.933, "EUR": 1 - 0.70, "JPN": 1 - 0.841}  # EU read from Germany, its top destination
H1_T = {"EUR": 8360, "USA": 2510}
H1_YOY = {"EUR": 1 - 0.224, "USA": 1 - 0.306}


def china_magnet_exports(result, period: str, to: str | None = None) -> float:
    f = result.tables["flows"]
    f = f[(f["from_country"] == "CHN") & (f["to_country"] != "CHN") & f["product"].isin(NDFEB_AND_SMCO)
          & (f["period"] == period)]
    if to is not None:
        f = f[f["to_country"] == to]
    return float(f["flow_t_per_yr"].sum())


def h1_exports_t(result, to: str, months: list[str]) -> float:
    """Tonnes over Jan-Jun 2025: the first quarter and the quarter or months after it."""
    dur = result.case.tables["periods"].set_index("period")["duration_yr"]
    return sum(china_magnet_exports(result, p, to) * dur[p] for p in ["2025Q1", *months])


def test_base_first_quarter_magnet_exports_within_5_percent_of_customs():
    """Out of sample (nothing in the case is read from it): 59,661 t/yr against 15,266 t x 4."""
    assert china_magnet_exports(solved(), "2025Q1") == pytest.approx(CUSTOMS_Q1_T * 4, rel=0.05)


@pytest.mark.parametrize("month", MONTHS)
def test_monthly_magnet_exports_follow_the_customs_series_within_2_percent(month):
    """In sample: each month's licence share is that month's exports x 12 / 2024's 58,152 t, so
    this checks that the licence binds (demand outside China exceeds it) every month."""
    months = solved("apr2025_monthly")
    assert list(months.case.tables["periods"]["period"][:5]) == ["2025Q1", *MONTHS, "2025H2"]
    assert china_magnet_exports(months, month) / 12 == pytest.approx(CUSTOMS_T[month], rel=0.02)


def test_the_quarter_and_its_months_export_the_same_tonnes():
    """apr2025_licensing's 2025Q2 share is the quarter's exports at an annual rate, so the
    quarter and the sum of its months agree (7,053 t)."""
    q2 = china_magnet_exports(solved("apr2025_licensing"), "2025Q2") / 4
    by_month = sum(china_magnet_exports(solved("apr2025_monthly"), m) / 12 for m in MONTHS)
    assert q2 == pytest.approx(by_month, rel=1e-6)
    assert q2 == pytest.approx(sum(CUSTOMS_T.values()), rel=0.02)


MAY_US = ("in May the model ships the US 28 % of its base flow (3,656 of 13,060 t/yr) against 6.7 % in the customs "
          "(46 t, -93 % y/y): the licensed tonnes go where their value of lost use is highest, and nothing in the case "
          "makes US buyers wait longer for licences than others. The missing figure is licence approvals by "
          "destination (MOFCOM does not publish them)")
MAY_JPN = ("in May the model ships Japan 0.5 % of its base flow (35 of 6,714 t/yr) against 15.9 % in the customs "
           "(-84 % y/y), and Japan's consumer segment goes 3,434 t/yr short: consumer demand has one value of lost "
           "use everywhere, so which country's consumers go short is settled by freight and the least-norm rule "
           "among equally cheap plans, not by anything that differs between buyers. The missing figure is licence "
           "approvals by destination; Japanese makers' stocks of Chinese magnets are not in the case either")


@pytest.mark.parametrize("country", [
    pytest.param("USA", marks=pytest.mark.xfail(strict=True, reason=MAY_US)),
    "EUR",
    pytest.param("JPN", marks=pytest.mark.xfail(strict=True, reason=MAY_JPN)),
])
def test_may_exports_by_destination_fall_as_in_the_customs_within_10_points(country):
    """May's exports to the destination over the base's (unrestricted 2025 stands in for May
    2024) against the customs y/y ratio, within 0.10. Measured: EU 0.290 (Germany 0.30)."""
    ratio = china_magnet_exports(solved("apr2025_monthly"), "2025-05", country) / \
        china_magnet_exports(solved(), "2025Q2", country)
    assert ratio == pytest.approx(MAY_YOY[country], abs=0.10)


@pytest.mark.parametrize("country", ["EUR", "USA"])
def test_first_half_exports_by_destination_fall_as_in_the_customs_within_10_points(country):
    """H1 2025 over the unrestricted base's H1, against the customs' H1 y/y, within 0.10.
    Measured: EU 0.788 (customs 0.776), US 0.647 (0.694)."""
    ratio = h1_exports_t(solved("apr2025_monthly"), country, MONTHS) / h1_exports_t(solved(), country, ["2025Q2"])
    assert ratio == pytest.approx(H1_YOY[country], abs=0.10)


H1_US_LEVEL = ("the unrestricted base sends the US 13,060 t/yr of Chinese magnets against 7,233 t/yr in the customs "
               "(H1 2024: 2,510 t / 0.694, doubled): 1.81x. The case's US demand is 15,000 t/yr (a midpoint of "
               "published ranges, magnets in every form) less 2,000 t/yr made in the US in 2025 and 140 t/yr from "
               "Japan; the customs count magnets shipped as magnets. The missing figures are US magnet imports by "
               "origin and the magnet content of imported motors and assemblies")


@pytest.mark.parametrize("country", ["EUR", pytest.param("USA", marks=pytest.mark.xfail(strict=True,
                                                                                      reason=H1_US_LEVEL))])
def test_base_exports_by_destination_within_25_percent_of_2024_customs(country):
    """The unrestricted base's 2025 flow against 2024's, read from H1 2025 and its y/y (x 2).
    Measured: EU 16,423 t/yr against 21,546 (-23.8 %)."""
    customs_2024_t_per_yr = 2 * H1_T[country] / H1_YOY[country]
    assert china_magnet_exports(solved(), "2025Q1", country) == pytest.approx(customs_2024_t_per_yr, rel=0.25)


# Argus assessments of Rotterdam (Europe) oxide prices in May 2025 (gmteight.com, 6 May 2025; reference set)
ARGUS_EUROPE_MAY_2025_USD_PER_T = {"Dy_ox": (700_000, 1_000_000), "Tb_ox": (2_000_000, 4_000_000)}
EUROPE_DY = ("the model's Rotterdam Dy oxide price in the licensing quarter is 1,357 USD/kg (5.67x China's 239) against "
             "Argus's 700-1,000 in May 2025 (about 3x China's, SMM): with licensed Dy at 27.4 % of the pre-control flow "
             "the ex-China price rises to what Dy is worth in ex-China magnet making, as nothing outside China can be "
             "drawn down. Tb (2,425 USD/kg, 6.15x) is inside Argus's 2,000-4,000. The missing figures are the Dy stocks "
             "outside China that met part of the gap (Japan's JOGMEC reserve, magnet makers' inventories), none in the "
             "reference set")


@pytest.mark.parametrize("product", [
    pytest.param("Dy_ox", marks=pytest.mark.xfail(strict=True, reason=EUROPE_DY)),
    "Tb_ox",
])
def test_europe_heavy_oxide_prices_in_the_licensing_quarter_within_argus_may_2025(product):
    """The 2025Q2 quarter's model price against Argus's May range, widened by 25 % either way."""
    p = solved("apr2025_licensing").tables["prices"]
    p = p[(p["product"] == product) & (p["country"] == "EUR") & (p["period"] == "2025Q2")
          & (p["origin_class"].fillna("") == "")]
    lo, hi = ARGUS_EUROPE_MAY_2025_USD_PER_T[product]
    assert lo / 1.25 <= float(p["price_usd_per_t"].iloc[0]) <= hi * 1.25

# ---------------------------------------------------------------- behaviour in the shock
AUTOMOTIVE_FIRST = ("in April-June 2025 automotive lines stopped first (Ford Chicago idled for a week in May; US, "
                    "Japanese, EU and Indian makers warned), while in the model the shortfall outside China falls on "
                    "the consumer segment alone (17,987, 34,659 and 11,277 t/yr unserved in April, May and June; EV, "
                    "wind, industrial and defence served in full): a least-cost plan leaves short the uses whose "
                    "value of lost use is lowest (consumer 120 USD/kg against EV 500, assumptions), and no value "
                    "that ranks a car line below a consumer appliance would be defensible. What stopped car lines "
                    "was not their value but their position: just-in-time stocks of weeks, many parts each needing "
                    "its own licence, and licences granted per end user. The missing figures are the magnet stocks "
                    "held by each segment and licence approvals by end use; without them the model answers 'who "
                    "should go short to lose least', not 'who did'")


@pytest.mark.xfail(strict=True, reason=AUTOMOTIVE_FIRST)
def test_the_may_2025_shortfall_stops_automotive_lines():
    d = solved("apr2025_monthly").tables["demand"]
    ev = d[(d["country"] != "CHN") & (d["period"] == "2025-05") & (d["segment"] == "ev")]
    assert ev["unserved_t_per_yr"].sum() > 100


DOMESTIC_PRICES = ("China's domestic prices fall in the licensing quarter (2025Q2 against the base: NdPr oxide 106.3 -> "
                   "68.6 USD/kg, -35 %; Dy oxide -14 %; Tb oxide -9 %; standard magnets 65.5 -> 38.0, -42 %; May alone "
                   "NdPr 30.4) where SMM saw them hold steady: the magnets China cannot export press on its home "
                   "market because the case has nothing that holds them back: no output cut under the quotas, no "
                   "state purchasing for reserves, no stocks that exporters hold while they wait for licences. The "
                   "missing figures are China's 2025 output cuts or state reserve purchases by product and month "
                   "(none is in the reference set)")


@pytest.mark.xfail(strict=True, reason=DOMESTIC_PRICES)
@pytest.mark.parametrize("product", ["NdPr_ox", "Dy_ox", "magnet_std"])
def test_china_domestic_prices_hold_within_10_percent_in_the_licensing_quarter(product):
    def cn(result):
        p = result.tables["prices"]
        p = p[(p["product"] == product) & (p["country"] == "CHN") & (p["period"] == "2025Q2")
              & (p["origin_class"].fillna("") == "")]
        return float(p["price_usd_per_t"].iloc[0])
    assert cn(solved("apr2025_licensing")) == pytest.approx(cn(solved()), rel=0.10)


def test_mountain_pass_keeps_mining_after_2025_and_stocks_what_it_does_not_separate():
    """MP mined 50,692 t REO in 2025 and guides growth; the base holds the mine at that output
    (a must_run floor) where the plan used to stop it in 2026 and draw the 2025 stock. What
    MP does not separate (50,692 - 27,100 = 23,592 t/yr) goes to its concentrate stocks."""
    r = solved()
    p = r.tables["production"]
    mined = p[p["facility"] == "us_mountain_pass"].set_index("period")["activity_t_per_yr"]
    assert mined["2026"] == pytest.approx(50692, rel=1e-9)
    sep = p[p["facility"] == "us_mp_separation"].set_index("period")["activity_t_per_yr"]
    st = r.tables["stockpiles"]
    st = st[st["stockpile"].str.startswith("mp_concentrate_stock") & (st["period"] == "2026")]
    assert (st["buy_t_per_yr"] - st["release_t_per_yr"]).sum() == pytest.approx(50692 - sep["2026"], rel=1e-6)
