"""Re-solve scenarios that change only numbers on one model: costs and bounds are
changed in the HiGHS model in place and the solve starts from the last basis.

A `Resolver` builds the base case's model once. A scenario qualifies when, against the
base case, the settings are equal, no row is dropped or appended, and the only cells
that differ are in the columns of `RESOLVABLE` (and `source`), and the derived index
tables keep their keys (a demand set to 0 or a capacity to 0 removes rows from the
model: that is structure). Everything else (quotas, licences, tariffs, periods,
appended rows, recipes...) is rebuilt: `Resolver.check` says why.

Simple bans are data too. A ban whose destinations are `*`, with no exemption and not
extraterritorial, needs no origin class: it only removes the exporter's own flows of its
products (model.lp.origin). The resolver's model is built from the case without such rows
(`strip_simple_bans`), so its lanes are the union of every scenario's, and a scenario's
simple bans (appended, dropped or edited, in the base case or the scenario) become
upper bounds of 0 on the flow columns they forbid; the next scenario's bounds are set
absolutely, so a ban's columns are released when it is gone. The controls module is
rebound to the scenario's controls and forbidden flows, so its `controls` and
`ban_lane_values` tables are the rebuilt model's. Modules that list flows one by one
(tariffs, price floors' duty lanes) are rebound to the flows the scenario allows, so their
tables are the rebuilt model's too. A ban rebuilds where a supplier-share cap sums flows
(a row of it could vanish with its flows).

Quotas and licences of other cases can be rows of the model too (`controls=`, a scenario
tree's nodes): each is an export_quota row with no limit in a case that lacks it, and its
allowed amount in one that has it, so a node that adds a licence is numbers on the same
model.

For a qualifying scenario the scenario's model data is computed (cheap, no Pyomo) and
its numbers are written into the positions of the base model, found through the
modules' own key tables:

    facility_processes.unit_cost_usd_per_t  -> objective of production activities
    facilities.capacity_t_per_yr            -> upper bounds of capacity_limit rows
    demand.quantity_t_per_yr                -> shortfall upper bounds, product_balance rhs
    demand.shortfall_penalty_usd_per_t      -> objective of shortfall columns
    transport.cost_usd_per_t                -> objective of flows
    transport.max_flow_t_per_yr             -> flow upper bounds
    supply_caps.cap_t_per_yr                -> upper bounds of production_quota rows
    stockpiles.capacity_t / buy_max_t_per_yr / release_max_t_per_yr -> column bounds
    stockpiles.holding_cost_usd_per_t_yr    -> objective of stock levels
    stockpiles.budget_usd                   -> upper bounds of stock_budget rows

The objective is recomputed from every registered cost term (so a term shared by two
modules stays right), and the module state that result tables read (production's
activity table, the lane table, demand blocks, caps, stockpile keys) is rebound to the
scenario's data before extraction. Values are set absolutely, never relative to the
previous scenario, so the order of scenarios does not matter.

Readers of these columns that are not updated here make the scenario rebuild instead
(`_guard`): stockpiles read demand (days-of-cover targets), scrap returns read demand
(end-of-life scrap supply, model.lp.modules.scrap), benchmarks read demand
(consumption), price floors read capacity (offtake volumes). Export controls read
freight (ban values): the controls module's forbidden flows are recomputed from the
scenario's data. A module added later
that reads one of these columns must be handled here or added to the guard.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from pyomo.common.gc_manager import PauseGC

from model.analysis.results import cost_table, extract_tables, shortfall_horizon_table, shortfall_table
from model.case.workbook import ROW, Case
from model.lp.build import BuiltModel, build_model
from model.lp.columns import ColumnMap
from model.lp.data import ModelData, build_model_data, with_capacities
from model.lp.modules.controls import banned_flows
from model.lp.modules.trade import all_lane_periods
from model.lp.origin import controlled_mask
from model.lp.solve import SolveResult, run_highs, to_highs
from model.runs.pipeline import log_solve

RESOLVABLE: frozenset[tuple[str, str]] = frozenset({
    ("facility_processes", "unit_cost_usd_per_t"),
    ("facilities", "capacity_t_per_yr"),
    ("demand", "quantity_t_per_yr"),
    ("demand", "shortfall_penalty_usd_per_t"),
    ("transport", "cost_usd_per_t"),
    ("transport", "max_flow_t_per_yr"),
    ("supply_caps", "cap_t_per_yr"),
    ("stockpiles", "capacity_t"),
    ("stockpiles", "buy_max_t_per_yr"),
    ("stockpiles", "release_max_t_per_yr"),
    ("stockpiles", "holding_cost_usd_per_t_yr"),
    ("stockpiles", "budget_usd"),
    # the allowed amount of a quota or licence: the right-hand side of its export_quota rows
    ("export_controls", "quota_t_per_yr"),
    ("export_controls", "quota_share"),
    ("export_controls", "licence_approval_share"),
    ("export_controls", "reference_flow_t_per_yr"),
})
IGNORED = {"source"}
SCENARIO_SHEETS = {"scenarios", "scenario_changes"}
# Columns whose blank/non-blank state decides whether a row exists in the model.
PRESENCE = {("supply_caps", "cap_t_per_yr"), ("stockpiles", "budget_usd")}


LANE_KEYS = ["from_country", "to_country", "product", "cls", "period"]
# (module, keys attribute, variables attribute): modules listing flows one by one, whose
# tables a rebuilt model would not give a row for a forbidden flow.
LISTED_FLOWS = (("tariffs", "keys", "vars"), ("price_floors", "duty_lanes", "duty_vars"))
DATA_CONTROLS = ("quota", "licence")  # kinds whose rows are export_quota rows (numbers on a kept model)


def simple_ban_mask(controls: pd.DataFrame) -> np.ndarray:
    """Rows of an export_controls sheet that are bans to every destination (`*` or
    blank), with no exemption, not extraterritorial and not an end-use denial (which moves
    demand to a class node): they need no origin class."""
    if controls.empty:
        return np.zeros(0, bool)

    def text(col: str) -> pd.Series:
        return controls[col].fillna("").astype(str).str.strip()

    extra = controls["extraterritorial"].fillna(False).astype(bool)
    segments = text("segments") if "segments" in controls.columns else pd.Series("", index=controls.index)
    return ((text("kind") == "ban") & text("destinations").isin(["*", ""]) & (text("exempt") == "")
            & (segments == "") & ~extra).to_numpy(bool)


def data_control_rows(case: Case) -> pd.DataFrame:
    """The quota and licence rows of a case's export_controls sheet."""
    ctl = case.tables.get("export_controls")
    if ctl is None or ctl.empty:
        return pd.DataFrame(columns=["control"])
    return ctl[ctl["kind"].fillna("").astype(str).str.strip().isin(DATA_CONTROLS)]


