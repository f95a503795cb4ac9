"""The matrix hand-off reads MatrixConstraints, LinearExpressions and other linear
expressions into the same LP HiGHS solves, with constants moved to the bounds."""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
import pytest
from pyomo.core.base.matrix_constraint import MatrixConstraint
from pyomo.core.expr.numeric_expr import LinearExpression

from model.lp.handoff import compile_lp
from model.lp.solve import solve_model


def small_model() -> pyo.ConcreteModel:
    """min x1 + 2 x2 + 7 s.t. 2 x1 + 3 (x2 - 1) >= 5; x1 + x2 == 3 (a MatrixConstraint
    row); x1 <= 2.5 (a LinearExpression row); 0 <= x2 <= 4. With x2 = 3 - x1 the first
    row is 9 - x1 >= 8, so x1 <= 1 and the cost 6 - x1 + 7 is least at x1 = 1, x2 = 2:
    objective 12."""
    m = pyo.ConcreteModel()
    m.x = pyo.Var([1, 2], within=pyo.NonNegativeReals)
    m.x[2].setub(4)
    m.general = pyo.Constraint(expr=2 * m.x[1] + 3 * (m.x[2] - 1) >= 5)
    m.matrix = MatrixConstraint([1.0, 1.0], [0, 1], [0, 2], [3.0], [3.0], [m.x[1], m.x[2]])
    m.linear = pyo.Constraint(expr=LinearExpression(constant=0.0, linear_coefs=[1.0], linear_vars=[m.x[1]]) <= 2.5)
    m.cost = pyo.Objective(expr=m.x[1] + 2 * m.x[2] + 7)
    return m


def test_matrices_hold_every_row_with_constants_in_the_bounds():
    lp = compile_lp(small_model())
    dense = lp.A.toarray()
    assert dense.tolist() == [[2.0, 3.0], [1.0, 1.0], [1.0, 0.0]]
    assert lp.row_lower.tolist() == [8.0, 3.0, -np.inf]
    assert lp.row_upper.tolist() == [np.inf, 3.0, 2.5]
    assert lp.c.tolist() == [1.0, 2.0] and lp.offset == 7.0
    assert lp.col_lower.tolist() == [0.0, 0.0] and lp.col_upper.tolist() == [np.inf, 4.0]


def test_solution_and_duals_map_back_to_components():
    m = small_model()
    sol = solve_model(m, {})
    assert sol.optimal
    assert sol.objective == pytest.approx(12.0)
    assert sol.values([m.x[1], m.x[2]]).tolist() == pytest.approx([1.0, 2.0])
    # x1 + x2 = 3 + d lets x1 = 1 + 3d: cost 5 - d, so the equality's dual is -1;
    # 2 x1 + 3 x2 >= 8 + e forces x1 = 1 - e: cost 5 + e, dual +1; x1 <= 2.5 is slack.
    assert sol.duals([m.matrix[0], m.general, m.linear]).tolist() == pytest.approx([-1.0, 1.0, 0.0])


def test_an_empty_model_is_optimal_at_zero_cost():
    m = pyo.ConcreteModel()
    m.cost = pyo.Objective(expr=0.0)
    sol = solve_model(m, {})
    assert sol.optimal and sol.objective == 0.0 and sol.stats["columns"] == 0
