"""Step 2, the linear program: takes a validated `Case` and gives a solved model.

data (the case turned into sparse index tables), origin (export-control origin
classes and lane rules), core (the shared balance, cost and activity terms modules
register), modules/ (one module per supply-chain concern: sets, variables, constraints
and the module's own result tables), build (assembles the model and objective),
handoff (Pyomo -> matrices), solve (HiGHS, status in plain words), canonical (the one
least-cost plan reported), sensitivity (one-tonne re-solves that value limits).

Imports only `model.case` from earlier steps.
"""
