"""Bad workbooks give clear errors: every problem names the sheet, the Excel row (the
header is row 1), the column and what is wrong, and all problems come at once."""

from __future__ import annotations

import openpyxl
import pytest

from model.case.casewriter import write_case
from model.case.schema import InputError, Problem
from model.cli import main
from model.lp.data import build_model_data
from model.runs.pipeline import load_case

SETTINGS = {"base_year": 2025, "discount_rate": 0.05}


def valid_sheets() -> dict[str, list[dict]]:
    """A small valid case: CHN mines and separates, USA buys Nd oxide."""
    return {
        "periods": [{"period": "2025", "start_year": 2025, "duration_yr": 1},
                    {"period": "2026", "start_year": 2026, "duration_yr": 1}],
        "countries": [{"country": "CHN", "blocs": ""},
                      {"country": "USA", "blocs": "G7"},
                      {"country": "JPN", "blocs": "G7"}],
        "products": [
            {"product": "conc", "stage": "concentrate", "element": "mix", "unit": "t_REO"},
            {"product": "Nd_ox", "stage": "oxide", "element": "Nd", "unit": "t_REO"},
            {"product": "La_ox", "stage": "oxide", "element": "La", "unit": "t_REO",
             "disposal_cost_usd_per_t": 5},
        ],
        "processes": [{"process": "mine", "stage": "mining"},
                      {"process": "sep", "stage": "separation"}],
        "recipes": [{"process": "mine", "product": "conc", "coefficient": 1},
                    {"process": "sep", "product": "conc", "coefficient": -1},
                    {"process": "sep", "product": "Nd_ox", "coefficient": 0.2},
                    {"process": "sep", "product": "La_ox", "coefficient": 0.8}],
        "facilities": [{"facility": "m1", "country": "CHN", "capacity_t_per_yr": 1000},
                       {"facility": "s1", "country": "CHN", "capacity_t_per_yr": 1000}],
        "facility_processes": [
            {"facility": "m1", "process": "mine", "unit_cost_usd_per_t": 10},
            {"facility": "s1", "process": "sep", "unit_cost_usd_per_t": 20}],
        "demand": [{"country": "USA", "product": "Nd_ox", "period": "2025",
                    "quantity_t_per_yr": 100, "shortfall_penalty_usd_per_t": 1e5}],
        "transport": [{"from_country": "CHN", "to_country": "*", "product": "*",
                       "cost_usd_per_t": 3}],
        "scenarios": [{"scenario": "high_demand", "description": "more demand"}],
        "scenario_changes": [{"scenario": "high_demand", "sheet": "demand",
                              "filter": "country=USA", "column": "quantity_t_per_yr",
                              "op": "scale", "value": "2"}],
    }


@pytest.fixture
def sheets() -> dict[str, list[dict]]:
    return valid_sheets()


@pytest.fixture
def write(tmp_path):
    """write(sheets, settings=SETTINGS) -> path of a new workbook."""
    def _write(sheets, settings=SETTINGS, name="x.xlsx"):
        return write_case(tmp_path / name, sheets, settings)
    return _write


def problems_of(path, scenario=None) -> list[Problem]:
    with pytest.raises(InputError) as exc:
        load_case(str(path), scenario)
    assert exc.value.problems, "an InputError must carry its problems"
    return exc.value.problems


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]


def find(problems: list[Problem], sheet: str, row, column: str, text: str) -> Problem:
    """The problem at (sheet, row, column) whose message has `text`."""
    for p in problems:
        if p.sheet == sheet and p.row == row and p.column == column and text in p.message:
            return p
    raise AssertionError(f"no problem at {sheet}/{row}/{column} with {text!r} in:\n"
                         + "\n".join(map(str, problems)))


