"""Step 4, reports: takes result tables and gives files and console lines. Reads
tables only, never the model (no module here imports `model.lp` or Pyomo).

files (the run folder: report.xlsx, CSVs, manifest.json, run.log), html (the
self-contained report.html), briefing (report.xlsx's one-page first sheet), sheet (the
cell-writing base of the front sheets), charts (figures shared by the workbook, the page and
PNGs), png (the PNG charts drawn from plain chart data), aside (a helper process that draws a
single run's PNGs while the run goes on), console (the compact story a run tells on the
terminal and in run.log).
"""
