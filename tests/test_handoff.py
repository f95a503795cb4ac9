"""The matrix hand-off reads MatrixConstraints, LinearExpressions and other linear
expressions into the same LP HiGHS solves, with constants moved to the bounds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyomo.environ as pyo
import pytest
from pyomo.core.base.matrix_constraint import MatrixConstraint
from pyomo.core.expr.numeric_expr import LinearExpression

from pyomo.repn.standard_repn import generate_standard_repn

from model.lp.columns import ColumnMap, Columns, column_block
from model.lp.core import BalanceTerm, Registry
from model.lp.handoff import ArrayLinearExpression, _bounds, _raw_bounds, compile_lp
from model.lp.modules.balance import BalanceRows
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


def test_row_ranges_are_those_of_the_whole_lp():
    """At the optimum x1 = 1, x2 = 2 (basic), row 3's slack basic: moving the first row's
    bound b keeps x1 = 9 - b with 0 <= x1 <= 2.5 and 0 <= x2 = b - 6 <= 4, so b in
    [6.5, 9]; moving the equality to s gives x1 = 3 s - 8, x2 = 8 - 2 s, so s in [8/3, 3.5].
    The ranges come from a copy holding the basic columns only; a basic row's range is
    its activity (nothing is taken as proven there)."""
    m = small_model()
    sol = solve_model(m, {})
    rows = sol.rows_of([m.general, m.matrix[0], m.linear])
    assert sol.range_up[rows].tolist() == pytest.approx([9.0, 3.5, 1.0])
    assert sol.range_dn[rows].tolist() == pytest.approx([6.5, 8.0 / 3.0, 1.0])
    status, whole = sol.highs.getRanging()
    nonbasic = rows[:2]
    assert np.asarray(whole.row_bound_up.value_)[nonbasic].tolist() == pytest.approx(sol.range_up[nonbasic].tolist())
    assert np.asarray(whole.row_bound_dn.value_)[nonbasic].tolist() == pytest.approx(sol.range_dn[nonbasic].tolist())


def test_an_objective_held_as_arrays_reads_as_its_terms(tmp_path):
    """ArrayLinearExpression: 3 x1 + 2 x2 handed over from its arrays, and the same sum
    to anything that walks Pyomo's expression (value, its terms)."""
    m = pyo.ConcreteModel()
    m.x = pyo.Var([1, 2], within=pyo.NonNegativeReals, bounds=(1, 5))
    expr = ArrayLinearExpression(np.array([3.0, 2.0]), [m.x[1], m.x[2]])
    m.cost = pyo.Objective(expr=expr)
    assert compile_lp(m).c.tolist() == [3.0, 2.0]
    m.x[1].set_value(2.0)
    m.x[2].set_value(4.0)
    assert pyo.value(m.cost) == 14.0
    assert expr.nargs() == 2 and expr.linear_coefs == [3.0, 2.0] and expr.linear_vars == [m.x[1], m.x[2]]
    assert solve_model(m, {}).objective == pytest.approx(5.0)
    # Pyomo's own tools see the LinearExpression it stands for: its standard repn, its LP writer
    repn = generate_standard_repn(m.cost.expr)
    assert list(repn.linear_coefs) == [3.0, 2.0] and list(repn.linear_vars) == [m.x[1], m.x[2]]
    path = tmp_path / "cost.lp"
    m.write(str(path), io_options={"symbolic_solver_labels": True})
    assert "+3.0 x(1)" in path.read_text() and "+2.0 x(2)" in path.read_text()


def test_bounds_read_in_bulk_equal_pyomos_own():
    m = pyo.ConcreteModel()
    m.p = pyo.Param(mutable=True, initialize=3.0)
    m.x = pyo.Var(range(3), within=pyo.NonNegativeReals)
    m.x[1].setub(5)
    m.x[2].setlb(-2)  # the domain's 0 is tighter
    m.y = pyo.Var(range(2), within=pyo.Reals, bounds=(-1, None))
    m.z = pyo.Var(within=pyo.Binary)
    vs = list(m.component_data_objects(pyo.Var))
    lo, up = _bounds(vs)
    assert lo.tolist() == [0, 0, 0, -1, -1, 0] and up.tolist() == [np.inf, 5, np.inf, np.inf, np.inf, 1]
    m.x[0].setub(m.p)  # a parameter as a bound: read through Pyomo
    assert _raw_bounds(vs) is None
    assert _bounds(vs)[1].tolist() == [3, 5, np.inf, np.inf, np.inf, 1]


