"""Cross-sheet checks of a typed case: keys, references, recipes, periods.

Every problem is collected and raised at once as an `InputError`.
"""

from __future__ import annotations

import pandas as pd

from model.case import schema as S
from model.case.codes import expand, periods_in, split_codes
from model.case.derived import NO_ELEMENT, active_pairs, build_schedule, content_coefficients, downstream_closure
from model.case.schema import SHEETS, InputError, Problem
from model.case.tree import check_branches
from model.case.workbook import ROW, Case, did_you_mean


def code_sets(tables: dict[str, pd.DataFrame]) -> dict[str, set[str]]:
    """The codes each reference kind may name, from the case's own tables."""
    countries = set(tables["countries"]["country"].dropna())
    blocs: set[str] = set()
    for text in tables["countries"]["blocs"].dropna():
        blocs.update(b for b in str(text).split(",") if b)
    products = set(tables["products"]["product"].dropna())
    groups = set(tables["product_groups"]["group"].dropna())
    return {
        S.COUNTRY: countries,
        S.BLOC: blocs,
        S.COUNTRY_OR_BLOC: countries | blocs,
        S.PRODUCT: products,
        S.GROUP: groups,
        S.PRODUCT_OR_GROUP: products | groups,
        S.PROCESS: set(tables["processes"]["process"].dropna()),
        S.FACILITY: set(tables["facilities"]["facility"].dropna()),
        S.PERIOD: set(tables["periods"]["period"].dropna()),
        S.STOCKPILE: set(tables["stockpiles"]["stockpile"].dropna()),
        S.SCENARIO: set(tables["scenarios"]["scenario"].dropna()),
        S.SHEET: {s.name for s in SHEETS},
    }


def _row(value) -> int | None:
    """The Excel row of a record; None for a row a scenario appended (it has no cell)."""
    return None if value is None or pd.isna(value) else int(value)


def _check_keys(file: str, sheet: S.Sheet, df: pd.DataFrame, out: list[Problem]) -> None:
    if not sheet.key or df.empty:
        return
    dup = df[df.duplicated(list(sheet.key), keep="first")]
    if dup.empty:
        return
    first = df.drop_duplicates(list(sheet.key), keep="first").set_index(list(sheet.key))[ROW]
    for rec in dup.to_dict("records"):
        key = tuple(rec[k] for k in sheet.key)
        k = key if len(key) > 1 else key[0]
        out.append(Problem(file, sheet.name, rec[ROW], ", ".join(sheet.key),
                           "; ".join(map(str, key)), "a key used once",
                           f"duplicate key (first used in row {first.loc[k]})"))


def _check_refs(file: str, sheet: S.Sheet, df: pd.DataFrame, codes: dict[str, set[str]],
                out: list[Problem]) -> None:
    for col in sheet.columns:
        if not col.ref or df.empty:
            continue
        allowed = codes[col.ref]
        for value, row in zip(df[col.name], df[ROW]):
            if value is None or value == "" or value != value:  # blank (NaN): reported where it was read
                continue
            items = str(value).split(",") if col.dtype == "list" else [value]
            for item in items:
                if item == "*" and col.wildcard:
                    continue
                if item not in allowed:
                    what = col.ref.replace("_or_", " or ")
                    out.append(Problem(file, sheet.name, _row(row), col.name, item,
                                       f"a known {what}" + (" or *" if col.wildcard else ""),
                                       f"unknown {what}" + did_you_mean(item, allowed)))


def _check_recipes(file: str, t: dict[str, pd.DataFrame], out: list[Problem]) -> None:
    rec = t["recipes"]
    for r in rec[rec["coefficient"] == 0].to_dict("records"):
        out.append(Problem(file, "recipes", r[ROW], "coefficient", 0,
                           "a non-zero number (+ output, - input)", "zero coefficient"))
    has_output = set(rec.loc[rec["coefficient"] > 0, "process"])
    has_rows = set(rec["process"])
    for p in t["processes"].to_dict("records"):
        if p["process"] not in has_rows:
            out.append(Problem(file, "processes", p[ROW], "process", p["process"],
                               "rows in the recipes sheet", "process has no recipe"))
        elif p["process"] not in has_output:
            first = rec.loc[rec["process"] == p["process"], ROW].iloc[0]
            out.append(Problem(file, "recipes", _row(first), "coefficient", p["process"],
                               "at least one output (a positive coefficient)",
                               "process has no output"))


