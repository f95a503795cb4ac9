"""The most damaging export control: search a candidate set for the control (or the k
controls) that does the most harm to named countries, by re-solving one kept model.

    python run.py search inputs/control_search.yaml [--workers N] [--k K]

The spec (YAML; every list entry is checked and every problem is said at once):

    workbook: base.xlsx          # relative to the spec; optional (CLI --workbook, else the shipped case)
    harm:
      kind: penalty              # penalty: unserved-demand penalty value (USD, present value)
                                 # spending: consumer spending (served t x price, USD PV)
      countries: [EU]            # countries or blocs whose harm counts
      products: [magnets]        # optional: products or groups (default: all)
    k: 1                         # how many controls together (1: exhaustive, exact over the set)
    top: 10                      # rows the console shows (ranking.csv has every candidate)
    candidates:                  # generators: the cross product of products x destinations x kinds
      - exporter: CHN
        products: [ndfeb, apr2025_hree]
        destinations: [EU, USA, JPN]   # countries, blocs or *
        periods: "2027"                # blank or * for every period
        kinds: [ban, licence]
        licence_shares: [0.25, 0.5]    # each licence share is one candidate
        licence_cost_usd_per_t: 0
    controls:                    # and/or explicit candidates: export_controls rows
      - {control: q_usa, exporter: CHN, product: ndfeb, destinations: USA, periods: "2027",
         kind: quota, quota_t_per_yr: 500}

A licence generated here licenses a share of what the controlled flows carried in the
same period of the no-control plan (one row per period, reference_flow_t_per_yr filled
from that plan: the least-norm least-cost plan, so the figure is unique).

How it solves. Every candidate's rows are made rows of one model (model.runs.resolve,
`controls=`): a quota or licence is an export_quota row with no limit where a
combination lacks it; a ban is the same row with a limit of 0 t/yr (a ban on X-origin
flows of P to D is a quota of 0 on those flows: X-origin material can only enter D across
D's border, and those crossings are the row's flows). Each combination is then numbers on
that model, re-solved warm in a worker process that built it once.

The harm and why it is well defined. The least cost is unique, but when two countries
compete for scarce supply the split of the shortfall (so one country's penalty) can
differ between least-cost plans. So the harm is computed on the optimal face (every
column of non-zero reduced cost fixed at its bound, every row of non-zero dual tight:
model.lp.canonical.primal_face, exact, no tolerance on the objective) by two more LPs:
`harm_usd` = the least harm over every least-cost plan (what the controller can
guarantee, whichever plan the market settles on) and `harm_max_usd` the most. Both are
properties of the LP, not of the vertex or of the model's representation, which is why
a plain run (bans as bans, no union of rows) reproduces `harm_usd` (re-checked).
Breakdowns by country and period are read from the plan that attains `harm_usd`.
Spending harm depends on prices (duals), which can be non-unique: it is read from the
least-norm plan (every solve, so slower) at the solver's prices and `prices_unique` says
whether that is the only reading; `harm_max_usd` is blank for it.

Lost export revenue. The controller's export revenue is who_pays's export_revenue_usd
(tonnes exported x the exporter-side node price, each period's USD to present value by
the period's pv_factor); lost = no-control run - controlled run. The no-control run and
the rows shown (the top rows for k = 1, every pick for k > 1) are solved again with the
least-norm plan (model.lp.canonical) so their revenue is the project's one answer; the
others are screened at the solver's vertex plan (a least-norm QP costs ~3 s a solve on the
base case, the re-solve itself ~0.1 s), and the ranking's `plan` column says which plan a
row's revenue and `harm_least_norm_usd` come from (`least-norm` or `vertex`). Prices can be
non-unique: `revenue_prices_unique` says so. The ranking never reads revenue.

Method. k = 1: every candidate is solved (exhaustive: exact over the set). k > 1: greedy,
a heuristic: k rounds, each adding the candidate with the largest harm given those chosen
(ties: the names); it is not guaranteed to find the best set.

Output: one folder `outputs/<timestamp>_<case>_search/` written under a temporary name
and renamed when complete: ranking.csv and ranking.xlsx (rank, controls, harm, its
breakdown, lost revenue, shortfall by period with its share of demand), evaluations.csv
(every solve), breakdown.csv (harm by country and period per ranked row), candidates.csv
(every candidate's export_controls rows as a plain run takes them, generated licences'
reference flows filled in), the spec as run and manifest.json. Reports read the result tables and the evaluation records only.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import highspy
import numpy as np
import pandas as pd

from model.case.codes import expand, periods_in
from model.case.schema import SHEETS_BY_NAME, InputError, Problem
from model.case.workbook import ROW, Case, check_range, coerce, did_you_mean

if TYPE_CHECKING:
    from model.lp.columns import ColumnMap

LOG = logging.getLogger(__name__)
HARM_KINDS = ("penalty", "spending")
GEN_KINDS = ("ban", "licence")
SPEC_KEYS = {"workbook", "harm", "k", "top", "candidates", "controls"}
GEN_KEYS = {"exporter", "products", "destinations", "periods", "kinds", "licence_shares",
            "licence_cost_usd_per_t", "exempt"}
NO_CONTROL = "no control"
FACE_TOL = 1e-7  # a harm LP on the face that HiGHS does not call optimal is reported, not used


# --------------------------------------------------------------------------- the spec

@dataclass
class Candidate:
    """One control a controller could impose: export_controls rows as a plain run has
    them (a licence's reference flows filled in after the no-control run)."""

    name: str
    exporter: str
    rows: list[dict]
    licence_share: float | None = None   # generated licences: share of the no-control flow
    description: str = ""


@dataclass
class Harm:
    kind: str
    countries: list[str]
    products: list[str]
    named: str  # as the spec named them (for the console)


@dataclass
class SearchSpec:
    path: str
    workbook: str | None
    harm: Harm | None
    k: int
    top: int
    candidates: list[Candidate] = field(default_factory=list)
    raw: dict = field(default_factory=dict)


def _as_list(x) -> list:
    if x is None:
        return []
    if isinstance(x, (list, tuple)):
        return list(x)
    return [s.strip() for s in str(x).split(",") if s.strip()]


def read_raw(path: str | Path) -> dict:
    """The spec file's mapping, or InputError (missing file, not YAML, not a mapping)."""
    import yaml
    path = Path(path)
    file = path.name
    if not path.exists():
        raise InputError([Problem(file, message=f"file not found: {path}")])
    if path.is_dir():
        raise InputError([Problem(file, message=f"{path} is a folder, not a search spec file")])
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError([Problem(file, message=f"not UTF-8 text (byte {exc.start}): save the spec as UTF-8")]) from None
    except yaml.YAMLError as exc:
        raise InputError([Problem(file, message=f"not valid YAML ({exc})")]) from None
    if not isinstance(raw, dict):
        raise InputError([Problem(file, message="a search spec is a mapping with harm, candidates and/or controls")])
    return raw


class _Codes:
    """The case's codes a spec may name (countries, blocs, products, groups, periods)."""

    def __init__(self, case: Case):
        t = case.tables
        self.countries = list(t["countries"]["country"])
        self.blocs: dict[str, list[str]] = {}
        for c, text in zip(t["countries"]["country"], t["countries"]["blocs"].fillna("")):
            for b in str(text).split(","):
                if b.strip():
                    self.blocs.setdefault(b.strip(), []).append(c)
        self.products = list(t["products"]["product"])
        self.groups = {g: list(d["product"]) for g, d in t["product_groups"].groupby("group")}
        self.periods = [str(p) for p in t["periods"]["period"]]

    def bad_countries(self, names: list[str], star: bool = True) -> list[str]:
        ok = set(self.countries) | set(self.blocs) | ({"*"} if star else set())
        return [n for n in names if n not in ok]

    def bad_products(self, names: list[str]) -> list[str]:
        ok = set(self.products) | set(self.groups) | {"*"}
        return [n for n in names if n not in ok]

    def bad_periods(self, text: str) -> list[str]:
        return [p for p in _as_list(text) if p != "*" and p not in self.periods]


def read_spec(path: str | Path, case: Case, k_override: int | None = None) -> SearchSpec:
    """Read and check a search spec against the case; InputError lists every problem:
    file, section (sheet), entry number (row, from 1), key (column), value found and
    what was expected. k_override (the command line's --k) replaces the spec's k, so a
    spec k above the number of candidates is then no problem."""
    raw = read_raw(path)
    file = Path(path).name
    problems: list[Problem] = []
    codes = _Codes(case)
    for k in raw:
        if k not in SPEC_KEYS:
            problems.append(Problem(file, "", None, str(k), None, ", ".join(sorted(SPEC_KEYS)), "unknown key"))
    harm = _harm(raw.get("harm"), file, codes, problems)
    k = raw.get("k", 1)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        problems.append(Problem(file, "", None, "k", k, "a whole number >= 1", "bad number of controls"))
        k = 1
    top = raw.get("top", 10)
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        problems.append(Problem(file, "", None, "top", top, "a whole number >= 1", "bad number of rows to show"))
        top = 10
    cands: list[Candidate] = []
    gens = raw.get("candidates") or []
    if not isinstance(gens, list):
        problems.append(Problem(file, "candidates", None, "", None, "a list of generators", "not a list"))
        gens = []
    for i, g in enumerate(gens, 1):
        cands += _generator(g, i, file, codes, problems)
    rows = raw.get("controls") or []
    if not isinstance(rows, list):
        problems.append(Problem(file, "controls", None, "", None, "a list of export_controls rows", "not a list"))
        rows = []
    for i, r in enumerate(rows, 1):
        c = _control_row(r, i, file, codes, problems)
        if c is not None:
            cands.append(c)
    if not gens and not rows:
        problems.append(Problem(file, "", None, "candidates", None, "a candidates or controls list",
                                "no candidate controls"))
    _check_names(cands, case, file, problems)
    if not problems:
        _check_origins(cands, case, codes, file, problems)
    if not problems and k > len(cands) and k_override is None:  # --k replaces the spec's k
        problems.append(Problem(file, "", None, "k", k, f"at most the number of candidates ({len(cands)})",
                                "more controls asked for than there are candidates"))
    if problems:
        raise InputError(problems)
    wb = raw.get("workbook")
    return SearchSpec(str(path), str(wb) if wb else None, harm, k, top, cands, raw)


def _harm(h, file: str, codes: _Codes, problems: list[Problem]) -> Harm | None:
    if not isinstance(h, dict):
        problems.append(Problem(file, "harm", None, "", h, "a mapping with kind and countries", "no harm given"))
        return None
    for key in h:
        if key not in ("kind", "countries", "products"):
            problems.append(Problem(file, "harm", None, str(key), None, "kind, countries, products", "unknown key"))
    kind = str(h.get("kind") or "")
    if kind not in HARM_KINDS:
        problems.append(Problem(file, "harm", None, "kind", h.get("kind"), " or ".join(HARM_KINDS),
                                "unknown harm" + did_you_mean(kind, HARM_KINDS)))
    names = [str(x) for x in _as_list(h.get("countries"))]
    if not names:
        problems.append(Problem(file, "harm", None, "countries", None, "countries or blocs", "no countries named"))
    for n in codes.bad_countries(names, star=False):
        problems.append(Problem(file, "harm", None, "countries", n, "a country or bloc of the case",
                                "unknown country" + did_you_mean(n, codes.countries + list(codes.blocs))))
    prods = [str(x) for x in _as_list(h.get("products"))]
    for n in codes.bad_products(prods):
        problems.append(Problem(file, "harm", None, "products", n, "a product or group of the case",
                                "unknown product" + did_you_mean(n, codes.products + list(codes.groups))))
    countries = expand(",".join(names), codes.blocs, codes.countries)
    products = expand(",".join(prods) or "*", codes.groups, codes.products)
    return Harm(kind, countries, products, ", ".join(names))


def _generator(g, i: int, file: str, codes: _Codes, problems: list[Problem]) -> list[Candidate]:
    """The candidates of one generator entry: products x destinations x (ban, licence shares)."""
    sheet = "candidates"

    def bad(col: str, value, expected: str, msg: str) -> None:
        problems.append(Problem(file, sheet, i, col, value, expected, msg))

    if not isinstance(g, dict):
        bad("", g, "a mapping with exporter, products, destinations, kinds", "not a mapping")
        return []
    n0 = len(problems)
    for key in g:
        if key not in GEN_KEYS:
            bad(str(key), None, ", ".join(sorted(GEN_KEYS)), "unknown key")
    x = str(g.get("exporter") or "")
    if x not in codes.countries:
        bad("exporter", g.get("exporter"), "a country of the case",
            "unknown exporter" + did_you_mean(x, codes.countries))
    prods = [str(p) for p in _as_list(g.get("products"))]
    if not prods:
        bad("products", None, "products or groups", "no products")
    for p in codes.bad_products(prods):
        bad("products", p, "a product or group of the case",
            "unknown product" + did_you_mean(p, codes.products + list(codes.groups)))
    dests = [str(d) for d in _as_list(g.get("destinations"))] or ["*"]
    for d in codes.bad_countries(dests):
        bad("destinations", d, "a country, bloc or *",
            "unknown destination" + did_you_mean(d, codes.countries + list(codes.blocs)))
    if x in dests:
        bad("destinations", x, "countries other than the exporter", "an exporter cannot control exports to itself")
    exempt = ",".join(str(e) for e in _as_list(g.get("exempt")))
    for d in codes.bad_countries(_as_list(exempt), star=False):
        bad("exempt", d, "a country or bloc", "unknown exempt destination")
    per = str(g.get("periods") if g.get("periods") is not None else "*")
    for p in codes.bad_periods(per):
        bad("periods", p, "periods of the case (" + ", ".join(codes.periods) + ") or *",
            "unknown period" + did_you_mean(p, codes.periods))
    kinds = [str(k) for k in _as_list(g.get("kinds") or ["ban"])]
    for k in kinds:
        if k not in GEN_KINDS:
            bad("kinds", k, "ban or licence", "unknown kind" + did_you_mean(k, GEN_KINDS))
    shares = _as_list(g.get("licence_shares"))
    for s in shares:
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 <= s <= 1:
            bad("licence_shares", s, "a number from 0 to 1 (the share of the no-control flow approved)",
                "bad licence share")
    if "licence" in kinds and not shares:
        bad("licence_shares", None, "one share or more (0.25, 0.5)", "a licence needs the share it approves")
    cost = g.get("licence_cost_usd_per_t", 0.0)
    if isinstance(cost, bool) or not isinstance(cost, (int, float)) or not cost >= 0 or math.isinf(cost):
        bad("licence_cost_usd_per_t", cost, "a number >= 0 (USD/t)", "bad licence cost")
    if len(problems) > n0:
        return []
    out = []
    pers = periods_in(per, codes.periods)
    for p in prods:
        for d in dests:
            where = "all" if d == "*" else d
            for k in kinds:
                base = {"exporter": x, "product": p, "destinations": d, "exempt": exempt, "element": "",
                        "extraterritorial": False, "licence_cost_usd_per_t": 0.0}
                if k == "ban":
                    name = f"ban_{x}_{p}_{where}"
                    out.append(Candidate(name, x, [dict(base, control=name, periods=per, kind="ban")],
                                         description=f"{x} bans {p} to {where} ({per})"))
                    continue
                for s in shares:
                    name = f"licence{round(100 * s):g}_{x}_{p}_{where}"
                    rows = [dict(base, control=f"{name}@{t}", periods=t, kind="licence", licence_approval_share=float(s),
                                 reference_flow_t_per_yr=None, licence_cost_usd_per_t=float(cost)) for t in pers]
                    out.append(Candidate(name, x, rows, float(s),
                                         f"{x} licenses {100 * s:g} % of its no-control flow of {p} to {where} ({per})"))
    return out


def _control_row(r, i: int, file: str, codes: _Codes, problems: list[Problem]) -> Candidate | None:
    """An explicit candidate: one export_controls row, typed and checked by the schema."""
    sheet = "controls"
    spec = SHEETS_BY_NAME["export_controls"]
    if not isinstance(r, dict):
        problems.append(Problem(file, sheet, i, "", r, "a mapping of export_controls columns", "not a mapping"))
        return None
    n0 = len(problems)
    row: dict = {}
    for key in r:
        if key not in spec.column_names or key == "source":
            problems.append(Problem(file, sheet, i, str(key), None, "a column of export_controls",
                                    "unknown column" + did_you_mean(str(key), list(spec.column_names))))
    for col in spec.columns:
        if col.name == "source":
            continue
        value, err = coerce(r.get(col.name), col)
        if err is None:
            err = check_range(value, col)
        if err is None and col.required and (value is None or value == ""):
            err = "required"
        if err:
            problems.append(Problem(file, sheet, i, col.name, r.get(col.name), col.describe_expected()
                                    if hasattr(col, "describe_expected") else col.description, err))
        row[col.name] = value
    if len(problems) > n0:
        return None
    if row["exporter"] not in codes.countries:
        problems.append(Problem(file, sheet, i, "exporter", row["exporter"], "a country of the case",
                                "unknown exporter" + did_you_mean(row["exporter"], codes.countries)))
    for p in codes.bad_products(_as_list(row["product"])):
        problems.append(Problem(file, sheet, i, "product", p, "a product or group of the case", "unknown product"
                                + did_you_mean(p, codes.products + list(codes.groups))))
    for d in codes.bad_countries(_as_list(row["destinations"] or "*")):
        problems.append(Problem(file, sheet, i, "destinations", d, "a country, bloc or *", "unknown destination"))
    for p in codes.bad_periods(row["periods"] or "*"):
        problems.append(Problem(file, sheet, i, "periods", p, "periods of the case or *", "unknown period"))
    kind = row["kind"]
    if row.get("segments"):
        problems.append(Problem(file, sheet, i, "segments", row["segments"], "blank (a control on flows)",
                                "an end-use denial moves demand to another node, which one kept model cannot "
                                "switch on and off; run it as a scenario instead"))
    if kind == "quota" and row["quota_t_per_yr"] is None and (row["quota_share"] is None
                                                              or row["reference_flow_t_per_yr"] is None):
        problems.append(Problem(file, sheet, i, "quota_t_per_yr", None, "quota_t_per_yr, or quota_share with "
                                "reference_flow_t_per_yr", "a quota needs its amount"))
    if kind == "licence" and (row["licence_approval_share"] is None or row["reference_flow_t_per_yr"] is None):
        problems.append(Problem(file, sheet, i, "licence_approval_share", row["licence_approval_share"],
                                "licence_approval_share and reference_flow_t_per_yr",
                                "a licence needs its share and reference flow"))
    if len(problems) > n0:
        return None
    for k in ("destinations", "exempt", "periods"):
        row[k] = ",".join(row[k]) if isinstance(row[k], list) else (row[k] or "")
    row["destinations"] = row["destinations"] or "*"
    row["periods"] = row["periods"] or "*"
    return Candidate(str(row["control"]), row["exporter"], [row], description=f"{kind} {row['control']}")


def _check_names(cands: list[Candidate], case: Case, file: str, problems: list[Problem]) -> None:
    """Candidate names unique and not the case's own controls; one exporter per product
    across the case's class-tracked controls and the candidates (two origins on one
    product are not tracked: model.lp.origin)."""
    seen: set[str] = set()
    own = set(case.tables["export_controls"]["control"])
    for c in cands:
        if c.name in seen:
            problems.append(Problem(file, "candidates", None, "control", c.name, "unique candidate names",
                                    "two candidates have the same name"))
        if c.name in own or any(r["control"] in own for r in c.rows):
            problems.append(Problem(file, "candidates", None, "control", c.name,
                                    "a name the case's export_controls sheet does not use", "name taken"))
        seen.add(c.name)


def _check_origins(cands: list[Candidate], case: Case, codes: _Codes, file: str, problems: list[Problem]) -> None:
    """One controller per product: every candidate is a class-tracked row of the kept
    model, and the model tracks one foreign origin per product (model.lp.origin), so a
    candidate may not control a product whose origin the case tracks for another country
    (a control or share cap of the case's), nor one another candidate's exporter controls."""
    from model.lp.data import build_model_data
    try:
        owner = dict(build_model_data(case).origin.controller)
    except InputError:  # the case's own problems are the case's (validation says them)
        return
    taken = {p: f"the case's origin tracking ({x})" for p, x in owner.items()}
    for c in cands:
        for r in c.rows:
            for p in expand(r["product"], codes.groups, codes.products):
                x = owner.setdefault(p, c.exporter)
                taken.setdefault(p, f"candidate {c.name} ({x})")
                if x != c.exporter:
                    problems.append(Problem(file, "candidates", None, "product", p,
                                            f"a product no other exporter controls: {taken[p]} does",
                                            f"candidate {c.name}: two exporters' controls on one product need "
                                            "two origin classes, which this model does not track"))
                    break


# --------------------------------------------------------------------------- rows

ROW_COLS = [c.name for c in SHEETS_BY_NAME["export_controls"].columns]


def plain_rows(cands: list[Candidate]) -> pd.DataFrame:
    """The candidates' export_controls rows as an ordinary case has them."""
    recs = [dict({c: None for c in ROW_COLS}, **r) for cand in cands for r in cand.rows]
    out = pd.DataFrame(recs, columns=ROW_COLS)
    out["source"] = "control search candidate"
    out[ROW] = float("nan")  # not a row of the workbook
    out["extraterritorial"] = out["extraterritorial"].fillna(False).astype(bool)
    for col in ("element", "exempt", "segments"):
        out[col] = out[col].fillna("")
    out["licence_cost_usd_per_t"] = out["licence_cost_usd_per_t"].fillna(0.0)
    return out


def union_rows(cands: list[Candidate]) -> pd.DataFrame:
    """The rows the kept model carries: a ban is a quota of 0 t/yr on the same flows, and a
    licence without its reference flow yet gets 1 t/yr (only its number changes later)."""
    out = plain_rows(cands)
    ban = out["kind"] == "ban"
    out.loc[ban, "kind"] = "quota"
    out.loc[ban, "quota_t_per_yr"] = 0.0
    lic = (out["kind"] == "licence") & out["reference_flow_t_per_yr"].isna()
    out.loc[lic, "reference_flow_t_per_yr"] = 1.0
    return out


def with_rows(case: Case, rows: pd.DataFrame) -> Case:
    """The case with rows appended to its export_controls sheet (typed as the sheet)."""
    from dataclasses import replace
    ctl = case.tables["export_controls"]
    add = rows.reindex(columns=ctl.columns)
    tables = dict(case.tables)
    tables["export_controls"] = pd.concat([ctl, add], ignore_index=True).astype(ctl.dtypes.to_dict(), errors="ignore")
    return replace(case, tables=tables)


# --------------------------------------------------------------------------- harm on a solved model

def harm_columns(built, col_pos: ColumnMap, h: highspy.Highs, harm: Harm) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """(shortfall columns of the named countries' demand, each column's objective
    coefficient = penalty x period weight, i.e. USD present value per t/yr; the demand rows)."""
    mods = {m.name: m for m in built.modules}
    dem = mods["demand"]
    keys = built.data.demand.reset_index(drop=True)
    idx = col_pos.positions(dem.vars)
    cost = np.asarray(h.getLp().col_cost_, float)[idx]
    pick = (keys["country"].isin(harm.countries) & keys["product"].isin(harm.products)).to_numpy(bool)
    return idx[pick], cost[pick], keys[pick].reset_index(drop=True)


def face_harm(h: highspy.Highs, idx: np.ndarray, coef: np.ndarray) -> tuple[float, float, np.ndarray | None, str]:
    """(least, most harm over every least-cost plan, the least-harm plan's values of the
    harm columns, status) from the vertex HiGHS just returned: on the optimal face
    (model.lp.canonical.primal_face) minimise, then maximise, sum coef x."""
    from model.lp.canonical import LPArrays, primal_face
    from model.lp.highs import quiet_highs
    if not len(idx):
        return 0.0, 0.0, np.zeros(0), "optimal"
    lp = LPArrays.from_highs(h)
    s = h.getSolution()
    lo, up, rl, ru = primal_face(lp, np.asarray(s.col_dual, float), np.asarray(s.row_dual, float))
    model = h.getLp()
    c = np.zeros(len(lp.c))
    c[idx] = coef
    model.col_cost_, model.col_lower_, model.col_upper_ = c, lo, up
    model.row_lower_, model.row_upper_ = rl, ru
    model.offset_ = 0.0
    g = quiet_highs()
    g.setOptionValue("threads", 1)
    g.passModel(model)
    g.run()
    if g.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return math.nan, math.nan, None, f"least-harm LP: {g.modelStatusToString(g.getModelStatus())}"
    x = np.asarray(g.getSolution().col_value, float)[idx]
    lo_h = float(coef @ x)
    g.changeColsCost(len(idx), idx.astype(np.int32), -coef)
    g.run()
    if g.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return lo_h, math.nan, x, f"most-harm LP: {g.modelStatusToString(g.getModelStatus())}"
    hi_h = float(coef @ np.asarray(g.getSolution().col_value, float)[idx])
    return lo_h, max(hi_h, lo_h), x, "optimal"


def lean_tables(built, sol) -> dict[str, pd.DataFrame]:
    """demand, flows, prices, periods and who_pays of a solve (what the search reads)."""
    from model.analysis.who_pays import who_pays_table
    mods = {m.name: m for m in built.modules}
    data = built.data
    tables: dict[str, pd.DataFrame] = {}
    tables.update(mods["demand"].extract(sol, data))
    tables.update(mods["trade"].extract(sol, data))
    tol = float(data.settings.get("price_tolerance_usd_per_t", 1e-3))
    tables.update(mods["balance"].extract(sol, data, tables, tol))
    tables["periods"] = data.periods.reset_index()[["period", "start_year", "duration_yr", "discount_factor",
                                                    "weight", "pv_factor"]]
    tables["who_pays"] = who_pays_table(tables)
    return tables


def evaluate(built, col_pos: ColumnMap, h: highspy.Highs, sol, harm: Harm, exporters: list[str]) -> dict:
    """One solved combination's record: harm (least and most over least-cost plans), its
    breakdown, shortfall, the exporters' revenue. Must run before anything else solves on
    `h` (the face is read from its vertex)."""
    idx, coef, keys = harm_columns(built, col_pos, h, harm)
    rec: dict = {"status": "optimal", "objective_usd": float(sol.objective)}
    if harm.kind == "penalty":
        lo_h, hi_h, x, status = face_harm(h, idx, coef)
        if x is None:  # the face LP failed: the least-norm plan's figure, said so
            x = np.asarray(sol.x, float)[idx]
            lo_h = hi_h = float(coef @ x)
        rec.update(harm_usd=lo_h, harm_max_usd=hi_h, face_status=status)
    tables = lean_tables(built, sol)
    per = tables["periods"].set_index("period")
    dem = tables["demand"]
    if harm.kind == "penalty":
        least_norm = str(sol.stats.get("canonical", "")).startswith("least-norm")
        rec["harm_least_norm_usd"] = float(coef @ np.asarray(sol.x, float)[idx]) if least_norm else math.nan
        b = keys.assign(harm_usd=coef * x, unserved_t=x * keys["period"].map(per["duration_yr"]).to_numpy(float))
    else:
        w = tables["who_pays"]
        w = w[w["country"].isin(harm.countries) & w["product"].isin(harm.products)]
        spend = w["consumer_spending_usd"] * w["period"].map(per["pv_factor"]).to_numpy(float)
        rec.update(harm_usd=float(spend.sum()), harm_max_usd=math.nan, face_status="prices",
                   harm_least_norm_usd=float(spend.sum()), prices_unique=bool(w["prices_unique"].all()))
        d = dem[dem["country"].isin(harm.countries) & dem["product"].isin(harm.products)]
        b = pd.concat([w.assign(harm_usd=spend)[["country", "period", "harm_usd"]],
                       d[["country", "period", "unserved_t"]]], ignore_index=True)
    rec["breakdown"] = b.groupby(["country", "period"], sort=False)[["harm_usd", "unserved_t"]].sum().reset_index(
        ).to_dict("list")
    named = dem[dem["country"].isin(harm.countries) & dem["product"].isin(harm.products)]
    d_t = (named["demand_t_per_yr"] * named["period"].map(per["duration_yr"]).to_numpy(float)).groupby(
        named["period"], sort=False).sum()
    rec["demand_t_by_period"] = {str(k): float(v) for k, v in d_t.items()}
    wp = tables["who_pays"]
    for x_ in exporters:
        e = wp[wp["country"] == x_]
        rec[f"revenue_{x_}_usd"] = float((e["export_revenue_usd"] * e["period"].map(per["pv_factor"])).sum())
        rec[f"revenue_{x_}_unique"] = bool(e.loc[e["exported_t"] > 1e-9, "prices_unique"].all())
    return rec


# --------------------------------------------------------------------------- workers

_STATE: dict = {}


def _init_worker(base: Case, union: pd.DataFrame, harm: Harm, exporters: list[str], parent: int | None = None) -> None:
    """A worker holds the spec; it builds the kept model on its first task."""
    import signal
    if parent is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        from model.runs import batch
        batch._PARENT = parent
        batch._die_with_parent()
    _STATE.clear()
    _STATE.update(base=base, union=union, harm=harm, exporters=exporters)


def _resolver():
    if "resolver" not in _STATE:
        from model.runs.resolve import Resolver
        _STATE["resolver"] = Resolver(_STATE["base"], controls=_STATE["union"])
    return _STATE["resolver"]


def solve_combination(task: tuple[tuple[str, ...], pd.DataFrame]) -> dict:
    """Solve the base case with these candidates' rows (union form) on the kept model;
    a combination the kept model cannot take is rebuilt (its reason recorded)."""
    names, rows, canonical = task
    t0 = time.perf_counter()
    base, harm, exporters = _STATE["base"], _STATE["harm"], _STATE["exporters"]
    try:
        res = _resolver()
        case = with_rows(base, rows)
        why, data = res.check(case)
        if why is None:
            res.apply(case, data)
            from model.lp.solve import run_highs
            # the least-norm plan (a QP, ~3 s on the base case) only where its figures are read:
            # the rows shown, and every solve of a spending harm (it is read off the plan)
            canonical = canonical or harm.kind == "spending"
            settings = dict(case.settings, canonical_plan=canonical and case.settings.get("canonical_plan", True))
            sol = run_highs(res.h, res.cols, res.rows, dict(res.stats, handoff_route="resolve"), settings)
            rec = (evaluate(res.built, res.col_pos, res.h, sol, harm, exporters) if sol.optimal
                   else {"status": sol.status, "message": sol.message})
            if names == () and sol.optimal:
                rec["references"] = _references(res, sol)
            rec["mode"], rec["plan"] = "resolve", "least-norm" if settings["canonical_plan"] else "vertex"
        else:
            rec = plain_evaluate(case, harm, exporters)
            rec["mode"], rec["rebuild_reason"], rec["plan"] = "rebuild", why, "least-norm"
    except InputError as exc:
        rec = {"status": "input_error", "message": str(exc)}
    except Exception as exc:  # one bad combination must not stop the search
        rec = {"status": "error", "message": f"{type(exc).__name__}: {exc}"}
    rec["controls"] = list(names)
    rec["seconds"] = time.perf_counter() - t0
    return rec


def _references(res, sol) -> dict[str, float]:
    """Per licence row of the kept model (a generated licence's period): what its
    controlled flows carry in this plan, counted as its export_quota row counts (t/yr)."""
    ctl = res.mod.get("controls")
    out = {}
    for (name, t), (vs, ws) in ctl.terms.items():
        out[name] = float(np.dot(sol.values(vs), ws)) if vs else 0.0
    return out


def plain_evaluate(case: Case, harm: Harm, exporters: list[str]) -> dict:
    """Build and solve the case as an ordinary run would (bans as bans, no other
    candidate's rows) and evaluate it the same way: the re-check of a result."""
    from model.case.validate import validate_case
    from model.lp.data import build_model_data
    from model.lp.solve import run_highs
    from model.runs.pipeline import build_and_load
    case = validate_case(case)
    built, h, cols, rows, stats = build_and_load(build_model_data(case), case.settings)
    sol = run_highs(h, cols, rows, stats, case.settings)
    if not sol.optimal:
        return {"status": sol.status, "message": sol.message}
    return evaluate(built, sol.col_pos, h, sol, harm, exporters)


class _Runner:
    """Tasks in this process (workers = 1) or in a process pool kept for the whole search
    (each worker builds the kept model once)."""

    def __init__(self, workers: int, init_args: tuple):
        self.pool = None
        if workers <= 1:
            _init_worker(*init_args)
            return
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        self.pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                        initargs=init_args + (os.getpid(),))

    def map(self, tasks: list) -> list[dict]:
        """Records in the order of the tasks; a worker that dies gives an error record."""
        if self.pool is None:
            return [solve_combination(t) for t in tasks]
        futures = [self.pool.submit(solve_combination, t) for t in tasks]
        out = []
        for t, f in zip(tasks, futures):
            try:
                out.append(f.result())
            except Exception as exc:  # the worker process died (memory, a signal)
                out.append({"status": "error", "message": f"worker failed: {type(exc).__name__}: {exc}",
                            "controls": list(t[0]), "seconds": 0.0})
        return out

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        _STATE.clear()


