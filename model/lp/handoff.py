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
import pyomo.core as pyo
import scipy.sparse as sp
from pyomo.core.expr.numeric_expr import LinearExpression, MonomialTermExpression
from pyomo.core.base.matrix_constraint import MatrixConstraint
from pyomo.repn.standard_repn import generate_standard_repn

from model.lp.columns import ColumnMap, Columns, block_bounds
from model.lp.core import var_data


class ArrayLinearExpression(LinearExpression):
    """sum_j coefs[j] x vars[j], held as a numpy array and a list of VarData (the
    objective: a term per flow, production and stock column). Pyomo's argument list, one
    MonomialTermExpression per term, is made only if something walks the expression
    (printing, an LP writer); the hand-off reads the arrays: at 600 k columns making and
    reading back the terms took about 0.6 s and 80 MB."""

    __slots__ = ("_coefs", "_vars", "_made")

    @property
    def __class__(self):
        # Pyomo's expression walkers (standard repn, the LP and NL writers, persistent
        # interfaces) dispatch on node.__class__ to handlers registered for exact classes:
        # to them this is the LinearExpression it stands for, walked through its terms.
        # type() still tells the two apart (the hand-off reads the arrays).
        return LinearExpression

    def __init__(self, coefs, vars: list | Columns) -> None:
        self._coefs = np.asarray(coefs, float)
        self._vars = vars if isinstance(vars, Columns) else list(vars)
        self._made = None
        self._nargs = len(self._vars)

    @property
    def _args_(self) -> list:
        if self._made is None:
            self._made = list(map(MonomialTermExpression, zip(self._coefs.tolist(), self._vars)))
        return self._made

    @_args_.setter
    def _args_(self, value: list) -> None:
        self._made = value

    @property
    def constant(self) -> float:
        return 0.0

    @property
    def linear_coefs(self) -> list:
        return self._coefs.tolist()

    @property
    def linear_vars(self) -> list:
        return list(self._vars)

    def create_node_with_local_data(self, args, classtype=None):
        # a changed copy is an ordinary LinearExpression (this class holds no args list)
        return LinearExpression.create_node_with_local_data(self, args, classtype or LinearExpression)


def _columns_of(pos: ColumnMap, vars_, what: str) -> np.ndarray:
    cols = pos.positions(vars_)
    if (cols < 0).any():
        v = vars_[int(np.flatnonzero(cols < 0)[0])]
        raise ValueError(f"{what} uses variable {v.name}, which is not an active variable of the model")
    return cols


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
    columns: Columns   # the variable of each column (a block's VarData made when read)
    rows: list         # ConstraintData per row
    route: str         # which compiler built it
    col_pos: ColumnMap | None = None  # variable -> column


def _column_bounds(columns: Columns) -> tuple[np.ndarray, np.ndarray]:
    """Column bounds: a block's from its arrays, except for VarData already made (whose
    bounds someone may have changed), the rest read from the VarData."""
    lower: list[np.ndarray] = []
    upper: list[np.ndarray] = []
    for seg in columns.segments:
        if isinstance(seg, list):
            lo, up = _bounds(seg)
        else:
            var, idx = seg  # the whole block in index order (compile_lp)
            lo, up = (a[idx] for a in block_bounds(var))
            if var._data:
                at = np.fromiter(var._data.keys(), np.int64, len(var._data))
                lo[at], up[at] = _bounds(list(var._data.values()))
        lower.append(lo)
        upper.append(up)
    if not lower:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(lower), np.concatenate(upper)


def _bounds(vars_: list) -> tuple[np.ndarray, np.ndarray]:
    """Column bounds (-inf/inf where none). Read in bulk from the variables' own bound
    and domain slots where those are plain numbers (a flow's 0 and its lane capacity):
    asking each of 600 k variables for `.bounds` took 0.35 s."""
    fast = _raw_bounds(vars_)
    if fast is not None:
        return fast
    b = np.array([v.bounds for v in vars_], dtype=float).reshape(len(vars_), 2)  # None -> nan
    return np.nan_to_num(b[:, 0], nan=-np.inf), np.nan_to_num(b[:, 1], nan=np.inf)


_PLAIN = (type(None), float, int, np.float64, np.int64)