def assert_located(p: Problem, sheet: str, row, column: str, text: str) -> None:
    assert (p.sheet, p.row, p.column) == (sheet, row, column), str(p)
    assert text in p.message, str(p)
    assert p.file == "x.xlsx"
    # The printed form carries the location too.
    shown = str(p)
    assert f"sheet '{sheet}'" in shown
    if row is not None:
        assert f"row {row}" in shown
    if column:
        assert f"column '{column}'" in shown


# --- the fixture itself ---------------------------------------------------------------

def test_valid_case_loads(sheets, write):
    case = load_case(str(write(sheets)))
    assert len(case.tables["facilities"]) == 2
    assert case.settings["base_year"] == 2025
    assert load_case(str(write(sheets, name="y.xlsx")), "high_demand").tables[
        "demand"]["quantity_t_per_yr"].tolist() == [200.0]


# --- references ---------------------------------------------------------------------

def test_unknown_country_in_facilities_suggests_code(sheets, write):
    sheets["facilities"][1]["country"] = "CNH"
    p = only(problems_of(write(sheets)))
    assert_located(p, "facilities", 3, "country", "unknown country")
    assert "did you mean 'CHN'" in p.message
    assert p.value == "CNH"


def test_unknown_product_in_recipes(sheets, write):
    sheets["recipes"][2]["product"] = "Nd_oxide"
    p = only(problems_of(write(sheets)))
    assert_located(p, "recipes", 4, "product", "unknown product")
    assert "did you mean 'Nd_ox'" in p.message


# --- cell types and ranges ----------------------------------------------------------

def test_text_in_number_column(sheets, write):
    sheets["facilities"][1]["capacity_t_per_yr"] = "lots"
    p = only(problems_of(write(sheets)))
    assert_located(p, "facilities", 3, "capacity_t_per_yr", "not a number")
    assert p.value == "lots"
    assert "a number" in p.expected


def test_negative_capacity(sheets, write):
    sheets["facilities"][0]["capacity_t_per_yr"] = -5
    p = only(problems_of(write(sheets)))
    assert_located(p, "facilities", 2, "capacity_t_per_yr", "out of range")
    assert "at least 0" in p.expected


def test_zero_duration_period(sheets, write):
    sheets["periods"][1]["duration_yr"] = 0
    p = only(problems_of(write(sheets)))
    assert_located(p, "periods", 3, "duration_yr", "out of range")
    assert "above 0" in p.expected


def test_formula_without_cached_value(sheets, write):
    path = write(sheets)
    wb = openpyxl.load_workbook(path)
    ws = wb["facilities"]
    assert ws["C1"].value == "capacity_t_per_yr"
    ws["C2"] = "=1+1"  # openpyxl saves formulas without a calculated value
    wb.save(path)
    p = only(problems_of(path))
    assert_located(p, "facilities", 2, "capacity_t_per_yr", "formula has no cached value")
    assert "open and save it in Excel or LibreOffice" in p.message


# --- periods ------------------------------------------------------------------------

def test_overlapping_periods(sheets, write):
    sheets["periods"][0]["duration_yr"] = 2  # 2025-2027 overlaps 2026
    p = only(problems_of(write(sheets)))
    assert_located(p, "periods", 3, "start_year", "overlaps period '2025'")
    assert "ends at 2027" in p.message


def test_periods_in_any_row_order_run_in_time_order(sheets, write):
    """Rows of the periods sheet may come in any order: they are read in time order."""
    sheets["periods"] = list(reversed(sheets["periods"]))
    case = load_case(str(write(sheets)))
    assert list(case.tables["periods"]["period"]) == [p["period"] for p in reversed(sheets["periods"])]


def test_periods_starting_together_overlap(sheets, write):
    sheets["periods"][1]["start_year"] = sheets["periods"][0]["start_year"]
    problems = problems_of(write(sheets))
    assert any(p.sheet == "periods" and p.column == "start_year" and "overlap" in p.message for p in problems), \
        "\n".join(map(str, problems))


# --- keys, sheets and columns -------------------------------------------------------