def _check_periods(file: str, t: dict[str, pd.DataFrame], settings: dict,
                   rows: dict[str, int], out: list[Problem]) -> None:
    per = t["periods"]
    if per.empty:
        out.append(Problem(file, "periods", None, message="no periods",
                           expected="at least one period"))
        return
    prev = None
    for r in per.to_dict("records"):
        if prev is not None and r["start_year"] < prev["start_year"] + prev["duration_yr"] - 1e-9:
            if r["start_year"] <= prev["start_year"]:  # rows are read in time order
                msg = f"starts with period '{prev['period']}' (periods may not overlap)"
            else:
                msg = f"overlaps period '{prev['period']}' (which ends at {prev['start_year'] + prev['duration_yr']:g})"
            out.append(Problem(file, "periods", r[ROW], "start_year", r["start_year"],
                               "a start at or after the previous period's end", msg))
        prev = r
    base = settings.get("base_year")
    first = per["start_year"].iloc[0]
    if base is not None and first < base:
        out.append(Problem(file, "settings", rows.get("base_year"), "value", base,
                           f"a year at or before the first period's start ({first:g})",
                           "base_year is after the first period starts"))


def _check_facilities(file: str, t: dict[str, pd.DataFrame], out: list[Problem]) -> None:
    fac = t["facilities"]
    bad = fac[(fac["first_year"].notna()) & (fac["last_year"].notna())
              & (fac["first_year"] > fac["last_year"])]
    for r in bad.to_dict("records"):
        out.append(Problem(file, "facilities", r[ROW], "last_year", r["last_year"],
                           f"a year at or after first_year ({r['first_year']:g})",
                           "last_year before first_year"))
    observed = set(fac.loc[fac["observed_output_t_per_yr"].notna(), "facility"])
    for r in fac[fac["calibrated_as"].fillna("") != ""].to_dict("records"):
        parent = r["calibrated_as"]
        if parent not in set(fac["facility"]):
            continue  # an unknown code is reported by the reference check
        if parent == r["facility"] or pd.notna(r["observed_output_t_per_yr"]) or parent not in observed:
            why = ("a facility cannot share its own terms" if parent == r["facility"] else
                   "a facility with its own observed output is calibrated on its own"
                   if pd.notna(r["observed_output_t_per_yr"]) else "the facility named has no observed output")
            out.append(Problem(file, "facilities", r[ROW], "calibrated_as", parent,
                               "another facility with an observed output (this one without)", why))
    used = set(t["facility_processes"]["facility"])
    for r in fac[~fac["facility"].isin(used)].to_dict("records"):
        out.append(Problem(file, "facilities", r[ROW], "facility", r["facility"],
                           "at least one row in facility_processes",
                           "facility runs no process"))


def _check_codes_distinct(file: str, codes: dict[str, set[str]], t: dict[str, pd.DataFrame],
                          out: list[Problem]) -> None:
    for clash in sorted(codes[S.COUNTRY] & codes[S.BLOC]):
        named = t["countries"]["blocs"].map(lambda text: clash in str(text or "").split(","))
        row = t["countries"].loc[named, ROW].iloc[0]
        out.append(Problem(file, "countries", _row(row), "blocs", clash,
                           "bloc codes distinct from country codes",
                           "a bloc has the same code as a country"))
    for clash in sorted(codes[S.PRODUCT] & codes[S.GROUP]):
        row = t["product_groups"].loc[t["product_groups"]["group"] == clash, ROW].iloc[0]
        out.append(Problem(file, "product_groups", _row(row), "group", clash,
                           "group codes distinct from product codes",
                           "a group has the same code as a product"))


def _members(t: dict[str, pd.DataFrame]) -> tuple[dict, dict, list, list]:
    """(bloc -> countries, group -> products, countries, products) for expanding codes."""
    blocs: dict[str, list[str]] = {}
    for c, text in zip(t["countries"]["country"], t["countries"]["blocs"]):
        for b in str(text or "").split(","):
            if b:
                blocs.setdefault(b, []).append(c)
    groups = {g: list(d["product"]) for g, d in t["product_groups"].groupby("group")}
    return blocs, groups, list(t["countries"]["country"]), list(t["products"]["product"])


def _blank(v) -> bool:
    return v is None or v != v or v == ""


