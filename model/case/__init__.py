"""Step 1, the case: takes a workbook and gives a validated `Case` (typed tables and
settings, each row remembering its sheet row).

schema (every sheet and column: type, unit, default, bounds, meaning; the single source
of truth), workbook (reading), validate (every problem at once), scenario (a scenario's
changes applied as data), derived (facts computed from the tables that validation and
model data share), codes (country/bloc and product/group wildcards), template and
casewriter (the blank workbook, the input docs, a Case written back to a new workbook).

Imports nothing from later steps: a case knows nothing of the LP.
"""