def test_duplicate_facility(sheets, write):
    sheets["facilities"].append({"facility": "m1", "country": "CHN",
                                 "capacity_t_per_yr": 50})
    p = only(problems_of(write(sheets)))
    assert_located(p, "facilities", 4, "facility", "duplicate key")
    assert "first used in row 2" in p.message


def test_missing_required_sheet(sheets, write):
    del sheets["recipes"]
    p = only(problems_of(write(sheets)))
    assert_located(p, "recipes", None, "", "required sheet is missing")


def test_missing_required_column(sheets, write):
    for r in sheets["facilities"]:
        del r["country"]
    p = only(problems_of(write(sheets)))
    assert_located(p, "facilities", 1, "country", "required column is missing")


def test_unknown_column_suggests_name(sheets, write):
    sheets["demand"][0]["shortfall_penalty"] = sheets["demand"][0].pop(
        "shortfall_penalty_usd_per_t")
    p = only(problems_of(write(sheets)))
    assert_located(p, "demand", 1, "shortfall_penalty", "unknown column")
    assert "did you mean 'shortfall_penalty_usd_per_t'" in p.message


def test_misspelt_required_column_reports_both(sheets, write):
    for r in sheets["facilities"]:
        r["capacity_t_per_year"] = r.pop("capacity_t_per_yr")
    problems = problems_of(write(sheets))
    p = find(problems, "facilities", 1, "capacity_t_per_year", "unknown column")
    assert "did you mean 'capacity_t_per_yr'" in p.message
    find(problems, "facilities", 1, "capacity_t_per_yr", "required column is missing")
    assert len(problems) == 2


def test_unknown_sheet(sheets, write):
    sheets["demnad"] = [{"country": "USA"}]
    p = only(problems_of(write(sheets)))
    assert_located(p, "demnad", None, "", "unknown sheet")
    assert "did you mean 'demand'" in p.message


def test_sheet_starting_with_underscore_is_ignored(sheets, write):
    sheets["_notes"] = [{"note": "anything"}]
    load_case(str(write(sheets)))


def test_calibration_above_term_below_the_below_term(sheets, write):
    sheets["calibration"] = [{"facility": "m1", "observed_output_t_per_yr": 50,
                              "below_observed_usd_per_t": 5, "above_observed_usd_per_t": 2}]
    p = only(problems_of(write(sheets)))
    assert_located(p, "calibration", 2, "above_observed_usd_per_t", "above the observed output")
    assert "at least below_observed_usd_per_t (5)" in p.expected


def test_empty_optional_sheet_is_fine(sheets, write):
    sheets["calibration"] = []
    load_case(str(write(sheets)))


# --- processes, recipes and facilities ----------------------------------------------

def test_process_with_no_output(sheets, write):
    sheets["processes"].append({"process": "crack", "stage": "cracking"})
    sheets["recipes"].append({"process": "crack", "product": "conc", "coefficient": -1})
    p = only(problems_of(write(sheets)))
    # The recipes row of the process (row 6), not its row in the processes sheet.
    assert_located(p, "recipes", 6, "coefficient", "process has no output")
    assert p.value == "crack"


def test_process_with_no_recipe(sheets, write):
    sheets["processes"].append({"process": "crack", "stage": "cracking"})
    p = only(problems_of(write(sheets)))
    assert_located(p, "processes", 4, "process", "process has no recipe")


def test_facility_running_no_process(sheets, write):
    sheets["facilities"].append({"facility": "idle", "country": "USA",
                                 "capacity_t_per_yr": 10})
    p = only(problems_of(write(sheets)))
    assert_located(p, "facilities", 4, "facility", "facility runs no process")


def test_zero_recipe_coefficient(sheets, write):
    sheets["recipes"][3]["coefficient"] = 0
    p = only(problems_of(write(sheets)))
    assert_located(p, "recipes", 5, "coefficient", "zero coefficient")


def test_first_year_after_last_year(sheets, write):
    sheets["facilities"][1].update(first_year=2030, last_year=2026)
    p = only(problems_of(write(sheets)))
    assert_located(p, "facilities", 3, "last_year", "last_year before first_year")
    assert "2030" in p.expected


