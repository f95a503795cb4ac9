"""Compare a scenario's result tables with a reference run's (its parent, the base case,
or any other): reads tables only."""

from __future__ import annotations

import pandas as pd

HEADLINE = ("resource cost (PV, USD)", "transfers (PV, USD)", "unserved demand penalty value (PV, USD)",
            "unserved demand (t)")


def headline(tables: dict[str, pd.DataFrame]) -> dict[str, float]:
    """Resource cost, transfers and penalty value (present value), unserved tonnes."""
    costs = tables["costs"]
    by = costs.groupby("category")["pv_usd"].sum()
    out = {HEADLINE[0]: float(by.get("resource", 0.0)),
           HEADLINE[1]: float(by.get("transfer", 0.0)),
           HEADLINE[2]: float(by.get("penalty", 0.0)),
           HEADLINE[3]: float(tables["shortfall"]["unserved_t"].sum())}
    for comp, v in costs.groupby("component")["pv_usd"].sum().items():
        out[f"{comp} (PV, USD)"] = float(v)
    return out


def _unserved(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    s = tables["shortfall"]
    return s.set_index(["country", "product", "segment", "period"])[["unserved_t", "demand_t"]]


def versus(reference: dict[str, pd.DataFrame], scen: dict[str, pd.DataFrame], name: str = "base case"
           ) -> pd.DataFrame:
    """One row per figure: the reference run's value, the scenario's, the change (and
    `reference` naming the run compared with). The headline four first, then cost components by size of change,
    then unserved tonnes by country, product, segment and period wherever either run has
    some (every one, largest change first), each with its share of that period's demand."""
    b, s = headline(reference), headline(scen)
    head = [(k, b.get(k, 0.0), s.get(k, 0.0), "", "") for k in HEADLINE]
    comps = [(k, b.get(k, 0.0), s.get(k, 0.0), "", "") for k in dict.fromkeys(list(b) + list(s)) if k not in HEADLINE]
    ub, us = _unserved(reference), _unserved(scen)
    both = pd.concat([ub["unserved_t"].rename("ref"), us["unserved_t"].rename("scen")], axis=1).fillna(0.0)
    demand = us["demand_t"].combine_first(ub["demand_t"])
    short = [(f"unserved {p} in {c} ({seg}), {per} (t)", float(r["ref"]), float(r["scen"]),
              float(r["ref"] / demand[(c, p, seg, per)]), float(r["scen"] / demand[(c, p, seg, per)]))
             for (c, p, seg, per), r in both.iterrows()]
    cols = ["figure", "reference_value", "scenario_value", "reference_share_of_period_demand",
            "scenario_share_of_period_demand"]

    def by_change(rows: list) -> list:
        return sorted(rows, key=lambda r: (-abs(r[2] - r[1]), r[0]))
    out = pd.DataFrame(head + by_change(comps) + by_change(short), columns=cols)
    out["change"] = out["scenario_value"] - out["reference_value"]
    out.insert(0, "reference", name)
    for c in cols[3:]:
        out[c] = pd.to_numeric(out[c].replace("", float("nan")))
    return out[["reference", "figure", "reference_value", "scenario_value", "change"] + cols[3:]]


def versus_base(base: dict[str, pd.DataFrame], scen: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The scenario against the base case."""
    return versus(base, scen, "base case")
