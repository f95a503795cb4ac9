"""The single source of truth for every sheet and column of a case workbook.

Validation (`model.case.validate`), the blank template (`model.case.template`) and the input
documentation (`inputs/README.md`, written by `model.case.template.write_docs`) all read
this module. Units live in column names; tonnes and real US dollars of the base year
unless a column says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Reference kinds a column may point to; `model.case.validate` resolves each to a code set.
COUNTRY = "country"
BLOC = "bloc"
COUNTRY_OR_BLOC = "country_or_bloc"
PRODUCT = "product"
GROUP = "group"
PRODUCT_OR_GROUP = "product_or_group"
PROCESS = "process"
FACILITY = "facility"
PERIOD = "period"
STOCKPILE = "stockpile"
SCENARIO = "scenario"
SHEET = "sheet"

STAGES = ("mining", "cracking", "separation", "reduction", "magnet", "recycling",
          "substitution", "other")
PRODUCT_STAGES = ("ore", "concentrate", "intermediate", "oxide", "metal", "alloy",
                  "magnet", "scrap", "input", "service")
UNITS = ("t_REO", "t_metal", "t_magnet", "t", "t_service")


@dataclass(frozen=True)
class Column:
    """One column of a sheet.

    dtype: str, float, int, bool or list (codes separated by commas or semicolons).
    ref: the kind of code the column (or each list item) must name; wildcard: `*` allowed.
    """

    name: str
    dtype: str
    description: str
    unit: str = ""
    required: bool = False
    default: Any = None
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    codes: tuple[str, ...] | None = None
    ref: str | None = None
    wildcard: bool = False

    def expected(self) -> str:
        """Plain words for what a cell of this column must hold."""
        kinds = {"str": "text", "float": "a number", "int": "a whole number",
                 "bool": "TRUE or FALSE", "list": "a list of codes separated by commas"}
        text = kinds[self.dtype]
        if self.codes:
            text = "one of " + ", ".join(self.codes)
        if self.ref:
            text += f" naming a {self.ref.replace('_or_', ' or ')}"
            if self.wildcard:
                text += " (or * for all)"
        lo = self.min
        if lo is not None and self.max is not None:
            text += f" between {lo:g} and {self.max:g}"
            if self.min_exclusive:
                text += f" (above {lo:g})"
        elif lo is not None:
            text += f" {'above' if self.min_exclusive else 'at least'} {lo:g}"
        elif self.max is not None:
            text += f" at most {self.max:g}"
        return text


@dataclass(frozen=True)
class Sheet:
    """One sheet: a table with a header row. `key` columns must be unique together."""

    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    required: bool = False
    has_source: bool = True

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


SOURCE = Column("source", "str", "Where the figures of this row come from; an assumed "
                "figure says 'assumption: ...' and why.", required=False, default="")


def _sheet(name: str, description: str, columns: list[Column], key: tuple[str, ...] = (),
           required: bool = False, has_source: bool = True) -> Sheet:
    cols = list(columns) + ([SOURCE] if has_source else [])
    return Sheet(name, description, tuple(cols), key, required, has_source)


# Settings are key/value rows; each key is described like a column.
SETTINGS: tuple[Column, ...] = (
    Column("base_year", "int", "Year money is discounted to; the first period should "
           "start in it.", unit="year", required=True, min=1900, max=2200),
    Column("currency", "str", "Currency of every money figure.", default="USD",
           codes=("USD",)),
    Column("price_year", "int", "Year of the real dollars used.", unit="year",
           default=None, min=1900, max=2200),
    Column("discount_rate", "float", "Real annual discount rate; a period's weight is the "
           "sum of the annual discount factors of the years it holds: (1 + r)^-(start_year - "
           "base_year) x (1 - v^duration_yr) / (1 - v), v = 1 / (1 + r).", unit="1/yr",
           default=0.0, min=0.0, max=1.0),
    Column("default_shortfall_penalty_usd_per_t", "float", "Penalty per tonne of unserved "
           "demand where a demand row leaves it blank.", unit="USD/t", default=1.0e6,
           min=0.0, min_exclusive=True),
    Column("default_disposal_cost_usd_per_t", "float", "Cost of disposing of (or storing) "
           "one tonne of surplus product where the products sheet leaves it blank.",
           unit="USD/t", default=0.0, min=0.0),
    Column("solver_time_limit_s", "float", "Wall-clock limit of one solve; a solve that "
           "stops at the limit is reported as not optimal and never as an answer.",
           unit="s", default=600.0, min=0.0, min_exclusive=True),
    Column("solver_threads", "int", "Threads HiGHS may use.", default=1, min=1, max=256),
    Column("solver_method", "str", "HiGHS algorithm.", default="choose",
           codes=("choose", "simplex", "ipm")),
    Column("canonical_plan", "bool", "Report the least-cost plan chosen by one rule (the "
           "smallest sum of squared activity levels among all least-cost plans, model.lp.canonical), "
           "so tables do not depend on the solver version, threads or row order. FALSE reports "
           "the vertex HiGHS returns (faster; ties then fall where the solver puts them).",
           default=True),
    Column("canonical_prices", "bool", "Report, where a price is not unique, the valid price "
           "set of smallest norm (model.lp.canonical) instead of the one HiGHS returns. Costs a "
           "second QP (about 10 s on the base case); prices proven unique are the same "
           "either way (column price_unique of the prices table).", default=False),
    Column("calibration_tolerance", "float", "Share around observed output the calibration "
           "run holds each observed facility within.", default=0.01, min=0.0, max=0.5,
           min_exclusive=True),
    Column("calibration_margin_usd_per_t", "float", "Margin added to calibration terms so "
           "the free solve strictly prefers observed output (ties broken).", unit="USD/t",
           default=1.0, min=0.0, min_exclusive=True),
    Column("price_tolerance_usd_per_t", "float", "Two prices closer than this are equal "
           "when prices are tagged.", unit="USD/t", default=1e-3, min=0.0),
    Column("risk_cvar_weight", "float", "Scenario trees: weight lambda of the conditional "
           "value at risk in the objective, (1 - lambda) x expected cost + lambda x CVaR; 0 is "
           "risk-neutral.", default=0.0, min=0.0, max=1.0),
    Column("risk_cvar_alpha", "float", "Scenario trees: CVaR level alpha, the mean of the worst "
           "(1 - alpha) of outcomes by probability (below 1).", default=0.9, min=0.0, max=0.999999),
    Column("risk_measure", "str", "Scenario trees: what the CVaR measures: total_cost (the "
           "objective of each branch) or penalty (its unserved-demand penalty value).",
           default="total_cost", codes=("total_cost", "penalty")),
)

SHEETS: tuple[Sheet, ...] = (
    Sheet("settings", "Key/value settings of the case.", (
        Column("key", "str", "Setting name (see the settings table below).",
               required=True, codes=tuple(s.name for s in SETTINGS)),
        Column("value", "str", "Setting value (blank takes the default)."),
        SOURCE,
    ), key=("key",), required=True),
    _sheet("periods", "Model periods in time order. Flows and balances are annual rates; "
           "a period's tonnes are rate x duration.", [
               Column("period", "str", "Period code.", required=True),
               Column("start_year", "float", "Start, as a (fractional) year; 2025.25 is "
                      "1 April 2025.", unit="year", required=True, min=1900, max=2300),
               Column("duration_yr", "float", "Length (0.25 a quarter, 1/12 a month).",
                      unit="yr", required=True, min=0.0, min_exclusive=True, max=100.0),
               Column("regime", "str", "normal, or crisis (stockpile targets may be "
                      "drawn down).", default="normal", codes=("normal", "crisis")),
           ], key=("period",), required=True),
    _sheet("countries", "Countries or regions; each may belong to blocs.", [
        Column("country", "str", "Country code.", required=True),
        Column("name", "str", "Full name.", default=""),
        Column("blocs", "list", "Blocs the country belongs to (codes of your choice, "
               "e.g. EU, MSP).", default=""),
    ], key=("country",), required=True),
    _sheet("products", "Products of the chain and their units.", [
        Column("product", "str", "Product code.", required=True),
        Column("stage", "str", "Stage of the chain.", required=True, codes=PRODUCT_STAGES),
        Column("element", "str", "Rare-earth element the product is (an oxide or metal of "
               "one element: Nd, Dy, NdPr...), 'mix' for concentrates and blends, blank for "
               "non-rare-earth inputs.", default=""),
        Column("unit", "str", "Unit of one tonne of the product.", required=True,
               codes=UNITS),
        Column("reference_price_usd_per_t", "float", "Observed market price (used for "
               "ad valorem duties, budgets and checks).", unit="USD/t", default=None,
               min=0.0),
        Column("disposal_cost_usd_per_t", "float", "Cost of disposing of or storing one "
               "tonne of surplus; blank takes the settings default.", unit="USD/t",
               default=None, min=0.0),
    ], key=("product",), required=True),
    _sheet("product_groups", "Group membership (e.g. HREE, magnets, april2025_list).", [
        Column("group", "str", "Group code.", required=True),
        Column("product", "str", "Member product.", required=True, ref=PRODUCT),
    ], key=("group", "product")),
    _sheet("processes", "Technologies; their inputs and outputs are in recipes.", [
        Column("process", "str", "Process code.", required=True),
        Column("stage", "str", "Stage of the chain.", required=True, codes=STAGES),
        Column("activity_unit", "str", "Unit of one unit of activity (usually a tonne of "
               "the main output or input).", default="t"),
        Column("description", "str", "What the process does.", default=""),
    ], key=("process",), required=True),
    _sheet("recipes", "One input (negative) or output (positive) of a process per unit "
           "of activity (a Leontief technology; co-products are further outputs).", [
               Column("process", "str", "Process.", required=True, ref=PROCESS),
               Column("product", "str", "Product consumed or made.", required=True,
                      ref=PRODUCT),
               Column("coefficient", "float", "Units of product per unit of activity: "
                      "+ output, - input.", unit="t/t activity", required=True),
           ], key=("process", "product"), required=True),
    _sheet("facilities", "Plants or capacity tranches.", [
        Column("facility", "str", "Facility code.", required=True),
        Column("country", "str", "Where it is.", required=True, ref=COUNTRY),
        Column("capacity_t_per_yr", "float", "Capacity in activity units per year, shared "
               "by all the processes it runs.", unit="t/yr", required=True, min=0.0),
        Column("first_year", "float", "First year it runs (periods starting before are "
               "without it).", unit="year", default=None, min=1900, max=2300),
        Column("last_year", "float", "Last year it runs (periods starting after are "
               "without it).", unit="year", default=None, min=1900, max=2300),
        Column("observed_output_t_per_yr", "float", "Observed output in the base year, "
               "for calibration and checks; never used as capacity.", unit="t/yr",
               default=None, min=0.0),
        Column("calibrated_as", "str", "An observed facility whose calibration terms this "
               "tranche shares: its output counts with that facility's against the observed "
               "output (a new tranche of the same industry runs on the same calibrated cost "
               "curve, not a cheaper one). Blank for none.", default="", ref=FACILITY),
    ], key=("facility",), required=True),
    _sheet("facility_processes", "Processes a facility can run, each with its cost; "
           "they share the facility's capacity.", [
               Column("facility", "str", "Facility.", required=True, ref=FACILITY),
               Column("process", "str", "Process.", required=True, ref=PROCESS),
               Column("unit_cost_usd_per_t", "float", "Running cost per unit of activity.",
                      unit="USD/t", required=True, min=0.0),
           ], key=("facility", "process"), required=True),
    _sheet("expansion", "Investable capacity options.", [
        Column("option", "str", "Option code.", required=True),
        Column("country", "str", "Where it may be built.", required=True, ref=COUNTRY),
        Column("process", "str", "Process the new capacity runs.", required=True,
               ref=PROCESS),
        Column("max_build_t_per_yr", "float", "Most capacity that may be built.",
               unit="t/yr", required=True, min=0.0),
        Column("capex_usd_per_t_per_yr", "float", "Capital cost per t/yr of capacity.",
               unit="USD/(t/yr)", required=True, min=0.0),
        Column("lifetime_yr", "float", "Economic lifetime.", unit="yr", required=True,
               min=0.0, min_exclusive=True),
        Column("fixed_om_usd_per_t_per_yr", "float", "Fixed O&M per t/yr per year.",
               unit="USD/(t/yr)/yr", default=0.0, min=0.0),
        Column("unit_cost_usd_per_t", "float", "Running cost per unit of activity.",
               unit="USD/t", default=0.0, min=0.0),
        Column("lead_time_yr", "float", "Years from decision to operation.", unit="yr",
               default=0.0, min=0.0),
        Column("earliest_year", "float", "First year a build may be decided (builds are "
               "decided in periods starting at or after it; blank: any period).",
               unit="year", default=None, min=1900, max=2300),
        Column("discount_rate", "float", "Rate of the capex annuity (a cost of capital); "
               "annual payment = capex x r / (1 - (1 + r)^-lifetime), capex / lifetime at "
               "r = 0; blank takes the settings discount_rate.", unit="1/yr", default=None,
               min=0.0, max=1.0),
    ], key=("option",)),
    _sheet("demand", "Demand blocks: a country's demand for a product by segment.", [
        Column("country", "str", "Consuming country.", required=True, ref=COUNTRY),
        Column("product", "str", "Product demanded.", required=True, ref=PRODUCT),
        Column("segment", "str", "Use segment (defence, ev, wind, catalysts ...).",
               default="all"),
        Column("period", "str", "Period.", required=True, ref=PERIOD),
        Column("quantity_t_per_yr", "float", "Demand rate.", unit="t/yr", required=True,
               min=0.0),
        Column("shortfall_penalty_usd_per_t", "float", "Cost of leaving a tonne unserved "
               "(the value of lost use); blank takes the settings default.",
               unit="USD/t", default=None, min=0.0, min_exclusive=True),
    ], key=("country", "product", "segment", "period"), required=True),
    _sheet("end_of_life", "Products in use return as scrap: served demand of a product (in a segment) "
           "returns after a lifetime, spread over the discrete lifetimes of its rows (their shares sum to 1 "
           "per product and segment); a share collection_rate of it is collected as scrap_product, "
           "scrap_yield_t_per_t t per t of product. Demand served at a rate s in a period [a, a+d) returns "
           "uniformly over [a+L, a+d+L); a later period receives the overlap's tonnes as a rate over its own "
           "length (exact for any period lengths).", [
        Column("product", "str", "Product put into use (a demanded product).", required=True, ref=PRODUCT),
        Column("segment", "str", "Use segment of the demand rows it applies to; * for every segment "
               "without a row of its own.", default="*"),
        Column("lifetime_yr", "float", "Years from being put into use to end of life.", unit="yr",
               required=True, min=0.0, min_exclusive=True, max=200.0),
        Column("share", "float", "Share of the product reaching end of life after lifetime_yr (the "
               "shares of a product and segment sum to 1).", required=True, min=0.0, max=1.0),
        Column("collection_rate", "float", "Share of end-of-life product collected for recycling "
               "(the same on every row of a product and segment).", required=True, min=0.0, max=1.0),
        Column("scrap_product", "str", "Scrap product collected (a product of stage scrap; the same on "
               "every row of a product and segment).", required=True, ref=PRODUCT),
        Column("scrap_yield_t_per_t", "float", "Tonnes of scrap per tonne of product collected (the same "
               "on every row of a product and segment).", unit="t/t", default=1.0, min=0.0,
               min_exclusive=True, max=10.0),
    ], key=("product", "segment", "lifetime_yr")),
    _sheet("scrap_supply", "Collected scrap arising from products put into use before the horizon "
           "(the installed stock), as a rate by country and period; in-horizon returns come from "
           "end_of_life. Unused scrap is disposed of at the product's disposal cost.", [
        Column("country", "str", "Where the scrap is collected.", required=True, ref=COUNTRY),
        Column("scrap_product", "str", "Scrap product (stage scrap).", required=True, ref=PRODUCT),
        Column("period", "str", "Period; * for every period without a row of its own.", required=True,
               ref=PERIOD, wildcard=True),
        Column("quantity_t_per_yr", "float", "Collected scrap available.", unit="t/yr", required=True,
               min=0.0),
    ], key=("country", "scrap_product", "period")),
    _sheet("transport", "Allowed lanes and their costs. A lane exists only where a row "
           "allows it; the most specific row (country over bloc over *) sets its cost.", [
               Column("from_country", "str", "Exporting country, bloc or *.",
                      required=True, ref=COUNTRY_OR_BLOC, wildcard=True),
               Column("to_country", "str", "Importing country, bloc or *.", required=True,
                      ref=COUNTRY_OR_BLOC, wildcard=True),
               Column("product", "str", "Product, group or *.", required=True,
                      ref=PRODUCT_OR_GROUP, wildcard=True),
               Column("cost_usd_per_t", "float", "Freight, insurance and handling per t.",
                      unit="USD/t", required=True, min=0.0),
               Column("max_flow_t_per_yr", "float", "Lane capacity; blank for none.",
                      unit="t/yr", default=None, min=0.0),
           ], key=("from_country", "to_country", "product")),
    _sheet("tariffs", "Import duties.", [
        Column("importer", "str", "Importing country, bloc or *.", required=True,
               ref=COUNTRY_OR_BLOC, wildcard=True),
        Column("exporter", "str", "Exporting country, bloc or *.", required=True,
               ref=COUNTRY_OR_BLOC, wildcard=True),
        Column("product", "str", "Product, group or *.", required=True,
               ref=PRODUCT_OR_GROUP, wildcard=True),
        Column("ad_valorem_pct", "float", "Duty as % of the reference price.", unit="%",
               default=0.0, min=0.0, max=1000.0),
        Column("specific_usd_per_t", "float", "Duty per tonne.", unit="USD/t",
               default=0.0, min=0.0),
        Column("periods", "list", "Periods it applies in; blank or * for all.",
               ref=PERIOD, wildcard=True, default="*"),
    ]),
    _sheet("export_controls", "Export controls: bans, quotas and licences.", [
        Column("control", "str", "Control name.", required=True),
        Column("exporter", "str", "Controlling country.", required=True, ref=COUNTRY),
        Column("product", "str", "Product or group controlled.", required=True,
               ref=PRODUCT_OR_GROUP),
        Column("destinations", "list", "Destinations (countries, blocs or *).",
               ref=COUNTRY_OR_BLOC, wildcard=True, default="*"),
        Column("exempt", "list", "Exempt destinations.", ref=COUNTRY_OR_BLOC, default=""),
        Column("periods", "list", "Periods it applies in; blank or * for all.",
               ref=PERIOD, wildcard=True, default="*"),
        Column("kind", "str", "ban, quota or licence.", required=True,
               codes=("ban", "quota", "licence")),
        Column("element", "str", "Element whose content a quota caps.", default=""),
        Column("quota_t_per_yr", "float", "Quota in t of element content per year.",
               unit="t/yr", default=None, min=0.0),
        Column("quota_share", "float", "Quota as a share of reference_flow_t_per_yr.",
               default=None, min=0.0, max=1.0),
        Column("reference_flow_t_per_yr", "float", "Sourced pre-control flow a share "
               "applies to.", unit="t/yr", default=None, min=0.0),
        Column("licence_approval_share", "float", "Share of the reference flow "
               "licensed.", default=None, min=0.0, max=1.0),
        Column("licence_cost_usd_per_t", "float", "Added cost per licensed t.",
               unit="USD/t", default=0.0, min=0.0),
        Column("extraterritorial", "bool", "Controls the downstream products made "
               "anywhere with controlled content (the 0.1 % rule).", default=False),
        Column("segments", "list", "End-use control (kind ban only): the demand segments "
               "denied, e.g. defence. Material of the exporter's origin (with "
               "extraterritorial, products containing it) may not serve these segments "
               "in the destinations; other segments still receive it and no flow is "
               "banned. Blank: the control acts on flows.", default=""),
    ], key=("control",)),
    _sheet("stockpiles", "Strategic reserves: buys and releases enter the holder's "
           "market; the level is tracked period by period (end-of-period level).", [
        Column("stockpile", "str", "Stockpile name.", required=True),
        Column("holder", "str", "Holding country (releases enter and buys leave its "
               "market).", required=True, ref=COUNTRY),
        Column("product", "str", "Product stored.", required=True, ref=PRODUCT),
        Column("initial_t", "float", "Level at the start.", unit="t", default=0.0,
               min=0.0),
        Column("capacity_t", "float", "Most it can hold; blank for no limit.", unit="t",
               default=None, min=0.0),
        Column("target_t", "float", "Minimum end-of-period level in normal periods "
               "(crisis periods may draw it down). Give this or target_days_of_cover, "
               "not both.", unit="t", default=None, min=0.0),
        Column("target_days_of_cover", "float", "Minimum level in normal periods as days "
               "of the holder's final demand: days/365 x sum over the holder's demand of "
               "quantity x content of the product's element / the product's own content "
               "(an NdPr oxide reserve counts magnet demand). A product without a single "
               "element counts the holder's demand for itself.", unit="days",
               default=None, min=0.0),
        Column("buy_max_t_per_yr", "float", "Most bought per year; blank for no limit.",
               unit="t/yr", default=None, min=0.0),
        Column("build_min_t_per_yr", "float", "Least net build per year (buys less "
               "releases) in build_min_periods, crisis periods included (unlike a target): a "
               "committed purchase programme, or a stock build observed in the data (e.g. "
               "concentrate a mine stored); blank for none.",
               unit="t/yr", default=None, min=0.0),
        Column("build_min_periods", "list", "Periods build_min_t_per_yr applies in; blank or "
               "* for all.", ref=PERIOD, wildcard=True, default="*"),
        Column("release_max_t_per_yr", "float", "Most released per year; blank for no "
               "limit.", unit="t/yr", default=None, min=0.0),
        Column("holding_cost_usd_per_t_yr", "float", "Storage cost per tonne held per "
               "year, charged on the end-of-period level for the whole period.",
               unit="USD/t/yr", default=0.0, min=0.0),
        Column("budget_usd", "float", "Purchase budget over the horizon: sum of "
               "duration x buys x the product's reference price (needs one); blank "
               "for none.", unit="USD", default=None, min=0.0),
        Column("terminal_rule", "str", "keep: final level at least the initial; free.",
               default="keep", codes=("keep", "free")),
        Column("controlling_country", "str", "Country whose metal and magnet capacity "
               "does not count in the usable-cover report (the one that may cut supply); "
               "blank counts every country.", default="", ref=COUNTRY),
    ], key=("stockpile",)),
    _sheet("price_floors", "Price guarantees; each mechanism acts on its own: cfd (a "
           "payment only), must_run (a production floor), offtake (a buyer takes the "
           "output into a stockpile), floor_duty (an import duty).", [
        Column("floor", "str", "Guarantee name.", required=True),
        Column("product", "str", "Product guaranteed.", required=True, ref=PRODUCT),
        Column("facilities", "list", "Covered facilities (needed by cfd, must_run and "
               "offtake; each must make the product).", ref=FACILITY, default=""),
        Column("floor_price_usd_per_t", "float", "Floor price.", unit="USD/t",
               required=True, min=0.0),
        Column("mechanism", "str", "cfd: payment = covered output x max(0, floor - index "
               "price); must_run: covered output >= quantity; offtake: the buyer takes "
               "min(quantity, covered capacity output) into offtake_stockpile at the floor; "
               "floor_duty: imports into index_zone from outside pay max(0, floor - "
               "reference price) per t.",
               required=True, codes=("cfd", "must_run", "offtake", "floor_duty")),
        Column("quantity_t_per_yr", "float", "Covered quantity (needed by must_run and "
               "offtake).", unit="t/yr", default=None, min=0.0),
        Column("index_zone", "str", "Country or bloc whose model price is the index (a "
               "bloc: its members' prices weighted by their demand); for floor_duty, the "
               "zone imports into. Needed by cfd and floor_duty.",
               default="", ref=COUNTRY_OR_BLOC),
        Column("offtake_stockpile", "str", "Stockpile an offtake fills (same product).",
               default="", ref=STOCKPILE),
        Column("periods", "list", "Periods it applies in; blank or * for all.",
               ref=PERIOD, wildcard=True, default="*"),
    ], key=("floor",)),
    _sheet("supply_caps", "Production quotas and diversification caps; a row sets "
           "cap_t_per_yr (a quota) or max_share (a share cap), not both.", [
        Column("cap", "str", "Cap name.", required=True),
        Column("country", "str", "Quota: the country, bloc or * whose production is "
               "capped (jointly). Share cap: the supplier capped (a bloc: each member "
               "separately; *: every supplier).", required=True,
               ref=COUNTRY_OR_BLOC, wildcard=True),
        Column("stage", "str", "Quota: the process stage capped (the processes sheet's "
               "stage); blank to cap a product's output of every stage.", default="",
               codes=STAGES + ("",)),
        Column("product", "str", "Quota: the product (or group) whose output is capped "
               "(activity x output coefficient). Share cap: the product (or group, "
               "summed) whose use is protected.", default="", ref=PRODUCT_OR_GROUP),
        Column("cap_t_per_yr", "float", "Quota on production: activity for a stage, "
               "output for a product.", unit="t/yr", default=None, min=0.0),
        Column("max_share", "float", "Most one supplier may give of the bloc's use "
               "(production in the bloc + imports from outside - exports to outside); "
               "0.65 for the EU Critical Raw Materials Act.", default=None, min=0.0,
               max=1.0),
        Column("bloc", "str", "Share cap: the bloc (or country) whose use is protected.",
               default="", ref=COUNTRY_OR_BLOC),
        Column("periods", "list", "Periods it applies in; blank or * for all.",
               ref=PERIOD, wildcard=True, default="*"),
    ], key=("cap",)),
    _sheet("benchmarks", "Minimum shares of a bloc's annual consumption made inside the "
           "bloc at one stage (the EU Critical Raw Materials Act's 10 % extraction, 40 % "
           "processing, 25 % recycling), in tonnes of rare-earth content: the stage's output "
           "in the bloc's members >= min_share x the members' final demand, each period from "
           "from_period on.", [
        Column("benchmark", "str", "Benchmark name.", required=True),
        Column("bloc", "str", "The bloc (or country) whose own output and consumption are "
               "compared.", required=True, ref=COUNTRY_OR_BLOC),
        Column("stage", "str", "Process stage whose output counts (the processes sheet's "
               "stage): the content of what the stage's processes make, less products other "
               "processes of the same stage take in (separation counts oxides, not the "
               "intermediate heavy concentrate).", required=True, codes=STAGES),
        Column("min_share", "float", "Least output as a share of consumption (0.10 for "
               "10 %).", required=True, min=0.0, max=1.0),
        Column("from_period", "str", "First period it applies in; blank: every period.",
               ref=PERIOD, default=""),
        Column("element", "str", "Count only this element's content (e.g. Dy); blank: "
               "every element's content (t REO).", default=""),
        Column("gap_penalty_usd_per_t", "float", "Cost of each tonne per year the "
               "benchmark is missed by (a penalty, never part of the resource cost); blank: "
               "the benchmark must be met (infeasible if it cannot).", unit="USD/t",
               default=None, min=0.0, min_exclusive=True),
    ], key=("benchmark",)),
    _sheet("calibration", "Calibration terms per facility, derived by `python run.py calibrate` "
           "(positive mathematical programming in LP form, DESIGN section 4): the first "
           "period is solved with each observed facility's output held within a tolerance of "
           "its observed output; the duals of those rows become a cost adjustment below and "
           "above the observed output, so the free solve reproduces observed outputs.", [
               Column("facility", "str", "Facility.", required=True, ref=FACILITY),
               Column("observed_output_t_per_yr", "float", "Observed output the terms are "
                      "anchored to (activity units per year).", unit="t/yr", required=True,
                      min=0.0),
               Column("below_observed_usd_per_t", "float", "Added running cost of activity up "
                      "to the observed output (negative where the model found the facility "
                      "too dear).", unit="USD/t", required=True),
               Column("above_observed_usd_per_t", "float", "Added running cost of activity "
                      "above the observed output (positive where the model found the facility "
                      "too cheap).", unit="USD/t", required=True),
           ], key=("facility",)),
    _sheet("scenarios", "Named scenarios: data changes on top of a parent.", [
        Column("scenario", "str", "Scenario name.", required=True),
        Column("parent", "str", "Scenario it builds on (blank: the base case).",
               default="", ref=SCENARIO),
        Column("description", "str", "What it represents.", default=""),
        Column("expected_effects", "str", "What it should do to costs and shortfalls.",
               default=""),
    ], key=("scenario",)),
    _sheet("scenario_changes", "One data change of a scenario.", [
        Column("scenario", "str", "Scenario.", required=True, ref=SCENARIO),
        Column("sheet", "str", "Sheet changed.", required=True, ref=SHEET),
        Column("filter", "str", "Rows changed: col=value; col=value, or * for all rows.",
               default="*"),
        Column("column", "str", "Column changed (blank for drop and append).",
               default=""),
        Column("op", "str", "set, scale, add, drop (rows), append (a row) or split (on the "
               "periods sheet: one period into consecutive sub-periods of equal length; rows "
               "given by period are copied to each).",
               required=True, codes=("set", "scale", "add", "drop", "append", "split")),
        Column("value", "str", "New value, factor or increment; for append, the new "
               "row as col=value; col=value; for split, the new period codes in order "
               "(2025-04, 2025-05, 2025-06).", default=""),
    ]),
    _sheet("branches", "Scenario trees: what may happen, with what probability, and when it "
           "becomes known. A plan run on a tree (run --tree NAME) takes every decision before a "
           "branch is revealed once for all the branches below it, and minimises expected cost.", [
        Column("tree", "str", "Tree name (a workbook may hold several).", required=True),
        Column("branch", "str", "Branch name, unique within its tree.", required=True),
        Column("parent", "str", "Branch it follows (blank: a first branch, after the "
               "here-and-now periods).", default=""),
        Column("probability", "float", "Probability given its parent (siblings sum to 1).",
               required=True, min=0.0, max=1.0, min_exclusive=True),
        Column("reveal_period", "str", "First period in which the branch is known; decisions of "
               "earlier periods are shared with its siblings. Siblings share it; it comes after "
               "the parent's.", required=True, ref=PERIOD),
        Column("scenario", "str", "Scenario whose data hold in the branch (its changes may "
               "touch only periods from reveal_period on); blank: the data of the branch it follows.",
               default="", ref=SCENARIO),
        Column("description", "str", "What the branch represents.", default=""),
        Column("base_scenario", "str", "Scenario the whole tree starts from (the data of the "
               "here-and-now periods, e.g. the reserves it may build); blank on every row of the tree "
               "or the same on each: blank is the base case.", default="", ref=SCENARIO),
    ], key=("tree", "branch")),
)

SHEETS_BY_NAME: dict[str, Sheet] = {s.name: s for s in SHEETS}
SETTINGS_BY_NAME: dict[str, Column] = {s.name: s for s in SETTINGS}


@dataclass
class Problem:
    """One thing wrong with an input, located as precisely as known."""

    file: str
    sheet: str = ""
    row: int | None = None
    column: str = ""
    value: Any = None
    expected: str = ""
    message: str = ""

    def __str__(self) -> str:
        where = [self.file]
        if self.sheet:
            where.append(f"sheet '{self.sheet}'")
        if self.row is not None and self.row == self.row:  # NaN: a row a scenario appended
            where.append(f"row {int(self.row)}")
        if self.column:
            where.append(f"column '{self.column}'")
        text = ", ".join(where) + ": "
        text += self.message or "bad value"
        if self.value is not None and self.value != "" and self.value == self.value:
            text += f"; found {self.value!r}"
        if self.expected:
            text += f"; expected {self.expected}"
        return text


@dataclass
class InputError(Exception):
    """Raised with every problem of an input at once."""

    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        # A cell found wrong by two checks is said once (same place, value and words).
        unique: list[Problem] = []
        for p in self.problems:
            if p not in unique:
                unique.append(p)
        self.problems = unique

    def __str__(self) -> str:
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in the input:"
        return "\n".join([head] + [f"  - {p}" for p in self.problems])