# --- settings -----------------------------------------------------------------------

def test_unknown_setting_key(sheets, write):
    p = only(problems_of(write(sheets, {"base_year": 2025, "discount_rat": 0.05})))
    assert_located(p, "settings", 3, "key", "not an allowed value")
    assert "did you mean 'discount_rate'" in p.message


def test_missing_base_year(sheets, write):
    p = only(problems_of(write(sheets, {"discount_rate": 0.05})))
    assert_located(p, "settings", None, "key", "required setting is missing")
    assert "base_year" in p.expected


def test_bad_setting_value(sheets, write):
    p = only(problems_of(write(sheets, {"base_year": 2025, "discount_rate": 5})))
    assert_located(p, "settings", 3, "value", "out of range")
    assert p.expected.startswith("discount_rate:")


def test_missing_settings_sheet(sheets, write):
    problems = problems_of(write(sheets, settings=None))
    find(problems, "settings", None, "", "required sheet is missing")
    find(problems, "settings", None, "key", "required setting is missing")


# --- codes that clash ---------------------------------------------------------------

def test_bloc_code_clashes_with_country(sheets, write):
    sheets["countries"][2]["blocs"] = "G7,USA"  # JPN (row 4) names a bloc 'USA'
    p = only(problems_of(write(sheets)))
    # The row whose blocs cell holds the clash, not the USA row.
    assert_located(p, "countries", 4, "blocs", "a bloc has the same code as a country")
    assert p.value == "USA"


def test_group_clashes_with_product(sheets, write):
    sheets["product_groups"] = [{"group": "magnets", "product": "Nd_ox"},
                                {"group": "La_ox", "product": "La_ox"}]
    p = only(problems_of(write(sheets)))
    assert_located(p, "product_groups", 3, "group", "a group has the same code as a product")


# --- transport wildcards (checked when model data is built) -------------------------

def test_transport_rows_equally_specific_and_disagreeing(sheets, write):
    sheets["transport"] = [
        {"from_country": "CHN", "to_country": "*", "product": "*", "cost_usd_per_t": 3},
        {"from_country": "*", "to_country": "USA", "product": "*", "cost_usd_per_t": 5},
    ]
    case = load_case(str(write(sheets)))  # each row alone is valid
    with pytest.raises(InputError) as exc:
        build_model_data(case)
    problems = exc.value.problems
    assert len(problems) == 3  # lane CHN -> USA for each of the 3 products
    for p in problems:
        assert_located(p, "transport", 3, "cost_usd_per_t", "rows 2, 3 are equally specific")
        assert "CHN -> USA" in p.message and "disagree" in p.message


def test_transport_more_specific_row_wins_without_error(sheets, write):
    sheets["transport"].append({"from_country": "CHN", "to_country": "USA",
                                "product": "Nd_ox", "cost_usd_per_t": 9})
    data = build_model_data(load_case(str(write(sheets))))
    lane = data.lanes[(data.lanes["to_country"] == "USA") & (data.lanes["product"] == "Nd_ox")]
    assert lane["cost_usd_per_t"].tolist() == [9]


# --- scenarios ----------------------------------------------------------------------

def test_unknown_scenario(sheets, write):
    p = only(problems_of(write(sheets), "high_demnad"))
    assert_located(p, "scenarios", None, "scenario", "unknown scenario")
    assert "did you mean 'high_demand'" in p.message
    known = ", ".join(sheets["scenarios"][i]["scenario"] for i in range(len(sheets["scenarios"])))
    assert f"the workbook's scenarios: {known}" in p.message  # a newcomer sees what there is


def test_an_unknown_scenario_lists_at_most_twenty_names():
    from model.case.workbook import unknown_scenario
    words = unknown_scenario("s99", [f"s{i}" for i in range(25)])
    assert words.endswith("s19 and 5 more")
    assert "s18, s19 and 5 more" in words and "s20" not in words
    assert unknown_scenario("x", []) == "unknown scenario; the workbook has no scenarios"


