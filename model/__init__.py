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


def _skip_import_hooks() -> None:
    """Pyomo registers import hooks so that when anything first imports scipy (the model
    uses scipy.sparse) it also imports scipy.stats, scipy.integrate and scipy.spatial
    (0.6-0.8 s per process), and when anything imports matplotlib (the PNG charts) it also
    imports pyplot and pylab (0.03 s): none of it used here. Drop those hooks before the
    packages are imported (Pyomo's own deferred attributes still finalise when Pyomo uses
    them). The registry is private to Pyomo, so a change there only costs the time again."""
    import sys
    try:
        from pyomo.common.dependencies import DeferredImportCallbackFinder
        for name in ("scipy", "matplotlib"):
            if name not in sys.modules:
                DeferredImportCallbackFinder._callbacks.pop(name, None)
    except (ImportError, AttributeError):
        pass


_skip_import_hooks()
