"""Build inputs/example.xlsx: a small illustrative case of the whole chain.

Five countries (China, USA, Australia, Malaysia, Japan), three deposit types
(bastnaesite, monazite, ionic clay), separation with co-products that have their own
non-magnet demand, metal-making and two magnet grades. Figures come from
inputs/reference/reference_figures.csv where it has them (the source cell says which);
every other figure says "assumption: ..." and why. It is a teaching case that runs in
a second, not the sourced base case of the real chain.

Run: python inputs/build_example.py  (overwrites inputs/example.xlsx)
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from model.case.casewriter import write_case  # noqa: E402

USGS = "USGS Mineral Commodity Summaries 2026, Rare Earths (reference_figures.csv)"
ARGUS = "Argus Non-Ferrous Markets 2025 annual average, FOB China (reference_figures.csv)"
MP_COMP = "Mountain Pass bastnaesite TREO split 2021 (reference_figures.csv)"
ARAXA = "Monazite Araxa, Brazil REO distribution 2020, used as the monazite proxy (reference_figures.csv)"
PITINGA = ("assumption: ionic-clay split not published; Dy and Y shares rounded from the Pitinga "
           "xenotime proxy (Y 45.4 %, Dy 10.7 % of REO; reference_figures.csv)")
NDFEB = "NdFeB composition: NdPr 29-32.5 wt %, Dy 0.6-1.2 wt % standard, ~4 wt % wind grades (reference_figures.csv)"
ILLUS = "assumption: illustrative figure for the example case, not a sourced estimate"
FREIGHT = ("Drewry WCI container rates 2025 at ~20 t/FEU, about 0.1-0.2 USD/kg (DERIVED, "
           "reference_figures.csv); rounded up for handling")


def build() -> dict:
    countries = [
        {"country": "CHN", "name": "China", "blocs": "", "source": "ISO 3166"},
        {"country": "USA", "name": "United States", "blocs": "MSP", "source": "ISO 3166; Minerals Security Partnership member"},
        {"country": "AUS", "name": "Australia", "blocs": "MSP", "source": "ISO 3166; Minerals Security Partnership member"},
        {"country": "MYS", "name": "Malaysia", "blocs": "", "source": "ISO 3166"},
        {"country": "JPN", "name": "Japan", "blocs": "MSP", "source": "ISO 3166; Minerals Security Partnership member"},
    ]
    P = lambda code, stage, element, unit, price=None, src=ILLUS, disp=None: {  # noqa: E731
        "product": code, "stage": stage, "element": element, "unit": unit,
        "reference_price_usd_per_t": price, "disposal_cost_usd_per_t": disp, "source": src}
    products = [
        P("bast_conc", "concentrate", "mix", "t_REO", src="concentrate in t REO"),
        P("mon_conc", "concentrate", "mix", "t_REO", src="concentrate in t REO"),
        P("clay_conc", "concentrate", "mix", "t_REO", src="mixed carbonate from ionic clay, t REO"),
        P("La_ox", "oxide", "La", "t_REO", 1000, ARGUS, 50),
        P("Ce_ox", "oxide", "Ce", "t_REO", 1710, ARGUS, 50),
        P("NdPr_ox", "oxide", "NdPr", "t_REO", 69000, ARGUS),
        P("Dy_ox", "oxide", "Dy", "t_REO", 239000, ARGUS),
        P("Y_ox", "oxide", "Y", "t_REO", None, "price not in the reference set", 50),
        P("SEG_ox", "oxide", "mix", "t_REO", None, "samarium-europium-gadolinium and other heavy oxides, unsold here", 50),
        P("NdPr_metal", "metal", "NdPr", "t_metal"),
        P("Dy_metal", "metal", "Dy", "t_metal"),
        P("FeB", "input", "", "t", 1000, "assumption: iron-boron and other alloying inputs at about 1 USD/kg"),
        P("magnet_std", "magnet", "mix", "t_magnet", src="sintered NdFeB, standard grade"),
        P("magnet_ht", "magnet", "mix", "t_magnet", src="sintered NdFeB, high-temperature (Dy-rich) grade"),
    ]
    processes = [
        {"process": "mine_bast", "stage": "mining", "description": "bastnaesite mining and beneficiation"},
        {"process": "mine_mon", "stage": "mining", "description": "monazite mining and concentration"},
        {"process": "mine_clay", "stage": "mining", "description": "ionic-clay leaching to mixed carbonate"},
        {"process": "sep_bast", "stage": "separation", "description": "solvent extraction of bastnaesite feed"},
        {"process": "sep_mon", "stage": "separation", "description": "cracking and solvent extraction of monazite feed"},
        {"process": "sep_clay", "stage": "separation", "description": "solvent extraction of ionic-clay carbonate"},
        {"process": "reduce_ndpr", "stage": "reduction", "description": "NdPr oxide to metal by fused-salt electrolysis"},
        {"process": "reduce_dy", "stage": "reduction", "description": "Dy oxide to metal (calciothermic)"},
        {"process": "make_std", "stage": "magnet", "description": "sintered NdFeB, standard grade"},
        {"process": "make_ht", "stage": "magnet", "description": "sintered NdFeB, high-temperature grade"},
        {"process": "buy_feb", "stage": "other", "description": "iron, boron and alloying inputs from the market"},
    ]
    for p in processes:
        p["activity_unit"] = "t"
        p["source"] = "process definition"
    R = lambda k, p, c, src: {"process": k, "product": p, "coefficient": c, "source": src}  # noqa: E731
    recipes = [
        R("mine_bast", "bast_conc", 1, "1 t REO of concentrate per unit of activity"),
        R("mine_mon", "mon_conc", 1, "1 t REO of concentrate per unit of activity"),
        R("mine_clay", "clay_conc", 1, "1 t REO of carbonate per unit of activity"),
        R("sep_bast", "bast_conc", -1, "1 t REO feed per unit"),
        R("sep_bast", "La_ox", 0.323, MP_COMP), R("sep_bast", "Ce_ox", 0.502, MP_COMP),
        R("sep_bast", "NdPr_ox", 0.157, MP_COMP), R("sep_bast", "SEG_ox", 0.018, MP_COMP),
        R("sep_mon", "mon_conc", -1, "1 t REO feed per unit"),
        R("sep_mon", "La_ox", 0.235, ARAXA), R("sep_mon", "Ce_ox", 0.492, ARAXA),
        R("sep_mon", "NdPr_ox", 0.205, ARAXA + ": Nd 16.37 + Pr 4.16"),
        R("sep_mon", "Dy_ox", 0.0035, ARAXA), R("sep_mon", "Y_ox", 0.0124, ARAXA),
        R("sep_mon", "SEG_ox", 0.0521, ARAXA + ": remainder"),
        R("sep_clay", "clay_conc", -1, "1 t REO feed per unit"),
        R("sep_clay", "Y_ox", 0.45, PITINGA), R("sep_clay", "Dy_ox", 0.10, PITINGA),
        R("sep_clay", "NdPr_ox", 0.20, "assumption: light-REE-rich south-China clays carry NdPr; split not published"),
        R("sep_clay", "La_ox", 0.10, "assumption: split not published"),
        R("sep_clay", "SEG_ox", 0.15, "assumption: remainder of the clay split"),
        R("reduce_ndpr", "NdPr_ox", -1.17, "stoichiometry: 1.17 t NdPr oxide per t metal (DESIGN.md)"),
        R("reduce_ndpr", "NdPr_metal", 1, "1 t metal per unit"),
        R("reduce_dy", "Dy_ox", -1.148, "stoichiometry: Dy2O3 is 87.1 % Dy by mass"),
        R("reduce_dy", "Dy_metal", 1, "1 t metal per unit"),
        R("make_std", "NdPr_metal", -0.31, NDFEB), R("make_std", "Dy_metal", -0.01, NDFEB),
        R("make_std", "FeB", -0.68, NDFEB + ": balance Fe, B"), R("make_std", "magnet_std", 1, "1 t magnet per unit"),
        R("make_ht", "NdPr_metal", -0.28, NDFEB), R("make_ht", "Dy_metal", -0.04, NDFEB + ": wind grades ~4 wt % Dy"),
        R("make_ht", "FeB", -0.68, NDFEB + ": balance Fe, B"), R("make_ht", "magnet_ht", 1, "1 t magnet per unit"),
        R("buy_feb", "FeB", 1, "1 t per unit"),
    ]
    F = lambda f, c, cap, src, first=None: {"facility": f, "country": c, "capacity_t_per_yr": cap,  # noqa: E731
                                            "first_year": first, "source": src}
    facilities = [
        F("cn_bayan_obo", "CHN", 220000, "assumption: 220 kt of the USGS 2025 China total of 270 kt REO taken as bastnaesite (Bayan Obo)"),
        F("cn_ionic_clay", "CHN", 50000, "assumption: remaining 50 kt of the USGS 2025 China total as ionic clay"),
        F("us_mountain_pass", "USA", 51000, USGS + "; 2025 output used as capacity (assumption)"),
        F("au_mt_weld", "AUS", 29000, USGS + "; 2025 output used as capacity (assumption)"),
        F("cn_separation", "CHN", 254000, "China smelting & separation quota 2024 (reference_figures.csv)"),
        F("us_mp_separation", "USA", 25500, "MP NdPr run-rate 4,000 t/yr end-2025 / 0.157 NdPr share = 25.5 kt feed (DERIVED, reference_figures.csv)"),
        F("my_lynas_kuantan", "MYS", 51200, "Lynas Malaysia 10,500 t/yr NdPr-equivalent / 0.205 NdPr share = 51.2 kt feed (DERIVED, reference_figures.csv)"),
        F("cn_metal", "CHN", 100000, "assumption: China ~90 % of metal processing (reference_figures.csv); size illustrative"),
        F("jp_metal", "JPN", 8000, ILLUS),
        F("us_metal", "USA", 1000, ILLUS),
        F("cn_magnets", "CHN", 300000, "World NdFeB 319 kt less ex-China 19 kt, 2024 (DERIVED, reference_figures.csv)"),
        F("jp_magnets", "JPN", 13000, "Japan ~13 kt NdFeB, 2024 (ESTIMATE, reference_figures.csv)"),
        F("us_magnets", "USA", 1000, ILLUS, first=2026),
        F("cn_feb", "CHN", 1e6, "assumption: alloying inputs are not scarce"),
        F("jp_feb", "JPN", 1e6, "assumption: alloying inputs are not scarce"),
        F("us_feb", "USA", 1e6, "assumption: alloying inputs are not scarce"),
    ]
    FP = lambda f, k, cost, src=ILLUS: {"facility": f, "process": k, "unit_cost_usd_per_t": cost, "source": src}  # noqa: E731
    fps = [
        FP("cn_bayan_obo", "mine_bast", 2000), FP("cn_ionic_clay", "mine_clay", 6000),
        FP("us_mountain_pass", "mine_bast", 4000), FP("au_mt_weld", "mine_mon", 4500),
        FP("cn_separation", "sep_bast", 3000), FP("cn_separation", "sep_clay", 4000),
        FP("cn_separation", "sep_mon", 3500),
        FP("us_mp_separation", "sep_bast", 6000), FP("my_lynas_kuantan", "sep_mon", 5500),
        FP("cn_metal", "reduce_ndpr", 5000), FP("cn_metal", "reduce_dy", 20000),
        FP("jp_metal", "reduce_ndpr", 8000), FP("jp_metal", "reduce_dy", 30000),
        FP("us_metal", "reduce_ndpr", 10000),
        FP("cn_magnets", "make_std", 15000), FP("cn_magnets", "make_ht", 20000),
        FP("jp_magnets", "make_std", 25000), FP("jp_magnets", "make_ht", 30000),
        FP("us_magnets", "make_std", 30000),
        FP("cn_feb", "buy_feb", 1000, "assumption: about 1 USD/kg"),
        FP("jp_feb", "buy_feb", 1000, "assumption: about 1 USD/kg"),
        FP("us_feb", "buy_feb", 1000, "assumption: about 1 USD/kg"),
    ]
    periods = [
        {"period": "2025", "start_year": 2025, "duration_yr": 1, "regime": "normal", "source": "model horizon"},
        {"period": "2026", "start_year": 2026, "duration_yr": 1, "regime": "normal", "source": "model horizon"},
        {"period": "2027-29", "start_year": 2027, "duration_yr": 3, "regime": "normal", "source": "model horizon"},
    ]
    penalty = {"defence": 5e6, "wind": 2e6, "ev": 1e6, "industrial": 5e5, "consumer": 2e5}
    pen_src = "assumption: value of lost use ordered defence > wind > EV > industrial > consumer"
    magnet_demand = {  # t magnet per yr in 2025
        "USA": {"defence": 1000, "ev": 6000, "wind": 2000, "industrial": 5000, "consumer": 6000},
        "JPN": {"ev": 6000, "industrial": 5000, "consumer": 4000},
        "CHN": {"ev": 40000, "wind": 5000, "industrial": 22000, "consumer": 18000},
    }
    growth = {"2025": 1.0, "2026": 1.087, "2027-29": 1.087 ** 3}
    demand = []
    for c, segs in magnet_demand.items():
        for seg, q in segs.items():
            grade = "magnet_ht" if seg in ("defence", "wind", "ev") else "magnet_std"
            for per, g in growth.items():
                demand.append({"country": c, "product": grade, "segment": seg, "period": per,
                               "quantity_t_per_yr": round(q * g), "shortfall_penalty_usd_per_t": penalty[seg],
                               "source": ("US magnet demand ~20 kt/yr 2025 (DERIVED, reference_figures.csv); segment split assumption"
                                          if c == "USA" else ILLUS) + "; growth 8.7 %/yr NdFeB CAGR forecast (reference_figures.csv); " + pen_src})
    for c, q in (("CHN", 60000), ("USA", 8000), ("JPN", 6000)):
        for per in growth:
            demand.append({"country": c, "product": "Ce_ox", "segment": "polishing_glass", "period": per,
                           "quantity_t_per_yr": q, "shortfall_penalty_usd_per_t": 20000, "source": ILLUS})
            demand.append({"country": c, "product": "La_ox", "segment": "catalysts", "period": per,
                           "quantity_t_per_yr": q // 2, "shortfall_penalty_usd_per_t": 20000, "source": ILLUS})
            demand.append({"country": c, "product": "Y_ox", "segment": "phosphors_coatings", "period": per,
                           "quantity_t_per_yr": q // 20, "shortfall_penalty_usd_per_t": 100000, "source": ILLUS})
    transport = [
        {"from_country": "*", "to_country": "*", "product": "*", "cost_usd_per_t": 250, "source": FREIGHT},
        {"from_country": "AUS", "to_country": "MYS", "product": "mon_conc", "cost_usd_per_t": 100,
         "source": "assumption: Mt Weld concentrate shipped to Kuantan in bulk"},
    ]
    scenarios = [
        {"scenario": "high_demand", "description": "Magnet demand 25 % above the base path",
         "expected_effects": "more magnet shortfall in consumer and industrial segments; higher NdPr prices"},
        {"scenario": "mp_expansion", "parent": "", "description": "Mountain Pass separation doubles",
         "expected_effects": "more US NdPr oxide; lower US magnet shortfall only if metal and magnet capacity follow"},
    ]
    changes = [
        {"scenario": "high_demand", "sheet": "demand", "filter": "product=magnet_std", "column": "quantity_t_per_yr", "op": "scale", "value": "1.25"},
        {"scenario": "high_demand", "sheet": "demand", "filter": "product=magnet_ht", "column": "quantity_t_per_yr", "op": "scale", "value": "1.25"},
        {"scenario": "mp_expansion", "sheet": "facilities", "filter": "facility=us_mp_separation", "column": "capacity_t_per_yr", "op": "scale", "value": "2"},
    ]
    sheets = {
        "periods": periods, "countries": countries, "products": products,
        "product_groups": [{"group": "magnets", "product": "magnet_std", "source": "grouping"},
                           {"group": "magnets", "product": "magnet_ht", "source": "grouping"},
                           {"group": "HREE", "product": "Dy_ox", "source": "grouping"},
                           {"group": "HREE", "product": "Dy_metal", "source": "grouping"}],
        "processes": processes, "recipes": recipes, "facilities": facilities,
        "facility_processes": fps, "demand": demand, "transport": transport,
        "scenarios": scenarios, "scenario_changes": changes,
    }
    controls_rows(sheets)
    caps_expansion_rows(sheets)
    reserves_floors_rows(sheets)
    return sheets


APR2025 = ("China export controls, MOFCOM/GAC announcement 4 Apr 2025: licences for Sm, Gd, Tb, Dy, Lu, "
           "Sc, Y incl. alloys, compounds and magnets containing them (reference_figures.csv)")
OCT2025 = ("China export controls 9 Oct 2025 (MOFCOM 61 & 62): extraterritorial rule for foreign goods with "
           ">= 0.1 % Chinese-origin rare-earth value (reference_figures.csv)")


def _scenario(sheets: dict, name: str, description: str, effects: str, changes: list[dict]) -> None:
    sheets["scenarios"].append({"scenario": name, "description": description, "expected_effects": effects})
    for ch in changes:
        sheets["scenario_changes"].append({"scenario": name, "filter": "*", "column": "", **ch})


def _append(sheet: str, **row) -> dict:
    # ';' separates col=value pairs, so a source keeps its clauses apart with ','.
    return {"sheet": sheet, "op": "append",
            "value": "; ".join(f"{k}={str(v).replace(';', ',')}" for k, v in row.items())}


def controls_rows(sheets: dict) -> None:
    """Scenarios for each kind of export control, and a tariff."""
    sheets["product_groups"].append({"group": "HREE", "product": "magnet_ht", "source": APR2025})
    for p in sheets["products"]:
        if p["product"] in ("magnet_std", "magnet_ht"):
            p["reference_price_usd_per_t"] = 60000
            p["source"] += ("; reference price assumption: ~60 USD/kg sintered NdFeB, about 2x the "
                            "Argus 2025 NdPr oxide price per kg of magnet content")
    _scenario(sheets, "cn_heavy_ban", "China bans exports of Dy oxide, Dy metal and Dy-rich magnets to everyone",
              "high-temperature magnet shortfall outside China; ex-China Dy price at the rationing level",
              [_append("export_controls", control="hree_ban", exporter="CHN", product="HREE",
                       destinations="*", kind="ban", source=APR2025 + "; a ban is the limiting case")])
    _scenario(sheets, "cn_ban_us_only", "China bans HREE and Dy-rich magnets to the USA only",
              "Japan and others keep buying but cannot pass Chinese-origin material on; US shortfall",
              [_append("export_controls", control="hree_ban_us", exporter="CHN", product="HREE",
                       destinations="USA", kind="ban", source=APR2025 + "; destination narrowed for the scenario")])
    _scenario(sheets, "cn_dy_quota", "China caps Dy content of exports to MSP members at 300 t a year",
              "Dy-rich magnet exports to MSP fall to what 300 t Dy allows; the quota's shadow value per t Dy",
              [_append("export_controls", control="dy_quota", exporter="CHN", product="HREE",
                       destinations="MSP", kind="quota", element="Dy", quota_t_per_yr=300,
                       source="assumption: illustrative quota in Dy content")])
    _scenario(sheets, "cn_licence_apr2025", "April 2025 licensing: 30 % of the pre-control flow is licensed",
              "licensed HREE flows capped at 30 % of 2,000 t/yr; paperwork cost per t; shortfall outside China",
              [_append("export_controls", control="apr2025_licences", exporter="CHN", product="HREE",
                       destinations="*", kind="licence", licence_approval_share=0.3,
                       reference_flow_t_per_yr=2000, licence_cost_usd_per_t=5000,
                       source=APR2025 + "; approval share, reference flow and cost are assumptions")])
    _scenario(sheets, "cn_extraterritorial", "October 2025 rule: no Chinese-origin Dy metal, even inside "
              "Japanese magnets, may reach the USA",
              "Japanese magnets for the USA must use non-Chinese Dy; more US shortfall than a plain ban",
              [_append("export_controls", control="oct2025_rule", exporter="CHN", product="Dy_metal",
                       destinations="USA", kind="ban", extraterritorial="TRUE", source=OCT2025)])
    _scenario(sheets, "us_301_magnets", "US Section 301 duty of 25 % plus 2.1 % MFN on Chinese magnets",
              "tariff revenue as a transfer; US imports shift to Japan where capacity allows",
              [_append("tariffs", importer="USA", exporter="CHN", product="magnets", ad_valorem_pct=27.1,
                       source="US Section 301 tariff on Chinese permanent magnets from 1 Jan 2026 (25 %) plus "
                              "MFN 2.1 % (reference_figures.csv)")])


CN_QUOTA = ("China mining quota (total) 2024, 270,000 t REO (MIIT via starfeu.com and mexicobusiness.news; "
            "reference_figures.csv); the 2025 quota was not published and USGS assumes 270 kt")
EF_CAPEX = ("Energy Fuels White Mesa Phase 2 BFS (Jan 2026): capex US$410M for >6,000 t/yr NdPr oxide "
            "(reference_figures.csv) = 68,300 USD per t/yr NdPr; x 0.157 t NdPr per t bastnaesite feed "
            "(the sep_bast recipe) = ~10,700 USD per t/yr of feed (DERIVED). Low end: Iluka's integrated "
            "Eneabba refinery is ~A$100k per t/yr TREO (reference_figures.csv)")
MP10X = ("MP Materials 10X magnet campus: capex > US$1.25bn for 10 kt/yr total US magnet capacity -> "
         "~US$125k per t/yr (DERIVED, reference_figures.csv)")
BUILD_ASSUMPTIONS = ("assumption: lifetime 20 yr; fixed O&M 3 %/yr of capex; running cost as the existing US "
                     "plant; lead time 2 yr (announced US projects quote ~3 yr from decision to commissioning, "
                     "MP 10X Jul 2025 -> 2028, Energy Fuels Phase 2 Jan 2026 -> Q1 2029; shortened so a 2025 "
                     "decision serves the example's 2027-29 period); annuity at the case discount rate")


def caps_expansion_rows(sheets: dict) -> None:
    """China's mining quota (base, not binding at 270 kt) and scenarios for a quota cut, an
    EU-style 65 % diversification cap on MSP's NdPr oxide, and US separation and magnet builds."""
    sheets.setdefault("supply_caps", []).append(
        {"cap": "cn_mining_quota", "country": "CHN", "stage": "mining", "cap_t_per_yr": 270000,
         "periods": "*", "source": CN_QUOTA})
    _scenario(sheets, "china_quota_cut", "China's mining quota 20 % lower (216 kt REO instead of 270 kt)",
              "China mines 216 kt; Mountain Pass and Mt Weld run harder; concentrate and oxide prices rise "
              "by the quota's shadow value; more magnet shortfall outside China",
              [{"sheet": "supply_caps", "filter": "cap=cn_mining_quota", "column": "cap_t_per_yr",
                "op": "scale", "value": "0.8"}])
    _scenario(sheets, "eu_style_65_cap", "No single country supplies more than 65 % of the MSP bloc's use of "
              "NdFeB magnets (both grades; an EU Critical Raw Materials Act style rule applied to MSP and China)",
              "China's magnets to the USA and Japan are held to 65 % of MSP's magnet use; Japanese (and US) "
              "magnet plants make the rest from imported oxide and metal, which the cap does not cover; once "
              "Japan's 13 kt/yr is full MSP's use itself falls (magnet shortfall, rationed by penalty); the "
              "cap's shadow value per t of Chinese magnets",
              [_append("supply_caps", cap="msp_magnets_65", country="CHN", product="magnets", bloc="MSP",
                       max_share=0.65, source="EU Critical Raw Materials Act (Regulation 2024/1252) art. 5: "
                       "at most 65 % of annual consumption of a strategic raw material from a single third "
                       "country; applied here to MSP and China, counted by Chinese origin wherever shipped from")])
    _scenario(sheets, "us_separation_build", "The US may build bastnaesite separation and NdFeB magnet "
              "capacity, decided from 2025, online after a 2-year lead time",
              "builds where their annuity + O&M + running cost beat imports or the shortfall penalty; "
              "builds come online in 2027-29, not before; capacity values show what more would be worth",
              [_append("expansion", option="us_sep_new", country="USA", process="sep_bast",
                       max_build_t_per_yr=38000, capex_usd_per_t_per_yr=10700, lifetime_yr=20,
                       fixed_om_usd_per_t_per_yr=321, unit_cost_usd_per_t=6000, lead_time_yr=2,
                       earliest_year=2025, source=EF_CAPEX + "; max build 6,000 t NdPr / 0.157 = 38 kt feed "
                       "(Energy Fuels Phase 2 size); " + BUILD_ASSUMPTIONS),
               _append("expansion", option="us_magnets_new", country="USA", process="make_std",
                       max_build_t_per_yr=9000, capex_usd_per_t_per_yr=125000, lifetime_yr=20,
                       fixed_om_usd_per_t_per_yr=3750, unit_cost_usd_per_t=30000, lead_time_yr=2,
                       earliest_year=2025, source=MP10X + "; max build 9 kt/yr (10X brings MP to 10 kt/yr "
                       "with the 1 kt Independence plant); " + BUILD_ASSUMPTIONS)])