# --------------------------------------------------------------------------- the search

class SearchError(Exception):
    """The search cannot go on (the no-control run fails): said in one line, no folder."""


@dataclass
class SearchResult:
    folder: Path | None
    ranking: pd.DataFrame
    evaluations: list[dict]
    baseline: dict
    method: str
    seconds: float
    recheck: dict | None = None


def fill_references(cands: list[Candidate], refs: dict[str, float], why: str = "") -> None:
    """A generated licence's rows get their period's no-control flow as reference. The
    flows are read on the kept model; a licence without one is an error, never a 0 t/yr
    reference (which would turn the licence into a ban)."""
    missing = [r["control"] for c in cands if c.licence_share is not None for r in c.rows
               if r["control"] not in refs]
    if missing:
        raise SearchError(f"no reference flow for {len(missing)} licence row(s) ({', '.join(missing[:3])}"
                          f"{' ...' if len(missing) > 3 else ''}): the no-control run was rebuilt, not solved on "
                          f"the kept model{f' ({why})' if why else ''}")
    for c in cands:
        if c.licence_share is None:
            continue
        for r in c.rows:
            r["reference_flow_t_per_yr"] = refs[r["control"]]


def _task(cands: dict[str, Candidate], names: tuple[str, ...], canonical: bool = False
          ) -> tuple[tuple[str, ...], pd.DataFrame, bool]:
    rows = union_rows([cands[n] for n in names]) if names else pd.DataFrame(columns=ROW_COLS)
    return names, rows, canonical


