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