def with_controls(case: Case, extra: pd.DataFrame) -> Case:
    """The case with the rows of `extra` whose control it lacks appended (its own rows of
    those controls kept, in the order of `extra`)."""
    if extra is None or extra.empty:
        return case
    ctl = case.tables["export_controls"]
    first = extra.drop_duplicates("control").set_index("control")[[c for c in ctl.columns if c != "control"]]
    mine = ctl["control"].isin(first.index)
    own = ctl[mine].drop_duplicates("control").set_index("control")
    if not own.empty:  # the case's own row of a control where it has one; ROW as in `extra`
        cols = [c for c in first.columns if c != ROW]
        first = first.astype(object)
        first.loc[own.index, cols] = own[cols].astype(object).to_numpy()
    added = first.rename_axis("control").reset_index()[list(ctl.columns)]
    tables = dict(case.tables)
    tables["export_controls"] = pd.concat([ctl[~mine], added], ignore_index=True).astype(ctl.dtypes.to_dict(),
                                                                                        errors="ignore")
    return replace(case, tables=tables)


def strip_simple_bans(case: Case) -> Case:
    """The case without its simple bans: the structure every ban scenario shares."""
    ctl = case.tables.get("export_controls")
    if ctl is None or not simple_ban_mask(ctl).any():
        return case
    tables = dict(case.tables)
    tables["export_controls"] = ctl[~simple_ban_mask(ctl)].reset_index(drop=True)
    return replace(case, tables=tables)


