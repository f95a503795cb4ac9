"""Rare-earth supply-chain optimizer: a least-cost LP of the chain (Pyomo + HiGHS).

The steps of a run are sub-packages, and imports run one way, from each step to the
ones before it (tests/test_layout.py checks this from the source):

    case      workbook -> validated Case            (read, validate, scenario changes, template)
    lp        Case -> model data -> LP -> solution  (module per concern, build, hand-off, solve)
    analysis  solution -> result tables             (costs, prices, margins, tracing, comparison)
    reports   result tables -> files and console    (xlsx, CSV, HTML, PNG, console summary)
    runs      one run, batches, sweeps, re-solves, explanations (glue the steps together)
    cli       the command line (`rare-earth`, `python run.py`)

`model.logs` (console and run.log handlers) is used by every step and imports none.
"""

__version__ = "0.1.0"
