"""Model data: the validated case turned into the sparse index tables the LP needs.

Everything here is computed in bulk from the tables (no model objects): period weights,
the active (facility, process, period) triples, lanes expanded from wildcard rows and
pruned to those that can carry something, demand blocks with their penalties, and the
content coefficients (tonnes of each element in one tonne of every product).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from model.case.codes import expand
from model.case.derived import active_pairs, content_coefficients
from model.case.schema import InputError, Problem
from model.case.workbook import ROW, Case
from model.lp.origin import Origin, class_lanes, denied_demand, derive_origin, split_modes

RETURN_COLS = ["demand_row", "country", "scrap_product", "period", "returned_per_served", "collected_per_served"]
SUPPLY_COLS = ["country", "scrap_product", "period", "legacy_t_per_yr"]


@dataclass
class ModelData:
    """Validated, derived tables the modules build the model from."""

    case_name: str
    settings: dict[str, Any]
    periods: pd.DataFrame          # index period: start_year, duration_yr, regime, discount_factor, weight
    countries: pd.DataFrame        # index country: name, blocs
    blocs: dict[str, list[str]]    # bloc -> member countries
    products: pd.DataFrame         # index product: stage, element, unit, prices, disposal_cost_usd_per_t
    groups: dict[str, list[str]]   # group -> member products
    recipes: pd.DataFrame          # process, product, coefficient
    activities: pd.DataFrame       # facility, process, country, period, mode, unit_cost_usd_per_t, capacity_t_per_yr
    facilities: pd.DataFrame       # index facility: country, capacity_t_per_yr, first_year, last_year
    lanes: pd.DataFrame            # from_country, to_country, product, cls, cost_usd_per_t, max_flow_t_per_yr
    demand: pd.DataFrame           # country, product, segment, period, quantity_t_per_yr, shortfall_penalty_usd_per_t,
                                   # denied_by (end-use control or ''), node_product (pool or class node it draws from)
    content: pd.DataFrame          # index product, columns element: t element (as REO) per t product
    origin: Origin = field(default_factory=Origin)  # export controls and origin classes
    # in-horizon scrap returns per demand row: demand_row, country, scrap_product, period,
    # returned_per_served (t/yr of end-of-life scrap per t/yr served), collected_per_served
    scrap_returns: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=RETURN_COLS))
    # collected legacy scrap: country, scrap_product, period, legacy_t_per_yr
    scrap_supply: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SUPPLY_COLS))
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def period_list(self) -> list[str]:
        return list(self.periods.index)


def period_table(periods: pd.DataFrame, base_year: float, rate: float) -> pd.DataFrame:
    """Periods with the discount factor at their start, (1+r)^-(start-base), and their
    weight: the discounted years they hold, w_t = factor x (1 - v^d) / (1 - v) with
    v = 1/(1+r) (the sum of the d annual factors for whole years; d when r = 0).
    DESIGN's w_t = d x factor discounts every year of a long period at its first year,
    which over-weights a 5-year period by up to 10 % at 5 %; this is the exact sum.
    `pv_factor` = w_t / d_t turns an undiscounted period cost into present value."""
    per = periods.set_index("period")[["start_year", "duration_yr", "regime"]].copy()
    per["discount_factor"] = (1.0 + rate) ** -(per["start_year"] - base_year)
    d = per["duration_yr"]
    if rate > 0:
        v = 1.0 / (1.0 + rate)
        per["weight"] = per["discount_factor"] * (1.0 - v ** d) / (1.0 - v)
    else:
        per["weight"] = d * per["discount_factor"]
    per["pv_factor"] = per["weight"] / d
    return per


def _specificity(code: str, members: dict[str, list[str]]) -> int:
    return 0 if code == "*" else (1 if code in members else 2)


def _code_map(codes: pd.Series, members: dict[str, list[str]], everything: list[str],
              column: str) -> pd.DataFrame:
    """(code, member, specificity) for every code used: * -> all (0), group/bloc -> its
    members (1), a plain code -> itself (2)."""
    rows = []
    for code in codes.unique():
        spec = _specificity(code, members)
        rows += [(code, m, spec) for m in expand(code, members, everything)]
    return pd.DataFrame(rows, columns=[f"_{column}", column, f"_s_{column}"])


def expand_lanes(transport: pd.DataFrame, countries: list[str], blocs: dict[str, list[str]],
                 products: list[str], groups: dict[str, list[str]], file: str) -> pd.DataFrame:
    """Explicit (from, to, product) lanes; the most specific row wins; ties must agree.
    Specificity: a country or product 2, a bloc or group 1, * 0; product counts double."""
    cols = ["from_country", "to_country", "product", "cost_usd_per_t", "max_flow_t_per_yr"]
    if transport.empty:
        return pd.DataFrame(columns=cols)
    rows = transport[cols + [ROW]].rename(columns={c: f"_{c}" for c in cols[:3]})
    lanes = (rows.merge(_code_map(transport["from_country"], blocs, countries, "from_country"), on="_from_country")
             .merge(_code_map(transport["to_country"], blocs, countries, "to_country"), on="_to_country")
             .merge(_code_map(transport["product"], groups, products, "product"), on="_product"))
    lanes = lanes[lanes["from_country"] != lanes["to_country"]]
    lanes["score"] = lanes["_s_from_country"] + lanes["_s_to_country"] + 2 * lanes["_s_product"]
    key = cols[:3]
    top = lanes[lanes["score"] == lanes.groupby(key, sort=False)["score"].transform("max")]
    # Two rows equally specific for one lane must not disagree.
    distinct = top.assign(_cap=top["max_flow_t_per_yr"].fillna(-1.0)).drop_duplicates(
        key + ["cost_usd_per_t", "_cap"])
    clash = distinct[distinct.duplicated(key, keep=False)]
    if not clash.empty:
        problems = []
        for lane, g in list(clash.groupby(key, sort=False))[:20]:
            rows = sorted(set(top.merge(g[key].head(1), on=key)[ROW]))
            problems.append(Problem(file, "transport", int(rows[-1]), "cost_usd_per_t", None,
                                    "one most specific row per lane",
                                    f"rows {', '.join(map(str, rows))} are equally specific for lane "
                                    f"{lane[0]} -> {lane[1]} ({lane[2]}) and disagree"))
        raise InputError(problems)
    best = top.sort_values(ROW, kind="stable").drop_duplicates(key)
    return best[cols].sort_values(key).reset_index(drop=True)


def prune_lanes(lanes: pd.DataFrame, sources: set[tuple[str, str]], sinks: set[tuple[str, str]]) -> pd.DataFrame:
    """Keep lanes on some path from a node that can supply a product to one that uses it."""
    if lanes.empty:
        return lanes
    out_by: dict[tuple[str, str], list[tuple[str, str]]] = {}
    in_by: dict[tuple[str, str], list[tuple[str, str]]] = {}
    frm, to, prod = (lanes[c].tolist() for c in ("from_country", "to_country", "product"))
    for f, t, p in zip(frm, to, prod):
        out_by.setdefault((f, p), []).append((t, p))
        in_by.setdefault((t, p), []).append((f, p))

    def closure(start: set, step: dict) -> set:
        seen, stack = set(start), list(start)
        while stack:
            for nxt in step.get(stack.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return seen

    reach = closure(sources, out_by)
    useful = closure(sinks, in_by)
    keep = [((f, p) in reach) and ((t, p) in useful) for f, t, p in zip(frm, to, prod)]
    return lanes[np.array(keep, dtype=bool)].reset_index(drop=True)


def build_model_data(case: Case, classes: tuple[dict, set] | None = None) -> ModelData:
    """Turn a validated case into model data. classes: (product -> controlling country,
    extraterritorial products) that must carry origin classes whatever this case's own
    controls say: every branch of a scenario tree shares one class structure, so their
    models line up period by period (model.lp.stochastic)."""
    t = case.tables
    s = case.settings
    file = case.path.split("/")[-1]
    periods = period_table(t["periods"], s["base_year"], s["discount_rate"])
    countries = t["countries"].set_index("country")[["name", "blocs"]]
    blocs: dict[str, list[str]] = {}
    for c, text in countries["blocs"].items():
        for b in (text or "").split(","):
            if b:
                blocs.setdefault(b, []).append(c)
    products = t["products"].set_index("product").drop(columns=[ROW, "source"])
    products["disposal_cost_usd_per_t"] = products["disposal_cost_usd_per_t"].fillna(
        s["default_disposal_cost_usd_per_t"]).astype(float)
    groups = {g: list(d["product"]) for g, d in t["product_groups"].groupby("group")}
    recipes = t["recipes"][["process", "product", "coefficient"]].copy()
    facilities = facility_table(t)

    active = active_pairs(facilities, periods)
    fp = t["facility_processes"][["facility", "process", "unit_cost_usd_per_t"]]
    activities = fp.merge(active, on="facility").merge(
        facilities[["country", "capacity_t_per_yr"]], left_on="facility", right_index=True)
    # reset: with no facility running, the right-index merge leaves a 'facility' index too
    activities = activities.reset_index(drop=True).sort_values(["facility", "process", "period"], key=_period_key(periods)).reset_index(drop=True)
    plist = list(products.index)
    origin = _origin(t, list(countries.index), blocs, plist, groups, list(periods.index), recipes, file)
    if classes is not None:
        merge_classes(origin, classes, file)
    activities = split_modes(activities, recipes, origin)

    demand = t["demand"].drop(columns=["source"]).copy()
    demand["shortfall_penalty_usd_per_t"] = demand["shortfall_penalty_usd_per_t"].fillna(
        s["default_shortfall_penalty_usd_per_t"]).astype(float)
    demand = denied_demand(demand[demand["quantity_t_per_yr"] > 0].reset_index(drop=True), origin)

    returns = scrap_returns(demand, periods, t["end_of_life"])
    legacy = scrap_supply_table(t["scrap_supply"], list(periods.index))
    lanes = expand_lanes(t["transport"], list(countries.index), blocs, plist, groups, file)
    sources, sinks = lane_ends(activities, t["expansion"], t["stockpiles"], recipes, demand)
    sources |= set(zip(returns["country"], returns["scrap_product"])) | set(
        zip(legacy["country"], legacy["scrap_product"]))  # scrap arises there
    lanes = class_lanes(prune_lanes(lanes, sources, sinks), origin)

    return ModelData(
        case_name=case.name, settings=s, periods=periods, countries=countries, blocs=blocs,
        products=products, groups=groups, recipes=recipes, activities=activities,
        facilities=facilities, lanes=lanes, demand=demand,
        content=content_coefficients(products, recipes), origin=origin, scrap_returns=returns,
        scrap_supply=legacy, tables=t)


def facility_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """ModelData.facilities: the facilities sheet by facility, without row numbers and sources."""
    return tables["facilities"].set_index("facility").drop(columns=[ROW, "source"])


def _positive(capacity: pd.Series) -> np.ndarray:
    """Which capacities are positive, as active_pairs reads them (blank is not)."""
    return (pd.to_numeric(capacity).astype(float) > 0).to_numpy()


def with_capacities(data: ModelData, case: Case) -> ModelData | None:
    """build_model_data(case) for a case that differs from the one `data` was built from
    only in facilities' capacities, made from `data`: the tables a capacity does not
    touch are kept (rebuilding them was 30 ms of every relaxed capacity the teaching
    case's explanations re-solve). None when a capacity became or stopped being positive
    (the facility's active periods change: build it)."""
    facilities = facility_table(case.tables)
    new = facilities["capacity_t_per_yr"]
    if not facilities.index.equals(data.facilities.index) or not np.array_equal(
            _positive(new), _positive(data.facilities["capacity_t_per_yr"])):
        return None
    activities = data.activities.assign(capacity_t_per_yr=data.activities["facility"].map(new))
    return replace(data, facilities=facilities, activities=activities, tables=case.tables)


def overlap_yr(a0: np.ndarray, a1: np.ndarray, b0: np.ndarray, b1: np.ndarray) -> np.ndarray:
    """Length of [a0, a1) intersected with [b0, b1), elementwise (0 if apart)."""
    return np.clip(np.minimum(a1, b1) - np.maximum(a0, b0), 0.0, None)


def scrap_returns(demand: pd.DataFrame, periods: pd.DataFrame, eol: pd.DataFrame) -> pd.DataFrame:
    """Per demand row and later period, the end-of-life scrap rate per t/yr served.

    Served at rate s through [a, a+d), a share w of the product ends its life L years on,
    uniformly through [a+L, a+d+L); period t = [b, b+e) receives s x w x overlap / e t/yr,
    times the scrap yield (returned) and the collection rate (collected). A segment's own
    rows take precedence over the product's * rows."""
    if eol.empty or demand.empty:
        return pd.DataFrame(columns=RETURN_COLS)
    rows = eol[["product", "segment", "lifetime_yr", "share", "collection_rate", "scrap_product",
                "scrap_yield_t_per_t"]]
    dem = demand[["country", "product", "segment", "period"]].reset_index(names="demand_row")
    own = dem.merge(rows[rows["segment"] != "*"], on=["product", "segment"])  # * rows: `star` below
    has_own = set(zip(rows.loc[rows["segment"] != "*", "product"], rows.loc[rows["segment"] != "*", "segment"]))
    rest = dem[[(p, g) not in has_own for p, g in zip(dem["product"], dem["segment"])]]
    star = rest.merge(rows[rows["segment"] == "*"].drop(columns="segment"), on="product")
    j = pd.concat([own, star], ignore_index=True)
    if j.empty:
        return pd.DataFrame(columns=RETURN_COLS)
    per = periods[["start_year", "duration_yr"]]
    a = j["period"].map(per["start_year"]).to_numpy(float) + j["lifetime_yr"].to_numpy(float)
    d = j["period"].map(per["duration_yr"]).to_numpy(float)
    parts = []
    for t, (b, e) in per.iterrows():
        frac = j["share"].to_numpy(float) * overlap_yr(a, a + d, b, b + e) / e
        hit = frac > 0
        if hit.any():
            part = j.loc[hit, ["demand_row", "country", "scrap_product"]].assign(period=t)
            part["returned_per_served"] = frac[hit] * j.loc[hit, "scrap_yield_t_per_t"].to_numpy(float)
            part["collected_per_served"] = part["returned_per_served"] * j.loc[hit, "collection_rate"].to_numpy(float)
            parts.append(part)
    if not parts:
        return pd.DataFrame(columns=RETURN_COLS)
    out = pd.concat(parts, ignore_index=True)
    return out.groupby(RETURN_COLS[:4], sort=False, as_index=False)[RETURN_COLS[4:]].sum()


def scrap_supply_table(sheet: pd.DataFrame, periods: list[str]) -> pd.DataFrame:
    """Legacy scrap by country, scrap product and period: a * row fills the periods that
    have no row of their own."""
    if sheet.empty:
        return pd.DataFrame(columns=SUPPLY_COLS)
    own = sheet[sheet["period"] != "*"]
    star = sheet[sheet["period"] == "*"]
    have = set(zip(own["country"], own["scrap_product"], own["period"]))
    filled = [(c, p, t, q) for c, p, q in zip(star["country"], star["scrap_product"], star["quantity_t_per_yr"])
              for t in periods if (c, p, t) not in have]
    out = pd.DataFrame(list(zip(own["country"], own["scrap_product"], own["period"], own["quantity_t_per_yr"]))
                       + filled, columns=SUPPLY_COLS)
    order = {t: i for i, t in enumerate(periods)}
    out = out.assign(_o=out["period"].map(order)).sort_values(["country", "scrap_product", "_o"])
    return out[out["legacy_t_per_yr"] > 0].drop(columns="_o").reset_index(drop=True)


def _origin(t: dict, countries: list[str], blocs: dict, plist: list[str], groups: dict, periods: list[str],
            recipes: pd.DataFrame, file: str) -> Origin:
    return derive_origin(t["export_controls"], countries, blocs, plist, groups, periods, recipes, file,
                         t["supply_caps"], t["tariffs"])


def case_classes(case: Case) -> tuple[dict, set]:
    """(product -> controlling country, extraterritorial products): the origin classes a
    case's controls need, without the rest of its model data."""
    t = case.tables
    blocs: dict[str, list[str]] = {}
    for c, text in zip(t["countries"]["country"], t["countries"]["blocs"]):
        for b in (text or "").split(","):
            if b:
                blocs.setdefault(b, []).append(c)
    groups = {g: list(d["product"]) for g, d in t["product_groups"].groupby("group")}
    periods = period_table(t["periods"], case.settings["base_year"], case.settings["discount_rate"])
    o = _origin(t, list(t["countries"]["country"]), blocs, list(t["products"]["product"]), groups,
                list(periods.index), t["recipes"][["process", "product", "coefficient"]], case.path.split("/")[-1])
    return o.controller, o.modal


def merge_classes(origin: Origin, classes: tuple[dict, set], file: str) -> None:
    """Add origin classes another case needs (InputError when two countries' origins
    would meet on one product)."""
    controller, modal = classes
    bad = [p for p, x in controller.items() if origin.controller.get(p, x) != x]
    if bad:
        raise InputError([Problem(file, "export_controls", None, "exporter", origin.controller[p],
                                  f"the same controlling country as the tree's other branches on {p} ({controller[p]})",
                                  "two countries' origins on one product would need more than two origin classes")
                          for p in bad])
    for p, x in controller.items():
        origin.controller.setdefault(p, x)
    origin.modal |= set(modal)


def lane_ends(activities: pd.DataFrame, expansion: pd.DataFrame, stockpiles: pd.DataFrame,
              recipes: pd.DataFrame, demand: pd.DataFrame) -> tuple[set, set]:
    """(country, product) pairs that can supply a lane and that can use one: recipe
    outputs and inputs of existing facilities and of expansion options, demand, and
    stockpile holders (a reserve can both release and buy)."""
    units = pd.concat([activities[["process", "country"]], expansion[["process", "country"]]]).drop_duplicates()
    made = units.merge(recipes, on="process")
    out, use = made[made["coefficient"] > 0], made[made["coefficient"] < 0]
    held = set(zip(stockpiles["holder"], stockpiles["product"]))
    sources = set(zip(out["country"], out["product"])) | held
    sinks = set(zip(use["country"], use["product"])) | set(zip(demand["country"], demand["product"])) | held
    return sources, sinks


def _period_key(periods: pd.DataFrame):
    order = {p: i for i, p in enumerate(periods.index)}

    def key(col: pd.Series) -> pd.Series:
        return col.map(order) if col.name == "period" else col
    return key