def test_scenario_filter_matching_no_rows(sheets, write):
    sheets["scenario_changes"][0]["filter"] = "country=JPN"
    p = only(problems_of(write(sheets), "high_demand"))
    assert_located(p, "scenario_changes", 2, "filter", "the filter matches no row")
    assert "scenario 'high_demand'" in p.message


def test_scenario_parent_cycle(sheets, write):
    sheets["scenarios"] = [{"scenario": "a", "parent": "b"}, {"scenario": "b", "parent": "a"}]
    sheets["scenario_changes"][0]["scenario"] = "a"
    path = write(sheets)
    p = only(problems_of(path, "a"))
    assert_located(p, "scenarios", 3, "parent", "scenario parents form a cycle")
    assert "a -> b -> a" in p.message


def test_scenario_unknown_column(sheets, write):
    sheets["scenario_changes"][0]["column"] = "quantity"
    p = only(problems_of(write(sheets), "high_demand"))
    assert_located(p, "scenario_changes", 2, "column", "unknown column")
    assert "did you mean 'quantity_t_per_yr'" in p.message


def test_scenario_unknown_parent_and_sheet(sheets, write):
    sheets["scenarios"][0]["parent"] = "base_cas"
    sheets["scenario_changes"][0]["sheet"] = "demands"
    problems = problems_of(write(sheets))  # caught even without choosing the scenario
    find(problems, "scenarios", 2, "parent", "unknown scenario")
    p = find(problems, "scenario_changes", 2, "sheet", "unknown sheet")
    assert "did you mean 'demand'" in p.message


def test_scenario_value_out_of_range(sheets, write):
    sheets["scenario_changes"][0]["value"] = "-1"
    p = only(problems_of(write(sheets), "high_demand"))
    assert_located(p, "scenario_changes", 2, "value", "out of range")


def test_scenario_cannot_blank_a_required_value(sheets, write):
    sheets["scenario_changes"] = [{"scenario": "high_demand", "sheet": "facilities",
                                   "column": "capacity_t_per_yr", "op": "set", "value": ""}]
    p = only(problems_of(write(sheets), "high_demand"))
    assert_located(p, "scenario_changes", 2, "value", "required value is blank")


def test_scenario_append_missing_required_column(sheets, write):
    sheets["scenario_changes"] = [{"scenario": "high_demand", "sheet": "facilities",
                                   "op": "append", "value": "facility=new; country=USA"}]
    p = only(problems_of(write(sheets), "high_demand"))
    assert_located(p, "scenario_changes", 2, "value", "has no capacity_t_per_yr")


def test_scenario_appended_row_with_unknown_code(sheets, write):
    sheets["scenario_changes"] = [{"scenario": "high_demand", "sheet": "facilities",
                                   "op": "append",
                                   "value": "facility=new; country=CNH; capacity_t_per_yr=5"}]
    problems = problems_of(write(sheets), "high_demand")
    # An appended row has no Excel row; the message names the scenario instead.
    p = find(problems, "facilities", None, "country", "unknown country")
    assert "did you mean 'CHN'" in p.message
    assert "after applying scenario 'high_demand'" in p.message


def test_scenario_appends_a_row_naming_an_unknown_facility(sheets, write):
    sheets["scenario_changes"] = [{"scenario": "high_demand", "sheet": "calibration",
                                   "op": "append",
                                   "value": "facility=m9; observed_output_t_per_yr=5; "
                                            "below_observed_usd_per_t=-1; above_observed_usd_per_t=1"}]
    p = only(problems_of(write(sheets), "high_demand"))
    assert_located(p, "calibration", None, "facility", "unknown facility")
    assert "after applying scenario 'high_demand'" in p.message


