"""Hand a Pyomo LP to HiGHS as arrays.

Every constraint and the objective our modules write are `LinearExpression`s, whose
variables and coefficients can be read directly; that skips the expression walk of
Pyomo's general compilers (the hand-off took about 2/3 of our time outside the solve
at 600 k columns with `LinearStandardFormCompiler`; see benchmarks/README.md). Any other
expression falls back to Pyomo's standard-form compiler for the whole model, so the
route is an optimisation, never a restriction on what a module may write.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo
import scipy.sparse as sp
from pyomo.core.expr.numeric_expr import LinearExpression
from pyomo.core.base.matrix_constraint import MatrixConstraint
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler


@dataclass
class MatrixLP:
    """min c x + offset  s.t.  row_lower <= A x <= row_upper,  col_lower <= x <= col_upper."""

    c: np.ndarray
    offset: float
    A: sp.csc_array
    row_lower: np.ndarray
    row_upper: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    columns: list      # VarData per column
    rows: list         # ConstraintData per row
    route: str         # which compiler built it


def _bounds(vars_: list) -> tuple[np.ndarray, np.ndarray]:
    b = np.array([v.bounds for v in vars_], dtype=float).reshape(len(vars_), 2)  # None -> nan
    return np.nan_to_num(b[:, 0], nan=-np.inf), np.nan_to_num(b[:, 1], nan=np.inf)


def _fast(model: pyo.ConcreteModel) -> MatrixLP | None:
    columns = list(model.component_data_objects(pyo.Var, active=True, descend_into=True))
    pos = {id(v): i for i, v in enumerate(columns)}
    objs = list(model.component_data_objects(pyo.Objective, active=True, descend_into=True))
    if len(objs) != 1 or type(objs[0].expr) is not LinearExpression:
        return None
    obj = objs[0].expr
    sign = 1.0 if objs[0].sense == pyo.minimize else -1.0
    c = np.zeros(len(columns))
    np.add.at(c, np.fromiter((pos[id(v)] for v in obj.linear_vars), np.int64, len(obj.linear_vars)),
              sign * np.asarray(obj.linear_coefs, float))
    rows: list = []
    blocks: list[sp.csr_array] = []
    lower: list[np.ndarray] = []
    upper: list[np.ndarray] = []
    for comp in model.component_objects(pyo.Constraint, active=True, descend_into=True):
        if isinstance(comp, MatrixConstraint):
            block = _matrix_block(comp, pos, len(columns))
        else:
            block = _expression_block(comp, pos, len(columns))
        if block is None:
            return None
        A_part, lo, up, cons = block
        blocks.append(A_part)
        lower.append(lo)
        upper.append(up)
        rows.extend(cons)
    A = (sp.vstack(blocks, format="csc") if blocks else sp.csc_array((0, len(columns))))
    A.sum_duplicates()
    col_lower, col_upper = _bounds(columns)
    return MatrixLP(c, sign * float(pyo.value(obj.constant)), A,
                    np.concatenate(lower) if lower else np.zeros(0),
                    np.concatenate(upper) if upper else np.zeros(0),
                    col_lower, col_upper, columns, rows, "linear-expression")


def _bound_array(values: list) -> np.ndarray:
    return np.array([np.nan if v is None else pyo.value(v) for v in values], float)


def _matrix_block(comp: MatrixConstraint, pos: dict[int, int], n_col: int):
    """A MatrixConstraint's CSR rows, its columns mapped to the model's."""
    cols = np.fromiter((pos[id(v)] for v in comp._x), np.int64, len(comp._x))
    indices = cols[np.asarray(comp._A_indices, np.int64)]
    A = sp.csr_array((np.asarray(comp._A_data, float), indices, np.asarray(comp._A_indptr, np.int64)),
                     shape=(len(comp._lower), n_col))
    lo = np.nan_to_num(_bound_array(comp._lower), nan=-np.inf)
    up = np.nan_to_num(_bound_array(comp._upper), nan=np.inf)
    cons = [comp[i] for i in range(len(comp._lower))]
    return A, lo, up, cons


def _expression_block(comp, pos: dict[int, int], n_col: int):
    """Rows of a constraint component whose bodies are LinearExpressions; None otherwise."""
    cons: list = []
    indptr = [0]
    indices: list[int] = []
    data: list[float] = []
    lower: list[float] = []
    upper: list[float] = []
    for con in comp.values():
        if not con.active:
            continue
        lb, body, ub = con.to_bounded_expression()
        if type(body) is not LinearExpression:
            return None
        const = body.constant
        indices.extend([pos[id(v)] for v in body.linear_vars])
        data.extend(body.linear_coefs)
        indptr.append(len(indices))
        lower.append(-np.inf if lb is None else pyo.value(lb) - const)
        upper.append(np.inf if ub is None else pyo.value(ub) - const)
        cons.append(con)
    A = sp.csr_array((np.asarray(data, float), np.asarray(indices, np.int64), np.asarray(indptr, np.int64)),
                     shape=(len(cons), n_col))
    return A, np.asarray(lower, float), np.asarray(upper, float), cons


def _standard(model: pyo.ConcreteModel) -> MatrixLP:
    info = LinearStandardFormCompiler().write(model, mixed_form=True)
    n_row, n_col = info.A.shape
    c = info.c.toarray()[0] if info.c.shape[0] else np.zeros(n_col)
    rhs = np.asarray(info.rhs, float)
    mult = np.fromiter((r[1] for r in info.rows), np.int8, n_row)
    col_lower, col_upper = _bounds(info.columns)
    return MatrixLP(np.asarray(c, float), float(info.c_offset[0]) if len(info.c_offset) else 0.0,
                    info.A.tocsc(), np.where(mult == 1, -np.inf, rhs), np.where(mult == -1, np.inf, rhs),
                    col_lower, col_upper, list(info.columns), [r[0] for r in info.rows], "standard-form")


def compile_lp(model: pyo.ConcreteModel) -> MatrixLP:
    """The model as matrices, by the fastest route that applies."""
    return _fast(model) or _standard(model)
