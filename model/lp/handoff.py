"""Hand a Pyomo LP to HiGHS as arrays.

The big constraint families are Pyomo MatrixConstraints (their CSR arrays are read as
they are) and the rest are `LinearExpression`s (their variables and coefficients are
read directly); that skips the expression walk of Pyomo's general compilers, which
took about 2/3 of our time outside the solve at 600 k columns with
`LinearStandardFormCompiler` (benchmarks/README.md). Any other linear expression goes
through Pyomo's standard repn, so the route is an optimisation, never a restriction on
what a module may write.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo
import scipy.sparse as sp
from pyomo.core.expr.numeric_expr import LinearExpression
from pyomo.core.base.matrix_constraint import MatrixConstraint
from pyomo.repn.standard_repn import generate_standard_repn


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
    col_pos: dict | None = None  # id(VarData) -> column


def _bounds(vars_: list) -> tuple[np.ndarray, np.ndarray]:
    b = np.array([v.bounds for v in vars_], dtype=float).reshape(len(vars_), 2)  # None -> nan
    return np.nan_to_num(b[:, 0], nan=-np.inf), np.nan_to_num(b[:, 1], nan=np.inf)


def compile_lp(model: pyo.ConcreteModel) -> MatrixLP:
    """The model as matrices: MatrixConstraints and LinearExpressions read directly,
    anything else linear through Pyomo's standard repn."""
    columns = list(model.component_data_objects(pyo.Var, active=True, descend_into=True))
    pos = {id(v): i for i, v in enumerate(columns)}
    objs = list(model.component_data_objects(pyo.Objective, active=True, descend_into=True))
    if len(objs) != 1:
        raise ValueError(f"the model needs exactly one active objective, found {len(objs)}")
    obj = objs[0].expr
    if type(obj) is not LinearExpression:
        repn = generate_standard_repn(obj, compute_values=True)
        if not repn.is_linear():
            raise ValueError("the objective is not linear")
        obj = LinearExpression(constant=repn.constant, linear_coefs=list(repn.linear_coefs),
                               linear_vars=list(repn.linear_vars))
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
        A_part, lo, up, cons = block
        blocks.append(A_part)
        lower.append(lo)
        upper.append(up)
        rows.extend(cons)
    A = (sp.vstack(blocks, format="csc") if blocks else sp.csc_array((0, len(columns))))
    A.sum_duplicates()
    if not np.isfinite(c).all():
        raise ValueError("a cost coefficient is not finite (a missing price or cost reached the objective)")
    col_lower, col_upper = _bounds(columns)
    return MatrixLP(c, sign * float(pyo.value(obj.constant)), A,
                    np.concatenate(lower) if lower else np.zeros(0),
                    np.concatenate(upper) if upper else np.zeros(0),
                    col_lower, col_upper, columns, rows, "linear-expression", pos)


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
    """Rows of a constraint component: LinearExpression bodies are read directly,
    other linear bodies through Pyomo's standard repn."""
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
        if type(body) is LinearExpression:
            const, vs, cs = body.constant, body.linear_vars, body.linear_coefs
        else:  # any other linear expression: Pyomo's own walker
            repn = generate_standard_repn(body, compute_values=True)
            if not repn.is_linear():
                raise ValueError(f"constraint {con.name} is not linear")
            const, vs, cs = repn.constant, repn.linear_vars, repn.linear_coefs
        indices.extend([pos[id(v)] for v in vs])
        data.extend(cs)
        indptr.append(len(indices))
        lower.append(-np.inf if lb is None else pyo.value(lb) - const)
        upper.append(np.inf if ub is None else pyo.value(ub) - const)
        cons.append(con)
    A = sp.csr_array((np.asarray(data, float), np.asarray(indices, np.int64), np.asarray(indptr, np.int64)),
                     shape=(len(cons), n_col))
    return A, np.asarray(lower, float), np.asarray(upper, float), cons
