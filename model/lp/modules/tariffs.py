"""Import duties: ad valorem on the reference price plus specific per tonne, by importer,
exporter, product and period (country, bloc or * each). Rows that match one flow add
up, as duty layers do (MFN + Section 301, say). A row naming one exporter country
charges material of that origin wherever it is shipped from, where model.lp.origin tracks
that origin on the product; otherwise the shipping country is the exporter. Duties are transfers: they steer the
plan (they are in the objective) but never count as resource cost."""

from __future__ import annotations

import numpy as np
import pandas as pd

from model.case.codes import expand, periods_in
from model.lp.core import TRANSFER, CostTerm, Registry, Solution


def duty_per_t(flows: pd.DataFrame, tariffs: pd.DataFrame, data) -> np.ndarray:
    """Total duty in USD/t on each flow row (from_country, to_country, product, period)."""
    countries = list(data.countries.index)
    products = list(data.products.index)
    price = flows["product"].map(data.products["reference_price_usd_per_t"]).fillna(0.0).to_numpy(float)
    duty = np.zeros(len(flows))
    cls = flows["cls"] if "cls" in flows else pd.Series("", index=flows.index)
    for r in tariffs.to_dict("records"):
        x = r["exporter"]
        by_shipper = flows["from_country"].isin(expand(x, data.blocs, countries))
        if x in countries:
            # Where the exporter's origin is tracked, the duty follows origin, not the ship.
            tracked = flows["product"].map(data.origin.controller) == x
            by_origin = np.where(tracked, cls == x, by_shipper)
        else:
            by_origin = by_shipper.to_numpy(bool)
        importers = expand(r["importer"], data.blocs, countries)
        inside = flows["from_country"].isin(importers) if r["importer"] in data.blocs else False
        # Trade between two members of an importing bloc crosses no border of the bloc.
        mask = (flows["to_country"].isin(importers) & ~inside
                & by_origin
                & flows["product"].isin(expand(r["product"], data.groups, products))
                & flows["period"].isin(periods_in(r["periods"], data.period_list))).to_numpy(bool)
        adv = 0.0 if r["ad_valorem_pct"] != r["ad_valorem_pct"] else r["ad_valorem_pct"]
        spec = 0.0 if r["specific_usd_per_t"] != r["specific_usd_per_t"] else r["specific_usd_per_t"]
        duty[mask] += adv / 100.0 * price[mask] + spec
    return duty


class Tariffs:
    """No variables or constraints: a duty cost term on the trade flows it covers."""

    name = "tariffs"

    def declare(self, m, data, reg: Registry) -> None:
        flows, fvars = reg.flow_table()
        duty = duty_per_t(flows, data.tables["tariffs"], data) if len(flows) else np.zeros(0)
        hit = np.flatnonzero(duty > 0)
        self.keys = flows.iloc[hit].reset_index(drop=True).assign(duty_usd_per_t=duty[hit])
        self.vars = fvars.take(hit)
        reg.add_cost(CostTerm("tariffs", TRANSFER, self.keys["period"].tolist(), duty[hit], self.vars))

    def extract(self, sol: Solution, data) -> dict[str, pd.DataFrame]:
        if not self.vars:
            return {}
        out = self.keys.rename(columns={"from_country": "exporter", "to_country": "importer",
                                        "cls": "origin_class"})
        out["flow_t_per_yr"] = sol.values(self.vars)
        out["revenue_usd"] = (out["flow_t_per_yr"] * out["duty_usd_per_t"]
                              * out["period"].map(data.periods["duration_yr"]).to_numpy())
        return {"tariffs": out}