def _score(rec: dict) -> tuple:
    """Sort key: the larger harm first (a property of the LP: the same whichever plan the
    solver returns); harms equal to 1e-9 relative (solver tolerance) tie, and ties go by
    the controls' names, so the order never depends on a figure that could differ
    between least-cost plans or on rounding noise."""
    if rec.get("status") != "optimal":
        return (1, 0.0, ",".join(rec["controls"]))
    return (0, -_tie_level(rec["harm_usd"]), ",".join(rec["controls"]))


def _tie_level(harm_usd: float) -> float:
    """The harm rounded to 9 significant digits (1e-9 relative) and to 1e-6 USD near 0."""
    if abs(harm_usd) < 1e-6:
        return 0.0
    return float(f"{harm_usd:.9g}")


def lost_revenue(rec: dict, base: dict, exporters: list[str]) -> float:
    return float(sum(base.get(f"revenue_{x}_usd", 0.0) - rec.get(f"revenue_{x}_usd", 0.0) for x in exporters))


def search(case: Case, spec: SearchSpec, workers: int = 1, k: int | None = None) -> SearchResult:
    """Exhaustive over the set for k = 1 (exact), greedy for k > 1 (a heuristic)."""
    t0 = time.perf_counter()
    k = spec.k if k is None else k
    cands = {c.name: c for c in spec.candidates}
    exporters = list(dict.fromkeys(c.exporter for c in spec.candidates))
    union = union_rows(spec.candidates)
    runner = _Runner(min(workers, max(1, len(cands))), (case, union, spec.harm, exporters))
    evaluations: list[dict] = []
    try:
        base = runner.map([_task(cands, (), canonical=True)])[0]
        if base.get("status") != "optimal":
            raise SearchError(f"the no-control run is not {'optimal' if base.get('status') != 'input_error' else 'valid'}"
                              f" ({base.get('status')}): {base.get('message')}")
        base["controls"], base["round"] = [], 0
        evaluations.append(base)
        fill_references(spec.candidates, base.pop("references", {}), base.get("rebuild_reason", ""))
        chosen: list[str] = []
        picks: list[dict] = []
        for rnd in range(1, k + 1):
            todo = [n for n in cands if n not in chosen]
            recs = runner.map([_task(cands, tuple(chosen + [n])) for n in todo])
            for r in recs:
                r["round"] = rnd
            evaluations += recs
            ok = [r for r in recs if r.get("status") == "optimal"]
            if not ok:
                break
            best = min(ok, key=_score)
            chosen.append(best["controls"][-1])
            picks.append(best)
        # the reported rows' plan figures (revenue, least-norm harm) from the least-norm plan
        first = [r for r in evaluations if r["round"] == 1 and r.get("status") == "optimal"]
        shown = picks if k > 1 else sorted(first, key=_score)[:spec.top]
        again = runner.map([_task(cands, tuple(r["controls"]), canonical=True) for r in shown])
        for old_rec, new_rec in zip(shown, again):
            new_rec["round"] = old_rec["round"]
            old_rec.clear()
            old_rec.update(new_rec)
    finally:
        runner.close()
    method = "exhaustive (exact over the candidate set)" if k == 1 else \
        f"greedy over {k} rounds (a heuristic: the best set of {k} may differ)"
    if k == 1:
        ranking = ranking_table([r for r in evaluations if r["round"] == 1], base, exporters, cands)
    else:
        ranking = ranking_table(picks, base, exporters, cands, greedy=True)
    return SearchResult(None, ranking, evaluations, base, method, time.perf_counter() - t0)