def _same(a: pd.Series, b: pd.Series) -> bool:
    """Equal values, blanks equal to blanks."""
    if len(a) != len(b):
        return False
    av, bv = a.to_numpy(), b.to_numpy()
    if a.dtype.kind in "fi" and b.dtype.kind in "fi":
        av, bv = av.astype(float), bv.astype(float)
        return bool(np.all((av == bv) | (np.isnan(av) & np.isnan(bv))))
    return all(x == y or (x != x and y != y) for x, y in zip(av, bv))


def changed_columns(base: Case, scen: Case) -> tuple[set[tuple[str, str]], str | None]:
    """(sheet, column) cells that differ, or a reason the change is structural."""
    if base.settings != scen.settings:
        keys = sorted(k for k in set(base.settings) | set(scen.settings)
                      if base.settings.get(k) != scen.settings.get(k))
        return set(), "settings changed (" + ", ".join(keys) + ")"
    out: set[tuple[str, str]] = set()
    for sheet, a in base.tables.items():
        if sheet in SCENARIO_SHEETS:
            continue
        b = scen.tables.get(sheet)
        if b is None or len(a) != len(b) or not _same(a[ROW], b[ROW]):
            return set(), f"rows of sheet {sheet} were dropped or appended"
        for col in a.columns:
            if col in IGNORED or col == ROW:
                continue
            if col not in b.columns or not _same(a[col], b[col]):
                if (sheet, col) not in RESOLVABLE:
                    return set(), f"{sheet}.{col} changed (not a cost, capacity or demand number)"
                if (sheet, col) in PRESENCE and not (a[col].isna() == b[col].isna()).all():
                    return set(), f"{sheet}.{col} became blank or non-blank (a row appears or goes)"
                out.add((sheet, col))
    return out, None


def _holds(kept: tuple) -> bool:
    """Whether a run's kept HiGHS model still has the run's shape (its one-tonne probes
    add and delete what they need, so it should)."""
    _, h, cols, rows, _ = kept
    lp = h.getLp()
    return lp.num_col_ == len(cols) and lp.num_row_ == len(rows)


def _cap_keys(data: ModelData) -> list[tuple[str, str]]:
    """(control, period) of every export_quota row the data would declare."""
    return [(c.name, t) for c in data.origin.controls if c.kind in ("quota", "licence") for t in c.periods]


def _keys_equal(a: pd.DataFrame, b: pd.DataFrame, cols: list[str]) -> bool:
    if len(a) != len(b):
        return False
    return all(a[c].tolist() == b[c].tolist() for c in cols if c in a.columns)


@dataclass
class _Positions:
    """Where each family of numbers sits in the HiGHS model."""

    capacity_rows: np.ndarray
    balance_rows: np.ndarray
    shortfall_cols: np.ndarray
    flow_cols: np.ndarray
    quota_rows: np.ndarray
    stock_cols: dict[str, np.ndarray]
    budget_rows: np.ndarray
    control_rows: np.ndarray


