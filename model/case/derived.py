"""Facts derived from a case's tables that both validation (`model.case.validate`) and
model data (`model.lp.data`, `model.lp.modules.expansion`) need: element content of
every product, which facility runs in which period, and when an expansion build can
serve. Pure functions of tables, so validation checks exactly what the LP will use.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NO_ELEMENT = ("", "mix")
EPS = 1e-9  # years: period starts are floats (2025.25 is a quarter in)

BUILD_COLS = ["option", "build_period", "build_start", "online_period", "online_year", "period"]


def content_coefficients(products: pd.DataFrame, recipes: pd.DataFrame) -> pd.DataFrame:
    """content_table of the products' element and unit and the recipes' lines."""
    return content_table(products[["element", "unit"]], recipes[["process", "product", "coefficient"]])


def content_table(products: pd.DataFrame, recipes: pd.DataFrame) -> pd.DataFrame:
    """Tonnes of each element (as REO) embodied in one unit of each product.

    A single-element oxide (unit t_REO) holds one tonne of its element's REO; another
    single-element product made by a single-output recipe counts that element in its
    inputs (oxide -> metal carries 1.17 t REO per t metal); one made by no such recipe
    holds one unit of its element. Other products made by single-output recipes sum
    their inputs' content (a magnet); a mix consumed by a process whose outputs are all
    known (a concentrate separated into oxides) holds what those outputs hold. Where
    alternative recipes differ, the largest content per element is kept (so quotas and
    cover are never understated). Products without rare earths hold zero.
    """
    elems = sorted({e for e in products["element"] if e not in NO_ELEMENT})
    index = list(products.index)
    known: dict[str, np.ndarray] = {}
    element_of = products["element"].to_dict()
    # Each process's recipe lines as (product, coefficient), processes in name order and
    # lines in sheet order (as a groupby gives them): plain lists, since the loops below
    # look them up again and again (as DataFrame slices that was 30 ms of the teaching case)
    by_proc: dict[str, list[tuple[str, float]]] = {}
    for k, q, c in sorted(zip(recipes["process"].tolist(), recipes["product"].tolist(),
                              recipes["coefficient"].tolist()), key=lambda line: line[0]):
        by_proc.setdefault(k, []).append((q, c))
    outputs = {k: [(q, c) for q, c in g if c > 0] for k, g in by_proc.items()}
    inputs = {k: [(q, c) for q, c in g if c < 0] for k, g in by_proc.items()}
    single_out = {k: o[0][0] for k, o in outputs.items() if len(o) == 1}
    made_by: dict[str, list[str]] = {}
    for k, p in single_out.items():
        made_by.setdefault(p, []).append(k)
    unit = {e: np.eye(len(elems))[i] for i, e in enumerate(elems)}
    zero = np.zeros(len(elems))
    def mined_only(p: str) -> bool:
        return all(not inputs[k] for k in made_by.get(p, []))

    unit_of = products["unit"].to_dict()
    for p in index:
        e = element_of[p]
        if e == "" and (p not in made_by or mined_only(p)):
            known[p] = zero
        elif e not in NO_ELEMENT and (p not in made_by or mined_only(p) or unit_of[p] == "t_REO"):
            known[p] = unit[e]  # a tonne of an element's oxide is a tonne of its REO
    for _ in range(len(index) + 1):
        changed = False
        for p in index:
            if p in known:
                continue
            candidates = []
            for k in made_by.get(p, []):
                ins = inputs[k]
                if not ins:
                    continue  # a mine's mix output: its content comes from downstream use
                if all(q in known for q, _ in ins):
                    a_out = float(outputs[k][0][1])
                    total = sum(-c * known[q] for q, c in ins) / a_out
                    e = element_of[p]
                    if e not in NO_ELEMENT:
                        total = total * unit[e]
                    candidates.append(np.asarray(total, dtype=float) + zero)
            if not candidates:
                # Upstream: a mix consumed by a process whose outputs are all known.
                for k in by_proc:
                    ins = inputs[k]
                    if p not in {q for q, _ in ins}:
                        continue
                    others = [q for q, _ in ins if q != p]
                    outs = outputs[k]
                    if all(q in known for q in others) and all(q in known for q, _ in outs):
                        a_in = -float(next(c for q, c in ins if q == p))
                        total = sum(c * known[q] for q, c in outs)
                        total = total - sum(-c * known[q] for q, c in ins if q != p)
                        candidates.append(np.maximum(np.asarray(total, dtype=float) / a_in, 0.0))
            if candidates:
                known[p] = np.max(np.vstack(candidates), axis=0)
                changed = True
        if not changed:
            break
    rows = [known.get(p, zero) for p in index]
    return pd.DataFrame(rows, index=pd.Index(index, name="product"), columns=elems) if elems else \
        pd.DataFrame(index=pd.Index(index, name="product"))


def active_pairs(fac: pd.DataFrame, periods: pd.DataFrame) -> pd.DataFrame:
    """(facility, period) pairs where the facility runs: first_year <= start < last_year + 1."""
    pairs = fac.reset_index()[["facility", "first_year", "last_year", "capacity_t_per_yr"]].merge(
        periods.reset_index()[["period", "start_year"]], how="cross")
    for col in ("first_year", "last_year", "capacity_t_per_yr"):
        pairs[col] = pd.to_numeric(pairs[col]).astype(float)
    ok = (pairs["first_year"].isna() | (pairs["start_year"] >= pairs["first_year"] - 1e-9)) & (
        pairs["last_year"].isna() | (pairs["start_year"] < pairs["last_year"] + 1 - 1e-9))
    ok &= pairs["capacity_t_per_yr"] > 0
    return pairs.loc[ok, ["facility", "period"]]


def build_schedule(options: pd.DataFrame, periods: pd.DataFrame) -> pd.DataFrame:
    """One row per (option, build period, in-service period): the sparse pattern of the
    expansion LP. options: option, lead_time_yr, lifetime_yr, earliest_year (NaN: any);
    periods: period, start_year in time order."""
    if options.empty or periods.empty:
        return pd.DataFrame(columns=BUILD_COLS)
    per = periods[["period", "start_year"]].reset_index(drop=True)
    starts = per["start_year"].to_numpy(float)
    opts = options[["option", "lead_time_yr", "lifetime_yr", "earliest_year"]]
    b = opts.merge(per.rename(columns={"period": "build_period", "start_year": "build_start"}), how="cross")
    early = pd.to_numeric(b["earliest_year"], errors="coerce")
    b = b[early.isna() | (b["build_start"] >= early - EPS)]
    lead = pd.to_numeric(b["lead_time_yr"], errors="coerce").fillna(0.0).to_numpy(float)
    pos = np.searchsorted(starts, b["build_start"].to_numpy(float) + lead - EPS, side="left")
    b = b.assign(pos=pos)[pos < len(starts)]
    b["online_period"] = per["period"].to_numpy()[b["pos"]]
    b["online_year"] = starts[b["pos"]]
    s = b.merge(per, how="cross")
    life = s["lifetime_yr"].astype(float)
    s = s[(s["start_year"] >= s["online_year"] - EPS) & (s["start_year"] < s["online_year"] + life - EPS)]
    return s[BUILD_COLS].reset_index(drop=True)


def downstream_closure(products: set[str], recipes: pd.DataFrame) -> set[str]:
    """Products made by processes that consume any product of the set, transitively."""
    ins = recipes[recipes["coefficient"] < 0]
    outs = recipes[recipes["coefficient"] > 0]
    closed = set(products)
    while True:
        procs = set(ins.loc[ins["product"].isin(closed), "process"])
        more = set(outs.loc[outs["process"].isin(procs), "product"]) - closed
        if not more:
            return closed
        closed |= more