def ranking_table(recs: list[dict], base: dict, exporters: list[str], cands: dict[str, Candidate],
                  greedy: bool = False) -> pd.DataFrame:
    """One row per ranked result: rank, controls, harm (least and most over least-cost
    plans), harm over the no-control run, the exporters' lost revenue, the named
    countries' unserved tonnes and its share of demand by period."""
    order = recs if greedy else sorted(recs, key=_score)
    rows = []
    prev = base.get("harm_usd", 0.0)
    for i, r in enumerate(order, 1):
        row = {"rank": i, "controls": " + ".join(r["controls"]),
               "added_control": r["controls"][-1] if r["controls"] else "",
               "description": "; ".join(cands[n].description for n in r["controls"] if n in cands),
               "status": r.get("status")}
        if r.get("status") == "optimal":
            row.update(harm_usd=r["harm_usd"], harm_max_usd=r.get("harm_max_usd", math.nan),
                       harm_least_norm_usd=r.get("harm_least_norm_usd", math.nan),
                       harm_vs_no_control_usd=r["harm_usd"] - base["harm_usd"],
                       marginal_harm_usd=r["harm_usd"] - prev,
                       lost_export_revenue_usd=lost_revenue(r, base, exporters),
                       harm_prices_unique=bool(r.get("prices_unique", True)),
                       revenue_prices_unique=all(r.get(f"revenue_{x}_unique", True) for x in exporters),
                       plan=r.get("plan", ""), objective_usd=r["objective_usd"], solve_mode=r.get("mode", ""))
            b = pd.DataFrame(r["breakdown"])
            for (c, t), v in zip(zip(b["country"], b["period"]), b["harm_usd"]):
                if abs(v) > 1e-6:
                    row[f"harm_{c}_{t}_usd"] = float(v)
            short = b.groupby("period", sort=False)["unserved_t"].sum()
            for t, v in short.items():
                if v > 1e-9:
                    row[f"unserved_{t}_t"] = float(v)
                    d = r["demand_t_by_period"].get(str(t), 0.0)
                    row[f"unserved_{t}_share"] = float(v / d) if d > 0 else math.nan
            if greedy:
                prev = r["harm_usd"]
        else:
            row["message"] = r.get("message", "")
        rows.append(row)
    out = pd.DataFrame(rows)
    if not greedy and "marginal_harm_usd" in out:
        out = out.drop(columns="marginal_harm_usd")
    return out