VAULT = ("Project Vault (2 Feb 2026): ~USD 12 bn (EXIM 10 bn + ~1.7-2 bn private); Wood Mackenzie: ~45 days of "
         "demand if spread over 44 minerals, design target a 60-day buffer (reference_figures.csv)")
DOD_FLOOR = ("DoD-MP Materials agreement Jul 2025: NdPr oxide floor of 110 USD/kg for 10 years from Q4 2025, "
             "on volumes sold or stockpiled (reference_figures.csv)")


def reserves_floors_rows(sheets: dict) -> None:
    """Scenarios for stockpiles and each price-floor mechanism."""
    crisis = [{"sheet": "periods", "filter": "period=2026", "column": "regime", "op": "set", "value": "crisis"}]
    crisis += [_append("export_controls", control=f"cn_2026_{p.lower()}_ban", exporter="CHN", product=p,
                       destinations="*", kind="ban", periods="2026",
                       source="assumption: a one-year Chinese halt of NdPr-chain exports to test the reserve")
               for p in ("NdPr_ox", "NdPr_metal", "magnets")]
    _scenario(sheets, "vault_60_days", "A US NdPr oxide reserve of 60 days of US final demand (via the magnets' "
              "NdPr content), tested by a 2026 crisis year in which China stops NdPr oxide, metal and magnet exports",
              "the reserve fills to 60 days in 2025, but in 2026 US and Japanese metal and magnet plants are "
              "already full, so oxide cannot become magnets (stockpile_cover: 0 usable days) and magnet "
              "shortfall rises outside China; an oxide reserve needs downstream capacity to be worth its cost",
              crisis + [_append("stockpiles", stockpile="us_vault_ndpr", holder="USA", product="NdPr_ox",
                                capacity_t=3000, target_days_of_cover=60, holding_cost_usd_per_t_yr=700,
                                budget_usd=5e8, terminal_rule="keep", controlling_country="CHN",
                                source=VAULT + "; capacity, budget share and holding cost (~1 % of value a "
                                "year) are assumptions")])
    floor = dict(floor="dod_ndpr_floor", product="NdPr_ox", facilities="us_mp_separation",
                 floor_price_usd_per_t=110000, index_zone="USA")
    _scenario(sheets, "ndpr_floor_cfd", "DoD NdPr oxide floor of 110 USD/kg for Mountain Pass, paid as a "
              "contract for difference against the US model price",
              "no change in flows or resource cost; payment = covered output x max(0, 110,000 - US NdPr price): "
              "zero while the least-cost plan leaves Mountain Pass idle (a cfd pays on output, it does not "
              "create it; compare ndpr_floor_offtake)",
              [_append("price_floors", mechanism="cfd", source=DOD_FLOOR, **floor)])
    _scenario(sheets, "ndpr_floor_offtake", "DoD takes 1,000 t/yr of Mountain Pass NdPr oxide at 110 USD/kg "
              "into a defence reserve that is not released in the horizon",
              "Mountain Pass separates at least enough for 1,000 t/yr; that oxide leaves the market, so US "
              "metal and magnet makers buy more elsewhere; payment 1,000 t x 110,000 USD a year",
              [_append("stockpiles", stockpile="dod_ndpr_reserve", holder="USA", product="NdPr_ox",
                       release_max_t_per_yr=0, holding_cost_usd_per_t_yr=700, terminal_rule="free",
                       controlling_country="CHN", source="assumption: DoD holds the offtake as a reserve"),
               _append("price_floors", mechanism="offtake", quantity_t_per_yr=1000,
                       offtake_stockpile="dod_ndpr_reserve",
                       source=DOD_FLOOR + "; quantity 1,000 t/yr is an assumption", **floor)])
    duty = dict(mechanism="floor_duty", index_zone="MSP", floor_price_usd_per_t=80000,
                source="assumption: an MSP magnet price floor of 80 USD/kg enforced as a duty of floor minus "
                       "the 60 USD/kg reference price on imports from outside the partnership")
    _scenario(sheets, "magnet_floor_duty", "Minerals Security Partnership magnet floor of 80 USD/kg, enforced "
              "by a duty on magnets imported into MSP members from outside it",
              "imports of Chinese magnets into the USA, Japan and Australia fall as far as Japanese and US "
              "magnet capacity allows; duty revenue is a transfer; landed cost by lane in floor_landed_costs",
              [_append("price_floors", floor="msp_magnet_floor_std", product="magnet_std", **duty),
               _append("price_floors", floor="msp_magnet_floor_ht", product="magnet_ht", **duty)])


SETTINGS = {
    "base_year": (2025, "first model year"),
    "currency": ("USD", "real US dollars"),
    "price_year": (2025, "real 2025 dollars"),
    "discount_rate": (0.05, "assumption: 5 % real social discount rate"),
    "default_shortfall_penalty_usd_per_t": (1e6, "assumption: default value of lost use"),
    "default_disposal_cost_usd_per_t": (50, "assumption: storage or disposal of surplus oxide at about 0.05 USD/kg"),
}


if __name__ == "__main__":
    out = write_case(ROOT / "inputs" / "example.xlsx", build(), SETTINGS, overwrite=True)
    print(f"written {out}")