class Resolver:
    """The base case's model, built once, re-solved for data-only scenarios."""

    def __init__(self, base: Case, kept: tuple | None = None, classes: tuple[dict, set] | None = None,
                 controls: pd.DataFrame | None = None):
        """kept: (built, highs, columns, rows, stats) of a run of `base` itself, adopted
        instead of building again when the base case has no simple ban (whose lanes the
        resolver's model keeps and a plain build removes). classes: origin classes every
        case it solves carries (a scenario tree's, model.lp.data.build_model_data).
        controls: quota and licence rows of the cases it will solve (a tree's nodes), made
        rows of the model; a case lacking one leaves its row without a limit."""
        t0 = time.perf_counter()
        self.base, self.classes = base, classes
        if classes is not None:
            kept = None
        # the model's structure: lanes before simple bans, every case's quota and licence rows
        own = set(data_control_rows(base)["control"]) if controls is not None else set()
        self.extra = None if controls is None or controls.empty else controls[~controls["control"].isin(own)]
        if self.extra is not None and self.extra.empty:
            self.extra = None
        self.union = with_controls(strip_simple_bans(base), self.extra)
        if self.extra is not None:
            kept = None
            if classes is None:  # every case carries the origin classes the added controls need
                origin = build_model_data(self.union).origin
                self.classes = (origin.controller, origin.modal)
        if kept is not None and self.union is base and _holds(kept):
            self.built, self.h, self.cols, self.rows, self.stats = kept
            self.data = self.built.data
            self.adopted = True
        else:
            self.data = build_model_data(self.union, self.classes)
            with PauseGC():  # the model's many small objects live as long as the resolver
                self.built: BuiltModel = build_model(self.data)
                self.h, self.cols, self.rows, self.stats = to_highs(self.built.model, base.settings)
            self.adopted = False
        # The hand-off's arrays describe the LP before any scenario is applied: a re-solve
        # reads the changed LP back from HiGHS instead.
        self.stats = {k: v for k, v in self.stats.items() if k not in ("lp", "col_pos")}
        self.col_pos = ColumnMap(self.cols)
        self.row_of = {id(c): i for i, c in enumerate(self.rows)}
        lp = self.h.getLp()
        self.cost = np.asarray(lp.col_cost_, float).copy()
        self.col_lo = np.asarray(lp.col_lower_, float).copy()
        self.col_hi = np.asarray(lp.col_upper_, float).copy()
        self.row_lo = np.asarray(lp.row_lower_, float).copy()
        self.row_hi = np.asarray(lp.row_upper_, float).copy()
        self.base_arrays = (self.cost.copy(), self.col_lo.copy(), self.col_hi.copy(),
                            self.row_lo.copy(), self.row_hi.copy())
        self.mod = {m.name: m for m in self.built.modules}
        self.pos = self._positions()
        ctl = self.mod.get("controls")
        # every export_quota row of the model (a case's own are a subset) and licence-cost segments
        self.cap_keys = list(ctl.cap_keys) if ctl is not None else []
        self.cap_cons = list(ctl.cons) if ctl is not None else []
        self.listed = {name: (getattr(self.mod[name], k), getattr(self.mod[name], v),
                              self._cols(getattr(self.mod[name], v))) for name, k, v in LISTED_FLOWS
                       if name in self.mod and getattr(self.mod[name], v, None)}
        self.lane_keys = self.mod["trade"].lanes[LANE_KEYS].copy()
        self._term_pos: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._plan: tuple[ModelData, pd.DataFrame, np.ndarray] | None = None
        self.build_s = time.perf_counter() - t0

    # ------------------------------------------------------------------ positions
    def _cols(self, vars_) -> np.ndarray:
        idx = self.col_pos.positions(vars_)
        if (idx < 0).any():
            raise RuntimeError("re-solve: a variable is not a column of the HiGHS model")
        return idx

    def _rows(self, cons: list) -> np.ndarray:
        idx = np.fromiter((self.row_of.get(id(c), -1) for c in cons), np.int64, len(cons))
        if (idx < 0).any():
            raise RuntimeError("re-solve: a constraint is not a row of the HiGHS model")
        return idx

    def _positions(self) -> _Positions:
        mod, m = self.mod, self.built.model
        sp = mod.get("stockpiles")
        has_stock = sp is not None and not getattr(sp, "empty", True)
        budget = list(m.stock_budget.values()) if has_stock and hasattr(m, "stock_budget") else []
        caps = mod.get("supply_caps")
        return _Positions(
            capacity_rows=self._rows(mod["production"].cons),
            balance_rows=self._rows(mod["balance"].cons),
            shortfall_cols=self._cols(mod["demand"].vars),
            flow_cols=self._cols(mod["trade"].vars),
            quota_rows=self._rows(caps.quota_cons) if caps is not None else np.zeros(0, np.int64),
            stock_cols={k: self._cols(getattr(sp, k)) for k in ("buy", "release", "level")} if has_stock else {},
            budget_rows=self._rows(budget),
            control_rows=self._rows(mod["controls"].cons) if "controls" in mod else np.zeros(0, np.int64),
        )

    # ------------------------------------------------------------------ eligibility
    def _guard(self, changed: set[tuple[str, str]], data: ModelData) -> str | None:
        """A reason to rebuild, or None when every reader of the changed numbers is handled."""
        sheets = {s for s, _ in changed}
        t = self.union.tables
        if ("demand", "quantity_t_per_yr") in changed and not t["stockpiles"].empty:
            return "demand changed and stockpiles read demand (days-of-cover targets and the cover report)"
        if ("demand", "quantity_t_per_yr") in changed and not t["benchmarks"].empty:
            return "demand changed and benchmarks read demand (the consumption a share applies to)"
        if ("demand", "quantity_t_per_yr") in changed and not self.data.scrap_returns.empty:
            return "demand changed and end-of-life scrap returns read it (scrap supply)"
        if ("facilities", "capacity_t_per_yr") in changed and not t["price_floors"].empty:
            return "capacity changed and price floors read capacity (offtake volumes)"
        # Freight is read by ban values: apply() rebinds the controls module's forbidden
        # flows (with their freight) to the scenario's, so a freight change is handled.
        need = {"production", "balance", "demand", "trade"}
        if any(s == "supply_caps" for s in sheets):
            need.add("supply_caps")
        if "stockpiles" in sheets:
            need.add("stockpiles")
        if "export_controls" in sheets:
            need.add("controls")
        missing = need - set(self.mod)
        if missing:
            return "the model has no module " + ", ".join(sorted(missing))
        if not _keys_equal(self.data.activities, data.activities, ["facility", "process", "period", "mode"]):
            return "the facilities' active processes or periods changed (a capacity became 0 or positive)"
        if not _keys_equal(self.data.lanes, data.lanes, ["from_country", "to_country", "product", "cls"]):
            return "the lanes changed"
        if not _keys_equal(self.data.demand, data.demand, ["country", "product", "segment", "period"]):
            return "demand blocks appeared or went (a quantity became 0 or positive)"
        if not _keys_equal(self.data.demand, data.demand, ["node_product"]):
            return "an end-use control denies other demand segments (they draw from another node)"
        if ("transport", "max_flow_t_per_yr") in changed and self._shared_cap(self.mod["trade"].lanes).any():
            return "lane capacity changed and origin classes share it in lane_capacity rows"
        sp = self.mod.get("stockpiles")
        if ("stockpiles", "release_max_t_per_yr") in changed and any(v is not None for v in getattr(sp, "own", [])):
            return "release limits changed and a reserve's own-origin releases share them in stock_release_limit rows"
        if "controls" in self.mod and not set(_cap_keys(data)) <= set(self.cap_keys):
            return "the quota and licence rows of the export controls changed"
        return self._ban_guard(data)

    def _shared_cap(self, lanes: pd.DataFrame) -> np.ndarray:
        """Lanes whose capacity is a lane_capacity row shared by origin classes, not a
        column bound (where model.lp.modules.trade declares such rows)."""
        if not hasattr(self.built.model, "lane_capacity"):
            return np.zeros(len(lanes), bool)
        return (lanes["cls"] != "").to_numpy(bool)

    def _ban_plan(self, data: ModelData) -> tuple[pd.DataFrame, np.ndarray] | str:
        """(the scenario's lane-periods in the model's column order, which of them its
        simple bans forbid), or a reason to rebuild. Bans that are not simple are
        structure: they are in the model and equal in the scenario (check())."""
        if self._plan is not None and self._plan[0] is data:
            return self._plan[1], self._plan[2]
        ctl = data.tables["export_controls"]
        simple = simple_ban_mask(ctl)
        if len(data.origin.controls) != len(simple):
            return "the export controls do not line up with their rows"
        flows = all_lane_periods(data)
        removed = np.zeros(len(flows), bool)
        ban = np.zeros(len(flows), bool)
        for ctrl, is_simple in zip(data.origin.controls, simple):
            if ctrl.kind != "ban":
                continue
            if is_simple and ctrl.classes:  # cannot happen (destinations are everyone)
                return f"ban {ctrl.name} needs origin classes"
            mask = controlled_mask(flows, ctrl)
            if is_simple:
                ban |= mask
            else:
                removed |= mask
        lanes = flows[~removed].reset_index(drop=True)
        if not _keys_equal(self.lane_keys, lanes, LANE_KEYS):
            return "the lane-periods differ from the model's"
        self._plan = (data, lanes, ban[~removed])
        return lanes, ban[~removed]

    def _ban_guard(self, data: ModelData) -> str | None:
        """A reason a scenario's simple bans cannot be bounds on this model, or None."""
        plan = self._ban_plan(data)
        if isinstance(plan, str):
            return plan
        _, ban = plan
        if not ban.any():
            return None
        if data.origin.controller != self.data.origin.controller or data.origin.modal != self.data.origin.modal:
            return "the origin classes changed"
        caps = self.mod.get("supply_caps")
        if caps is not None and getattr(caps, "share_keys", None):
            return "a ban forbids flows that supplier-share caps sum (a cap row could vanish)"
        return None

    def check(self, case: Case) -> tuple[str | None, ModelData | None]:
        """(reason to rebuild or None, the scenario's model data when it qualifies)."""
        changed, reason = changed_columns(self.union, with_controls(strip_simple_bans(case), self.extra))
        if reason and reason.startswith("rows of sheet export_controls"):
            reason = ("export controls other than bans to every destination (no exemption, not "
                      "extraterritorial) were added, dropped or changed")
        if reason:
            return reason, None
        data = self._from_base(changed, case) or build_model_data(case, self.classes)
        reason = self._guard(changed, data)
        return reason, (None if reason else data)

    def _from_base(self, changed: set[tuple[str, str]], case: Case) -> ModelData | None:
        """The case's model data made from the base case's, where that is exact: only
        capacities changed, and the model is the base case's own (no simple bans on
        either side, no other case's controls). Else None (built)."""
        if changed != {("facilities", "capacity_t_per_yr")} or self.union is not self.base \
                or strip_simple_bans(case) is not case:
            return None
        return with_capacities(self.data, case)

    # ------------------------------------------------------------------ update
    def _term(self, vars_: list):
        return next((t for t in self.built.registry.costs if t.vars is vars_), None)

    def apply(self, case: Case, data: ModelData) -> None:
        """Write the scenario's numbers into the base model (HiGHS arrays and module state)."""
        cost, col_lo, col_hi, row_lo, row_hi = (a.copy() for a in self.base_arrays)
        mod, pos, reg = self.mod, self.pos, self.built.registry

        prod = mod["production"]
        acts = data.activities
        prod.acts = acts
        prod.fp_cap = acts.groupby(["facility", "period"], sort=False)["capacity_t_per_yr"].first()
        row_hi[pos.capacity_rows] = prod.fp_cap.to_numpy(float)
        term = self._term(prod.vars)
        if term is not None:
            term.coefs = acts["unit_cost_usd_per_t"].to_numpy(float)

        dem = mod["demand"]
        dem.demand = data.demand
        qty = data.demand["quantity_t_per_yr"].to_numpy(float)
        col_hi[pos.shortfall_cols] = qty
        term = self._term(dem.vars)
        if term is not None:
            term.coefs = data.demand["shortfall_penalty_usd_per_t"].to_numpy(float)
        reg.demand_t_per_yr = {}
        for node, q in zip(zip(data.demand["country"], data.demand["node_product"], data.demand["period"]), qty):
            reg.demand_t_per_yr[node] = reg.demand_t_per_yr.get(node, 0.0) + float(q)
        bal = mod["balance"]
        # supply_t_per_yr (scrap arising) is the base model's: the guard rebuilds where demand
        # changes and scrap returns read it
        rhs = np.array(reg.rhs_t_per_yr(list(zip(bal.keys["country"], bal.keys["product"], bal.keys["period"]))),
                       float)
        row_lo[pos.balance_rows] = rhs
        row_hi[pos.balance_rows] = rhs

        trade = mod["trade"]
        plan = self._ban_plan(data)
        if isinstance(plan, str) or len(plan[0]) != len(trade.vars):  # check() said it qualifies
            raise RuntimeError("re-solve: the scenario's lane-periods differ from the model's")
        lanes, ban = plan
        trade.lanes = lanes  # every lane of the model: forbidden flows are 0 and left out of `flows`
        cap = lanes["max_flow_t_per_yr"].to_numpy(float)
        cap = np.where(np.isnan(cap) | self._shared_cap(lanes), np.inf, cap)
        col_hi[pos.flow_cols] = np.where(ban, 0.0, cap)
        ctl = mod.get("controls")
        if ctl is not None:  # the scenario's controls (bans included) and the flows they forbid
            ctl.controls = data.origin.controls
            ctl.banned = banned_flows(data)
            if len(pos.control_rows):  # quotas and licences: their allowed amounts, no limit where absent
                caps = {(c.name, t): c.cap_t_per_yr for c in data.origin.controls
                        if c.kind in DATA_CONTROLS for t in c.periods}
                ctl.caps = caps
                row_hi[pos.control_rows] = [caps.get(k, np.inf) for k in self.cap_keys]
                own = [i for i, k in enumerate(self.cap_keys) if k in caps]
                ctl.cap_keys = [self.cap_keys[i] for i in own]
                ctl.cons = [self.cap_cons[i] for i in own]
                self._licence_costs(ctl, data)
        for name, (keys, vars_, cols) in self.listed.items():  # the flows the scenario allows
            keep = ~np.isin(cols, pos.flow_cols[ban])
            k_attr, v_attr = next((k, v) for n, k, v in LISTED_FLOWS if n == name)
            setattr(mod[name], k_attr, keys[keep].reset_index(drop=True))
            setattr(mod[name], v_attr, [v for v, y in zip(vars_, keep) if y])
        term = self._term(trade.vars)
        if term is not None:
            term.coefs = lanes["cost_usd_per_t"].to_numpy(float)

        caps = mod.get("supply_caps")
        if caps is not None and len(pos.quota_rows):
            caps.caps = data.tables["supply_caps"].set_index("cap", drop=False)
            row_hi[pos.quota_rows] = [float(caps.caps.at[c, "cap_t_per_yr"]) for c, _ in caps.quota_keys]
        elif caps is not None:
            caps.caps = data.tables["supply_caps"].set_index("cap", drop=False)

        if pos.stock_cols:
            self._apply_stockpiles(data, col_hi, row_hi)

        self.built.data = data
        self._push(self._objective(data), col_lo, col_hi, row_lo, row_hi)

    def _licence_costs(self, ctl, data: ModelData) -> None:
        """The licence cost on each licensed flow: the case's own licence's, 0 where the
        case lacks the licence (its flows are in the term because another case has it)."""
        term = self._term(getattr(ctl, "licence_vars", None))
        if term is None or not len(term.vars):
            return
        cost = {c.name: c.licence_cost_usd_per_t for c in data.origin.controls if c.kind == "licence"}
        term.coefs = np.concatenate([np.full(n, float(cost.get(name, 0.0))) for name, n in ctl.licence_segments])

    def _apply_stockpiles(self, data: ModelData, col_hi: np.ndarray, row_hi: np.ndarray) -> None:
        sp = self.mod["stockpiles"]
        table = data.tables["stockpiles"].set_index("stockpile")
        keys = sp.keys.copy()
        for col in ("capacity_t", "buy_max_t_per_yr", "release_max_t_per_yr", "holding_cost_usd_per_t_yr"):
            keys[col] = keys["stockpile"].map(table[col]).to_numpy(float)
        sp.keys = keys
        sp.sp = table
        for name, col in (("buy", "buy_max_t_per_yr"), ("release", "release_max_t_per_yr"), ("level", "capacity_t")):
            v = keys[col].to_numpy(float)
            col_hi[self.pos.stock_cols[name]] = np.where(np.isnan(v), np.inf, v)
        term = self._term(sp.level)
        if term is not None:
            term.coefs = keys["holding_cost_usd_per_t_yr"].fillna(0.0).to_numpy(float)
        if len(self.pos.budget_rows):
            names = list(self.built.model.STOCK_BUDGETS)
            row_hi[self.pos.budget_rows] = table.loc[names, "budget_usd"].to_numpy(float)

    def _objective(self, data: ModelData) -> np.ndarray:
        """sum over cost terms in the objective of coef x period weight, per column
        (what model.lp.build puts in the objective). Columns and weights of each term are
        found once: periods never change on this route."""
        c = np.zeros(len(self.cols))
        for term in self.built.registry.costs:
            if not term.in_objective or not len(term.vars):
                continue
            key = id(term)
            if key not in self._term_pos:
                w = pd.Series(term.periods).map(data.periods["weight"]).to_numpy(float)
                self._term_pos[key] = (self._cols(term.vars), w)
            idx, w = self._term_pos[key]
            np.add.at(c, idx, np.asarray(term.coefs, float) * w)
        return c

    def _push(self, cost, col_lo, col_hi, row_lo, row_hi) -> None:
        """Send HiGHS only the entries that differ from its current model."""
        h = self.h
        j = np.flatnonzero(cost != self.cost).astype(np.int32)
        if len(j):
            h.changeColsCost(len(j), j, cost[j])
        j = np.flatnonzero((col_lo != self.col_lo) | (col_hi != self.col_hi)).astype(np.int32)
        if len(j):
            h.changeColsBounds(len(j), j, col_lo[j], col_hi[j])
        i = np.flatnonzero((row_lo != self.row_lo) | (row_hi != self.row_hi)).astype(np.int32)
        if len(i):
            h.changeRowsBounds(len(i), i, row_lo[i], row_hi[i])
        self.cost, self.col_lo, self.col_hi, self.row_lo, self.row_hi = cost, col_lo, col_hi, row_lo, row_hi

    # ------------------------------------------------------------------ solve
    def resolve(self, case: Case, data: ModelData, lean: bool = False, reader=None
                ) -> tuple[SolveResult, dict[str, pd.DataFrame], dict[str, float]]:
        """Apply a qualifying scenario, solve warm and extract its tables (lean: only
        those a comparison row reads, for sweeps that write no report per sample;
        reader(built, sol): any other choice of tables)."""
        t0 = time.perf_counter()
        self.apply(case, data)
        t1 = time.perf_counter()
        sol = run_highs(self.h, self.cols, self.rows, dict(self.stats, handoff_route="resolve"), case.settings)
        t2 = time.perf_counter()
        read = reader or (comparison_tables if lean else extract_tables)
        tables = read(self.built, sol) if sol.optimal else {}
        t3 = time.perf_counter()
        secs = {"update_s": t1 - t0, "handoff_solve_s": t2 - t1, "extract_s": t3 - t2}
        log_solve(case, "(re-solved on the kept model)", sol, secs)
        return sol, tables, secs

    def lp_arrays(self) -> dict[str, np.ndarray]:
        """The HiGHS model's current cost and bound arrays (for checks)."""
        lp = self.h.getLp()
        return {k: np.asarray(getattr(lp, k + "_"), float) for k in
                ("col_cost", "col_lower", "col_upper", "row_lower", "row_upper")}