def _raw_bounds(vars_: list) -> tuple[np.ndarray, np.ndarray] | None:
    """Bounds from VarData's _lb, _ub and _domain when every bound is None or a number
    (None where this Pyomo keeps them otherwise, or a bound is a parameter or expression)."""
    try:
        lb = [v._lb for v in vars_]
        ub = [v._ub for v in vars_]
        domains = [v._domain for v in vars_]
    except AttributeError:
        return None
    if not set(map(type, lb)).union(map(type, ub)) <= set(_PLAIN):
        return None
    lo = np.array(lb, dtype=float)  # None -> nan
    hi = np.array(ub, dtype=float)
    first = domains[0] if domains else None
    if all(d is first for d in domains):
        d_lo, d_hi = _domain_bounds(first) if domains else (np.nan, np.nan)
        d_lo, d_hi = np.full(len(lo), d_lo), np.full(len(lo), d_hi)
    else:
        pairs = {id(d): _domain_bounds(d) for d in {id(d): d for d in domains}.values()}
        db = np.array([pairs[id(d)] for d in domains], dtype=float).reshape(len(domains), 2)
        d_lo, d_hi = db[:, 0], db[:, 1]
    lo = np.fmax(np.nan_to_num(lo, nan=-np.inf), np.nan_to_num(d_lo, nan=-np.inf))
    hi = np.fmin(np.nan_to_num(hi, nan=np.inf), np.nan_to_num(d_hi, nan=np.inf))
    return lo, hi


def _domain_bounds(domain) -> tuple[float, float]:
    lo, hi = domain.bounds()
    return (np.nan if lo is None else float(lo)), (np.nan if hi is None else float(hi))


def compile_lp(model: pyo.ConcreteModel) -> MatrixLP:
    """The model as matrices: MatrixConstraints and LinearExpressions read directly,
    anything else linear through Pyomo's standard repn."""
    columns = Columns.join(Columns.block(comp) if block_bounds(comp) is not None else var_data(comp)
                           for comp in model.component_objects(pyo.Var, active=True, descend_into=True))
    pos = ColumnMap(columns)
    objs = list(model.component_data_objects(pyo.Objective, active=True, descend_into=True))
    if len(objs) != 1:
        raise ValueError(f"the model needs exactly one active objective, found {len(objs)}")
    obj = objs[0].expr
    sign = 1.0 if objs[0].sense == pyo.minimize else -1.0
    if type(obj) is ArrayLinearExpression:
        constant, obj_vars, obj_coefs = 0.0, obj._vars, obj._coefs
    else:
        if type(obj) is not LinearExpression:
            repn = generate_standard_repn(obj, compute_values=True)
            if not repn.is_linear():
                raise ValueError("the objective is not linear")
            obj = LinearExpression(constant=repn.constant, linear_coefs=list(repn.linear_coefs),
                                   linear_vars=list(repn.linear_vars))
        constant, obj_vars, obj_coefs = obj.constant, obj.linear_vars, np.asarray(obj.linear_coefs, float)
    c = np.zeros(len(columns))
    np.add.at(c, _columns_of(pos, obj_vars, "the objective"), sign * np.asarray(obj_coefs, float))
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
    col_lower, col_upper = _column_bounds(columns)
    return MatrixLP(c, sign * float(pyo.value(constant)), A,
                    np.concatenate(lower) if lower else np.zeros(0),
                    np.concatenate(upper) if upper else np.zeros(0),
                    col_lower, col_upper, columns, rows, "linear-expression", pos)


def _bound_array(values: list) -> np.ndarray:
    return np.array([np.nan if v is None else pyo.value(v) for v in values], float)


def _matrix_block(comp: MatrixConstraint, pos: ColumnMap, n_col: int):
    """A MatrixConstraint's CSR rows, its columns mapped to the model's."""
    cols = _columns_of(pos, comp._x, comp.name)
    indices = cols[np.asarray(comp._A_indices, np.int64)]
    A = sp.csr_array((np.asarray(comp._A_data, float), indices, np.asarray(comp._A_indptr, np.int64)),
                     shape=(len(comp._lower), n_col))
    lo = np.nan_to_num(_bound_array(comp._lower), nan=-np.inf)
    up = np.nan_to_num(_bound_array(comp._upper), nan=np.inf)
    cons = [comp[i] for i in range(len(comp._lower))]
    return A, lo, up, cons


def _expression_block(comp, pos: ColumnMap, n_col: int):
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
        indices.extend(vs)
        data.extend(cs)
        indptr.append(len(indices))
        lower.append(-np.inf if lb is None else pyo.value(lb) - const)
        upper.append(np.inf if ub is None else pyo.value(ub) - const)
        cons.append(con)
    A = sp.csr_array((np.asarray(data, float), _columns_of(pos, indices, comp.name), np.asarray(indptr, np.int64)),
                     shape=(len(cons), n_col))
    return A, np.asarray(lower, float), np.asarray(upper, float), cons
