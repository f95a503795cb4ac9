"""Derive calibration terms (DESIGN section 4: positive mathematical programming, LP form).

Stage 1 solves the case with the first period's output of every facility that has an
observed output held within a tolerance of it:
    X_f (1 - tol) <= sum_{g in G_f, k} activity[g,k,t0] <= X_f (1 + tol)
(G_f: f and the tranches `calibrated_as` f that run in the first period.)
Their duals, per tonne (divided by the period weight), say how far the model's costs are
from explaining what was observed: a binding upper row (dual u_f <= 0) is a rent the
model would earn from producing more, so output beyond X_f must cost r_f = -u_f more; a
binding lower row (dual l_f >= 0) is a loss the model makes at X_f, so output up to X_f
must cost l_f less. With a small margin m for strict preference:
    below_observed_f = max(-l_f - m, -c_f + m),   above_observed_f = r_f + m,
where c_f is the facility's cheapest running cost: a plant is never paid to run, so an
observed output the model finds no buyer for (stage-1 output disposed of: l_f above
c_f) is not forced, and its row says so. Otherwise, at the stage-1 prices the calibrated
facility is cheaper than the price up to X_f and dearer beyond it, so the free solve
reproduces X_f (model.lp.modules.calibration).
Caveat: where stage-1 prices are not unique (degenerate joint-product or parallel-lane
duals), so are the terms; the calibrated solve still reproduces the observed outputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyomo.core as pyo
from pyomo.core.expr.numeric_expr import LinearExpression

from model.case.schema import SHEETS_BY_NAME, InputError, Problem
from model.case.workbook import Case
from model.lp.build import build_model
from model.lp.data import build_model_data
from model.lp.modules.calibration import calibration_group
from model.lp.solve import solve_model


def calibration_table(case: Case) -> pd.DataFrame:
    """The calibration sheet's rows for a validated case (without a calibration sheet)."""
    case = case.copy()
    case.tables["calibration"] = case.tables["calibration"].iloc[0:0]
    data = build_model_data(case)
    built = build_model(data)
    m = built.model
    t0 = data.period_list[0]
    tol = float(case.settings["calibration_tolerance"])
    margin = float(case.settings["calibration_margin_usd_per_t"])
    fac = data.facilities
    observed = fac["observed_output_t_per_yr"].dropna()
    acts, avars = built.registry.activity_table()
    acts = acts.assign(group=calibration_group(acts["unit"], fac))
    base = acts[(acts["period"] == t0) & acts["group"].isin(observed.index)]
    groups = base.groupby("group", sort=True).indices
    names = list(groups)
    if not names:
        raise InputError([Problem(Path(case.path).name, "facilities", None, "observed_output_t_per_yr",
                                  message="no facility running in the first period has an observed output",
                                  expected="observed_output_t_per_yr on the facilities to calibrate")])
    members = {f: [avars[base.index[i]] for i in idx] for f, idx in groups.items()}
    m.CALIBRATION_FACILITIES = pyo.Set(initialize=names, ordered=True)

    def total(f):
        vs = members[f]
        return LinearExpression(constant=0.0, linear_coefs=[1.0] * len(vs), linear_vars=vs)
    m.calibration_upper = pyo.Constraint(m.CALIBRATION_FACILITIES,
                                         rule=lambda m, f: total(f) <= observed[f] * (1 + tol))
    m.calibration_lower = pyo.Constraint(m.CALIBRATION_FACILITIES,
                                         rule=lambda m, f: total(f) >= observed[f] * (1 - tol))
    sol = solve_model(m, case.settings)
    if not sol.optimal:
        raise InputError([Problem(Path(case.path).name, "facilities", None, "observed_output_t_per_yr",
                                  message=f"the observed outputs cannot all be met in period {t0}: {sol.message}",
                                  expected="observed outputs within capacity, quotas and controls")])
    w = data.periods.loc[t0, "weight"]
    up = sol.duals([m.calibration_upper[f] for f in names]) / w
    lo = sol.duals([m.calibration_lower[f] for f in names]) / w
    rent = np.maximum(-up, 0.0)
    loss = np.maximum(lo, 0.0)
    # Never pay a plant to run: where the loss exceeds its running cost, what it made was
    # not wanted at any price (its stage-1 output went to disposal), so the term stops at
    # the running cost less the margin and the free solve does not reproduce that output.
    # ... nor a cheaper tranche calibrated as it: the floor is the group's cheapest running cost.
    group = calibration_group(data.activities["facility"], fac)
    cheapest = data.activities.groupby(group.to_numpy())["unit_cost_usd_per_t"].min().reindex(names).to_numpy(float)
    below = -loss - margin
    floor = -cheapest + margin
    capped = below < floor
    below = np.maximum(below, floor)
    source = [f"derived: calibration dual of run {case.input_hash[:12]} (period {t0}, tolerance {tol:g}, "
              f"margin {margin:g} USD/t)" + ("; below-observed term capped at the running cost: the "
                                             "observed output found no buyer in the model" if c else "")
              for c in capped]
    return pd.DataFrame({
        "facility": names,
        "observed_output_t_per_yr": observed.reindex(names).to_numpy(float),
        "below_observed_usd_per_t": below,
        "above_observed_usd_per_t": np.maximum(rent + margin, below),
        "source": source,
    })


def write_calibrated(source: str | Path, target: str | Path, table: pd.DataFrame) -> Path:
    """Copy a workbook to a new file with its calibration sheet replaced by `table`.
    The source workbook is only read."""
    source, target = Path(source), Path(target)
    if target.exists() or target.resolve() == source.resolve():
        raise FileExistsError(f"{target} exists; calibration writes a new workbook and never overwrites one")
    wb = openpyxl.load_workbook(source)
    if "calibration" in wb.sheetnames:
        del wb["calibration"]
    ws = wb.create_sheet("calibration")
    cols = SHEETS_BY_NAME["calibration"].column_names
    ws.append(cols)
    for rec in table[cols].itertuples(index=False):
        ws.append(list(rec))
    wb.save(target)
    return target
