"""Content tracing: where the rare earths in each country's supply were mined, separated
(or passed any other process stage), by proportional mixing. Reads result tables only.

Proportional mixing. Every node (country, product, period; origin classes summed) pools
what enters it: the output of processes run in the country, imports, and stockpile
releases. Everything that leaves the node (use by processes, exports, demand served,
disposal, stockpile buys) carries the pool's mix. For a stage s (mining, say), the label
of material is the country where its last stage-s process ran:

- the output of a stage-s process is labelled with the process's country;
- the output of any other process carries the mix of its inputs, weighted by tonnes used
  x rare-earth content (t REO per t; table `chain`), so iron-boron in a magnet counts
  for nothing and each metal counts by its rare-earth content; a process with no
  rare-earth input (before any stage-s step) gives the label '(no <stage>)';
- imports carry the exporter's mix; stockpile releases are labelled 'stockpile' (stocks
  bought in earlier periods are not traced back through time).

Per period and stage this is one sparse linear system, T_n x_n - sum_m W_nm x_m = b_n,
where T_n is the node's total inflow, W_nm the tonnes node m passes into node n
(through trade, or as weighted input to n's production) and b_n the labelled inflows.
Solving all products of a period at once is the chain-order (ore -> oxide -> metal ->
magnet) solve done in one factorisation, and it stays exact where material loops
(recycling, back-and-forth trade).

This is a CONTENT SHARE: the proportion of a country's supply that passed through each
country. It is not a control's taint rule, under which any controlled content (0.1 %)
makes a product controlled (model.lp.origin).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.sparse.linalg as spla

STOCKPILE = "stockpile"
TOL = 1e-9
BASES = {"mining": "mined_in", "separation": "separated_in"}


def none_label(stage: str) -> str:
    return f"(no {stage})"


@dataclass
class PeriodFlows:
    """One period's movements, in t/yr, from the result tables."""

    made: pd.DataFrame      # activity rows: country, process, activity_t_per_yr
    trade: pd.DataFrame     # from_country, to_country, product, flow_t_per_yr
    release: pd.DataFrame   # country, product, release_t_per_yr


