"""Compare a scenario's result tables with the base case's (reads tables only)."""

from __future__ import annotations

import pandas as pd


def headline(tables: dict[str, pd.DataFrame]) -> dict[str, float]:
    """Resource cost, transfers and penalty value (present value), unserved tonnes."""
    costs = tables["costs"]
    by = costs.groupby("category")["pv_usd"].sum()
    out = {"resource cost (PV, USD)": float(by.get("resource", 0.0)),
           "transfers (PV, USD)": float(by.get("transfer", 0.0)),
           "unserved demand penalty value (PV, USD)": float(by.get("penalty", 0.0)),
           "unserved demand (t)": float(tables["shortfall"]["unserved_t"].sum())}
    for comp, v in costs.groupby("component")["pv_usd"].sum().items():
        out[f"{comp} (PV, USD)"] = float(v)
    return out


def versus_base(base: dict[str, pd.DataFrame], scen: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per figure: base, scenario, change. Headline figures first, then unserved
    tonnes by country and product wherever either run has some."""
    b, s = headline(base), headline(scen)
    rows = [(k, b.get(k, 0.0), s.get(k, 0.0)) for k in dict.fromkeys(list(b) + list(s))]
    key = ["country", "product"]
    sb = base["shortfall"].groupby(key)["unserved_t"].sum()
    ss = scen["shortfall"].groupby(key)["unserved_t"].sum()
    both = pd.concat([sb.rename("base"), ss.rename("scenario")], axis=1).fillna(0.0)
    for (c, p), r in both.iterrows():
        rows.append((f"unserved {p} in {c} (t)", float(r["base"]), float(r["scenario"])))
    out = pd.DataFrame(rows, columns=["figure", "base", "scenario"])
    out["change"] = out["scenario"] - out["base"]
    return out
