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


def _skip_scipy_stats_hook() -> None:
    """Pyomo registers an import hook so that when anything first imports scipy (the model
    uses scipy.sparse) it also imports scipy.stats, scipy.integrate and scipy.spatial:
    0.6-0.8 s per process, none of it used here. Drop that one hook before scipy is
    imported (Pyomo's own deferred `scipy` attribute still finalises when Pyomo uses it).
    The registry is private to Pyomo, so a change there only costs the time again."""
    import sys
    if "scipy" in sys.modules:
        return
    try:
        from pyomo.common.dependencies import DeferredImportCallbackFinder
        DeferredImportCallbackFinder._callbacks.pop("scipy", None)
    except (ImportError, AttributeError):
        pass


_skip_scipy_stats_hook()