def _activities(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Facility and new-capacity activity: country, process, period, activity_t_per_yr."""
    cols = ["country", "process", "period", "activity_t_per_yr"]
    parts = [tables[name][cols] for name in ("production", "expansion_capacity")
             if name in tables and not tables[name].empty]
    act = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
    act = act[act["activity_t_per_yr"] > TOL]
    return act.groupby(["country", "process", "period"], as_index=False)["activity_t_per_yr"].sum()


def period_flows(tables: dict[str, pd.DataFrame], period: str, act: pd.DataFrame | None = None) -> PeriodFlows:
    """One period's movements; act: _activities(tables) when the caller has it (Tracer)."""
    act = _activities(tables) if act is None else act
    flows = tables.get("flows")
    if flows is None or flows.empty:
        trade = pd.DataFrame(columns=["from_country", "to_country", "product", "flow_t_per_yr"])
    else:
        f = flows[(flows["period"] == period) & (flows["flow_t_per_yr"] > TOL)]
        trade = f.groupby(["from_country", "to_country", "product"], as_index=False)["flow_t_per_yr"].sum()
    stock = tables.get("stockpiles")
    if stock is None or stock.empty:
        rel = pd.DataFrame(columns=["country", "product", "release_t_per_yr"])
    else:
        s = stock[(stock["period"] == period) & (stock["release_t_per_yr"] > TOL)]
        rel = s.rename(columns={"holder": "country"}).groupby(["country", "product"], as_index=False)[
            "release_t_per_yr"].sum()
    return PeriodFlows(act[act["period"] == period], trade, rel)


def _ints(values: list[int]) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


class PeriodNet:
    """The parts of one period's mixing system that no stage changes (nodes, inflows,
    trade, the production lines and their input mix), so each stage's trace only labels
    the stage's own outputs and solves."""

    def __init__(self, pf: PeriodFlows, chain: pd.DataFrame) -> None:
        lines = pf.made.merge(chain[["process", "process_stage", "product", "coefficient", "re_content_t_per_t"]],
                              on="process")
        lines["q"] = lines["activity_t_per_yr"] * lines["coefficient"]
        out = lines[lines["q"] > TOL]
        ins = lines[(lines["q"] < -TOL) & (lines["re_content_t_per_t"] > 0)].copy()
        ins["w"] = -ins["q"] * ins["re_content_t_per_t"]
        nodes = pd.concat([out[["country", "product"]], ins[["country", "product"]],
                           pf.trade.rename(columns={"from_country": "country"})[["country", "product"]],
                           pf.trade.rename(columns={"to_country": "country"})[["country", "product"]],
                           pf.release[["country", "product"]]]).drop_duplicates()
        self.index = pd.MultiIndex.from_frame(nodes.reset_index(drop=True))
        pos = {k: i for i, k in enumerate(self.index)}  # plain lookups: pandas' reindex costs more on small tables

        def at(frame: pd.DataFrame, c: str = "country", p: str = "product") -> np.ndarray:
            return _ints([pos[k] for k in zip(frame[c], frame[p])])

        self.n = n = len(self.index)
        self.inflow = np.zeros(n)
        self.trade: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        if not pf.trade.empty:  # imports carry the exporter's mix
            dst, src = at(pf.trade, "to_country"), at(pf.trade, "from_country")
            q = pf.trade["flow_t_per_yr"].to_numpy(float)
            np.add.at(self.inflow, dst, q)
            self.trade = (dst, src, q)
        self.release: tuple[np.ndarray, np.ndarray] | None = None
        if not pf.release.empty:
            dst = at(pf.release)
            q = pf.release["release_t_per_yr"].to_numpy(float)
            np.add.at(self.inflow, dst, q)
            self.release = (dst, q)
        self.out_stage = out["process_stage"].to_numpy()
        self.out_at = at(out) if not out.empty else _ints([])
        self.out_country = out["country"].tolist()
        self.out_q = out["q"].astype(float).tolist()
        if not out.empty:
            np.add.at(self.inflow, self.out_at, out["q"].to_numpy(float))
        key = ["country", "process"]
        weight_sum = ins.groupby(key)["w"].sum()
        self.has_in = out.set_index(key).index.isin(weight_sum.index)
        # Processes of other stages pass on the mix of their inputs, by rare-earth content.
        fed = out[self.has_in][key + ["process_stage", "product", "q"]]
        j = fed.merge(ins[key + ["product", "w"]].rename(columns={"product": "in_product"}), on=key)
        share = j["w"].to_numpy(float) / pd.MultiIndex.from_frame(j[key]).map(weight_sum).to_numpy(float) \
            if not j.empty else np.zeros(0)
        self.mix_stage = j["process_stage"].to_numpy()
        self.mix = (at(j) if not j.empty else _ints([]), at(j, p="in_product") if not j.empty else _ints([]),
                    j["q"].to_numpy(float) * share)

    def trace(self, stage: str) -> tuple[pd.DataFrame, pd.Series]:
        """(shares, inflow) for `stage`: see trace_period."""
        n, inflow = self.n, self.inflow
        labels: list[str] = []
        lab_pos: dict[str, int] = {}

        def label_id(name: str) -> int:
            if name not in lab_pos:
                lab_pos[name] = len(labels)
                labels.append(name)
            return lab_pos[name]

        rows, cols, vals = [], [], []
        b_rows: list[int] = []
        b_cols: list[int] = []
        b_vals: list[float] = []
        if self.trade is not None:
            rows.append(self.trade[0])
            cols.append(self.trade[1])
            vals.append(self.trade[2])
        if self.release is not None:  # stockpile releases
            s = label_id(STOCKPILE)
            b_rows += self.release[0].tolist()
            b_cols += [s] * len(self.release[0])
            b_vals += self.release[1].tolist()
        own = self.out_stage == stage
        if len(own):
            # Stage-s processes label their output with their country.
            b_rows += self.out_at[own].tolist()
            b_cols += [label_id(c) for c, o in zip(self.out_country, own) if o]
            b_vals += [q for q, o in zip(self.out_q, own) if o]
            # Processes without rare-earth inputs (before any stage-s step).
            orphan = ~own & ~self.has_in
            if orphan.any():
                k = label_id(none_label(stage))
                b_rows += self.out_at[orphan].tolist()
                b_cols += [k] * int(orphan.sum())
                b_vals += [q for q, o in zip(self.out_q, orphan) if o]
            mixed = self.mix_stage != stage
            if mixed.any():
                rows.append(self.mix[0][mixed])
                cols.append(self.mix[1][mixed])
                vals.append(self.mix[2][mixed])
        index = self.index
        if not labels:
            return pd.DataFrame(index=index), pd.Series(inflow, index=index)
        W = sp.csr_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)) \
            if vals else sp.csr_array((n, n))
        live = inflow > TOL
        diag = np.where(live, inflow, 1.0)  # nodes with no inflow: x = 0
        A = sp.diags(diag, format="csc") - sp.csc_array(W.multiply(live[:, None]))
        B = np.zeros((n, len(labels)))
        np.add.at(B, (_ints(b_rows), _ints(b_cols)), np.asarray(b_vals, float))
        B[~live] = 0.0
        X = spla.splu(sp.csc_matrix(A)).solve(B)
        X = np.where(np.abs(X) < 1e-12, 0.0, X)
        return pd.DataFrame(X, index=index, columns=labels), pd.Series(inflow, index=index)


