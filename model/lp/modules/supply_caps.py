"""Supply caps: production quotas, and diversification caps on a bloc's use.

A row with cap_t_per_yr is a production quota on the countries it names (a country, a
bloc or `*`, capped jointly) in each covered period:
    stage only:    sum of activity of processes of that stage            <= cap
    product only:  sum of activity x output coefficient of the product   <= cap
    both:          the product's output from processes of that stage     <= cap
over every registered activity (existing facilities and new capacity alike).

A row with max_share s is a diversification cap (the EU Critical Raw Materials Act's
65 %) on product p (or a group, summed) and bloc B. Definitions, per covered period,
in t/yr (origin classes of a product are summed in the use; the supplier is the shipping
country, except that a row naming one supplier outside B tracks that supplier's origin
class (model.lp.origin), so its material re-exported through a third country still counts
as its supply):
    use of B      = sum_{c in B} production of p in c
                    + imports of p into B's members from outside B
                    - exports of p from B's members to outside B
    supply of k   = imports of p from k into B's members            (k outside B)
                  = production of p in k - exports of p from k to outside B  (k in B)
where production is gross output (activity x positive recipe coefficient). Supplies
add up to the use. Exports leaving B are not B's use: counting them would let a
member's sales abroad loosen the cap on everyone else. For every supplier k the row's
country column names (`*`: every supplier; a bloc: each member separately):
    supply of k <= s x use of B.
Suppliers are sparse: countries that produce p inside B or have a lane into B.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyomo.core as pyo
from pyomo.core.expr.numeric_expr import LinearExpression

from model.case.codes import expand, periods_in
from model.lp.core import Registry, Solution
from model.lp.sensitivity import limit_values

TERM_COLS = ["key", "src", "i", "coef"]  # src: 'a' activity, 'f' flow; i: position in the registry list


def output_coefficients(recipes: pd.DataFrame, products: list[str]) -> pd.Series:
    """Process -> tonnes of the products made per unit of activity (outputs only)."""
    out = recipes[(recipes["coefficient"] > 0) & recipes["product"].isin(products)]
    return out.groupby("process")["coefficient"].sum()


def _terms(key: pd.Series | list, src: str, idx, coef) -> pd.DataFrame:
    return pd.DataFrame({"key": list(key), "src": src, "i": np.asarray(idx, int),
                         "coef": np.asarray(coef, float)})


class SupplyCaps:
    """Sets SUPPLY_QUOTAS (cap, period), BLOC_USES (cap, period) and SUPPLIER_SHARES
    (cap, supplier, period); variable bloc_use_t_per_yr (free); constraints
    production_quota, bloc_use_definition and supplier_share_cap."""

    name = "supply_caps"

    def declare(self, m: pyo.ConcreteModel, data, reg: Registry) -> None:
        caps = data.tables["supply_caps"]
        acts, self.avars = reg.activity_table()
        flows, self.fvars = reg.flow_table()
        acts = acts.reset_index(drop=True)
        flows = flows.reset_index(drop=True)
        self.caps = caps.set_index("cap", drop=False)
        countries = list(data.countries.index)
        plist = list(data.products.index)
        stage_of = data.tables["processes"].set_index("process")["stage"]
        quota, use, share = [], [], []
        for r in caps.to_dict("records"):
            pers = periods_in(r["periods"], data.period_list)
            prods = expand(r["product"], data.groups, plist) if r["product"] else []
            if pd.notna(r["cap_t_per_yr"]):
                quota.append(self._quota_terms(r, acts, pers, prods, countries, data, stage_of))
            else:
                u, s = self._share_terms(r, acts, flows, pers, prods, countries, data)
                use.append(u)
                share.append(s)
        empty = pd.DataFrame(columns=TERM_COLS)
        self.quota = _rows(pd.concat(quota, ignore_index=True) if quota else empty)
        self.share = _rows(pd.concat(share, ignore_index=True) if share else empty)
        # A bloc's use is needed only where some supplier row refers to it (and then it
        # has terms: every supply term is also a use term).
        needed = {(c, t) for c, _, t in self.share["key"]}
        use_terms = pd.concat(use, ignore_index=True) if use else empty
        self.use = _rows(use_terms[[k in needed for k in use_terms["key"]]] if len(use_terms) else empty)

        self._declare_quotas(m)
        self._declare_shares(m)

    def _quota_terms(self, r: dict, acts: pd.DataFrame, pers: list[str], prods: list[str],
                     countries: list[str], data, stage_of: pd.Series) -> pd.DataFrame:
        where = expand(r["country"], data.blocs, countries)
        a = acts[acts["country"].isin(where) & acts["period"].isin(pers)]
        if r["stage"]:
            a = a[a["process"].map(stage_of) == r["stage"]]
        coef = pd.Series(1.0, index=a.index)
        if prods:
            coef = a["process"].map(output_coefficients(data.recipes, prods))
            a, coef = a[coef.notna()], coef[coef.notna()]
        return _terms([(r["cap"], t) for t in a["period"]], "a", a.index, coef)

    def _share_terms(self, r: dict, acts: pd.DataFrame, flows: pd.DataFrame, pers: list[str],
                     prods: list[str], countries: list[str], data) -> tuple[pd.DataFrame, pd.DataFrame]:
        bloc = set(expand(r["bloc"], data.blocs, countries))
        capped = set(expand(r["country"], data.blocs, countries))
        cap = r["cap"]
        out = output_coefficients(data.recipes, prods)
        a = acts[acts["period"].isin(pers) & acts["process"].isin(out.index) & acts["country"].isin(bloc)]
        a_coef = a["process"].map(out).to_numpy(float)
        f = flows[flows["product"].isin(prods) & flows["period"].isin(pers)]
        to_b, from_b = f["to_country"].isin(bloc), f["from_country"].isin(bloc)
        imp, exp = f[to_b & ~from_b], f[from_b & ~to_b]
        use = pd.concat([
            _terms([(cap, t) for t in a["period"]], "a", a.index, a_coef),
            _terms([(cap, t) for t in imp["period"]], "f", imp.index, np.ones(len(imp))),
            _terms([(cap, t) for t in exp["period"]], "f", exp.index, -np.ones(len(exp)))])
        a_in = a["country"].isin(capped).to_numpy()
        e_in = exp["from_country"].isin(capped)
        i_in = imp["from_country"].isin(capped)
        k = r["country"]
        if k in countries and k not in bloc and prods and all(data.origin.controller.get(p) == k for p in prods):
            # The supplier's origin is tracked (model.lp.origin): its supply is every
            # k-origin tonne entering the bloc, whoever ships it.
            i_in = imp["cls"] == k
            imp = imp.assign(from_country=np.where(i_in, k, imp["from_country"]))
        supply = pd.concat([
            _terms([(cap, k, t) for k, t in zip(a.loc[a_in, "country"], a.loc[a_in, "period"])], "a",
                   a.index[a_in], a_coef[a_in]),
            _terms([(cap, k, t) for k, t in zip(exp.loc[e_in, "from_country"], exp.loc[e_in, "period"])], "f",
                   exp.index[e_in], -np.ones(int(e_in.sum()))),
            _terms([(cap, k, t) for k, t in zip(imp.loc[i_in, "from_country"], imp.loc[i_in, "period"])], "f",
                   imp.index[i_in], np.ones(int(i_in.sum())))])
        # A supplier row needs something it supplies (a member's exports alone cap nothing).
        pos = set(supply.loc[supply["coef"] > 0, "key"])
        supply = supply[[k in pos for k in supply["key"]]]
        return use, supply

    def _vars(self, terms: pd.DataFrame) -> list:
        return [self.avars[i] if s == "a" else self.fvars[i] for s, i in zip(terms["src"], terms["i"])]

    def _declare_quotas(self, m: pyo.ConcreteModel) -> None:
        keys = _keys(self.quota)
        limit = self.caps["cap_t_per_yr"].to_dict()
        m.SUPPLY_QUOTAS = pyo.Set(initialize=keys, dimen=2, ordered=True)
        rows = {k: (list(g["coef"]), self._vars(g)) for k, g in self.quota.groupby("key", sort=False)} \
            if keys else {}

        def production_quota(m, cap, t):
            """sum over covered activities of activity (x output coefficient of the product)
            <= cap_t_per_yr."""
            c, v = rows[cap, t]
            return LinearExpression(constant=0.0, linear_coefs=c, linear_vars=v) <= float(limit[cap])
        m.production_quota = pyo.Constraint(m.SUPPLY_QUOTAS, rule=production_quota)
        self.quota_keys = keys
        self.quota_cons = list(m.production_quota.values())

    def _declare_shares(self, m: pyo.ConcreteModel) -> None:
        use_keys = _keys(self.use)
        share_keys = _keys(self.share)
        m.BLOC_USES = pyo.Set(initialize=use_keys, dimen=2, ordered=True)
        m.SUPPLIER_SHARES = pyo.Set(initialize=share_keys, dimen=3, ordered=True)
        m.bloc_use_t_per_yr = pyo.Var(m.BLOC_USES, within=pyo.Reals)
        self.use_vars = list(m.bloc_use_t_per_yr.values())
        use_var = dict(zip(use_keys, self.use_vars))
        use_rows = {k: (list(g["coef"]), self._vars(g)) for k, g in self.use.groupby("key", sort=False)} \
            if use_keys else {}
        share_rows = {k: (list(g["coef"]), self._vars(g)) for k, g in self.share.groupby("key", sort=False)} \
            if share_keys else {}
        s = self.caps["max_share"].to_dict()

        def bloc_use_definition(m, cap, t):
            """bloc_use[cap,t] - (production in B + imports into B from outside B
            - exports from B to outside B) == 0."""
            c, v = use_rows.get((cap, t), ([], []))
            return LinearExpression(constant=0.0, linear_coefs=[1.0] + [-x for x in c],
                                    linear_vars=[use_var[cap, t]] + v) == 0.0
        m.bloc_use_definition = pyo.Constraint(m.BLOC_USES, rule=bloc_use_definition)

        def supplier_share_cap(m, cap, k, t):
            """supply of k to B - max_share x bloc_use[cap,t] <= 0."""
            c, v = share_rows[cap, k, t]
            return LinearExpression(constant=0.0, linear_coefs=c + [-float(s[cap])],
                                    linear_vars=v + [use_var[cap, t]]) <= 0.0
        m.supplier_share_cap = pyo.Constraint(m.SUPPLIER_SHARES, rule=supplier_share_cap)
        self.share_keys = share_keys
        self.share_cons = list(m.supplier_share_cap.values())

    def _lhs(self, sol: Solution, terms: pd.DataFrame) -> pd.Series:
        x = sol.values(self._vars(terms))
        return pd.Series(x * terms["coef"].to_numpy(float)).groupby(terms["key"].to_numpy(), sort=False).sum()

    def extract(self, sol: Solution, data) -> dict[str, pd.DataFrame]:
        w = data.periods["weight"]
        caps = self.caps
        parts = []
        if self.quota_keys:
            q = pd.DataFrame(self.quota_keys, columns=["cap", "period"])
            q["kind"] = "quota"
            q["supplier"] = ""
            q["value_t_per_yr"] = self._lhs(sol, self.quota).reindex(self.quota_keys).to_numpy(float)
            q["limit_t_per_yr"] = q["cap"].map(caps["cap_t_per_yr"]).to_numpy(float)
            q["bloc_use_t_per_yr"] = np.nan
            q["dual"], q["dual_less"] = limit_values(sol, self.quota_cons, q["period"].map(w).to_numpy(float))
            parts.append(q)
        if self.share_keys:
            sh = pd.DataFrame(self.share_keys, columns=["cap", "supplier", "period"])
            sh["kind"] = "share"
            use = dict(zip(_keys(self.use), sol.values(self.use_vars)))
            sh["value_t_per_yr"] = self._lhs(sol, self.share).reindex(self.share_keys).to_numpy(float)
            sh["bloc_use_t_per_yr"] = [use[c, t] for c, t in zip(sh["cap"], sh["period"])]
            sh["limit_t_per_yr"] = sh["cap"].map(caps["max_share"]).to_numpy(float) * sh["bloc_use_t_per_yr"]
            sh["dual"], sh["dual_less"] = limit_values(sol, self.share_cons, sh["period"].map(w).to_numpy(float))
            parts.append(sh)
        cols = ["cap", "kind", "country", "stage", "product", "bloc", "max_share", "supplier", "period",
                "value_t_per_yr", "limit_t_per_yr", "slack_t_per_yr", "bloc_use_t_per_yr", "share",
                "binding", "shadow_value_usd_per_t", "shadow_value_one_less_usd_per_t"]
        if not parts:
            return {"supply_caps": pd.DataFrame(columns=cols)}
        out = pd.concat(parts, ignore_index=True)
        out = out.join(caps[["country", "stage", "product", "bloc", "max_share"]], on="cap")
        for col in ("value_t_per_yr", "limit_t_per_yr", "bloc_use_t_per_yr"):
            out[col] = out[col].mask(out[col].abs() < 1e-9, 0.0)  # no -0.0 in reports
        out["slack_t_per_yr"] = out["limit_t_per_yr"] - out["value_t_per_yr"]
        u = out["bloc_use_t_per_yr"]
        out["share"] = np.where(u.abs() > 1e-9, out["value_t_per_yr"] / u.where(u.abs() > 1e-9, 1.0), np.nan)
        # What one more (one less) t/yr of cap or of a supplier's allowance saves (costs),
        # USD per t, measured by moving the limit (model.lp.sensitivity).
        out["shadow_value_usd_per_t"] = out["dual"] + 0.0
        out["shadow_value_one_less_usd_per_t"] = out["dual_less"] + 0.0
        # Binding: at its limit with something at stake (a 0 <= 0 row of a supplier that
        # ships nothing to a bloc that uses nothing is not binding).
        tol = 1e-6 * np.maximum(1.0, out["limit_t_per_yr"].abs())
        live = (out["value_t_per_yr"].abs() > 1e-9) | (out["shadow_value_usd_per_t"].abs() > 1e-9)
        out["binding"] = (out["slack_t_per_yr"] <= tol) & live
        return {"supply_caps": out[cols]}


def _rows(terms: pd.DataFrame) -> pd.DataFrame:
    """Terms of each row key, one entry per variable (duplicates summed: an activity
    making two products of a group appears once with both coefficients)."""
    if terms.empty:
        return pd.DataFrame(columns=TERM_COLS)
    return terms.groupby(["key", "src", "i"], sort=False)["coef"].sum().reset_index()


def _keys(terms: pd.DataFrame) -> list[tuple]:
    """Distinct row keys in first-seen order."""
    return list(dict.fromkeys(terms["key"]))