def block_model() -> pyo.ConcreteModel:
    """min x0 + 2 x1 + 3 x2 + 4 y s.t. x0 + x1 + x2 + y >= 5 (a matrix row over
    Columns), x a column block with x0 <= 2, y a plain Var. Cheapest first: x0 = 2 (its
    bound), x1 = 3, x2 = y = 0: objective 2 + 6 = 8, the only optimum."""
    m = pyo.ConcreteModel()
    m.y = pyo.Var(within=pyo.NonNegativeReals)
    m.x = column_block(np.zeros(3), np.array([2.0, np.inf, np.inf]))
    cols = Columns.block(m.x) + [m.y]
    m.need = BalanceRows([1.0] * 4, [0, 1, 2, 3], [0, 4], [5.0], [None], cols)
    m.cost = pyo.Objective(expr=ArrayLinearExpression([1.0, 2.0, 3.0, 4.0], cols))
    return m


def test_columns_found_by_run_or_identity():
    m = block_model()
    cols = Columns([[m.y], (m.x, np.array([2, 0]))])  # y, then x2 and x0
    assert len(cols) == 3 and len(m.x._data) == 0  # no flow made yet
    pos = ColumnMap(cols)
    assert pos.positions(Columns.block(m.x).take([0, 2, 1])).tolist() == [2, 1, -1]
    x2 = m.x[2]  # made after the map: found through its block
    assert pos.positions([x2, m.y, object()]).tolist() == [1, 0, -1]
    assert cols[1] is x2 and cols[-1] is m.x[0] and list(cols) == [m.y, x2, m.x[0]]
    assert x2.bounds == (0, None) and m.x[0].bounds == (0, 2.0)
    assert ColumnMap([]).positions([m.y]).tolist() == [-1]


def test_columns_take_and_join_keep_runs_and_order():
    m = block_model()
    run = Columns.block(m.x)  # x0 x1 x2
    both = Columns.join([run, [m.y], Columns([]), []]) + run  # x0 x1 x2 y x0 x1 x2
    assert len(both) == 7 and [len(s) if isinstance(s, list) else len(s[1]) for s in both.segments] == [3, 1, 3]
    picked = both.take([6, 3, 0, 1])  # x2, y, x0, x1: three segments, runs stay runs
    assert [type(s).__name__ for s in picked.segments] == ["tuple", "list", "tuple"]
    assert picked.segments[2][1].tolist() == [0, 1]
    assert len(m.x._data) == 0  # nothing made by taking
    assert list(picked) == [m.x[2], m.y, m.x[0], m.x[1]]
    assert both[np.int64(-4)] is m.y and len(both.take([])) == 0
    with pytest.raises(IndexError):
        both[7]


def test_a_column_block_is_handed_over_without_making_its_variables():
    m = block_model()
    lp = compile_lp(m)
    assert len(m.x._data) == 0
    assert lp.A.toarray().tolist() == [[1.0, 1.0, 1.0, 1.0]]  # y declared first: column 0
    assert lp.c.tolist() == [4.0, 1.0, 2.0, 3.0]
    assert lp.col_lower.tolist() == [0, 0, 0, 0] and lp.col_upper.tolist() == [np.inf, 2.0, np.inf, np.inf]
    sol = solve_model(m, {})
    assert sol.objective == pytest.approx(8.0)
    assert sol.values(Columns.block(m.x)).tolist() == pytest.approx([2.0, 3.0, 0.0])
    assert len(m.x._data) == 0
    # a flow once made is an ordinary VarData: its bounds, changed, are what HiGHS gets
    # (x1 <= 1: x0 = 2, x1 = 1, x2 = 2, objective 2 + 2 + 6 = 10)
    m.x[1].setub(1.0)
    assert compile_lp(m).col_upper.tolist() == [np.inf, 2.0, 1.0, np.inf]
    sol = solve_model(m, {})
    assert sol.objective == pytest.approx(10.0)
    assert sol.values([m.x[0], m.x[1], m.x[2], m.y]).tolist() == pytest.approx([2.0, 1.0, 2.0, 0.0])


