"""Step 5, runs: the steps glued together. Takes a workbook (and scenarios) and gives
run folders.

pipeline (one run: read -> validate -> scenario -> model data -> build -> solve ->
tables), single (`run`: one case or scenario compared, explained and written with its
run.log), batch (many scenarios on local processes or a Dask cluster), sweep (sampled
parameters as a batch), resolve (one kept model re-solved for data-only scenarios),
explain (re-solves that rank what limits each shortfall; conflicts of an infeasible case).
"""