def breakdown_table(result: SearchResult) -> pd.DataFrame:
    """Harm and unserved tonnes by country and period for every ranked row."""
    parts = []
    by = {tuple(r["controls"]): r for r in result.evaluations if r.get("status") == "optimal"}
    for rank, ctl in zip(result.ranking["rank"], result.ranking["controls"]):
        r = by.get(tuple(ctl.split(" + ")) if ctl else ())
        if r is not None:
            parts.append(pd.DataFrame(r["breakdown"]).assign(rank=rank, controls=ctl))
    if not parts:
        return pd.DataFrame(columns=["rank", "controls", "country", "period", "harm_usd", "unserved_t"])
    out = pd.concat(parts, ignore_index=True)
    return out[["rank", "controls", "country", "period", "harm_usd", "unserved_t"]]


def recheck(case: Case, spec: SearchSpec, result: SearchResult) -> dict:
    """Re-run the top result (k = 1: the first row; greedy: the final set, the last row)
    as an ordinary scenario (its rows appended as written: bans as bans; no other
    candidate in the model) and compare its harm."""
    greedy = "marginal_harm_usd" in result.ranking
    top = result.ranking.iloc[-1 if greedy else 0]
    names = top["controls"].split(" + ")
    cands = {c.name: c for c in spec.candidates}
    exporters = list(dict.fromkeys(c.exporter for c in spec.candidates))
    t0 = time.perf_counter()
    rec = plain_evaluate(with_rows(case, plain_rows([cands[n] for n in names])), spec.harm, exporters)
    got, want = rec.get("harm_usd", math.nan), float(top["harm_usd"])
    rel = abs(got - want) / max(1.0, abs(want))
    return {"controls": top["controls"], "harm_usd_search": want, "harm_usd_plain_run": got,
            "relative_difference": rel, "agrees": bool(rel <= 1e-6), "seconds": time.perf_counter() - t0,
            "lost_export_revenue_usd_plain_run": lost_revenue(rec, result.baseline, exporters)
            if rec.get("status") == "optimal" else math.nan}