def test_a_column_block_is_still_a_pyomo_model():
    m = block_model()
    assert m.need[0].body.to_string() == "x[0] + x[1] + x[2] + y"
    assert m.need[0].expr.to_string() == "5.0  <=  x[0] + x[1] + x[2] + y"
    repn = generate_standard_repn(m.cost.expr)
    assert list(repn.linear_coefs) == [1.0, 2.0, 3.0, 4.0]
    assert list(repn.linear_vars) == [m.x[0], m.x[1], m.x[2], m.y]


def test_a_released_solution_refuses_lookups():
    m = small_model()
    sol = solve_model(m, {})
    sol.release()
    with pytest.raises(RuntimeError, match="released"):
        sol.values([m.x[1]])


def test_balance_nodes_keep_first_seen_order_whatever_form_a_term_gives():
    """Node tuples and node tables mix; demand-only nodes come last; positive
    coefficients mark where product can come in."""
    reg = Registry()
    reg.add_balance(BalanceTerm("a", [("X", "p", "t1"), ("Y", "p", "t1")], np.array([1.0, -1.0]), [1, 2]))
    reg.add_balance(BalanceTerm("b", pd.DataFrame({"country": ["Y", "Z"], "product": ["p", "q"],
                                                   "period": ["t1", "t2"]}), np.array([1.0, 1.0]), [3, 4]))
    reg.demand_t_per_yr[("W", "p", "t1")] = 5.0
    nodes, rows = reg.node_index()
    assert nodes == [("X", "p", "t1"), ("Y", "p", "t1"), ("Z", "q", "t2"), ("W", "p", "t1")]
    assert rows.tolist() == [0, 1, 1, 2]
    assert reg.supply_nodes() == {("X", "p", "t1"), ("Y", "p", "t1"), ("Z", "q", "t2")}
    reg.release_balance()  # the balance is assembled: its terms' node tables are gone
    with pytest.raises(RuntimeError, match="already assembled"):
        reg.nodes()


def test_a_solve_after_another_highs_started_its_scheduler_with_other_threads():
    """HiGHS runs one thread scheduler per process, started by the first solve; a later
    solve asking for another thread count is refused unless the scheduler restarts. The
    caller's own Highs (a notebook, a Pyomo solver interface) must not break our solves."""
    import highspy
    from model.lp.highs import quiet_highs, use_threads
    # ours solve with 1 thread (the case's solver_threads default), and our side knows it
    # runs 1 whatever an earlier test asked for, so it has no reason of its own to restart
    use_threads(quiet_highs(), 1)
    other = highspy.Highs()
    other.setOptionValue("output_flag", False)
    other.setOptionValue("threads", 2)
    other.addVar(0.0, 1.0)
    other.changeColCost(0, -1.0)
    highspy.Highs.resetGlobalScheduler(True)  # as in a process where the caller's Highs solved first
    other.run()
    assert other.getInfo().objective_function_value == -1.0
    sol = solve_model(small_model(), {})
    assert sol.optimal and sol.objective == pytest.approx(12.0)


def test_pyomo_writes_the_built_model_as_an_lp_that_solves_to_the_same_cost(tmp_path):
    """The built model stays a Pyomo model: Pyomo's own LP writer walks it (the product
    balance's matrix rows, the trade flows' column block, the array objective) and HiGHS
    reading that file finds the same least cost as the run (the teaching case)."""
    import highspy
    from pathlib import Path
    from model.lp.build import build_model
    from model.lp.data import build_model_data
    from model.runs.pipeline import load_case
    case = load_case(str(Path(__file__).resolve().parents[1] / "inputs" / "example.xlsx"))
    m = build_model(build_model_data(case)).model
    ours = solve_model(m, case.settings)
    path = tmp_path / "example.lp"
    m.write(str(path), io_options={"symbolic_solver_labels": True})
    assert "product_balance" in path.read_text() and "flow_t_per_yr" in path.read_text()
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.readModel(str(path))
    h.run()
    assert ours.optimal and h.getInfo().objective_function_value == pytest.approx(ours.objective, rel=1e-9)