def _content(t: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Content coefficients of the case's products (as model.lp.data computes them)."""
    return content_coefficients(t["products"].set_index("product")[["element", "unit"]],
                                t["recipes"][["process", "product", "coefficient"]])


def _check_export_controls(file: str, t: dict[str, pd.DataFrame], out: list[Problem]) -> None:
    ctl = t["export_controls"]
    if ctl.empty:
        return
    blocs, groups, countries, products = _members(t)
    elements = {e for e in t["products"]["element"] if e not in ("", "mix", None)}
    periods = list(t["periods"]["period"])
    seen: list[tuple] = []
    for r in ctl.to_dict("records"):
        row = _row(r[ROW])
        kind = r["kind"]
        if kind == "quota" and _blank(r["quota_t_per_yr"]):
            if _blank(r["quota_share"]):
                out.append(Problem(file, "export_controls", row, "quota_t_per_yr", None,
                                   "quota_t_per_yr, or quota_share with reference_flow_t_per_yr",
                                   "a quota needs an amount"))
            elif _blank(r["reference_flow_t_per_yr"]):
                out.append(Problem(file, "export_controls", row, "reference_flow_t_per_yr", None,
                                   "the sourced pre-control flow the share applies to",
                                   "a share quota needs reference_flow_t_per_yr"))
        if kind == "licence":
            for col in ("licence_approval_share", "reference_flow_t_per_yr"):
                if _blank(r[col]):
                    out.append(Problem(file, "export_controls", row, col, None,
                                       "a value (the licensed amount is approval share x reference flow)",
                                       f"a licence needs {col}"))
        if r["element"] and r["element"] not in elements:
            out.append(Problem(file, "export_controls", row, "element", r["element"],
                               "an element named in the products sheet",
                               "unknown element" + did_you_mean(r["element"], elements)))
        dest = set(expand(r["destinations"] or "*", blocs, countries)) - set(
            expand(r["exempt"], blocs, countries)) - {r["exporter"]}
        if not dest:
            out.append(Problem(file, "export_controls", row, "destinations", r["destinations"],
                               "at least one destination left after exemptions",
                               "the control covers no destination"))
        prods = set(expand(r["product"], groups, products))
        if kind == "quota" and r["element"] in elements:
            content = _content(t)
            if content[r["element"]].reindex(sorted(prods)).fillna(0.0).max() <= 0:
                out.append(Problem(file, "export_controls", row, "element", r["element"],
                                   "an element the controlled products contain",
                                   f"none of the controlled products contains {r['element']}, so the quota "
                                   "would do nothing"))
        segs = split_codes(r.get("segments"))
        _check_segments(file, t, row, r, segs, out)
        pers = periods_in(r["periods"], periods)
        listed = [x.strip() for x in str(r["periods"] or "").split(",") if x.strip()]
        if len(listed) != len(set(listed)):
            out.append(Problem(file, "export_controls", row, "periods", r["periods"],
                               "each period once", "a period is listed twice"))
        if segs:  # two denials of one segment are not ambiguous, nor one beside a flow control
            continue
        for other in seen:
            name, kind2, x2, prods2, dest2, pers2 = other
            both = set(pers) & set(pers2)
            if kind2 == kind and x2 == r["exporter"] and prods & prods2 and dest & dest2 and both:
                out.append(Problem(file, "export_controls", row, "periods", r["periods"],
                                   f"periods that do not overlap control '{name}' for the same products and destinations",
                                   f"overlaps control '{name}' in period {sorted(both, key=periods.index)[0]} "
                                   f"(two {kind}s on one flow are ambiguous)"))
        seen.append((r["control"], kind, r["exporter"], prods, dest, pers))


def _check_segments(file: str, t: dict[str, pd.DataFrame], row: int | None, r: dict, segs: list[str],
                    out: list[Problem]) -> None:
    """An end-use control is a ban naming segments the demand sheet uses."""
    if not segs:
        return
    if r["kind"] != "ban":
        out.append(Problem(file, "export_controls", row, "segments", r["segments"],
                           "blank for a quota or licence (an end-use control is a ban on the segments)",
                           f"a {r['kind']} cannot name segments: licences and quotas act on flows, "
                           "which carry no end use"))
    known = set(t["demand"]["segment"].astype(str))
    for seg in segs:
        if seg not in known:
            out.append(Problem(file, "export_controls", row, "segments", seg,
                               "a segment of the demand sheet (" + ", ".join(sorted(known)) + ")",
                               "unknown segment" + did_you_mean(seg, known)))
    if not set(segs) <= known:
        return
    blocs, groups, countries, products = _members(t)
    prods = set(expand(r["product"], groups, products))
    if r["extraterritorial"]:
        prods = downstream_closure(prods, t["recipes"][["process", "product", "coefficient"]])
    dest = set(expand(r["destinations"] or "*", blocs, countries)) - set(
        expand(r["exempt"], blocs, countries)) - {r["exporter"]}
    pers = set(periods_in(r["periods"], list(t["periods"]["period"])))
    d = t["demand"]
    hit = (d["country"].isin(dest) & d["product"].isin(prods) & d["segment"].isin(segs) & d["period"].isin(pers)
           & (d["quantity_t_per_yr"] > 0))
    if not hit.any():
        out.append(Problem(file, "export_controls", row, "segments", r["segments"],
                           "segments that demand a controlled product in a destination and period of the control",
                           "the control denies nothing: no demand row of these segments is for "
                           + ", ".join(sorted(prods)) + " in its destinations and periods"
                           + ("" if r["extraterritorial"] else
                              " (products made from them count only with extraterritorial TRUE)")))


def _check_tariffs(file: str, t: dict[str, pd.DataFrame], out: list[Problem]) -> None:
    tar = t["tariffs"]
    if tar.empty:
        return
    _, groups, _, products = _members(t)
    price = dict(zip(t["products"]["product"], t["products"]["reference_price_usd_per_t"]))
    for r in tar.to_dict("records"):
        if not _blank(r["ad_valorem_pct"]) and r["ad_valorem_pct"] > 0:
            missing = [p for p in expand(r["product"], groups, products) if _blank(price.get(p))]
            if missing and r["product"] != "*":
                out.append(Problem(file, "tariffs", _row(r[ROW]), "ad_valorem_pct", r["ad_valorem_pct"],
                                   "a reference_price_usd_per_t in the products sheet for " + ", ".join(missing[:5]),
                                   "an ad valorem duty needs the product's reference price"))


def _days_targets(t: dict[str, pd.DataFrame], sp: pd.DataFrame) -> dict[tuple[str, str], float]:
    """(stockpile, normal period) -> target in t of a days-of-cover target, as the model
    computes it (content coefficients of the holder's demand); {} if not computable yet."""
    rows = sp[sp["target_days_of_cover"].notna()]
    if rows.empty:
        return {}
    products = t["products"].drop_duplicates("product").set_index("product")
    try:
        content = content_coefficients(products, t["recipes"][["process", "product", "coefficient"]])
    except (KeyError, ValueError, IndexError):
        return {}  # broken recipes are reported on their own
    per = t["periods"]
    normal = list(per.loc[per["regime"] != "crisis", "period"])
    dem = t["demand"]
    out: dict[tuple[str, str], float] = {}
    for r in rows.to_dict("records"):
        p = r["product"]
        if p not in content.index:
            continue
        e = products.at[p, "element"]
        mine = dem[(dem["country"] == r["holder"]) & dem["period"].isin(normal)]
        if e in NO_ELEMENT or e not in content.columns or content.at[p, e] <= 0:
            mine = mine[mine["product"] == p]
            q = mine["quantity_t_per_yr"]
        else:
            q = mine["quantity_t_per_yr"] * mine["product"].map(content[e]).fillna(0.0) / content.at[p, e]
        for period, total in q.groupby(mine["period"]).sum().items():
            out[r["stockpile"], period] = r["target_days_of_cover"] / 365.0 * float(total)
    return out


def _check_stockpiles(file: str, t: dict[str, pd.DataFrame], out: list[Problem]) -> None:
    """One kind of target, targets and the initial level within capacity (a days-of-cover
    target converted as the model does), and a reference price wherever a budget is set."""
    sp = t["stockpiles"]
    if sp.empty:
        return
    price = dict(zip(t["products"]["product"], t["products"]["reference_price_usd_per_t"]))
    days = _days_targets(t, sp)
    for r in sp.to_dict("records"):
        row, cap = _row(r[ROW]), r["capacity_t"]
        if not _blank(r["target_t"]) and not _blank(r["target_days_of_cover"]):
            out.append(Problem(file, "stockpiles", row, "target_days_of_cover", r["target_days_of_cover"],
                               "blank where target_t is given",
                               "two targets: give target_t or target_days_of_cover, not both"))
        if not _blank(cap) and not _blank(r["target_t"]) and r["target_t"] > cap:
            out.append(Problem(file, "stockpiles", row, "target_t", r["target_t"],
                               f"at most capacity_t ({cap:g})", "target above capacity"))
        if not _blank(cap) and not _blank(r["target_days_of_cover"]):
            over = [(per, v) for (h, per), v in days.items() if h == r["stockpile"] and v > cap]
            if over:
                per, v = over[0]
                out.append(Problem(file, "stockpiles", row, "target_days_of_cover", r["target_days_of_cover"],
                                   f"a target that fits capacity_t ({cap:g} t)",
                                   f"target above capacity: in period {per} it is {v:,.6g} t of "
                                   f"{r['product']} (the holder's final demand)"))
        if not _blank(cap) and not _blank(r["initial_t"]) and r["initial_t"] > cap:
            out.append(Problem(file, "stockpiles", row, "initial_t", r["initial_t"],
                               f"at most capacity_t ({cap:g})", "initial level above capacity"))
        lo, hi = r["build_min_t_per_yr"], r["buy_max_t_per_yr"]
        if not _blank(lo) and not _blank(hi) and lo > hi:
            out.append(Problem(file, "stockpiles", row, "build_min_t_per_yr", lo,
                               f"at most buy_max_t_per_yr ({hi:g})",
                               "a committed build above the most that may be bought"))
        if not _blank(lo) and lo > 0:
            _check_committed_build(file, t, r, out)
        if not _blank(r["budget_usd"]) and _blank(price.get(r["product"])):
            out.append(Problem(file, "stockpiles", row, "budget_usd", r["budget_usd"],
                               f"a reference_price_usd_per_t for {r['product']} in the products sheet",
                               "a purchase budget needs the product's reference price"))


def _check_committed_build(file: str, t: dict[str, pd.DataFrame], r: dict, out: list[Problem]) -> None:
    """A committed build must fit the store (over each run of consecutive build periods,
    even from empty) and the purchase budget (buys are at least the build)."""
    per = t["periods"]
    plist = list(per["period"])
    dur = dict(zip(per["period"], per["duration_yr"].astype(float)))
    on = set(periods_in(r["build_min_periods"], plist))
    row, lo, cap = _row(r[ROW]), float(r["build_min_t_per_yr"]), r["capacity_t"]
    if not _blank(cap):
        run = 0.0
        for p in plist:
            run = run + dur[p] * lo if p in on else 0.0
            if run > cap + 1e-9:
                out.append(Problem(file, "stockpiles", row, "build_min_t_per_yr", lo,
                                   f"a build that fits capacity_t ({cap:g} t)",
                                   f"the committed build fills {run:,.6g} t by the end of {p}, above the capacity"))
                break
    price = dict(zip(t["products"]["product"], t["products"]["reference_price_usd_per_t"]))
    ref = price.get(r["product"])
    if not _blank(r["budget_usd"]) and not _blank(ref):
        spend = sum(dur[p] * lo * float(ref) for p in on)
        if spend > r["budget_usd"] + 1e-6:
            out.append(Problem(file, "stockpiles", row, "build_min_t_per_yr", lo,
                               f"a build whose purchases fit budget_usd ({r['budget_usd']:,.6g} USD)",
                               f"the committed build costs at least {spend:,.6g} USD at the reference price"))


def _covered_potential(t: dict[str, pd.DataFrame], facs: list[str], product: str) -> dict[str, float]:
    """Per period: capacity x largest output coefficient of `product` summed over the
    facilities active in the period (model.case.derived.active_pairs decides who runs when)."""
    rec = t["recipes"]
    makes = rec[(rec["product"] == product) & (rec["coefficient"] > 0)]
    fp = t["facility_processes"].merge(makes, on="process")
    best = fp[fp["facility"].isin(facs)].groupby("facility")["coefficient"].max()
    fac = t["facilities"].drop_duplicates("facility").set_index("facility")
    pairs = active_pairs(fac.loc[fac.index.isin(best.index)], t["periods"].set_index("period"))
    pairs["potential"] = pairs["facility"].map(fac["capacity_t_per_yr"] * best).astype(float)
    total = pairs.groupby("period")["potential"].sum()
    return {per: float(total.get(per, 0.0)) for per in t["periods"]["period"]}


def _check_price_floors(file: str, t: dict[str, pd.DataFrame], out: list[Problem]) -> None:
    """Each mechanism has what it needs: covered facilities that make the product (cfd,
    must_run, offtake), a quantity (must_run, offtake) that covered capacity can make
    (must_run), an index zone (cfd, floor_duty), a stockpile of the same product
    (offtake), a reference price (floor_duty)."""
    pf = t["price_floors"]
    if pf.empty:
        return
    price = dict(zip(t["products"]["product"], t["products"]["reference_price_usd_per_t"]))
    stock_product = dict(zip(t["stockpiles"]["stockpile"], t["stockpiles"]["product"]))
    known = set(t["facilities"]["facility"])
    rec = t["recipes"]
    periods = list(t["periods"]["period"])
    for r in pf.to_dict("records"):
        row, mech, p = _row(r[ROW]), r["mechanism"], r["product"]
        facs = [f for f in str(r["facilities"] or "").split(",") if f]
        makers = set(t["facility_processes"]["facility"][t["facility_processes"]["process"].isin(
            rec.loc[(rec["product"] == p) & (rec["coefficient"] > 0), "process"])])
        if mech in ("cfd", "must_run", "offtake"):
            if not facs:
                out.append(Problem(file, "price_floors", row, "facilities", None,
                                   "at least one covered facility", f"mechanism {mech} needs covered facilities"))
            for f in facs:
                if f in known and f not in makers:
                    out.append(Problem(file, "price_floors", row, "facilities", f,
                                       f"a facility running a process that makes {p}",
                                       "covered facility does not make the product"))
        if mech in ("must_run", "offtake") and _blank(r["quantity_t_per_yr"]):
            out.append(Problem(file, "price_floors", row, "quantity_t_per_yr", None,
                               f"a quantity (mechanism {mech} needs one)", "quantity_t_per_yr is blank"))
        if mech in ("cfd", "floor_duty") and _blank(r["index_zone"]):
            out.append(Problem(file, "price_floors", row, "index_zone", None, "a country or bloc",
                               f"mechanism {mech} needs index_zone"))
        if mech == "offtake":
            h = r["offtake_stockpile"]
            if _blank(h):
                out.append(Problem(file, "price_floors", row, "offtake_stockpile", None,
                                   "a stockpile named in the stockpiles sheet", "an offtake needs a stockpile"))
            elif h in stock_product and stock_product[h] != p:
                out.append(Problem(file, "price_floors", row, "offtake_stockpile", h,
                                   f"a stockpile of {p}", f"stockpile '{h}' holds {stock_product[h]}"))
            else:
                # The offtake moves tonnes into the reserve without a lane, so the reserve
                # must be where the covered plants are (else it would pass any ban).
                holder = dict(zip(t["stockpiles"]["stockpile"], t["stockpiles"]["holder"])).get(h)
                where = set(t["facilities"].loc[t["facilities"]["facility"].isin(facs), "country"])
                if holder is not None and where and where != {holder}:
                    out.append(Problem(file, "price_floors", row, "offtake_stockpile", h,
                                       f"a stockpile held in {', '.join(sorted(where))}, where the covered facilities are",
                                       f"stockpile '{h}' is held in {holder}"))
        if mech == "floor_duty" and _blank(price.get(p)):
            out.append(Problem(file, "price_floors", row, "product", p,
                               "a product with a reference_price_usd_per_t (duty = floor - reference price)",
                               "a floor duty needs the product's reference price"))
        if mech == "must_run" and not _blank(r["quantity_t_per_yr"]) and facs and set(facs) <= known:
            use = periods_in(r["periods"], periods)
            pot = _covered_potential(t, facs, p)
            short = [x for x in use if x in pot and pot[x] < r["quantity_t_per_yr"] - 1e-9]
            if short:
                out.append(Problem(file, "price_floors", row, "quantity_t_per_yr", r["quantity_t_per_yr"],
                                   f"at most what the covered facilities can make in period {short[0]} "
                                   f"({pot[short[0]]:g} t/yr)", "must_run quantity above covered capacity"))
        if mech == "offtake" and facs and set(facs) <= known:
            use = periods_in(r["periods"], periods)
            pot = _covered_potential(t, facs, p)
            if not any(pot.get(x, 0.0) > 0 for x in use):
                out.append(Problem(file, "price_floors", row, "facilities", r["facilities"],
                                   f"facilities that can make {p} in at least one of the floor's periods",
                                   "the covered facilities make none of the product in the floor's periods, "
                                   "so the offtake would do nothing"))


def _read_rows(t: dict[str, pd.DataFrame], sheet: str, read_problems: list[Problem]) -> pd.DataFrame:
    """A sheet's rows whose every cell was read: a row with a bad cell (typed as the
    default) is already reported, and cross-checks skip it."""
    bad = {p.row for p in read_problems if p.sheet == sheet and p.row is not None}
    return t[sheet][~t[sheet][ROW].isin(bad)]


def _check_expansion(file: str, t: dict[str, pd.DataFrame], out: list[Problem],
                     read_problems: list[Problem]) -> None:
    opts = _read_rows(t, "expansion", read_problems)
    per = t["periods"].dropna(subset=["start_year"]).sort_values("start_year")
    if opts.empty or per.empty:
        return
    first, last = per.iloc[0], per.iloc[-1]
    facilities = set(t["facilities"]["facility"])
    ok = opts[opts["lifetime_yr"] > 0]
    online = set(build_schedule(ok, per)["option"])
    for r in opts.to_dict("records"):
        row = _row(r[ROW])
        if r["option"] in facilities:
            out.append(Problem(file, "expansion", row, "option", r["option"],
                               "an option code distinct from facility codes",
                               "an expansion option has the same code as a facility"))
        if not r["lifetime_yr"] > 0:
            continue  # the cell's own check reported it
        early = r["earliest_year"]
        if not _blank(early) and early > last["start_year"] + 1e-9:
            out.append(Problem(file, "expansion", row, "earliest_year", early,
                               f"a year at or before the last period's start ({last['start_year']:g})",
                               f"option '{r['option']}': earliest_year is after the last period starts"))
        elif r["option"] not in online:
            start = first["start_year"] if _blank(early) else per.loc[per["start_year"] >= early - 1e-9,
                                                                    "start_year"].iloc[0]
            lead = 0.0 if _blank(r["lead_time_yr"]) else r["lead_time_yr"]
            out.append(Problem(file, "expansion", row, "lead_time_yr", lead,
                               f"a lead time of at most {last['start_year'] - start:g} yr (a build decided in "
                               f"the first allowed period, starting {start:g}, must come online by the "
                               f"last period's start, {last['start_year']:g})",
                               f"option '{r['option']}' can never come online inside the horizon "
                               f"(lead time beyond the horizon)"))


def _check_supply_caps(file: str, t: dict[str, pd.DataFrame], out: list[Problem],
                       read_problems: list[Problem]) -> None:
    caps = _read_rows(t, "supply_caps", read_problems)
    if caps.empty:
        return
    _, groups, _, products = _members(t)
    stages = set(t["processes"]["stage"])
    rec = t["recipes"]
    made = set(rec.loc[rec["coefficient"] > 0, "product"])
    for r in caps.to_dict("records"):
        row = _row(r[ROW])

        def bad(col: str, value, expected: str, msg: str) -> None:
            out.append(Problem(file, "supply_caps", row, col, value, expected, f"cap '{r['cap']}': {msg}"))
        quota, share = not _blank(r["cap_t_per_yr"]), not _blank(r["max_share"])
        if not quota and not share:
            bad("cap_t_per_yr", None, "cap_t_per_yr (a production quota) or max_share (a share cap)",
                "the row sets neither cap_t_per_yr nor max_share")
        elif quota and share:
            bad("max_share", r["max_share"], "one of cap_t_per_yr or max_share per row (use two rows)",
                "the row sets both cap_t_per_yr and max_share")
        elif quota:
            if not r["stage"] and not r["product"]:
                bad("stage", None, "a stage, a product or both", "a quota needs a stage or a product to cap")
            if r["bloc"]:
                bad("bloc", r["bloc"], "blank for a quota (bloc is the use a max_share protects)",
                    "bloc is set on a quota row")
        else:
            if not r["bloc"]:
                bad("bloc", None, "the bloc whose use the share cap protects",
                    "max_share needs a bloc")
            if not r["product"]:
                bad("product", None, "the product whose use the share cap protects",
                    "max_share needs a product")
            if r["stage"]:
                bad("stage", r["stage"], "blank for a share cap (it is on a product's use)",
                    "stage is set on a share cap")
        if r["stage"] and r["stage"] not in stages:
            bad("stage", r["stage"], "a stage some process has (" + ", ".join(sorted(stages)) + ")",
                "no process has this stage")
        if r["product"] and r["product"] in set(products) | set(groups) and not (
                set(expand(r["product"], groups, products)) & made):
            bad("product", r["product"], "a product some recipe makes (a positive coefficient)",
                "no process makes this product")


def _check_benchmarks(file: str, t: dict[str, pd.DataFrame], out: list[Problem],
                      read_problems: list[Problem]) -> None:
    """A benchmark names a stage some process has, an element some product has, a bloc
    that demands something, and no other benchmark on the same bloc, stage and element."""
    rows = _read_rows(t, "benchmarks", read_problems)
    if rows.empty:
        return
    blocs, _, countries, _ = _members(t)
    stages = set(t["processes"]["stage"])
    elements = {e for e in t["products"]["element"] if e not in ("", "mix", None)}
    demanders = set(t["demand"].loc[t["demand"]["quantity_t_per_yr"] > 0, "country"])
    seen: dict[tuple, str] = {}
    for r in rows.to_dict("records"):
        row = _row(r[ROW])

        def bad(col: str, value, expected: str, msg: str) -> None:
            out.append(Problem(file, "benchmarks", row, col, value, expected, f"benchmark '{r['benchmark']}': {msg}"))
        if r["stage"] and r["stage"] not in stages:
            bad("stage", r["stage"], "a stage some process has (" + ", ".join(sorted(stages)) + ")",
                "no process has this stage, so nothing could count toward it")
        if r["element"] and r["element"] not in elements:
            bad("element", r["element"], "an element named in the products sheet",
                "unknown element" + did_you_mean(r["element"], elements))
        members = set(expand(r["bloc"], blocs, countries))
        known = r["bloc"] in blocs or r["bloc"] in countries  # an unknown code is reported once, as unknown
        if known and members and not members & demanders:
            bad("bloc", r["bloc"], "a bloc or country with demand rows",
                "its members demand nothing, so the share has no consumption to apply to")
        key = (r["bloc"], r["stage"], r["element"] or "")
        if key in seen:
            bad("stage", r["stage"], "one benchmark per bloc, stage and element",
                f"benchmark '{seen[key]}' already sets a share for this bloc, stage and element")
        seen.setdefault(key, r["benchmark"])


def _check_calibration(file: str, t: dict[str, pd.DataFrame], out: list[Problem]) -> None:
    """The step above the observed output must not be cheaper than below it (else the
    excess variable of model.lp.modules.calibration would be unbounded)."""
    cal = t["calibration"]
    bad = cal[cal["above_observed_usd_per_t"] < cal["below_observed_usd_per_t"]]
    for r in bad.to_dict("records"):
        out.append(Problem(file, "calibration", _row(r[ROW]), "above_observed_usd_per_t",
                           r["above_observed_usd_per_t"],
                           f"at least below_observed_usd_per_t ({r['below_observed_usd_per_t']:g})",
                           "output above the observed output cannot cost less than output below it"))


SHARE_TOL = 1e-6  # lifetime shares of a product and segment sum to 1 within this
EOL_SAME = ("collection_rate", "scrap_product", "scrap_yield_t_per_t")  # one value per product and segment


def _check_scrap_stage(file: str, sheet: str, df: pd.DataFrame, stage: dict, out: list[Problem]) -> None:
    """A scrap_product cell must name a product of stage scrap (an unknown code is the reference check's)."""
    for r in df.to_dict("records"):
        p = r["scrap_product"]
        if p in stage and stage[p] != "scrap":
            out.append(Problem(file, sheet, _row(r[ROW]), "scrap_product", p, "a product of stage scrap",
                               f"product '{p}' is of stage {stage[p]}"))


def _check_end_of_life(file: str, t: dict[str, pd.DataFrame], out: list[Problem],
                       read_problems: list[Problem]) -> None:
    """Lifetime shares sum to 1 per (product, segment); collection rate, scrap product and
    yield agree within it; a named segment is one the product's demand uses."""
    eol = _read_rows(t, "end_of_life", read_problems)
    stage = dict(zip(t["products"]["product"], t["products"]["stage"]))
    _check_scrap_stage(file, "end_of_life", eol, stage, out)
    dem = t["demand"]
    segments: dict[str, set] = {}
    for p, g in zip(dem["product"], dem["segment"]):
        segments.setdefault(p, set()).add(g)
    for (prod, seg), g in eol.groupby(["product", "segment"], sort=False):
        rows = [_row(r) for r in g[ROW]]
        where = f"product '{prod}', segment '{seg}'"
        total = float(g["share"].sum())
        if abs(total - 1.0) > SHARE_TOL:
            out.append(Problem(file, "end_of_life", rows[-1], "share", round(total, 9),
                               f"shares summing to 1 over the rows of {where} (rows "
                               f"{', '.join(str(r) for r in rows if r is not None)})",
                               f"{where}: lifetime shares sum to {total:g}"))
        for col in EOL_SAME:
            first = g[col].iloc[0]
            for v, r in zip(g[col].iloc[1:], rows[1:]):
                if v != first:
                    out.append(Problem(file, "end_of_life", r, col, v,
                                       f"the value of the first row of {where} ({first})",
                                       f"{where}: {col} differs between rows"))
        if seg != "*" and prod in segments and seg not in segments[prod]:
            out.append(Problem(file, "end_of_life", rows[0], "segment", seg,
                               f"a segment of {prod}'s demand rows or * ({', '.join(sorted(segments[prod]))})",
                               "no demand row of the product has this segment"
                               + did_you_mean(seg, segments[prod])))


def _check_scrap_supply(file: str, t: dict[str, pd.DataFrame], out: list[Problem],
                        read_problems: list[Problem]) -> None:
    sup = _read_rows(t, "scrap_supply", read_problems)
    stage = dict(zip(t["products"]["product"], t["products"]["stage"]))
    _check_scrap_stage(file, "scrap_supply", sup, stage, out)


# Columns that define codes other cells refer to; '@' separates an origin class from a
# product, ',' and ';' separate list items, '*' means all, '=' marks a scenario filter.
CODE_COLUMNS = (("countries", "country"), ("countries", "blocs"), ("products", "product"),
                ("product_groups", "group"), ("processes", "process"), ("facilities", "facility"),
                ("periods", "period"), ("expansion", "option"), ("stockpiles", "stockpile"),
                ("scenarios", "scenario"))
RESERVED = "@,;*="


def _check_code_characters(file: str, t: dict[str, pd.DataFrame], out: list[Problem]) -> None:
    for sheet, col in CODE_COLUMNS:
        df = t[sheet]
        for value, row in zip(df[col], df[ROW]):
            items = str(value or "").split(",") if col == "blocs" else [str(value or "")]
            for item in items:
                bad = sorted({ch for ch in item if ch in RESERVED})
                if bad:
                    out.append(Problem(file, sheet, _row(row), col, item,
                                       f"a code without the characters {' '.join(RESERVED)}",
                                       f"a code may not contain {' '.join(bad)}"))


def check_case(case: Case) -> list[Problem]:
    """Every cross-sheet problem of a typed case."""
    file = case.name + ".xlsx" if not case.path.endswith(".xlsx") else case.path.split("/")[-1]
    t = case.tables
    out: list[Problem] = []
    codes = code_sets(t)
    for sheet in SHEETS:
        _check_keys(file, sheet, t[sheet.name], out)
        _check_refs(file, sheet, t[sheet.name], codes, out)
    _check_codes_distinct(file, codes, t, out)
    _check_code_characters(file, t, out)
    _check_recipes(file, t, out)
    _check_periods(file, t, case.settings, case.settings_rows, out)
    _check_facilities(file, t, out)
    _check_export_controls(file, t, out)
    _check_calibration(file, t, out)
    _check_tariffs(file, t, out)
    _check_expansion(file, t, out, case.read_problems)
    _check_supply_caps(file, t, out, case.read_problems)
    _check_benchmarks(file, t, out, case.read_problems)
    _check_stockpiles(file, t, out)
    _check_price_floors(file, t, out)
    _check_end_of_life(file, t, out, case.read_problems)
    _check_scrap_supply(file, t, out, case.read_problems)
    check_branches(file, t, out)
    return out


def validate_case(case: Case) -> Case:
    """Raise InputError with every cross-sheet problem; return the case if clean."""
    problems = case.read_problems + check_case(case)
    case.read_problems = []
    if problems:
        raise InputError(problems)
    return case
