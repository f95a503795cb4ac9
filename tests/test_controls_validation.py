"""Bad export_controls and tariffs rows: each problem names sheet, row and column."""

from __future__ import annotations

import pytest

from model.case.casewriter import write_case
from model.case.schema import InputError
from model.runs.pipeline import load_case
from test_controls import ox_case


def problems(tmp_path, case):
    path = write_case(tmp_path / "bad.xlsx", case, {"base_year": 2025})
    with pytest.raises(InputError) as exc:
        load_case(str(path))
    return exc.value.problems


def ctl(**kw):
    return {"control": "c1", "exporter": "CHN", "product": "ox", "kind": "ban", **kw}


def at(found, sheet, row, column, text):
    hits = [p for p in found if (p.sheet, p.row, p.column) == (sheet, row, column) and text in str(p)]
    assert hits, "\n".join(map(str, found))
    return hits[0]


def test_unknown_group_and_bloc(tmp_path):
    case = ox_case()
    case["export_controls"] = [ctl(product="HREEs", destinations="ALLYS")]
    found = problems(tmp_path, case)
    at(found, "export_controls", 2, "product", "unknown product or group")
    p = at(found, "export_controls", 2, "destinations", "unknown country or bloc")
    assert "did you mean 'ALLY'" in str(p)


def test_share_outside_zero_to_one(tmp_path):
    case = ox_case()
    case["export_controls"] = [ctl(kind="quota", quota_share=1.5, reference_flow_t_per_yr=100)]
    at(problems(tmp_path, case), "export_controls", 2, "quota_share", "out of range")


def test_share_quota_without_reference_flow(tmp_path):
    case = ox_case()
    case["export_controls"] = [ctl(kind="quota", quota_share=0.5)]
    p = at(problems(tmp_path, case), "export_controls", 2, "reference_flow_t_per_yr",
           "a share quota needs reference_flow_t_per_yr")
    assert "pre-control flow" in p.expected


def test_quota_without_amount_and_licence_without_share(tmp_path):
    case = ox_case()
    case["export_controls"] = [ctl(kind="quota"), ctl(control="c2", kind="licence", destinations="JPN")]
    found = problems(tmp_path, case)
    at(found, "export_controls", 2, "quota_t_per_yr", "a quota needs an amount")
    at(found, "export_controls", 3, "licence_approval_share", "a licence needs licence_approval_share")
    at(found, "export_controls", 3, "reference_flow_t_per_yr", "a licence needs reference_flow_t_per_yr")


def test_overlapping_periods_of_two_controls_on_one_flow(tmp_path):
    case = ox_case()
    case["periods"] = [{"period": "p1", "start_year": 2025, "duration_yr": 1},
                       {"period": "p2", "start_year": 2026, "duration_yr": 1}]
    case["demand"][0]["period"] = "p1"
    case["export_controls"] = [ctl(kind="quota", quota_t_per_yr=5, periods="p1,p2"),
                               ctl(control="c2", kind="quota", quota_t_per_yr=9, periods="p2")]
    p = at(problems(tmp_path, case), "export_controls", 3, "periods", "overlaps control 'c1' in period p2")
    assert p.value == "p2"


def test_unknown_element_and_no_destination_left(tmp_path):
    case = ox_case()
    case["export_controls"] = [ctl(kind="quota", quota_t_per_yr=1, element="Dx"),
                               ctl(control="c2", destinations="USA", exempt="USA")]
    found = problems(tmp_path, case)
    assert "did you mean 'Dy'" in str(at(found, "export_controls", 2, "element", "unknown element"))
    at(found, "export_controls", 3, "destinations", "covers no destination")


def test_exporter_must_be_a_country(tmp_path):
    case = ox_case()
    case["export_controls"] = [ctl(exporter="ALLY")]
    at(problems(tmp_path, case), "export_controls", 2, "exporter", "unknown country")


def test_ad_valorem_duty_needs_a_reference_price(tmp_path):
    case = ox_case()
    case["products"][0]["reference_price_usd_per_t"] = None
    case["tariffs"] = [{"importer": "USA", "exporter": "CHN", "product": "ox", "ad_valorem_pct": 25}]
    at(problems(tmp_path, case), "tariffs", 2, "ad_valorem_pct", "needs the product's reference price")


def test_tariff_with_unknown_bloc_and_bad_period(tmp_path):
    case = ox_case()
    case["tariffs"] = [{"importer": "EU", "exporter": "CHN", "product": "ox", "specific_usd_per_t": 5,
                        "periods": "2025,2031"}]
    found = problems(tmp_path, case)
    at(found, "tariffs", 2, "importer", "unknown country or bloc")
    at(found, "tariffs", 2, "periods", "unknown period")


def test_a_period_listed_twice(tmp_path):
    case = ox_case()
    case["export_controls"] = [ctl(periods="2025,2025")]
    p = at(problems(tmp_path, case), "export_controls", 2, "periods", "a period is listed twice")
    assert p.expected == "each period once"