def trace_period(pf: PeriodFlows, chain: pd.DataFrame, stage: str) -> tuple[pd.DataFrame, pd.Series]:
    """Label shares for every node of one period: (shares, inflow). shares has index
    (country, product) and one column per label; rows sum to 1 where inflow > 0.
    inflow is each node's total inflow in t/yr."""
    return PeriodNet(pf, chain).trace(stage)


class Tracer:
    """One run's tracing with each period's flows and each (period, stage) trace made
    once: the Sankey (four stages) and the content shares (two of them) read the same
    traces. The results are shared: callers must not change them."""

    def __init__(self, tables: dict[str, pd.DataFrame]) -> None:
        self.tables = tables
        self._act: pd.DataFrame | None = None
        self._flows: dict[str, PeriodFlows] = {}
        self._nets: dict[str, PeriodNet] = {}
        self._traces: dict[tuple[str, str], tuple[pd.DataFrame, pd.Series]] = {}

    def flows(self, period: str) -> PeriodFlows:
        if period not in self._flows:
            if self._act is None:
                self._act = _activities(self.tables)
            self._flows[period] = period_flows(self.tables, period, self._act)
        return self._flows[period]

    def trace(self, period: str, stage: str) -> tuple[pd.DataFrame, pd.Series]:
        """trace_period for the period and stage, made once."""
        if (period, stage) not in self._traces:
            if period not in self._nets:
                self._nets[period] = PeriodNet(self.flows(period), self.tables["chain"])
            self._traces[period, stage] = self._nets[period].trace(stage)
        return self._traces[period, stage]


def final_products(tables: dict[str, pd.DataFrame]) -> list[str]:
    """Products with demand, in first-seen order."""
    dem = tables.get("demand")
    return [] if dem is None or dem.empty else list(dict.fromkeys(dem["product"]))


def content_shares(tables: dict[str, pd.DataFrame], stages: dict[str, str] | None = None,
                   tracer: Tracer | None = None) -> pd.DataFrame:
    """For each country, final product (one with demand) and period with supply: the
    content share of that supply by country of mining and of separation (see the module
    docstring). One row per (country, product, period, basis, origin_country). tracer:
    one made on the same tables, to share its traces (the report's Sankey)."""
    stages = stages or BASES
    tracer = tracer or Tracer(tables)
    cols = ["country", "product", "period", "basis", "origin_country", "content_share",
            "supply_t_per_yr", "origin_t_per_yr"]
    chain = tables.get("chain")
    finals = final_products(tables)
    if chain is None or not finals or "production" not in tables:
        return pd.DataFrame(columns=cols)
    periods = list(dict.fromkeys(tables["demand"]["period"]))
    parts = []
    for t in periods:
        for stage, basis in stages.items():
            shares, inflow = tracer.trace(t, stage)
            if shares.empty:
                continue
            keep = shares.index.get_level_values("product").isin(finals) & (inflow.to_numpy() > TOL)
            sub = shares[keep]
            long = sub.stack().rename("content_share").reset_index()
            long.columns = ["country", "product", "origin_country", "content_share"]
            long = long[long["content_share"] > 1e-12]
            long["supply_t_per_yr"] = pd.MultiIndex.from_frame(long[["country", "product"]]).map(inflow).to_numpy()
            long["period"] = t
            long["basis"] = basis
            parts.append(long)
    if not parts:
        return pd.DataFrame(columns=cols)
    out = pd.concat(parts, ignore_index=True)
    out["origin_t_per_yr"] = out["content_share"] * out["supply_t_per_yr"]
    rank = {"period": {p: i for i, p in enumerate(periods)}, "product": {p: i for i, p in enumerate(finals)}}
    out = out.sort_values(["period", "product", "country", "basis", "content_share"],
                          ascending=[True, True, True, True, False],
                          key=lambda s: s.map(rank[s.name]) if s.name in rank else s, kind="stable")
    return out[cols].reset_index(drop=True)