# --------------------------------------------------------------------------- output

def write_search(result: SearchResult, case: Case, spec: SearchSpec, out: str | Path) -> Path:
    """The search folder, written under a temporary name and renamed when complete."""
    from model.reports.files import (
        claim_name,
        commit_run_dir,
        new_run_dir,
        package_versions,
        write_csv,
        write_xlsx,
    )
    tmp, final = new_run_dir(Path(out), case.name, "search")
    try:
        ranking = result.ranking
        write_csv(ranking, tmp / "ranking.csv")
        bd = breakdown_table(result)
        write_csv(bd, tmp / "breakdown.csv")
        ev = pd.DataFrame([{k: v for k, v in r.items() if k not in ("breakdown", "demand_t_by_period")}
                           | {"controls": " + ".join(r["controls"])} for r in result.evaluations])
        write_csv(ev, tmp / "evaluations.csv")
        rows = plain_rows(spec.candidates)  # as a plain run takes them, licences' references filled
        rows.insert(0, "candidate", [c.name for c in spec.candidates for _ in c.rows])
        write_csv(rows.drop(columns=[ROW]), tmp / "candidates.csv")
        write_xlsx(tmp / "ranking.xlsx", {"ranking": ranking, "breakdown": bd, "evaluations": ev},
                   f"Control search: {Path(case.path).name}")
        shutil.copyfile(spec.path, tmp / ("spec" + Path(spec.path).suffix))
        manifest = {"kind": "search", "case": case.path, "input_sha256": case.input_hash, "spec": spec.path,
                    "harm": {"kind": spec.harm.kind, "countries": spec.harm.countries,
                             "products": spec.harm.products},
                    "method": result.method, "candidates": len(spec.candidates),
                    "solves": len(result.evaluations), "seconds": round(result.seconds, 3),
                    "recheck": result.recheck, "package_versions": package_versions(),
                    "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
        final = claim_name(final)
        commit_run_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def summary_lines(result: SearchResult, spec: SearchSpec, top: int) -> list[str]:
    """What the console says: the method, the top rows, the re-check."""
    r = result.ranking
    h = spec.harm
    what = "unserved-demand penalty value" if h.kind == "penalty" else "spending"
    lines = [(f"control search: {len(spec.candidates)} candidates, {len(result.evaluations)} solves in "
              f"{result.seconds:.1f} s; harm = {what} of {h.named} (USD PV); method: {result.method}")]
    for row in r.head(top).itertuples():
        if row.status != "optimal":
            lines.append(f"  {row.rank}. {row.controls}: {row.status}")
            continue
        adds = (f" (this round adds {row.marginal_harm_usd / 1e6:,.1f} M)" if hasattr(row, "marginal_harm_usd")
                else "")
        if math.isnan(row.harm_max_usd):  # spending: read at the model prices, no range
            spread = "" if row.harm_prices_unique else " (prices not unique: one valid value)"
        else:
            spread = f" (up to {row.harm_max_usd / 1e6:,.1f} M over least-cost plans)"
        lines.append(f"  {row.rank}. {row.controls}: harm {row.harm_usd / 1e6:,.1f} M USD{adds}{spread}, "
                     f"controller's lost export revenue {row.lost_export_revenue_usd / 1e6:,.1f} M USD")
    if result.recheck:
        c = result.recheck
        lines.append(f"  re-check: a plain run of {c['controls']} gives harm {c['harm_usd_plain_run'] / 1e6:,.3f} M USD "
                     f"(search {c['harm_usd_search'] / 1e6:,.3f} M; relative difference {c['relative_difference']:.1e}"
                     f": {'agrees' if c['agrees'] else 'DISAGREES'})")
    if result.folder is not None:
        lines.append(f"  written: {result.folder}")
    return lines


def run_search(spec_path: str, workbook: str | None = None, default_case: str | None = None, workers: int = 1,
               k: int | None = None, out: str | Path = "outputs", check: bool = True) -> SearchResult:
    """Read, search, re-check the winner with a plain run, write the folder, say it."""
    from model.case.validate import validate_case
    from model.case.workbook import read_case
    from model.reports.console import say
    raw = read_raw(spec_path)
    wb = workbook or (str(Path(spec_path).parent / raw["workbook"]) if raw.get("workbook") else default_case)
    case = validate_case(read_case(wb))
    spec = read_spec(spec_path, case, k)
    if k is not None and not 1 <= k <= len(spec.candidates):
        raise InputError([Problem(Path(spec_path).name, "", None, "k", k,
                                  f"1 to the number of candidates ({len(spec.candidates)})",
                                  "--k: bad number of controls")])
    result = search(case, spec, workers, k)
    if check and not result.ranking.empty and result.ranking.iloc[0]["status"] == "optimal":
        result.recheck = recheck(case, spec, result)
    result.folder = write_search(result, case, spec, out)
    say(summary_lines(result, spec, spec.top))
    return result