def shortfall_tables(built: BuiltModel, sol: SolveResult) -> dict[str, pd.DataFrame]:
    """Only demand and shortfall (what an explanation of a shortfall reads)."""
    data = built.data
    tables = {m.name: m for m in built.modules}["demand"].extract(sol, data)
    tables["shortfall"] = shortfall_table(tables["demand"], data.periods)
    tables["shortfall_horizon"] = shortfall_horizon_table(tables["demand"], data.periods, tables["shortfall"])
    return tables


def comparison_tables(built: BuiltModel, sol: SolveResult) -> dict[str, pd.DataFrame]:
    """The result tables a comparison row reads (costs, shortfall, prices, stockpiles),
    made by the same functions as model.analysis.results.extract_tables, without the others."""
    mods = {m.name: m for m in built.modules}
    data = built.data
    tables: dict[str, pd.DataFrame] = {}
    tables.update(mods["demand"].extract(sol, data))
    tol = float(data.settings.get("price_tolerance_usd_per_t", 1e-3))
    tables.update(mods["balance"].extract(sol, data, tables, tol))
    if "stockpiles" in mods:
        tables.update(mods["stockpiles"].extract(sol, data))
    tables["costs"] = cost_table(built, sol)
    tables["shortfall"] = shortfall_table(tables["demand"], data.periods)
    tables["shortfall_horizon"] = shortfall_horizon_table(tables["demand"], data.periods, tables["shortfall"])
    return tables