def test_scenario_blank_required_setting(sheets, write):
    sheets["scenario_changes"] = [{"scenario": "high_demand", "sheet": "settings",
                                   "filter": "key=base_year", "op": "set", "value": ""}]
    p = only(problems_of(write(sheets), "high_demand"))
    assert_located(p, "scenario_changes", 2, "value", "required value is blank")


# --- all problems at once -----------------------------------------------------------

def test_three_problems_reported_at_once(sheets, write):
    sheets["facilities"][1]["capacity_t_per_yr"] = "lots"     # facilities row 3
    sheets["periods"][1]["duration_yr"] = 0                    # periods row 3
    sheets["demand"][0]["quantity_t_per_yr"] = -1              # demand row 2
    with pytest.raises(InputError) as exc:
        load_case(str(write(sheets)))
    problems = exc.value.problems
    assert len(problems) == 3
    find(problems, "facilities", 3, "capacity_t_per_yr", "not a number")
    find(problems, "periods", 3, "duration_yr", "out of range")
    find(problems, "demand", 2, "quantity_t_per_yr", "out of range")
    text = str(exc.value)
    assert text.startswith("3 problems in the input:")
    assert "sheet 'facilities', row 3" in text and "sheet 'periods', row 3" in text


def test_three_cross_sheet_problems_reported_at_once(sheets, write):
    sheets["facilities"][0]["country"] = "CNH"                 # unknown reference
    sheets["recipes"][3]["coefficient"] = 0                    # zero coefficient
    sheets["facilities"].append({"facility": "s1", "country": "CHN",
                                 "capacity_t_per_yr": 1})      # duplicate key
    problems = problems_of(write(sheets))
    assert len(problems) == 3, "\n".join(map(str, problems))
    find(problems, "facilities", 2, "country", "did you mean 'CHN'")
    find(problems, "recipes", 5, "coefficient", "zero coefficient")
    find(problems, "facilities", 4, "facility", "duplicate key")


# --- files that are not workbooks ---------------------------------------------------

def test_missing_file(tmp_path):
    p = only(problems_of(tmp_path / "nope.xlsx"))
    assert "file not found" in p.message


def test_not_a_workbook(tmp_path):
    path = tmp_path / "x.xlsx"
    path.write_text("not a workbook")
    p = only(problems_of(path))
    assert "cannot be read as an .xlsx workbook" in p.message


# --- command line -------------------------------------------------------------------

def test_cli_validate_returns_2(sheets, write, capsys):
    sheets["facilities"][1]["country"] = "CNH"
    assert main(["validate", str(write(sheets))]) == 2
    err = capsys.readouterr().err
    assert "sheet 'facilities', row 3, column 'country'" in err
    assert "did you mean 'CHN'" in err


def test_cli_validate_valid_case_returns_0(sheets, write, capsys):
    assert main(["validate", str(write(sheets))]) == 0
    assert "valid" in capsys.readouterr().out


def test_cli_run_returns_2_and_writes_nothing(sheets, write, tmp_path, capsys):
    sheets["periods"][1]["duration_yr"] = 0
    out = tmp_path / "out"
    assert main(["run", str(write(sheets)), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "sheet 'periods', row 3, column 'duration_yr'" in err
    assert "nothing was written" in err
    assert not out.exists() or not any(out.iterdir())


def test_cli_run_bad_scenario_returns_2(sheets, write, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(write(sheets)), "--scenario", "nope", "--out", str(out)]) == 2
    assert "sheet 'scenarios'" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_bad_cells_and_cross_sheet_problems_come_together(sheets, write):
    """A text-in-number cell does not hide an unknown country in another sheet."""
    sheets["facilities"][0]["capacity_t_per_yr"] = "lots"
    sheets["demand"][0]["country"] = "USX"
    found = problems_of(write(sheets))
    where = {(p.sheet, p.row, p.column) for p in found}
    assert ("facilities", 2, "capacity_t_per_yr") in where
    assert ("demand", 2, "country") in where
    assert len(found) == 2
